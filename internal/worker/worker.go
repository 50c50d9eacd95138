// Package worker takes jobs from the Zeebe gateway and sends their commands
// back. It activates jobs itself with the client's ActivateJobs (and
// optionally StreamJobs) commands instead of the client's JobWorker, because
// JobWorker drops buffered jobs on Close (they would come back only after
// the job timeout) and can block Close for a whole long-poll; see
// zeebe-client-notes.md.
package worker

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/entities"
	"github.com/camunda/zeebe/clients/go/v8/pkg/zbc"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/metrics"
)

// FetchVariables are the only variables a job brings (contract section 1).
var FetchVariables = job.Variables

// MaxFailMessage is the longest fail message, as in Camunda's runtime.
const MaxFailMessage = 6000

// Handler runs one job and decides its command. It must not panic; the
// worker recovers anyway and fails the job.
type Handler func(ctx context.Context, j job.Job) job.Outcome

// Config is the worker part of the operator configuration.
type Config struct {
	JobType        string
	WorkerName     string
	MaxJobsActive  int
	Concurrency    int
	JobTimeout     time.Duration
	PollInterval   time.Duration
	RequestTimeout time.Duration
	StreamEnabled  bool
	ShutdownGrace  time.Duration
}

// Worker is one subscription to a job type.
type Worker struct {
	client  zbc.Client
	cfg     Config
	handle  Handler
	log     *zap.Logger
	metrics *metrics.Metrics

	queue    chan entities.Job
	active   atomic.Int64 // activated and not yet finished: queued + running
	freed    chan struct{}
	stopping atomic.Bool

	// Handler goroutines start as jobs arrive, up to Concurrency, and leave
	// after handlerIdle without work, so that a worker whose burst is over
	// does not keep a thousand grown stacks. deficit is the jobs queued and
	// not yet taken minus the handlers waiting for one: one counter, so that
	// each decision to start a handler reads one consistent value.
	handlerCtx  context.Context
	handlerIdle time.Duration // handlerIdleDefault; shorter in tests
	senderIdle  time.Duration // senderIdleDefault
	handlers    sync.WaitGroup
	live        atomic.Int32
	deficit     atomic.Int32

	// late holds jobs that arrived after shutdown began while the queue was
	// full; Run hands them back once the sources have ended.
	lateMu sync.Mutex
	late   []entities.Job

	// Job commands go out from sender goroutines that stay for more work
	// (see dispatch).
	sends       chan *pending
	senders     sync.WaitGroup
	sendersStop chan struct{}
}

