package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func newServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r *resp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r *resp) values() []map[string]any {
	vs, _ := r.body["value"].([]any)
	out := make([]map[string]any, len(vs))
	for i, v := range vs {
		out[i], _ = v.(map[string]any)
	}
	return out
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends a request with a bearer token unless headers say otherwise; a
// path starting with http is used as is, else it is relative to URL().
func call(t testing.TB, s *Server, method, path string, body any, headers ...string) *resp {
	t.Helper()
	return callCtx(t, context.Background(), s, method, path, body, headers...)
}

func callCtx(t testing.TB, ctx context.Context, s *Server, method, path string, body any, headers ...string) *resp {
	t.Helper()
	r, err := tryCall(ctx, s, method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func tryCall(ctx context.Context, s *Server, method, path string, body any, headers ...string) (*resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = s.URL() + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer test-token")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	hr, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer hr.Body.Close()
	raw, err := io.ReadAll(hr.Body)
	if err != nil {
		return nil, err
	}
	r := &resp{status: hr.StatusCode, header: hr.Header, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return nil, fmt.Errorf("answer is not JSON: %v: %.200s", err, raw)
		}
	}
	return r, nil
}

func wantStatus(t testing.TB, r *resp, status int, code string) {
	t.Helper()
	if r.status != status || r.errCode() != code {
		t.Fatalf("got %d %q, want %d %q; body %.400s", r.status, r.errCode(), status, code, r.raw)
	}
}

// eventually polls cond with a generous bound; the machine is shared and slow.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sendMailBody(to ...string) map[string]any {
	var rcpts []any
	for _, a := range to {
		rcpts = append(rcpts, map[string]any{"emailAddress": map[string]any{"address": a}})
	}
	return map[string]any{"message": map[string]any{
		"subject":      "Hello",
		"body":         map[string]any{"contentType": "Text", "content": "Hi there"},
		"toRecipients": rcpts,
	}}
}
