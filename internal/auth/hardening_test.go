package auth

// Findings of a review of the token code, each shown failing before its fix.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

// tokenServer answers every token request with handler and counts them.
func tokenServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		h(w, r, int(n.Add(1)))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Azure AD answers a refresh-token grant that needs MFA or consent
// with error "invalid_grant" (the AADSTS code in error_codes / the
// description tells what is wrong). The mapper looks only at the OAuth error
// string, so these become OAUTH_REFRESH_TOKEN_EXPIRED instead of
// OAUTH_INTERACTION_REQUIRED.
func TestInteractionCodesUnderInvalidGrant(t *testing.T) {
	for _, tc := range []struct {
		code     int
		suberror string
		text     string
	}{
		{50076, "basic_action", "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'."},
		{50079, "basic_action", "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication."},
		{65001, "consent_required", "The user or administrator has not consented to use the application with ID 'public-app'."},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			srv, _ := tokenServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 400, fmt.Sprintf(`{"error":"invalid_grant","error_description":"AADSTS%d: %s\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2025-03-01 08:00:00Z","error_codes":[%d],"suberror":%q}`,
					tc.code, tc.text, tc.code, tc.suberror))
			})
			e := newEnv(t, nil)
			in := Input{Type: TypeRefreshToken, OAuthTokenEndpoint: srv.URL + "/common/oauth2/v2.0/token", ClientID: "public-app", RefreshToken: "rt-needs-mfa-0001"}
			_, err := e.creds(t, in).Token(context.Background())
			wantCode(t, err, connerr.CodeOAuthInteractionRequired, true)
		})
	}
}

// a large expires_in overflows time.Duration in tokenLifetime
// (float seconds * 1e9 > MaxInt64 → negative lifetime), so the token is
// stale the moment it is stored and every job requests a new one.
func TestHugeExpiresInStillCaches(t *testing.T) {
	for name, v := range map[string]string{
		"number": `10000000000`,
		"string": `"10000000000"`,
	} {
		t.Run(name, func(t *testing.T) {
			srv, n := tokenServer(t, func(w http.ResponseWriter, r *http.Request, i int) {
				writeJSON(w, 200, fmt.Sprintf(`{"token_type":"Bearer","expires_in":%s,"access_token":"at-huge-%d"}`, v, i))
			})
			e := newEnv(t, nil)
			in := e.ccInput()
			in.OAuthTokenEndpoint = srv.URL + "/token"
			c := e.creds(t, in)
			for i := 0; i < 3; i++ {
				if _, err := c.Token(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := n.Load(); got != 1 {
				t.Fatalf("expires_in %s: %d token requests for 3 jobs, want 1 (token never cached)", v, got)
			}
		})
	}
}

// the allow-list compares strings.ToLower(Hostname()), which
// folds U+0130 (İ) to ASCII 'i'; net/http dials the IDNA form of the raw
// host, xn--login-bgd.microsoftonline.com, which is not on the list. The
// client secret is POSTed to a host the policy never approved.
func TestNonASCIITokenHostIsRefused(t *testing.T) {
	var mu sync.Mutex
	var dialed []string
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		return nil, errors.New("test: no network")
	}}
	e := newEnv(t, func(c *Config) { c.Transport = tr })
	in := e.ccInput()
	in.OAuthTokenEndpoint = "https://log\u0130n.microsoftonline.com/contoso/oauth2/v2.0/token"
	c, err := e.m.Credentials(in)
	if err == nil {
		_, _ = c.Token(context.Background())
	} else if !strings.Contains(err.Error(), "host must be ASCII") {
		t.Fatalf("want the non-ASCII host refused, got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range dialed {
		h, _, _ := net.SplitHostPort(a)
		if !e.m.allowed[h] {
			t.Fatalf("endpoint %q passed the allow-list, but the token request (client secret) was dialed to %q", in.OAuthTokenEndpoint, a)
		}
	}
}

// a rotated refresh token is given to the Redactor once, at
// rotation. The Redactor evicts its least recently added values beyond
// 10,000, while the cache keeps using the rotated token for months; once
// evicted, an endpoint that echoes it puts it into the job's error message.
func TestRotatedRefreshTokenStaysMasked(t *testing.T) {
	const rotated = "0.ARotatedRefreshToken-abcdef123456"
	srv, _ := tokenServer(t, func(w http.ResponseWriter, r *http.Request, i int) {
		if i == 1 {
			writeJSON(w, 200, `{"token_type":"Bearer","expires_in":3599,"access_token":"at-1-xyz","refresh_token":"`+rotated+`"}`)
			return
		}
		rt := r.PostForm.Get("refresh_token")
		writeJSON(w, 400, `{"error":"invalid_grant","error_description":"AADSTS9002313: Invalid request. refresh_token '`+rt+`' is malformed.","error_codes":[9002313]}`)
	})
	e := newEnv(t, nil)
	in := Input{Type: TypeRefreshToken, OAuthTokenEndpoint: srv.URL + "/token", ClientID: "public-app", RefreshToken: "original-refresh-token-0001"}
	c := e.creds(t, in)
	tok, err := c.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Months of other jobs: bearer tokens, access tokens, secret values.
	for i := 0; i < 10_001; i++ {
		e.red.Add(fmt.Sprintf("other-value-%06d", i))
	}
	// A later job with the same credentials (its Credentials call re-adds
	// the original refresh token and secret, not the rotated one).
	c = e.creds(t, in)
	c.Invalidate(tok)
	_, err = c.Token(context.Background())
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), rotated) {
		t.Fatalf("rotated refresh token leaked into the job's error: %v", err)
	}
	for _, l := range e.logs.All() {
		for _, f := range l.Context {
			if strings.Contains(f.String, rotated) {
				t.Fatalf("rotated refresh token leaked into log field %s", f.Key)
			}
		}
	}
}

