// Package zeebesim is an in-process Zeebe gateway and job engine speaking the
// real gRPC gateway protocol, so the unchanged Zeebe Go client (zbc, workers)
// can run against it in tests and in an embedded sandbox.
//
// It models one broker with one partition and the job life cycle of Zeebe
// 8.5: activatable → activated (deadline) → completed / failed (backoff,
// incident) / error thrown. Rejections carry the gRPC codes and messages the
// real gateway maps broker rejections to. Processes, BPMN and messages are not
// modelled: jobs are created directly with CreateJob.
package zeebesim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"google.golang.org/grpc/credentials"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
)

// Version is the gateway and broker version reported by Topology.
const Version = "8.5.25"

// DefaultTenantID is the tenant every job belongs to when multi-tenancy is
// off, as in a real cluster.
const DefaultTenantID = "<default>"

const (
	defaultMaxMessageSize = 4 << 20
	// The gateway's zeebe.gateway.longPolling.timeout default, used when a
	// request asks for RequestTimeout 0.
	defaultLongPollingTimeout = 10 * time.Second
	// Partition 1's key space: real keys carry the partition id in the top
	// bits, which catches code that truncates keys to 32 bits.
	partitionKeyBase = int64(1) << 51
)

type options struct {
	maxMessageSize     int
	longPollingTimeout time.Duration
	tls                *tls.Config
}

// WithTLS serves gRPC over TLS with this configuration (certificates
// included), as a gateway behind a custom CA would.
func WithTLS(c *tls.Config) Option {
	return func(o *options) { o.tls = c }
}

// Option configures Start.
type Option func(*options)

// WithMaxMessageSize sets the gateway's maximum gRPC message size (default
// 4 MiB, the Zeebe default). Larger requests are answered RESOURCE_EXHAUSTED
// "gRPC message exceeds maximum size", and activation batches are cut to fit.
func WithMaxMessageSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxMessageSize = n
		}
	}
}

// WithLongPollingTimeout sets how long an ActivateJobs request with
// RequestTimeout 0 is held open (default 10 s, the gateway default).
func WithLongPollingTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.longPollingTimeout = d
		}
	}
}

// JobState is the life-cycle state of a job.
type JobState string

// Job states. StateFailed is a failed job with retries left that waits out its
// retry backoff; it becomes activatable afterwards.
const (
	StateActivatable JobState = "activatable"
	StateActivated   JobState = "activated"
	StateCompleted   JobState = "completed"
	StateFailed      JobState = "failed"
	StateErrorThrown JobState = "error_thrown"
	StateIncident    JobState = "incident"
)

// JobSpec describes a job to create. Zero keys are filled with generated
// ones, Retries 0 means 3 and an empty TenantID means DefaultTenantID.
type JobSpec struct {
	Type                 string
	Variables            map[string]any
	CustomHeaders        map[string]string
	Retries              int32
	ProcessInstanceKey   int64
	BpmnProcessID        string
	ElementID            string
	ProcessDefinitionKey int64
	TenantID             string
}

// Job is a snapshot of a job's state.
type Job struct {
	Key         int64
	Spec        JobSpec
	State       JobState
	Retries     int32
	Activations int
	Worker      string
	Deadline    time.Time
	// Completions counts accepted CompleteJob commands; it never exceeds 1
	// because a completed job no longer exists for the broker.
	Completions int
	// Variables holds the completion variables.
	Variables      map[string]any
	ErrorMessage   string
	ErrorCode      string
	ErrorVariables map[string]any
	RetryBackoff   time.Duration
	Incident       bool
	// Streamed tells that the current or last activation was a push to a job
	// stream rather than an answer to ActivateJobs.
	Streamed bool
}

// Ended reports whether the job is done for good: completed, a BPMN error
// thrown, or an incident raised.
func (j Job) Ended() bool {
	switch j.State {
	case StateCompleted, StateErrorThrown, StateIncident:
		return true
	}
	return false
}

