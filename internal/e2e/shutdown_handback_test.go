package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// A sendMail job waits out its mailbox's Retry-After (Graph answered 429:
// nothing was sent) when SIGTERM comes; the grace period ends and the job is
// aborted. The worker's own shutdown does not cost the job a retry (with one
// retry left it would raise an incident): nothing reached Graph, so it goes
// back like an unstarted job, retries intact, after the Retry-After.
func TestShutdownHandsBackACallThatSentNothing(t *testing.T) {
	se, err := sandbox.Start(sandbox.Options{Configure: func(c *config.Config) { c.ShutdownGrace = time.Second }})
	require.NoError(t, err)
	se.Graph.InjectFault(graphsim.Fault{Method: "POST", Path: `/sendMail$`, Status: 429, Code: "TooManyRequests",
		Message: "throttled", RetryAfter: "60", Times: 1})
	key := se.Zeebe.CreateJob(zeebesim.JobSpec{Type: jobType, Retries: 1, Variables: map[string]any{
		"authentication": se.Auth(),
		"operation":      map[string]any{"type": "sendMail", "userId": "alice@contoso.example"},
		"message":        map[string]any{"subject": "s", "bodyContent": "b", "toRecipients": []any{"bob@contoso.example"}},
	}})
	// Once Graph has answered 429 the job waits at the mailbox gate; the
	// grace period (1 s) leaves the client ample time to read the answer.
	require.Eventually(t, func() bool {
		for _, r := range se.Graph.Requests() {
			if r.Method == "POST" && r.Status == 429 {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, se.Close()) // SIGTERM

	j, _ := se.Zeebe.Job(key)
	t.Logf("state %s, retries %d, message %q", j.State, j.Retries, j.ErrorMessage)
	require.False(t, j.Incident, "the worker's shutdown raised an incident for a mail that was never sent")
	require.Equal(t, int32(1), j.Retries, "the worker's shutdown cost the job a retry")
	var last zeebesim.Command
	for _, c := range se.Zeebe.Commands() {
		if c.JobKey == key && c.Method == "FailJob" {
			last = c
		}
	}
	require.Contains(t, last.ErrorMessage, "handed back with its retries")
	require.Greater(t, last.Backoff, 50*time.Second, "the rest of the Retry-After")
	require.Zero(t, len(se.Graph.Messages("bob@contoso.example", "inbox")))
}
