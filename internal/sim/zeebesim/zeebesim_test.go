package zeebesim

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/entities"
	"github.com/camunda/zeebe/clients/go/v8/pkg/pb"
	"github.com/camunda/zeebe/clients/go/v8/pkg/worker"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func TestActivateAndComplete(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)

	key := g.CreateJob(JobSpec{
		Type:          "mail",
		Variables:     map[string]any{"to": "a@example.com", "n": 7},
		CustomHeaders: map[string]string{"op": "send"},
		BpmnProcessID: "proc",
		ElementID:     "task",
	})
	require.Greater(t, key, int64(1)<<32, "keys live in partition 1's key space")

	before := time.Now()
	jobs := activate(t, c, "mail", "w1", 10, time.Minute)
	after := time.Now()
	require.Len(t, jobs, 1)
	aj := jobs[0]
	require.Equal(t, key, aj.Key)
	require.Equal(t, "mail", aj.Type)
	require.Equal(t, "w1", aj.Worker)
	require.Equal(t, int32(3), aj.Retries)
	require.Equal(t, "proc", aj.BpmnProcessId)
	require.Equal(t, "task", aj.ElementId)
	require.Equal(t, DefaultTenantID, aj.TenantId)
	require.NotZero(t, aj.ProcessInstanceKey)
	require.NotZero(t, aj.ElementInstanceKey)
	require.Equal(t, map[string]any{"to": "a@example.com", "n": float64(7)}, decodeJSON(t, aj.Variables))
	headers, err := aj.GetCustomHeadersAsMap()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"op": "send"}, headers)
	require.GreaterOrEqual(t, aj.Deadline, before.Add(time.Minute).UnixMilli())
	require.LessOrEqual(t, aj.Deadline, after.Add(time.Minute).UnixMilli())

	j, ok := g.Job(key)
	require.True(t, ok)
	require.Equal(t, StateActivated, j.State)
	require.Equal(t, 1, j.Activations)
	require.Equal(t, "w1", j.Worker)
	require.False(t, j.Streamed)

	cmd, err := c.NewCompleteJobCommand().JobKey(key).VariablesFromMap(map[string]any{"sent": true})
	require.NoError(t, err)
	_, err = cmd.Send(ctx)
	require.NoError(t, err)

	j, _ = g.Job(key)
	require.Equal(t, StateCompleted, j.State)
	require.Equal(t, 1, j.Completions)
	require.Equal(t, map[string]any{"sent": true}, j.Variables)

	// A completed job no longer exists for the broker.
	_, err = c.NewCompleteJobCommand().JobKey(key).Send(ctx)
	requireCode(t, err, codes.NotFound)
	require.Contains(t, err.Error(), fmt.Sprintf("Command 'COMPLETE' rejected with code 'NOT_FOUND': Expected to complete job with key '%d', but no such job was found", key))
	j, _ = g.Job(key)
	require.Equal(t, 1, j.Completions)

	cmds := g.Commands()
	require.Len(t, cmds, 2)
	require.Equal(t, "CompleteJob", cmds[0].Method)
	require.Equal(t, key, cmds[0].JobKey)
	require.Equal(t, `{"sent":true}`, cmds[0].Variables)
	require.Equal(t, codes.OK, cmds[0].Result)
	require.Equal(t, codes.NotFound, cmds[1].Result)
	require.Equal(t, 1, g.ActivationRequests())
}

func TestJobWorkerCompletesEachJobOnce(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	const n = 200
	var keys []int64
	for i := 0; i < n/2; i++ {
		keys = append(keys, g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"i": i}}))
	}
	var handled atomic.Int64
	handler := func(jc worker.JobClient, job entities.Job) {
		handled.Add(1)
		_, _ = jc.NewCompleteJobCommand().JobKey(job.Key).Send(context.Background())
	}
	w1 := c.NewJobWorker().JobType("t").Handler(handler).Name("w1").MaxJobsActive(8).Concurrency(4).BackoffSupplier(safeBackoff()).Open()
	w2 := c.NewJobWorker().JobType("t").Handler(handler).Name("w2").MaxJobsActive(8).Concurrency(4).BackoffSupplier(safeBackoff()).Open()
	for i := n / 2; i < n; i++ {
		keys = append(keys, g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"i": i}}))
	}
	require.NoError(t, g.AwaitJobs(waitCtx(t), keys, stateIs(StateCompleted)))
	for _, k := range keys {
		j, _ := g.Job(k)
		require.Equal(t, 1, j.Completions)
		require.Equal(t, 1, j.Activations, "job %d activated twice", k)
	}
	closeWorker(t, w1, c)
	closeWorker(t, w2, c)
	require.Equal(t, int64(n), handled.Load())
	ok := 0
	for _, cmd := range g.Commands() {
		if cmd.Method == "CompleteJob" && cmd.Result == codes.OK {
			ok++
		}
	}
	require.Equal(t, n, ok)
}

