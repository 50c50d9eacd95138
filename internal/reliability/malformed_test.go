package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

type badJob struct {
	name    string
	vars    map[string]any
	headers map[string]string
	// names is what the incident message must name: the variable or header.
	names []string
}

func malformedCorpus(auth map[string]any) []badJob {
	bearer := map[string]any{"type": "bearer", "token": "t"}
	list := func(op map[string]any) map[string]any {
		o := map[string]any{"type": "listMessages", "userId": "alice@contoso.example"}
		for k, v := range op {
			o[k] = v
		}
		return map[string]any{"authentication": bearer, "operation": o}
	}
	query := func(q any) map[string]any { return list(map[string]any{"queryParameters": q}) }
	send := func(msg map[string]any) map[string]any {
		m := map[string]any{"subject": "s", "bodyContent": "b", "toRecipients": []any{"bob@contoso.example"}}
		for k, v := range msg {
			if v == nil {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return map[string]any{"authentication": bearer, "message": m,
			"operation": map[string]any{"type": "sendMail", "userId": "alice@contoso.example"}}
	}
	folder := func(f any) map[string]any {
		v := map[string]any{"authentication": bearer,
			"operation": map[string]any{"type": "createMailFolder", "userId": "alice@contoso.example"}}
		if f != nil {
			v["folder"] = f
		}
		return v
	}
	withAuth := func(a any) map[string]any {
		v := list(nil)
		if a == nil {
			delete(v, "authentication")
		} else {
			v["authentication"] = a
		}
		return v
	}
	oauth := func(drop string, set map[string]any) map[string]any {
		a := map[string]any{}
		for k, v := range auth {
			a[k] = v
		}
		delete(a, drop)
		for k, v := range set {
			a[k] = v
		}
		return withAuth(a)
	}
	many := make([]any, 501)
	for i := range many {
		many[i] = fmt.Sprintf("r%d@contoso.example", i)
	}
	huge := strings.Repeat("x", 100_000)
	goodList := list(nil)

	return []badJob{
		// operation and its type
		{name: "no operation", vars: map[string]any{"authentication": bearer}, names: []string{"operation"}},
		{name: "operation null", vars: map[string]any{"authentication": bearer, "operation": nil}, names: []string{"operation"}},
		{name: "operation is a string", vars: map[string]any{"authentication": bearer, "operation": "listMessages"}, names: []string{"operation"}},
		{name: "operation is a list", vars: map[string]any{"authentication": bearer, "operation": []any{1, 2}}, names: []string{"operation"}},
		{name: "no operation.type", vars: map[string]any{"authentication": bearer, "operation": map[string]any{"userId": "alice@contoso.example"}}, names: []string{"operation.type"}},
		{name: "operation.type number", vars: list(map[string]any{"type": 42}), names: []string{"operation.type"}},
		{name: "operation.type empty", vars: list(map[string]any{"type": " "}), names: []string{"operation.type"}},
		{name: "operation.type unknown", vars: list(map[string]any{"type": "deleteEverything"}), names: []string{"operation.type"}},
		{name: "operation.type huge", vars: list(map[string]any{"type": huge}), names: []string{"operation.type"}},
		// mailbox ids
		{name: "no userId", vars: list(map[string]any{"userId": nil}), names: []string{"operation.userId"}},
		{name: "userId number", vars: list(map[string]any{"userId": 123}), names: []string{"operation.userId"}},
		{name: "userId empty", vars: list(map[string]any{"userId": ""}), names: []string{"operation.userId"}},
		{name: "userId dot-dot", vars: list(map[string]any{"userId": "../../admin"}), names: []string{"operation.userId"}},
		{name: "userId slash", vars: list(map[string]any{"userId": "alice@contoso.example/messages"}), names: []string{"operation.userId"}},
		{name: "userId query", vars: list(map[string]any{"userId": "alice@contoso.example?$select=x"}), names: []string{"operation.userId"}},
		{name: "userId fragment", vars: list(map[string]any{"userId": "alice#x"}), names: []string{"operation.userId"}},
		{name: "userId backslash", vars: list(map[string]any{"userId": `alice\bob`}), names: []string{"operation.userId"}},
		{name: "userId NUL", vars: list(map[string]any{"userId": "alice\x00@contoso.example"}), names: []string{"operation.userId"}},
		{name: "userId newline", vars: list(map[string]any{"userId": "alice\r\nX-Injected: 1"}), names: []string{"operation.userId"}},
		{name: "userId huge", vars: list(map[string]any{"userId": huge}), names: []string{"operation.userId"}},
		{name: "userId a context", vars: list(map[string]any{"userId": map[string]any{"id": "x"}}), names: []string{"operation.userId"}},
		// folder ids
		{name: "folderId context", vars: list(map[string]any{"folderId": map[string]any{"a": 1}}), names: []string{"operation.folderId"}},
		{name: "folderId number", vars: list(map[string]any{"folderId": 5}), names: []string{"operation.folderId"}},
		{name: "folderId dot-dot", vars: list(map[string]any{"folderId": ".."}), names: []string{"operation.folderId"}},
		{name: "folderId control", vars: list(map[string]any{"folderId": "inbox\x7f"}), names: []string{"operation.folderId"}},
		{name: "parentFolderId newline", vars: map[string]any{"authentication": bearer, "folder": map[string]any{"displayName": "x"},
			"operation": map[string]any{"type": "createMailFolder", "userId": "alice@contoso.example", "parentFolderId": "a\nb"}}, names: []string{"operation.parentFolderId"}},
		// query parameters and paging
		{name: "query a string", vars: query("$top=5"), names: []string{"operation.queryParameters"}},
		{name: "query $format", vars: query(map[string]any{"$format": "json"}), names: []string{"operation.queryParameters", "$format"}},
		{name: "query $deltatoken", vars: query(map[string]any{"$deltatoken": "x"}), names: []string{"operation.queryParameters", "$deltatoken"}},
		{name: "query api-version", vars: query(map[string]any{"api-version": "1"}), names: []string{"operation.queryParameters"}},
		{name: "query hostile key", vars: query(map[string]any{"$filter": "isRead eq true", "&$expand=x": "1"}), names: []string{"operation.queryParameters"}},
		{name: "query NUL key", vars: query(map[string]any{"\x00": 1}), names: []string{"operation.queryParameters"}},
		{name: "$top zero", vars: query(map[string]any{"$top": 0}), names: []string{"operation.queryParameters.$top"}},
		{name: "$top word", vars: query(map[string]any{"$top": "ten"}), names: []string{"operation.queryParameters.$top"}},
		{name: "$top huge", vars: query(map[string]any{"$top": 1e12}), names: []string{"operation.queryParameters.$top"}},
		{name: "$skip negative", vars: query(map[string]any{"$skip": -1}), names: []string{"operation.queryParameters.$skip"}},
		{name: "$count word", vars: query(map[string]any{"$count": "maybe"}), names: []string{"operation.queryParameters.$count"}},
		{name: "$filter context", vars: query(map[string]any{"$filter": map[string]any{"x": 1}}), names: []string{"operation.queryParameters.$filter"}},
		{name: "$search with $filter", vars: query(map[string]any{"$search": "x", "$filter": "isRead eq true"}), names: []string{"operation.queryParameters"}},
		{name: "maxResults zero", vars: list(map[string]any{"maxResults": 0}), names: []string{"operation.maxResults"}},
		{name: "maxResults word", vars: list(map[string]any{"maxResults": "many"}), names: []string{"operation.maxResults"}},
		{name: "maxResults fraction", vars: list(map[string]any{"maxResults": 1.5}), names: []string{"operation.maxResults"}},
		// createMailFolder
		{name: "no folder", vars: folder(nil), names: []string{"folder.displayName"}},
		{name: "folder a string", vars: folder("Invoices"), names: []string{"folder"}},
		{name: "folder name empty", vars: folder(map[string]any{"displayName": ""}), names: []string{"folder.displayName"}},
		{name: "folder isHidden word", vars: folder(map[string]any{"displayName": "x", "isHidden": "perhaps"}), names: []string{"folder.isHidden"}},
		// sendMail
		{name: "no message", vars: map[string]any{"authentication": bearer, "operation": map[string]any{"type": "sendMail", "userId": "alice@contoso.example"}}, names: []string{"message.toRecipients"}},
		{name: "no recipients", vars: send(map[string]any{"toRecipients": nil}), names: []string{"message.toRecipients"}},
		{name: "empty recipients", vars: send(map[string]any{"toRecipients": []any{}}), names: []string{"message.toRecipients"}},
		{name: "recipients one string of two", vars: send(map[string]any{"toRecipients": "bob@contoso.example, carol@contoso.example"}), names: []string{"message.toRecipients"}},
		{name: "recipients a number", vars: send(map[string]any{"toRecipients": 7}), names: []string{"message.toRecipients"}},
		{name: "bad address", vars: send(map[string]any{"toRecipients": []any{"not an address"}}), names: []string{"message.toRecipients"}},
		{name: "address with header injection", vars: send(map[string]any{"toRecipients": []any{"bob@contoso.example\r\nBcc: eve@evil.example"}}), names: []string{"message.toRecipients"}},
		{name: "recipient without address", vars: send(map[string]any{"toRecipients": []any{map[string]any{"name": "Bob"}}}), names: []string{"message.toRecipients"}},
		{name: "recipient number", vars: send(map[string]any{"toRecipients": []any{42}}), names: []string{"message.toRecipients"}},
		{name: "bad cc", vars: send(map[string]any{"ccRecipients": []any{"a@@b"}}), names: []string{"message.ccRecipients"}},
		{name: "bad bcc", vars: send(map[string]any{"bccRecipients": []any{"x"}}), names: []string{"message.bccRecipients"}},
		{name: "bad replyTo", vars: send(map[string]any{"replyTo": []any{map[string]any{"address": 5}}}), names: []string{"message.replyTo"}},
		{name: "501 recipients", vars: send(map[string]any{"toRecipients": many}), names: []string{"message"}},
		{name: "importance urgent", vars: send(map[string]any{"importance": "urgent"}), names: []string{"message.importance"}},
		{name: "content type markdown", vars: send(map[string]any{"bodyContentType": "markdown"}), names: []string{"message.bodyContentType"}},
		{name: "subject number", vars: send(map[string]any{"subject": 5}), names: []string{"message.subject"}},
		{name: "body a list", vars: send(map[string]any{"bodyContent": []any{"a"}}), names: []string{"message.bodyContent"}},
		{name: "saveToSentItems word", vars: send(map[string]any{"saveToSentItems": "perhaps"}), names: []string{"message.saveToSentItems"}},
		{name: "attachment without bytes", vars: send(map[string]any{"attachments": []any{map[string]any{"name": "a.txt"}}}), names: []string{"message.attachments"}},
		{name: "attachment bad base64", vars: send(map[string]any{"attachments": []any{map[string]any{"name": "a.txt", "contentBytes": "!!!"}}}), names: []string{"message.attachments"}},
		{name: "attachments a context", vars: send(map[string]any{"attachments": map[string]any{"name": "a"}}), names: []string{"message.attachments"}},
		{name: "body over 4 MB", vars: send(map[string]any{"bodyContent": strings.Repeat("y", 4_050_000)}), names: []string{"message.bodyContent"}},
		// authentication
		{name: "no authentication", vars: withAuth(nil), names: []string{"authentication"}},
		{name: "authentication a string", vars: withAuth("bearer t"), names: []string{"authentication"}},
		{name: "authentication.type unknown", vars: withAuth(map[string]any{"type": "kerberos"}), names: []string{"authentication.type"}},
		{name: "no authentication.type", vars: withAuth(map[string]any{"token": "t"}), names: []string{"authentication.type"}},
		{name: "bearer without token", vars: withAuth(map[string]any{"type": "bearer"}), names: []string{"authentication.token"}},
		{name: "bearer token number", vars: withAuth(map[string]any{"type": "bearer", "token": 5}), names: []string{"authentication.token"}},
		{name: "oauth without clientId", vars: oauth("clientId", nil), names: []string{"authentication.clientId"}},
		{name: "oauth client auth unknown", vars: oauth("", map[string]any{"clientAuthentication": "smoke"}), names: []string{"authentication.clientAuthentication"}},
		// secrets
		{name: "unknown secret in userId", vars: list(map[string]any{"userId": "{{secrets.MAILBOX_NOPE}}"}), names: []string{"MAILBOX_NOPE", "operation.userId"}},
		{name: "unknown secret in token", vars: withAuth(map[string]any{"type": "bearer", "token": "{{secrets.TOKEN_NOPE}}"}), names: []string{"TOKEN_NOPE", "authentication.token"}},
		{name: "unknown secret in recipient", vars: send(map[string]any{"toRecipients": []any{"{{ secrets.RCPT_NOPE }}"}}), names: []string{"RCPT_NOPE", "message.toRecipients"}},
		// headers
		{name: "resultExpression unclosed", vars: goodList, headers: map[string]string{"resultExpression": "={a: "}, names: []string{"resultExpression"}},
		{name: "resultExpression garbage", vars: goodList, headers: map[string]string{"resultExpression": "=)))"}, names: []string{"resultExpression"}},
		{name: "errorExpression broken", vars: goodList, headers: map[string]string{"errorExpression": "=if then else"}, names: []string{"errorExpression"}},
		{name: "errorExpression huge", vars: goodList, headers: map[string]string{"errorExpression": "=" + strings.Repeat("(", 50_000)}, names: []string{"errorExpression"}},
		{name: "retryBackoff prose", vars: goodList, headers: map[string]string{"retryBackoff": "30 seconds"}, names: []string{"retryBackoff"}},
		{name: "retryBackoff negative", vars: goodList, headers: map[string]string{"retryBackoff": "-PT5S"}, names: []string{"retryBackoff"}},
	}
}

// Malformed jobs end in incidents naming the offending variable or header;
// the worker neither panics nor stops serving.
func TestReliabilityMalformedJobs(t *testing.T) {
	e := start(t, sandbox.Options{})
	corpus := malformedCorpus(e.Auth())
	require.GreaterOrEqual(t, len(corpus), 50)
	keys := make([]int64, len(corpus))
	for i, b := range corpus {
		keys[i] = e.Zeebe.CreateJob(spec(b.vars, b.headers))
	}
	good := e.Zeebe.CreateJob(listJob(e.Auth(), "alice@contoso.example"))
	await(t, e.Zeebe, append(keys, good), time.Minute, ended)

	for i, b := range corpus {
		j, _ := e.Zeebe.Job(keys[i])
		assertIncident(t, b, j)
	}
	j, _ := e.Zeebe.Job(good)
	require.Equal(t, zeebesim.StateCompleted, j.State, "a good job after the malformed ones: %s", j.ErrorMessage)
}

func assertIncident(t *testing.T, b badJob, j zeebesim.Job) {
	t.Helper()
	if j.State != zeebesim.StateIncident || j.Retries != 0 {
		t.Errorf("%s: state %s with retries %d, want an incident (message %q)", b.name, j.State, j.Retries, short(j.ErrorMessage))
	}
	if strings.Contains(j.ErrorMessage, "INTERNAL_ERROR") {
		t.Errorf("%s: the handler failed unexpectedly: %q", b.name, short(j.ErrorMessage))
	}
	for _, n := range b.names {
		if !strings.Contains(j.ErrorMessage, n) {
			t.Errorf("%s: the incident message does not name %q: %q", b.name, n, short(j.ErrorMessage))
		}
	}
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
