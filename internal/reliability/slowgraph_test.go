package reliability

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// Graph answers more slowly than the job timeout: the job comes back to a
// worker and completes once; a mail is delivered once.
func TestReliabilitySlowGraph(t *testing.T) {
	rounds := size(1, 5)
	e := start(t, sandbox.Options{Configure: func(c *config.Config) { c.JobTimeout = 2 * time.Second }})
	auth := e.Auth()
	for round := 0; round < rounds; round++ {
		roundStart := time.Now()
		subject := "slow graph " + roundStart.Format(time.RFC3339Nano)
		// The first request of each job takes 3 s, beyond the 2 s lock.
		e.Graph.InjectFault(graphsim.Fault{Method: http.MethodGet, Path: `^/users/alice@contoso\.example/mailFolders/inbox/messages$`,
			Latency: 3 * time.Second, Times: 1})
		e.Graph.InjectFault(graphsim.Fault{Method: http.MethodPost, Path: `^/users/alice@contoso\.example/sendMail$`,
			Latency: 3 * time.Second, Times: 1})
		list := e.Zeebe.CreateJob(listJob(auth, "alice@contoso.example"))
		send := e.Zeebe.CreateJob(spec(map[string]any{
			"authentication": auth,
			"operation":      map[string]any{"type": "sendMail", "userId": "alice@contoso.example"},
			"message":        map[string]any{"subject": subject, "bodyContent": "once", "toRecipients": []any{"bob@contoso.example"}},
		}, nil))
		keys := []int64{list, send}
		await(t, e.Zeebe, keys, time.Minute, ended)
		// Wait out the slow request's 3 s: had Graph acted on it after the
		// worker gave up, the mail would be in the inbox by then.
		var slow time.Time
		for _, r := range e.Graph.Requests() {
			if r.Method == http.MethodPost && r.At.After(roundStart) && (slow.IsZero() || r.At.Before(slow)) {
				slow = r.At
			}
		}
		require.False(t, slow.IsZero(), "the slow sendMail request reached Graph")
		time.Sleep(time.Until(slow.Add(3*time.Second + 200*time.Millisecond)))

		requireCompletedOnce(t, e.Zeebe, keys)
		for _, k := range keys {
			j, _ := e.Zeebe.Job(k)
			require.GreaterOrEqualf(t, j.Activations, 2, "job %d was activated again after the slow attempt", k)
			require.Equal(t, zeebesim.StateCompleted, j.State)
		}
		delivered := 0
		for _, m := range e.Graph.Messages("bob@contoso.example", "inbox") {
			if m.Subject == subject {
				delivered++
			}
		}
		require.Equal(t, 1, delivered, "sendMail delivered exactly once")
	}
}