func TestLongPollReturnsWhenJobIsCreated(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)

	type result struct {
		jobs []entities.Job
		err  error
	}
	res := make(chan result, 1)
	go func() {
		// The poll may be held for 27 s (90 % of the context's time); a job
		// arriving must end it long before, with that job.
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		jobs, err := c.NewActivateJobsCommand().JobType("t").MaxJobsToActivate(5).Timeout(time.Minute).WorkerName("w").Send(ctx)
		res <- result{jobs, err}
	}()
	require.NoError(t, g.Await(waitCtx(t), func(g *Gateway) bool { return g.WaitingPolls("t") == 1 }))
	g.CreateJob(JobSpec{Type: "other"})
	key := g.CreateJob(JobSpec{Type: "t"})
	r := <-res
	require.NoError(t, r.err)
	require.Len(t, r.jobs, 1)
	require.Equal(t, key, r.jobs[0].Key)
	require.Equal(t, 0, g.WaitingPolls(""))
}

func TestLongPollEndsEmpty(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)

	// A context without deadline makes zbc send RequestTimeout -1: no long
	// polling, the answer comes at once.
	jobs, err := c.NewActivateJobsCommand().JobType("t").MaxJobsToActivate(5).WorkerName("w").Send(context.Background())
	require.NoError(t, err)
	require.Empty(t, jobs)

	// A short long poll ends with no jobs and no error.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	jobs, err = c.NewActivateJobsCommand().JobType("t").MaxJobsToActivate(5).WorkerName("w").Send(ctx)
	require.NoError(t, err)
	require.Empty(t, jobs)
	require.Equal(t, 2, g.ActivationRequests())
	polls := g.Polls()
	require.Len(t, polls, 2)
	require.Equal(t, time.Duration(-time.Millisecond), polls[0].RequestTimeout)
	require.Greater(t, polls[1].RequestTimeout, time.Duration(0))
	require.Equal(t, int32(5), polls[1].MaxJobsToActivate)
	require.Equal(t, "w", polls[1].Worker)

	// RequestTimeout 0 falls back to the gateway's long-polling timeout.
	g2 := startGateway(t, WithLongPollingTimeout(200*time.Millisecond))
	stream, err := rawClient(t, g2).ActivateJobs(waitCtx(t), &pb.ActivateJobsRequest{
		Type: "t", Worker: "w", Timeout: 1000, MaxJobsToActivate: 1, RequestTimeout: 0,
	})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.ErrorIs(t, err, io.EOF)
}

func TestMaxJobsToActivateAndKeyOrder(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	var keys []int64
	for i := 0; i < 10; i++ {
		keys = append(keys, g.CreateJob(JobSpec{Type: "t"}))
	}
	jobs := activate(t, c, "t", "w", 3, time.Minute)
	require.Len(t, jobs, 3)
	for i, j := range jobs {
		require.Equal(t, keys[i], j.Key)
	}
	jobs = activate(t, c, "t", "w", 100, time.Minute)
	require.Len(t, jobs, 7)
	require.Empty(t, activateNow(t, c, "t", "w", 100, time.Minute))
}

func TestFetchVariables(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"a": 1, "b": "x", "c": []any{true}}})
	jobs := activate(t, c, "t", "w", 1, time.Minute, "a", "c", "missing")
	require.Len(t, jobs, 1)
	require.Equal(t, map[string]any{"a": float64(1), "c": []any{true}}, decodeJSON(t, jobs[0].Variables))

	g.CreateJob(JobSpec{Type: "none"})
	jobs = activate(t, c, "none", "w", 1, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, "{}", jobs[0].Variables)
	require.Equal(t, "{}", jobs[0].CustomHeaders)
}

