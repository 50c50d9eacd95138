package operations

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

// pagedGraph answers GETs from a table: request URI (path?query) -> body.
// Bodies may contain "BASE", replaced by the server's base URL.
type pagedGraph struct {
	srv   *httptest.Server
	base  string
	count atomic.Int64
	mu    sync.Mutex
	seen  []string
}

func newPagedGraph(t *testing.T, pages map[string]string) *pagedGraph {
	t.Helper()
	g := &pagedGraph{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.count.Add(1)
		g.mu.Lock()
		g.seen = append(g.seen, r.URL.RequestURI())
		g.mu.Unlock()
		body, ok := pages[r.URL.RequestURI()]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"ErrorItemNotFound","message":"no such page"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, strings.ReplaceAll(body, "BASE", g.base))
	}))
	t.Cleanup(g.srv.Close)
	g.base = g.srv.URL + "/v1.0"
	return g
}

func (g *pagedGraph) client(t *testing.T, maxBytes int64) *graph.Client {
	t.Helper()
	gc, err := graph.New(graph.Config{BaseURL: g.base, MaxResponseBytes: maxBytes, Redactor: &redact.Set{}})
	if err != nil {
		t.Fatal(err)
	}
	return gc
}

func runList(t *testing.T, gc *graph.Client, timeout time.Duration, vars string) (*graph.Response, error) {
	t.Helper()
	call, err := ListMessages{}.Decode(parse(t, vars))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return call.Run(ctx, gc, &staticCreds{})
}

// A nextLink cycle of length 2 (B -> C -> B) over empty pages is only
// caught when a link repeats immediately; otherwise collect requests pages
// until the job's deadline, burning the mailbox's request budget.
func TestNextLinkCycleIsDetected(t *testing.T) {
	g := newPagedGraph(t, map[string]string{
		"/v1.0/users/anna@contoso.test/messages?$top=5":       `{"value":[],"@odata.nextLink":"BASE/users/anna@contoso.test/messages?$skiptoken=B"}`,
		"/v1.0/users/anna@contoso.test/messages?$skiptoken=B": `{"value":[],"@odata.nextLink":"BASE/users/anna@contoso.test/messages?$skiptoken=C"}`,
		"/v1.0/users/anna@contoso.test/messages?$skiptoken=C": `{"value":[],"@odata.nextLink":"BASE/users/anna@contoso.test/messages?$skiptoken=B"}`,
	})
	start := time.Now()
	_, err := runList(t, g.client(t, 0), 2*time.Second, `{"operation":{"type":"listMessages","userId":"anna@contoso.test","maxResults":5}}`)
	n := g.count.Load()
	if n > 4 {
		t.Errorf("nextLink cycle B->C->B followed %d times in %v (until the deadline); err = %v", n, time.Since(start).Round(time.Millisecond), err)
	}
	if ce, ok := err.(*connerr.Error); !ok || ce.Code != "502" {
		t.Errorf("want a 502 naming the repeated nextLink, got %v", err)
	}
}

// A nextLink that leaves the job's mailbox (same host, same /v1.0 prefix)
// is followed with the app token: the job for anna returns bob's mail.
func TestNextLinkStaysInMailbox(t *testing.T) {
	for name, link := range map[string]string{
		"other mailbox":         "BASE/users/bob@contoso.test/messages?$skip=1",
		"other resource":        "BASE/groups/g1/threads?$skip=1",
		"backslash dot segment": `BASE/users/anna@contoso.test/messages/..\\..\\bob@contoso.test/messages?$skip=1`,
	} {
		t.Run(name, func(t *testing.T) {
			g := newPagedGraph(t, map[string]string{
				"/v1.0/users/anna@contoso.test/messages?$top=5": `{"value":[{"id":"a1"}],"@odata.nextLink":"` + link + `"}`,
				"/v1.0/users/bob@contoso.test/messages?$skip=1": `{"value":[{"id":"bob-secret"}]}`,
				"/v1.0/groups/g1/threads?$skip=1":               `{"value":[{"id":"group-thread"}]}`,
			})
			r, err := runList(t, g.client(t, 0), 10*time.Second, `{"operation":{"type":"listMessages","userId":"anna@contoso.test","maxResults":5}}`)
			g.mu.Lock()
			seen := append([]string(nil), g.seen...)
			g.mu.Unlock()
			if len(seen) > 1 {
				var got any
				if err == nil {
					got, _ = r.JSONBody()
				}
				t.Errorf("nextLink outside /users/anna@contoso.test was followed: requests %q; result %v, err %v", seen, got, err)
			}
		})
	}
}

// Links that stay in the mailbox are followed, however Graph spells the
// user: as given in another case, as users('...'), or as an object id.
func TestNextLinkInTheSameMailboxIsFollowed(t *testing.T) {
	const guid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	for name, path := range map[string]string{
		"case":      "/v1.0/users/Anna@Contoso.test/messages",
		"key form":  "/v1.0/users('anna@contoso.test')/messages",
		"object id": "/v1.0/users/" + guid + "/messages",
	} {
		t.Run(name, func(t *testing.T) {
			g := newPagedGraph(t, map[string]string{
				"/v1.0/users/anna@contoso.test/messages?$top=5": `{"value":[{"id":"a1"}],"@odata.nextLink":"BASE` + strings.TrimPrefix(path, "/v1.0") + `?$skip=1"}`,
				path + "?$skip=1": `{"value":[{"id":"a2"}]}`,
			})
			r, err := runList(t, g.client(t, 0), 10*time.Second, `{"operation":{"type":"listMessages","userId":"anna@contoso.test","maxResults":5}}`)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := r.JSONBody()
			if n := len(body.(map[string]any)["value"].([]any)); n != 2 {
				t.Fatalf("want both pages, got %d items", n)
			}
		})
	}
}

