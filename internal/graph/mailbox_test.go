package graph

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With one mailbox busy, its slots are the bottleneck: a released slot must
// go to a waiting request before the releasing goroutine carries on with its
// own work (the load test's one-mailbox scenario lost a fifth of its slot
// time to this). One P makes the order observable; the scheduler may still
// take its global queue first now and then, hence a majority, not all.
func TestReleasedSlotGoesToTheWaiterFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const trials = 20
	waiterFirst := 0
	for range trials {
		if releaseOrder(t) == "waiter" {
			waiterFirst++
		}
	}
	if waiterFirst < trials*3/4 {
		t.Errorf("the waiter ran first in %d of %d releases", waiterFirst, trials)
	}
}

// releaseOrder reports who ran first after a release: the waiter that got
// the slot or the goroutine that released it.
func releaseOrder(t *testing.T) string {
	t.Helper()
	mb := &mailbox{sem: make(chan struct{}, 1)}
	if err := mb.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	var first atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mb.acquire(context.Background()); err != nil {
			t.Error(err)
			return
		}
		first.CompareAndSwap(nil, "waiter")
		mb.release()
	}()
	for mb.waiting.Load() == 0 {
		runtime.Gosched()
	}
	// Long enough for the waiter to park on the full semaphore.
	time.Sleep(time.Millisecond)
	mb.release()
	first.CompareAndSwap(nil, "releaser")
	<-done
	return first.Load().(string)
}

func TestWaitersAreCounted(t *testing.T) {
	mb := &mailbox{sem: make(chan struct{}, 1)}
	if err := mb.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := mb.waiting.Load(); n != 0 {
		t.Fatalf("%d waiters counted for a free slot", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 2)
	go func() { got <- mb.acquire(context.Background()) }()
	go func() { got <- mb.acquire(ctx) }()
	waitFor(t, func() bool { return mb.waiting.Load() == 2 })
	cancel()
	if err := <-got; err == nil {
		t.Fatal("a canceled wait got the slot")
	}
	waitFor(t, func() bool { return mb.waiting.Load() == 1 })
	mb.release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := mb.waiting.Load(); n != 0 {
		t.Fatalf("%d waiters counted after the last one got its slot", n)
	}
	mb.release()
	if len(mb.sem) != 0 {
		t.Fatalf("%d slots still taken", len(mb.sem))
	}
}

// A request that waits for the slot of a request answered with 429 must not
// be sent before the Retry-After: the throttle has to be on the mailbox by
// the time the slot is free. One P makes the race window deterministic
// enough to catch: the release hands the slot straight to the waiter.
func TestWaiterDoesNotSendIntoAFreshThrottle(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for trial := range 10 {
		if early := throttleRace(t); early != "" {
			t.Fatalf("trial %d: %s", trial, early)
		}
	}
}

// throttleRace runs two calls to one mailbox with one slot; Graph answers the
// first with 429 Retry-After 7 once the second is waiting for the slot. It
// returns a description of any request sent inside the Retry-After.
func throttleRace(t *testing.T) string {
	t.Helper()
	answer := make(chan struct{})
	var n atomic.Int64
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-answer
			w.Header().Set("Retry-After", "7")
			graphErr(w, 429, "ApplicationThrottled", "over its MailboxConcurrency limit")
			return
		}
		okJSON(w, `{}`)
	})
	clk := newFakeClock()
	wire := &throttleWatch{next: http.DefaultTransport, now: clk.Now}
	gate := make(chan struct{})
	var sleepers atomic.Int32
	c, _ := newTestClient(t, s.URL, func(cfg *Config) {
		cfg.MailboxConcurrency = 1
		cfg.Now = clk.Now
		cfg.Transport = wire
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			sleepers.Add(1)
			<-gate
			return clk.Sleep(ctx, d)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results := make(chan error, 2)
	call := func() {
		_, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "u@x.com"})
		results <- err
	}
	go call()
	waitFor(t, func() bool { return n.Load() == 1 })
	go call()
	waitFor(t, func() bool { return waitersFor(c.mailboxes, "u@x.com") == 1 })
	close(answer)
	// Correct: both calls end up waiting out the throttle. Wrong: the second
	// got the slot before the throttle was set, and is done already.
	done := 0
	waitFor(t, func() bool {
		select {
		case err := <-results:
			if err != nil {
				t.Error(err)
			}
			done++
		default:
		}
		return int(sleepers.Load())+done == 2
	})
	close(gate)
	for ; done < 2; done++ {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	return wire.early()
}

func waitersFor(ms *mailboxes, key string) int32 {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if mb := ms.m[key]; mb != nil {
		return mb.waiting.Load()
	}
	return 0
}

// throttleWatch sits where requests leave for the wire and notes any that
// leaves while a 429 it has seen still holds.
type throttleWatch struct {
	next http.RoundTripper
	now  func() time.Time

	mu    sync.Mutex
	until time.Time
	found string
}

func (w *throttleWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	now := w.now()
	w.mu.Lock()
	if now.Before(w.until) && w.found == "" {
		w.found = fmt.Sprintf("a request left %s before the Retry-After ended", w.until.Sub(now))
	}
	w.mu.Unlock()
	resp, err := w.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		d, _ := RetryAfter(resp.Header, now)
		w.mu.Lock()
		w.until = w.now().Add(d)
		w.mu.Unlock()
	}
	return resp, err
}

func (w *throttleWatch) early() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.found
}
