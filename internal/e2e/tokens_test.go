package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// 1,000 jobs with the same client credentials, all activated at once, share
// one token; a second app registration gets its own.
func TestOneTokenRequestPerCredentialSet(t *testing.T) {
	// Graph latency makes requests overlap, so that a missing per-mailbox
	// limit would show as 429s.
	e := start(t, sandbox.Options{LogLevel: "error", Graph: []graphsim.Option{graphsim.WithLatency(5 * time.Millisecond)}, Configure: func(c *config.Config) {
		c.MaxJobsActive = 256
		c.Concurrency = 128
		c.GraphMailboxConcurrency = 4
	}})
	e.Identity.RegisterClient("second-app", "second-app-secret")
	second := map[string]any{}
	for k, v := range e.Auth() {
		second[k] = v
	}
	second["clientId"] = "second-app"
	second["clientSecret"] = "second-app-secret"

	const n = 1000
	keys := make([]int64, 0, n+10)
	mailboxes := []string{alice, bob, "carol@contoso.example"}
	for i := 0; i < n; i++ {
		keys = append(keys, e.submit(map[string]any{"operation": op("listMailFolders", mailboxes[i%3], nil)}, nil))
	}
	for i := 0; i < 10; i++ {
		keys = append(keys, e.submit(map[string]any{"authentication": second, "operation": op("listMailFolders", alice, nil)}, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	require.NoError(t, e.Zeebe.AwaitJobs(ctx, keys, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted }))

	perClient := map[string]int{}
	for _, r := range e.Identity.Requests() {
		perClient[r.ClientID]++
	}
	require.Equal(t, map[string]int{"sandbox-app": 1, "second-app": 1}, perClient)
	require.Zero(t, e.Graph.Stats().Throttled429, "the per-mailbox limit keeps MailboxConcurrency 429s away")
}
