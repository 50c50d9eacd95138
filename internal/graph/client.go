// Package graph is the Microsoft Graph HTTP client of the connector: built
// once per process, shared by every job. It owns everything that is about
// talking to Graph rather than about one operation: the base URL, bearer
// tokens, the per-mailbox concurrency limit and throttle, retries, timeouts,
// the response size cap, and turning Graph's answers into the contract's
// response object or *connerr.Error.
package graph

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
	"github.com/o365-mail-connector/o365-mail-connector/internal/odata"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

// Defaults of Config.
const (
	DefaultBaseURL            = "https://graph.microsoft.com/v1.0"
	DefaultTimeout            = 30 * time.Second
	DefaultMailboxConcurrency = 4
	DefaultMaxResponseBytes   = 3 << 20
)

// Config is plain data; New fills in the defaults.
type Config struct {
	// BaseURL is GRAPH_BASE_URL. Requests never go anywhere else: it is the
	// only source of scheme, host and path prefix.
	BaseURL string
	// Timeout bounds one attempt (connect, headers and body).
	Timeout time.Duration
	// MailboxConcurrency is the number of requests in flight per mailbox
	// (case-insensitive userId) across all jobs of the process.
	MailboxConcurrency int
	// MaxResponseBytes caps a response body; one byte more is
	// RESPONSE_TOO_LARGE.
	MaxResponseBytes int64

	Metrics  *metrics.Metrics
	Logger   *zap.Logger
	Redactor *redact.Set

	// Transport performs the HTTP exchange; nil is a tuned *http.Transport.
	Transport http.RoundTripper

	// Now and Sleep make time injectable for tests. Sleep must return
	// ctx.Err() when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	// Retry and Backoff default to DefaultRetryPolicy and DefaultBackoff.
	Retry   RetryPolicy
	Backoff BackoffFunc
}

// Client talks to Graph. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	baseStr string
	cfg     Config
	// rt is the layer chain below; requests go to it directly rather than
	// through an http.Client, which copied every request's headers for
	// redirects this client never follows.
	rt        http.RoundTripper
	mailboxes *mailboxes
	log       *zap.Logger
}

