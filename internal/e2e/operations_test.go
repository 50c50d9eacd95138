package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/operations"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

const alice, bob = "alice@contoso.example", "bob@contoso.example"

// noDuplicate is README's error expression that turns a send that may have
// gone out into an incident.
const noDuplicate = `=if contains(error.message, "may have been sent") then jobError(error.code + ": " + error.message, {}, 0) else null`

func op(typ, user string, extra map[string]any) map[string]any {
	m := map[string]any{"type": typ, "userId": user}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestEachOperationSucceeds(t *testing.T) {
	e := start(t, sandbox.Options{})

	k := e.submit(map[string]any{"operation": op("createMailFolder", alice, nil), "folder": map[string]any{"displayName": "Receipts", "isHidden": false}},
		map[string]string{"resultVariable": "created"})
	j := e.wait(t, k)
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	created := j.Variables["created"].(map[string]any)
	require.EqualValues(t, 201, created["status"])
	folderID := created["body"].(map[string]any)["id"].(string)

	k = e.submit(map[string]any{"operation": op("listMailFolders", alice, map[string]any{"queryParameters": map[string]any{"$top": 50}})},
		map[string]string{"resultExpression": "={names: body.value.displayName}"})
	j = e.wait(t, k)
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	require.Contains(t, j.Variables["names"], "Receipts")

	k = e.submit(map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{
		"subject": "Quarterly numbers", "bodyContentType": "html", "bodyContent": "<p>Attached</p>",
		"toRecipients": []any{map[string]any{"address": bob, "name": "Bob"}}, "ccRecipients": []any{"carol@contoso.example"},
		"importance": "high", "attachments": []any{map[string]any{"name": "n.txt", "contentType": "text/plain", "contentBytes": "aGVsbG8="}},
	}}, map[string]string{"resultVariable": "sent"})
	j = e.wait(t, k)
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	sent := j.Variables["sent"].(map[string]any)
	require.EqualValues(t, 202, sent["status"])
	require.Nil(t, sent["body"])
	inbox := e.Graph.Messages(bob, "inbox")
	require.Len(t, inbox, 1)
	require.Equal(t, "Quarterly numbers", inbox[0].Subject)
	require.Equal(t, "high", inbox[0].Importance)
	require.Len(t, e.Graph.Messages("carol@contoso.example", "inbox"), 1)
	require.Len(t, e.Graph.Messages(alice, "sentitems"), 1)

	k = e.submit(map[string]any{"operation": op("listMessages", bob, map[string]any{"folderId": "inbox",
		"queryParameters": map[string]any{"$select": "subject,importance", "$filter": "importance eq 'high'"}})},
		map[string]string{"resultExpression": "={subjects: body.value.subject}"})
	j = e.wait(t, k)
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	require.Equal(t, []any{"Quarterly numbers"}, j.Variables["subjects"])

	// Paging: 25 messages in a folder, maxResults 23 merges three pages.
	for i := 0; i < 25; i++ {
		e.Graph.AddMessage(alice, folderID, graphsim.Message{Subject: "m", ReceivedDateTime: time.Now().Add(-time.Duration(i) * time.Minute)})
	}
	k = e.submit(map[string]any{"operation": op("listMessages", alice, map[string]any{"folderId": folderID, "maxResults": 23})},
		map[string]string{"resultExpression": `={n: count(body.value), more: body["@odata.nextLink"] != null}`})
	j = e.wait(t, k)
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	require.EqualValues(t, 23, j.Variables["n"])
}

