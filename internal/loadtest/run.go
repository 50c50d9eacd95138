package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/o365-mail-connector/o365-mail-connector/internal/loadtest/bareworker"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// Kind is the worker under test.
type Kind string

// The workers: the connector and the baseline run in every
// scenario; the limited baseline only where Graph's per-mailbox limit
// binds (LimitBinds), as the like-for-like comparison there.
const (
	Connector       Kind = "connector"
	Baseline        Kind = "baseline"
	LimitedBaseline Kind = "limited baseline"
)

// Scenario is one load shape.
type Scenario struct {
	Name          string // short id, e.g. "a1"
	Title         string
	Jobs          int
	Mailboxes     int
	Latency       time.Duration // Graph latency per request
	MaxJobsActive int
	Concurrency   int
	// MailboxConcurrency is the connector's GRAPH_MAILBOX_CONCURRENCY.
	MailboxConcurrency int
}

// LimitBinds tells whether the per-mailbox limit keeps the connector below
// its concurrency: more handlers than the mailboxes have slots.
func (s Scenario) LimitBinds() bool {
	return s.MailboxConcurrency > 0 && s.Concurrency > s.Mailboxes*s.MailboxConcurrency
}

// Kinds are the workers measured in the scenario.
func (s Scenario) Kinds() []Kind {
	if s.LimitBinds() {
		return []Kind{Connector, Baseline, LimitedBaseline}
	}
	return []Kind{Connector, Baseline}
}

// LittleLimit is the throughput Little's law allows for a Graph latency:
// the handlers that can be inside Graph at once (concurrency, capped by 4
// per mailbox) over the latency; 0 without latency.
func (s Scenario) LittleLimit() float64 {
	if s.Latency <= 0 {
		return 0
	}
	inGraph := min(s.Concurrency, s.Mailboxes*s.MailboxConcurrency)
	return float64(inGraph) / s.Latency.Seconds()
}

// Runner runs scenarios against child processes.
type Runner struct {
	// ConnectorBin is the built o365-mail-connector binary.
	ConnectorBin string
	// BaselineCmd is the command (binary and arguments) of the baseline.
	BaselineCmd []string
	// LogLevel is the connector's LOG_LEVEL.
	LogLevel     string
	PollInterval time.Duration
	// IdleSettle is how long a worker that has started polling runs
	// before its idle RSS is read.
	IdleSettle time.Duration
	// IdleAfterLoad is how long after its last job a worker's RSS is read
	// again, as an operator sees it between bursts; 0 = not measured.
	IdleAfterLoad time.Duration
	// Progress receives one line per phase; nil = silent.
	Progress io.Writer
	// SimProfileDir, when set, receives a CPU profile of this process (the
	// simulators) over each measured run, named <scenario>-<kind>.pprof (the
	// last run of each wins):
	// the simulators share the machine, so work a worker causes them to do
	// costs its throughput too.
	SimProfileDir string
	// ConnectorCmd, when set, replaces ConnectorBin (with "run") as the
	// connector's command and gets
	// LOADTEST_CPUPROFILE=<ConnectorProfileDir>/<scenario>-child.pprof;
	// each run of a scenario overwrites it, so the file holds the last.
	ConnectorCmd        []string
	ConnectorProfileDir string
	// ConnectorEnv is added to the connector's environment (GOGC=...,
	// LOG_LEVEL=... for experiments).
	ConnectorEnv []string
}

// Result is one worker's figures in one scenario.
type Result struct {
	Scenario  Scenario
	Kind      Kind
	Completed int
	// Failed counts FailJob and ThrowError commands: jobs that did not go
	// through in one attempt.
	Failed      int
	Wall        time.Duration
	JobsPerSec  float64
	P50, P99    time.Duration
	Mean        time.Duration
	GraphPerJob time.Duration
	Overhead    time.Duration
	CPU         time.Duration
	CPUPer1000  time.Duration
	// SimCPU is the load generator's own CPU time (simulators) over the
	// same window: on a small machine it competes with the worker.
	SimCPU time.Duration
	// AllocPerJob is the bytes the worker allocated per job and GCsPer1000
	// its garbage collections per 1,000 jobs, from its Go runtime counters
	// over the same window (0 when they could not be read).
	AllocPerJob float64
	GCsPer1000  float64
	RSSIdle     int64
	// RSSAfterLoad is VmRSS Runner.IdleAfterLoad after the last job (0 =
	// not measured).
	RSSAfterLoad  int64
	RSSPeak       int64
	TokenRequests int
	Throttled429  int
	// ExactActivation tells that every job was activated once, from a
	// backlog, so that the poll that activated it gives its activation
	// time; otherwise latencies are measured from job creation.
	ExactActivation bool
}