// for a bearer token Invalidate is a no-op, yet a 401
// InvalidAuthenticationToken makes the Graph client send the same rejected
// token a second time (and count a token_rejected retry).
func TestRejectedBearerTokenIsNotResent(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		_, _ = io.WriteString(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Lifetime validation failed, the token is expired."}}`)
	}))
	defer srv.Close()
	red := &redact.Set{}
	gc, err := graph.New(graph.Config{BaseURL: srv.URL + "/v1.0", Redactor: red,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(Config{AllowedHosts: DefaultAllowedHosts, Redactor: red})
	creds, err := m.Credentials(Input{Type: TypeBearer, Token: "eyJ0eXAiOiJKV1QiLCJhbGciOi.bearer-expired"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gc.Do(context.Background(), creds, graph.Request{UserID: "dana@contoso.example", Path: []string{"mailFolders"}})
	if err == nil {
		t.Fatal("want 401")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auths) != 1 {
		t.Fatalf("%d Graph requests with the same fixed token %v; a bearer token cannot be refreshed, want 1", len(auths), auths)
	}
}

// Behaviour that held when reviewed, kept as regression tests.

// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
func TestBasicAuthHeaderFormEncodesCredentials(t *testing.T) {
	var got atomic.Value
	srv, _ := tokenServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		got.Store(r.Header.Get("Authorization"))
		writeJSON(w, 200, `{"token_type":"Bearer","expires_in":3599,"access_token":"at-basic"}`)
	})
	e := newEnv(t, nil)
	in := Input{Type: TypeClientCredentials, OAuthTokenEndpoint: srv.URL + "/token", ClientID: "app id:1",
		ClientSecret: "p@ss:w+rd %/é", ClientAuthentication: ClientAuthHeader}
	if _, err := e.creds(t, in).Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, _ := got.Load().(string)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
	if err != nil {
		t.Fatal(err)
	}
	want := url.QueryEscape("app id:1") + ":" + url.QueryEscape("p@ss:w+rd %/é")
	if string(raw) != want {
		t.Fatalf("basic credentials %q, want %q", raw, want)
	}
}

// Cancelling one waiter neither cancels the shared request nor poisons others.
func TestTokensUnderConcurrentInvalidation(t *testing.T) {
	srv, _ := tokenServer(t, func(w http.ResponseWriter, r *http.Request, i int) {
		time.Sleep(2 * time.Millisecond)
		writeJSON(w, 200, fmt.Sprintf(`{"token_type":"Bearer","expires_in":"120","access_token":"at-race-%d","refresh_token":"rt-rot-%d"}`, i, i))
	})
	e := newEnv(t, nil)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			in := Input{Type: TypeRefreshToken, OAuthTokenEndpoint: srv.URL + "/token", ClientID: "public-app", RefreshToken: fmt.Sprintf("orig-rt-%d", g%4)}
			for i := 0; i < 50; i++ {
				c := e.creds(t, in)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%3)*time.Millisecond)
				tok, err := c.Token(ctx)
				cancel()
				if err == nil && i%5 == 0 {
					c.Invalidate(tok)
				}
				if g == 0 && i%10 == 0 {
					e.now.Add(30 * time.Second)
				}
			}
		}(g)
	}
	wg.Wait()
	// No shared failure is left behind: each credential set still gets a
	// token once nobody cancels.
	for g := 0; g < 4; g++ {
		in := Input{Type: TypeRefreshToken, OAuthTokenEndpoint: srv.URL + "/token", ClientID: "public-app", RefreshToken: fmt.Sprintf("orig-rt-%d", g)}
		if _, err := e.creds(t, in).Token(context.Background()); err != nil {
			t.Errorf("refresh token %d: %v after the cancelled waiters", g, err)
		}
	}
}

// camunda-semantics.md caches a token "until expires_in − 10 s" (the
// manager used to drop it 60 s before expiry).
func TestTokenCachedUntilExpiresInMinus10s(t *testing.T) {
	srv, n := tokenServer(t, func(w http.ResponseWriter, r *http.Request, i int) {
		writeJSON(w, 200, fmt.Sprintf(`{"token_type":"Bearer","expires_in":3599,"access_token":"at-margin-%d"}`, i))
	})
	e := newEnv(t, nil)
	in := e.ccInput()
	in.OAuthTokenEndpoint = srv.URL + "/token"
	c := e.creds(t, in)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.now.Add(3580 * time.Second) // 19 s before expiry, 9 s before expires_in − 10 s
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("token re-requested %d s before expires_in − 10 s: %d requests", 9, got)
	}
}
