package operations

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

// staticCreds hands out "token-N", N growing with each Invalidate.
type staticCreds struct {
	mu sync.Mutex
	n  int
}

func (c *staticCreds) Token(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("token-%d", c.n), nil
}

func (c *staticCreds) Invalidate(string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return true
}

// fakeClock advances only when slept on: Retry-After and backoff cost no
// test time.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.slept += d
	return nil
}

func (f *fakeClock) total() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slept
}

type env struct {
	sim   *graphsim.Server
	gc    *graph.Client
	clk   *fakeClock
	creds *staticCreds
}

const anna = "anna@contoso.test"

func newEnv(t *testing.T, mod func(*graph.Config), opts ...graphsim.Option) *env {
	t.Helper()
	sim, err := graphsim.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.AddMailbox(anna)
	sim.AddMailbox("bob@contoso.test")
	clk := &fakeClock{now: time.Now()}
	cfg := graph.Config{BaseURL: sim.URL(), Now: clk.Now, Sleep: clk.Sleep, Redactor: &redact.Set{}}
	if mod != nil {
		mod(&cfg)
	}
	gc, err := graph.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, gc: gc, clk: clk, creds: &staticCreds{}}
}

// run decodes and runs vars (JSON) as the runtime would.
func (e *env) run(t *testing.T, vars string) (*graph.Response, error) {
	t.Helper()
	m := parse(t, vars)
	typ, _ := m["operation"].(map[string]any)["type"].(string)
	op, ok := Registry()[typ]
	if !ok {
		t.Fatalf("unknown operation %q", typ)
	}
	call, err := op.Decode(m)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return call.Run(ctx, e.gc, e.creds)
}

func wantErr(t *testing.T, err error, code, msgPrefix string) *connerr.Error {
	t.Helper()
	ce, ok := err.(*connerr.Error)
	if !ok {
		t.Fatalf("error %T %v, want *connerr.Error %s", err, err, code)
	}
	if ce.Code != code || !strings.HasPrefix(ce.Message, msgPrefix) {
		t.Fatalf("error %s: %q, want %s: %q...", ce.Code, ce.Message, code, msgPrefix)
	}
	return ce
}

func values(t *testing.T, r *graph.Response) []any {
	t.Helper()
	v, ok := jsonBody(t, r).(map[string]any)["value"].([]any)
	if !ok {
		t.Fatalf("no value list in %v", jsonBody(t, r))
	}
	return v
}

func sendVars(extra string) string {
	return `{"operation":{"type":"sendMail","userId":"` + anna + `"},"message":{"subject":"Hello","bodyContent":"Hi Bob","toRecipients":["bob@contoso.test"]` + extra + `}}`
}

