// Package gctune keeps the garbage collector from running every few
// megabytes while the worker is busy and its live heap is small.
//
// Go sets the next collection at live heap × (1 + GOGC/100), but never below
// 4 MB. A worker's live heap is about 1 MB, so under load it collects after
// every 3 MB allocated (every ~150 jobs), and the collector becomes a large
// share of the CPU per job. While cycles come close together, the tuner
// raises GOGC so that the next collection waits until the heap reaches a
// floor (CONNECTOR_GC_HEAP_FLOOR); once the live heap is large enough for
// GOGC=100 to reach the floor by itself, or when cycles are far apart (an
// idle worker), GOGC is 100 again. Memory stays bounded by the floor, and an
// operator who sets GOGC keeps full control: the tuner does not start.
//
// A worker that goes quiet after a burst allocates too little to reach the
// raised goal, so no collection comes to lower it, and the heap grown to the
// floor stays resident for minutes (until Go's forced two-minute collection
// and its gradual scavenging). Once allocation has stayed quiet for a while
// after a busy period, the tuner lowers GOGC and returns free memory to the
// operating system at once.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Config tunes the tuner.
type Config struct {
	// Floor is the heap size the collector waits for while busy; 0 turns
	// the tuner off.
	Floor uint64
	// BusyGap: cycles closer together than this mean the process is busy
	// (default 1 s, i.e. allocating more than about 4 MB/s).
	BusyGap time.Duration
	// MaxPercent bounds GOGC (default 2000).
	MaxPercent int
	// QuietRate: allocating less than this many bytes per second is quiet
	// (default 1 MiB/s, about 50 jobs/s); more is busy.
	QuietRate uint64
	// IdleRelease is how long quiet must last after busy before memory goes
	// back to the operating system (default 2 s); Tick is how often
	// allocation is sampled (default 1 s).
	IdleRelease, Tick time.Duration
}

// BasePercent is Go's default GOGC, used outside busy periods.
const BasePercent = 100

// Tuner adjusts GOGC after every garbage collection until Stop.
type Tuner struct {
	cfg Config

	mu      sync.Mutex
	stopped bool
	lastGC  time.Time
	percent int
	samples []metrics.Sample
	cycles  int

	done     chan struct{}
	idle     idleState
	releases int
}

// idleState follows allocation between ticks.
type idleState struct {
	busy  bool          // a busy tick since the last release
	quiet time.Duration // quiet time since the last busy tick
}

// step records one tick of allocated bytes over dt and reports whether to
// release memory now: the first time quiet has lasted release after busy.
func (s *idleState) step(allocated uint64, dt time.Duration, quietRate uint64, release time.Duration) bool {
	if dt <= 0 {
		return false
	}
	if float64(allocated) >= float64(quietRate)*dt.Seconds() {
		s.busy, s.quiet = true, 0
		return false
	}
	s.quiet += dt
	if s.busy && s.quiet >= release {
		s.busy = false
		return true
	}
	return false
}

// sentinel is what the tuner watches for collection: it is unreachable as
// soon as it is armed, so its cleanup runs after the next cycle. The
// pointer keeps it out of the tiny allocator, whose blocks are freed late.
type sentinel struct {
	p   *int
	pad [2]uintptr
}

// Start starts a tuner; lookupEnv decides whether the operator set GOGC, in
// which case it returns nil. A nil *Tuner's Stop does nothing.
func Start(cfg Config, lookupEnv func(string) (string, bool)) *Tuner {
	if cfg.Floor == 0 {
		return nil
	}
	if _, set := lookupEnv("GOGC"); set {
		return nil
	}
	if cfg.BusyGap <= 0 {
		cfg.BusyGap = time.Second
	}
	if cfg.MaxPercent <= 0 {
		cfg.MaxPercent = 2000
	}
	if cfg.QuietRate == 0 {
		cfg.QuietRate = 1 << 20
	}
	if cfg.IdleRelease <= 0 {
		cfg.IdleRelease = 2 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	t := &Tuner{cfg: cfg, percent: BasePercent, done: make(chan struct{}), samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	t.arm()
	go t.watchIdle()
	return t
}

// watchIdle samples allocation every Tick and releases memory when a busy
// period has given way to quiet.
func (t *Tuner) watchIdle() {
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(allocs)
	last, lastAt := value(allocs[0]), time.Now()
	tick := time.NewTicker(t.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			metrics.Read(allocs)
			cur := value(allocs[0])
			t.mu.Lock()
			release := !t.stopped && t.idle.step(cur-last, now.Sub(lastAt), t.cfg.QuietRate, t.cfg.IdleRelease)
			if release {
				// The release's own collection must not count as the
				// second of two close cycles, which would raise GOGC again.
				t.lastGC = time.Time{}
				if t.percent != BasePercent {
					t.percent = BasePercent
					debug.SetGCPercent(BasePercent)
				}
			}
			t.mu.Unlock()
			if release {
				// One collection and a scavenge of the free heap: a few
				// milliseconds, once per burst.
				debug.FreeOSMemory()
				t.mu.Lock()
				t.releases++
				t.mu.Unlock()
			}
			last, lastAt = cur, now
		}
	}
}

func (t *Tuner) arm() {
	s := &sentinel{}
	runtime.AddCleanup(s, func(t *Tuner) { t.cycle() }, t)
}

// cycle runs once after each collection, on the runtime's cleanup goroutine.
func (t *Tuner) cycle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.cycles++
	now := time.Now()
	busy := !t.lastGC.IsZero() && now.Sub(t.lastGC) < t.cfg.BusyGap
	t.lastGC = now
	want := BasePercent
	if busy {
		metrics.Read(t.samples)
		want = Percent(t.cfg.Floor, value(t.samples[0]), value(t.samples[1])+value(t.samples[2]), t.cfg.MaxPercent)
	}
	if want != t.percent {
		debug.SetGCPercent(want)
		t.percent = want
	}
	t.arm()
}

func value(s metrics.Sample) uint64 {
	if s.Value.Kind() == metrics.KindUint64 {
		return s.Value.Uint64()
	}
	return 0
}

// Percent is the GOGC that puts the next collection at floor for a live
// heap and the other memory the collector scans (stacks, globals): Go's
// goal is live + (live + roots) × GOGC/100. It is never below BasePercent
// and never above max.
func Percent(floor, live, roots uint64, max int) int {
	scanned := live + roots
	if scanned == 0 || live >= floor {
		return BasePercent
	}
	p := (floor - live) * 100 / scanned
	switch {
	case p <= BasePercent:
		return BasePercent
	case p >= uint64(max):
		return max
	}
	return int(p)
}

// Stop ends the tuning and puts GOGC back to BasePercent.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		close(t.done)
		debug.SetGCPercent(BasePercent)
	}
}

// Percent reports the GOGC the tuner set last.
func (t *Tuner) Percent() int {
	if t == nil {
		return BasePercent
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}
