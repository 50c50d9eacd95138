package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/identitysim"
)

const (
	clientID = "11111111-2222-3333-4444-555555555555"
	secret   = "Qx~8Q~sEcReT-value_1234"
)

type env struct {
	sim  *identitysim.Server
	m    *Manager
	red  *redact.Set
	met  *metrics.Metrics
	logs *observer.ObservedLogs
	now  *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	sim, err := identitysim.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.RegisterClient(clientID, secret)
	core, logs := observer.New(zap.DebugLevel)
	e := &env{sim: sim, red: &redact.Set{}, met: metrics.New(), logs: logs,
		now: &clock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}}
	cfg := Config{AllowedHosts: DefaultAllowedHosts, Redactor: e.red, Metrics: e.met, Logger: zap.New(core), Now: e.now.Now}
	if mod != nil {
		mod(&cfg)
	}
	e.m = NewManager(cfg)
	return e
}

func (e *env) ccInput() Input {
	return Input{Type: TypeClientCredentials, OAuthTokenEndpoint: e.sim.TokenURL("contoso"), ClientID: clientID, ClientSecret: secret}
}

func (e *env) creds(t *testing.T, in Input) graph.Credentials {
	t.Helper()
	c, err := e.m.Credentials(in)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) token(t *testing.T, in Input) string {
	t.Helper()
	tok, err := e.creds(t, in).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.Validate(tok); err != nil {
		t.Fatalf("token not issued by the endpoint: %v", err)
	}
	return tok
}

func wantCode(t *testing.T, err error, code string, final bool) *connerr.Error {
	t.Helper()
	var ce *connerr.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ce.Code != code || ce.Final != final {
		t.Fatalf("want %s final=%v, got %s final=%v: %s", code, final, ce.Code, ce.Final, ce.Message)
	}
	return ce
}

// noLeak fails if the secret shows up in the error, its cause or any log.
func (e *env) noLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	var texts []string
	if err != nil {
		texts = append(texts, err.Error())
		if ce := connerr.From(err); ce.Cause != nil {
			texts = append(texts, ce.Cause.Error())
		}
	}
	for _, entry := range e.logs.All() {
		texts = append(texts, entry.Message)
		for k, v := range entry.ContextMap() {
			texts = append(texts, k, strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")))
		}
	}
	for _, s := range secrets {
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Fatalf("secret %q leaked: %s", s, text)
			}
		}
	}
}

func (e *env) tokenMetric(result string) float64 {
	var m dto.Metric
	if err := e.met.TokenRequests.WithLabelValues("client_credentials", result).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

func TestBearer(t *testing.T) {
	e := newEnv(t, nil)
	c := e.creds(t, Input{Type: TypeBearer, Token: " eyJ0eXAi.bearer \n"})
	tok, err := c.Token(context.Background())
	if err != nil || tok != "eyJ0eXAi.bearer" {
		t.Fatalf("%q %v", tok, err)
	}
	c.Invalidate(tok)
	if tok2, _ := c.Token(context.Background()); tok2 != tok {
		t.Fatal("Invalidate changed a fixed token")
	}
	if !e.red.Contains("eyJ0eXAi.bearer") {
		t.Error("bearer token not redacted")
	}
	for _, bad := range []string{"", "   ", "a\r\nX-Injected: 1"} {
		_, err := e.m.Credentials(Input{Type: TypeBearer, Token: bad})
		ce := wantInputErr(t, err, "authentication.token")
		if strings.Contains(ce.Message, "Injected") {
			t.Error("message repeats the token")
		}
	}
}

func TestCredentialsValidationMakesNoRequest(t *testing.T) {
	e := newEnv(t, nil)
	url := e.sim.TokenURL("t")
	cases := []struct {
		in       Input
		variable string
	}{
		{Input{Type: TypeClientCredentials, ClientID: "a", ClientSecret: "b"}, "authentication.oauthTokenEndpoint"},
		{Input{Type: TypeClientCredentials, OAuthTokenEndpoint: url, ClientSecret: "b"}, "authentication.clientId"},
		{Input{Type: TypeClientCredentials, OAuthTokenEndpoint: url, ClientID: "a"}, "authentication.clientSecret"},
		{Input{Type: TypeRefreshToken, OAuthTokenEndpoint: url, ClientID: "a"}, "authentication.refreshToken"},
		{Input{Type: TypeRefreshToken, OAuthTokenEndpoint: url, ClientID: "a", RefreshToken: "r", ClientAuthentication: ClientAuthHeader}, "authentication.clientSecret"},
		{Input{Type: TypeClientCredentials, OAuthTokenEndpoint: url, ClientID: "a", ClientSecret: "b", ClientAuthentication: "private_key_jwt"}, "authentication.clientAuthentication"},
		{Input{Type: "basic"}, "authentication.type"},
	}
	for _, c := range cases {
		_, err := e.m.Credentials(c.in)
		wantInputErr(t, err, c.variable)
	}
	if n := e.sim.TokenRequests(); n != 0 {
		t.Fatalf("%d token requests during validation", n)
	}
}

// countingTransport answers every request with a token, so that allowed
// non-loopback hosts can be exercised without a network.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Request: r,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(strings.NewReader(`{"token_type":"Bearer","expires_in":3599,"access_token":"stub-token"}`)),
	}, nil
}

