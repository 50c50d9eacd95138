package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// cloneWithBody copies req for one more pass through the inner layers, with
// a fresh body: an attempt's transport consumes and closes the body it got.
func cloneWithBody(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	return r, nil
}

func discard(resp *http.Response) {
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
}

// retryTransport repeats a call as RetryPolicy says, waiting as Backoff says,
// never past the caller's deadline.
type retryTransport struct {
	next http.RoundTripper
	c    *Client
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	defer closeBody(req)
	ctx := req.Context()
	ci := callFrom(ctx)
	cfg := &t.c.cfg
	for attempt := 1; ; attempt++ {
		// The first attempt can take req as it is (its body is unread);
		// later ones need a copy with a fresh body.
		r := req
		if attempt > 1 {
			var err error
			if r, err = cloneWithBody(req); err != nil {
				return nil, err
			}
		}
		ci.attempts++
		ci.attempt = attempt
		resp, err := t.next.RoundTrip(r)
		v, ok := ci.takeVerdict()
		if !ok {
			// The attempt ended before reaching the mailbox's slot (throttle
			// beyond the deadline, caller gone): nothing to throttle.
			v = t.c.judge(req.Method, attempt, ci.send, resp, err)
		}
		if !v.retry && !v.throttle {
			return resp, err
		}
		wait := v.wait
		if v.throttle {
			ci.minBackoff = max(ci.minBackoff, wait)
		}
		if !v.retry {
			return resp, err
		}
		if deadline, ok := ctx.Deadline(); ok && v.at.Add(wait).After(deadline) {
			// Waiting would outlive the job: hand the job back with a
			// backoff of at least what Graph asked for.
			ci.minBackoff = max(ci.minBackoff, wait)
			return resp, err
		}
		cfg.Metrics.GraphRetry(v.reason)
		t.c.log.Debug("graph request retried",
			zap.String("reason", v.reason), zap.Int("attempt", attempt), zap.Duration("wait", wait),
			zap.String("mailbox", ci.userID))
		if !v.throttle {
			// Throttle waits happen at the mailbox gate, where they also
			// hold back other jobs; other backoffs are this call's own.
			if serr := cfg.Sleep(ctx, wait); serr != nil {
				return resp, err
			}
		}
		discard(resp)
	}
}

// mailboxTransport holds a request until its mailbox is no longer throttled
// and one of the mailbox's slots is free.
type mailboxTransport struct {
	next http.RoundTripper
	c    *Client
}

func (t *mailboxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	ci := callFrom(ctx)
	ms := t.c.mailboxes
	mb := ms.ref(ci.mailbox)
	defer ms.unref(ci.mailbox, mb)
	ci.onWire = false
	for {
		now := t.c.cfg.Now()
		if wait := ms.notBefore(mb).Sub(now); wait > 0 {
			if deadline, ok := ctx.Deadline(); ok && now.Add(wait).After(deadline) {
				closeBody(req)
				ci.minBackoff = max(ci.minBackoff, wait)
				e := connerr.New("429", "mailbox %s is throttled by Graph for another %s, beyond the job's deadline; the request was not sent",
					ci.userID, wait.Round(time.Second))
				e.MinBackoff = ci.minBackoff
				return nil, e
			}
			if err := t.c.cfg.Sleep(ctx, wait); err != nil {
				closeBody(req)
				return nil, err
			}
			continue
		}
		if err := mb.acquire(ctx); err != nil {
			closeBody(req)
			return nil, err
		}
		if ms.notBefore(mb).After(t.c.cfg.Now()) {
			// Another job got throttled while we waited for the slot.
			mb.release()
			continue
		}
		break
	}
	defer mb.release()
	ci.onWire = true
	resp, err := t.next.RoundTrip(req)
	// The verdict is reached while the slot is held: a 429 must throttle the
	// mailbox before a waiter can take the slot and send into the throttle.
	v := t.c.judge(req.Method, ci.attempt, ci.send, resp, err)
	if v.throttle {
		ms.throttle(ci.mailbox, v.at.Add(v.wait))
	}
	ci.verdict, ci.judged = v, true
	return resp, err
}

// verdict is what the client makes of one attempt.
type verdict struct {
	retry    bool
	reason   string // the retry metric's label
	throttle bool   // the whole mailbox waits, not only this call
	wait     time.Duration
	at       time.Time // when wait starts
}

