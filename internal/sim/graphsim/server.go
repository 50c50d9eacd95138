// Package graphsim is an in-process stand-in for the Microsoft Graph v1.0 mail
// endpoints (folders, messages, sendMail) with Graph's error shapes, paging,
// OData query options, per-mailbox concurrency throttling, fault injection
// and a request log. End-to-end tests, benchmarks and the sandbox run the
// connector against it instead of graph.microsoft.com.
package graphsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTokenExpired and ErrTokenInvalid are what a WithTokenCheck function
// returns to make the server refuse a bearer token the way Graph does.
var (
	ErrTokenExpired = errors.New("graphsim: access token expired")
	ErrTokenInvalid = errors.New("graphsim: access token invalid")
)

// Option configures a Server.
type Option func(*options)

type options struct {
	tokenCheck      func(string) error
	mailboxConc     int
	throttleAfter   time.Duration
	latency         time.Duration
	maxRequestBytes int64
	logEntries      int
	logBodyBytes    int
	addr            string
	folderExists    int
}

func (o *options) folderExistsStatus() int {
	if o.folderExists == 0 {
		return http.StatusConflict
	}
	return o.folderExists
}

// WithFolderExistsStatus sets the status of the ErrorFolderExists answer:
// Graph has been seen answering both 409 (the default here) and 400.
func WithFolderExistsStatus(status int) Option {
	return func(o *options) { o.folderExists = status }
}

// WithTokenCheck decides about every bearer token. Return ErrTokenExpired or
// ErrTokenInvalid (any other error counts as invalid) to answer 401. Without
// it every non-empty bearer token is accepted.
func WithTokenCheck(check func(token string) error) Option {
	return func(o *options) { o.tokenCheck = check }
}

// WithMailboxConcurrency sets how many requests per mailbox may be in flight;
// the next one is answered 429 ApplicationThrottled. Graph's limit is 4.
// n <= 0 disables the limit.
func WithMailboxConcurrency(n int) Option {
	return func(o *options) { o.mailboxConc = n }
}

// WithThrottleRetryAfter sets the Retry-After of concurrency 429s (whole
// seconds, rounded up; default 1 s).
func WithThrottleRetryAfter(d time.Duration) Option {
	return func(o *options) { o.throttleAfter = d }
}

// WithLatency adds d of processing time to every admitted request, so that
// benchmarks see requests overlap as they would against the real service.
func WithLatency(d time.Duration) Option {
	return func(o *options) { o.latency = d }
}

// WithMaxRequestBytes sets the request body size above which the server
// answers 413 (default 4 MB, Graph's practical limit).
func WithMaxRequestBytes(n int64) Option {
	return func(o *options) { o.maxRequestBytes = n }
}

// WithRequestLog bounds the request log: the newest entries are kept (default
// 10000; <= 0 keeps all) and each body is cut at bodyBytes (default 64 KiB;
// <= 0 keeps whole bodies). Delivered messages keep their attachments whole
// (Messages), so tests rarely need whole bodies here. A benchmark pushing millions of sends would
// otherwise hold every body in memory.
func WithRequestLog(entries, bodyBytes int) Option {
	return func(o *options) { o.logEntries, o.logBodyBytes = entries, bodyBytes }
}

// WithListenAddr binds a fixed loopback address (e.g. "127.0.0.1:8089" for
// the sandbox) instead of an ephemeral port.
func WithListenAddr(addr string) Option {
	return func(o *options) { o.addr = addr }
}

// Stats are counters over the server's lifetime (ResetRequests clears them).
type Stats struct {
	Requests     int
	Throttled429 int
	// MaxConcurrentPerMailbox is the highest number of admitted requests seen
	// in flight at once for any one mailbox.
	MaxConcurrentPerMailbox int
	// Faults counts requests answered by an injected fault.
	Faults int
	// Sent counts accepted sendMail requests (including Apply faults).
	Sent int
}

// Request is one entry of the request log.
type Request struct {
	Method string
	// Path is the URL path after /v1.0, as the fault patterns see it.
	Path     string
	RawQuery string
	// Mailbox is the mailbox's user principal name when the path named a
	// known mailbox, else the {id} segment as sent.
	Mailbox string
	// Status is the answer's HTTP status; 0 while the request is still
	// being handled, or when the connection was cut or the client went away
	// before an answer.
	Status int
	// Authorization tells whether an Authorization header was present.
	Authorization bool
	At            time.Time
	Body          []byte
	BodyTruncated bool
	Throttled     bool
	// Fault tells whether an injected fault answered the request.
	Fault bool
	// ClientRequestID is the client-request-id header as sent.
	ClientRequestID string
}