func TestEndpointPolicy(t *testing.T) {
	ct := &countingTransport{}
	e := newEnv(t, func(c *Config) {
		c.Transport = ct
		c.AllowedHosts = append(DefaultAllowedHosts, "Login.Example.ORG")
	})
	cases := []struct {
		url     string
		ok      bool
		mention string
	}{
		{"https://login.microsoftonline.com/t/oauth2/v2.0/token", true, ""},
		{"https://LOGIN.microsoftonline.COM:443/t/oauth2/v2.0/token", true, ""},
		{"https://login.chinacloudapi.cn/t/oauth2/v2.0/token", true, ""},
		{"https://login.example.org/token", true, ""},
		{"http://127.0.0.1:1/t/oauth2/v2.0/token", true, ""},
		{"http://127.8.9.10:1/token", true, ""},
		{"http://localhost:1/token", true, ""},
		{"http://[::1]:1/token", true, ""},
		{"https://evil.example.com/t/oauth2/v2.0/token", false, `"evil.example.com"`},
		{"https://login.microsoftonline.com.evil.com/token", false, `"login.microsoftonline.com.evil.com"`},
		{"https://169.254.169.254/metadata/identity/oauth2/token", false, `"169.254.169.254"`},
		{"http://login.microsoftonline.com/t/oauth2/v2.0/token", false, "https://"},
		{"http://10.0.0.1/token", false, "https://"},
		{"https://user:pw@login.microsoftonline.com/t/oauth2/v2.0/token", false, "user information"},
		{"ftp://127.0.0.1/token", false, `"ftp"`},
		{"login.microsoftonline.com/t/oauth2/v2.0/token", false, "absolute"},
		{"https:///token", false, "absolute"},
		{"::not a url", false, "absolute"},
	}
	// Twice: the second pass goes through the Manager's memory of checked
	// endpoints, which must give the same answers.
	for pass := 1; pass <= 2; pass++ {
		for _, c := range cases {
			checkEndpointCase(t, e, ct, pass, c.url, c.ok, c.mention)
		}
	}
}

