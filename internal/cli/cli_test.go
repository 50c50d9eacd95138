package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut lockedBuffer
	code := Main(args, Env{
		Version: "1.2.3", Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	return code, out.String(), errOut.String()
}

func TestBadConfigurationExitsTwoWithOneLinePerProblem(t *testing.T) {
	code, _, stderr := runCLI(t, map[string]string{"CONNECTOR_CONCURRENCY": "many", "GRAPH_BASE_URL": "http://graph.example.com"}, "", "run")
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, "configuration error:")
	require.Contains(t, stderr, `  CONNECTOR_CONCURRENCY: expected a whole number from 1 to 10000, got "many"`)
	require.Contains(t, stderr, "  GRAPH_BASE_URL: expected an https:// URL")
	require.NotContains(t, stderr, "goroutine", "no stack trace")

	code, _, stderr = runCLI(t, nil, "", "--no-such-flag")
	require.Equal(t, ExitUsage, code)
	require.Contains(t, stderr, "no-such-flag")

	code, _, _ = runCLI(t, nil, "", "frobnicate")
	require.Equal(t, ExitUsage, code)
}

func TestConfigAndVersion(t *testing.T) {
	code, out, _ := runCLI(t, map[string]string{"ZEEBE_CLIENT_ID": "id", "ZEEBE_CLIENT_SECRET": "gateway-secret-value",
		"ZEEBE_AUTHORIZATION_SERVER_URL": "https://login.example/token", "ZEEBE_TOKEN_AUDIENCE": "zeebe"}, "", "config", "--connector-concurrency", "7")
	require.Equal(t, ExitOK, code)
	require.Contains(t, out, "CONNECTOR_CONCURRENCY=7\n")
	require.Contains(t, out, "ZEEBE_CLIENT_SECRET=***\n")
	require.NotContains(t, out, "gateway-secret-value")

	code, out, _ = runCLI(t, nil, "", "version")
	require.Equal(t, ExitOK, code)
	require.Equal(t, "o365-mail-connector 1.2.3\n", out)
}

func TestFeelCommand(t *testing.T) {
	saved := `{"status": 200, "headers": {}, "body": {"value": [{"subject": "a", "isRead": false}, {"subject": "b", "isRead": true}]}}`
	file := filepath.Join(t.TempDir(), "resp.json")
	require.NoError(t, os.WriteFile(file, []byte(saved), 0o600))

	code, out, stderr := runCLI(t, nil, "", "feel", "={unread: body.value[isRead = false].subject, total: count(response.body.value), x: 0.1 + 0.2}", "--context", file)
	require.Equal(t, ExitOK, code, stderr)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, map[string]any{"unread": []any{"a"}, "total": 2.0, "x": 0.3}, got)
	require.Contains(t, out, "0.3", "decimal, not 0.30000000000000004")

	code, out, _ = runCLI(t, nil, saved, "feel", "body.value[2].subject", "--context", "-")
	require.Equal(t, ExitOK, code)
	require.Equal(t, "\"b\"\n", out)

	code, _, stderr = runCLI(t, nil, "", "feel", "if x then")
	require.Equal(t, ExitFailed, code)
	require.Contains(t, stderr, "line 1, column")

	code, _, _ = runCLI(t, nil, "", "feel")
	require.Equal(t, ExitUsage, code)
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// The binary's run command against the in-process gateway: ready, serving,
// and a clean exit on cancellation. The time to ready is logged, not asserted.
func TestRunReachesReadyAndStopsCleanly(t *testing.T) {
	g, err := zeebesim.Start()
	require.NoError(t, err)
	defer g.Close()
	mgmt := freePort(t)
	env := map[string]string{"ZEEBE_ADDRESS": g.Addr(), "ZEEBE_INSECURE_CONNECTION": "true", "MANAGEMENT_ADDR": mgmt, "LOG_LEVEL": "warn"}
	ctx, cancel := context.WithCancel(context.Background())
	var errOut lockedBuffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- Main([]string{"run"}, Env{Version: "t", Stdout: &errOut, Stderr: &errOut, Context: ctx,
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	var ready time.Duration
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + mgmt + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ready = time.Since(start)
			return true
		}
		return false
	}, 20*time.Second, 2*time.Millisecond)
	t.Logf("ready after %s", ready)

	resp, err := http.Get("http://" + mgmt + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get("http://" + mgmt + "/metrics")
	require.NoError(t, err)
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Contains(t, body.String(), "o365_jobs_in_flight")

	g.Stop()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + mgmt + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 30*time.Second, 50*time.Millisecond, "not ready once the gateway is gone for longer than the readiness window")
	require.NoError(t, g.Restart())

	cancel()
	select {
	case code := <-done:
		require.Equal(t, ExitOK, code, errOut.String())
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"run", "--help"}, {"config", "-h"}, {"help"}} {
		code, stdout, stderr := runCLI(t, nil, "", args...)
		require.Equal(t, ExitOK, code, "%v: %s", args, stderr)
		require.Contains(t, stdout, "Usage:", args)
		if args[0] != "help" {
			require.Contains(t, stdout, "--zeebe-address", "%v lists the flags", args)
		}
	}
}