func TestGraphFailuresBecomeTheContractsErrors(t *testing.T) {
	e := start(t, sandbox.Options{
		Configure: func(c *config.Config) {
			c.GraphTimeout = 300 * time.Millisecond
			c.GraphMaxResponseBytes = 64 << 10
		},
	})
	e.Graph.Mailbox(bob).SetAccessDenied(true)
	listInbox := func(user string) map[string]any {
		return map[string]any{"operation": op("listMessages", user, map[string]any{"folderId": "inbox"})}
	}
	send := func(to string) map[string]any {
		return map[string]any{"operation": op("sendMail", alice, nil),
			"message": map[string]any{"subject": "s", "bodyContent": "b", "toRecipients": []any{to}}}
	}
	type want struct {
		code    string // the fail message starts with it
		retries int32
		contain string
		sent    int // requests that reached the path, -1 = do not check
	}
	cases := []struct {
		name    string
		fault   *graphsim.Fault
		vars    map[string]any
		want    want
		path    string
		headers map[string]string // beside retryBackoff
	}{
		{name: "400 invalid recipients", vars: send("someone@nowhere.example"),
			fault: &graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 400, Code: "ErrorInvalidRecipients", Message: "At least one recipient is not valid."},
			want:  want{"400", 2, "ErrorInvalidRecipients: At least one recipient is not valid.", 1}, path: "/sendMail"},
		{name: "403 access denied", vars: listInbox(bob), want: want{"403", 2, "ErrorAccessDenied", 1}, path: "/users/" + bob},
		{name: "404 unknown mailbox", vars: listInbox("nobody@contoso.example"), want: want{"404", 2, "nobody@contoso.example", 1}, path: "/users/nobody"},
		// Retry-After 600 throttles carol's mailbox for every later job of
		// the process, so it gets a mailbox of its own.
		{name: "503 on every try", vars: listInbox("carol@contoso.example"), fault: &graphsim.Fault{Method: "GET", Path: `/messages$`, Status: 503, Code: "ServiceUnavailable", Message: "busy", RetryAfter: "600"},
			want: want{"503", 2, "ServiceUnavailable", 1}, path: "/messages"},
		{name: "sendMail 504 is not retried", vars: send(bob), fault: &graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 504, Code: "GatewayTimeout", Message: "timeout", Apply: true},
			want: want{"504", 2, "may have been sent", 1}, path: "/sendMail"},
		{name: "sendMail timeout is not retried", vars: send(bob), fault: &graphsim.Fault{Method: "POST", Path: `/sendMail$`, Latency: 2 * time.Second, Apply: true},
			want: want{"408", 2, "may have been sent", 1}, path: "/sendMail"},
		// README's expression for a process where a duplicate is worse than
		// a missing mail: the job stops in an incident instead of retrying.
		{name: "sendMail 504 with the no-duplicate expression", vars: send(bob), fault: &graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 504, Code: "GatewayTimeout", Message: "timeout", Apply: true},
			headers: map[string]string{"errorExpression": noDuplicate},
			want:    want{"504", 0, "may have been sent", 1}, path: "/sendMail"},
		{name: "oversized response", vars: listInbox(alice), fault: &graphsim.Fault{Method: "GET", Path: `/messages$`, OversizeBytes: 200 << 10},
			want: want{"RESPONSE_TOO_LARGE", 0, "65536", 1}, path: "/messages"},
		// The body is checked where it is read: here by the result variable.
		{name: "malformed JSON", vars: listInbox(alice), fault: &graphsim.Fault{Method: "GET", Path: `/messages$`, Status: 200, Body: []byte(`{"value": [`)},
			want: want{"502", 2, "malformed JSON from Graph", -1}, path: "/messages", headers: map[string]string{"resultVariable": "r"}},
		{name: "path injection", vars: listInbox("alice@contoso.example/../bob@contoso.example"),
			want: want{"INVALID_INPUT", 0, "operation.userId", 0}, path: "/users/"},
		{name: "folder id injection", vars: map[string]any{"operation": op("listMessages", alice, map[string]any{"folderId": ".."})},
			want: want{"INVALID_INPUT", 0, "operation.folderId", 0}, path: "/users/"},
		{name: "disallowed query key", vars: map[string]any{"operation": op("listMessages", alice, map[string]any{"queryParameters": map[string]any{"$format": "xml"}})},
			want: want{"INVALID_INPUT", 0, "$format", 0}, path: "/users/"},
		{name: "folder exists", vars: map[string]any{"operation": op("createMailFolder", alice, nil), "folder": map[string]any{"displayName": "Inbox"}},
			want: want{"409", 2, "ErrorFolderExists", 1}, path: "/mailFolders"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.Graph.ClearFaults()
			e.Graph.ResetRequests()
			if c.fault != nil {
				e.Graph.InjectFault(*c.fault)
			}
			headers := map[string]string{"retryBackoff": "PT1S"}
			for k, v := range c.headers {
				headers[k] = v
			}
			j := e.wait(t, e.submit(c.vars, headers))
			require.True(t, strings.HasPrefix(j.ErrorMessage, c.want.code+": "), "message %q", j.ErrorMessage)
			require.Contains(t, j.ErrorMessage, c.want.contain)
			require.Equal(t, c.want.retries, j.Retries, j.ErrorMessage)
			require.Equal(t, c.want.retries == 0, j.Incident)
			errVar := e.lastFail(j.Key)
			require.Contains(t, errVar.Variables, `"error"`)
			if c.want.sent >= 0 {
				n := 0
				for _, r := range e.Graph.Requests() {
					if strings.Contains(r.Path, c.path) {
						n++
					}
				}
				require.Equal(t, c.want.sent, n, "requests that reached Graph")
			}
		})
	}
	// Carol's mailbox stays throttled: a new job fails at once without a request.
	e.Graph.ClearFaults()
	e.Graph.ResetRequests()
	j := e.wait(t, e.submit(listInbox("carol@contoso.example"), nil))
	require.Contains(t, j.ErrorMessage, "throttled")
	require.Empty(t, e.Graph.Requests())
	require.GreaterOrEqual(t, e.lastFail(j.Key).Backoff, 590*time.Second)
}