func (r *Runner) logf(format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, format+"\n", args...)
	}
}

// command returns the child's command line and environment; metricsAddr is
// where it serves its Prometheus metrics.
func (r *Runner) command(kind Kind, sc Scenario, s *Sims, token, metricsAddr string) (string, []string, []string) {
	if kind != Connector {
		cfg := bareworker.Config{
			JobType:      JobType,
			ZeebeAddress: s.Zeebe.Addr(), GraphURL: s.GraphURL(), Token: token, WorkerName: "loadtest-baseline",
			MaxJobsActive: sc.MaxJobsActive, Concurrency: sc.Concurrency, PollInterval: r.PollInterval, JobTimeout: 5 * time.Minute,
			MetricsAddr: metricsAddr,
		}
		if kind == LimitedBaseline {
			cfg.MailboxConcurrency = sc.MailboxConcurrency
		}
		env := cfg.Env()
		return r.BaselineCmd[0], r.BaselineCmd[1:], env
	}
	env := append(ConnectorEnv(s, sc, r.LogLevel, r.PollInterval, metricsAddr), r.ConnectorEnv...)
	if len(r.ConnectorCmd) > 0 {
		env = append(env, "LOADTEST_CPUPROFILE="+filepath.Join(r.ConnectorProfileDir, sc.Name+"-child.pprof"))
		return r.ConnectorCmd[0], r.ConnectorCmd[1:], env
	}
	return r.ConnectorBin, []string{"run"}, env
}

// ConnectorEnv is the connector's environment for a scenario.
func ConnectorEnv(s *Sims, sc Scenario, logLevel string, poll time.Duration, managementAddr string) []string {
	return []string{
		"ZEEBE_ADDRESS=" + s.Zeebe.Addr(),
		"ZEEBE_INSECURE_CONNECTION=true",
		"GRAPH_BASE_URL=" + s.GraphURL(),
		"CONNECTOR_WORKER_NAME=loadtest-connector",
		"CONNECTOR_MAX_JOBS_ACTIVE=" + strconv.Itoa(sc.MaxJobsActive),
		"CONNECTOR_CONCURRENCY=" + strconv.Itoa(sc.Concurrency),
		"CONNECTOR_POLL_INTERVAL=" + poll.String(),
		"CONNECTOR_JOB_TIMEOUT=5m",
		"GRAPH_MAILBOX_CONCURRENCY=" + strconv.Itoa(sc.MailboxConcurrency),
		// The management server is part of the deployed process, so it
		// runs here too; its /metrics gives the Go runtime counters.
		"MANAGEMENT_ADDR=" + managementAddr,
		"LOG_LEVEL=" + logLevel,
		"SECRET_O365_CLIENT_SECRET=" + ClientSecret,
	}
}

// CreateJobs creates sc.Jobs listMessages jobs, spread round-robin over the
// mailboxes, and returns their keys in ascending order.
func CreateJobs(s *Sims, sc Scenario) []int64 {
	mbs := Mailboxes(sc.Mailboxes)
	auth := s.OAuthAuth()
	keys := make([]int64, sc.Jobs)
	for i := range keys {
		keys[i] = s.Zeebe.CreateJob(zeebesim.JobSpec{
			Type: JobType, Retries: 3, BpmnProcessID: "loadtest", ElementID: "list-inbox",
			Variables: map[string]any{
				"authentication": auth,
				"operation":      map[string]any{"type": "listMessages", "userId": mbs[i%len(mbs)], "folderId": "inbox"},
			},
		})
	}
	return keys
}