func TestTimedOutJobIsActivatedAgain(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	key := g.CreateJob(JobSpec{Type: "t"})
	start := time.Now()
	jobs := activate(t, c, "t", "w1", 1, 300*time.Millisecond)
	require.Len(t, jobs, 1)
	first := jobs[0].Deadline

	require.NoError(t, g.AwaitJobs(ctx, []int64{key}, stateIs(StateActivatable)))
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "re-activatable before its deadline")

	jobs = activate(t, c, "t", "w2", 1, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, key, jobs[0].Key)
	require.Equal(t, "w2", jobs[0].Worker)
	require.Equal(t, int32(3), jobs[0].Retries, "a timeout keeps the retries")
	require.Greater(t, jobs[0].Deadline, first)
	j, _ := g.Job(key)
	require.Equal(t, 2, j.Activations)

	// The broker accepts a completion by key while the job is activatable or
	// activated, whichever activation it comes from: the late first worker
	// wins and the second one's completion is NOT_FOUND.
	_, err := c.NewCompleteJobCommand().JobKey(key).Send(ctx)
	require.NoError(t, err)
	_, err = c.NewCompleteJobCommand().JobKey(key).Send(ctx)
	requireCode(t, err, codes.NotFound)
	j, _ = g.Job(key)
	require.Equal(t, 1, j.Completions)
}

func TestCompleteActivatableJobIsAccepted(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	key := g.CreateJob(JobSpec{Type: "t"})
	_, err := c.NewCompleteJobCommand().JobKey(key).Send(waitCtx(t))
	require.NoError(t, err)
	j, _ := g.Job(key)
	require.Equal(t, StateCompleted, j.State)
	require.Empty(t, activateNow(t, c, "t", "w", 1, time.Minute))
}

func TestFailWithBackoff(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	key := g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"a": 1}})
	require.Len(t, activate(t, c, "t", "w", 1, time.Minute), 1)

	const backoff = time.Second
	failedAt := time.Now()
	cmd, err := c.NewFailJobCommand().JobKey(key).Retries(2).RetryBackoff(backoff).ErrorMessage("graph 503").
		VariablesFromMap(map[string]any{"attempt": 1})
	require.NoError(t, err)
	_, err = cmd.Send(ctx)
	require.NoError(t, err)

	j, _ := g.Job(key)
	if time.Since(failedAt) < backoff {
		require.Equal(t, StateFailed, j.State)
		require.Empty(t, activateNow(t, c, "t", "w", 1, time.Minute))
		_, err = c.NewCompleteJobCommand().JobKey(key).Send(ctx)
		if time.Since(failedAt) < backoff {
			requireCode(t, err, codes.FailedPrecondition)
			require.Contains(t, err.Error(), "but it is in state 'FAILED'")
		}
	}
	require.Equal(t, int32(2), j.Retries)
	require.Equal(t, "graph 503", j.ErrorMessage)
	require.Equal(t, backoff, j.RetryBackoff)
	require.Equal(t, map[string]any{"attempt": float64(1)}, j.ErrorVariables)

	require.NoError(t, g.AwaitJobs(ctx, []int64{key}, stateIs(StateActivatable)))
	require.GreaterOrEqual(t, time.Since(failedAt), backoff)
	jobs := activate(t, c, "t", "w", 1, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, int32(2), jobs[0].Retries)
	require.Equal(t, map[string]any{"a": float64(1), "attempt": float64(1)}, decodeJSON(t, jobs[0].Variables),
		"fail variables become task-local variables")

	last := g.Commands()[0]
	require.Equal(t, "FailJob", last.Method)
	require.Equal(t, int32(2), last.Retries)
	require.Equal(t, backoff, last.Backoff)
	require.Equal(t, "graph 503", last.ErrorMessage)
}

func TestFailWithoutBackoffIsActivatableAtOnce(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	key := g.CreateJob(JobSpec{Type: "t"})
	require.Len(t, activate(t, c, "t", "w", 1, time.Minute), 1)
	_, err := c.NewFailJobCommand().JobKey(key).Retries(1).Send(waitCtx(t))
	require.NoError(t, err)
	j, _ := g.Job(key)
	require.Equal(t, StateActivatable, j.State)
	jobs := activate(t, c, "t", "w", 1, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, int32(1), jobs[0].Retries)
}

