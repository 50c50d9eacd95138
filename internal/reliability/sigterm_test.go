package reliability

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/loadtest"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// SIGTERM reaches the real binary while jobs run: it exits within the
// grace period, running jobs complete, activated but unstarted ones go back
// with their retries intact, and a second worker finishes all of them.
func TestReliabilitySIGTERM(t *testing.T) {
	bin := connectorBinary(t)
	sc := loadtest.Scenario{Name: "sigterm", Jobs: size(200, 2000), Mailboxes: 20,
		Latency: 200 * time.Millisecond, MaxJobsActive: 96, Concurrency: 32, MailboxConcurrency: 4}
	s, err := loadtest.StartSims(loadtest.Mailboxes(sc.Mailboxes), sc.Latency)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	keys := loadtest.CreateJobs(s, sc)

	const grace = 5 * time.Second
	env := append(loadtest.ConnectorEnv(s, sc, "info", 20*time.Millisecond, "127.0.0.1:0"),
		"CONNECTOR_SHUTDOWN_GRACE="+grace.String(), "MANAGEMENT_ADDR=")
	p, err := loadtest.StartProc(bin, []string{"run"}, env)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(time.Second) })

	deadline := time.Now().Add(time.Minute)
	for countCompleted(s.Zeebe, keys) < 20 {
		if ended, _ := p.Exited(); ended {
			t.Fatalf("worker exited early:\n%s", p.Output())
		}
		require.True(t, time.Now().Before(deadline), "no job completed:\n%s", p.Output())
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, p.Signal(syscall.SIGTERM))
	sent := time.Now()
	select {
	case <-p.Done():
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("no exit within the grace period (%s) after SIGTERM:\n%s", grace, p.Output())
	}
	_, exitErr := p.Exited()
	require.NoError(t, exitErr, "exit status after SIGTERM:\n%s", p.Output())
	t.Logf("exited %s after SIGTERM", time.Since(sent).Round(time.Millisecond))

	done, back := 0, 0
	for _, k := range keys {
		j, _ := s.Zeebe.Job(k)
		switch j.State {
		case zeebesim.StateCompleted:
			require.Equal(t, 1, j.Completions)
			done++
		case zeebesim.StateActivatable:
			require.Equalf(t, int32(3), j.Retries, "job %d was handed back with its retries", k)
			back++
		default:
			t.Fatalf("job %d is %s after shutdown (retries %d, %q): neither completed nor activatable", k, j.State, j.Retries, j.ErrorMessage)
		}
	}
	require.Less(t, done, len(keys), "SIGTERM came under load")
	require.Positive(t, back)

	// Nothing was lost: a new worker finishes the rest.
	p2, err := loadtest.StartProc(bin, []string{"run"}, env)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p2.Stop(grace) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, loadtest.AwaitEnded(ctx, s.Zeebe, keys, p2.Done()), p2.Output())
	requireCompletedOnce(t, s.Zeebe, keys)
}
