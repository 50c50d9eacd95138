package graph

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

func TestNewValidatesBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"https://graph.microsoft.com/v1.0", true},
		{"https://graph.microsoft.us/v1.0/", true},
		{"http://127.0.0.1:8080/v1.0", true},
		{"http://[::1]:8080/v1.0", true},
		{"http://localhost/v1.0", true},
		{"http://graph.microsoft.com/v1.0", false},
		{"http://127.0.0.1.evil.com/v1.0", false},
		{"ftp://127.0.0.1/v1.0", false},
		{"https://user:pw@graph.microsoft.com/v1.0", false},
		{"https://graph.microsoft.com/v1.0?x=1", false},
		{"graph.microsoft.com/v1.0", false},
	} {
		_, err := New(Config{BaseURL: tc.url})
		if (err == nil) != tc.ok {
			t.Errorf("New(%q): err = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestDoBuildsRequestAndResponse(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.Header().Set("request-id", "rid-1")
		okJSON(w, `{"value":[{"id":"AAMk/+x=","size":12345678901234567890}],"@odata.nextLink":null}`)
	})
	c, _ := newTestClient(t, s.URL)
	creds := &fakeCreds{}
	resp, err := c.Do(context.Background(), creds, Request{
		Method: http.MethodGet,
		UserID: "Anna.Smith@contoso.com",
		Path:   []string{"mailFolders", "AAMk/+x=", "messages"},
		Query:  url.Values{"$select": {"subject,from"}, "$filter": {"isRead eq false and from/emailAddress/address eq 'a+b@x.com'"}, "$top": {"5"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := s.requests()[0]
	if got, want := r.URL.EscapedPath(), "/v1.0/users/Anna.Smith@contoso.com/mailFolders/AAMk%2F+x=/messages"; got != want {
		t.Errorf("path = %s, want %s", got, want)
	}
	if got, want := r.URL.RawQuery, "$filter=isRead%20eq%20false%20and%20from/emailAddress/address%20eq%20'a%2Bb@x.com'&$select=subject,from&$top=5"; got != want {
		t.Errorf("query = %s\nwant    %s", got, want)
	}
	if got := r.URL.Query().Get("$filter"); got != "isRead eq false and from/emailAddress/address eq 'a+b@x.com'" {
		t.Errorf("server decoded $filter as %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer tok-secret-1" {
		t.Errorf("Authorization = %q", got)
	}
	if resp.Status != 200 {
		t.Errorf("status = %d", resp.Status)
	}
	if resp.HeaderMap()["request-id"] != "rid-1" {
		t.Errorf("headers = %v", resp.Headers)
	}
	if l, ok := resp.HeaderMap()["x-multi"].([]any); !ok || len(l) != 2 || l[0] != "a" {
		t.Errorf("x-multi = %#v, want [a b]", resp.HeaderMap()["x-multi"])
	}
	body := jsonBody(t, resp).(map[string]any)
	item := body["value"].([]any)[0].(map[string]any)
	if item["size"] != json.Number("12345678901234567890") {
		t.Errorf("number not kept exactly: %#v", item["size"])
	}
	if _, ok := body["@odata.nextLink"]; !ok || body["@odata.nextLink"] != nil {
		t.Errorf("null not kept: %#v", body)
	}
}

func TestDoSendsJSONBody(t *testing.T) {
	var got []byte
	var ct string
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		ct = r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusCreated)
		okJSON(w, `{"id":"f1"}`)
	})
	c, _ := newTestClient(t, s.URL)
	resp, err := c.Do(context.Background(), &fakeCreds{}, Request{Method: "POST", UserID: "u@x.com", Path: []string{"mailFolders"},
		Body: map[string]any{"displayName": "<b>&</b>", "isHidden": false}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || ct != "application/json" {
		t.Errorf("status %d content-type %q", resp.Status, ct)
	}
	if string(got) != `{"displayName":"<b>&</b>","isHidden":false}` {
		t.Errorf("body = %s", got)
	}
}

func TestValidateUserID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"anna@contoso.com", true},
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", true},
		{"o'brien@contoso.com", true},
		{"", false},
		{"a/b", false},
		{"a?b", false},
		{"a#b", false},
		{`a\b`, false},
		{"..", false},
		{"a..b", false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\u0085b", false},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false},
	} {
		err := ValidateUserID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateUserID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil {
			ce := asConnErr(t, err)
			if ce.Code != connerr.CodeInvalidInput || !ce.Final || !strings.HasPrefix(ce.Message, "operation.userId: ") {
				t.Errorf("ValidateUserID(%q) = %+v", tc.id, ce)
			}
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"inbox", true},
		{"AAMkAGI2TG93AAA=", true},
		{"AAMk/AGI+2TG93AAA=", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a\tb", false},
		{"../../victim@contoso.test/mailFolders/inbox", false},
		{"AAMk/../AGI", false},
		{"AAMk\\..\\AGI", false},
		{"AAMk/./AGI", false},
		{"AAMk/..x/AGI", true},
		{"AAMk.../AGI", true},
	} {
		err := ValidateID("operation.folderId", tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.(*connerr.Error).Message, "operation.folderId: ") {
			t.Errorf("message does not name the variable: %v", err)
		}
	}
}

func TestPathInjectionSendsNothing(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{}`) })
	c, _ := newTestClient(t, s.URL)
	for _, req := range []Request{
		{UserID: "../../admin"},
		{UserID: "a@b.com/../../other"},
		{UserID: "a@b.com?$x=1"},
		{UserID: "a@b.com", Path: []string{"mailFolders", ".."}},
		{UserID: "a@b.com", Path: []string{"mailFolders", "x\r\nHost: evil"}},
	} {
		_, err := c.Do(context.Background(), &fakeCreds{}, req)
		if ce := asConnErr(t, err); ce.Code != connerr.CodeInvalidInput {
			t.Errorf("%+v: %v", req, ce)
		}
	}
	if n := s.count.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

func TestGraphErrorEnvelope(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		graphErr(w, 404, "ErrorItemNotFound", "The mailbox of s3cr3t-value was not found.")
	})
	c, _ := newTestClient(t, s.URL)
	c.cfg.Redactor.Add("s3cr3t-value")
	_, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com", Path: []string{"messages"}})
	ce := asConnErr(t, err)
	if ce.Code != "404" || ce.Final {
		t.Errorf("code %q final %v", ce.Code, ce.Final)
	}
	if ce.Message != "ErrorItemNotFound: The mailbox of *** was not found." {
		t.Errorf("message = %q", ce.Message)
	}
	resp := ce.Variables["response"].(map[string]any)
	if resp["status"] != 404 {
		t.Errorf("response.status = %v", resp["status"])
	}
	if resp["headers"].(map[string]any)["request-id"] != "req-123" {
		t.Errorf("headers = %v", resp["headers"])
	}
	b, _ := json.Marshal(resp["body"])
	if strings.Contains(string(b), "s3cr3t") || !strings.Contains(string(b), "ErrorItemNotFound") {
		t.Errorf("body = %s", b)
	}
	if n := s.count.Load(); n != 1 {
		t.Errorf("404 was retried: %d requests", n)
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(403)
		_, _ = w.Write([]byte("<html>denied</html>"))
	})
	c, _ := newTestClient(t, s.URL)
	_, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
	ce := asConnErr(t, err)
	if ce.Code != "403" || ce.Message != "Forbidden" {
		t.Errorf("%+v", ce)
	}
	if ce.Variables["response"].(map[string]any)["body"] != "<html>denied</html>" {
		t.Errorf("body = %#v", ce.Variables["response"])
	}
}

func TestBodies(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		want           any
		code           string
	}{
		{"empty", "", "", nil, ""},
		{"empty json", "application/json", "", nil, ""},
		{"text", "text/plain", "hello", "hello", ""},
		{"json without content type", "", `{"a":1}`, map[string]any{"a": json.Number("1")}, ""},
		{"malformed json", "application/json", `{"a":`, nil, "502"},
		{"trailing garbage", "application/json", `{"a":1} x`, nil, "502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil
				if tc.ct != "" {
					w.Header().Set("Content-Type", tc.ct)
				}
				_, _ = w.Write([]byte(tc.body))
			})
			c, _ := newTestClient(t, s.URL)
			resp, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
			if tc.code != "" {
				// JSON is checked where it is read, not when it arrives.
				if err != nil {
					t.Fatal(err)
				}
				_, err = resp.JSONBody()
				ce := asConnErr(t, err)
				if ce.Code != tc.code || ce.Final || !strings.HasPrefix(ce.Message, "malformed JSON from Graph: ") {
					t.Errorf("%+v", ce)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(jsonBody(t, resp))
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) {
				t.Errorf("body = %s, want %s", gb, wb)
			}
		})
	}
}

func TestInvalidTokenRetriedOnceWithNewToken(t *testing.T) {
	var auths []string
	var mu sync.Mutex
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		n := len(auths)
		mu.Unlock()
		if n == 1 {
			graphErr(w, 401, "InvalidAuthenticationToken", "Access token has expired.")
			return
		}
		okJSON(w, `{"ok":true}`)
	})
	c, _ := newTestClient(t, s.URL)
	creds := &fakeCreds{}
	if _, err := c.Do(context.Background(), creds, Request{UserID: "u@x.com"}); err != nil {
		t.Fatal(err)
	}
	if len(auths) != 2 || auths[0] != "Bearer tok-secret-1" || auths[1] != "Bearer tok-secret-2" {
		t.Errorf("authorizations = %v", auths)
	}
	if len(creds.invalidated) != 1 || creds.invalidated[0] != "tok-secret-1" {
		t.Errorf("invalidated = %v", creds.invalidated)
	}
}

func TestInvalidTokenTwiceIsAnError(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		graphErr(w, 401, "InvalidAuthenticationToken", "bad token")
	})
	c, _ := newTestClient(t, s.URL)
	creds := &fakeCreds{}
	_, err := c.Do(context.Background(), creds, Request{UserID: "u@x.com"})
	if ce := asConnErr(t, err); ce.Code != "401" || ce.Message != "InvalidAuthenticationToken: bad token (gave up after 2 attempts)" {
		t.Errorf("%+v", ce)
	}
	if n := s.count.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestOther401NotRetried(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		graphErr(w, 401, "Unauthorized", "no")
	})
	c, _ := newTestClient(t, s.URL)
	creds := &fakeCreds{}
	_, err := c.Do(context.Background(), creds, Request{UserID: "u@x.com"})
	asConnErr(t, err)
	if n := s.count.Load(); n != 1 || len(creds.invalidated) != 0 {
		t.Errorf("%d requests, invalidated %v", n, creds.invalidated)
	}
}

func TestTokenErrorPassedThrough(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{}`) })
	c, _ := newTestClient(t, s.URL)
	tokErr := connerr.New(connerr.CodeOAuthTokenError, "AADSTS7000215: Invalid client secret provided.")
	_, err := c.Do(context.Background(), &fakeCreds{err: tokErr}, Request{UserID: "u@x.com"})
	if ce := asConnErr(t, err); ce != tokErr {
		t.Errorf("got %+v", ce)
	}
	if s.count.Load() != 0 {
		t.Error("request sent without a token")
	}
}

// A failed token request answers every job that waited for it with the same
// error; a job's own Retry-After goes into its copy, never into that one.
func TestSharedTokenErrorIsNotChanged(t *testing.T) {
	s := newServer(t, throttledOnce("3", func(w http.ResponseWriter, r *http.Request) {
		graphErr(w, 401, "InvalidAuthenticationToken", "Access token has expired.")
	}))
	c, _ := newTestClient(t, s.URL)
	shared := connerr.New(connerr.CodeOAuthTokenError, "AADSTS7000215: Invalid client secret provided.")
	creds := &refreshFails{shared: shared}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Do(ctx, creds, Request{UserID: "u@x.com"})
	ce := asConnErr(t, err)
	if ce == shared {
		t.Fatal("the shared token error itself was returned and changed")
	}
	if shared.MinBackoff != 0 {
		t.Errorf("shared token error's MinBackoff changed to %v", shared.MinBackoff)
	}
	if ce.MinBackoff != 3*time.Second || ce.Code != shared.Code || ce.Message != shared.Message {
		t.Errorf("got %+v", ce)
	}
}

// refreshFails hands out a token until it is invalidated; the new token's
// request then fails with shared.
type refreshFails struct {
	fakeCreds
	shared *connerr.Error
}

func (f *refreshFails) Invalidate(tok string) bool {
	f.fakeCreds.Invalidate(tok)
	f.mu.Lock()
	f.err = f.shared
	f.mu.Unlock()
	return true
}

func TestThrottleRetryAfterSeconds(t *testing.T) {
	s := newServer(t, throttledOnce("7", func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{}`) }))
	m := metrics.New()
	c, clk := newTestClient(t, s.URL, func(cfg *Config) { cfg.Metrics = m })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "u@x.com"}); err != nil {
		t.Fatal(err)
	}
	if s.count.Load() != 2 {
		t.Errorf("%d requests", s.count.Load())
	}
	if clk.total() != 7*time.Second {
		t.Errorf("waited %v, want 7s", clk.slept)
	}
	if v := counterValue(m.GraphRetries.WithLabelValues("429")); v != 1 {
		t.Errorf("retry metric = %v", v)
	}
	if v := counterValue(m.GraphRequests.WithLabelValues("GET", "429")); v != 1 {
		t.Errorf("request metric 429 = %v", v)
	}
	if v := counterValue(m.GraphRequests.WithLabelValues("GET", "200")); v != 1 {
		t.Errorf("request metric 200 = %v", v)
	}
}

func TestThrottleRetryAfterDate(t *testing.T) {
	var n atomic.Int64
	var clk *fakeClock
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", clk.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			graphErr(w, 503, "ServiceUnavailable", "busy")
			return
		}
		okJSON(w, `{}`)
	})
	c, clk0 := newTestClient(t, s.URL)
	clk = clk0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "u@x.com"}); err != nil {
		t.Fatal(err)
	}
	// HTTP dates have second precision.
	if d := clk.total(); d < 89*time.Second || d > 90*time.Second {
		t.Errorf("waited %v, want ~90s", d)
	}
}

func TestThrottleWithoutRetryAfterBacksOff(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		graphErr(w, 429, "ApplicationThrottled", "slow down")
	})
	c, clk := newTestClient(t, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "u@x.com"})
	ce := asConnErr(t, err)
	if ce.Code != "429" || ce.Final || !strings.Contains(ce.Message, "gave up after 4 attempts") {
		t.Errorf("%+v", ce)
	}
	if s.count.Load() != DefaultMaxAttempts {
		t.Errorf("%d requests", s.count.Load())
	}
	if len(clk.slept) != DefaultMaxAttempts-1 {
		t.Fatalf("slept %v", clk.slept)
	}
	for i, d := range clk.slept {
		lo := DefaultMinBackoff << i / 2
		if d < lo || d >= 2*lo {
			t.Errorf("wait %d = %v, want in [%v, %v)", i, d, lo, 2*lo)
		}
	}
	if ce.MinBackoff <= 0 {
		t.Errorf("MinBackoff = %v", ce.MinBackoff)
	}
}

func TestThrottleBeyondDeadline(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		graphErr(w, 429, "ApplicationThrottled", "over its MailboxConcurrency limit")
	})
	c, clk := newTestClient(t, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "Anna@x.com"})
	ce := asConnErr(t, err)
	if ce.Code != "429" || ce.MinBackoff != 120*time.Second || ce.Final {
		t.Errorf("%+v", ce)
	}
	if s.count.Load() != 1 || len(clk.slept) != 0 {
		t.Errorf("%d requests, slept %v", s.count.Load(), clk.slept)
	}
	if got := c.ThrottledUntil("anna@X.com"); !got.Equal(clk.Now().Add(120 * time.Second)) {
		t.Errorf("throttled until %v", got)
	}

	// Another job for the same mailbox (other spelling) sends nothing while
	// the throttle lasts; another mailbox is not affected.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	_, err = c.Do(ctx2, &fakeCreds{}, Request{UserID: "ANNA@x.com", Method: "POST", Send: true, Body: map[string]any{}})
	ce = asConnErr(t, err)
	if ce.Code != "429" || !strings.Contains(ce.Message, "not sent") || ce.MinBackoff != 120*time.Second {
		t.Errorf("%+v", ce)
	}
	if s.count.Load() != 1 {
		t.Errorf("throttled mailbox got a request")
	}
	_, _ = c.Do(ctx2, &fakeCreds{}, Request{UserID: "bob@x.com"})
	if s.count.Load() != 2 {
		t.Errorf("other mailbox was held back")
	}
}

func TestThrottledMailboxWaitsWithinDeadline(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{}`) })
	c, clk := newTestClient(t, s.URL)
	c.mailboxes.throttle("u@x.com", clk.Now().Add(10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "U@x.com"}); err != nil {
		t.Fatal(err)
	}
	if clk.total() != 10*time.Second || s.count.Load() != 1 {
		t.Errorf("slept %v, %d requests", clk.slept, s.count.Load())
	}
}

func TestSendNotRetriedWhenItMayHaveBeenSent(t *testing.T) {
	for _, status := range []int{500, 502, 504} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			graphErr(w, status, "UnknownError", "gateway")
		})
		c, _ := newTestClient(t, s.URL)
		_, err := c.Do(context.Background(), &fakeCreds{}, Request{Method: "POST", UserID: "u@x.com", Path: []string{"sendMail"}, Body: map[string]any{"a": 1}, Send: true})
		ce := asConnErr(t, err)
		if ce.Code != strconv.Itoa(status) || !strings.Contains(ce.Message, "the message may have been sent; not retried to avoid a duplicate") {
			t.Errorf("%d: %+v", status, ce)
		}
		if s.count.Load() != 1 {
			t.Errorf("%d: %d requests, want exactly 1", status, s.count.Load())
		}
	}
}

