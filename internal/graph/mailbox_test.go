package graph

import (
	"context"
	"runtime"
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