func TestFailWithoutRetriesRaisesIncident(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	key := g.CreateJob(JobSpec{Type: "t"})
	require.Len(t, activate(t, c, "t", "w", 1, time.Minute), 1)
	_, err := c.NewFailJobCommand().JobKey(key).Retries(0).ErrorMessage("bad input").Send(ctx)
	require.NoError(t, err)

	j, _ := g.Job(key)
	require.Equal(t, StateIncident, j.State)
	require.True(t, j.Incident)
	require.Equal(t, "bad input", j.ErrorMessage)
	require.Empty(t, activateNow(t, c, "t", "w", 1, time.Minute))

	_, err = c.NewCompleteJobCommand().JobKey(key).Send(ctx)
	requireCode(t, err, codes.FailedPrecondition)
	_, err = c.NewFailJobCommand().JobKey(key).Retries(1).Send(ctx)
	requireCode(t, err, codes.FailedPrecondition)

	require.False(t, g.ResolveIncident(key), "no retries left")
	_, err = c.NewUpdateJobRetriesCommand().JobKey(key).Retries(0).Send(ctx)
	requireCode(t, err, codes.InvalidArgument)
	_, err = c.NewUpdateJobRetriesCommand().JobKey(key).Retries(2).Send(ctx)
	require.NoError(t, err)
	require.True(t, g.ResolveIncident(key))
	jobs := activate(t, c, "t", "w", 1, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, int32(2), jobs[0].Retries)
}

func TestThrowError(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	key := g.CreateJob(JobSpec{Type: "t"})
	require.Len(t, activate(t, c, "t", "w", 1, time.Minute), 1)
	cmd, err := c.NewThrowErrorCommand().JobKey(key).ErrorCode("MAILBOX_NOT_FOUND").ErrorMessage("no mailbox").
		VariablesFromMap(map[string]any{"errorCode": "MAILBOX_NOT_FOUND"})
	require.NoError(t, err)
	_, err = cmd.Send(ctx)
	require.NoError(t, err)

	j, _ := g.Job(key)
	require.Equal(t, StateErrorThrown, j.State)
	require.Equal(t, "MAILBOX_NOT_FOUND", j.ErrorCode)
	require.Equal(t, "no mailbox", j.ErrorMessage)
	require.Equal(t, map[string]any{"errorCode": "MAILBOX_NOT_FOUND"}, j.ErrorVariables)

	_, err = c.NewCompleteJobCommand().JobKey(key).Send(ctx)
	requireCode(t, err, codes.NotFound)
	cmds := g.Commands()
	require.Equal(t, "ThrowError", cmds[0].Method)
	require.Equal(t, "MAILBOX_NOT_FOUND", cmds[0].ErrorCode)
}

func TestUnknownJobIsNotFound(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	const key = 2251799813685999
	_, err := c.NewCompleteJobCommand().JobKey(key).Send(ctx)
	requireCode(t, err, codes.NotFound)
	_, err = c.NewFailJobCommand().JobKey(key).Retries(1).Send(ctx)
	requireCode(t, err, codes.NotFound)
	require.Contains(t, err.Error(), "Command 'FAIL' rejected with code 'NOT_FOUND': Expected to fail job with key '2251799813685999', but no such job was found")
	_, err = c.NewThrowErrorCommand().JobKey(key).ErrorCode("E").Send(ctx)
	requireCode(t, err, codes.NotFound)
	require.Contains(t, err.Error(), "Expected to throw an error for job with key")
	_, err = c.NewUpdateJobRetriesCommand().JobKey(key).Retries(1).Send(ctx)
	requireCode(t, err, codes.NotFound)
	require.Len(t, g.Commands(), 4)
}

func TestInvalidRequests(t *testing.T) {
	g := startGateway(t)
	raw := rawClient(t, g)
	ctx := waitCtx(t)
	for _, req := range []*pb.ActivateJobsRequest{
		{Type: "t", Worker: "w", Timeout: 1000, MaxJobsToActivate: 0},
		{Type: "t", Worker: "w", Timeout: 0, MaxJobsToActivate: 1},
		{Type: "", Worker: "w", Timeout: 1000, MaxJobsToActivate: 1},
		{Type: "t", Worker: "", Timeout: 1000, MaxJobsToActivate: 1},
	} {
		stream, err := raw.ActivateJobs(ctx, req)
		require.NoError(t, err)
		_, err = stream.Recv()
		requireCode(t, err, codes.InvalidArgument)
		require.Contains(t, err.Error(), "Command 'ACTIVATE' rejected with code 'INVALID_ARGUMENT'")
	}
	key := g.CreateJob(JobSpec{Type: "t"})
	_, err := raw.CompleteJob(ctx, &pb.CompleteJobRequest{JobKey: key, Variables: `[1,2]`})
	requireCode(t, err, codes.InvalidArgument)
	_, err = raw.CompleteJob(ctx, &pb.CompleteJobRequest{JobKey: key, Variables: `{"a":`})
	requireCode(t, err, codes.InvalidArgument)
	j, _ := g.Job(key)
	require.Equal(t, StateActivatable, j.State)

	_, err = raw.CancelProcessInstance(ctx, &pb.CancelProcessInstanceRequest{ProcessInstanceKey: 1})
	requireCode(t, err, codes.Unimplemented)
}