func TestGetRetriedOn504(t *testing.T) {
	var n atomic.Int64
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			graphErr(w, 504, "GatewayTimeout", "gateway")
			return
		}
		okJSON(w, `{}`)
	})
	c, _ := newTestClient(t, s.URL)
	if _, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"}); err != nil {
		t.Fatal(err)
	}
	if s.count.Load() != 3 {
		t.Errorf("%d requests", s.count.Load())
	}
}

func TestSendRetriedOn429WithSameBody(t *testing.T) {
	var n atomic.Int64
	var bodies []string
	var mu sync.Mutex
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "2")
			graphErr(w, 429, "ApplicationThrottled", "x")
			return
		}
		w.WriteHeader(202)
	})
	c, _ := newTestClient(t, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.Do(ctx, &fakeCreds{}, Request{Method: "POST", UserID: "u@x.com", Path: []string{"sendMail"}, Body: map[string]any{"message": map[string]any{"subject": "hi"}}, Send: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 202 || jsonBody(t, resp) != nil {
		t.Errorf("%+v", resp)
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || bodies[0] == "" {
		t.Errorf("bodies = %q", bodies)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, clk := newTestClient(t, "http://"+addr)
	_, err = c.Do(context.Background(), &fakeCreds{}, Request{Method: "POST", UserID: "u@x.com", Path: []string{"sendMail"}, Body: map[string]any{}, Send: true})
	ce := asConnErr(t, err)
	if ce.Code != "503" || strings.Contains(ce.Message, "may have been sent") || !strings.Contains(ce.Message, "gave up after 4 attempts") {
		t.Errorf("%+v", ce)
	}
	if len(clk.slept) != DefaultMaxAttempts-1 {
		t.Errorf("send not retried on connection refused: slept %v", clk.slept)
	}
}

func TestTimeout(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	short := func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond }
	c, _ := newTestClient(t, s.URL, short)
	_, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
	ce := asConnErr(t, err)
	if ce.Code != "408" || ce.Final || !strings.Contains(ce.Message, "timed out") {
		t.Errorf("%+v", ce)
	}
	if s.count.Load() != DefaultMaxAttempts {
		t.Errorf("GET timeout: %d requests", s.count.Load())
	}

	s2 := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		// The server notices the client going away only once the body is read.
		_, _ = io.ReadAll(r.Body)
		<-r.Context().Done()
	})
	c2, _ := newTestClient(t, s2.URL, short)
	_, err = c2.Do(context.Background(), &fakeCreds{}, Request{Method: "POST", UserID: "u@x.com", Path: []string{"sendMail"}, Body: map[string]any{}, Send: true})
	ce = asConnErr(t, err)
	if ce.Code != "408" || !strings.Contains(ce.Message, "may have been sent") {
		t.Errorf("%+v", ce)
	}
	if s2.count.Load() != 1 {
		t.Errorf("send timeout: %d requests, want 1", s2.count.Load())
	}
}

func TestJobDeadlineIs408(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c, _ := newTestClient(t, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "u@x.com"})
	if ce := asConnErr(t, err); ce.Code != "408" {
		t.Errorf("%+v", ce)
	}
}