// AwaitEnded waits until every job has ended. It walks the keys with a
// cursor (jobs end roughly in key order), which keeps the load
// generator's own CPU use negligible next to the worker's.
func AwaitEnded(ctx context.Context, g *zeebesim.Gateway, keys []int64, exited <-chan struct{}) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	cursor := 0
	for {
		for cursor < len(keys) {
			j, ok := g.Job(keys[cursor])
			if !ok || !j.Ended() {
				break
			}
			cursor++
		}
		if cursor == len(keys) {
			return nil
		}
		select {
		case <-tick.C:
		case <-exited:
			return errors.New("the worker exited before all jobs ended")
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs ended before the time limit: %w", cursor, len(keys), ctx.Err())
		}
	}
}

// waitFirstPoll waits until the gateway has seen more than n polls or a
// poll is waiting, and returns the child's CPU time at that moment.
func waitFirstPoll(ctx context.Context, g *zeebesim.Gateway, n int, p *Proc) (time.Duration, error) {
	for {
		if len(g.Polls()) > n || g.WaitingPolls(JobType) > 0 {
			return p.CPU()
		}
		if ended, _ := p.Exited(); ended {
			return 0, fmt.Errorf("worker exited before polling:\n%s", p.Output())
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("worker did not poll: %w\n%s", ctx.Err(), p.Output())
		case <-time.After(time.Millisecond):
		}
	}
}

// Run measures one worker in one scenario: an idle run for the idle RSS,
// then a run over a backlog of sc.Jobs jobs.
func (r *Runner) Run(ctx context.Context, sc Scenario, kind Kind) (Result, error) {
	return r.runWithEnv(ctx, sc, kind, nil)
}

