package graph

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// Outcome is what one attempt produced, reduced to what a retry decision may
// look at. Exactly one of Status (> 0) and Err is set.
type Outcome struct {
	Method string
	Status int
	Header http.Header
	// GraphCode is error.code of Graph's error envelope, if the body had one.
	GraphCode string
	// Err is the transport error of an attempt that got no response.
	Err error
}

// RetryPolicy decides whether the call is tried again after attempt number
// attempt (1-based) ended with o. send marks a non-idempotent sendMail-like
// request. reason labels the o365_graph_retries_total metric. The policy must
// be a pure function: deadlines, the mailbox throttle and waiting are the
// client's business.
type RetryPolicy func(o Outcome, attempt int, send bool) (retry bool, reason string)

// BackoffFunc returns how long to wait before attempt+1 after o; now is the
// client's clock, for Retry-After given as an HTTP date.
type BackoffFunc func(o Outcome, attempt int, now time.Time) time.Duration

// DefaultMaxAttempts bounds the tries of one call inside a job; the job's own
// retries (with the task's retryBackoff) come on top.
const DefaultMaxAttempts = 4

// DefaultRetryPolicy retries what Graph documents as transient:
//   - 429 and 503 for every request: Graph refused the request before acting
//     on it, so even a send is safe to repeat;
//   - a connection that was never established (refused, DNS, dial timeout):
//     the request never left, so even a send is safe;
//   - for GET only: 502, 504, timeouts and connections dropped mid-request.
//
// A send (and a POST such as createMailFolder) is never repeated after a
// timeout, a dropped connection or 500/502/504, because Graph may have acted
// on it; sendMail has no idempotency key.
func DefaultRetryPolicy(o Outcome, attempt int, send bool) (bool, string) {
	if attempt >= DefaultMaxAttempts {
		return false, ""
	}
	if o.Err != nil {
		switch classify(o.Err) {
		case errNotSent:
			return true, "connect"
		case errTimeout:
			if o.Method == http.MethodGet && !send {
				return true, "timeout"
			}
		case errConnection:
			if o.Method == http.MethodGet && !send {
				return true, "connection"
			}
		}
		return false, ""
	}
	switch o.Status {
	case http.StatusTooManyRequests:
		return true, "429"
	case http.StatusServiceUnavailable:
		return true, "503"
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		if o.Method == http.MethodGet && !send {
			return true, strconv.Itoa(o.Status)
		}
	}
	return false, ""
}

// Backoff bounds of DefaultBackoff.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 30 * time.Second
)

// DefaultBackoff honours Retry-After (seconds or HTTP date); without it, it
// waits 1s, 2s, 4s, ... capped at 30s, each drawn from [d/2, d) so that
// callers throttled together do not come back together. It never returns
// less than 500ms: Graph asks never to retry immediately.
func DefaultBackoff(o Outcome, attempt int, now time.Time) time.Duration {
	if d, ok := RetryAfter(o.Header, now); ok {
		return d
	}
	d := DefaultMinBackoff
	for i := 1; i < attempt && d < DefaultMaxBackoff; i++ {
		d *= 2
	}
	d = min(d, DefaultMaxBackoff)
	return d/2 + rand.N(d/2)
}

// RetryAfter parses a Retry-After header (delta seconds or HTTP date). A
// zero or past value counts as absent, so that callers fall back to a real
// backoff instead of hammering the mailbox.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0, false
		}
		// A day is far beyond any job deadline; clamping keeps the
		// multiplication from overflowing on absurd values.
		return time.Duration(min(secs, 86400)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, 24*time.Hour), true
		}
	}
	return 0, false
}

// throttles reports whether an outcome means the whole mailbox must wait,
// not only this call: Graph's 429 is per app and mailbox, and a 503 with
// Retry-After asks the same.
func throttles(o Outcome) bool {
	if o.Err != nil {
		return false
	}
	if o.Status == http.StatusTooManyRequests {
		return true
	}
	return o.Status == http.StatusServiceUnavailable && o.Header.Get("Retry-After") != ""
}

type errKind int

const (
	errOther      errKind = iota
	errNotSent            // the connection was never established
	errTimeout            // the attempt ran out of time
	errConnection         // the connection failed after the request may have left
	errCanceled           // the caller gave up
)

// attemptTimeoutError marks an attempt that hit Config.Timeout while the
// caller's context was still alive.
type attemptTimeoutError struct {
	timeout time.Duration
	cause   error
}

func (e *attemptTimeoutError) Error() string {
	return "request timed out after " + e.timeout.String()
}
func (e *attemptTimeoutError) Unwrap() error { return e.cause }
func (e *attemptTimeoutError) Timeout() bool { return true }

func classify(err error) errKind {
	if err == nil {
		return errOther
	}
	// A failed dial comes first: even when the attempt's time ran out
	// while connecting, nothing was sent.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return errNotSent
	}
	var dns *net.DNSError
	if errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) {
		return errNotSent
	}
	var ate *attemptTimeoutError
	if errors.As(err, &ate) {
		return errTimeout
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	if errors.Is(err, context.Canceled) {
		return errCanceled
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTimeout
	}
	var ce *connerr.Error
	if errors.As(err, &ce) {
		return errOther
	}
	return errConnection
}