// rtFunc lets a test play the network.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// endless is a body that never ends, counting what was read from it.
type endless struct{ n atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.n.Add(int64(len(p)))
	return len(p), nil
}
func (e *endless) Close() error { return nil }

func TestResponseCap(t *testing.T) {
	const limit = 1000
	capped := func(cfg *Config) { cfg.MaxResponseBytes = limit }
	t.Run("exactly the cap", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(strings.Repeat("x", limit)))
		})
		c, _ := newTestClient(t, s.URL, capped)
		resp, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
		if err != nil || len(jsonBody(t, resp).(string)) != limit {
			t.Fatalf("%v", err)
		}
	})
	t.Run("one byte more", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(strings.Repeat("x", limit+1)))
		})
		c, _ := newTestClient(t, s.URL, capped)
		_, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
		if ce := asConnErr(t, err); ce.Code != connerr.CodeResponseTooLarge || !ce.Final {
			t.Errorf("%+v", ce)
		}
		if s.count.Load() != 1 {
			t.Errorf("retried")
		}
	})
	for _, cl := range []int64{-1, 10} {
		t.Run("lying content length", func(t *testing.T) {
			body := &endless{}
			c, _ := newTestClient(t, "http://127.0.0.1:1", capped, func(cfg *Config) {
				cfg.Transport = rtFunc(func(r *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, ContentLength: cl, Request: r}, nil
				})
			})
			_, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
			if ce := asConnErr(t, err); ce.Code != connerr.CodeResponseTooLarge {
				t.Errorf("%+v", ce)
			}
			if n := body.n.Load(); n > 64<<10 {
				t.Errorf("read %d bytes of an endless body", n)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{}`) })
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	})
	c, _ := newTestClient(t, s.URL)
	_, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
	if ce := asConnErr(t, err); ce.Code != "302" {
		t.Errorf("%+v", ce)
	}
	if other.count.Load() != 0 {
		t.Error("redirect followed")
	}
}

func TestFollow(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{"value":[]}`) })
	c, _ := newTestClient(t, s.URL)
	good := s.URL + "/v1.0/users/u@x.com/messages?%24skip=10&$top=5"
	if _, err := c.Follow(context.Background(), &fakeCreds{}, "u@x.com", good); err != nil {
		t.Fatal(err)
	}
	if got := s.requests()[0].URL.RawQuery; got != "%24skip=10&$top=5" {
		t.Errorf("link not followed verbatim: %s", got)
	}
	host := strings.TrimPrefix(s.URL, "http://")
	for _, bad := range []string{
		"https://" + host + "/v1.0/users/u/messages",
		"http://evil.example.com/v1.0/users/u/messages",
		"http://127.0.0.2:1/v1.0/users/u/messages",
		"http://user@" + host + "/v1.0/users/u/messages",
		s.URL + "/beta/users/u/messages",
		s.URL + "/v1.0x/users/u/messages",
		s.URL + "/v1.0/../beta/users/u/messages",
		s.URL + "/v1.0/users/%2e%2e/x",
		"/v1.0/users/u/messages",
		"::bad",
	} {
		_, err := c.Follow(context.Background(), &fakeCreds{}, "u@x.com", bad)
		if ce := asConnErr(t, err); ce.Code != "502" || !ce.Final {
			t.Errorf("%s: %+v", bad, ce)
		}
	}
	if s.count.Load() != 1 {
		t.Errorf("%d requests", s.count.Load())
	}
}

