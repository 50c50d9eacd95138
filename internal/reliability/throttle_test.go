package reliability

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/graphsim"
)

// A fifth of the requests are refused with 429 or 503 carrying
// Retry-After; every job still completes, and once the worker has read a
// throttle answer it sends nothing to that mailbox until Retry-After has
// passed.
//
// The check is made where the worker hands requests to the network: a
// request that passed the mailbox's gate before the throttle answer came
// back may still reach Graph after it (the two cross on the wire, and
// under load a new connection or the simulator's scheduling can delay it
// by more than 100 ms), and no client can prevent that.
func TestReliabilityThrottledMailboxes(t *testing.T) {
	mailboxes, perMailbox := size(10, 50), size(20, 40)
	jobs := mailboxes * perMailbox // 200, long 2,000
	w := &wire{next: http.DefaultTransport.(*http.Transport).Clone()}
	w.next.(*http.Transport).MaxIdleConnsPerHost = 256
	e := start(t, sandbox.Options{
		Configure: func(c *config.Config) { c.MaxJobsActive, c.Concurrency = 128, 64 },
		App:       func(o *app.Options) { o.GraphTransport = w },
	})
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

	// Between reading a throttle answer and recording the throttle, the
	// worker reads the answer's body; a request that passed the gate just
	// before may go out meanwhile.
	const crossing = 50 * time.Millisecond
	byMailbox := map[string][]exchange{}
	for _, x := range w.exchanges() {
		byMailbox[x.mailbox] = append(byMailbox[x.mailbox], x)
	}
	throttles := 0
	for mb, xs := range byMailbox {
		for _, x := range xs {
			if x.retryAfter == 0 || (x.status != http.StatusTooManyRequests && x.status != http.StatusServiceUnavailable) {
				continue
			}
			throttles++
			for _, q := range xs {
				gap := q.sent.Sub(x.answered)
				require.Falsef(t, gap > crossing && gap < x.retryAfter,
					"%s: request %s sent %s after a %d with Retry-After %s was read", mb, q.path, gap, x.status, x.retryAfter)
			}
		}
	}
	require.Equal(t, faults, throttles, "the worker read every throttle answer")
}

// wire records, on the worker's side, when each Graph request was handed to
// the HTTP transport and when its answer was read.
type wire struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

type exchange struct {
	mailbox, path  string
	sent, answered time.Time
	status         int
	retryAfter     time.Duration
}

var usersPath = regexp.MustCompile(`/users/([^/]+)/`)

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	x := exchange{path: r.URL.Path, sent: time.Now()}
	if m := usersPath.FindStringSubmatch(r.URL.Path); m != nil {
		x.mailbox = strings.ToLower(m[1])
	}
	resp, err := w.next.RoundTrip(r)
	x.answered = time.Now()
	if err == nil {
		x.status = resp.StatusCode
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			x.retryAfter = time.Duration(s) * time.Second
		}
	}
	w.mu.Lock()
	w.log = append(w.log, x)
	w.mu.Unlock()
	return resp, err
}

func (w *wire) exchanges() []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]exchange(nil), w.log...)
}
