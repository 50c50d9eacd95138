package sandbox

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The sandbox's report must show what each step promises.
func TestScenarioOutcomes(t *testing.T) {
	e, err := Start(Options{})
	require.NoError(t, err)
	steps := e.Scenario()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, e.Play(ctx, steps))
	var report bytes.Buffer
	Report(&report, steps, e)
	require.NoError(t, e.Close())

	want := map[string]string{
		"create folder 'Invoices' for alice":               "completed",
		"alice mails bob and carol":                        "completed",
		"list alice's unread inbox":                        "completed",
		"list alice's folders":                             "completed",
		"unknown mailbox → BPMN error via errorExpression": "BPMN error MAILBOX_NOT_FOUND",
		"bad recipient address":                            "incident",
		"unknown secret":                                   "incident",
	}
	for _, s := range steps {
		w, ok := want[s.Name]
		if !ok {
			w = "completed" // the burst
		}
		require.Equal(t, w, s.Outcome, "%s: %s", s.Name, s.Detail)
	}
	details := map[string]string{}
	for _, s := range steps {
		details[s.Name] = s.Detail
	}
	require.Contains(t, details["list alice's unread inbox"], "unread=3")
	require.Contains(t, details["bad recipient address"], "INVALID_INPUT: message.toRecipients")
	require.Contains(t, details["unknown secret"], `SECRET_NOT_FOUND: secret "MAILBOX"`)
	require.Contains(t, details["list alice's folders"], "Invoices")
	require.Len(t, e.Graph.Messages("bob@contoso.example", "inbox"), 1)
	require.Zero(t, e.Graph.Stats().Throttled429)
	require.Equal(t, 1, e.Identity.TokenRequests())
	require.True(t, strings.Contains(report.String(), "2 injected faults"), report.String())
}
