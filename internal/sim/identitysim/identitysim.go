// Package identitysim is an in-process stand-in for the Microsoft identity
// platform v2.0 token endpoint (login.microsoftonline.com/{tenant}/oauth2/v2.0/token).
//
// It models what the connector depends on: form-encoded POSTs, client
// authentication in the body or with HTTP Basic, the client_credentials and
// refresh_token grants, AAD's JSON error shape with AADSTS codes, and opaque
// access tokens that the Graph simulator can check with Validate. Failure
// modes (expired refresh tokens, MFA prompts, 5xx, latency) are switched on
// per test.
package identitysim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

// Errors returned by Validate.
var (
	// ErrExpired is a token this server issued whose lifetime is over.
	ErrExpired = errors.New("identitysim: access token expired")
	// ErrInvalid is a token this server never issued.
	ErrInvalid = errors.New("identitysim: access token not issued by this server")
)

// DefaultTokenTTL is what Azure AD answers as expires_in for app tokens.
const DefaultTokenTTL = 3599 * time.Second

// graphAppID is Microsoft Graph's application id; AAD names it in MFA errors.
const graphAppID = "00000003-0000-0000-c000-000000000000"

// TokenRequest is one request seen by the token endpoint.
type TokenRequest struct {
	Tenant       string
	GrantType    string
	ClientID     string
	Scope        string
	RefreshToken string
	// BasicAuth is true when the client authenticated with an
	// Authorization: Basic header instead of body parameters.
	BasicAuth bool
	At        time.Time
}

type client struct {
	secret string // "" = public client
}

type refreshState int

const (
	rtValid refreshState = iota
	rtExpired
	rtInteraction
)

type refreshToken struct {
	clientID string
	state    refreshState
	issued   time.Time
}

type accessToken struct {
	expiry time.Time
}

// Server is the simulated token endpoint. All methods are safe for
// concurrent use.
type Server struct {
	ln  net.Listener
	srv *http.Server

	mu            sync.Mutex
	clients       map[string]client
	refreshTokens map[string]*refreshToken
	accessTokens  map[string]accessToken
	rotate        bool
	ttl           time.Duration
	latency       time.Duration
	gate          chan struct{} // non-nil while Hold is in effect
	failStatus    int
	failLeft      int
	requests      []TokenRequest
	now           func() time.Time
}

// New starts a server on 127.0.0.1 with a random port.
func New() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		ln:            ln,
		clients:       map[string]client{},
		refreshTokens: map[string]*refreshToken{},
		accessTokens:  map[string]accessToken{},
		ttl:           DefaultTokenTTL,
		now:           time.Now,
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// TokenURL is the v2.0 token endpoint of tenant.
func (s *Server) TokenURL(tenant string) string {
	return s.URL() + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// Close stops the server and drops open connections, so that requests held
// by SetLatency end at once.
func (s *Server) Close() { _ = s.srv.Close() }

// RegisterClient adds an application. A confidential client has a secret;
// secret "" registers a public client, which must not send one.
func (s *Server) RegisterClient(clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[clientID] = client{secret: secret}
}

// IssueRefreshToken returns a new valid refresh token for clientID, as an
// earlier interactive sign-in would have.
func (s *Server) IssueRefreshToken(clientID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueRefreshTokenLocked(clientID)
}

func (s *Server) issueRefreshTokenLocked(clientID string) string {
	rt := "rt." + randomString(48)
	s.refreshTokens[rt] = &refreshToken{clientID: clientID, issued: s.now()}
	return rt
}

// ExpireRefreshToken makes rt answer invalid_grant AADSTS700082.
func (s *Server) ExpireRefreshToken(rt string) { s.setRefreshState(rt, rtExpired) }

// RequireInteraction makes rt answer interaction_required AADSTS50076, as
// when a conditional access policy starts demanding MFA.
func (s *Server) RequireInteraction(rt string) { s.setRefreshState(rt, rtInteraction) }

func (s *Server) setRefreshState(rt string, st refreshState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.refreshTokens[rt]; ok {
		t.state = st
	}
}

// SetRotateRefreshTokens makes refresh-token answers carry a new
// refresh_token. The presented token stays valid, as Azure AD's do until
// they expire; without rotation the answer carries no refresh_token.
func (s *Server) SetRotateRefreshTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// SetTokenTTL sets the lifetime of new access tokens (expires_in is its
// whole seconds).
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = d
}