func New(client zbc.Client, cfg Config, h Handler, log *zap.Logger, m *metrics.Metrics) *Worker {
	if cfg.MaxJobsActive < 1 {
		cfg.MaxJobsActive = 32
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 5 * time.Minute
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Worker{
		client:  client,
		cfg:     cfg,
		handle:  h,
		log:     log,
		metrics: m,
		// The poller never asks for more than MaxJobsActive − active, so
		// pushes into the queue never block; streamed jobs may, and that
		// is their back-pressure.
		queue:       make(chan entities.Job, cfg.MaxJobsActive),
		freed:       make(chan struct{}, 1),
		handlerIdle: handlerIdleDefault,
		senderIdle:  senderIdleDefault,
		sends:       make(chan *pending),
		sendersStop: make(chan struct{}),
	}
}

// Run works until ctx is canceled, then shuts down: it stops activating,
// hands queued jobs back to the gateway at once, lets running handlers
// finish within the grace period and returns.
func (w *Worker) Run(ctx context.Context) error {
	// A long-poll cut while the gateway is answering it loses the jobs in
	// that answer until their timeout, so shutdown does not cut it at once:
	// polling stops (ctx), and a poll still in flight is cut only when it
	// has not returned after pollCutDelay, i.e. when it is idle-waiting.
	cutCtx, cutPoll := context.WithCancel(context.Background())
	defer cutPoll()
	handlerCtx, abortHandlers := context.WithCancel(context.Background())
	defer abortHandlers()
	w.handlerCtx = handlerCtx

	var sources sync.WaitGroup
	sources.Add(1)
	go func() { defer sources.Done(); w.poll(ctx.Done(), cutCtx) }()
	if w.cfg.StreamEnabled {
		sources.Add(1)
		go func() { defer sources.Done(); w.stream(ctx) }()
	}

	<-ctx.Done()
	// The grace period counts from the signal: it is what an orchestrator
	// allows before it kills the process.
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	defer grace.Stop()
	w.stopping.Store(true)
	w.log.Info("shutting down: activation stopped", zap.Int64("jobsActive", w.active.Load()))
	sourcesDone := make(chan struct{})
	go func() { sources.Wait(); close(sourcesDone) }()
	select {
	case <-sourcesDone:
	case <-time.After(pollCutDelay):
		cutPoll()
		<-sourcesDone
	}

	// Jobs that no handler has started go back now instead of after their
	// timeout. Workers that pick one up concurrently hand it back too. Late
	// jobs go back only now: with the stream still open, the gateway would
	// push a handed-back job straight into it again.
	var handBacks sync.WaitGroup
	w.lateMu.Lock()
	late := w.late
	w.late = nil
	w.lateMu.Unlock()
	for _, j := range late {
		handBacks.Add(1)
		go func() { defer handBacks.Done(); w.handBack(j); w.release() }()
	}
drain:
	for {
		select {
		case j := <-w.queue:
			w.deficit.Add(-1)
			handBacks.Add(1)
			go func() { defer handBacks.Done(); w.handBack(j); w.release() }()
		default:
			break drain
		}
	}
	close(w.queue)

	done := make(chan struct{})
	go func() {
		w.handlers.Wait()
		// No dispatch can start now: idle senders may leave.
		close(w.sendersStop)
		handBacks.Wait()
		w.senders.Wait()
		close(done)
	}()
	select {
	case <-done:
		w.log.Info("shutdown complete")
		return nil
	case <-grace.C:
	}
	w.log.Warn("shutdown grace period over: aborting running jobs", zap.Duration("grace", w.cfg.ShutdownGrace))
	abortHandlers()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		w.log.Error("jobs still running after abort; exiting anyway, the gateway re-activates them after their timeout")
	}
	return nil
}

// senderIdleDefault is how long a sender goroutine waits for the next
// command before it exits; like handlers, senders of a burst are gone before
// the GC tuner hands free memory back.
const senderIdleDefault = time.Second

// dispatch hands a job's command to an idle sender, or starts one. Senders
// outlive a command because a fresh goroutine per job pays for growing its
// stack through the gRPC call every time; their number still follows the
// load, at most one per active job.
func (w *Worker) dispatch(p *pending) {
	select {
	case w.sends <- p:
	default:
		w.senders.Add(1)
		go w.sender(p)
	}
}

func (w *Worker) sender(p *pending) {
	defer w.senders.Done()
	idle := time.NewTimer(w.senderIdle)
	defer idle.Stop()
	for {
		p.send()
		p = nil // the job's memory is not kept while idle
		w.release()
		idle.Reset(w.senderIdle)
		select {
		case p = <-w.sends:
		case <-idle.C:
			return
		case <-w.sendersStop:
			return
		}
	}
}

