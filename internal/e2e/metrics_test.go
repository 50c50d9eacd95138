package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// /metrics counts what the jobs did, by operation and outcome.
func TestMetricsCountJobsGraphRequestsAndTokens(t *testing.T) {
	e := start(t, sandbox.Options{})
	addr := <-e.mgmtAddr

	ok := e.wait(t, e.submit(map[string]any{"operation": op("listMailFolders", alice, nil)}, nil))
	require.Equal(t, zeebesim.StateCompleted, ok.State)
	thrown := e.wait(t, e.submit(map[string]any{"operation": op("listMessages", "nobody@contoso.example", nil)},
		map[string]string{"errorExpression": `=bpmnError("GONE", error.message)`}))
	require.Equal(t, zeebesim.StateErrorThrown, thrown.State)
	bad := e.wait(t, e.submit(map[string]any{"operation": op("sendMail", alice, nil), "message": map[string]any{"toRecipients": []any{"no"}}}, nil))
	require.True(t, bad.Incident)

	want := []string{
		`o365_jobs_activated_total{operation="listMailFolders"} 1`,
		`o365_jobs_completed_total{operation="listMailFolders"} 1`,
		`o365_jobs_bpmn_error_total{operation="listMessages"} 1`,
		`o365_jobs_failed_total{code="INVALID_INPUT",operation="sendMail"} 1`,
		`o365_graph_requests_total{method="GET",status="200"} 1`,
		`o365_graph_requests_total{method="GET",status="404"} 1`,
		`o365_token_requests_total{grant="client_credentials",result="ok"} 1`,
		`o365_job_duration_seconds_count{operation="listMailFolders"} 1`,
		"o365_jobs_in_flight 0",
	}
	// The worker counts a job once the gateway has answered its command,
	// just after the gateway's state changed.
	var text string
	missing := func() []string {
		resp, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(body)
		var m []string
		for _, line := range want {
			if !strings.Contains(text, line+"\n") {
				m = append(m, line)
			}
		}
		return m
	}
	require.Eventually(t, func() bool { return len(missing()) == 0 }, 10*time.Second, 20*time.Millisecond,
		"missing %q in\n%s", missing(), grepO365(text))
}

func grepO365(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "o365_") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
