package graph

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mailboxes holds, per mailbox, the concurrency slots shared by every job of
// the process and the time before which Graph asked us not to call it
// again. Entries exist only while someone uses the mailbox or while it is
// throttled, so that memory does not grow with the number of distinct
// mailboxes seen over months.
type mailboxes struct {
	perMailbox int
	now        func() time.Time

	mu      sync.Mutex
	m       map[string]*mailbox
	created int
}

type mailbox struct {
	sem       chan struct{}
	waiting   atomic.Int32 // callers blocked in acquire
	refs      int          // callers holding or waiting for a slot; guarded by mailboxes.mu
	notBefore time.Time    // guarded by mailboxes.mu
}

// acquire takes one of the mailbox's slots, or fails when ctx ends first.
func (mb *mailbox) acquire(ctx context.Context) error {
	select {
	case mb.sem <- struct{}{}:
		return nil
	default:
	}
	mb.waiting.Add(1)
	defer mb.waiting.Add(-1)
	select {
	case mb.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives the slot back. When a caller is waiting for it, the slot is
// the scarce resource: the waiter has been made runnable, and yielding lets
// it send its request now instead of after this goroutine's further work
// (mapping the response, completing the job, preparing the next job). With
// one busy mailbox this kept the slots busy 94 % of the time instead of 81 %.
func (mb *mailbox) release() {
	<-mb.sem
	if mb.waiting.Load() > 0 {
		runtime.Gosched()
	}
}

// sweepEvery is how many new entries trigger a pass over idle, throttled
// entries whose throttle has expired (the only ones release cannot drop).
const sweepEvery = 1024

func newMailboxes(perMailbox int, now func() time.Time) *mailboxes {
	return &mailboxes{perMailbox: perMailbox, now: now, m: map[string]*mailbox{}}
}

func mailboxKey(userID string) string { return strings.ToLower(userID) }

// ref returns the entry for key and counts the caller as its user until
// unref.
func (ms *mailboxes) ref(key string) *mailbox {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	mb := ms.m[key]
	if mb == nil {
		ms.created++
		if ms.created%sweepEvery == 0 {
			ms.sweepLocked()
		}
		mb = &mailbox{sem: make(chan struct{}, ms.perMailbox)}
		ms.m[key] = mb
	}
	mb.refs++
	return mb
}

func (ms *mailboxes) unref(key string, mb *mailbox) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	mb.refs--
	if mb.refs == 0 && !mb.notBefore.After(ms.now()) && ms.m[key] == mb {
		delete(ms.m, key)
	}
}

func (ms *mailboxes) sweepLocked() {
	now := ms.now()
	for k, mb := range ms.m {
		if mb.refs == 0 && !mb.notBefore.After(now) {
			delete(ms.m, k)
		}
	}
}

// throttle keeps every request to key from leaving before until. A shorter
// throttle never shortens a longer one that another job received.
func (ms *mailboxes) throttle(key string, until time.Time) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	mb := ms.m[key]
	if mb == nil {
		mb = &mailbox{sem: make(chan struct{}, ms.perMailbox)}
		ms.m[key] = mb
	}
	if until.After(mb.notBefore) {
		mb.notBefore = until
	}
}

func (ms *mailboxes) notBefore(mb *mailbox) time.Time {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return mb.notBefore
}

// ThrottledUntil reports until when requests to the mailbox are held back
// (zero when they are not); for tests and diagnostics.
func (c *Client) ThrottledUntil(userID string) time.Time {
	ms := c.mailboxes
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if mb := ms.m[mailboxKey(userID)]; mb != nil && mb.notBefore.After(ms.now()) {
		return mb.notBefore
	}
	return time.Time{}
}

func (ms *mailboxes) len() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return len(ms.m)
}