// The merged body is held to GRAPH_MAX_RESPONSE_BYTES by counting the items
// only: the envelope (@odata.context, @odata.count, a kept @odata.nextLink)
// is not counted, so the merged body can be larger than the cap that every
// single page had to respect.
func TestMergedBodyIncludesEnvelope(t *testing.T) {
	const limit = 2000
	ctxURL := "BASE/$metadata#users('anna%40contoso.test')/messages(" + strings.Repeat("x", 700) + ")"
	item := func(id string) string { return `{"id":"` + id + `","subject":"` + strings.Repeat("s", 430) + `"}` }
	g := newPagedGraph(t, map[string]string{
		"/v1.0/users/anna@contoso.test/messages?$top=2":  `{"@odata.context":"` + ctxURL + `","value":[` + item("1") + `,` + item("2") + `],"@odata.nextLink":"BASE/users/anna@contoso.test/messages?$skip=2"}`,
		"/v1.0/users/anna@contoso.test/messages?$skip=2": `{"@odata.context":"` + ctxURL + `","value":[` + item("3") + `,` + item("4") + `]}`,
	})
	r, err := runList(t, g.client(t, limit), 10*time.Second, `{"operation":{"type":"listMessages","userId":"anna@contoso.test","maxResults":4,"queryParameters":{"$top":2}}}`)
	if err != nil {
		if ce, ok := err.(*connerr.Error); ok && ce.Code == connerr.CodeResponseTooLarge {
			return // fixed
		}
		t.Fatal(err)
	}
	body, _ := r.JSONBody()
	b, _ := json.Marshal(body)
	if len(b) > limit {
		t.Errorf("merged body is %d bytes, larger than GRAPH_MAX_RESPONSE_BYTES (%d), and no RESPONSE_TOO_LARGE", len(b), limit)
	}
}

// operation.userId "." passes ValidateUserID and becomes the dot segment
// /users/./messages, which URL normalisation turns into /users/messages.
// ValidateID refuses the same value for folder ids.
func TestUserIDDotSegmentRefused(t *testing.T) {
	for _, op := range Registry() {
		_, err := op.Decode(parse(t, `{"operation":{"type":"x","userId":"."},"folder":{"displayName":"x"},"message":{"toRecipients":["b@c.de"]}}`))
		if ce, ok := err.(*connerr.Error); !ok || ce.Code != connerr.CodeInvalidInput {
			t.Errorf("%s: userId \".\" accepted (err %v); the request would go to %s", op.Type(), err, "/users/./...")
		}
	}
}

// afterFirst runs hook once, after the first response has been received.
type afterFirst struct {
	next http.RoundTripper
	once sync.Once
	hook func()
}

func (a *afterFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(r)
	a.once.Do(a.hook)
	return resp, err
}

// Graph's messages nextLink is $skip-based: a mail that arrives between two
// pages shifts the newest-first list, and the merged "value" holds the same
// message twice (a mail moved away between pages is silently skipped
// instead).
func TestMergedPagesHaveNoDuplicateIDs(t *testing.T) {
	var e *env
	e = newEnv(t, func(c *graph.Config) {
		c.Transport = &afterFirst{next: http.DefaultTransport, hook: func() {
			e.sim.AddMessage(anna, "inbox", graphsimMessage("arrived between pages"))
		}}
	})
	addMessages(t, e.sim, 6)
	r, err := e.run(t, `{"operation":{"type":"listMessages","userId":"`+anna+`","folderId":"inbox","maxResults":6,"queryParameters":{"$top":3,"$select":"subject"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range values(t, r) {
		seen[m.(map[string]any)["id"].(string)]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("message %s appears %d times in the merged value (%d items, %d distinct)", id, n, len(values(t, r)), len(seen))
		}
	}
}

func graphsimMessage(subject string) graphsim.Message {
	return graphsim.Message{Subject: subject, From: graphsim.Recipient{Address: "bob@contoso.test"},
		To: []graphsim.Recipient{{Address: anna}}, ReceivedDateTime: time.Now()}
}

// An explicit $top larger than maxResults asks Graph for maxResults only.
func TestPageIsNoLargerThanMaxResults(t *testing.T) {
	g := newPagedGraph(t, map[string]string{
		"/v1.0/users/anna@contoso.test/messages?$top=5": `{"value":[{"id":"a1"},{"id":"a2"}]}`,
		"/v1.0/users/anna@contoso.test/messages?$top=3": `{"value":[{"id":"a1"}]}`,
	})
	for _, c := range []struct{ top, maxResults, want string }{{"1000", "5", "5"}, {"3", "5", "3"}} {
		g.mu.Lock()
		g.seen = nil
		g.mu.Unlock()
		_, err := runList(t, g.client(t, 0), 10*time.Second, `{"operation":{"type":"listMessages","userId":"anna@contoso.test","maxResults":`+c.maxResults+`,"queryParameters":{"$top":`+c.top+`}}}`)
		if err != nil {
			t.Fatal(err)
		}
		g.mu.Lock()
		seen := g.seen
		g.mu.Unlock()
		if len(seen) == 0 || !strings.HasSuffix(seen[0], "$top="+c.want) {
			t.Errorf("$top %s, maxResults %s: requests %q, want a page of %s", c.top, c.maxResults, seen, c.want)
		}
	}
}