// New validates cfg and builds the client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := validateBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MailboxConcurrency <= 0 {
		cfg.MailboxConcurrency = DefaultMailboxConcurrency
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Retry == nil {
		cfg.Retry = DefaultRetryPolicy
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Transport == nil {
		cfg.Transport = defaultTransport()
	}
	c := &Client{
		base:      base,
		baseStr:   base.String(),
		cfg:       cfg,
		mailboxes: newMailboxes(cfg.MailboxConcurrency, cfg.Now),
		log:       cfg.Logger.Named("graph"),
	}
	// The chain, outermost first. Each layer sees one logical call or one
	// attempt as noted:
	//
	//   (do)     (call)    bearer token; on 401 InvalidAuthenticationToken
	//                      invalidates it and runs the chain once more
	//   retry    (call)    RetryPolicy/Backoff, Retry-After, mailbox throttle,
	//                      job deadline; never holds a mailbox slot while waiting
	//   mailbox  (attempt) waits out the mailbox's throttle, then takes one of
	//                      its slots until the body is read
	//   observe  (attempt) metrics and logs (request-id; never the token)
	//   attempt  (attempt) per-attempt timeout, response body cap and buffering
	//   Transport          the HTTP exchange
	//
	// Redirects are not followed (no http.Client above the chain: a 3xx
	// is an answer like any other) so a 3xx can never carry the token to
	// another host.
	var rt http.RoundTripper = cfg.Transport
	rt = &attemptTransport{next: rt, c: c}
	rt = &observeTransport{next: rt, c: c}
	rt = &mailboxTransport{next: rt, c: c}
	rt = &retryTransport{next: rt, c: c}
	c.rt = rt
	return c, nil
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256, // 128 concurrent jobs with room for retries
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BaseURL is the validated base URL without a trailing slash.
func (c *Client) BaseURL() string { return c.baseStr }

// MaxResponseBytes is the configured response cap; operations that merge
// pages hold the merged body to it as well.
func (c *Client) MaxResponseBytes() int64 { return c.cfg.MaxResponseBytes }

// Request is one Graph call below /users/{UserID}.
type Request struct {
	Method string
	// UserID is operation.userId; it becomes /users/{escaped}.
	UserID string
	// Path holds the segments after /users/{id}; each is path-escaped.
	Path []string
	// Query is encoded with spaces as %20 and OData's "$" kept literal.
	Query url.Values
	// Body is JSON-encoded when non-nil; a json.RawMessage is sent as is.
	Body any
	// Send marks a non-idempotent request (sendMail): it is retried only
	// when Graph cannot have acted on it (429, 503, connection refused).
	Send bool
}

// Do performs req. Errors are *connerr.Error.
func (c *Client) Do(ctx context.Context, creds Credentials, req Request) (*Response, error) {
	if err := ValidateUserID(req.UserID); err != nil {
		return nil, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var sb strings.Builder
	sb.Grow(len(c.baseStr) + 64)
	sb.WriteString(c.baseStr)
	sb.WriteString("/users/")
	sb.WriteString(url.PathEscape(req.UserID))
	for _, seg := range req.Path {
		if err := ValidateID("path segment", seg); err != nil {
			return nil, err
		}
		sb.WriteByte('/')
		sb.WriteString(url.PathEscape(seg))
	}
	if len(req.Query) > 0 {
		sb.WriteByte('?')
		encodeQuery(&sb, req.Query)
	}
	var body []byte
	switch b := req.Body.(type) {
	case nil:
	case json.RawMessage:
		body = b
	default:
		var err error
		if body, err = encodeJSON(b); err != nil {
			return nil, connerr.Final(connerr.CodeInvalidInput, "request body cannot be encoded as JSON: %v", err)
		}
	}
	return c.do(ctx, creds, method, req.UserID, sb.String(), body, req.Send)
}

// Follow GETs an @odata.nextLink verbatim. The link must lie under the
// configured base URL (same scheme, host and path prefix): Graph's answer
// must not be able to send the bearer token anywhere else. It must also
// stay in the job's mailbox (see inMailbox).
func (c *Client) Follow(ctx context.Context, creds Credentials, userID, nextLink string) (*Response, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	if err := c.checkLink(nextLink, userID); err != nil {
		return nil, err
	}
	return c.do(ctx, creds, http.MethodGet, userID, nextLink, nil, false)
}

func (c *Client) checkLink(link, userID string) error {
	refuse := func(why string) error {
		return connerr.Final("502", "Graph returned an @odata.nextLink that %s; not followed so that the token is only sent to %s", why, c.baseStr)
	}
	u, err := url.Parse(link)
	if err != nil {
		return refuse("is not a URL")
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) || u.User != nil {
		return refuse("points to another host")
	}
	if u.Path != c.base.Path && !strings.HasPrefix(u.Path, c.base.Path+"/") {
		return refuse("lies outside the base path")
	}
	if slices.ContainsFunc(strings.Split(u.Path, "/"), func(s string) bool { return s == "." || s == ".." }) {
		return refuse("contains dot segments")
	}
	if strings.ContainsFunc(link, isControl) {
		return refuse("contains control characters")
	}
	if !c.inMailbox(u.Path, userID) {
		return connerr.Final("502", "Graph returned an @odata.nextLink outside the mailbox %s; not followed", userID)
	}
	return nil
}

// inMailbox keeps paging inside the job's mailbox: the app token can read
// every mailbox of the tenant, so a link to another one (or to another
// resource) is refused. Graph writes the user segment as it was given, as
// users('...'), or possibly as the user's object id, which the worker
// cannot tell from another user's: a GUID is let through.
func (c *Client) inMailbox(path, userID string) bool {
	rest, ok := strings.CutPrefix(path, c.base.Path+"/users")
	if !ok || strings.Contains(rest, `\`) {
		return false
	}
	seg, tail, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	if strings.HasPrefix(rest, "('") {
		seg, tail, _ = strings.Cut(strings.TrimPrefix(rest, "('"), "')/")
	}
	return tail != "" && (strings.EqualFold(seg, userID) || isGUID(seg))
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// callInfo travels in the request context through the chain: what the
// layers need to know about the logical call, and what they report back.
type callInfo struct {
	userID  string
	mailbox string
	send    bool
	write   bool // not a GET: Graph acts on it
	creds   Credentials

	attempts   int           // attempts started so far, over every pass
	attempt    int           // the current attempt of this pass, as RetryPolicy counts
	minBackoff time.Duration // what Graph asked us to wait, for the job's backoff

	// onWire tells whether the last attempt got past the mailbox gate, so
	// that Graph may have received it.
	onWire bool

	// The mailbox layer's verdict on the attempt that just ended, for the
	// retry layer above it.
	verdict verdict
	judged  bool
}

func (ci *callInfo) takeVerdict() (verdict, bool) {
	v, ok := ci.verdict, ci.judged
	ci.verdict, ci.judged = verdict{}, false
	return v, ok
}

type callKey struct{}

func callFrom(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callKey{}).(*callInfo)
	return ci
}

func (c *Client) do(ctx context.Context, creds Credentials, method, userID, rawURL string, body []byte, send bool) (*Response, error) {
	if creds == nil {
		return nil, connerr.Final(connerr.CodeInvalidInput, "no credentials for the Graph request")
	}
	ci := &callInfo{userID: userID, mailbox: mailboxKey(userID), send: send, write: method != http.MethodGet, creds: creds}
	cctx := context.WithValue(ctx, callKey{}, ci)
	// Authentication wraps the whole chain: each pass is a new request
	// with the token set, which spares the chain a copy of every request.
	var resp *http.Response
	for pass := 1; ; pass++ {
		token, err := creds.Token(ctx)
		if err != nil {
			return nil, c.transportError(ctx, err, ci)
		}
		// auth adds the tokens it obtains; this also covers any other
		// Credentials implementation.
		c.cfg.Redactor.Add(token)
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		hreq, err := http.NewRequestWithContext(cctx, method, rawURL, rd)
		if err != nil {
			return nil, connerr.Final(connerr.CodeInvalidInput, "cannot build the Graph request: %s", c.cfg.Redactor.String(err.Error()))
		}
		hreq.Header.Set("Accept", "application/json")
		hreq.Header.Set("User-Agent", "o365-mail-connector")
		hreq.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			hreq.Header.Set("Content-Type", "application/json")
		}
		resp, err = c.rt.RoundTrip(hreq)
		if err == nil && resp == nil {
			err = errors.New("no response and no error from the HTTP transport")
		}
		if err != nil {
			return nil, c.transportError(ctx, err, ci)
		}
		if resp.StatusCode != http.StatusUnauthorized || pass > 1 {
			break
		}
		if code, _ := graphError(bodyBytes(resp)); code != "InvalidAuthenticationToken" {
			break
		}
		// A cached token that Graph no longer accepts (revoked, rotated
		// keys, clock skew): drop it and try once with a fresh one.
		if !creds.Invalidate(token) {
			break // the same token would go out again
		}
		c.cfg.Metrics.GraphRetry("token_rejected")
		c.log.Debug("graph token rejected, retrying with a new one", zap.String("mailbox", userID))
		discard(resp)
	}
	defer resp.Body.Close()
	bb, _ := resp.Body.(bufferedBody)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := c.statusError(resp, bb.b, ci)
		putBodyBuffer(bb.pooled) // statusError copied what it keeps
		return nil, err
	}
	decoded, rawJSON := decodeBody(resp.Header, bb.b)
	r := &Response{Status: resp.StatusCode, httpHeader: resp.Header, Body: decoded, Raw: rawJSON, Acted: ci.write}
	if rawJSON != nil {
		r.pooled = bb.pooled
	} else {
		putBodyBuffer(bb.pooled) // empty, or copied into a string
	}
	return r, nil
}

const maySend = "; the message may have been sent; not retried to avoid a duplicate"

func (c *Client) transportError(ctx context.Context, err error, ci *callInfo) *connerr.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// A transport given in Config may wrap its errors as http.Client
		// does. url.Error's text repeats the URL, query included; the cause
		// is enough and cannot leak a substituted secret from the query.
		err = ue.Err
	}
	var ce *connerr.Error
	if errors.As(err, &ce) {
		if ci.minBackoff > ce.MinBackoff {
			// The error may be shared: a failed token request answers
			// every job that waited for it with the same one.
			own := *ce
			own.MinBackoff = ci.minBackoff
			return &own
		}
		return ce
	}
	var e *connerr.Error
	kind := classify(err)
	switch kind {
	case errTimeout:
		if ctx.Err() != nil {
			e = connerr.New(connerr.CodeTimeout, "the job's deadline passed before Graph answered")
		} else {
			e = connerr.New(connerr.CodeTimeout, "Graph request timed out after %s", c.cfg.Timeout)
		}
	case errNotSent:
		e = connerr.New(connerr.CodeUnavailable, "cannot connect to Graph: %s", c.cfg.Redactor.String(err.Error()))
	case errCanceled:
		e = connerr.New(connerr.CodeUnavailable, "Graph request canceled")
	default:
		e = connerr.New(connerr.CodeUnavailable, "connection to Graph failed: %s", c.cfg.Redactor.String(err.Error()))
	}
	if ci.write && ci.onWire && (kind == errTimeout || kind == errConnection || kind == errCanceled) {
		e.MayHaveActed = true
		if ci.send {
			e.Message += maySend
		}
	}
	if ci.attempts > 1 {
		e.Message += fmt.Sprintf(" (gave up after %d attempts)", ci.attempts)
	}
	e.MinBackoff = ci.minBackoff
	e.Cause = err
	return e
}

func (c *Client) statusError(resp *http.Response, raw []byte, ci *callInfo) *connerr.Error {
	code, msg := graphError(raw)
	var text string
	switch {
	case code != "" && msg != "":
		text = code + ": " + msg
	case code != "":
		text = code
	case msg != "":
		text = msg
	default:
		text = http.StatusText(resp.StatusCode)
		if text == "" {
			text = "HTTP " + resp.Status
		}
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		if ci.send {
			text += maySend
		}
	}
	if ci.attempts > 1 {
		text += fmt.Sprintf(" (gave up after %d attempts)", ci.attempts)
	}
	// Error bodies are small and always shown to the process: decode now.
	body, rawJSON := decodeBody(resp.Header, raw)
	if rawJSON != nil {
		var err error
		if body, err = decodeJSON(rawJSON); err != nil {
			body = string(raw)
		}
	}
	if s, ok := body.(string); ok {
		// Masked before it is cut: a cut-off secret would no longer match.
		body = truncateString(c.cfg.Redactor.String(s))
	}
	e := connerr.New(fmt.Sprint(resp.StatusCode), "%s", c.cfg.Redactor.String(text))
	e.Variables = map[string]any{"response": c.responseVar(resp.StatusCode, resp.Header, body)}
	e.MinBackoff = ci.minBackoff
	return e
}

func (c *Client) responseVar(status int, h http.Header, body any) any {
	return c.cfg.Redactor.Value(responseObject(status, headerMap(h), body))
}

// maxErrorText bounds a non-JSON error body copied into error variables
// (a proxy's HTML page, say): the job's failure must stay small.
const maxErrorText = 8 << 10

func truncateString(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// HTML bodies would otherwise grow by \u003c escapes for every tag.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EncodeJSON is the client's body encoding, for operations that must know
// the request size before sending.
func EncodeJSON(v any) (json.RawMessage, error) { return encodeJSON(v) }

// encodeQuery writes q sorted by key, each key and value as
// odata.WriteQueryValue encodes it.
func encodeQuery(sb *strings.Builder, q url.Values) {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	first := true
	for _, k := range keys {
		for _, v := range q[k] {
			if !first {
				sb.WriteByte('&')
			}
			first = false
			odata.WriteQueryValue(sb, k)
			sb.WriteByte('=')
			odata.WriteQueryValue(sb, v)
		}
	}
}