func (w *Worker) release() {
	// Only a release that leaves room for a poll wakes the poller: waking
	// it after every job cost one goroutine wake-up per job for nothing.
	// The wake-up cannot be lost: freed holds one signal, and every release
	// from the crossing on sends it.
	if int64(w.cfg.MaxJobsActive)-w.active.Add(-1) < w.pollThreshold() {
		return
	}
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

// pollThreshold is how many free places make a poll worth it: 30 % of
// MaxJobsActive (the client's JobWorker uses the same share, counted on the
// jobs it has left).
func (w *Worker) pollThreshold() int64 {
	return max(int64(float64(w.cfg.MaxJobsActive)*0.3+0.5), 1)
}

// pollCutDelay bounds how long shutdown waits for a poll in flight.
const pollCutDelay = time.Second

// poll activates jobs whenever enough capacity is free, like the client's
// JobWorker (threshold 30 %), but sized against running handlers too. It
// starts no poll once stop is closed; cut aborts the one in flight.
func (w *Worker) poll(stop <-chan struct{}, cut context.Context) {
	threshold := w.pollThreshold()
	errDelay := w.cfg.PollInterval
	for !closed(stop) {
		want := int64(w.cfg.MaxJobsActive) - w.active.Load()
		if want < threshold {
			select {
			case <-w.freed:
			case <-stop:
			}
			continue
		}
		jobs, err := w.activate(cut, int32(want))
		for _, j := range jobs {
			w.enqueue(stop, j)
		}
		switch {
		case closed(stop):
			// Jobs of the last poll are in the queue and will be handed back.
			return
		case err != nil:
			if status.Code(err) != codes.ResourceExhausted {
				w.log.Warn("activating jobs failed", zap.Error(err), zap.Duration("retryIn", errDelay))
			}
			sleep(stop, errDelay)
			errDelay = min(errDelay*2, time.Second)
		case len(jobs) == 0:
			errDelay = w.cfg.PollInterval
			sleep(stop, w.cfg.PollInterval)
		default:
			errDelay = w.cfg.PollInterval
		}
	}
}

// enqueue queues an activated job for the handlers. Once stop is closed it
// no longer waits for room: with streaming, the queue can be full of jobs
// while every handler is busy, and waiting would hold shutdown (and its
// grace period) until a handler finished.
func (w *Worker) enqueue(stop <-chan struct{}, j entities.Job) {
	w.active.Add(1)
	select {
	case w.queue <- j:
		w.queued()
	case <-stop:
		w.lateMu.Lock()
		w.late = append(w.late, j)
		w.lateMu.Unlock()
	}
}

// handlerIdleDefault is how long a handler waits for a job before it
// leaves: short enough that the memory of a burst is gone before the GC
// tuner hands free memory back (2 s of quiet), far longer than the gap
// between jobs under any load.
const handlerIdleDefault = time.Second

// queued counts a job just put into the queue and starts a handler when
// more jobs wait than handlers do, so that a burst that meets one idle
// handler still spreads over Concurrency of them.
func (w *Worker) queued() {
	if w.deficit.Add(1) > 0 {
		w.startHandler()
	}
}

// startHandler starts a handler unless Concurrency are running.
func (w *Worker) startHandler() {
	for {
		n := w.live.Load()
		if int(n) >= w.cfg.Concurrency {
			return
		}
		if w.live.CompareAndSwap(n, n+1) {
			w.handlers.Add(1)
			go w.handler()
			return
		}
	}
}

// handler runs queued jobs until the queue is closed or no job came for
// w.handlerIdle. Handlers free their slot as soon as the outcome is known;
// the job command goes out from a sender goroutine (at most MaxJobsActive
// of them, since the job stays counted as active until the gateway has
// answered). A CompleteJob round trip under load takes milliseconds that
// would otherwise idle a handler slot.
func (w *Worker) handler() {
	defer w.handlers.Done()
	timer := time.NewTimer(w.handlerIdle)
	defer timer.Stop()
	for {
		w.deficit.Add(-1) // waiting; taking a job leaves deficit as it was
		select {
		case j, ok := <-w.queue:
			if !ok {
				w.deficit.Add(1)
				w.live.Add(-1)
				return
			}
			if w.stopping.Load() {
				w.handBack(j)
				w.release()
			} else {
				w.dispatch(w.run(w.handlerCtx, j))
			}
			timer.Reset(w.handlerIdle)
		case <-timer.C:
			w.leave()
			return
		}
	}
}

// leave is an idle handler's exit. A job queued while it still counted as
// waiting started no handler of its own, so one starts if jobs now
// outnumber the handlers that wait.
func (w *Worker) leave() {
	w.live.Add(-1)
	if w.deficit.Add(1) > 0 {
		w.startHandler()
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (w *Worker) activate(ctx context.Context, n int32) ([]entities.Job, error) {
	// The client derives the long-poll from the context deadline minus an
	// offset; the extra 10 s keeps the requested long-poll near RequestTimeout.
	reqCtx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout+10*time.Second)
	defer cancel()
	return w.client.NewActivateJobsCommand().
		JobType(w.cfg.JobType).
		MaxJobsToActivate(n).
		Timeout(w.cfg.JobTimeout).
		WorkerName(w.cfg.WorkerName).
		FetchVariables(FetchVariables...).
		Send(reqCtx)
}

// stream receives pushed jobs and reopens the stream after errors.
func (w *Worker) stream(ctx context.Context) {
	delay := w.cfg.PollInterval
	for ctx.Err() == nil {
		consumer := make(chan entities.Job)
		errc := make(chan error, 1)
		go func() {
			errc <- w.client.NewStreamJobsCommand().JobType(w.cfg.JobType).Consumer(consumer).
				Timeout(w.cfg.JobTimeout).WorkerName(w.cfg.WorkerName).FetchVariables(FetchVariables...).
				Send(ctx)
		}()
	recv:
		for {
			select {
			case j := <-consumer:
				w.enqueue(ctx.Done(), j)
				delay = w.cfg.PollInterval
			case err := <-errc:
				if ctx.Err() == nil && err != nil {
					w.log.Warn("job stream ended", zap.Error(err), zap.Duration("reopenIn", delay))
				}
				break recv
			}
		}
		sleep(ctx.Done(), delay)
		delay = min(delay*2, time.Second)
	}
}

func sleep(stop <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}

func toJob(j entities.Job) job.Job {
	headers, err := j.GetCustomHeadersAsMap()
	if err != nil {
		headers = map[string]string{}
	}
	return job.Job{
		Key:                j.GetKey(),
		Type:               j.GetType(),
		Retries:            j.GetRetries(),
		Deadline:           time.UnixMilli(j.GetDeadline()),
		Variables:          j.GetVariables(),
		Headers:            headers,
		ProcessInstanceKey: j.GetProcessInstanceKey(),
		BpmnProcessID:      j.GetBpmnProcessId(),
		ElementID:          j.GetElementId(),
		Worker:             j.GetWorker(),
	}
}

// run handles the job and returns what sends its command.
func (w *Worker) run(ctx context.Context, ej entities.Job) *pending {
	// One allocation carries the job to its sender: the job, its outcome
	// and its log context (fields are built only when a line is written).
	p := &pending{w: w, log: jobLogger{log: w.log}}
	p.log.j = &p.j
	p.j = toJob(ej)
	if w.metrics != nil {
		w.metrics.JobsInFlight.Inc()
		defer w.metrics.JobsInFlight.Dec()
	}
	p.start = time.Now()
	p.out = w.safeHandle(ctx, p.j, p.log)
	p.log.op, p.log.hasOp = p.out.Operation, true
	if w.metrics != nil {
		w.metrics.JobsActivated.WithLabelValues(p.out.Operation).Inc()
	}
	return p
}

// pending is a handled job whose command is still to be sent.
type pending struct {
	w     *Worker
	j     job.Job
	out   job.Outcome
	log   jobLogger
	start time.Time
}

func (p *pending) send() {
	p.w.send(p.j, p.out, p.log)
	if p.w.metrics != nil {
		p.w.metrics.JobDuration.WithLabelValues(p.out.Operation).Observe(time.Since(p.start).Seconds())
	}
}

// jobLogger carries a job's log context; its fields are built and encoded
// only when a line is written, not once per job as zap's With would.
type jobLogger struct {
	log   *zap.Logger
	j     *job.Job
	op    string
	hasOp bool // op is known (after the handler)
}

func (l jobLogger) write(level zapcore.Level, msg string, extra ...zap.Field) {
	if ce := l.log.Check(level, msg); ce != nil {
		fields := make([]zap.Field, 0, 5+len(extra))
		fields = append(fields,
			zap.Int64("jobKey", l.j.Key),
			zap.Int64("processInstanceKey", l.j.ProcessInstanceKey),
			zap.String("bpmnProcessId", l.j.BpmnProcessID),
			zap.String("elementId", l.j.ElementID),
		)
		if l.hasOp {
			fields = append(fields, zap.String("operation", l.op))
		}
		ce.Write(append(fields, extra...)...)
	}
}

func (w *Worker) safeHandle(ctx context.Context, j job.Job, log jobLogger) (out job.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			log.write(zap.ErrorLevel, "handler panicked; failing the job", zap.Any("panic", r))
			out = job.Outcome{Kind: job.Fail, Retries: max(j.Retries-1, 0), Message: "INTERNAL_ERROR: the connector failed unexpectedly; see the worker log", Code: "INTERNAL_ERROR"}
		}
	}()
	return w.handle(ctx, j)
}

