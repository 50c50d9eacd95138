package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/loadtest"
)

// The Zeebe client library reads some ZEEBE_* variables itself; the binary
// must still connect as its resolved configuration says. With
// ZEEBE_INSECURE_CONNECTION=1 (true to the configuration, not to the
// library) and a stray ZEEBE_PORT, it used to dial TLS to the wrong address.
func TestBinaryConnectsAsConfigured(t *testing.T) {
	bin := connectorBinary(t)
	sc := loadtest.Scenario{Name: "clientenv", Jobs: 20, Mailboxes: 2, MaxJobsActive: 8, Concurrency: 4, MailboxConcurrency: 4}
	s, err := loadtest.StartSims(loadtest.Mailboxes(sc.Mailboxes), 0)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	keys := loadtest.CreateJobs(s, sc)

	var env []string
	for _, kv := range loadtest.ConnectorEnv(s, sc, "info", 20*time.Millisecond, "") {
		if strings.HasPrefix(kv, "ZEEBE_INSECURE_CONNECTION=") {
			kv = "ZEEBE_INSECURE_CONNECTION=1"
		}
		env = append(env, kv)
	}
	env = append(env, "ZEEBE_PORT=tcp://10.0.0.11:26500")
	p, err := loadtest.StartProc(bin, []string{"run"}, env)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(5 * time.Second) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, loadtest.AwaitEnded(ctx, s.Zeebe, keys, p.Done()), p.Output())
	requireCompletedOnce(t, s.Zeebe, keys)
	require.Contains(t, p.Output(), "ZEEBE_INSECURE_CONNECTION", "the change is logged")
}