func checkEndpointCase(t *testing.T, e *env, ct *countingTransport, pass int, url string, ok bool, mention string) {
	c := struct {
		url     string
		ok      bool
		mention string
	}{url, ok, mention}
	t.Run(fmt.Sprintf("pass%d/%s", pass, c.url), func(t *testing.T) {
		in := Input{Type: TypeClientCredentials, OAuthTokenEndpoint: c.url, ClientID: "id", ClientSecret: "sec"}
		before := ct.n.Load()
		creds, err := e.m.Credentials(in)
		if !c.ok {
			ce := wantInputErr(t, err, "authentication.oauthTokenEndpoint")
			if !strings.Contains(ce.Message, c.mention) {
				t.Errorf("message %q lacks %q", ce.Message, c.mention)
			}
			if strings.Contains(ce.Message, "pw@") {
				t.Error("message repeats userinfo")
			}
			if ct.n.Load() != before {
				t.Fatal("a refused endpoint was requested")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if ct.n.Load() != before {
			t.Fatal("Credentials made a request")
		}
		if tok, err := creds.Token(context.Background()); err != nil || tok != "stub-token" {
			t.Fatalf("%q %v", tok, err)
		}
	})
}

func TestCheckedEndpointsAreBounded(t *testing.T) {
	e := newEnv(t, nil)
	for i := 0; i < maxCheckedEndpoints+50; i++ {
		in := Input{Type: TypeClientCredentials, OAuthTokenEndpoint: fmt.Sprintf("http://127.0.0.1:1/t%d/token", i), ClientID: "id", ClientSecret: "sec"}
		if _, err := e.m.Credentials(in); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	e.m.endpoints.Range(func(any, any) bool { n++; return true })
	if n != maxCheckedEndpoints {
		t.Fatalf("%d endpoints remembered, want the bound %d", n, maxCheckedEndpoints)
	}
	if _, err := e.m.Credentials(Input{Type: TypeClientCredentials, OAuthTokenEndpoint: "https://evil.example.com/token", ClientID: "id", ClientSecret: "sec"}); err == nil {
		t.Fatal("a refused endpoint passed once the memory was full")
	}
}

func TestClientCredentialsBodyAndBasicAuth(t *testing.T) {
	e := newEnv(t, nil)
	in := e.ccInput()
	e.token(t, in)
	in.ClientAuthentication = ClientAuthHeader
	in.Scopes = "  api://my-api/.default  "
	e.token(t, in)

	reqs := e.sim.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if reqs[0].BasicAuth || reqs[0].GrantType != "client_credentials" || reqs[0].ClientID != clientID || reqs[0].Scope != DefaultScopes {
		t.Errorf("body auth request: %+v", reqs[0])
	}
	if !reqs[1].BasicAuth || reqs[1].Scope != "api://my-api/.default" || reqs[1].ClientID != clientID {
		t.Errorf("basic auth request: %+v", reqs[1])
	}
	if !e.red.Contains(secret) {
		t.Error("client secret not redacted")
	}
	if v := e.tokenMetric("ok"); v != 2 {
		t.Errorf("ok metric = %v", v)
	}
}

func TestCacheAndEarlyRefresh(t *testing.T) {
	e := newEnv(t, nil)
	in := e.ccInput()
	first := e.token(t, in)
	e.now.Add(3599*time.Second - refreshMargin - time.Second)
	if tok := e.token(t, in); tok != first || e.sim.TokenRequests() != 1 {
		t.Fatalf("token not reused before the margin: %d requests", e.sim.TokenRequests())
	}
	e.now.Add(time.Second)
	second := e.token(t, in)
	if second == first || e.sim.TokenRequests() != 2 {
		t.Fatalf("token not renewed %v before expiry", refreshMargin)
	}

	// A short-lived token is still reused for half its life.
	e.sim.SetTokenTTL(2*refreshMargin - 4*time.Second)
	in.Scopes = "api://short/.default"
	short := e.token(t, in)
	e.now.Add(refreshMargin - 3*time.Second)
	if e.token(t, in) != short {
		t.Fatal("short-lived token not reused")
	}
	e.now.Add(time.Second)
	if e.token(t, in) == short {
		t.Fatal("short-lived token reused past half its life")
	}
}

func TestInvalidate(t *testing.T) {
	e := newEnv(t, nil)
	c := e.creds(t, e.ccInput())
	first, _ := c.Token(context.Background())
	c.Invalidate(first)
	second, err := c.Token(context.Background())
	if err != nil || second == first || e.sim.TokenRequests() != 2 {
		t.Fatalf("Invalidate did not drop the token: %v, %d requests", err, e.sim.TokenRequests())
	}
	// A late Invalidate of the old token must not drop the new one.
	c.Invalidate(first)
	if third, _ := c.Token(context.Background()); third != second || e.sim.TokenRequests() != 2 {
		t.Fatal("stale Invalidate dropped the current token")
	}
}

func TestInvalidClientSecret(t *testing.T) {
	for _, style := range []string{ClientAuthBody, ClientAuthHeader} {
		t.Run(style, func(t *testing.T) {
			e := newEnv(t, nil)
			in := e.ccInput()
			in.ClientSecret = "wrong-secret-value-987"
			in.ClientAuthentication = style
			_, err := e.creds(t, in).Token(context.Background())
			ce := wantCode(t, err, connerr.CodeOAuthTokenError, false)
			for _, want := range []string{"invalid_client", "AADSTS7000215: Invalid client secret provided", "401", "127.0.0.1"} {
				if !strings.Contains(ce.Message, want) {
					t.Errorf("message %q lacks %q", ce.Message, want)
				}
			}
			if strings.Contains(ce.Message, "Trace ID") || strings.Contains(ce.Message, "\n") {
				t.Errorf("message carries AAD's trace lines: %q", ce.Message)
			}
			e.noLeak(t, err, "wrong-secret-value-987", secret)
			if v := e.tokenMetric("error"); v != 1 {
				t.Errorf("error metric = %v", v)
			}
		})
	}
}

func TestSecretEchoedByEndpointIsRedacted(t *testing.T) {
	// An endpoint that quotes the secret back must not get it into the job.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"bad secret `+r.PostForm.Get("client_secret")+`"}`)
	}))
	defer srv.Close()
	e := newEnv(t, nil)
	in := e.ccInput()
	in.OAuthTokenEndpoint = srv.URL + "/token"
	_, err := e.creds(t, in).Token(context.Background())
	ce := wantCode(t, err, connerr.CodeOAuthTokenError, false)
	if !strings.Contains(ce.Message, "bad secret ***") {
		t.Errorf("message: %q", ce.Message)
	}
	e.noLeak(t, err, secret)
}

