package zeebesim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// rpcServer carries the protocol methods, keeping them off Gateway's own API.
type rpcServer struct {
	pb.UnimplementedGatewayServer
	g *Gateway
}

func (g *Gateway) oversized(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	if n := proto.Size(m); n > g.opts.maxMessageSize {
		// grpc-java's wording, which is what the real gateway answers.
		return status.Errorf(codes.ResourceExhausted, "gRPC message exceeds maximum size %d: %d", g.opts.maxMessageSize, n)
	}
	return nil
}

func faultError(code codes.Code, method string) error {
	return status.Errorf(code, "zeebesim: injected %s fault on %s", code, method)
}

func (g *Gateway) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := path.Base(info.FullMethod)
	g.cmdMu.Lock()
	defer g.cmdMu.Unlock()
	var resp any
	err := g.oversized(req)
	if err == nil {
		if code, ok := g.takeFault(method); ok {
			err = faultError(code, method)
		} else {
			resp, err = handler(ctx, req)
		}
	}
	g.recordCommand(method, req, err)
	return resp, err
}

func (g *Gateway) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	method := path.Base(info.FullMethod)
	if method == "ActivateJobs" {
		g.mu.Lock()
		g.activationRequests++
		g.mu.Unlock()
	}
	if code, ok := g.takeFault(method); ok {
		return faultError(code, method)
	}
	return handler(srv, ss)
}

func (g *Gateway) recordCommand(method string, req any, err error) {
	c := Command{Method: method, Result: status.Code(err), At: time.Now()}
	switch r := req.(type) {
	case *pb.CompleteJobRequest:
		c.JobKey, c.Variables = r.JobKey, r.Variables
	case *pb.FailJobRequest:
		c.JobKey, c.Retries, c.ErrorMessage, c.Variables = r.JobKey, r.Retries, r.ErrorMessage, r.Variables
		c.Backoff = time.Duration(r.RetryBackOff) * time.Millisecond
	case *pb.ThrowErrorRequest:
		c.JobKey, c.ErrorCode, c.ErrorMessage, c.Variables = r.JobKey, r.ErrorCode, r.ErrorMessage, r.Variables
	case *pb.UpdateJobRetriesRequest:
		c.JobKey, c.Retries = r.JobKey, r.Retries
	case *pb.UpdateJobTimeoutRequest:
		c.JobKey = r.JobKey
	default:
		return
	}
	g.mu.Lock()
	g.commands = append(g.commands, c)
	g.changedLocked()
	g.mu.Unlock()
}

func activateRejection(reason string) error {
	return rejection(codes.InvalidArgument, "ACTIVATE", "INVALID_ARGUMENT", "Expected to activate job batch with "+reason)
}