// judge applies RetryPolicy and Backoff to one attempt's result. Backoff is
// asked once per attempt since it may draw jitter.
func (c *Client) judge(method string, attempt int, send bool, resp *http.Response, err error) verdict {
	o := Outcome{Method: method, Err: err}
	if resp != nil {
		o.Status = resp.StatusCode
		o.Header = resp.Header
		if resp.StatusCode >= 400 {
			o.GraphCode, _ = graphError(bodyBytes(resp))
		}
	}
	var v verdict
	v.retry, v.reason = c.cfg.Retry(o, attempt, send)
	v.throttle = throttles(o)
	if v.retry || v.throttle {
		v.at = c.cfg.Now()
		v.wait = c.cfg.Backoff(o, attempt, v.at)
	}
	return v
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// observeTransport counts and logs every attempt.
type observeTransport struct {
	next http.RoundTripper
	c    *Client
}

func (t *observeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ci := callFrom(req.Context())
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	cfg := &t.c.cfg
	if err != nil {
		cfg.Metrics.GraphRequest(req.Method, "error")
		if ce := t.c.log.Check(zap.WarnLevel, "graph request failed"); ce != nil {
			ce.Write(
				zap.String("method", req.Method),
				zap.String("url", cfg.Redactor.String(req.URL.String())),
				zap.Int("attempt", ci.attempts),
				zap.Duration("duration", time.Since(start)),
				zap.String("error", cfg.Redactor.String(err.Error())))
		}
		return nil, err
	}
	cfg.Metrics.GraphRequest(req.Method, strconv.Itoa(resp.StatusCode))
	lvl := zap.DebugLevel
	msg := "graph request"
	if resp.StatusCode >= 400 {
		lvl, msg = zap.WarnLevel, "graph request answered with an error"
	}
	if ce := t.c.log.Check(lvl, msg); ce != nil {
		fields := []zap.Field{
			zap.String("method", req.Method),
			zap.String("url", cfg.Redactor.String(req.URL.String())),
			zap.Int("status", resp.StatusCode),
			zap.String("request-id", resp.Header.Get("request-id")),
			zap.String("client-request-id", resp.Header.Get("client-request-id")),
			zap.Int("attempt", ci.attempts),
			zap.Duration("duration", time.Since(start)),
		}
		if resp.StatusCode >= 400 {
			code, _ := graphError(bodyBytes(resp))
			fields = append(fields, zap.String("graph-code", code))
		}
		ce.Write(fields...)
	}
	return resp, nil
}

// attemptTransport bounds one attempt in time and its response in size, and
// buffers the body so that the slot is released only after it is read.
type attemptTransport struct {
	next http.RoundTripper
	c    *Client
}

func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	ctx, cancel := context.WithTimeout(parent, t.c.cfg.Timeout)
	defer cancel()
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, t.timeoutError(ctx, parent, err)
	}
	limit := t.c.cfg.MaxResponseBytes
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, t.tooLarge()
	}
	// One byte more than allowed tells "too large" from "exactly the cap",
	// whatever Content-Length claimed; a known length is read without
	// growing the buffer.
	hint := minBodyBuffer
	if resp.ContentLength >= 0 {
		hint = int(resp.ContentLength) + 1
	}
	buf := getBodyBuffer(hint)
	err = readInto(buf, io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		putBodyBuffer(buf)
		return nil, t.timeoutError(ctx, parent, fmt.Errorf("reading the response: %w", err))
	}
	if int64(len(*buf)) > limit {
		putBodyBuffer(buf)
		return nil, t.tooLarge()
	}
	b := *buf
	resp.Body = bufferedBody{Reader: bytes.NewReader(b), b: b, pooled: buf}
	resp.ContentLength = int64(len(b))
	return resp, nil
}

func (t *attemptTransport) timeoutError(ctx, parent context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
		return &attemptTimeoutError{timeout: t.c.cfg.Timeout, cause: err}
	}
	return err
}

func (t *attemptTransport) tooLarge() error {
	return connerr.Final(connerr.CodeResponseTooLarge,
		"Graph's response is larger than GRAPH_MAX_RESPONSE_BYTES (%d bytes); fetch less with $select, $top or a smaller operation.maxResults",
		t.c.cfg.MaxResponseBytes)
}
