package reliability

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

// The gateway crashes while jobs are running and comes back on the same
// address: every job is completed, exactly once.
func TestReliabilityGatewayRestart(t *testing.T) {
	jobs := size(200, 2000)
	e := start(t, sandbox.Options{
		Graph: []graphsim.Option{graphsim.WithLatency(20 * time.Millisecond)},
		Configure: func(c *config.Config) {
			c.MaxJobsActive, c.Concurrency = 64, 32
			// Jobs whose activation answer was cut off come back after
			// the job timeout; keep it short so the test stays quick.
			c.JobTimeout = 5 * time.Second
		},
	})
	auth := e.Auth()
	mbs := []string{"alice@contoso.example", "bob@contoso.example", "carol@contoso.example"}
	keys := make([]int64, jobs)
	for i := range keys {
		keys[i] = e.Zeebe.CreateJob(listJob(auth, mbs[i%len(mbs)]))
	}
	// Crash in the middle of the load, not before it started.
	deadline := time.Now().Add(time.Minute)
	for countCompleted(e.Zeebe, keys) < jobs/5 {
		require.True(t, time.Now().Before(deadline), "no progress before the crash")
		time.Sleep(5 * time.Millisecond)
	}
	e.Zeebe.Stop()
	before := countCompleted(e.Zeebe, keys)
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, e.Zeebe.Restart())
	require.Less(t, before, jobs, "the crash happened under load")

	await(t, e.Zeebe, keys, 2*time.Minute, ended)
	requireCompletedOnce(t, e.Zeebe, keys)
}