// send delivers the outcome's command, retrying what the gateway may accept
// later, until the job's deadline.
func (w *Worker) send(j job.Job, out job.Outcome, log jobLogger) {
	var err error
	switch out.Kind {
	case job.Complete:
		err = w.retry(j.Deadline, func(c context.Context) error {
			cmd := w.client.NewCompleteJobCommand().JobKey(j.Key)
			if len(out.Variables) == 0 {
				// No variables is what the gateway takes for "{}"; the
				// client would marshal an empty map on every job.
				_, err := cmd.Send(c)
				return err
			}
			withVars, err := cmd.VariablesFromMap(out.Variables)
			if err != nil {
				return err
			}
			_, err = withVars.Send(c)
			return err
		})
		if err != nil && isRejectedPayload(err) {
			// The result cannot be stored (too large, or not serialisable):
			// an incident tells the modeler, a retry loop would not.
			log.write(zap.ErrorLevel, "completing the job was refused; raising an incident", zap.Error(err))
			out = job.Outcome{Kind: job.Fail, Retries: 0, Code: "RESULT_REJECTED", Operation: out.Operation,
				Message: "RESULT_REJECTED: the gateway refused the job's result variables (" + status.Convert(err).Message() + "); narrow them with resultExpression"}
			w.send(j, out, log)
			return
		}
		if err == nil && w.metrics != nil {
			w.metrics.JobsCompleted.WithLabelValues(out.Operation).Inc()
		}
	case job.Fail:
		msg := truncate(out.Message, MaxFailMessage)
		err = w.retryCommand(j.Deadline, sendOnce(out.Retries), func(c context.Context) error {
			cmd, err := w.client.NewFailJobCommand().JobKey(j.Key).Retries(out.Retries).RetryBackoff(out.Backoff).
				ErrorMessage(msg).VariablesFromMap(nonNil(out.Variables))
			if err != nil {
				return err
			}
			_, err = cmd.Send(c)
			return err
		})
		if err == nil && w.metrics != nil {
			w.metrics.JobsFailed.WithLabelValues(out.Operation, out.Code).Inc()
		}
	case job.ThrowError:
		err = w.retry(j.Deadline, func(c context.Context) error {
			cmd, err := w.client.NewThrowErrorCommand().JobKey(j.Key).ErrorCode(out.Code).
				ErrorMessage(truncate(out.Message, MaxFailMessage)).VariablesFromMap(nonNil(out.Variables))
			if err != nil {
				return err
			}
			_, err = cmd.Send(c)
			return err
		})
		if err == nil && w.metrics != nil {
			w.metrics.JobsBPMNError.WithLabelValues(out.Operation).Inc()
		}
	}
	switch {
	case err == nil:
		// Completions are the bulk of a busy worker's jobs: debug, as in
		// Camunda's runtime. Failures and BPMN errors stay visible.
		level := zap.InfoLevel
		if out.Kind == job.Complete {
			level = zap.DebugLevel
		}
		log.write(level, "job done", zap.Stringer("command", out.Kind), zap.String("code", out.Code), zap.Int32("retries", out.Retries))
	case status.Code(err) == codes.NotFound:
		log.write(zap.InfoLevel, "job no longer exists (timed out or canceled); command dropped", zap.Stringer("command", out.Kind))
	default:
		log.write(zap.ErrorLevel, "job command failed; the gateway re-activates the job after its timeout", zap.Stringer("command", out.Kind), zap.Error(err))
	}
}

