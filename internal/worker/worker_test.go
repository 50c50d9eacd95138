package worker

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/entities"
	"github.com/camunda/zeebe/clients/go/v8/pkg/pb"
	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

const jobType = "o365-mail:1"

func gateway(t *testing.T) (*zeebesim.Gateway, zbc.Client) {
	t.Helper()
	g, err := zeebesim.Start()
	require.NoError(t, err)
	t.Cleanup(g.Close)
	cfg := config.Defaults()
	cfg.ZeebeAddress = g.Addr()
	cfg.ZeebeInsecure = true
	c, err := NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return g, c
}

func testConfig() Config {
	return Config{JobType: jobType, WorkerName: "test", MaxJobsActive: 32, Concurrency: 8,
		JobTimeout: 5 * time.Minute, PollInterval: 20 * time.Millisecond, RequestTimeout: time.Second, ShutdownGrace: 10 * time.Second}
}

// start runs the worker until the returned stop is called; stop returns
// once Run has returned.
func start(t *testing.T, c zbc.Client, cfg Config, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := New(c, cfg, h, zaptest.NewLogger(t), nil)
	go func() { done <- w.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(cfg.ShutdownGrace + 10*time.Second):
			t.Fatal("worker did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func await(t *testing.T, g *zeebesim.Gateway, keys []int64, done func(zeebesim.Job) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, g.AwaitJobs(ctx, keys, done))
}

func completeWith(vars map[string]any) Handler {
	return func(ctx context.Context, j job.Job) job.Outcome {
		return job.Outcome{Kind: job.Complete, Variables: vars, Operation: "test"}
	}
}

func TestCompletesJobsWithVariablesAndOnlyFetchesConnectorVariables(t *testing.T) {
	g, c := gateway(t)
	var seen atomic.Value
	start(t, c, testConfig(), func(ctx context.Context, j job.Job) job.Outcome {
		seen.Store(j)
		return job.Outcome{Kind: job.Complete, Variables: map[string]any{"result": "ok"}}
	})
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType,
		Variables:     map[string]any{"operation": map[string]any{"type": "x"}, "unrelated": "must not be fetched"},
		CustomHeaders: map[string]string{"resultVariable": "r"}, BpmnProcessID: "p", ElementID: "task", ProcessInstanceKey: 42})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	j, _ := g.Job(key)
	require.Equal(t, "ok", j.Variables["result"])
	require.Equal(t, 1, j.Completions)
	got := seen.Load().(job.Job)
	require.Contains(t, got.Variables, "operation")
	require.NotContains(t, got.Variables, "unrelated")
	require.Equal(t, "r", got.Headers["resultVariable"])
	require.Equal(t, "p", got.BpmnProcessID)
	require.Equal(t, "task", got.ElementID)
	require.Equal(t, int64(42), got.ProcessInstanceKey)
	require.True(t, got.Deadline.After(time.Now()))
}

func TestFailAndThrowErrorCommands(t *testing.T) {
	g, c := gateway(t)
	start(t, c, testConfig(), func(ctx context.Context, j job.Job) job.Outcome {
		if strings.Contains(j.Variables, "throw") {
			return job.Outcome{Kind: job.ThrowError, Code: "NOT_FOUND", Message: "gone", Variables: map[string]any{"why": "x"}}
		}
		return job.Outcome{Kind: job.Fail, Retries: 0, Message: "INVALID_INPUT: " + strings.Repeat("é", 7000),
			Variables: map[string]any{"error": map[string]any{"code": "INVALID_INPUT"}}}
	})
	failKey := g.CreateJob(zeebesim.JobSpec{Type: jobType, Variables: map[string]any{"operation": "fail"}})
	throwKey := g.CreateJob(zeebesim.JobSpec{Type: jobType, Variables: map[string]any{"operation": "throw"}})
	await(t, g, []int64{failKey}, func(j zeebesim.Job) bool { return j.Incident })
	await(t, g, []int64{throwKey}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateErrorThrown })
	f, _ := g.Job(failKey)
	require.Equal(t, MaxFailMessage, len([]rune(f.ErrorMessage)), "truncated to 6000 characters, not bytes")
	require.True(t, strings.HasPrefix(f.ErrorMessage, "INVALID_INPUT: "))
	th, _ := g.Job(throwKey)
	require.Equal(t, "NOT_FOUND", th.ErrorCode)
	require.Equal(t, "gone", th.ErrorMessage)
}

