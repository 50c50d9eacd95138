package loadtest

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/loadtest/bareworker"
)

// TestMain lets the test binary act as the baseline child process.
func TestMain(m *testing.M) {
	if os.Getenv("LOADTEST_BE_BASELINE") == "1" {
		cfg, err := bareworker.FromEnv(os.Getenv)
		if err == nil {
			err = bareworker.Run(cfg)
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestProcStats(t *testing.T) {
	cpu, err := ProcCPU(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, cpu, time.Duration(0))
	rss, peak, err := ProcMem(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, rss)
	require.GreaterOrEqual(t, peak, rss)
	_, err = ProcCPU(-1)
	require.Error(t, err)
}

func TestLittleLimit(t *testing.T) {
	b := Scenarios(1, 1, 1)[2]
	require.InDelta(t, 1280, b.LittleLimit(), 0.001)
	// Four per mailbox caps the concurrency.
	b.Mailboxes = 8
	require.InDelta(t, 320, b.LittleLimit(), 0.001)
	require.Zero(t, Scenarios(1, 1, 1)[0].LittleLimit())
}

func TestChecks(t *testing.T) {
	a := Scenarios(100, 100, 100)[1]
	b := Scenarios(100, 100, 100)[2]
	res := []Result{
		{Scenario: a, Kind: Connector, Completed: 100, JobsPerSec: 800, RSSIdle: 20 << 20, TokenRequests: 1},
		{Scenario: a, Kind: Baseline, Completed: 100, JobsPerSec: 1000, RSSIdle: 20 << 20},
		{Scenario: b, Kind: Connector, Completed: 100, JobsPerSec: 1250, RSSIdle: 30 << 20, TokenRequests: 2, Throttled429: 1, ExactActivation: true},
	}
	missed := Missed(Checks(res, nil))
	require.Len(t, missed, 4, "%v", missed)
	require.Contains(t, missed[0], "a100: throughput")
	var buf bytes.Buffer
	Table(&buf, res, nil)
	require.Contains(t, buf.String(), "0.80 × baseline")
	require.Contains(t, buf.String(), "0.98 × Little (1280/s)")
	require.Contains(t, buf.String(), "¹ measured from job creation")
}

// The targets that are ceilings or counts hold for every run, not only for
// the median one: a run with a breach must not hide behind its jobs/s.
func TestChecksJudgeEveryRun(t *testing.T) {
	c := Scenarios(100, 100, 100)[3]
	run := func(jps float64, peak int64, tokens, throttled, failed int) Result {
		return Result{Scenario: c, Kind: Connector, Completed: c.Jobs - failed, Failed: failed, JobsPerSec: jps,
			RSSIdle: 20 << 20, RSSPeak: peak << 20, TokenRequests: tokens, Throttled429: throttled}
	}
	runs := []Result{run(360, 95, 1, 0, 0), run(450, 150, 2, 37, 5), run(370, 97, 1, 0, 0)}
	runs[0].RSSAfterLoad = 43 << 20
	median := Median(runs, Connector)
	require.Equal(t, 370.0, median.JobsPerSec, "the breaching run is not the median")
	require.Empty(t, Missed(Checks([]Result{median}, nil)), "the median alone looks fine")

	missed := Missed(Checks([]Result{median}, runs))
	require.Len(t, missed, 4, "%v", missed)
	require.Contains(t, missed[0], "RSS peak ≤ 120 MiB with 1000 jobs in flight (got 150.0 MiB (worst of 3 runs))")
	require.Contains(t, missed[1], "one token request for one credential set (got 2 (worst of 3 runs))")
	require.Contains(t, missed[2], "zero 429s with the per-mailbox limit on (got 37 (worst of 3 runs))")
	require.Contains(t, missed[3], "every job completed at the first attempt (got 5 failed jobs, 1 runs with jobs left (worst of 3 runs))")
	var buf bytes.Buffer
	WriteChecks(&buf, Checks([]Result{median}, runs))
	require.Contains(t, buf.String(), "- c: RSS idle after load: 43.0 MiB (worst of 3 runs) — shown, not a target")
}

// The limited baseline runs only where the limit holds the connector below
// its concurrency, and its figure stands beside the verdict, not in it.
func TestLimitedBaselineBesideTheVerdict(t *testing.T) {
	scs := Scenarios(100, 100, 100)
	require.Equal(t, []Kind{Connector, Baseline, LimitedBaseline}, scs[0].Kinds(), "a1: 16 handlers, 4 slots")
	for _, sc := range scs[1:] {
		require.Equal(t, []Kind{Connector, Baseline}, sc.Kinds(), sc.Name)
	}
	a1 := scs[0]
	res := []Result{
		{Scenario: a1, Kind: Connector, Completed: 100, JobsPerSec: 800, RSSIdle: 20 << 20, TokenRequests: 1},
		{Scenario: a1, Kind: Baseline, Completed: 100, JobsPerSec: 1000, RSSIdle: 20 << 20},
		{Scenario: a1, Kind: LimitedBaseline, Completed: 100, JobsPerSec: 640, RSSIdle: 20 << 20, ExactActivation: true},
	}
	checks := Checks(res, nil)
	missed := Missed(checks)
	require.Len(t, missed, 1, "%v", missed)
	require.Contains(t, missed[0], "a1: throughput ≥ 0.85 × baseline (got 0.80 (800 vs 1000 jobs/s; 1.25 × the limited baseline's 640))")
	var buf bytes.Buffer
	Table(&buf, res, nil)
	require.Contains(t, buf.String(), "| limited baseline | 100 | 640 | connector 1.25 × this |")
}

// Held to the mailbox limit, the bare worker never draws a 429 where the
// unlimited one does: one mailbox, 8 handlers, 5 ms in Graph.
func TestLimitedBaselineKeepsToTheMailboxLimit(t *testing.T) {
	r := baselineRunner(t)
	sc := Scenario{Name: "t", Title: "test", Jobs: 200, Mailboxes: 1, Latency: 5 * time.Millisecond,
		MaxJobsActive: 16, Concurrency: 8, MailboxConcurrency: 4}
	require.True(t, sc.LimitBinds())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlimited, err := r.runWithEnv(ctx, sc, Baseline, beBaseline)
	require.NoError(t, err)
	require.Positive(t, unlimited.Throttled429, "8 handlers on one mailbox exceed Graph's 4")
	limited, err := r.runWithEnv(ctx, sc, LimitedBaseline, beBaseline)
	require.NoError(t, err)
	require.Equal(t, sc.Jobs, limited.Completed)
	require.Zero(t, limited.Throttled429)
}

// A small run of the real measurement over the baseline worker (this test
// binary in its baseline role): every job is completed, activation times
// come from the polls, and the child's figures are read.
func TestRunBaseline(t *testing.T) {
	r := baselineRunner(t)
	sc := Scenario{Name: "t", Title: "test", Jobs: 300, Mailboxes: 10, Latency: 5 * time.Millisecond,
		MaxJobsActive: 32, Concurrency: 8, MailboxConcurrency: 4}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := r.runWithEnv(ctx, sc, Baseline, beBaseline)
	require.NoError(t, err)
	require.Equal(t, sc.Jobs, res.Completed)
	require.True(t, res.ExactActivation)
	require.Positive(t, res.JobsPerSec)
	require.LessOrEqual(t, res.P50, res.P99)
	require.GreaterOrEqual(t, res.P50, sc.Latency)
	require.GreaterOrEqual(t, res.GraphPerJob, sc.Latency)
	require.Positive(t, res.RSSIdle)
	require.GreaterOrEqual(t, res.RSSPeak, res.RSSIdle/2)
	require.Zero(t, res.TokenRequests, "the baseline's token was fetched before the run")
	// Its Go runtime counters were read from its metrics endpoint.
	require.Positive(t, res.AllocPerJob)
	require.GreaterOrEqual(t, res.GCsPer1000, 0.0)
	require.True(t, strings.HasPrefix(res.Scenario.Name, "t"))
}

// baselineRunner runs this test binary in its baseline role (TestMain);
// beBaseline is the environment that selects the role.
func baselineRunner(t *testing.T) *Runner {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return &Runner{BaselineCmd: []string{exe, "-test.run=^$"}, PollInterval: 20 * time.Millisecond, IdleSettle: 50 * time.Millisecond, Progress: tlog{t}}
}

var beBaseline = []string{"LOADTEST_BE_BASELINE=1"}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(time.Now().Format("15:04:05.000"), strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestMedianAndRuns(t *testing.T) {
	a := Scenarios(100, 100, 100)[0]
	runs := []Result{
		{Scenario: a, Kind: Connector, JobsPerSec: 300},
		{Scenario: a, Kind: Baseline, JobsPerSec: 900},
		{Scenario: a, Kind: Connector, JobsPerSec: 100},
		{Scenario: a, Kind: Baseline, JobsPerSec: 700},
		{Scenario: a, Kind: Connector, JobsPerSec: 200},
		{Scenario: a, Kind: Baseline, JobsPerSec: 800},
	}
	require.Equal(t, 200.0, Median(runs, Connector).JobsPerSec)
	require.Equal(t, 800.0, Median(runs, Baseline).JobsPerSec)
	require.Equal(t, 100.0, Median(runs[:4], Connector).JobsPerSec, "the lower middle of an even count")
	require.Zero(t, Median(nil, Connector).JobsPerSec)
	var buf bytes.Buffer
	Runs(&buf, runs)
	require.Equal(t, "- a1 connector: 300 jobs/s (0.000 CPU s/1k), 100 jobs/s (0.000 CPU s/1k), 200 jobs/s (0.000 CPU s/1k)\n"+
		"- a1 baseline: 900 jobs/s (0.000 CPU s/1k), 700 jobs/s (0.000 CPU s/1k), 800 jobs/s (0.000 CPU s/1k)\n"+
		"- a1 connector ÷ baseline, round by round: 0.33, 0.14, 0.25\n", buf.String())
}