// Command is one job command as received, with the gRPC code it was answered.
type Command struct {
	Method       string
	JobKey       int64
	Retries      int32
	Backoff      time.Duration
	ErrorMessage string
	ErrorCode    string
	Variables    string
	Result       codes.Code
	At           time.Time
}

// Poll is one ActivateJobs request as received.
type Poll struct {
	Type              string
	Worker            string
	MaxJobsToActivate int32
	Timeout           time.Duration
	// RequestTimeout is the long-polling time asked for: 0 means the
	// gateway default, negative means no long polling.
	RequestTimeout time.Duration
	FetchVariables []string
	At             time.Time
}

// Fault makes the gateway answer calls of Method ("" = any method) with Code
// instead of handling them, Times times (0 = until ClearFaults).
type Fault struct {
	Method string
	Code   codes.Code
	Times  int
}

// Gateway is a running simulated gateway. All methods are safe for
// concurrent use.
type Gateway struct {
	opts options
	addr string

	// cmdMu makes a job command's state change and its Commands() record
	// one step for observers: the interceptor holds it for writing around
	// both, Job/Jobs/Commands for reading.
	cmdMu sync.RWMutex

	srvMu     sync.Mutex
	server    *grpc.Server
	serveDone chan struct{}
	closed    bool

	mu                 sync.Mutex
	jobs               map[int64]*job
	activatable        map[string]*keyHeap
	pollSignal         map[string]chan struct{}
	streams            map[string][]*jobStream
	streamRR           map[string]int
	waitingPolls       map[string]int
	lastKey            int64
	timers             timerHeap
	commands           []Command
	faults             []*Fault
	activationRequests int
	polls              []Poll
	completedJobs      int
	changed            chan struct{}

	kick        chan struct{}
	done        chan struct{}
	sweeperDone chan struct{}
}

// Start listens on 127.0.0.1:0 and serves the gateway protocol.
func Start(opts ...Option) (*Gateway, error) {
	o := options{maxMessageSize: defaultMaxMessageSize, longPollingTimeout: defaultLongPollingTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("zeebesim: listen: %w", err)
	}
	g := &Gateway{
		opts:         o,
		addr:         lis.Addr().String(),
		jobs:         make(map[int64]*job),
		activatable:  make(map[string]*keyHeap),
		pollSignal:   make(map[string]chan struct{}),
		streams:      make(map[string][]*jobStream),
		streamRR:     make(map[string]int),
		waitingPolls: make(map[string]int),
		lastKey:      partitionKeyBase,
		changed:      make(chan struct{}),
		kick:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		sweeperDone:  make(chan struct{}),
	}
	go g.sweep()
	g.srvMu.Lock()
	g.serveLocked(lis)
	g.srvMu.Unlock()
	return g, nil
}

// Addr is the "127.0.0.1:port" address the gateway serves on.
func (g *Gateway) Addr() string { return g.addr }

func (g *Gateway) serveLocked(lis net.Listener) {
	// A server limit above the configured one lets the interceptor answer
	// oversized requests itself, with the gateway's wording, and record them;
	// only requests far beyond it are refused by grpc-go directly.
	recvLimit := max(4*g.opts.maxMessageSize, 64<<20)
	serverOpts := []grpc.ServerOption{}
	if g.opts.tls != nil {
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(g.opts.tls)))
	}
	srv := grpc.NewServer(append(serverOpts,
		grpc.MaxRecvMsgSize(recvLimit),
		grpc.UnaryInterceptor(g.unaryInterceptor),
		grpc.StreamInterceptor(g.streamInterceptor),
		// The real gateway accepts client keepalive pings every 30 s even
		// without calls in flight; grpc-go's default (5 min) would answer the
		// zbc client's 45 s pings with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 30 * time.Second, PermitWithoutStream: true}),
		grpc.WaitForHandlers(true),
	)...)
	pb.RegisterGatewayServer(srv, &rpcServer{g: g})
	done := make(chan struct{})
	g.server = srv
	g.serveDone = done
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
}

// Stop stops serving like a crashed gateway: connections are cut and calls in
// flight fail. Jobs, deadlines and the address are kept for Restart.
func (g *Gateway) Stop() {
	g.srvMu.Lock()
	defer g.srvMu.Unlock()
	g.stopLocked()
}

