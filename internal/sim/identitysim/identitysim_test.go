package identitysim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func newServer(t *testing.T) *Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type answer struct {
	status int
	body   map[string]any
}

func post(t *testing.T, s *Server, form url.Values, basicUser, basicPass string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.TokenURL("contoso.onmicrosoft.com"), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("answer is not JSON: %q", b)
	}
	return answer{resp.StatusCode, body}
}

func cc(id, secret, scope string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {scope}}
	if secret != "" {
		v.Set("client_secret", secret)
	}
	return v
}

const graphDefault = "https://graph.microsoft.com/.default"

func TestClientCredentialsBodyAndBasic(t *testing.T) {
	s := newServer(t)
	s.RegisterClient("app", "s3cr:et/+=")

	a := post(t, s, cc("app", "s3cr:et/+=", graphDefault), "", "")
	if a.status != 200 || a.body["token_type"] != "Bearer" || a.body["expires_in"] != float64(3599) ||
		a.body["ext_expires_in"] != float64(3599) {
		t.Fatalf("body auth: %+v", a)
	}
	tok, _ := a.body["access_token"].(string)
	if err := s.Validate(tok); err != nil {
		t.Fatalf("Validate(issued) = %v", err)
	}
	if _, has := a.body["refresh_token"]; has {
		t.Error("client credentials answer must not carry a refresh token")
	}

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {graphDefault}}
	a = post(t, s, form, "app", "s3cr:et/+=")
	if a.status != 200 {
		t.Fatalf("basic auth: %+v", a)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].BasicAuth || !reqs[1].BasicAuth || reqs[1].ClientID != "app" ||
		reqs[1].GrantType != "client_credentials" || reqs[1].Scope != graphDefault ||
		reqs[1].Tenant != "contoso.onmicrosoft.com" || s.TokenRequests() != 2 {
		t.Fatalf("requests: %+v", reqs)
	}
}

func TestErrors(t *testing.T) {
	s := newServer(t)
	s.RegisterClient("app", "right")
	s.RegisterClient("public", "")

	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
		aadsts float64
	}{
		{"wrong secret", cc("app", "wrong", graphDefault), 401, "invalid_client", 7000215},
		{"no secret", cc("app", "", graphDefault), 401, "invalid_client", 7000218},
		{"unknown client", cc("nobody", "x", graphDefault), 400, "unauthorized_client", 700016},
		{"scope without .default", cc("app", "right", "https://graph.microsoft.com/Mail.Read"), 400, "invalid_scope", 1002012},
		{"no scope", cc("app", "right", ""), 400, "invalid_request", 900144},
		{"public client sends secret", url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "client_secret": {"x"}, "refresh_token": {"r"}}, 401, "invalid_client", 700025},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {"nope"}}, 400, "invalid_grant", 70000},
		{"unsupported grant", url.Values{"grant_type": {"password"}, "client_id": {"app"}}, 400, "unsupported_grant_type", 70003},
		{"no grant", url.Values{"client_id": {"app"}}, 400, "invalid_request", 900144},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, s, c.form, "", "")
			if a.status != c.status || a.body["error"] != c.code {
				t.Fatalf("got %d %v", a.status, a.body)
			}
			codes, _ := a.body["error_codes"].([]any)
			if len(codes) != 1 || codes[0] != c.aadsts {
				t.Fatalf("error_codes = %v", a.body["error_codes"])
			}
			desc, _ := a.body["error_description"].(string)
			first, rest, ok := strings.Cut(desc, "\r\n")
			if !ok || !strings.HasPrefix(first, "AADSTS") || !strings.HasPrefix(rest, "Trace ID: ") ||
				!strings.Contains(rest, "\r\nCorrelation ID: ") || !strings.Contains(rest, "\r\nTimestamp: ") {
				t.Fatalf("description shape: %q", desc)
			}
			for _, k := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
				if _, ok := a.body[k]; !ok {
					t.Errorf("missing %s", k)
				}
			}
			if strings.Contains(desc, "right") {
				t.Error("description leaks the registered secret")
			}
		})
	}
}