func TestUnknownClient(t *testing.T) {
	e := newEnv(t, nil)
	in := e.ccInput()
	in.ClientID = "not-registered"
	_, err := e.creds(t, in).Token(context.Background())
	ce := wantCode(t, err, connerr.CodeOAuthTokenError, false)
	if !strings.Contains(ce.Message, "unauthorized_client") || !strings.Contains(ce.Message, "AADSTS700016") {
		t.Errorf("message %q", ce.Message)
	}
}

func (e *env) refreshInput(rt string) Input {
	return Input{Type: TypeRefreshToken, OAuthTokenEndpoint: e.sim.TokenURL("common"), ClientID: "public-app", RefreshToken: rt}
}

func TestRefreshTokenGrant(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.RegisterClient("public-app", "")
	rt := e.sim.IssueRefreshToken("public-app")
	e.token(t, e.refreshInput(rt))
	r := e.sim.Requests()[0]
	if r.GrantType != "refresh_token" || r.RefreshToken != rt || r.ClientID != "public-app" || r.Scope != DefaultScopes {
		t.Fatalf("request: %+v", r)
	}
	if !e.red.Contains(rt) {
		t.Error("refresh token not redacted")
	}

	// Confidential client, secret in the Basic header.
	e.sim.RegisterClient("conf-app", "conf-secret")
	rt2 := e.sim.IssueRefreshToken("conf-app")
	in := Input{Type: TypeRefreshToken, OAuthTokenEndpoint: e.sim.TokenURL("common"), ClientID: "conf-app",
		ClientSecret: "conf-secret", RefreshToken: rt2, ClientAuthentication: ClientAuthHeader}
	e.token(t, in)
	if r := e.sim.Requests()[1]; !r.BasicAuth || r.RefreshToken != rt2 {
		t.Fatalf("request: %+v", r)
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.RegisterClient("public-app", "")
	e.sim.SetRotateRefreshTokens(true)
	original := e.sim.IssueRefreshToken("public-app")

	c := e.creds(t, e.refreshInput(original))
	tok, _ := c.Token(context.Background())
	c.Invalidate(tok)
	// A later job presents the original token again.
	e.token(t, e.refreshInput(original))
	reqs := e.sim.Requests()
	if len(reqs) != 2 || reqs[0].RefreshToken != original || reqs[1].RefreshToken == original || reqs[1].RefreshToken == "" {
		t.Fatalf("rotated refresh token not used: %+v", reqs)
	}
	if !e.red.Contains(reqs[1].RefreshToken) {
		t.Error("rotated refresh token not redacted")
	}
	e.noLeak(t, nil, original, reqs[1].RefreshToken)
}

func TestRefreshTokenFinalErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.RegisterClient("public-app", "")

	expired := e.sim.IssueRefreshToken("public-app")
	e.sim.ExpireRefreshToken(expired)
	_, err := e.creds(t, e.refreshInput(expired)).Token(context.Background())
	ce := wantCode(t, err, connerr.CodeOAuthRefreshTokenExpired, true)
	if !strings.Contains(ce.Message, "invalid_grant") || !strings.Contains(ce.Message, "AADSTS700082") {
		t.Errorf("message %q", ce.Message)
	}
	e.noLeak(t, err, expired)

	_, err = e.creds(t, e.refreshInput("never-issued-token")).Token(context.Background())
	wantCode(t, err, connerr.CodeOAuthRefreshTokenExpired, true)

	mfa := e.sim.IssueRefreshToken("public-app")
	e.sim.RequireInteraction(mfa)
	_, err = e.creds(t, e.refreshInput(mfa)).Token(context.Background())
	ce = wantCode(t, err, connerr.CodeOAuthInteractionRequired, true)
	if !strings.Contains(ce.Message, "AADSTS50076") {
		t.Errorf("message %q", ce.Message)
	}
	e.noLeak(t, err, mfa)
}

