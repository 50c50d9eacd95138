// Package reliability holds end-to-end reliability scenarios: the real
// worker (in-process through the sandbox, or the built binary as a child
// process) against the Zeebe, Graph and identity simulators. The short
// variants run in every `go test`; O365_LONG=1 (`make reliability`) runs
// the long ones.
package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

const jobType = "o365-mail:1"

func long() bool { return os.Getenv("O365_LONG") == "1" }

// size picks the short or the long variant's figure.
func size(short, long_ int) int {
	if long() {
		return long_
	}
	return short
}

func start(t *testing.T, o sandbox.Options) *sandbox.Env {
	t.Helper()
	e, err := sandbox.Start(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func spec(vars map[string]any, headers map[string]string) zeebesim.JobSpec {
	return zeebesim.JobSpec{Type: jobType, Variables: vars, CustomHeaders: headers, Retries: 3,
		BpmnProcessID: "reliability", ElementID: "task"}
}

func listJob(auth map[string]any, mailbox string) zeebesim.JobSpec {
	return spec(map[string]any{
		"authentication": auth,
		"operation":      map[string]any{"type": "listMessages", "userId": mailbox, "folderId": "inbox"},
	}, nil)
}

func ended(j zeebesim.Job) bool {
	switch j.State {
	case zeebesim.StateCompleted, zeebesim.StateErrorThrown, zeebesim.StateIncident:
		return true
	}
	return false
}

func completed(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted }

// await waits (bounded, not timed) until every job satisfies cond.
func await(t *testing.T, g *zeebesim.Gateway, keys []int64, limit time.Duration, cond func(zeebesim.Job) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	require.NoError(t, g.AwaitJobs(ctx, keys, cond))
}

// countCompleted counts jobs in keys that are completed.
func countCompleted(g *zeebesim.Gateway, keys []int64) int {
	n := 0
	for _, k := range keys {
		if j, ok := g.Job(k); ok && completed(j) {
			n++
		}
	}
	return n
}

// completeCommands counts accepted CompleteJob commands per job.
func completeCommands(g *zeebesim.Gateway) map[int64]int {
	out := map[int64]int{}
	for _, c := range g.Commands() {
		if c.Method == "CompleteJob" && c.Result == 0 {
			out[c.JobKey]++
		}
	}
	return out
}

// requireCompletedOnce checks that every job completed, by exactly one
// accepted CompleteJob command.
func requireCompletedOnce(t *testing.T, g *zeebesim.Gateway, keys []int64) {
	t.Helper()
	cmds := completeCommands(g)
	for _, k := range keys {
		j, ok := g.Job(k)
		require.True(t, ok)
		require.Equalf(t, zeebesim.StateCompleted, j.State, "job %d: %s", k, j.ErrorMessage)
		require.Equalf(t, 1, j.Completions, "job %d", k)
		require.Equalf(t, 1, cmds[k], "job %d: accepted CompleteJob commands", k)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// connectorBinary builds ./cmd/o365-mail-connector once per test binary.
func connectorBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reliability-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "o365-mail-connector")
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/o365-mail-connector")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