func TestRefreshTokenGrant(t *testing.T) {
	s := newServer(t)
	s.RegisterClient("public", "")
	s.RegisterClient("conf", "sec")
	rt := s.IssueRefreshToken("public")

	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {rt}, "scope": {graphDefault}}
	a := post(t, s, form, "", "")
	if a.status != 200 || a.body["scope"] != graphDefault || a.body["access_token"] == nil {
		t.Fatalf("%+v", a)
	}
	if _, has := a.body["refresh_token"]; has {
		t.Fatal("no rotation configured, but a refresh token came back")
	}

	// A refresh token is bound to its client.
	other := url.Values{"grant_type": {"refresh_token"}, "client_id": {"conf"}, "client_secret": {"sec"}, "refresh_token": {rt}}
	if a := post(t, s, other, "", ""); a.status != 400 || a.body["error"] != "invalid_grant" {
		t.Fatalf("foreign client: %+v", a)
	}

	s.SetRotateRefreshTokens(true)
	a = post(t, s, form, "", "")
	next, _ := a.body["refresh_token"].(string)
	if a.status != 200 || next == "" || next == rt {
		t.Fatalf("rotation: %+v", a)
	}
	form2 := url.Values{"grant_type": {"refresh_token"}, "client_id": {"public"}, "refresh_token": {next}}
	if a := post(t, s, form2, "", ""); a.status != 200 {
		t.Fatalf("rotated token refused: %+v", a)
	}
	if a := post(t, s, form, "", ""); a.status != 200 {
		t.Fatalf("old token must stay valid after rotation: %+v", a)
	}

	s.ExpireRefreshToken(rt)
	a = post(t, s, form, "", "")
	if a.status != 400 || a.body["error"] != "invalid_grant" || !strings.HasPrefix(a.body["error_description"].(string), "AADSTS700082:") {
		t.Fatalf("expired: %+v", a)
	}
	s.RequireInteraction(next)
	a = post(t, s, form2, "", "")
	if a.status != 400 || a.body["error"] != "interaction_required" || !strings.HasPrefix(a.body["error_description"].(string), "AADSTS50076:") {
		t.Fatalf("interaction: %+v", a)
	}
}

func TestFailNextTTLAndValidate(t *testing.T) {
	s := newServer(t)
	s.RegisterClient("app", "sec")
	s.FailNext(503, 2)
	for i := 0; i < 2; i++ {
		if a := post(t, s, cc("app", "sec", graphDefault), "", ""); a.status != 503 || a.body["error"] != "temporarily_unavailable" {
			t.Fatalf("failure %d: %+v", i, a)
		}
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s.SetNow(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	s.SetTokenTTL(10 * time.Minute)
	a := post(t, s, cc("app", "sec", graphDefault), "", "")
	if a.status != 200 || a.body["expires_in"] != float64(600) {
		t.Fatalf("%+v", a)
	}
	tok := a.body["access_token"].(string)
	if err := s.Validate(tok); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(10 * time.Minute)
	mu.Unlock()
	if err := s.Validate(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("after TTL: %v", err)
	}
	if err := s.Validate("forged"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged: %v", err)
	}
	if s.TokenRequests() != 3 {
		t.Fatalf("TokenRequests = %d", s.TokenRequests())
	}
}

func TestLatencyAndClientGivingUp(t *testing.T) {
	s := newServer(t)
	s.RegisterClient("app", "sec")
	s.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.TokenURL("t"), strings.NewReader(cc("app", "sec", graphDefault).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("request with an hour of latency answered")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cancelled request did not end")
	}
}

func TestRoutingAndMethod(t *testing.T) {
	s := newServer(t)
	resp, err := http.Get(s.TokenURL("t"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	resp, err = http.Post(s.URL()+"/t/oauth2/token", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("v1 path: %d", resp.StatusCode)
	}
}

func TestHold(t *testing.T) {
	s := newServer(t)
	s.RegisterClient("app", "sec")
	release := s.Hold()
	done := make(chan int, 1)
	go func() {
		resp, err := http.PostForm(s.TokenURL("t"), cc("app", "sec", graphDefault))
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	deadline := time.Now().Add(30 * time.Second)
	for s.TokenRequests() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("request did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case status := <-done:
		t.Fatalf("answered while held: %d", status)
	default:
	}
	release()
	release()
	if status := <-done; status != 200 {
		t.Fatalf("held request: %d", status)
	}
	// After release, answers are immediate again.
	if a := post(t, s, cc("app", "sec", graphDefault), "", ""); a.status != 200 {
		t.Fatalf("%+v", a)
	}
}
