package reliability

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

// A fifth of the requests are refused with 429 or 503 carrying
// Retry-After; every job still completes, and no request reaches a
// mailbox while Graph has asked that mailbox's caller to wait.
func TestReliabilityThrottledMailboxes(t *testing.T) {
	mailboxes, perMailbox := size(10, 50), size(20, 40)
	jobs := mailboxes * perMailbox // 200, long 2,000
	const retryAfter = time.Second
	e := start(t, sandbox.Options{Configure: func(c *config.Config) {
		c.MaxJobsActive, c.Concurrency = 128, 64
	}})
	names := make([]string, mailboxes)
	faults := 0
	for i := range names {
		names[i] = fmt.Sprintf("throttled%03d@contoso.example", i)
		e.Graph.AddMailbox(names[i])
		status := http.StatusTooManyRequests
		if i%2 == 1 {
			status = http.StatusServiceUnavailable
		}
		n := perMailbox / 5
		e.Graph.InjectFault(graphsim.Fault{Method: http.MethodGet, Status: status, RetryAfter: "1", Times: n,
			Path: `(?i)^/users/` + regexp.QuoteMeta(names[i]) + `/`})
		faults += n
	}
	auth := e.Auth()
	keys := make([]int64, jobs)
	for i := range keys {
		keys[i] = e.Zeebe.CreateJob(listJob(auth, names[i%mailboxes]))
	}
	await(t, e.Zeebe, keys, 3*time.Minute, ended)
	requireCompletedOnce(t, e.Zeebe, keys)

	st := e.Graph.Stats()
	require.Equal(t, faults, st.Faults, "every injected 429/503 was answered")
	require.Zero(t, st.Throttled429, "the per-mailbox limit kept Graph's own concurrency 429s away")

	// A request already on the wire when the throttle answer left may
	// arrive just after it; anything later must wait the whole Retry-After.
	const inFlight = 100 * time.Millisecond
	byMailbox := map[string][]graphsim.Request{}
	for _, r := range e.Graph.Requests() {
		byMailbox[r.Mailbox] = append(byMailbox[r.Mailbox], r)
	}
	throttles := 0
	for mb, reqs := range byMailbox {
		for i, r := range reqs {
			if !r.Fault || (r.Status != http.StatusTooManyRequests && r.Status != http.StatusServiceUnavailable) {
				continue
			}
			throttles++
			for _, q := range reqs[i+1:] {
				gap := q.At.Sub(r.At)
				require.Falsef(t, gap > inFlight && gap < retryAfter,
					"%s: request %s at +%s after a %d with Retry-After 1", mb, q.Path, gap, r.Status)
			}
		}
	}
	require.Equal(t, faults, throttles, "the request log holds every throttle answer")
}