func TestServerErrorsAreRetryable(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.FailNext(503, 1)
	c := e.creds(t, e.ccInput())
	_, err := c.Token(context.Background())
	ce := wantCode(t, err, connerr.CodeOAuthTokenError, false)
	if !strings.Contains(ce.Message, "503") || !strings.Contains(ce.Message, "temporarily_unavailable") {
		t.Errorf("message %q", ce.Message)
	}
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("no new request after a failure: %v", err)
	}
}

func TestAnswerWithoutAccessToken(t *testing.T) {
	for name, body := range map[string]string{
		"no token": `{"token_type":"Bearer","expires_in":3599}`,
		"not json": `<html>proxy error</html>`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			e := newEnv(t, nil)
			in := e.ccInput()
			in.OAuthTokenEndpoint = srv.URL + "/token"
			_, err := e.creds(t, in).Token(context.Background())
			wantCode(t, err, connerr.CodeOAuthTokenError, false)
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var hit atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	e := newEnv(t, nil)
	in := e.ccInput()
	in.OAuthTokenEndpoint = redirector.URL + "/token"
	_, err := e.creds(t, in).Token(context.Background())
	ce := wantCode(t, err, connerr.CodeOAuthTokenError, false)
	if hit.Load() {
		t.Fatal("redirect followed")
	}
	if !strings.Contains(ce.Message, "307") {
		t.Errorf("message %q", ce.Message)
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HTTPTimeout = 200 * time.Millisecond })
	e.sim.SetLatency(time.Hour)
	_, err := e.creds(t, e.ccInput()).Token(context.Background())
	ce := wantCode(t, err, connerr.CodeOAuthTokenError, false)
	if !strings.Contains(ce.Message, "did not answer within 200ms") {
		t.Errorf("message %q", ce.Message)
	}
}

func TestJobContextEndsTheWaitNotTheRequest(t *testing.T) {
	e := newEnv(t, nil)
	release := e.sim.Hold()
	defer release()
	in := e.ccInput()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.creds(t, in).Token(ctx)
		done <- err
	}()
	waitFor(t, func() bool { return e.sim.TokenRequests() == 1 })
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Token did not return after the job's context ended")
	}
	wantCode(t, err, connerr.CodeOAuthTokenError, false)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cause is not context.Canceled: %v", err)
	}

	// The request went on; the next job gets its token without a new one.
	release()
	e.token(t, in)
	if n := e.sim.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests", n)
	}

	// An already-ended context does not start a request.
	in.Scopes = "api://other/.default"
	dead, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := e.creds(t, in).Token(dead); !errors.Is(err, context.Canceled) {
		t.Fatalf("dead context: %v", err)
	}
	if n := e.sim.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests", n)
	}
}

func TestConcurrentMissesCollapse(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.SetLatency(50 * time.Millisecond)
	in := e.ccInput()
	const n = 1000
	start := make(chan struct{})
	var wg sync.WaitGroup
	tokens := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			c, err := e.m.Credentials(in) // each job builds its own credentials
			if err != nil {
				errs[i] = err
				return
			}
			tokens[i], errs[i] = c.Token(context.Background())
		}(i)
	}
	close(start)
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if tokens[i] != tokens[0] {
			t.Fatal("goroutines got different tokens")
		}
	}
	if got := e.sim.TokenRequests(); got != 1 {
		t.Fatalf("%d token requests for %d concurrent calls", got, n)
	}
}

func TestDistinctCredentialsDoNotShare(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.RegisterClient("other-app", "other-secret")
	base := e.ccInput()
	variants := []Input{base}
	v := base
	v.ClientID, v.ClientSecret = "other-app", "other-secret"
	variants = append(variants, v)
	v = base
	v.Scopes = "api://x/.default"
	variants = append(variants, v)
	v = base
	v.ClientAuthentication = ClientAuthHeader
	variants = append(variants, v)
	v = base
	v.OAuthTokenEndpoint = e.sim.TokenURL("fabrikam")
	variants = append(variants, v)

	seen := map[string]bool{}
	for _, in := range variants {
		tok := e.token(t, in)
		if seen[tok] {
			t.Fatalf("credentials %v share a token", in)
		}
		seen[tok] = true
	}
	if n := e.sim.TokenRequests(); n != len(variants) {
		t.Fatalf("%d requests for %d credential sets", n, len(variants))
	}

	// Same client, different secret: the wrong one must not ride on the
	// cached token of the right one.
	wrong := base
	wrong.ClientSecret = "not-the-secret"
	if _, err := e.creds(t, wrong).Token(context.Background()); err == nil {
		t.Fatal("a wrong secret got the cached token")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
