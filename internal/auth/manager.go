// Package auth turns the `authentication` job variable into credentials for
// Graph: a fixed bearer token, or OAuth2 tokens from a token endpoint
// (client credentials or refresh token grant) that are cached per set of
// credentials and shared by all jobs presenting the same ones.
//
// Token requests run on a long-lived background context with the package's
// own timeout-bounded HTTP client, never on a job's context: a job that
// gives up (deadline, shutdown) must not cancel a request that other jobs
// wait for, and x/oauth2 keeps the context of a token source for every
// later refresh. A waiting job still returns as soon as its own context is
// done.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

const (
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"

	// DefaultHTTPTimeout bounds one token request.
	DefaultHTTPTimeout = 30 * time.Second

	// refreshMargin: a cached token is replaced this long before it
	// expires, as Camunda's runtime does (expires_in − 10 s), so that a
	// Graph request started with it does not meet its expiry on the way.
	refreshMargin = 10 * time.Second

	// fallbackLifetime is assumed when an answer has no expires_in; Azure
	// AD always sends it, other endpoints may not.
	fallbackLifetime = 5 * time.Minute

	// maxEntries triggers a sweep of expired cache entries.
	maxEntries = 1024

	// maxLifetime caps expires_in: larger values would overflow
	// time.Duration (and no Graph token lives that long).
	maxLifetime = 24 * time.Hour
)

// Config configures a Manager.
type Config struct {
	// AllowedHosts are the token endpoint hosts (exact, case-insensitive)
	// the worker may call besides loopback hosts. Nil means none: the
	// caller passes DefaultAllowedHosts or the operator's list.
	AllowedHosts []string
	// HTTPTimeout bounds one token request; 0 means DefaultHTTPTimeout.
	HTTPTimeout time.Duration
	// Redactor learns client secrets, refresh tokens and access tokens.
	Redactor *redact.Set
	Metrics  *metrics.Metrics
	Logger   *zap.Logger
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Now replaces the clock that decides when a cached token is stale.
	Now func() time.Time
}

// Manager hands out credentials and owns the token cache. One Manager
// serves the whole process; it is safe for concurrent use.
type Manager struct {
	allowed  map[string]bool
	timeout  time.Duration
	redactor *redact.Set
	metrics  *metrics.Metrics
	log      *zap.Logger
	now      func() time.Time
	bg       context.Context

	flights singleflight.Group
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*entry

	// endpoints remembers token endpoints that passed checkEndpoint (URL
	// → host): every job of a process names the same few, and parsing
	// them again was a visible share of a job's CPU. Refusals are not
	// kept; the map stops growing at maxCheckedEndpoints.
	endpoints     sync.Map
	endpointCount atomic.Int64
}

const maxCheckedEndpoints = 1024

func (m *Manager) checkEndpoint(raw string) (string, error) {
	if host, ok := m.endpoints.Load(raw); ok {
		return host.(string), nil
	}
	host, err := checkEndpoint(raw, m.allowed)
	if err == nil && m.endpointCount.Load() < maxCheckedEndpoints {
		if _, loaded := m.endpoints.LoadOrStore(raw, host); !loaded {
			m.endpointCount.Add(1)
		}
	}
	return host, err
}

// entry is the cache state of one set of credentials.
type entry struct {
	token     string
	refreshAt time.Time
	expiry    time.Time
	// refreshToken is the newest refresh token the endpoint handed out for
	// these credentials. It lives in memory only: after a restart the
	// modeler's original token is used again, which Azure AD keeps
	// accepting until it expires on its own.
	refreshToken string
}

// NewManager builds a Manager.
func NewManager(cfg Config) *Manager {
	m := &Manager{
		allowed:  map[string]bool{},
		timeout:  cfg.HTTPTimeout,
		redactor: cfg.Redactor,
		metrics:  cfg.Metrics,
		log:      cfg.Logger,
		now:      cfg.Now,
		entries:  map[[sha256.Size]byte]*entry{},
	}
	for _, h := range cfg.AllowedHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			m.allowed[h] = true
		}
	}
	if m.timeout <= 0 {
		m.timeout = DefaultHTTPTimeout
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.now == nil {
		m.now = time.Now
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   m.timeout,
		// A redirect would carry the form (client secret included) to a
		// host the endpoint policy never saw.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	m.bg = context.WithValue(context.Background(), oauth2.HTTPClient, client)
	return m
}

// Credentials validates in without network I/O and returns the
// credentials for it. Every credential in it is added to the Redactor.
func (m *Manager) Credentials(in Input) (graph.Credentials, error) {
	if in.Type == TypeBearer {
		tok := strings.TrimSpace(in.Token)
		if tok == "" {
			return nil, connerr.Input("authentication.token", "required for authentication type %s", TypeBearer)
		}
		if strings.ContainsFunc(tok, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, connerr.Input("authentication.token", "must not contain line breaks or control characters")
		}
		m.redactor.Add(tok)
		return bearer(tok), nil
	}
	s, err := in.validate()
	if err != nil {
		return nil, err
	}
	host, err := m.checkEndpoint(s.endpoint)
	if err != nil {
		return nil, err
	}
	s.host = host
	m.redactor.Add(s.secret, s.refresh)
	return &oauthCredentials{m: m, s: s, key: cacheKey(s)}, nil
}

type bearer string

func (b bearer) Token(context.Context) (string, error) { return string(b), nil }

// Invalidate does nothing: a fixed token cannot be renewed.
func (bearer) Invalidate(string) bool { return false }

type oauthCredentials struct {
	m   *Manager
	s   settings
	key [sha256.Size]byte
}

// cacheKey covers everything that changes which token the endpoint would
// issue, so that different credentials never share one.
func cacheKey(s settings) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range []string{s.grant, s.endpoint, s.clientID, s.secret, strings.Join(s.scopes, " "), s.authStyle, s.refresh} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var k [sha256.Size]byte
	copy(k[:], h.Sum(nil))
	return k
}

