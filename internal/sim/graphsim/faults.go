package graphsim

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Fault replaces the normal answer to matching requests. Faults are checked
// in the order they were injected; the first match answers.
type Fault struct {
	// Method matches the HTTP method ("" = any).
	Method string
	// Path is a regexp matched against the URL path after /v1.0, e.g.
	// `/users/[^/]+/sendMail$` ("" = any). InjectFault panics on a bad regexp.
	Path string

	// Status, Code and Message make a Graph error envelope. Body, when set,
	// is sent verbatim instead (e.g. malformed JSON). Status 0 with a Body
	// means 200.
	Status        int
	Code, Message string
	Body          []byte
	// RetryAfter is the Retry-After header value as sent ("2" or an HTTP date).
	RetryAfter string

	// Latency delays the answer; the wait ends early when the client goes
	// away. A fault with only Latency (no Status, Body, CutConnection or
	// OversizeBytes) delays the normal answer.
	Latency time.Duration
	// CutConnection closes the connection without any answer.
	CutConnection bool
	// OversizeBytes answers 200 with a valid JSON body of this many bytes.
	OversizeBytes int

	// Times is how many requests the fault answers (0 = until cleared).
	Times int
	// Apply performs the normal operation (e.g. the send) before answering
	// the fault: "504 but delivered".
	Apply bool
}

type activeFault struct {
	Fault
	re   *regexp.Regexp
	left int // remaining answers; -1 = unlimited
}

// InjectFault adds a fault.
func (s *Server) InjectFault(f Fault) {
	af := &activeFault{Fault: f, left: -1}
	if f.Path != "" {
		af.re = regexp.MustCompile(f.Path)
	}
	if f.Times > 0 {
		af.left = f.Times
	}
	s.faultMu.Lock()
	s.faults = append(s.faults, af)
	s.faultCount.Store(int32(len(s.faults)))
	s.faultMu.Unlock()
}

// ClearFaults removes all faults.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	s.faults = nil
	s.faultCount.Store(0)
	s.faultMu.Unlock()
}

func (s *Server) matchFault(method, path string) *Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i, af := range s.faults {
		if af.Method != "" && !strings.EqualFold(af.Method, method) {
			continue
		}
		if af.re != nil && !af.re.MatchString(path) {
			continue
		}
		f := af.Fault
		if af.left > 0 {
			af.left--
			if af.left == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
				s.faultCount.Store(int32(len(s.faults)))
			}
		}
		return &f
	}
	return nil
}

// serveFault answers f; false means the fault only delayed the request and
// normal handling goes on.
func (rc *reqCtx) serveFault(f *Fault) bool {
	if f.Latency > 0 && !sleepCtx(rc.r.Context(), f.Latency) {
		return true
	}
	answers := f.Status != 0 || f.Body != nil || f.CutConnection || f.OversizeBytes > 0
	if !answers {
		if f.Apply {
			rc.route()
			return true
		}
		return false
	}
	if f.Apply {
		shadow := *rc
		shadow.w = &discardWriter{}
		shadowRec := *rc.rec
		shadow.rec = &shadowRec
		shadow.logSlot = nil // logged once, with the fault's answer
		shadow.route()
	}
	switch {
	case f.CutConnection:
		rc.cut()
	case f.OversizeBytes > 0:
		rc.oversize(f.OversizeBytes)
	case f.Body != nil:
		if f.RetryAfter != "" {
			rc.w.Header().Set("Retry-After", f.RetryAfter)
		}
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		rc.writeJSON(status, f.Body)
	default:
		code, msg := f.Code, f.Message
		if code == "" {
			code = defaultCode(f.Status)
		}
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		rc.fail(&apiError{status: f.Status, code: code, message: msg, retryAfter: f.RetryAfter})
	}
	return true
}

func defaultCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceNotAvailable"
	case http.StatusGatewayTimeout:
		return "GatewayTimeout"
	case http.StatusBadGateway:
		return "BadGateway"
	case http.StatusInternalServerError:
		return "InternalServerError"
	case http.StatusNotFound:
		return "ErrorItemNotFound"
	case http.StatusForbidden:
		return "ErrorAccessDenied"
	case http.StatusUnauthorized:
		return "InvalidAuthenticationToken"
	}
	return "UnknownError"
}

func (rc *reqCtx) cut() {
	rc.wrote = true
	rc.rec.Status = 0
	conn, _, err := http.NewResponseController(rc.w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// oversize streams a syntactically valid JSON object of exactly n bytes (or
// the smallest such object when n is smaller).
func (rc *reqCtx) oversize(n int) {
	head := `{"@odata.context":"` + rc.base + `/$metadata#oversize","value":[],"padding":"`
	const tail = `"}`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	total := len(head) + pad + len(tail)
	rc.wrote = true
	h := rc.w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Content-Length", strconv.Itoa(total))
	rc.answered(http.StatusOK)
	rc.w.WriteHeader(http.StatusOK)
	if _, err := rc.w.Write([]byte(head)); err != nil {
		return
	}
	chunk := []byte(strings.Repeat("x", 32<<10))
	for pad > 0 {
		k := min(pad, len(chunk))
		if _, err := rc.w.Write(chunk[:k]); err != nil {
			return
		}
		pad -= k
	}
	_, _ = rc.w.Write([]byte(tail))
}
