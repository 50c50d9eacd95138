package graphsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	contentTypeJSON = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
	agsDiagnostic   = `{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"GRAPHSIM","ADSiteName":"LOC"}}`
)

// reqCtx carries one request through the pipeline.
type reqCtx struct {
	s         *Server
	w         http.ResponseWriter
	r         *http.Request
	rec       *Request
	body      []byte
	tooLarge  bool
	requestID string
	clientID  string
	base      string   // http://host/v1.0 as the client addressed us
	rel       string   // path after /v1.0
	segs      []string // rel split on '/', unescaped
	rawSegs   []string // rel split on '/', as sent
	mb        *Mailbox
	wrote     bool
	logSlot   *Request // nil: not logged (Fault.Apply's silent run)
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.nRequests.Add(1)
	rec := Request{
		Method:          r.Method,
		Path:            r.URL.Path,
		RawQuery:        r.URL.RawQuery,
		Authorization:   r.Header.Get("Authorization") != "",
		At:              time.Now(),
		ClientRequestID: r.Header.Get("client-request-id"),
	}
	rc := &reqCtx{s: s, w: w, r: r, rec: &rec, requestID: s.newGUID(), logSlot: s.record(rec)}
	defer func() { s.publish(rc.logSlot, rec) }()

	rc.clientID = rec.ClientRequestID
	if rc.clientID == "" {
		rc.clientID = rc.requestID
	}
	h := w.Header()
	h.Set("request-id", rc.requestID)
	h.Set("client-request-id", rc.clientID)
	h.Set("x-ms-ags-diagnostic", agsDiagnostic)
	h.Set("Cache-Control", "no-cache")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	rc.base = "http://" + r.Host + "/v1.0"

	rc.readBody()

	escaped := r.URL.EscapedPath()
	if escaped != "/v1.0" && !strings.HasPrefix(escaped, "/v1.0/") {
		rc.fail(&apiError{status: http.StatusBadRequest, code: "BadRequest", message: "Invalid version."})
		return
	}
	rc.rel = strings.TrimPrefix(r.URL.Path, "/v1.0")
	rec.Path = rc.rel
	rc.rawSegs = splitPath(strings.TrimPrefix(escaped, "/v1.0"))
	rc.segs = make([]string, len(rc.rawSegs))
	for i, seg := range rc.rawSegs {
		if u, err := url.PathUnescape(seg); err == nil {
			rc.segs[i] = u
		} else {
			rc.segs[i] = seg
		}
	}
	if len(rc.segs) >= 2 && strings.EqualFold(rc.segs[0], "users") {
		rec.Mailbox = rc.segs[1]
		if mb := s.Mailbox(rc.segs[1]); mb != nil {
			rc.mb = mb
			rec.Mailbox = mb.UPN
		}
	}

	if e := s.authenticate(r); e != nil {
		rc.fail(e)
		return
	}

	if rc.mb != nil {
		if !rc.mb.admit(int64(s.opts.mailboxConc), &s.maxConc) {
			s.nThrottled.Add(1)
			rec.Throttled = true
			rc.fail(&apiError{status: http.StatusTooManyRequests, code: "ApplicationThrottled",
				message: "Application is over its MailboxConcurrency limit.", retryAfter: retryAfterSeconds(s.opts.throttleAfter)})
			return
		}
		defer rc.mb.inflight.Add(-1)
	}

	if d := time.Duration(s.latency.Load()); d > 0 {
		if !sleepCtx(r.Context(), d) {
			return
		}
	}

	if s.faultCount.Load() > 0 {
		if f := s.matchFault(r.Method, rc.rel); f != nil {
			s.nFaults.Add(1)
			rec.Fault = true
			if rc.serveFault(f) {
				return
			}
			rec.Fault = false
		}
	}
	rc.route()
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (rc *reqCtx) readBody() {
	r := rc.r
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	max := rc.s.opts.maxRequestBytes
	// An oversized body is still read (up to a bound) before the 413: a
	// server that answers early and closes makes the client see a reset
	// instead of the answer.
	const drainLimit = 64 << 20
	if r.ContentLength > max {
		rc.tooLarge = true
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, drainLimit))
		return
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, max+1))
	if int64(len(b)) > max {
		rc.tooLarge = true
		b = b[:max]
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, drainLimit))
	}
	rc.body = b
	if lim := rc.s.opts.logBodyBytes; lim > 0 && len(b) > lim {
		rc.rec.Body, rc.rec.BodyTruncated = b[:lim:lim], true
	} else {
		rc.rec.Body = b
	}
}

// admit takes an in-flight slot unless limit slots are taken (limit <= 0:
// no limit), and keeps the highest admitted count in max.
func (mb *Mailbox) admit(limit int64, max interface {
	Load() int64
	CompareAndSwap(old, new int64) bool
}) bool {
	for {
		cur := mb.inflight.Load()
		if limit > 0 && cur >= limit {
			return false
		}
		if mb.inflight.CompareAndSwap(cur, cur+1) {
			for {
				m := max.Load()
				if cur+1 <= m || max.CompareAndSwap(m, cur+1) {
					return true
				}
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) authenticate(r *http.Request) *apiError {
	unauth := func(msg string) *apiError {
		return &apiError{status: http.StatusUnauthorized, code: "InvalidAuthenticationToken", message: msg}
	}
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return unauth("Access token is empty.")
	}
	if s.opts.tokenCheck == nil {
		return nil
	}
	switch err := s.opts.tokenCheck(token); {
	case err == nil:
		return nil
	case errors.Is(err, ErrTokenExpired):
		return unauth("Access token has expired or is not yet valid.")
	default:
		return unauth("Access token validation failure. Invalid audience.")
	}
}

// fail answers e in Graph's error envelope.
func (rc *reqCtx) fail(e *apiError) {
	if e.status == http.StatusUnauthorized {
		rc.w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	if e.retryAfter != "" {
		rc.w.Header().Set("Retry-After", e.retryAfter)
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"error":{"code":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.message)
	b = append(b, `,"innerError":{"date":`...)
	b = appendJSONString(b, time.Now().UTC().Format("2006-01-02T15:04:05"))
	b = append(b, `,"request-id":`...)
	b = appendJSONString(b, rc.requestID)
	b = append(b, `,"client-request-id":`...)
	b = appendJSONString(b, rc.clientID)
	b = append(b, "}}}"...)
	rc.write(e.status, "application/json", b)
}

func (rc *reqCtx) write(status int, contentType string, body []byte) {
	if rc.wrote {
		return
	}
	rc.wrote = true
	h := rc.w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rc.answered(status)
	rc.w.WriteHeader(status)
	if len(body) > 0 && rc.r.Method != http.MethodHead {
		_, _ = rc.w.Write(body)
	}
}

func (rc *reqCtx) writeJSON(status int, body []byte) { rc.write(status, contentTypeJSON, body) }

// answered completes the request's log entry before the answer is sent, so
// that a client holding the answer finds it complete in Requests().
func (rc *reqCtx) answered(status int) {
	rc.rec.Status = status
	rc.s.publish(rc.logSlot, *rc.rec)
}

// contextURL is the @odata.context of a collection or entity under the user.
func (rc *reqCtx) contextURL(suffix string) string {
	return rc.base + "/$metadata#users('" + url.QueryEscape(rc.segs[1]) + "')" + suffix
}

// discardWriter runs a handler for its side effects only (Fault.Apply).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func getBuf() *[]byte { p := bufPool.Get().(*[]byte); *p = (*p)[:0]; return p }
func putBuf(p *[]byte) {
	if cap(*p) <= 4<<20 {
		bufPool.Put(p)
	}
}
