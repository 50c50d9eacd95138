package graph

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

// fakeCreds hands out numbered tokens and records invalidations.
type fakeCreds struct {
	mu          sync.Mutex
	n           int
	invalidated []string
	err         error
}

func (f *fakeCreds) Token(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	if f.n == 0 {
		f.n = 1
	}
	return "tok-secret-" + string(rune('0'+f.n)), nil
}

func (f *fakeCreds) Invalidate(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalidated = append(f.invalidated, token)
	f.n++
	return true
}

// fakeClock moves only when slept on, so that tests never wait for a
// Retry-After or a backoff.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	f.slept = append(f.slept, d)
	return nil
}

func (f *fakeClock) total() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s time.Duration
	for _, d := range f.slept {
		s += d
	}
	return s
}

// server is an httptest server that counts requests and answers through a
// replaceable handler.
type server struct {
	*httptest.Server
	count atomic.Int64
	mu    sync.Mutex
	reqs  []*http.Request
}

func newServer(t testing.TB, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count.Add(1)
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func newTestClient(t testing.TB, base string, mod ...func(*Config)) (*Client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg := Config{BaseURL: base + "/v1.0", Now: clk.Now, Sleep: clk.Sleep, Redactor: &redact.Set{}}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func asConnErr(t testing.TB, err error) *connerr.Error {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	ce, ok := err.(*connerr.Error)
	if !ok {
		t.Fatalf("error is %T, not *connerr.Error: %v", err, err)
	}
	return ce
}

func graphErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "req-123")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"` + msg + `","innerError":{"request-id":"req-123"}}}`))
}

// throttledOnce answers the first request with Graph's 429 and Retry-After,
// and every later one with then.
func throttledOnce(retryAfter string, then http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAfter)
			graphErr(w, 429, "ApplicationThrottled", "over its MailboxConcurrency limit")
			return
		}
		then(w, r)
	}
}

func okJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	_, _ = w.Write([]byte(body))
}

// jsonBody is the decoded body of a response whose JSON must be valid.
func jsonBody(t testing.TB, r *Response) any {
	t.Helper()
	b, err := r.JSONBody()
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return b
}