func TestRetryAfterIsHonouredInsideTheJob(t *testing.T) {
	e := start(t, sandbox.Options{})
	for _, retryAfter := range []string{"1", ""} {
		e.Graph.ClearFaults()
		e.Graph.ResetRequests()
		e.Graph.InjectFault(graphsim.Fault{Method: "GET", Path: `/inbox/messages$`, Status: 429, Code: "ApplicationThrottled",
			Message: "Application is over its MailboxConcurrency limit.", RetryAfter: retryAfter, Times: 1})
		j := e.wait(t, e.submit(map[string]any{"operation": op("listMessages", alice, map[string]any{"folderId": "inbox"})}, nil))
		require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
		var at []time.Time
		for _, r := range e.Graph.Requests() {
			if strings.HasSuffix(r.Path, "/inbox/messages") {
				at = append(at, r.At)
			}
		}
		require.Len(t, at, 2, "one 429, one success")
		// Retry-After: 1 means at least a second; without it the backoff starts at half a second.
		minGap := 500 * time.Millisecond
		if retryAfter == "1" {
			minGap = time.Second
		}
		require.GreaterOrEqual(t, at[1].Sub(at[0]), minGap, "Retry-After %q", retryAfter)
	}
}

func TestRetryAfterBeyondTheDeadlineSetsTheBackoff(t *testing.T) {
	e := start(t, sandbox.Options{})
	e.Graph.InjectFault(graphsim.Fault{Method: "GET", Path: `/messages$`, Status: 429, Code: "ApplicationThrottled", Message: "throttled", RetryAfter: "900"})
	k := e.submit(map[string]any{"operation": op("listMessages", alice, nil)}, map[string]string{"retryBackoff": "PT5S"})
	j := e.wait(t, k)
	require.Equal(t, int32(2), j.Retries)
	require.GreaterOrEqual(t, e.lastFail(k).Backoff, 890*time.Second, "the remaining Retry-After, not the 5 s header")
}

// echo is a test-only operation: it proves the pipeline around operations
// without Graph.
type echo struct{}

func (echo) Type() string               { return "echo" }
func (echo) Fields() []operations.Field { return nil }
func (echo) Decode(vars map[string]any) (operations.Call, error) {
	return echoCall{vars["operation"].(map[string]any)}, nil
}

type echoCall struct{ op map[string]any }

func (c echoCall) UserID() string { return "echo" }
func (c echoCall) Run(context.Context, *graph.Client, graph.Credentials) (*graph.Response, error) {
	return &graph.Response{Status: 200, Headers: map[string]any{}, Body: map[string]any{"echo": c.op["text"]}}, nil
}

func TestUnknownOperationIsAnIncidentAndATestOperationCompletes(t *testing.T) {
	e := start(t, sandbox.Options{App: func(o *app.Options) {
		o.Operations = operations.Registry()
		o.Operations["echo"] = echo{}
	}})
	j := e.wait(t, e.submit(map[string]any{"operation": map[string]any{"type": "echo", "text": "hi"}}, map[string]string{"resultVariable": "r"}))
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	require.Equal(t, "hi", j.Variables["r"].(map[string]any)["body"].(map[string]any)["echo"])

	for vars, want := range map[*map[string]any]string{
		{"operation": map[string]any{"type": "deleteEverything", "userId": alice}}: `operation.type: expected one of createMailFolder, echo, listMailFolders, listMessages, sendMail, got "deleteEverything"`,
		{"operation": map[string]any{"userId": alice}}:                             "operation.type: expected the operation name",
		{}:                        "operation: expected a context",
		{"operation": "sendMail"}: "operation: expected a context",
	} {
		j := e.wait(t, e.submit(*vars, nil))
		require.True(t, j.Incident, j.ErrorMessage)
		require.Contains(t, j.ErrorMessage, "INVALID_INPUT: "+want)
	}
}