func TestCompleteVariablesSizeLimit(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	key := g.CreateJob(JobSpec{Type: "t"})
	require.Len(t, activate(t, c, "t", "w", 1, time.Minute), 1)

	big := fmt.Sprintf(`{"body":%q}`, strings.Repeat("x", 4<<20))
	cmd, err := c.NewCompleteJobCommand().JobKey(key).VariablesFromString(big)
	require.NoError(t, err)
	_, err = cmd.Send(ctx)
	requireCode(t, err, codes.ResourceExhausted)
	require.Contains(t, err.Error(), "gRPC message exceeds maximum size 4194304")
	j, _ := g.Job(key)
	require.Equal(t, StateActivated, j.State)
	require.Zero(t, j.Completions)
	cmds := g.Commands()
	require.Len(t, cmds, 1)
	require.Equal(t, codes.ResourceExhausted, cmds[0].Result)

	fits := fmt.Sprintf(`{"body":%q}`, strings.Repeat("x", 3<<20))
	cmd, err = c.NewCompleteJobCommand().JobKey(key).VariablesFromString(fits)
	require.NoError(t, err)
	_, err = cmd.Send(ctx)
	require.NoError(t, err)
	j, _ = g.Job(key)
	require.Equal(t, 1, j.Completions)
	require.Len(t, j.Variables["body"], 3<<20)
}

func TestActivationBatchFitsMessageSize(t *testing.T) {
	g := startGateway(t, WithMaxMessageSize(64<<10))
	c := newClient(t, g)
	ctx := waitCtx(t)
	payload := strings.Repeat("y", 25<<10)
	var keys []int64
	for i := 0; i < 3; i++ {
		keys = append(keys, g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"p": payload}}))
	}
	jobs := activate(t, c, "t", "w", 10, time.Minute)
	require.Len(t, jobs, 2, "two 25 KiB jobs fit in 64 KiB, three do not")
	jobs = activate(t, c, "t", "w", 10, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, keys[2], jobs[0].Key)

	huge := g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"p": strings.Repeat("z", 80<<10)}})
	after := g.CreateJob(JobSpec{Type: "t"})
	jobs = activate(t, c, "t", "w", 10, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, after, jobs[0].Key)
	j, _ := g.Job(huge)
	require.Equal(t, StateIncident, j.State)
	require.Contains(t, j.ErrorMessage, "larger than the configured message size")

	// Just too large for a response of its own (its envelope included),
	// though under the message size: an incident too, not a job that
	// blocks its type.
	target := (64 << 10) - 30
	n := 60 << 10
	for {
		probe := g.CreateJob(JobSpec{Type: "probe", Variables: map[string]any{"p": strings.Repeat("z", n)}})
		g.mu.Lock()
		size := proto.Size(g.activatedJobLocked(g.jobs[probe], activation{worker: "w", timeout: time.Minute}, time.Now())) + 16
		g.mu.Unlock()
		if size == target {
			break
		}
		n += target - size
	}
	edge := g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"p": strings.Repeat("z", n)}})
	next := g.CreateJob(JobSpec{Type: "t"})
	jobs = activate(t, c, "t", "w", 10, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, next, jobs[0].Key)
	j, _ = g.Job(edge)
	require.Equal(t, StateIncident, j.State)

	// Requests above the configured size are refused too.
	cmd, err := c.NewCompleteJobCommand().JobKey(after).VariablesFromString(fmt.Sprintf(`{"p":%q}`, strings.Repeat("q", 70<<10)))
	require.NoError(t, err)
	_, err = cmd.Send(ctx)
	requireCode(t, err, codes.ResourceExhausted)
}

