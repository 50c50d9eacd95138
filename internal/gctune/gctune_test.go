package gctune

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name               string
		floor, live, roots uint64
		want               int
	}{
		{"small heap reaches the floor", 16 * mb, 1 * mb, 0, 1500},
		{"roots count as scanned memory", 16 * mb, 1 * mb, 1 * mb, 750},
		{"capped", 64 * mb, 1 * mb, 0, 2000},
		{"large heap: Go's default already reaches the floor", 16 * mb, 10 * mb, 0, BasePercent},
		{"live above the floor", 16 * mb, 40 * mb, 0, BasePercent},
		{"nothing measured", 16 * mb, 0, 0, BasePercent},
	} {
		if got := Percent(tc.floor, tc.live, tc.roots, 2000); got != tc.want {
			t.Errorf("%s: Percent = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestOffWhenGOGCIsSetOrFloorIsZero(t *testing.T) {
	set := func(string) (string, bool) { return "100", true }
	unset := func(string) (string, bool) { return "", false }
	if Start(Config{Floor: 1 << 20}, set) != nil {
		t.Fatal("tuner started although the operator set GOGC")
	}
	if Start(Config{}, unset) != nil {
		t.Fatal("tuner started with a zero floor")
	}
	var none *Tuner
	none.Stop()
	if none.Percent() != BasePercent {
		t.Fatal("nil tuner")
	}
}

var sink []byte

// churn allocates n bytes of garbage in 64 KiB pieces and returns the
// collections that ran meanwhile.
func churn(n int) uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	for i := 0; i < n/(64<<10); i++ {
		sink = make([]byte, 64<<10)
	}
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// The same volume of garbage costs far fewer collections with the tuner on,
// and GOGC is Go's default again once it stops. Counts, not times.
func TestFewerCollectionsWhileBusy(t *testing.T) {
	runtime.GC()
	without := churn(256 << 20)

	tu := Start(Config{Floor: 64 << 20, BusyGap: time.Minute}, func(string) (string, bool) { return "", false })
	runtime.GC() // first cycle: only a time stamp
	runtime.GC() // second, right after: busy
	deadline := time.Now().Add(10 * time.Second)
	for tu.Percent() == BasePercent && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond) // cleanups run on their own goroutine
	}
	if tu.Percent() <= BasePercent || gogc() != uint64(tu.Percent()) {
		tu.Stop()
		t.Fatalf("GOGC not raised: tuner %d, runtime %d", tu.Percent(), gogc())
	}
	with := churn(256 << 20)
	tu.Stop()
	t.Logf("collections for 256 MiB of garbage: %d without the tuner, %d with a 64 MiB floor (GOGC %d)", without, with, tu.Percent())
	if with*3 > without {
		t.Fatalf("%d collections with the tuner, %d without: expected at least 3 times fewer", with, without)
	}
	if gogc() != BasePercent {
		t.Fatalf("GOGC %d after Stop, want %d", gogc(), BasePercent)
	}
}

// An idle process (cycles far apart) keeps Go's default.
func TestIdleKeepsDefault(t *testing.T) {
	tu := Start(Config{Floor: 64 << 20, BusyGap: time.Nanosecond}, func(string) (string, bool) { return "", false })
	defer tu.Stop()
	start := tu.cycleCount()
	for i := 0; i < 5 || tu.cycleCount() < start+3; i++ {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
		if i > 5000 {
			t.Fatal("cleanups did not run")
		}
	}
	if tu.Percent() != BasePercent || gogc() != BasePercent {
		t.Fatalf("GOGC raised for cycles further apart than BusyGap: tuner %d, runtime %d", tu.Percent(), gogc())
	}
}

func (t *Tuner) cycleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cycles
}

func TestIdleStep(t *testing.T) {
	const quiet, release = 1 << 20, 2 * time.Second
	var s idleState
	steps := []struct {
		allocated uint64
		want      bool
	}{
		{0, false},         // quiet from the start: nothing to give back
		{0, false},         //
		{0, false},         //
		{64 << 20, false},  // busy
		{512 << 10, false}, // quiet for 1 s
		{8 << 20, false},   // busy again: quiet starts over
		{100, false},       // 1 s
		{100, true},        // 2 s after busy: release
		{100, false},       // still quiet: once per burst
		{100, false},
		{2 << 20, false}, // busy
		{0, false},
		{0, true},
	}
	for i, st := range steps {
		if got := s.step(st.allocated, time.Second, quiet, release); got != st.want {
			t.Fatalf("step %d (%d bytes): release %v, want %v", i, st.allocated, got, st.want)
		}
	}
	if s.step(1<<30, 0, quiet, release) {
		t.Fatal("no time passed")
	}
}

// After a burst under a raised GOGC, quiet brings GOGC back to Go's default
// and the free heap back to the operating system, once.
func TestMemoryGoesBackAfterABurst(t *testing.T) {
	tu := Start(Config{Floor: 64 << 20, BusyGap: time.Minute, Tick: 20 * time.Millisecond, IdleRelease: 100 * time.Millisecond},
		func(string) (string, bool) { return "", false })
	defer tu.Stop()
	runtime.GC()
	runtime.GC()
	deadline := time.Now().Add(10 * time.Second)
	for tu.Percent() == BasePercent && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if tu.Percent() == BasePercent {
		t.Fatal("GOGC not raised")
	}
	churn(256 << 20)
	for tu.releaseCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tu.releaseCount() != 1 {
		t.Fatalf("%d releases after the burst", tu.releaseCount())
	}
	free := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(free)
	if gogc() != BasePercent || tu.Percent() != BasePercent {
		t.Fatalf("GOGC %d (tuner %d) after the release", gogc(), tu.Percent())
	}
	if f := free[0].Value.Uint64(); f > 8<<20 {
		t.Fatalf("%d MiB of free heap kept from the operating system", f>>20)
	}
	time.Sleep(200 * time.Millisecond)
	if n := tu.releaseCount(); n != 1 {
		t.Fatalf("%d releases while quiet, want 1", n)
	}
}

func (t *Tuner) releaseCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.releases
}