func TestJobCommandsRetriedOnUnavailable(t *testing.T) {
	g, c := gateway(t)
	g.InjectFault(zeebesim.Fault{Method: "CompleteJob", Code: codes.Unavailable, Times: 3})
	start(t, c, testConfig(), completeWith(map[string]any{"x": 1}))
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	// The gateway records the command just after the state change.
	var codesSeen []codes.Code
	require.Eventually(t, func() bool {
		codesSeen = codesSeen[:0]
		for _, cmd := range g.Commands() {
			if cmd.Method == "CompleteJob" && cmd.JobKey == key {
				codesSeen = append(codesSeen, cmd.Result)
			}
		}
		return len(codesSeen) == 4
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []codes.Code{codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.OK}, codesSeen)
}

func TestResultTooLargeBecomesIncident(t *testing.T) {
	g, c := gateway(t)
	start(t, c, testConfig(), completeWith(map[string]any{"big": strings.Repeat("x", 5<<20)}))
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.Incident })
	j, _ := g.Job(key)
	require.Contains(t, j.ErrorMessage, "RESULT_REJECTED")
	require.Zero(t, j.Completions)
}

func TestHandlerPanicFailsTheJob(t *testing.T) {
	g, c := gateway(t)
	start(t, c, testConfig(), func(ctx context.Context, j job.Job) job.Outcome { panic("boom") })
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType, Retries: 2})
	// Each panic costs one retry, so the job ends in an incident after two.
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.Incident })
	j, _ := g.Job(key)
	require.Contains(t, j.ErrorMessage, "INTERNAL_ERROR")
	var retries []int32
	for _, c := range g.Commands() {
		if c.Method == "FailJob" && c.JobKey == key {
			retries = append(retries, c.Retries)
		}
	}
	require.Equal(t, []int32{1, 0}, retries)
}

// Every job ends completed or handed back; none waits for its 5-minute timeout.
func TestShutdownUnderLoadLosesNothing(t *testing.T) {
	g, c := gateway(t)
	const n = 2000
	keys := make([]int64, n)
	for i := range keys {
		keys[i] = g.CreateJob(zeebesim.JobSpec{Type: jobType})
	}
	var handled atomic.Int64
	cfg := testConfig()
	stop := start(t, c, cfg, func(ctx context.Context, j job.Job) job.Outcome {
		time.Sleep(2 * time.Millisecond)
		handled.Add(1)
		return job.Outcome{Kind: job.Complete}
	})
	require.Eventually(t, func() bool { return handled.Load() >= n/4 }, 60*time.Second, 5*time.Millisecond)
	stop()

	var completed, back int
	for _, k := range keys {
		j, ok := g.Job(k)
		require.True(t, ok)
		switch j.State {
		case zeebesim.StateCompleted:
			completed++
		case zeebesim.StateActivatable, zeebesim.StateFailed:
			require.Equal(t, int32(3), j.Retries, "handed back with retries intact")
			back++
		default:
			t.Fatalf("job %d left in state %s", k, j.State)
		}
	}
	require.Equal(t, n, completed+back)
	require.Less(t, completed, n, "the stop came mid-run")
	t.Logf("completed %d, handed back %d", completed, back)
}

func TestGatewayRestartUnderLoad(t *testing.T) {
	g, c := gateway(t)
	const n = 600
	// A poll answer in flight when the gateway dies is lost, as with a real
	// gateway; its jobs come back after their timeout, so keep it short.
	cfg := testConfig()
	cfg.JobTimeout = 2 * time.Second
	start(t, c, cfg, func(ctx context.Context, j job.Job) job.Outcome {
		time.Sleep(time.Millisecond)
		return job.Outcome{Kind: job.Complete}
	})
	keys := make([]int64, 0, n)
	for i := 0; i < n/2; i++ {
		keys = append(keys, g.CreateJob(zeebesim.JobSpec{Type: jobType}))
	}
	g.Stop()
	for i := 0; i < n/2; i++ {
		keys = append(keys, g.CreateJob(zeebesim.JobSpec{Type: jobType}))
	}
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, g.Restart())
	await(t, g, keys, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	for _, k := range keys {
		j, _ := g.Job(k)
		require.Equal(t, 1, j.Completions)
	}
}