func TestTopology(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	top, err := c.NewTopologyCommand().Send(waitCtx(t))
	require.NoError(t, err)
	require.Equal(t, int32(1), top.ClusterSize)
	require.Equal(t, int32(1), top.PartitionsCount)
	require.Equal(t, int32(1), top.ReplicationFactor)
	require.Equal(t, "8.5.25", top.GatewayVersion)
	require.Equal(t, Version, top.GatewayVersion)
	require.Len(t, top.Brokers, 1)
	require.Equal(t, "8.5.25", top.Brokers[0].Version)
	require.Len(t, top.Brokers[0].Partitions, 1)
	require.Equal(t, int32(1), top.Brokers[0].Partitions[0].PartitionId)
	require.Equal(t, pb.Partition_LEADER, top.Brokers[0].Partitions[0].Role)
	require.Equal(t, pb.Partition_HEALTHY, top.Brokers[0].Partitions[0].Health)
}

func TestFaults(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	key := g.CreateJob(JobSpec{Type: "t"})

	g.InjectFault(Fault{Method: "CompleteJob", Code: codes.Unavailable, Times: 2})
	for i := 0; i < 2; i++ {
		_, err := c.NewCompleteJobCommand().JobKey(key).Send(ctx)
		requireCode(t, err, codes.Unavailable)
	}
	_, err := c.NewTopologyCommand().Send(ctx)
	require.NoError(t, err, "a fault only hits its method")
	_, err = c.NewCompleteJobCommand().JobKey(key).Send(ctx)
	require.NoError(t, err)
	var results []codes.Code
	for _, cmd := range g.Commands() {
		results = append(results, cmd.Result)
	}
	require.Equal(t, []codes.Code{codes.Unavailable, codes.Unavailable, codes.OK}, results)

	g.InjectFault(Fault{Code: codes.ResourceExhausted})
	for i := 0; i < 3; i++ {
		_, err = c.NewTopologyCommand().Send(ctx)
		requireCode(t, err, codes.ResourceExhausted)
	}
	g.ClearFaults()
	_, err = c.NewTopologyCommand().Send(ctx)
	require.NoError(t, err)
}

func TestWorkerRidesOutActivationFaults(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	g.InjectFault(Fault{Method: "ActivateJobs", Code: codes.ResourceExhausted, Times: 2})
	key := g.CreateJob(JobSpec{Type: "t"})
	w := c.NewJobWorker().JobType("t").Handler(func(jc worker.JobClient, job entities.Job) {
		_, _ = jc.NewCompleteJobCommand().JobKey(job.Key).Send(context.Background())
	}).PollInterval(50 * time.Millisecond).BackoffSupplier(safeBackoff()).Open()
	defer closeWorker(t, w, c)
	require.NoError(t, g.AwaitJobs(waitCtx(t), []int64{key}, stateIs(StateCompleted)))
	require.GreaterOrEqual(t, g.ActivationRequests(), 3)
}

func TestStopAndRestart(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g, fastReconnect())
	ctx := waitCtx(t)
	addr := g.Addr()

	held := g.CreateJob(JobSpec{Type: "held"})
	jobs := activate(t, c, "held", "w", 1, time.Minute)
	require.Len(t, jobs, 1)
	heldBefore, _ := g.Job(held)

	w := c.NewJobWorker().JobType("t").Handler(func(jc worker.JobClient, job entities.Job) {
		_, _ = jc.NewCompleteJobCommand().JobKey(job.Key).Send(context.Background())
	}).RequestTimeout(5 * time.Second).BackoffSupplier(safeBackoff()).Open()
	defer closeWorker(t, w, c)
	k1 := g.CreateJob(JobSpec{Type: "t"})
	require.NoError(t, g.AwaitJobs(ctx, []int64{k1}, stateIs(StateCompleted)))

	g.Stop()
	_, err := c.NewTopologyCommand().Send(ctx)
	require.Error(t, err, "a stopped gateway does not answer")
	k2 := g.CreateJob(JobSpec{Type: "t"})
	// Downtime long enough for the client's reconnect backoff to grow.
	downtime := 1500 * time.Millisecond
	if os.Getenv("O365_LONG") == "1" {
		downtime = 15 * time.Second
	}
	time.Sleep(downtime)
	restartAt := time.Now()
	j2, _ := g.Job(k2)
	require.Equal(t, StateActivatable, j2.State)

	require.NoError(t, g.Restart())
	require.Equal(t, addr, g.Addr())
	k3 := g.CreateJob(JobSpec{Type: "t"})
	require.NoError(t, g.AwaitJobs(ctx, []int64{k2, k3}, stateIs(StateCompleted)))
	t.Logf("jobs completed %v after restart (downtime %v)", time.Since(restartAt).Round(time.Millisecond), downtime)

	heldAfter, _ := g.Job(held)
	require.Equal(t, StateActivated, heldAfter.State)
	require.Equal(t, heldBefore.Deadline, heldAfter.Deadline)
	_, err = c.NewCompleteJobCommand().JobKey(held).Send(ctx)
	require.NoError(t, err)

	require.NoError(t, g.Restart(), "restart while serving is a no-op")
}