func (g *Gateway) stopLocked() {
	if g.server == nil {
		return
	}
	g.server.Stop()
	<-g.serveDone
	g.server = nil
	g.serveDone = nil
}

// Restart serves again on the same address after Stop. It is a no-op while
// serving.
func (g *Gateway) Restart() error {
	g.srvMu.Lock()
	defer g.srvMu.Unlock()
	if g.closed {
		return errors.New("zeebesim: gateway closed")
	}
	if g.server != nil {
		return nil
	}
	var lis net.Listener
	var err error
	// The port can stay busy for a moment after the old listener closed.
	for attempt := 0; attempt < 50; attempt++ {
		lis, err = net.Listen("tcp", g.addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("zeebesim: relisten on %s: %w", g.addr, err)
	}
	g.serveLocked(lis)
	return nil
}

// Close stops the gateway for good and ends all of its goroutines.
func (g *Gateway) Close() {
	g.srvMu.Lock()
	defer g.srvMu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	g.stopLocked()
	close(g.done)
	<-g.sweeperDone
}

// InjectFault adds a fault; faults are matched in the order they were added.
func (g *Gateway) InjectFault(f Fault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fc := f
	g.faults = append(g.faults, &fc)
}

// ClearFaults removes all faults.
func (g *Gateway) ClearFaults() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults = nil
}

func (g *Gateway) takeFault(method string) (codes.Code, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, f := range g.faults {
		if f.Method != "" && f.Method != method {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				g.faults = append(g.faults[:i:i], g.faults[i+1:]...)
			}
		}
		return f.Code, true
	}
	return codes.OK, false
}

// ActivationRequests counts ActivateJobs calls received, faulted ones included.
func (g *Gateway) ActivationRequests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.activationRequests
}

// Polls returns every ActivateJobs request that passed fault injection, in
// order of arrival.
func (g *Gateway) Polls() []Poll {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Poll(nil), g.polls...)
}

// Commands returns every job command received (CompleteJob, FailJob,
// ThrowError, UpdateJobRetries, UpdateJobTimeout), in order of answer.
func (g *Gateway) Commands() []Command {
	g.cmdMu.RLock()
	defer g.cmdMu.RUnlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Command(nil), g.commands...)
}

// Job returns a snapshot of the job with this key.
func (g *Gateway) Job(key int64) (Job, bool) {
	g.cmdMu.RLock()
	defer g.cmdMu.RUnlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.jobs[key]
	if !ok {
		return Job{}, false
	}
	return j.snapshot(), true
}

// Jobs returns snapshots of all jobs ever created, in key order.
func (g *Gateway) Jobs() []Job {
	g.cmdMu.RLock()
	defer g.cmdMu.RUnlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Job, 0, len(g.jobs))
	for _, j := range g.jobs {
		out = append(out, j.snapshot())
	}
	sortJobs(out)
	return out
}

// Await waits until cond holds or ctx ends. cond runs without the gateway's
// lock held, so it may call any Gateway method.
func (g *Gateway) Await(ctx context.Context, cond func(*Gateway) bool) error {
	// The periodic re-check covers conditions on time (deadlines) that no
	// state change announces.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		g.mu.Lock()
		ch := g.changed
		g.mu.Unlock()
		if cond(g) {
			return nil
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("zeebesim: condition not met: %w", ctx.Err())
		}
	}
}

// AwaitJobs waits until every job in keys exists and satisfies done.
func (g *Gateway) AwaitJobs(ctx context.Context, keys []int64, done func(Job) bool) error {
	var pending int64
	err := g.Await(ctx, func(g *Gateway) bool {
		for _, k := range keys {
			j, ok := g.Job(k)
			if !ok || !done(j) {
				pending = k
				return false
			}
		}
		return true
	})
	if err != nil {
		j, _ := g.Job(pending)
		return fmt.Errorf("%w (job %d in state %q)", err, pending, j.State)
	}
	return nil
}

// changedLocked wakes Await callers.
func (g *Gateway) changedLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}