func TestListMailFolders(t *testing.T) {
	e := newEnv(t, nil)
	r, err := e.run(t, `{"operation":{"type":"listMailFolders","userId":"Anna@Contoso.test"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || !strings.HasPrefix(r.HeaderMap()["content-type"].(string), "application/json") {
		t.Errorf("status %d headers %v", r.Status, r.Headers)
	}
	names := map[string]bool{}
	for _, f := range values(t, r) {
		names[f.(map[string]any)["displayName"].(string)] = true
	}
	if !names["Inbox"] || !names["Sent Items"] {
		t.Errorf("folders %v", names)
	}
}

func TestCreateMailFolderAndChildren(t *testing.T) {
	e := newEnv(t, nil)
	r, err := e.run(t, `{"operation":{"type":"createMailFolder","userId":"`+anna+`"},"folder":{"displayName":"Invoices"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 201 || jsonBody(t, r).(map[string]any)["displayName"] != "Invoices" {
		t.Fatalf("%+v", r)
	}
	id := jsonBody(t, r).(map[string]any)["id"].(string)
	if _, err := e.run(t, `{"operation":{"type":"createMailFolder","userId":"`+anna+`","parentFolderId":"`+id+`"},"folder":{"displayName":"2025","isHidden":true}}`); err != nil {
		t.Fatal(err)
	}
	r, err = e.run(t, `{"operation":{"type":"listMailFolders","userId":"`+anna+`","parentFolderId":"`+id+`"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(values(t, r)); n != 0 {
		t.Errorf("hidden child listed without includeHiddenFolders: %d", n)
	}
	r, err = e.run(t, `{"operation":{"type":"listMailFolders","userId":"`+anna+`","parentFolderId":"`+id+`","queryParameters":{"includeHiddenFolders":true}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if v := values(t, r); len(v) != 1 || v[0].(map[string]any)["displayName"] != "2025" {
		t.Errorf("children %v", v)
	}
}

func TestCreateMailFolderExists(t *testing.T) {
	for _, status := range []int{409, 400} {
		e := newEnv(t, nil, graphsim.WithFolderExistsStatus(status))
		vars := `{"operation":{"type":"createMailFolder","userId":"` + anna + `"},"folder":{"displayName":"Dup"}}`
		if _, err := e.run(t, vars); err != nil {
			t.Fatal(err)
		}
		_, err := e.run(t, vars)
		ce := wantErr(t, err, fmt.Sprint(status), "ErrorFolderExists: ")
		if ce.Final {
			t.Error("a Graph 4xx must leave the job's retries to the runtime")
		}
		body := ce.Variables["response"].(map[string]any)["body"].(map[string]any)
		if body["error"].(map[string]any)["code"] != "ErrorFolderExists" {
			t.Errorf("response body %v", body)
		}
	}
}

func addMessages(t *testing.T, sim *graphsim.Server, n int) {
	t.Helper()
	base := time.Now().Add(-time.Hour)
	for i := range n {
		sim.AddMessage(anna, "inbox", graphsim.Message{
			Subject:          fmt.Sprintf("message %02d", i),
			BodyContent:      strings.Repeat("body ", 20),
			From:             graphsim.Recipient{Address: "bob@contoso.test"},
			To:               []graphsim.Recipient{{Address: anna}},
			ReceivedDateTime: base.Add(time.Duration(i) * time.Second),
		})
	}
}

func TestListMessagesPaging(t *testing.T) {
	e := newEnv(t, nil)
	addMessages(t, e.sim, 25)

	// Without maxResults: one page exactly as Graph returns it.
	r, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`","folderId":"inbox"}}`)
	if err != nil {
		t.Fatal(err)
	}
	body := jsonBody(t, r).(map[string]any)
	if len(values(t, r)) != 10 || body["@odata.nextLink"] == nil {
		t.Fatalf("first page: %d items, nextLink %v", len(values(t, r)), body["@odata.nextLink"])
	}

	for _, tc := range []struct {
		max, top, want, requests int
	}{
		// Without $top, maxResults sets the page size (capped at 1000), so
		// one request suffices; an explicit $top is kept and paged over.
		{max: 25, want: 25, requests: 1},
		{max: 15, want: 15, requests: 1},
		{max: 100, want: 25, requests: 1},
		{max: 5, want: 5, requests: 1},
		{max: 12, top: 4, want: 12, requests: 3},
	} {
		before := e.sim.Stats().Requests
		q := ""
		if tc.top > 0 {
			q = fmt.Sprintf(`,"queryParameters":{"$top":%d,"$select":"subject"}`, tc.top)
		}
		r, err := e.run(t, fmt.Sprintf(`{"operation":{"type":"listMessages","userId":"%s","folderId":"inbox","maxResults":%d%s}}`, anna, tc.max, q))
		if err != nil {
			t.Fatal(err)
		}
		v := values(t, r)
		if len(v) != tc.want {
			t.Errorf("maxResults %d: %d items, want %d", tc.max, len(v), tc.want)
		}
		body := jsonBody(t, r).(map[string]any)
		if _, ok := body["@odata.nextLink"]; ok {
			t.Errorf("maxResults %d: nextLink kept: %v", tc.max, body["@odata.nextLink"])
		}
		if body["@odata.context"] == nil {
			t.Errorf("maxResults %d: @odata.context lost", tc.max)
		}
		if n := e.sim.Stats().Requests - before; n != tc.requests {
			t.Errorf("maxResults %d: %d requests, want %d", tc.max, n, tc.requests)
		}
		seen := map[string]bool{}
		for _, m := range v {
			id := m.(map[string]any)["id"].(string)
			if seen[id] {
				t.Errorf("maxResults %d: duplicate %s", tc.max, id)
			}
			seen[id] = true
		}
		reqs := e.sim.Requests()
		wantTop := tc.top
		if wantTop == 0 {
			wantTop = tc.max
		}
		if q := reqs[len(reqs)-tc.requests].RawQuery; !strings.Contains(q, fmt.Sprintf("%%24top=%d", wantTop)) && !strings.Contains(q, fmt.Sprintf("$top=%d", wantTop)) {
			t.Errorf("maxResults %d: first request's query %q lacks $top=%d", tc.max, q, wantTop)
		}
	}
}

func TestListMessagesMergedBodyCapped(t *testing.T) {
	const limit = 4000
	e := newEnv(t, func(c *graph.Config) { c.MaxResponseBytes = limit })
	addMessages(t, e.sim, 30)
	q := `"queryParameters":{"$select":"subject,bodyPreview","$top":5}`
	// One page fits under the cap …
	r, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`",`+q+`}}`)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := json.Marshal(jsonBody(t, r))
	if len(page)*6 < 2*limit {
		t.Fatalf("test data too small: a page is %d bytes", len(page))
	}
	// … thirty merged do not.
	_, err = e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`","maxResults":30,`+q+`}}`)
	ce := wantErr(t, err, connerr.CodeResponseTooLarge, "the pages merged for operation.maxResults (30) are larger than GRAPH_MAX_RESPONSE_BYTES (4000 bytes)")
	if !ce.Final {
		t.Error("RESPONSE_TOO_LARGE must be final")
	}
}

func TestListMessagesQueryReachesGraph(t *testing.T) {
	e := newEnv(t, nil)
	addMessages(t, e.sim, 3)
	r, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`","queryParameters":{"$filter":"subject eq 'message 01'","$select":"subject","$count":true}}}`)
	if err != nil {
		t.Fatal(err)
	}
	v := values(t, r)
	if len(v) != 1 || v[0].(map[string]any)["subject"] != "message 01" {
		t.Errorf("filtered: %v", v)
	}
}

func TestSendMail(t *testing.T) {
	e := newEnv(t, nil)
	r, err := e.run(t, sendVars(`,"ccRecipients":[{"address":"carol@example.com","name":"Carol"}],"importance":"high","attachments":[{"name":"a.txt","contentType":"text/plain","contentBytes":"aGVsbG8="}]`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 202 || r.Body != nil {
		t.Errorf("%+v", r)
	}
	got := e.sim.Messages("bob@contoso.test", "inbox")
	if len(got) != 1 {
		t.Fatalf("%d messages delivered", len(got))
	}
	m := got[0]
	if m.Subject != "Hello" || m.BodyContent != "Hi Bob" || m.Importance != "high" || len(m.Cc) != 1 || m.Cc[0].Name != "Carol" ||
		len(m.Attachments) != 1 || string(m.Attachments[0].ContentBytes) != "hello" {
		t.Errorf("delivered %+v", m)
	}
	if n := len(e.sim.Messages(anna, "sentitems")); n != 1 {
		t.Errorf("sent items: %d", n)
	}
	if _, err := e.run(t, sendVars(`,"saveToSentItems":false`)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Messages(anna, "sentitems")); n != 1 {
		t.Errorf("saveToSentItems false ignored: %d", n)
	}
}

func TestGraphErrors(t *testing.T) {
	t.Run("400 invalid recipients", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 400, Code: "ErrorInvalidRecipients",
			Message: "At least one recipient isn't valid."})
		_, err := e.run(t, sendVars(""))
		ce := wantErr(t, err, "400", "ErrorInvalidRecipients: At least one recipient isn't valid.")
		if ce.Final || ce.Variables["response"].(map[string]any)["status"] != 400 {
			t.Errorf("%+v", ce)
		}
		if n := e.sim.Stats().Requests; n != 1 {
			t.Errorf("%d requests", n)
		}
	})
	t.Run("403 access policy", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.Mailbox(anna).SetAccessDenied(true)
		_, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`)
		wantErr(t, err, "403", "ErrorAccessDenied: ")
	})
	t.Run("404 unknown mailbox", func(t *testing.T) {
		e := newEnv(t, nil)
		_, err := e.run(t, `{"operation":{"type":"listMailFolders","userId":"nobody@contoso.test"}}`)
		wantErr(t, err, "404", "ErrorInvalidUser: ")
	})
	t.Run("unknown folder", func(t *testing.T) {
		e := newEnv(t, nil)
		_, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`","folderId":"AAMkNoSuchFolder"}}`)
		ce, ok := err.(*connerr.Error)
		if !ok || (ce.Code != "404" && ce.Code != "400") || !strings.Contains(ce.Message, ": ") {
			t.Errorf("message lacks the Graph code: %q", ce.Message)
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Path: `/messages$`, Body: []byte(`{"value":[`)})
		// Paging reads the body inside the operation; a single page is
		// read by result mapping.
		_, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`","maxResults":5}}`)
		ce := wantErr(t, err, "502", "malformed JSON from Graph: ")
		if ce.Final {
			t.Error("malformed JSON should leave retries to the job")
		}
	})
	t.Run("oversized response", func(t *testing.T) {
		e := newEnv(t, func(c *graph.Config) { c.MaxResponseBytes = 64 << 10 })
		e.sim.InjectFault(graphsim.Fault{Path: `/messages$`, OversizeBytes: 64<<10 + 1})
		_, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`)
		ce := wantErr(t, err, connerr.CodeResponseTooLarge, "Graph's response is larger than GRAPH_MAX_RESPONSE_BYTES (65536 bytes)")
		if !ce.Final {
			t.Error("not final")
		}
	})
	t.Run("invalid token renewed once", func(t *testing.T) {
		e := newEnv(t, nil, graphsim.WithTokenCheck(func(tok string) error {
			if tok == "token-0" {
				return graphsim.ErrTokenExpired
			}
			return nil
		}))
		if _, err := e.run(t, `{"operation":{"type":"listMailFolders","userId":"`+anna+`"}}`); err != nil {
			t.Fatal(err)
		}
		if n := e.sim.Stats().Requests; n != 2 {
			t.Errorf("%d requests", n)
		}
	})
}

func TestThrottling(t *testing.T) {
	t.Run("429 with Retry-After", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Status: 429, Code: "ApplicationThrottled", RetryAfter: "3", Times: 1})
		if _, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`); err != nil {
			t.Fatal(err)
		}
		if e.clk.total() != 3*time.Second || e.sim.Stats().Requests != 2 {
			t.Errorf("waited %v, %d requests", e.clk.total(), e.sim.Stats().Requests)
		}
	})
	t.Run("429 without Retry-After", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Status: 429, Code: "ApplicationThrottled", Times: 2})
		if _, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`); err != nil {
			t.Fatal(err)
		}
		// 1s then 2s, each jittered down to no less than half.
		if w := e.clk.total(); w < 1500*time.Millisecond || w >= 3*time.Second || e.sim.Stats().Requests != 3 {
			t.Errorf("waited %v, %d requests", w, e.sim.Stats().Requests)
		}
	})
	t.Run("429 beyond the job deadline", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Status: 429, Code: "ApplicationThrottled", RetryAfter: "600"})
		_, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`)
		ce := wantErr(t, err, "429", "ApplicationThrottled: ")
		if ce.MinBackoff != 600*time.Second || e.sim.Stats().Requests != 1 {
			t.Errorf("MinBackoff %v, %d requests", ce.MinBackoff, e.sim.Stats().Requests)
		}
	})
	t.Run("503", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Status: 503, Times: 1})
		if _, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`); err != nil {
			t.Fatal(err)
		}
		if e.sim.Stats().Requests != 2 {
			t.Errorf("%d requests", e.sim.Stats().Requests)
		}
	})
	t.Run("sendMail retried on 429, sent once", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 429, RetryAfter: "1", Times: 1})
		if _, err := e.run(t, sendVars("")); err != nil {
			t.Fatal(err)
		}
		if n := len(e.sim.Messages("bob@contoso.test", "inbox")); n != 1 || e.sim.Stats().Requests != 2 {
			t.Errorf("%d delivered, %d requests", n, e.sim.Stats().Requests)
		}
	})
	t.Run("sendMail not retried on 504", func(t *testing.T) {
		e := newEnv(t, nil)
		e.sim.InjectFault(graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 504, Apply: true})
		_, err := e.run(t, sendVars(""))
		ce := wantErr(t, err, "504", "")
		if !strings.Contains(ce.Message, "the message may have been sent; not retried to avoid a duplicate") {
			t.Errorf("%q", ce.Message)
		}
		if n := len(e.sim.Messages("bob@contoso.test", "inbox")); n != 1 || e.sim.Stats().Requests != 1 {
			t.Errorf("%d delivered, %d requests", n, e.sim.Stats().Requests)
		}
	})
}

func TestTimeouts(t *testing.T) {
	short := func(c *graph.Config) { c.Timeout = 100 * time.Millisecond }
	t.Run("list", func(t *testing.T) {
		e := newEnv(t, short)
		e.sim.InjectFault(graphsim.Fault{Path: `/messages$`, Latency: time.Minute, Times: 1})
		if _, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`); err != nil {
			t.Fatalf("GET not retried after a timeout: %v", err)
		}
		// Stats counts a request when it arrives; the log records it when
		// the handler returns, which may be after the client gave up.
		if n := e.sim.Stats().Requests; n != 2 {
			t.Errorf("%d requests", n)
		}
	})
	t.Run("list keeps timing out", func(t *testing.T) {
		e := newEnv(t, short)
		e.sim.InjectFault(graphsim.Fault{Path: `/messages$`, Latency: time.Minute})
		_, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`"}}`)
		wantErr(t, err, "408", "Graph request timed out after 100ms")
	})
	t.Run("send", func(t *testing.T) {
		e := newEnv(t, short)
		e.sim.InjectFault(graphsim.Fault{Method: "POST", Path: `/sendMail$`, Latency: time.Minute})
		_, err := e.run(t, sendVars(""))
		ce := wantErr(t, err, "408", "Graph request timed out")
		if !strings.Contains(ce.Message, "the message may have been sent; not retried to avoid a duplicate") {
			t.Errorf("%q", ce.Message)
		}
		if n := e.sim.Stats().Requests; n != 1 {
			t.Errorf("send timed out and was repeated: %d requests", n)
		}
	})
}