// A model that routes every failure to a BPMN error boundary keeps doing
// so for bad input, as with Camunda's runtime; without an error expression
// (or when it leaves the error alone) bad input is an incident at once.
// Nothing reaches Graph either way.
func TestInputErrorsGoThroughTheErrorExpression(t *testing.T) {
	e := start(t, sandbox.Options{})
	badSend := map[string]any{"operation": op("sendMail", alice, nil),
		"message": map[string]any{"subject": "s", "bodyContent": "b", "toRecipients": []any{"not an address"}}}
	missingSecret := map[string]any{"operation": op("listMessages", "{{secrets.NO_SUCH_MAILBOX}}", map[string]any{"folderId": "inbox"})}
	goodList := map[string]any{"operation": op("listMessages", alice, map[string]any{"folderId": "inbox"})}
	// README's catch-all: the error expression also runs after a success.
	const catchAll = `=if error != null then bpmnError("MAIL_FAILED", error.code + ": " + error.message) else null`
	goodSend := map[string]any{"operation": op("sendMail", alice, nil),
		"message": map[string]any{"subject": "catch-all", "bodyContent": "b", "toRecipients": []any{bob}}}
	for _, vars := range []map[string]any{goodList, goodSend} {
		ok := e.wait(t, e.submit(clone(vars), map[string]string{"errorExpression": catchAll}))
		require.Equal(t, zeebesim.StateCompleted, ok.State, "%+v", ok)
	}
	for _, c := range []struct {
		name    string
		vars    map[string]any
		headers map[string]string // beside the error expression
		want    string
	}{
		{"invalid address", badSend, nil, "INVALID_INPUT: message.toRecipients"},
		{"missing secret", missingSecret, nil, "SECRET_NOT_FOUND: "}, // went through it before too
		{"invalid retryBackoff", goodList, map[string]string{"retryBackoff": "30 seconds"}, "INVALID_INPUT: header retryBackoff"},
	} {
		t.Run(c.name, func(t *testing.T) {
			with := func(expr string) map[string]string {
				h := map[string]string{"errorExpression": expr}
				for k, v := range c.headers {
					h[k] = v
				}
				return h
			}
			e.Graph.ResetRequests()
			thrown := e.wait(t, e.submit(clone(c.vars), with(catchAll)))
			require.Equal(t, zeebesim.StateErrorThrown, thrown.State, thrown.ErrorMessage)
			require.Equal(t, "MAIL_FAILED", thrown.ErrorCode)
			require.Contains(t, thrown.ErrorMessage, c.want)

			incident := e.wait(t, e.submit(clone(c.vars), with(`=if error.code = "404" then bpmnError("GONE", "") else null`)))
			require.True(t, incident.Incident, "%+v", incident)
			require.Contains(t, incident.ErrorMessage, c.want)
			require.Empty(t, e.Graph.Requests(), "bad input never reaches Graph")
		})
	}
}

// clone copies a job's variables one level deep: submit adds the
// authentication to the map it gets.
func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Task headers are not secret-substituted (contract section 5): a
// placeholder in a result expression stays text.
func TestHeadersAreNotSecretSubstituted(t *testing.T) {
	e := start(t, sandbox.Options{Secrets: map[string]string{"SECRET_TOPIC": "resolved-topic-value"}})
	j := e.wait(t, e.submit(map[string]any{"operation": op("listMailFolders", alice, nil)},
		map[string]string{"resultExpression": `={note: "{{secrets.TOPIC}}"}`}))
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	require.Equal(t, "{{secrets.TOPIC}}", j.Variables["note"])
}

// A list of HTML mail within GRAPH_MAX_RESPONSE_BYTES fits Zeebe's 4 MB
// message as it is; with json.Marshal's escaping (< as \u003c) this one
// would be 4.7 MB and end in RESULT_REJECTED.
func TestHTMLMailResultFitsTheGateway(t *testing.T) {
	e := start(t, sandbox.Options{})
	html := "<html><body>" + strings.Repeat("<p>Q&amp;A</p>", 120_000) + "</body></html>"
	require.Less(t, len(html), 3<<20, "within GRAPH_MAX_RESPONSE_BYTES")
	e.Graph.AddMessage(alice, "inbox", graphsim.Message{Subject: "newsletter", BodyContentType: "html", BodyContent: html, ReceivedDateTime: time.Now()})
	k := e.submit(map[string]any{"operation": op("listMessages", alice, map[string]any{"folderId": "inbox"})},
		map[string]string{"resultVariable": "inbox"})
	j := e.wait(t, k)
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	var content any
	for _, m := range j.Variables["inbox"].(map[string]any)["body"].(map[string]any)["value"].([]any) {
		if m.(map[string]any)["subject"] == "newsletter" {
			content = m.(map[string]any)["body"].(map[string]any)["content"]
		}
	}
	require.Equal(t, html, content)
}
