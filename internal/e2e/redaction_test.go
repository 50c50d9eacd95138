package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

// Every secret the process learns stays inside it: resolved {{secrets.*}},
// client secrets, refresh tokens and access tokens never reach a log line,
// a job command, a job's recorded state or /metrics.
func TestSecretsNeverLeaveTheProcess(t *testing.T) {
	const (
		mailboxSecret = "dana.secret-mailbox@contoso.example" // Graph echoes it in its 404
		subjectSecret = "Subject-S3CRET-7f3a"                 // comes back in listMessages bodies
		bearerSecret  = "bearer-S3CRET-token-value"           // refused by Graph
		wrongSecret   = "wrong-client-S3CRET"                 // refused by the token endpoint
		quoteSecret   = `quote"and\backslash-S3CRET`          // JSON-escaped in variables and logs
		spacedSecret  = "Project S3CRET Q7"                   // percent-encoded in URLs
		ownerSecret   = "erin.secret-S3CRET@contoso.example"  // Graph repeats it as erin...%40contoso in @odata.context
	)
	// Long enough that an input error would not show it whole.
	longSecret := "LONG-S3CRET-" + strings.Repeat("Z9", 60)
	// Jobs that failed with retries left keep calling Graph in the
	// background, so the set is read under its lock, never closed.
	var tokensMu sync.Mutex
	tokens := map[string]bool{}
	e := start(t, sandbox.Options{
		Secrets: map[string]string{
			"SECRET_MAILBOX": mailboxSecret, "SECRET_SUBJECT": subjectSecret, "SECRET_BEARER": bearerSecret,
			"SECRET_WRONG": wrongSecret, "SECRET_QUOTE": quoteSecret,
			"SECRET_SPACED": spacedSecret, "SECRET_OWNER": ownerSecret, "SECRET_LONG": longSecret,
		},
		// Record the access tokens Graph receives: they are secrets too. The
		// check accepts every token; the refused bearer is a fault below.
		Graph: []graphsim.Option{graphsim.WithTokenCheck(func(tok string) error {
			tokensMu.Lock()
			tokens[tok] = true
			tokensMu.Unlock()
			return nil
		})},
	})
	e.Graph.AddMailbox("dana@contoso.example")
	e.Graph.AddMailbox(ownerSecret)
	auth := e.Auth()

	wrongAuth := map[string]any{}
	for k, v := range auth {
		wrongAuth[k] = v
	}
	wrongAuth["clientSecret"] = "{{ secrets.WRONG }}"

	jobs := []struct {
		vars    map[string]any
		headers map[string]string
	}{
		// Success that carries a secret into Graph and back into variables.
		{map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{
			"subject": "{{secrets.SUBJECT}}", "bodyContent": "{{secrets.QUOTE}}", "toRecipients": []any{bob}}},
			map[string]string{"resultVariable": "sent"}},
		{map[string]any{"operation": op("listMessages", bob, map[string]any{"folderId": "inbox"})},
			map[string]string{"resultVariable": "all", "resultExpression": "={subjects: body.value.subject, bodies: body.value.body.content}"}},
		// Graph error that echoes the request (the mailbox name).
		{map[string]any{"operation": op("listMessages", "{{secrets.MAILBOX}}", nil)}, nil},
		{map[string]any{"operation": op("listMessages", "{{secrets.MAILBOX}}", nil)},
			map[string]string{"errorExpression": `=bpmnError("E", error.message, {echo: error, again: error.variables.response.body})`}},
		// Graph error whose body echoes the request body.
		{map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{"subject": "{{secrets.SUBJECT}}", "bodyContent": "x", "toRecipients": []any{bob}}}, nil},
		// Token endpoint refuses the client secret.
		{map[string]any{"authentication": wrongAuth, "operation": op("listMailFolders", alice, nil)}, nil},
		// Bearer token from a secret that Graph refuses.
		{map[string]any{"authentication": map[string]any{"type": "bearer", "token": "{{secrets.BEARER}}"}, "operation": op("listMailFolders", alice, nil)}, nil},
		// Unknown secret next to known ones.
		{map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{"subject": "{{secrets.SUBJECT}}", "bodyContent": "{{secrets.NOPE}}", "toRecipients": []any{bob}}}, nil},
		// An input error whose message would quote the (secret) value.
		{map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{"subject": "x", "bodyContent": "x", "toRecipients": []any{"{{secrets.SUBJECT}}"}}}, nil},
		// … quoted with escapes, and one too long to be shown whole.
		{map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{"subject": "x", "bodyContent": "x", "toRecipients": []any{"{{secrets.QUOTE}}"}}}, nil},
		{map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{"subject": "x", "bodyContent": "x", "toRecipients": []any{bob}, "importance": "{{secrets.LONG}}"}}, nil},
		// A query option from a secret: percent-encoded in the logged URL of a
		// refused request (job 11) and in Graph's @odata.nextLink.
		{map[string]any{"operation": op("listMessages", alice, map[string]any{"queryParameters": map[string]any{"$filter": "subject eq '{{secrets.SPACED}}'"}})}, nil},
		{map[string]any{"operation": op("listMessages", bob, map[string]any{"folderId": "inbox", "queryParameters": map[string]any{"$top": 1, "$filter": "subject ne '{{secrets.SPACED}}'"}})},
			map[string]string{"resultVariable": "page"}},
		// A mailbox from a secret, repeated by Graph in @odata.context.
		{map[string]any{"operation": op("listMailFolders", "{{secrets.OWNER}}", nil)}, map[string]string{"resultVariable": "folders"}},
	}
	for i, j := range jobs {
		if i == 4 {
			e.Graph.InjectFault(graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 400, Code: "ErrorInvalidRequest",
				Message: "The request body was: subject " + subjectSecret, Times: 1})
		}
		if i == 11 {
			e.Graph.InjectFault(graphsim.Fault{Method: "GET", Path: `/messages$`, Status: 400, Code: "BadRequest",
				Message: "Invalid filter clause", Times: 1})
		}
		if i == 6 {
			// Graph's token check refuses the bearer.
			e.Graph.InjectFault(graphsim.Fault{Method: "GET", Path: `/mailFolders$`, Status: 401, Code: "InvalidAuthenticationToken",
				Message: "Access token is invalid: " + bearerSecret, Times: 2})
		}
		e.wait(t, e.submit(j.vars, j.headers))
	}
	tokensMu.Lock()
	seen := map[string]bool{}
	for tok := range tokens {
		seen[tok] = true
	}
	tokensMu.Unlock()
	require.NotEmpty(t, seen)

	// Everything that left the process, as text.
	var out strings.Builder
	out.WriteString(e.logs.String())
	for _, c := range e.Zeebe.Commands() {
		fmt.Fprintf(&out, "%s %s %s %s\n", c.Method, c.ErrorMessage, c.ErrorCode, c.Variables)
	}
	for _, j := range e.Zeebe.Jobs() {
		b, err := json.Marshal(j)
		require.NoError(t, err)
		out.Write(b)
	}
	addr := <-e.mgmtAddr
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out.Write(metricsText)
	text := out.String()

	// The suite did what it claims: secrets went through and came back masked.
	require.Contains(t, text, "***")
	require.Contains(t, text, "AADSTS7000215", "the token endpoint refused the wrong secret")
	require.Contains(t, text, "ErrorInvalidUser", "Graph echoed the mailbox")
	require.Contains(t, text, "SECRET_NOT_FOUND")
	require.Contains(t, text, "@odata.nextLink", "a page link came back")
	require.Contains(t, text, "@odata.context", "Graph's context URL came back")
	require.Contains(t, text, "o365_jobs_failed_total")
	require.Len(t, e.Graph.Messages(bob, "inbox"), 2, "the mails with secret subjects were delivered")
	require.Equal(t, subjectSecret, e.Graph.Messages(bob, "inbox")[0].Subject, "Graph got the real value")

	secrets := []string{mailboxSecret, subjectSecret, bearerSecret, wrongSecret, quoteSecret, spacedSecret, ownerSecret, longSecret[:20], "sandbox-client-secret-value",
		strings.ReplaceAll(quoteSecret, `"`, `\"`), "S3CRET"}
	for tok := range seen {
		secrets = append(secrets, tok)
	}
	for _, secret := range secrets {
		require.NotContains(t, text, secret)
	}
}
