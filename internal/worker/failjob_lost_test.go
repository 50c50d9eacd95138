package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// A FailJob (retries left, backoff 0) that the gateway processed but whose
// answer was lost (DEADLINE_EXCEEDED) is not sent again: the job is
// activatable at once and re-activated (here by the same worker's poller),
// and a repeated FailJob would undo that activation while its handler runs,
// so the job would be activated a third time and run twice at once.
func TestLostFailJobAnswerIsNotResent(t *testing.T) {
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
			return status.Error(codes.DeadlineExceeded, "answer lost")
		}
		return err
	}
	c, err := zbc.NewClient(&zbc.ClientConfig{GatewayAddress: g.Addr(), UsePlaintextConnection: true,
		DialOpts: []grpc.DialOption{grpc.WithChainUnaryInterceptor(loseAnswer)}})
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
	cfg := testConfig()
	w := New(c, cfg, h, zaptest.NewLogger(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

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

// Only a FailJob that leaves retries is held back after a lost answer: one
// that raises an incident cannot make the job activatable, so it is safe to
// repeat, and errors that say the command never got through stay retried.
func TestFailRetryable(t *testing.T) {
	lost := status.Error(codes.DeadlineExceeded, "lost")
	down := status.Error(codes.Unavailable, "down")
	require.True(t, failRetryable(0)(lost))
	require.False(t, failRetryable(2)(lost))
	require.True(t, failRetryable(2)(down))
	require.False(t, failRetryable(0)(status.Error(codes.NotFound, "gone")))
}