func TestCompleteWithoutVariablesSendsNone(t *testing.T) {
	g, c := gateway(t)
	start(t, c, testConfig(), completeWith(nil))
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType, Variables: map[string]any{"operation": map[string]any{"type": "x"}}})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	var sent []string
	for _, cmd := range g.Commands() {
		if cmd.Method == "CompleteJob" && cmd.JobKey == key {
			sent = append(sent, cmd.Variables)
		}
	}
	require.Equal(t, []string{""}, sent, "no variables document at all, not a marshalled empty map")
}

// The command retry loop is bounded by the job's deadline, not by a count:
// under a gateway that answers UNAVAILABLE for good it keeps trying with
// growing pauses, gives every attempt a context that ends by the deadline,
// and returns the last error once the deadline has passed.
func TestCommandRetriesStopAtTheDeadline(t *testing.T) {
	w := New(nil, testConfig(), nil, nil, nil)
	deadline := time.Now().Add(400 * time.Millisecond)
	var attempts int
	err := w.retry(deadline, func(ctx context.Context) error {
		attempts++
		d, ok := ctx.Deadline()
		require.True(t, ok)
		require.False(t, d.After(deadline), "an attempt must not outlive the job's deadline")
		return status.Error(codes.Unavailable, "gateway down")
	})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.False(t, time.Now().Before(deadline), "gave up before the deadline")
	// 50, 100, 200 ms pauses fit in 400 ms: several attempts; the
	// doubling keeps it far from a busy loop.
	require.GreaterOrEqual(t, attempts, 2)
	require.LessOrEqual(t, attempts, 8)
}