// Token returns a cached token or fetches one; concurrent callers with the
// same credentials share one request.
func (c *oauthCredentials) Token(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", c.gaveUp(err)
	}
	if tok, ok := c.m.cached(c.key); ok {
		return tok, nil
	}
	ch := c.m.flights.DoChan(string(c.key[:]), func() (any, error) { return c.fetch() })
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		// The request goes on and fills the cache for the next job.
		return "", c.gaveUp(ctx.Err())
	}
}

func (c *oauthCredentials) gaveUp(err error) error {
	return &connerr.Error{
		Type:    connerr.TypeConnector,
		Code:    connerr.CodeOAuthTokenError,
		Message: fmt.Sprintf("gave up waiting for a token from %s: %v", c.s.host, err),
		Cause:   err,
	}
}

// Invalidate drops the cached token if it is still tok, so that a token
// Graph refused is not handed out again while a newer one stays.
func (c *oauthCredentials) Invalidate(tok string) bool {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if e := c.m.entries[c.key]; e != nil && e.token == tok {
		e.token = ""
	}
	return true
}

func (m *Manager) cached(key [sha256.Size]byte) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[key]
	if e == nil || e.token == "" || !m.now().Before(e.refreshAt) {
		return "", false
	}
	return e.token, true
}

func (c *oauthCredentials) fetch() (string, error) {
	m := c.m
	// A flight that starts right after another one ended finds its token.
	if tok, ok := m.cached(c.key); ok {
		return tok, nil
	}
	refresh := c.s.refresh
	m.mu.Lock()
	if e := m.entries[c.key]; e != nil && e.refreshToken != "" {
		refresh = e.refreshToken
	}
	m.mu.Unlock()
	// Keep the token in use fresh in the Redactor's LRU: a rotated one was
	// added only once, at rotation.
	m.redactor.Add(refresh)

	cfg := clientcredentials.Config{
		ClientID:     c.s.clientID,
		ClientSecret: c.s.secret,
		TokenURL:     c.s.endpoint,
		Scopes:       c.s.scopes,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	if c.s.authStyle == ClientAuthHeader {
		cfg.AuthStyle = oauth2.AuthStyleInHeader
	}
	if c.s.grant == grantRefreshToken {
		// clientcredentials sends scope and client authentication the way
		// Azure AD wants them for this grant too and lets grant_type be
		// overridden; oauth2.Config's refresher would drop the scope.
		cfg.EndpointParams = url.Values{"grant_type": {grantRefreshToken}, "refresh_token": {refresh}}
	}

	ctx, cancel := context.WithTimeout(m.bg, m.timeout)
	defer cancel()
	start := m.now()
	tok, err := cfg.Token(ctx)
	if err != nil {
		ce := c.mapError(err)
		m.metrics.TokenRequest(c.s.grant, "error")
		m.log.Warn("oauth token request failed",
			zap.String("host", c.s.host), zap.String("grant", c.s.grant),
			zap.String("client_id", c.s.clientID), zap.String("code", ce.Code), zap.String("error", ce.Message))
		return "", ce
	}
	m.metrics.TokenRequest(c.s.grant, "ok")

	lifetime := tokenLifetime(tok)
	margin := min(refreshMargin, lifetime/2)
	m.redactor.Add(tok.AccessToken)

	m.mu.Lock()
	e := m.entries[c.key]
	if e == nil {
		if len(m.entries) >= maxEntries {
			m.sweepLocked()
		}
		e = &entry{}
		m.entries[c.key] = e
	}
	e.token = tok.AccessToken
	e.expiry = start.Add(lifetime)
	e.refreshAt = e.expiry.Add(-margin)
	rotated := c.s.grant == grantRefreshToken && tok.RefreshToken != "" && tok.RefreshToken != refresh
	if rotated {
		e.refreshToken = tok.RefreshToken
	}
	m.mu.Unlock()
	if rotated {
		m.redactor.Add(tok.RefreshToken)
	}

	m.log.Debug("oauth token fetched",
		zap.String("host", c.s.host), zap.String("grant", c.s.grant), zap.String("client_id", c.s.clientID),
		zap.Duration("lifetime", lifetime), zap.Bool("refresh_token_rotated", rotated))
	return tok.AccessToken, nil
}

// sweepLocked forgets expired tokens. Entries that hold a rotated refresh
// token are kept unless the cache is far over its size.
func (m *Manager) sweepLocked() {
	now := m.now()
	for k, e := range m.entries {
		if now.After(e.expiry) && (e.refreshToken == "" || len(m.entries) > 8*maxEntries) {
			delete(m.entries, k)
		}
	}
}

// tokenLifetime reads expires_in from the answer. oauth2 turns it into an
// Expiry on the real clock; the raw value keeps the injected clock usable.
func tokenLifetime(tok *oauth2.Token) time.Duration {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case json.Number:
		secs, _ = v.Float64()
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if secs > 0 {
		if secs >= maxLifetime.Seconds() {
			return maxLifetime
		}
		return time.Duration(secs * float64(time.Second))
	}
	if !tok.Expiry.IsZero() {
		if d := time.Until(tok.Expiry); d > 0 {
			return d
		}
	}
	return fallbackLifetime
}

// mapError turns a failed token request into the contract's error. The
// message carries Azure AD's error code and the first line of its
// description (the AADSTS code and text; the trace lines are noise) and
// passes through the Redactor. Everything from the token endpoint is
// OAUTH_TOKEN_ERROR, timeouts and 5xx included, so that error expressions
// can tell an authentication problem from a Graph one; it is retryable,
// except for the two refresh-token answers that no retry can fix.
func (c *oauthCredentials) mapError(err error) *connerr.Error {
	host := c.s.host
	var (
		code  = connerr.CodeOAuthTokenError
		final bool
		msg   string
		cause error
	)
	var re *oauth2.RetrieveError
	var ne net.Error
	switch {
	case errors.As(err, &re):
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		desc := firstLine(re.ErrorDescription)
		switch {
		case re.ErrorCode == "":
			msg = fmt.Sprintf("token endpoint %s answered HTTP %d without an OAuth error", host, status)
		case desc == "":
			msg = fmt.Sprintf("token endpoint %s answered HTTP %d %s", host, status, re.ErrorCode)
		default:
			msg = fmt.Sprintf("token endpoint %s answered HTTP %d %s: %s", host, status, re.ErrorCode, desc)
		}
		if c.s.grant == grantRefreshToken {
			errCode := re.ErrorCode
			if errCode == "invalid_grant" && needsInteraction(re) {
				errCode = "interaction_required"
			}
			switch errCode {
			case "invalid_grant":
				code, final = connerr.CodeOAuthRefreshTokenExpired, true
				msg = "the refresh token is no longer valid; sign in again to get a new one: " + msg
			case "interaction_required":
				code, final = connerr.CodeOAuthInteractionRequired, true
				msg = "the user must sign in interactively (e.g. multi-factor authentication) before a new refresh token works: " + msg
			}
		}
		// The error holds the request (Basic credentials) and the raw
		// body; it is not kept, not even for logs.
	case errors.As(err, &ne) && ne.Timeout():
		msg = fmt.Sprintf("token endpoint %s did not answer within %s", host, c.m.timeout)
		cause = err
	case strings.Contains(err.Error(), "missing access_token"):
		msg = fmt.Sprintf("token endpoint %s answered without an access_token", host)
	case strings.Contains(err.Error(), "cannot parse"):
		msg = fmt.Sprintf("token endpoint %s answered something that is not a token response", host)
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named already
		}
		msg = fmt.Sprintf("token endpoint %s could not be reached: %v", host, err)
		cause = err
	}
	msg = c.m.redactor.String(msg)
	if cause != nil {
		cause = errors.New(c.m.redactor.String(cause.Error()))
	}
	return &connerr.Error{Type: connerr.TypeConnector, Code: code, Message: msg, Final: final, Cause: cause}
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// interactionCodes are AADSTS codes that Azure AD sends with invalid_grant
// although only an interactive sign-in (MFA, consent, CA challenge) helps.
var interactionCodes = map[int]bool{50076: true, 50079: true, 50125: true, 50158: true, 65001: true}

func needsInteraction(re *oauth2.RetrieveError) bool {
	var body struct {
		ErrorCodes []int  `json:"error_codes"`
		Suberror   string `json:"suberror"`
	}
	_ = json.Unmarshal(re.Body, &body)
	for _, c := range body.ErrorCodes {
		if interactionCodes[c] {
			return true
		}
	}
	if d := re.ErrorDescription; strings.HasPrefix(d, "AADSTS") {
		n, _ := strconv.Atoi(strings.TrimPrefix(d[:strings.IndexByte(d+":", ':')], "AADSTS"))
		if interactionCodes[n] {
			return true
		}
	}
	switch body.Suberror {
	case "basic_action", "additional_action", "consent_required", "user_password_expired":
		return true
	}
	return false
}