// runWithEnv is Run with extra environment for the child (tests).
func (r *Runner) runWithEnv(ctx context.Context, sc Scenario, kind Kind, extraEnv []string) (Result, error) {
	res := Result{Scenario: sc, Kind: kind}
	s, err := StartSims(Mailboxes(sc.Mailboxes), sc.Latency)
	if err != nil {
		return res, err
	}
	defer s.Close()
	token := ""
	if kind != Connector {
		if token, err = s.FetchToken(ctx); err != nil {
			return res, err
		}
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	path, args, env := r.command(kind, sc, s, token, metricsAddr)
	env = append(env, extraEnv...)

	// Idle: started, connected, long-polling an empty job type.
	r.logf("  %s %s: idle", sc.Name, kind)
	p, err := StartProc(path, args, env)
	if err != nil {
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = waitFirstPoll(wctx, s.Zeebe, 0, p)
	cancel()
	if err != nil {
		_ = p.Stop(2 * time.Second)
		return res, err
	}
	time.Sleep(r.IdleSettle)
	res.RSSIdle, _, err = p.Mem()
	_ = p.Stop(2 * time.Second)
	if err != nil {
		return res, err
	}
	// A poll the gateway still holds for the stopped child would take the
	// first jobs and hand them back, muddling the activation times.
	wctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	err = s.Zeebe.Await(wctx, func(g *zeebesim.Gateway) bool { return g.WaitingPolls(JobType) == 0 })
	cancel()
	if err != nil {
		return res, err
	}

	// Loaded: the whole backlog exists before the worker starts, so every
	// poll is answered at once from it.
	r.logf("  %s %s: %d jobs", sc.Name, kind, sc.Jobs)
	keys := CreateJobs(s, sc)
	s.ResetGraphTime()
	tokens0 := s.Identity.TokenRequests()
	polls0 := len(s.Zeebe.Polls())
	cmds0 := len(s.Zeebe.Commands())
	created := time.Now()
	p, err = StartProc(path, args, env)
	if err != nil {
		return res, err
	}
	defer func() { _ = p.Stop(3 * time.Second) }()
	wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	cpu0, err := waitFirstPoll(wctx, s.Zeebe, polls0, p)
	cancel()
	if err != nil {
		return res, err
	}
	stats0, statsErr := ScrapeGoStats(ctx, metricsAddr)
	self0, _ := ProcCPU(os.Getpid())
	stopProfile := r.startSimProfile(sc, kind)
	limit := 2*time.Minute + time.Duration(sc.Jobs)*sc.Latency/time.Duration(max(1, min(sc.Concurrency, 4*sc.Mailboxes)))*3
	wctx, cancel = context.WithTimeout(ctx, limit)
	err = AwaitEnded(wctx, s.Zeebe, keys, p.Done())
	cancel()
	if err != nil {
		return res, fmt.Errorf("%w\n%s", err, p.Output())
	}
	cpu1, err := p.CPU()
	if err != nil {
		return res, err
	}
	self1, _ := ProcCPU(os.Getpid())
	stopProfile()
	res.SimCPU = self1 - self0
	_, res.RSSPeak, err = p.Mem()
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	if statsErr == nil {
		var stats1 GoStats
		if stats1, statsErr = ScrapeGoStats(ctx, metricsAddr); statsErr == nil {
			res.AllocPerJob = (stats1.AllocBytes - stats0.AllocBytes) / float64(sc.Jobs)
			res.GCsPer1000 = (stats1.GCs - stats0.GCs) * 1000 / float64(sc.Jobs)
		}
	}
	if statsErr != nil {
		r.logf("  %s %s: no Go runtime counters: %v", sc.Name, kind, statsErr)
	}
	if r.IdleAfterLoad > 0 {
		time.Sleep(r.IdleAfterLoad)
		if res.RSSAfterLoad, _, err = p.Mem(); err != nil {
			return res, err
		}
	}
	res.TokenRequests = s.Identity.TokenRequests() - tokens0
	res.Throttled429 = s.Graph.Stats().Throttled429
	graphTime, _ := s.GraphTime()
	r.fill(&res, s, keys, polls0, cmds0, created, graphTime)
	return res, nil
}

// startSimProfile starts profiling this process when r.SimProfileDir is
// set and returns what stops it.
func (r *Runner) startSimProfile(sc Scenario, kind Kind) func() {
	if r.SimProfileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(r.SimProfileDir, fmt.Sprintf("%s-%s.pprof", sc.Name, kind)))
	if err != nil {
		r.logf("  sim profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		r.logf("  sim profile: %v", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// fill derives the latency and throughput figures from the gateway's
// records.
func (r *Runner) fill(res *Result, s *Sims, keys []int64, polls0, cmds0 int, created time.Time, graphTime time.Duration) {
	activations := map[int64]int{}
	for _, j := range s.Zeebe.Jobs() {
		activations[j.Key] = j.Activations
	}
	measure(res, keys, s.Zeebe.Polls()[polls0:], s.Zeebe.Commands()[cmds0:], activations, created, graphTime)
}

// measure computes a run's figures from what the gateway recorded: the
// polls and job commands of the run, and how often each job was activated.
// res.CPU must be set already.
func measure(res *Result, keys []int64, polls []zeebesim.Poll, cmds []zeebesim.Command, activations map[int64]int, created time.Time, graphTime time.Duration) {
	n := len(keys)
	done := make(map[int64]time.Time, n)
	for _, c := range cmds {
		switch {
		case c.Result != codes.OK:
		case c.Method == "CompleteJob":
			if _, seen := done[c.JobKey]; !seen {
				done[c.JobKey] = c.At
			}
		case c.Method == "FailJob" || c.Method == "ThrowError":
			res.Failed++
		}
	}
	// Jobs are activated in key order and every poll of one worker comes
	// after the previous one's answer, so the i-th poll took the next
	// min(MaxJobsToActivate, left) keys of the backlog.
	act := make(map[int64]time.Time, n)
	i := 0
	for _, p := range polls {
		k := min(int(p.MaxJobsToActivate), n-i)
		for ; k > 0; k-- {
			act[keys[i]] = p.At
			i++
		}
	}
	res.ExactActivation = i == n
	for k := range done {
		if activations[k] != 1 {
			res.ExactActivation = false
		}
	}
	var lat []time.Duration
	var first, last time.Time
	var sum time.Duration
	for _, k := range keys {
		d, ok := done[k]
		if !ok {
			continue
		}
		a := created
		if res.ExactActivation {
			a = act[k]
		}
		if first.IsZero() || a.Before(first) {
			first = a
		}
		if d.After(last) {
			last = d
		}
		lat = append(lat, d.Sub(a))
		sum += d.Sub(a)
	}
	res.Completed = len(lat)
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	res.P50 = lat[len(lat)/2]
	res.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	res.Mean = sum / time.Duration(len(lat))
	res.Wall = last.Sub(first)
	if res.Wall > 0 {
		res.JobsPerSec = float64(len(lat)) / res.Wall.Seconds()
	}
	res.GraphPerJob = graphTime / time.Duration(n)
	res.Overhead = res.Mean - res.GraphPerJob
	res.CPUPer1000 = res.CPU * 1000 / time.Duration(n)
}
