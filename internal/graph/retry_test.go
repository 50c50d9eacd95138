package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

func TestDefaultRetryPolicy(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	timeout := &attemptTimeoutError{timeout: time.Second, cause: context.DeadlineExceeded}
	tooLarge := connerr.Final(connerr.CodeResponseTooLarge, "x")
	get, post := http.MethodGet, http.MethodPost
	for _, tc := range []struct {
		method  string
		status  int
		err     error
		attempt int
		send    bool
		retry   bool
		reason  string
	}{
		{get, 200, nil, 1, false, false, ""},
		{get, 404, nil, 1, false, false, ""},
		{get, 400, nil, 1, false, false, ""},
		{get, 401, nil, 1, false, false, ""},
		{get, 429, nil, 1, false, true, "429"},
		{get, 429, nil, 3, false, true, "429"},
		{get, 429, nil, DefaultMaxAttempts, false, false, ""},
		{get, 503, nil, 1, false, true, "503"},
		{get, 504, nil, 1, false, true, "504"},
		{get, 502, nil, 1, false, true, "502"},
		{get, 500, nil, 1, false, false, ""},
		{get, 0, timeout, 1, false, true, "timeout"},
		{get, 0, reset, 1, false, true, "connection"},
		{get, 0, io.ErrUnexpectedEOF, 1, false, true, "connection"},
		{get, 0, refused, 1, false, true, "connect"},
		{get, 0, tooLarge, 1, false, false, ""},
		{get, 0, context.Canceled, 1, false, false, ""},
		// sendMail
		{post, 429, nil, 1, true, true, "429"},
		{post, 503, nil, 1, true, true, "503"},
		{post, 0, refused, 1, true, true, "connect"},
		{post, 0, &net.DNSError{Err: "no such host", Name: "graph"}, 1, true, true, "connect"},
		{post, 504, nil, 1, true, false, ""},
		{post, 502, nil, 1, true, false, ""},
		{post, 500, nil, 1, true, false, ""},
		{post, 0, timeout, 1, true, false, ""},
		{post, 0, reset, 1, true, false, ""},
		{post, 0, fmt.Errorf("wrapped: %w", timeout), 1, true, false, ""},
		{post, 0, &attemptTimeoutError{timeout: time.Second, cause: &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}}, 1, true, true, "connect"},
		// other POSTs (createMailFolder) are not idempotent either
		{post, 504, nil, 1, false, false, ""},
		{post, 0, timeout, 1, false, false, ""},
		{post, 429, nil, 1, false, true, "429"},
	} {
		o := Outcome{Method: tc.method, Status: tc.status, Err: tc.err}
		retry, reason := DefaultRetryPolicy(o, tc.attempt, tc.send)
		if retry != tc.retry || reason != tc.reason {
			t.Errorf("%s %d %v attempt %d send %v: got (%v, %q), want (%v, %q)",
				tc.method, tc.status, tc.err, tc.attempt, tc.send, retry, reason, tc.retry, tc.reason)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v  string
		d  time.Duration
		ok bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"-3", 0, false},
		{"7", 7 * time.Second, true},
		{" 120 ", 120 * time.Second, true},
		{"99999999999999", 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, false},
		{"soon", 0, false},
	} {
		d, ok := RetryAfter(http.Header{"Retry-After": {tc.v}}, now)
		if d != tc.d || ok != tc.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tc.v, d, ok, tc.d, tc.ok)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	now := time.Now()
	if d := DefaultBackoff(Outcome{Status: 429, Header: http.Header{"Retry-After": {"3"}}}, 5, now); d != 3*time.Second {
		t.Errorf("Retry-After ignored: %v", d)
	}
	for attempt := 1; attempt <= 10; attempt++ {
		hi := min(DefaultMinBackoff<<(attempt-1), DefaultMaxBackoff)
		for range 50 {
			d := DefaultBackoff(Outcome{Status: 503, Header: http.Header{}}, attempt, now)
			if d < hi/2 || d >= hi {
				t.Fatalf("attempt %d: %v not in [%v, %v)", attempt, d, hi/2, hi)
			}
		}
	}
}

func TestClassify(t *testing.T) {
	if classify(fmt.Errorf("x: %w", errors.New("boom"))) != errConnection {
		t.Error("unknown transport error should count as a failed connection")
	}
	if classify(syscall.ECONNREFUSED) != errNotSent {
		t.Error("ECONNREFUSED")
	}
}