func TestCommandNotRetriedWhenRefused(t *testing.T) {
	w := New(nil, testConfig(), nil, nil, nil)
	var attempts int
	err := w.retry(time.Now().Add(time.Minute), func(ctx context.Context) error {
		attempts++
		return status.Error(codes.InvalidArgument, "bad variables")
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, 1, attempts)
}

// Sender goroutines wait for more commands after sending one; shutdown must
// not wait for them to idle out.
func TestIdleSendersDoNotHoldShutdown(t *testing.T) {
	g, c := gateway(t)
	w := New(c, testConfig(), completeWith(nil), zaptest.NewLogger(t), nil)
	w.senderIdle = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	keys := make([]int64, 20)
	for i := range keys {
		keys[i] = g.CreateJob(zeebesim.JobSpec{Type: jobType})
	}
	await(t, g, keys, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	begun := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(w.senderIdle / 2):
		t.Fatal("shutdown waited for idle senders")
	}
	t.Logf("shutdown took %s", time.Since(begun).Round(time.Millisecond))
}

// The poller is woken only by a release that leaves room for a poll (30 %
// of MaxJobsActive), not after every job, and every release from then on
// keeps its signal.
func TestReleaseWakesThePollerOnlyWhenItWouldPoll(t *testing.T) {
	w := New(nil, Config{MaxJobsActive: 10, Concurrency: 2}, nil, nil, nil)
	w.active.Store(10)
	for i := 1; i <= 2; i++ {
		w.release()
		if len(w.freed) != 0 {
			t.Fatalf("the poller was woken with %d of 10 places free", i)
		}
	}
	w.release()
	if len(w.freed) != 1 {
		t.Fatal("the poller was not woken with 3 of 10 places free")
	}
	<-w.freed
	w.release()
	if len(w.freed) != 1 {
		t.Fatal("a later release did not wake the poller again")
	}
	if n := w.active.Load(); n != 6 {
		t.Fatalf("%d jobs active after 4 releases of 10", n)
	}
}

// With streaming, the queue can be full while every handler is busy; a job
// pushed then must not hold shutdown past its grace period. Handlers that
// are still running when the grace ends are aborted.
func TestShutdownWithFullQueueAndStreamKeepsTheGrace(t *testing.T) {
	g, c := gateway(t)
	cfg := testConfig()
	cfg.MaxJobsActive, cfg.Concurrency, cfg.StreamEnabled, cfg.ShutdownGrace = 2, 1, true, time.Second
	cfg.PollInterval = time.Hour // jobs come by the stream only
	w := New(c, cfg, func(ctx context.Context, j job.Job) job.Outcome {
		<-ctx.Done() // a Graph call that ends only when shutdown aborts it
		return job.Outcome{Kind: job.Fail, Retries: j.Retries - 1, Message: "aborted"}
	}, zaptest.NewLogger(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	require.Eventually(t, func() bool { return g.OpenStreams(jobType) == 1 }, 5*time.Second, 5*time.Millisecond)
	keys := make([]int64, 10)
	for i := range keys {
		keys[i] = g.CreateJob(zeebesim.JobSpec{Type: jobType})
	}
	// One running, the queue full, and one more pushed job waiting for room.
	require.Eventually(t, func() bool { return w.active.Load() > int64(cfg.MaxJobsActive) }, 5*time.Second, 5*time.Millisecond)
	stopped := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(cfg.ShutdownGrace + 5*time.Second):
		t.Fatal("shutdown did not end after its grace period")
	}
	t.Logf("shutdown took %s", time.Since(stopped).Round(time.Millisecond))

	var failed, back int
	for _, k := range keys {
		j, _ := g.Job(k)
		switch {
		case j.State == zeebesim.StateActivated && j.Worker == cfg.WorkerName:
			t.Errorf("job %d left activated: it would come back only after its timeout", k)
		case j.Retries == 2:
			failed++ // the aborted one
		case j.Worker != "":
			require.Equal(t, int32(3), j.Retries, "job %d handed back with retries intact", k)
			back++
		}
	}
	require.Equal(t, 1, failed, "the running job was aborted")
	require.GreaterOrEqual(t, back, cfg.MaxJobsActive+1, "the queued jobs and the one waiting for room went back")
}

// A queued job whose deadline passed may have been activated by another
// worker meanwhile; handing it back at shutdown would undo that activation
// and have the job run twice.
func TestShutdownDoesNotHandBackJobsPastTheirDeadline(t *testing.T) {
	g, c := gateway(t)
	cfg := testConfig()
	cfg.MaxJobsActive, cfg.Concurrency, cfg.JobTimeout = 2, 1, 300*time.Millisecond
	var started atomic.Int32
	release := make(chan struct{})
	w := New(c, cfg, func(ctx context.Context, j job.Job) job.Outcome {
		started.Add(1)
		<-release
		return job.Outcome{Kind: job.Complete}
	}, zaptest.NewLogger(t), nil)
	keys := []int64{g.CreateJob(zeebesim.JobSpec{Type: jobType}), g.CreateJob(zeebesim.JobSpec{Type: jobType})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	require.Eventually(t, func() bool { return started.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	// Both time out while one runs and one waits in the queue; worker B
	// takes both.
	time.Sleep(2 * cfg.JobTimeout)
	jobs, err := c.NewActivateJobsCommand().JobType(jobType).MaxJobsToActivate(2).Timeout(time.Minute).
		WorkerName("B").Send(context.Background())
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	cancel()
	require.Eventually(t, func() bool { return w.stopping.Load() }, 5*time.Second, time.Millisecond)
	close(release)
	<-done
	for _, k := range keys {
		j, _ := g.Job(k)
		require.Equal(t, zeebesim.StateActivated, j.State, "job %d: worker B's activation was undone", k)
		require.Equal(t, "B", j.Worker)
	}
}

// poolWorker runs a worker whose handlers each take work long and leave
// after idle without a job; most reports the most handlers seen at once.
func poolWorker(t *testing.T, cfg Config, work, idle time.Duration) (*zeebesim.Gateway, *Worker, *atomic.Int32) {
	t.Helper()
	g, c := gateway(t)
	h, most := countingHandler(work)
	w := New(c, cfg, h, zaptest.NewLogger(t), nil)
	w.handlerIdle = idle
	runInBackground(t, w)
	return g, w, most
}

// Handlers start with the work, never more than Concurrency at once, and
// leave once it stops, so that the stacks of a burst do not stay.
func TestHandlersFollowTheWork(t *testing.T) {
	cfg := testConfig()
	cfg.MaxJobsActive, cfg.Concurrency = 64, 8
	g, w, most := poolWorker(t, cfg, 2*time.Millisecond, 50*time.Millisecond)
	require.Zero(t, w.live.Load(), "no handler before the first job")

	// Bursts separated by about the idle time, so that handlers leave
	// while jobs arrive: none may be left behind.
	var keys []int64
	for burst := 0; burst < 12; burst++ {
		for i := 0; i < 1+burst%5*10; i++ {
			keys = append(keys, g.CreateJob(zeebesim.JobSpec{Type: jobType}))
		}
		time.Sleep(time.Duration(30+burst%3*15) * time.Millisecond)
	}
	await(t, g, keys, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	require.LessOrEqual(t, most.Load(), int32(cfg.Concurrency))
	require.Greater(t, most.Load(), int32(1), "handlers ran side by side")
	require.Eventually(t, func() bool { return w.live.Load() == 0 }, 5*time.Second, 5*time.Millisecond,
		"handlers left once the work stopped")
	require.Zero(t, w.deficit.Load(), "no job waits and no handler does")

	// And come back for the next job.
	k := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{k}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
}

// The one tight spot of the handler pool: a job queued while the only
// handler still counts as idle, and that handler then times out. The job
// must still get a handler.
func TestJobQueuedAsTheLastHandlerLeavesIsHandled(t *testing.T) {
	_, c := gateway(t)
	handled := make(chan int64, 1)
	w := New(c, testConfig(), func(ctx context.Context, j job.Job) job.Outcome {
		handled <- j.Key
		return job.Outcome{Kind: job.Fail, Retries: 1, Message: "test"}
	}, zaptest.NewLogger(t), nil)
	w.handlerIdle = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.handlerCtx = ctx
	// One handler, waiting for work: the job finds it counted idle and
	// starts none.
	w.live.Store(1)
	w.deficit.Store(-1)
	w.enqueue(ctx.Done(), entities.Job{ActivatedJob: &pb.ActivatedJob{Key: 42, Retries: 3, Variables: "{}", CustomHeaders: "{}", Deadline: time.Now().Add(time.Minute).UnixMilli()}})
	require.Equal(t, int32(1), w.live.Load(), "no handler started while one counted idle")
	// Its timer fires instead of the receive.
	w.leave()
	select {
	case k := <-handled:
		require.Equal(t, int64(42), k)
	case <-time.After(5 * time.Second):
		t.Fatal("the job queued as the last handler left was never handled")
	}
	w.handlers.Wait()
}

// A burst that arrives while one handler lingers idle from earlier work must
// still spread over Concurrency handlers, not queue behind that one.
func TestBurstAfterQuietUsesEveryHandler(t *testing.T) {
	cfg := testConfig()
	cfg.MaxJobsActive, cfg.Concurrency = 32, 8
	g, w, most := poolWorker(t, cfg, 20*time.Millisecond, time.Minute)

	first := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{first}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	require.Eventually(t, func() bool { return w.live.Load() == 1 && w.deficit.Load() == -1 }, 5*time.Second, time.Millisecond)
	most.Store(0)

	keys := make([]int64, 32)
	for i := range keys {
		keys[i] = g.CreateJob(zeebesim.JobSpec{Type: jobType})
	}
	await(t, g, keys, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	require.Equal(t, int32(cfg.Concurrency), most.Load(), "the burst ran on every handler")
}

// countingHandler completes each job after pause and records the most jobs
// it ran at once.
func countingHandler(pause time.Duration) (Handler, *atomic.Int32) {
	var running, most atomic.Int32
	return func(ctx context.Context, j job.Job) job.Outcome {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(pause)
		return job.Outcome{Kind: job.Complete}
	}, &most
}

// runInBackground runs w until the test ends.
func runInBackground(t *testing.T, w *Worker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