// ActivateJobs activates what is available at once; if nothing is, it holds
// the call open (long polling) until jobs of the type become activatable or
// the request's RequestTimeout passes (0 = gateway default, < 0 = answer at
// once). The stream then ends, as with one partition.
func (s *rpcServer) ActivateJobs(req *pb.ActivateJobsRequest, srv pb.Gateway_ActivateJobsServer) error {
	s.g.mu.Lock()
	s.g.polls = append(s.g.polls, Poll{
		Type:              req.Type,
		Worker:            req.Worker,
		MaxJobsToActivate: req.MaxJobsToActivate,
		Timeout:           time.Duration(req.Timeout) * time.Millisecond,
		RequestTimeout:    time.Duration(req.RequestTimeout) * time.Millisecond,
		FetchVariables:    slices.Clone(req.FetchVariable),
		At:                time.Now(),
	})
	s.g.mu.Unlock()
	switch {
	case req.MaxJobsToActivate < 1:
		return activateRejection(fmt.Sprintf("max jobs to activate to be greater than zero, but it was '%d'", req.MaxJobsToActivate))
	case req.Timeout < 1:
		return activateRejection(fmt.Sprintf("timeout to be greater than zero, but it was '%d'", req.Timeout))
	case req.Type == "":
		return activateRejection("type to be present, but it was blank")
	case req.Worker == "":
		return activateRejection("worker to be present, but it was blank")
	}
	a := activation{
		worker:  req.Worker,
		timeout: time.Duration(req.Timeout) * time.Millisecond,
		fetch:   slices.Clone(req.FetchVariable),
		tenants: slices.Clone(req.TenantIds),
	}
	ctx := srv.Context()
	var expired <-chan time.Time
	if req.RequestTimeout >= 0 {
		d := time.Duration(req.RequestTimeout) * time.Millisecond
		if d == 0 {
			d = s.g.opts.longPollingTimeout
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	for {
		s.g.mu.Lock()
		jobs := s.g.activateForPollLocked(req.Type, int(req.MaxJobsToActivate), a)
		var wake <-chan struct{}
		if len(jobs) == 0 {
			wake = s.g.pollSignalLocked(req.Type)
		}
		s.g.mu.Unlock()
		if len(jobs) > 0 {
			if err := srv.Send(&pb.ActivateJobsResponse{Jobs: jobs}); err != nil {
				s.g.yield(jobs)
				return err
			}
			return nil
		}
		if expired == nil {
			return nil
		}
		if err := s.g.waitPoll(req.Type, wake, expired, ctx.Done()); err != nil {
			if err == errPollExpired {
				return nil
			}
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

var (
	errPollExpired  = errors.New("long poll expired")
	errPollCanceled = errors.New("long poll canceled")
)

func (g *Gateway) waitPoll(typ string, wake <-chan struct{}, expired <-chan time.Time, canceled <-chan struct{}) error {
	g.mu.Lock()
	g.waitingPolls[typ]++
	g.changedLocked()
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if g.waitingPolls[typ]--; g.waitingPolls[typ] == 0 {
			delete(g.waitingPolls, typ)
		}
		g.changedLocked()
		g.mu.Unlock()
	}()
	select {
	case <-wake:
		return nil
	case <-expired:
		return errPollExpired
	case <-canceled:
		return errPollCanceled
	}
}

// WaitingPolls counts ActivateJobs calls of a type ("" = all types) that are
// held open waiting for jobs.
func (g *Gateway) WaitingPolls(jobType string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if jobType != "" {
		return g.waitingPolls[jobType]
	}
	n := 0
	for _, c := range g.waitingPolls {
		n += c
	}
	return n
}

// yield hands back jobs that were activated but could not be delivered, as
// the gateway does, instead of letting them wait for their timeout.
func (g *Gateway) yield(jobs []*pb.ActivatedJob) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, aj := range jobs {
		g.yieldLocked(aj)
	}
}

func (g *Gateway) yieldLocked(aj *pb.ActivatedJob) {
	j, ok := g.jobs[aj.Key]
	if !ok || j.pub.State != StateActivated || j.pub.Deadline.UnixMilli() != aj.Deadline || j.pub.Worker != aj.Worker {
		return
	}
	g.makeActivatableLocked(j)
}

type jobStream struct {
	typ    string
	a      activation
	queue  []*pb.ActivatedJob
	signal chan struct{}
}

// pushToStreamLocked activates j for one open stream of its type, round
// robin, and queues it for sending.
func (g *Gateway) pushToStreamLocked(j *job) bool {
	ss := g.streams[j.pub.Spec.Type]
	n := len(ss)
	if n == 0 {
		return false
	}
	start := g.streamRR[j.pub.Spec.Type]
	for i := 0; i < n; i++ {
		s := ss[(start+i)%n]
		if !tenantAllowed(j.pub.Spec.TenantID, s.a.tenants) {
			continue
		}
		g.streamRR[j.pub.Spec.Type] = (start + i + 1) % n
		aj, ok := g.tryActivateLocked(j, s.a, g.opts.maxMessageSize, true)
		if !ok {
			// Too large even alone: it raised an incident.
			return true
		}
		j.pub.Streamed = true
		s.queue = append(s.queue, aj)
		select {
		case s.signal <- struct{}{}:
		default:
		}
		return true
	}
	return false
}

// StreamActivatedJobs keeps the call open and pushes each job of the type
// that becomes activatable while the stream is open. Jobs that were already
// activatable when it opened are left to pollers, as in Zeebe 8.5.
func (s *rpcServer) StreamActivatedJobs(req *pb.StreamActivatedJobsRequest, srv pb.Gateway_StreamActivatedJobsServer) error {
	switch {
	case req.Type == "":
		return status.Error(codes.InvalidArgument, "Expected to stream activated jobs with a non-blank type, but it was blank")
	case req.Timeout < 1:
		return status.Errorf(codes.InvalidArgument, "Expected to stream activated jobs with a timeout greater than zero, but it was '%d'", req.Timeout)
	}
	js := &jobStream{
		typ: req.Type,
		a: activation{
			worker:  req.Worker,
			timeout: time.Duration(req.Timeout) * time.Millisecond,
			fetch:   slices.Clone(req.FetchVariable),
			tenants: slices.Clone(req.TenantIds),
		},
		signal: make(chan struct{}, 1),
	}
	s.g.mu.Lock()
	s.g.streams[js.typ] = append(s.g.streams[js.typ], js)
	s.g.changedLocked()
	s.g.mu.Unlock()
	defer s.g.removeStream(js)

	ctx := srv.Context()
	for {
		s.g.mu.Lock()
		var next *pb.ActivatedJob
		if len(js.queue) > 0 {
			next = js.queue[0]
			js.queue[0] = nil
			js.queue = js.queue[1:]
		}
		s.g.mu.Unlock()
		if next == nil {
			select {
			case <-js.signal:
				continue
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		if err := srv.Send(next); err != nil {
			s.g.yield([]*pb.ActivatedJob{next})
			return err
		}
	}
}

func (g *Gateway) removeStream(s *jobStream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ss := g.streams[s.typ]
	if i := slices.Index(ss, s); i >= 0 {
		ss = slices.Delete(ss, i, i+1)
	}
	if len(ss) == 0 {
		delete(g.streams, s.typ)
		delete(g.streamRR, s.typ)
	} else {
		g.streams[s.typ] = ss
	}
	// Removed first, so yielded jobs go to other streams or pollers.
	for _, aj := range s.queue {
		g.yieldLocked(aj)
	}
	s.queue = nil
	g.changedLocked()
}

// OpenStreams counts open job streams of a type ("" = all types).
func (g *Gateway) OpenStreams(jobType string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if jobType != "" {
		return len(g.streams[jobType])
	}
	n := 0
	for _, ss := range g.streams {
		n += len(ss)
	}
	return n
}

// CompleteJob completes an activatable or activated job (the broker accepts
// both); completed or unknown jobs are NOT_FOUND, failed ones
// FAILED_PRECONDITION.
func (s *rpcServer) CompleteJob(_ context.Context, req *pb.CompleteJobRequest) (*pb.CompleteJobResponse, error) {
	if err := s.g.completeJob(req.JobKey, req.Variables); err != nil {
		return nil, err
	}
	return &pb.CompleteJobResponse{}, nil
}

// FailJob fails a job: retries > 0 make it activatable again after the
// backoff, retries <= 0 raise an incident.
func (s *rpcServer) FailJob(_ context.Context, req *pb.FailJobRequest) (*pb.FailJobResponse, error) {
	backoff := time.Duration(req.RetryBackOff) * time.Millisecond
	if err := s.g.failJob(req.JobKey, req.Retries, backoff, req.ErrorMessage, req.Variables); err != nil {
		return nil, err
	}
	return &pb.FailJobResponse{}, nil
}

// ThrowError records a BPMN error for the job. The process is not modelled;
// the job is taken to be caught by a boundary event, so afterwards it no
// longer exists (NOT_FOUND), as in Zeebe when the error is caught.
func (s *rpcServer) ThrowError(_ context.Context, req *pb.ThrowErrorRequest) (*pb.ThrowErrorResponse, error) {
	if err := s.g.throwError(req.JobKey, req.ErrorCode, req.ErrorMessage, req.Variables); err != nil {
		return nil, err
	}
	return &pb.ThrowErrorResponse{}, nil
}

// UpdateJobRetries sets a job's retries.
func (s *rpcServer) UpdateJobRetries(_ context.Context, req *pb.UpdateJobRetriesRequest) (*pb.UpdateJobRetriesResponse, error) {
	if err := s.g.updateJobRetries(req.JobKey, req.Retries); err != nil {
		return nil, err
	}
	return &pb.UpdateJobRetriesResponse{}, nil
}

// UpdateJobTimeout moves an activated job's deadline to now + timeout.
func (s *rpcServer) UpdateJobTimeout(_ context.Context, req *pb.UpdateJobTimeoutRequest) (*pb.UpdateJobTimeoutResponse, error) {
	if err := s.g.updateJobTimeout(req.JobKey, time.Duration(req.Timeout)*time.Millisecond); err != nil {
		return nil, err
	}
	return &pb.UpdateJobTimeoutResponse{}, nil
}

// Topology describes a one-broker, one-partition cluster.
func (s *rpcServer) Topology(context.Context, *pb.TopologyRequest) (*pb.TopologyResponse, error) {
	host, portStr, _ := net.SplitHostPort(s.g.addr)
	port, _ := strconv.Atoi(portStr)
	return &pb.TopologyResponse{
		Brokers: []*pb.BrokerInfo{{
			NodeId: 0,
			Host:   host,
			Port:   int32(port),
			Partitions: []*pb.Partition{{
				PartitionId: 1,
				Role:        pb.Partition_LEADER,
				Health:      pb.Partition_HEALTHY,
			}},
			Version: Version,
		}},
		ClusterSize:       1,
		PartitionsCount:   1,
		ReplicationFactor: 1,
		GatewayVersion:    Version,
	}, nil
}