// SetLatency delays every answer by d (a request whose client gives up
// ends early).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hold makes answers wait until the returned release is called (requests
// are counted on arrival), so that tests can act while a request is
// provably in flight without timing guesses. Release is idempotent.
func (s *Server) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
	gate := s.gate
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.gate == gate {
				s.gate = nil
			}
			s.mu.Unlock()
			close(gate)
		})
	}
}

// SetNow replaces the clock used for token expiry (Validate) and
// timestamps.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// FailNext makes the next n token requests answer status with AAD's
// transient error body (temporarily_unavailable, AADSTS90033).
func (s *Server) FailNext(status int, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus, s.failLeft = status, n
}

// TokenRequests is the number of requests that reached the token endpoint,
// failed ones included.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Requests returns a copy of the requests seen so far, oldest first.
func (s *Server) Requests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.requests...)
}

// Validate tells a Graph simulator whether a bearer token is one this server
// issued and still within its lifetime.
func (s *Server) Validate(token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[token]
	if !ok {
		return ErrInvalid
	}
	if !s.now().Before(at.expiry) {
		return ErrExpired
	}
	return nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	tenant, ok := tokenPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeError(w, http.StatusMethodNotAllowed, "invalid_request", 900561,
			"The endpoint only accepts POST requests. Received a "+r.Method+" request.")
		return
	}

	// Limit mirrors AAD refusing large bodies; it also keeps fuzzers cheap.
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm

	req := TokenRequest{
		Tenant:       tenant,
		GrantType:    form.Get("grant_type"),
		Scope:        form.Get("scope"),
		RefreshToken: form.Get("refresh_token"),
	}
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	secretSent := form.Has("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		// RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
		req.BasicAuth = true
		clientID, secret, secretSent = formUnescape(u), formUnescape(p), true
	}
	req.ClientID = clientID

	// The request counts from its arrival, so that tests can wait for it
	// while the answer is held back.
	s.mu.Lock()
	req.At = s.now()
	s.requests = append(s.requests, req)
	failStatus := 0
	if s.failLeft > 0 {
		s.failLeft--
		failStatus = s.failStatus
	}
	latency, gate := s.latency, s.gate
	s.mu.Unlock()

	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if failStatus != 0 {
		s.writeError(w, failStatus, "temporarily_unavailable", 90033,
			"A transient error has occurred. Please try again.")
		return
	}

	if req.GrantType == "" {
		s.writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if req.GrantType != "client_credentials" && req.GrantType != "refresh_token" {
		s.writeError(w, http.StatusBadRequest, "unsupported_grant_type", 70003,
			"The app requested an unsupported grant type '"+req.GrantType+"'.")
		return
	}
	if clientID == "" {
		s.writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'client_id'.")
		return
	}

	s.mu.Lock()
	c, known := s.clients[clientID]
	s.mu.Unlock()
	if !known {
		s.writeError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. "+
				"This can happen if the application has not been installed by the administrator of the tenant "+
				"or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
				clientID, tenant))
		return
	}
	switch {
	case c.secret == "" && secretSent && secret != "":
		s.writeError(w, http.StatusUnauthorized, "invalid_client", 700025,
			"Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
		return
	case c.secret != "" && secret == "":
		s.writeError(w, http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	case c.secret != "" && secret != c.secret:
		s.writeError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "+
				"not the client secret ID, for a secret added to app '"+clientID+"'.")
		return
	}

	switch req.GrantType {
	case "client_credentials":
		s.clientCredentials(w, c, req)
	case "refresh_token":
		s.refresh(w, req)
	}
}