func TestMailboxConcurrency(t *testing.T) {
	var inFlight, maxSeen atomic.Int64
	release := make(chan struct{})
	var perMailbox sync.Map
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		key := strings.ToLower(strings.Split(r.URL.Path, "/")[3])
		v, _ := perMailbox.LoadOrStore(key, new(atomic.Int64))
		cur := v.(*atomic.Int64).Add(1)
		defer v.(*atomic.Int64).Add(-1)
		inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxSeen.Load()
			if cur <= m || maxSeen.CompareAndSwap(m, cur) {
				break
			}
		}
		if key == "busy@x.com" {
			<-release
		}
		okJSON(w, `{}`)
	})
	c, _ := newTestClient(t, s.URL, func(cfg *Config) { cfg.MailboxConcurrency = 2; cfg.Sleep = sleepCtx; cfg.Now = time.Now })
	var wg sync.WaitGroup
	for i := range 6 {
		id := "busy@x.com"
		if i%2 == 1 {
			id = "BUSY@x.com"
		}
		wg.Go(func() {
			if _, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: id}); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, func() bool { return inFlight.Load() == 2 })
	// The busy mailbox has its two slots taken; another mailbox is served.
	if _, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "free@x.com"}); err != nil {
		t.Fatal(err)
	}
	// A caller waiting for a slot gives up with its context.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "busy@x.com"})
		done <- err
	}()
	cancel()
	if err := <-done; err == nil {
		t.Error("canceled wait for a slot succeeded")
	}
	close(release)
	wg.Wait()
	if m := maxSeen.Load(); m != 2 {
		t.Errorf("max in flight for one mailbox = %d, want 2", m)
	}
	if n := c.mailboxes.len(); n != 0 {
		t.Errorf("%d idle mailbox entries kept", n)
	}
}