func TestStreamingDeliversJobs(t *testing.T) {
	g := startGateway(t)
	c := newClient(t, g)
	ctx := waitCtx(t)
	var mu sync.Mutex
	seen := map[int64]string{}
	w := c.NewJobWorker().JobType("t").Handler(func(jc worker.JobClient, job entities.Job) {
		mu.Lock()
		seen[job.Key] = job.Worker
		mu.Unlock()
		_, _ = jc.NewCompleteJobCommand().JobKey(job.Key).Send(context.Background())
	}).Name("streamer").StreamEnabled(true).BackoffSupplier(safeBackoff()).Open()
	defer closeWorker(t, w, c)
	require.NoError(t, g.Await(ctx, func(g *Gateway) bool { return g.OpenStreams("t") == 1 }))

	var keys []int64
	for i := 0; i < 20; i++ {
		keys = append(keys, g.CreateJob(JobSpec{Type: "t", Variables: map[string]any{"i": i}}))
	}
	require.NoError(t, g.AwaitJobs(ctx, keys, stateIs(StateCompleted)))
	for _, k := range keys {
		j, _ := g.Job(k)
		require.True(t, j.Streamed, "job %d was not pushed to the open stream", k)
		require.Equal(t, 1, j.Activations)
	}
	mu.Lock()
	require.Len(t, seen, len(keys))
	require.Equal(t, "streamer", seen[keys[0]])
	mu.Unlock()
}

func TestClosedStreamHandsJobsToPollers(t *testing.T) {
	g := startGateway(t)
	raw := rawClient(t, g)
	c := newClient(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := raw.StreamActivatedJobs(ctx, &pb.StreamActivatedJobsRequest{Type: "t", Worker: "s", Timeout: 60000})
	require.NoError(t, err)
	require.NoError(t, g.Await(waitCtx(t), func(g *Gateway) bool { return g.OpenStreams("t") == 1 }))
	k1 := g.CreateJob(JobSpec{Type: "t"})
	got, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, k1, got.Key)
	require.Equal(t, "s", got.Worker)
	cancel()
	require.NoError(t, g.Await(waitCtx(t), func(g *Gateway) bool { return g.OpenStreams("") == 0 }))

	k2 := g.CreateJob(JobSpec{Type: "t"})
	jobs := activate(t, c, "t", "w", 5, time.Minute)
	require.Len(t, jobs, 1)
	require.Equal(t, k2, jobs[0].Key)
}

func TestAwaitHonoursContext(t *testing.T) {
	g := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	key := g.CreateJob(JobSpec{Type: "t"})
	err := g.AwaitJobs(ctx, []int64{key}, stateIs(StateCompleted))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "activatable")
}

func TestCloseEndsAllGoroutines(t *testing.T) {
	g, err := Start()
	require.NoError(t, err)
	c := newClient(t, g)
	key := g.CreateJob(JobSpec{Type: "t"})
	w := c.NewJobWorker().JobType("t").Handler(func(jc worker.JobClient, job entities.Job) {
		_, _ = jc.NewCompleteJobCommand().JobKey(job.Key).Send(context.Background())
	}).StreamEnabled(true).BackoffSupplier(safeBackoff()).Open()
	require.NoError(t, g.AwaitJobs(waitCtx(t), []int64{key}, stateIs(StateCompleted)))
	require.NoError(t, g.Await(waitCtx(t), func(g *Gateway) bool { return g.WaitingPolls("t") == 1 }))
	g.Close()
	g.Close()
	closeWorker(t, w, c)
	require.Error(t, g.Restart())

	require.NoError(t, awaitNoGoroutines(waitCtx(t), "zeebesim.(*Gateway)", "zeebesim.(*rpcServer)", "grpc.(*Server)"))
}
