package zeebesim

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/entities"
	"github.com/camunda/zeebe/clients/go/v8/pkg/pb"
	"github.com/camunda/zeebe/clients/go/v8/pkg/worker"
	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Generous bound for waits on a shared, noisy machine; tests end as soon as
// the condition holds.
const waitLimit = 30 * time.Second

func startGateway(t testing.TB, opts ...Option) *Gateway {
	t.Helper()
	g, err := Start(opts...)
	require.NoError(t, err)
	t.Cleanup(g.Close)
	return g
}

// fastReconnect is what the connector is told to use: gRPC's default
// reconnect backoff grows to 120 s.
func fastReconnect() grpc.DialOption {
	return grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, MaxDelay: time.Second},
		MinConnectTimeout: time.Second,
	})
}

func newClient(t testing.TB, g *Gateway, dialOpts ...grpc.DialOption) zbc.Client {
	t.Helper()
	c, err := zbc.NewClient(&zbc.ClientConfig{
		GatewayAddress:         g.Addr(),
		UsePlaintextConnection: true,
		DialOpts:               dialOpts,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawClient speaks the protocol directly, for requests zbc would refuse to
// build.
func rawClient(t testing.TB, g *Gateway) pb.GatewayClient {
	t.Helper()
	conn, err := grpc.NewClient(g.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewGatewayClient(conn)
}

func waitCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// closeWorker closes a job worker without waiting out its long poll: the
// worker's Close can block for a whole poll, so it runs beside the client's
// Close, which cuts the poll.
func closeWorker(t testing.TB, w worker.JobWorker, c zbc.Client) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		w.Close()
		close(done)
	}()
	_ = c.Close()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("job worker did not close")
	}
}

func activate(t testing.TB, c zbc.Client, typ, workerName string, max int32, timeout time.Duration, fetch ...string) []entities.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := c.NewActivateJobsCommand().JobType(typ).MaxJobsToActivate(max).Timeout(timeout).WorkerName(workerName)
	if len(fetch) > 0 {
		cmd = cmd.FetchVariables(fetch...)
	}
	jobs, err := cmd.Send(ctx)
	require.NoError(t, err)
	return jobs
}

// activateNow asks without long polling: zbc sends RequestTimeout -1 for a
// context without deadline.
func activateNow(t testing.TB, c zbc.Client, typ, workerName string, max int32, timeout time.Duration) []entities.Job {
	t.Helper()
	jobs, err := c.NewActivateJobsCommand().JobType(typ).MaxJobsToActivate(max).Timeout(timeout).WorkerName(workerName).Send(context.Background())
	require.NoError(t, err)
	return jobs
}

func requireCode(t testing.TB, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, status.Code(err), "error: %v", err)
}

func decodeJSON(t testing.TB, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(doc), &m))
	return m
}

func stateIs(s JobState) func(Job) bool { return func(j Job) bool { return j.State == s } }

// awaitNoGoroutines waits until no goroutine has a frame matching any of
// frames in its stack.
func awaitNoGoroutines(ctx context.Context, frames ...string) error {
	var last string
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		last = ""
		for _, stack := range strings.Split(string(buf), "\n\n") {
			for _, f := range frames {
				if strings.Contains(stack, f) {
					last = stack
				}
			}
		}
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("goroutine left behind:\n%s", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lockedBackoff serialises a backoff supplier: zbc v8.5.25 shares one
// ExponentialBackoff (and its math/rand source) between all workers of a
// process, and between a worker's poller and streamer, which races as soon as
// two of them back off at once.
type lockedBackoff struct {
	mu sync.Mutex
	b  worker.BackoffSupplier
}

func (l *lockedBackoff) SupplyRetryDelay(d time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.SupplyRetryDelay(d)
}

func safeBackoff() worker.BackoffSupplier {
	return &lockedBackoff{b: worker.NewExponentialBackoffBuilder().Build()}
}
