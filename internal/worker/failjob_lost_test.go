package worker

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// A FailJob (retries left, backoff 0) that the gateway processed but whose
// answer was lost is not sent again: the job is activatable at once and
// re-activated (here by the same worker's poller), and a repeated FailJob
// would undo that activation while its handler runs, so the job would be
// activated a third time and run twice at once. The answer is lost as
// DEADLINE_EXCEEDED (too slow) or as UNAVAILABLE (the gateway died after
// forwarding the command).
func TestLostFailJobAnswerIsNotResent(t *testing.T) {
	for _, code := range []codes.Code{codes.DeadlineExceeded, codes.Unavailable} {
		t.Run(code.String(), func(t *testing.T) { testLostFailJobAnswer(t, code) })
	}
}

func testLostFailJobAnswer(t *testing.T, code codes.Code) {
	g, err := zeebesim.Start()
	require.NoError(t, err)
	t.Cleanup(g.Close)

	var key atomic.Int64
	var lost atomic.Bool
	loseAnswer := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && method == "/gateway_protocol.Gateway/FailJob" && lost.CompareAndSwap(false, true) {
			// The broker has processed it; wait until the job is
			// activated again, then lose the answer.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				if j, _ := g.Job(key.Load()); j.State == zeebesim.StateActivated {
					break
				}
				time.Sleep(time.Millisecond)
			}
			return status.Error(code, "answer lost")
		}
		return err
	}
	// markAttempt as NewClient installs it, outside the loss.
	c, err := zbc.NewClient(&zbc.ClientConfig{GatewayAddress: g.Addr(), UsePlaintextConnection: true,
		DialOpts: []grpc.DialOption{grpc.WithChainUnaryInterceptor(markAttempt, loseAnswer)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	var runs, running, most atomic.Int32
	var mu sync.Mutex
	h := func(ctx context.Context, j job.Job) job.Outcome {
		n := runs.Add(1)
		if n == 1 {
			return job.Outcome{Kind: job.Fail, Retries: j.Retries - 1, Backoff: 0, Message: "503: try again", Code: "503"}
		}
		cur := running.Add(1)
		mu.Lock()
		if cur > most.Load() {
			most.Store(cur)
		}
		mu.Unlock()
		time.Sleep(700 * time.Millisecond) // the second run's sendMail
		running.Add(-1)
		return job.Outcome{Kind: job.Complete}
	}
	start(t, c, testConfig(), h)

	key.Store(g.CreateJob(zeebesim.JobSpec{Type: jobType, Retries: 3}))
	await(t, g, []int64{key.Load()}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	time.Sleep(time.Second) // let any further run finish

	var failsAccepted int
	for _, cmd := range g.Commands() {
		if cmd.Method == "FailJob" && cmd.JobKey == key.Load() && cmd.Result == codes.OK {
			failsAccepted++
		}
	}
	j, _ := g.Job(key.Load())
	assert.Equal(t, 1, failsAccepted, "the processed FailJob was sent again")
	assert.Equal(t, 2, j.Activations, "activations")
	assert.Equal(t, int32(1), most.Load(), "the job ran twice at once")
}

// A FailJob that leaves retries is repeated only if it cannot have reached
// the gateway; other commands, and a FailJob that raises an incident, are
// repeated on any error that may pass.
func TestMayHaveActed(t *testing.T) {
	lost := status.Error(codes.DeadlineExceeded, "lost")
	down := status.Error(codes.Unavailable, "down")
	busy := status.Error(codes.ResourceExhausted, "back-pressure")
	streamed := &attemptMark{watched: true, peer: peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 26500}}}
	neverLeft := &attemptMark{watched: true}
	unwatched := &attemptMark{}

	require.True(t, streamed.mayHaveActed(lost))
	require.True(t, streamed.mayHaveActed(down), "a gateway that died after forwarding it")
	require.False(t, streamed.mayHaveActed(busy), "refused before processing")
	require.False(t, neverLeft.mayHaveActed(down))
	require.False(t, neverLeft.mayHaveActed(lost), "waited for a connection that never came")
	require.True(t, unwatched.mayHaveActed(down), "without the interceptor nothing is known")
	require.True(t, (*attemptMark)(nil).mayHaveActed(down))

	require.True(t, sendOnce(2))
	require.False(t, sendOnce(0), "an incident cannot make the job activatable")
}

// A FailJob that finds the gateway gone never reaches it, and is sent again
// until the gateway is back instead of leaving the job to its timeout. The
// gateway is stopped by the handler, so the command meets a connection that
// is down; the first attempt fails with UNAVAILABLE and no stream.
func TestFailJobThatNeverLeftIsSentAgain(t *testing.T) {
	g, err := zeebesim.Start()
	require.NoError(t, err)
	t.Cleanup(g.Close)

	var mu sync.Mutex
	var attempts []codes.Code
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if method == "/gateway_protocol.Gateway/FailJob" {
			mu.Lock()
			attempts = append(attempts, status.Code(err))
			mu.Unlock()
		}
		return err
	}
	c, err := zbc.NewClient(&zbc.ClientConfig{GatewayAddress: g.Addr(), UsePlaintextConnection: true,
		DialOpts: []grpc.DialOption{grpc.WithChainUnaryInterceptor(markAttempt, count)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	var stopped atomic.Bool
	h := func(ctx context.Context, j job.Job) job.Outcome {
		if stopped.CompareAndSwap(false, true) {
			g.Stop()
			// Long enough for gRPC to find the port closed: the command
			// then fails at once instead of waiting for a connection.
			time.Sleep(300 * time.Millisecond)
			go func() {
				time.Sleep(500 * time.Millisecond)
				assert.NoError(t, g.Restart())
			}()
		}
		return job.Outcome{Kind: job.Fail, Retries: j.Retries - 1, Message: "503: try again", Code: "503", Backoff: time.Hour}
	}
	start(t, c, testConfig(), h)

	key := g.CreateJob(zeebesim.JobSpec{Type: jobType, Retries: 3})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	require.NoError(t, g.AwaitJobs(ctx2, []int64{key}, func(j zeebesim.Job) bool { return j.Retries == 2 }),
		"the FailJob never got through (the job timeout is 5 minutes)")

	// The gateway has processed it; its answer may still be on the way.
	seen := func() []codes.Code {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(attempts)
	}
	require.Eventually(t, func() bool { a := seen(); return len(a) > 0 && a[len(a)-1] == codes.OK }, 5*time.Second, 10*time.Millisecond)
	a := seen()
	require.GreaterOrEqual(t, len(a), 2, "attempts %v", a)
	require.Equal(t, codes.Unavailable, a[0], "attempts %v", a)
	for _, c := range a[:len(a)-1] {
		require.Equal(t, codes.Unavailable, c, "attempts %v", a)
	}
}

// NewClient installs markAttempt: a FailJob that got through names its
// peer, and one sent while the gateway is down does not.
func TestNewClientTellsWhetherACommandLeft(t *testing.T) {
	g, c := gateway(t)
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType, Retries: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs, err := c.NewActivateJobsCommand().JobType(jobType).MaxJobsToActivate(1).Timeout(time.Minute).Send(ctx)
	require.NoError(t, err)
	require.Len(t, jobs, 1)

	sent, m := withAttemptMark(ctx)
	_, err = c.NewFailJobCommand().JobKey(key).Retries(2).Send(sent)
	require.NoError(t, err)
	require.True(t, m.watched)
	require.NotNil(t, m.peer.Addr, "the command had a stream")

	g.Stop()
	var last error
	require.Eventually(t, func() bool {
		attempt, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		var m *attemptMark
		attempt, m = withAttemptMark(attempt)
		_, last = c.NewFailJobCommand().JobKey(key).Retries(1).Send(attempt)
		return status.Code(last) == codes.Unavailable && m.watched && m.peer.Addr == nil && !m.mayHaveActed(last)
	}, 5*time.Second, 50*time.Millisecond, "last error: %v", last)
}