// handBack returns a job that no handler started, with its retries intact.
func (w *Worker) handBack(ej entities.Job) {
	// A job past its deadline may be another worker's by now, and Zeebe
	// takes a command for an activated job from anyone: failing it would
	// undo that worker's activation and have the job run twice.
	deadline := time.UnixMilli(ej.GetDeadline())
	if !time.Now().Before(deadline) {
		return
	}
	// One attempt's time in all: shutdown should not wait on a gateway
	// that is gone, the job comes back after its timeout anyway.
	if limit := time.Now().Add(commandAttemptTimeout); limit.Before(deadline) {
		deadline = limit
	}
	err := w.retryCommand(deadline, sendOnce(ej.GetRetries()), func(c context.Context) error {
		_, err := w.client.NewFailJobCommand().JobKey(ej.GetKey()).Retries(ej.GetRetries()).RetryBackoff(0).
			ErrorMessage("worker shutting down: job handed back unstarted").Send(c)
		return err
	})
	if err != nil && status.Code(err) != codes.NotFound {
		w.log.Warn("handing a job back failed; it returns after its timeout", zap.Int64("jobKey", ej.GetKey()), zap.Error(err))
	}
}

// tooLarge recognises a message over the gRPC size limit, which gRPC also
// reports as RESOURCE_EXHAUSTED but which, unlike back-pressure, never
// passes. The gateway (grpc-java) says "exceeds maximum size", grpc-go
// "larger than max".
func tooLarge(err error) bool {
	s := status.Convert(err)
	if s.Code() != codes.ResourceExhausted {
		return false
	}
	m := s.Message()
	return strings.Contains(m, "exceeds maximum size") || strings.Contains(m, "larger than max")
}

func isRetryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	case codes.ResourceExhausted:
		return !tooLarge(err)
	}
	return false
}

// sendOnce tells whether a FailJob must not be processed twice: one that
// leaves retries can make the job activatable at once, and if it was
// processed but its answer was lost, sending it again could fail the job's
// next activation while a handler, perhaps this worker's, runs it; the job
// would then run twice at once. Such a FailJob is repeated only when it
// cannot have reached the gateway (attemptMark.mayHaveActed). Left unsent,
// a FailJob that really was lost costs the job its timeout, not a run. One
// that raises an incident cannot make the job activatable and is repeated
// like any command.
func sendOnce(retries int32) bool { return retries > 0 }

func isRejectedPayload(err error) bool {
	if _, ok := status.FromError(err); !ok {
		// Failed before sending: variables that do not serialise.
		return true
	}
	return status.Code(err) == codes.InvalidArgument || tooLarge(err)
}

// retry runs a job command until it succeeds, fails for good, or the
// deadline passes. One context per attempt, bounded by both the deadline and
// an attempt timeout: commands are the bulk of a busy worker's calls.
func (w *Worker) retry(deadline time.Time, cmd func(context.Context) error) error {
	return w.retryCommand(deadline, false, cmd)
}

// retryCommand is retry for a command that, if once, must not be processed
// twice: a failed attempt is repeated only if it cannot have reached the
// gateway.
func (w *Worker) retryCommand(deadline time.Time, once bool, cmd func(context.Context) error) error {
	delay := 50 * time.Millisecond
	for {
		until := time.Now().Add(commandAttemptTimeout)
		if deadline.Before(until) {
			until = deadline
		}
		attempt, cancel := context.WithDeadline(context.Background(), until)
		var mark *attemptMark
		if once {
			attempt, mark = withAttemptMark(attempt)
		}
		err := cmd(attempt)
		cancel()
		if err == nil || !isRetryable(err) || (once && mark.mayHaveActed(err)) {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		sleep(nil, min(delay, left))
		if !time.Now().Before(deadline) {
			return err
		}
		delay = min(delay*2, time.Second)
	}
}

// commandAttemptTimeout bounds one job command round trip.
const commandAttemptTimeout = 10 * time.Second

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
