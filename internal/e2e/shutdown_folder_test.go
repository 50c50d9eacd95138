package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// A createMailFolder that reached Graph and was acted on, whose answer is
// cut by shutdown, is not handed back as if it had not started: its next
// run would meet the folder it created (409).
func TestShutdownDoesNotHandBackAFolderThatWasCreated(t *testing.T) {
	var forwarded atomic.Bool
	var target atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := url.Parse(target.Load().(string))
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/mailFolders") {
			// Forward, let Graph create the folder, then never answer.
			b, _ := io.ReadAll(r.Body)
			req, _ := http.NewRequest(r.Method, u.Scheme+"://"+u.Host+r.URL.RequestURI(), strings.NewReader(string(b)))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				forwarded.Store(true)
			}
			<-r.Context().Done()
			return
		}
		httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host}).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	se, err := sandbox.Start(sandbox.Options{Configure: func(c *config.Config) {
		c.ShutdownGrace = time.Second
		target.Store(c.GraphBaseURL)
		pu, _ := url.Parse(c.GraphBaseURL)
		c.GraphBaseURL = proxy.URL + pu.Path
	}})
	require.NoError(t, err)
	key := se.Zeebe.CreateJob(zeebesim.JobSpec{Type: jobType, Retries: 1, Variables: map[string]any{
		"authentication": se.Auth(),
		"operation":      map[string]any{"type": "createMailFolder", "userId": alice},
		"folder":         map[string]any{"displayName": "Receipts"},
	}})
	require.Eventually(t, forwarded.Load, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, se.Close())

	created := false
	for _, f := range se.Graph.Folders(alice) {
		created = created || f.DisplayName == "Receipts"
	}
	require.True(t, created, "Graph created the folder")
	j, _ := se.Zeebe.Job(key)
	t.Logf("state %s, retries %d, message %q", j.State, j.Retries, j.ErrorMessage)
	require.Contains(t, j.ErrorMessage, "worker shutting down", "the job was failed by the shutdown")
	require.NotContains(t, j.ErrorMessage, "before it took effect", "a POST that Graph acted on is reported as never having taken effect")
	require.Zero(t, j.Retries, "it counts a retry, as any call that may have taken effect")
}