func TestMailboxEntriesDoNotAccumulate(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{}`) })
	c, clk := newTestClient(t, s.URL)
	for i := range 50 {
		if _, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "user" + strconv.Itoa(i) + "@x.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.mailboxes.len(); n != 0 {
		t.Errorf("%d entries after 50 idle mailboxes", n)
	}
	// Throttled entries stay while throttled and are swept afterwards.
	c.mailboxes.throttle("t@x.com", clk.Now().Add(time.Second))
	_ = clk.Sleep(context.Background(), 2*time.Second)
	for i := range sweepEvery {
		mb := c.mailboxes.ref("k" + strconv.Itoa(i%1000) + strconv.Itoa(i/1000))
		c.mailboxes.unref("k"+strconv.Itoa(i%1000)+strconv.Itoa(i/1000), mb)
	}
	if n := c.mailboxes.len(); n != 0 {
		t.Errorf("%d entries after sweep", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLogsRequestIDButNeverTheToken(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	var n atomic.Int64
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			graphErr(w, 404, "ErrorItemNotFound", "nope")
			return
		}
		w.Header().Set("request-id", "rid-ok")
		okJSON(w, `{}`)
	})
	c, _ := newTestClient(t, s.URL, func(cfg *Config) { cfg.Logger = zap.New(core) })
	_, _ = c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com", Query: url.Values{"$filter": {"subject eq 'tok-secret-1'"}}})
	_, _ = c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
	var warn, debug bool
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(b), "tok-secret") || strings.Contains(e.Message, "tok-secret") {
			t.Errorf("token logged: %s %s", e.Message, b)
		}
		if e.Level == zapcore.WarnLevel && e.ContextMap()["request-id"] == "req-123" && e.ContextMap()["graph-code"] == "ErrorItemNotFound" {
			warn = true
		}
		if e.Level == zapcore.DebugLevel && e.ContextMap()["request-id"] == "rid-ok" {
			debug = true
		}
	}
	if !warn || !debug {
		t.Errorf("warn %v debug %v: %v", warn, debug, logs.All())
	}
}

// A secret in a query option is logged as the request went out, encoded the
// way this client encodes queries; the redactor knows that spelling too.
func TestEncodedQuerySecretIsMaskedInLogs(t *testing.T) {
	const secret = "Pro ject+S3CRET@o'hara/x"
	core, logs := observer.New(zapcore.DebugLevel)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { graphErr(w, 400, "BadRequest", "Invalid filter clause") })
	rd := &redact.Set{}
	rd.Add(secret)
	c, _ := newTestClient(t, s.URL, func(cfg *Config) { cfg.Logger = zap.New(core); cfg.Redactor = rd })
	_, _ = c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com", Query: url.Values{"$filter": {"subject eq '" + secret + "'"}}})
	if got := s.requests()[0].URL.Query().Get("$filter"); got != "subject eq '"+secret+"'" {
		t.Fatalf("Graph got %q", got)
	}
	logged := 0
	for _, e := range logs.All() {
		u, _ := e.ContextMap()["url"].(string)
		if u == "" {
			continue
		}
		logged++
		if strings.Contains(u, "S3CRET") || !strings.Contains(u, "***") {
			t.Errorf("logged url %s", u)
		}
	}
	if logged == 0 {
		t.Fatal("no request was logged")
	}
}

func TestRedactorGetsToken(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		graphErr(w, 400, "BadRequest", "token was "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	})
	c, _ := newTestClient(t, s.URL)
	_, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com"})
	ce := asConnErr(t, err)
	if strings.Contains(ce.Message, "tok-secret") || !strings.Contains(ce.Message, "***") {
		t.Errorf("%q", ce.Message)
	}
}

func TestCanceledContext(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { okJSON(w, `{}`) })
	c, _ := newTestClient(t, s.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Do(ctx, &fakeCreds{}, Request{UserID: "u@x.com"})
	ce := asConnErr(t, err)
	if ce.Code != "503" || !errors.Is(ce, context.Canceled) {
		t.Errorf("%+v cause %v", ce, ce.Cause)
	}
}

// A send canceled while Graph has it (the worker's shutdown abort) may have
// gone out; one canceled while it waited for its mailbox's slot has not.
func TestCanceledSendSaysWhetherItMayHaveGone(t *testing.T) {
	arrived := make(chan struct{}, 1)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	c, _ := newTestClient(t, s.URL, func(cfg *Config) { cfg.MailboxConcurrency = 1 })
	send := Request{Method: "POST", UserID: "u@x.com", Path: []string{"sendMail"}, Body: map[string]any{}, Send: true}
	onWire, cancelOnWire := context.WithCancel(context.Background())
	waiting, cancelWaiting := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := c.Do(onWire, &fakeCreds{}, send); errs <- err }()
	<-arrived
	go func() { _, err := c.Do(waiting, &fakeCreds{}, send); errs <- err }()
	waitFor(t, func() bool { return waitersFor(c.mailboxes, "u@x.com") == 1 })
	cancelWaiting()
	ce := asConnErr(t, <-errs)
	if ce.Code != "503" || strings.Contains(ce.Message, "may have been sent") || ce.MayHaveActed || !errors.Is(ce, context.Canceled) {
		t.Errorf("canceled before sending: %+v", ce)
	}
	cancelOnWire()
	ce = asConnErr(t, <-errs)
	if ce.Code != "503" || !strings.Contains(ce.Message, "may have been sent") || !ce.MayHaveActed {
		t.Errorf("canceled on the wire: %+v", ce)
	}
	if n := s.count.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func BenchmarkDo(b *testing.B) {
	s := newServer(b, func(w http.ResponseWriter, r *http.Request) {
		okJSON(w, `{"@odata.context":"x","value":[{"id":"1","subject":"hello","isRead":false},{"id":"2","subject":"world","isRead":true}]}`)
	})
	c, _ := newTestClient(b, s.URL, func(cfg *Config) { cfg.Now = time.Now; cfg.Sleep = sleepCtx })
	creds := &fakeCreds{}
	req := Request{UserID: "u@x.com", Path: []string{"messages"}, Query: url.Values{"$top": {"2"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(context.Background(), creds, req); err != nil {
			b.Fatal(err)
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func TestIsJSONType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                               true,
		"application/json; odata.metadata=minimal":       true,
		"Application/JSON;charset=utf-8":                 true,
		"application/json ; charset=utf-8":               true,
		"application/problem+json":                       true,
		"application/vnd.api+json; charset=utf-8":        true,
		"application/jsonx":                              false,
		"application/json-seq":                           false,
		"text/plain":                                     false,
		"text/html; charset=utf-8":                       false,
		"application/octet-stream":                       false,
		"application/json;;":                             true,
		"application/x-json":                             false,
		"multipart/mixed; boundary=\"application/json\"": false,
	} {
		if got := isJSONType(ct); got != want {
			t.Errorf("isJSONType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// The mapping must know whether running the job again would repeat what
// Graph did.
func TestResponseTellsWhetherGraphActed(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		_, _ = w.Write([]byte(`{"value":[]}`))
	})
	c, _ := newTestClient(t, s.URL)
	read, err := c.Do(context.Background(), &fakeCreds{}, Request{UserID: "u@x.com", Path: []string{"messages"}})
	if err != nil || read.Acted {
		t.Fatalf("GET: %v, acted %v", err, read != nil && read.Acted)
	}
	sent, err := c.Do(context.Background(), &fakeCreds{}, Request{Method: "POST", UserID: "u@x.com", Path: []string{"sendMail"}, Body: map[string]any{}, Send: true})
	if err != nil || !sent.Acted {
		t.Fatalf("POST: %v, acted %v", err, sent != nil && sent.Acted)
	}
}