func (s *Server) clientCredentials(w http.ResponseWriter, c client, req TokenRequest) {
	if c.secret == "" {
		s.writeError(w, http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	if req.Scope == "" {
		s.writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'scope'.")
		return
	}
	// AAD wants exactly one resource, addressed as {resource}/.default.
	scopes := strings.Fields(req.Scope)
	if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") {
		s.writeError(w, http.StatusBadRequest, "invalid_scope", 1002012,
			"The provided value for scope "+req.Scope+" is not valid. Client credential flows must have a scope value "+
				"with /.default suffixed to the resource identifier (application ID URI).")
		return
	}
	s.writeToken(w, nil)
}

func (s *Server) refresh(w http.ResponseWriter, req TokenRequest) {
	if req.RefreshToken == "" {
		s.writeError(w, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'refresh_token'.")
		return
	}
	s.mu.Lock()
	rt, ok := s.refreshTokens[req.RefreshToken]
	var state refreshState
	var issued time.Time
	var owner string
	if ok {
		state, issued, owner = rt.state, rt.issued, rt.clientID
	}
	s.mu.Unlock()
	if !ok || owner != req.ClientID {
		s.writeError(w, http.StatusBadRequest, "invalid_grant", 70000,
			"Provided grant is invalid or malformed.")
		return
	}
	switch state {
	case rtExpired:
		s.writeError(w, http.StatusBadRequest, "invalid_grant", 700082,
			"The refresh token has expired due to inactivity. The token was issued on "+
				issued.UTC().Format(time.RFC3339)+" and was inactive for 90.00:00:00.")
		return
	case rtInteraction:
		s.writeError(w, http.StatusBadRequest, "interaction_required", 50076,
			"Due to a configuration change made by your administrator, or because you moved to a new location, "+
				"you must use multi-factor authentication to access '"+graphAppID+"'.")
		return
	}
	scope := req.Scope
	if scope == "" {
		scope = "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send"
	}
	extra := map[string]any{"scope": scope}
	s.mu.Lock()
	if s.rotate {
		extra["refresh_token"] = s.issueRefreshTokenLocked(req.ClientID)
	}
	s.mu.Unlock()
	s.writeToken(w, extra)
}

func (s *Server) writeToken(w http.ResponseWriter, extra map[string]any) {
	s.mu.Lock()
	ttl := s.ttl
	tok := randomString(64) // opaque: the connector must not parse tokens
	s.accessTokens[tok] = accessToken{expiry: s.now().Add(ttl)}
	s.mu.Unlock()

	secs := int64(ttl / time.Second)
	body := map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, http.StatusOK, body)
}

// writeError answers in Azure AD's error format: the description carries
// the AADSTS code first and trace lines after \r\n.
func (s *Server) writeError(w http.ResponseWriter, status int, code string, aadsts int, text string) {
	s.mu.Lock()
	now := s.now().UTC()
	s.mu.Unlock()
	trace, corr := uuid(), uuid()
	ts := now.Format("2006-01-02 15:04:05Z")
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
		aadsts, text, trace, corr, ts)
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc,
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// tokenPath extracts the tenant from /{tenant}/oauth2/v2.0/token.
func tokenPath(p string) (string, bool) {
	rest, ok := strings.CutSuffix(p, "/oauth2/v2.0/token")
	if !ok || len(rest) < 2 || rest[0] != '/' || strings.Contains(rest[1:], "/") {
		return "", false
	}
	t, err := url.PathUnescape(rest[1:])
	if err != nil {
		return "", false
	}
	return t, true
}

func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func randomString(n int) string {
	b := make([]byte, n*3/4+1)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// GraphTokenCheck is Validate in the Graph simulator's terms, for
// graphsim.WithTokenCheck: Graph then accepts exactly the tokens this
// endpoint issued and answers 401 for expired or unknown ones.
func (s *Server) GraphTokenCheck(token string) error {
	switch err := s.Validate(token); {
	case err == nil:
		return nil
	case errors.Is(err, ErrExpired):
		return graphsim.ErrTokenExpired
	default:
		return graphsim.ErrTokenInvalid
	}
}