func TestNothingSentForInvalidInput(t *testing.T) {
	e := newEnv(t, nil)
	for _, vars := range []string{
		`{"operation":{"type":"listMessages","userId":"../users/bob@contoso.test"}}`,
		`{"operation":{"type":"listMessages","userId":"anna@contoso.test#x"}}`,
		`{"operation":{"type":"listMessages","userId":"` + anna + `","folderId":".."}}`,
		`{"operation":{"type":"listMailFolders","userId":"` + anna + `","parentFolderId":"."}}`,
		`{"operation":{"type":"listMessages","userId":"` + anna + `","queryParameters":{"$deltatoken":"x"}}}`,
		`{"operation":{"type":"sendMail","userId":"` + anna + `"},"message":{"toRecipients":["bob@contoso.test","mallory"]}}`,
	} {
		_, err := e.run(t, vars)
		wantErr(t, err, connerr.CodeInvalidInput, "")
	}
	if n := e.sim.Stats().Requests; n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestMailboxConcurrencyAgainstGraph(t *testing.T) {
	// Real clock here: the simulator's latency makes requests overlap.
	e := newEnv(t, func(c *graph.Config) { c.Now = time.Now; c.Sleep = nil },
		graphsim.WithMailboxConcurrency(4), graphsim.WithLatency(20*time.Millisecond))
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := range 24 {
		user := anna
		if i%2 == 0 {
			user = strings.ToUpper(anna)
		}
		wg.Go(func() {
			_, err := e.run(t, `{"operation":{"type":"listMailFolders","userId":"`+user+`"}}`)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := e.sim.Stats()
	if st.Throttled429 != 0 || st.MaxConcurrentPerMailbox > 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestResponseShapeIsJSONable(t *testing.T) {
	e := newEnv(t, nil)
	addMessages(t, e.sim, 2)
	r, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`","maxResults":2}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(jsonBody(t, r)); err != nil {
		t.Fatal(err)
	}
}

// jsonBody is the decoded body of a response whose JSON must be valid.
func jsonBody(t testing.TB, r *graph.Response) any {
	t.Helper()
	b, err := r.JSONBody()
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return b
}