// Server is a running simulated Graph endpoint.
type Server struct {
	opts    options
	ln      net.Listener
	srv     *http.Server
	baseURL string

	latency atomic.Int64

	mu        sync.RWMutex
	mailboxes map[string]*Mailbox // lower-case UPN and lower-case object id
	mbSeq     uint64

	faultMu    sync.Mutex
	faults     []*activeFault
	faultCount atomic.Int32

	logMu    sync.Mutex
	log      []*Request // slots filled at arrival, completed by publish
	logStart int        // ring start when the log is full

	nRequests  atomic.Int64
	nThrottled atomic.Int64
	nFaults    atomic.Int64
	nSent      atomic.Int64
	maxConc    atomic.Int64

	idSeq atomic.Uint64
}

// New starts a server on 127.0.0.1 with an ephemeral port (or the address of
// WithListenAddr).
func New(opts ...Option) (*Server, error) {
	o := options{
		mailboxConc:     4,
		throttleAfter:   time.Second,
		maxRequestBytes: 4 << 20,
		logEntries:      10000,
		logBodyBytes:    64 << 10,
		addr:            "127.0.0.1:0",
	}
	for _, opt := range opts {
		opt(&o)
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, fmt.Errorf("graphsim: listen address %q: %w", o.addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("graphsim: listen address %q is not a loopback address", o.addr)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("graphsim: listen: %w", err)
	}
	s := &Server{
		opts:      o,
		ln:        ln,
		mailboxes: map[string]*Mailbox{},
	}
	s.latency.Store(int64(o.latency))
	s.baseURL = "http://" + ln.Addr().String() + "/v1.0"
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Keep the benchmark's connections warm; the default idle handling is fine otherwise.
		IdleTimeout: 2 * time.Minute,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the base URL including /v1.0, e.g. http://127.0.0.1:PORT/v1.0.
func (s *Server) URL() string { return s.baseURL }

// Close stops the server and drops open connections; requests waiting on
// latency see their context cancelled.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

// SetLatency changes the per-request latency while the server runs.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:                int(s.nRequests.Load()),
		Throttled429:            int(s.nThrottled.Load()),
		MaxConcurrentPerMailbox: int(s.maxConc.Load()),
		Faults:                  int(s.nFaults.Load()),
		Sent:                    int(s.nSent.Load()),
	}
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	out := make([]Request, 0, len(s.log))
	for _, r := range s.log[s.logStart:] {
		out = append(out, *r)
	}
	for _, r := range s.log[:s.logStart] {
		out = append(out, *r)
	}
	return out
}

// ResetRequests clears the request log and the counters.
func (s *Server) ResetRequests() {
	s.logMu.Lock()
	s.log, s.logStart = nil, 0
	s.logMu.Unlock()
	s.nRequests.Store(0)
	s.nThrottled.Store(0)
	s.nFaults.Store(0)
	s.nSent.Store(0)
	s.maxConc.Store(0)
}

// record logs a request on arrival, so that a request still being handled
// (Status 0) is already visible; publish completes its slot.
func (s *Server) record(r Request) *Request {
	p := &r
	s.logMu.Lock()
	defer s.logMu.Unlock()
	max := s.opts.logEntries
	if max <= 0 || len(s.log) < max {
		s.log = append(s.log, p)
		return p
	}
	s.log[s.logStart] = p
	s.logStart = (s.logStart + 1) % max
	return p
}

// publish copies what the handler learnt into the request's slot (which
// may have left the ring already; then nobody sees it).
func (s *Server) publish(slot *Request, r Request) {
	if slot == nil {
		return
	}
	s.logMu.Lock()
	*slot = r
	s.logMu.Unlock()
}

func retryAfterSeconds(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return strconv.FormatInt(secs, 10)
}

// newGUID returns a random-looking but unique GUID; uniqueness matters more
// than randomness here, so a counter feeds it.
func (s *Server) newGUID() string {
	n := s.idSeq.Add(1)
	var b [16]byte
	fillPseudo(b[:], n)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	// The node field carries the counter: unique for 2^48 ids.
	for k := 0; k < 6; k++ {
		b[15-k] = byte(n >> (8 * k))
	}
	const hexd = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexd[c>>4], hexd[c&0xf]
		j += 2
	}
	return string(out[:])
}

// fillPseudo fills b with splitmix64 output seeded by n, so that ids look
// random; callers put the counter itself into the id for uniqueness.
func fillPseudo(b []byte, n uint64) {
	x := n
	for i := 0; i < len(b); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		for k := 0; k < 8 && i+k < len(b); k++ {
			b[i+k] = byte(z >> (8 * k))
		}
	}
}

func lower(s string) string { return strings.ToLower(s) }
