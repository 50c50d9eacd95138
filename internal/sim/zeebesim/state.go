package zeebesim

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type job struct {
	pub                Job
	vars               map[string]json.RawMessage
	varsDoc            string // cached full document; "" = recompute
	headersDoc         string
	elementInstanceKey int64
	// seq changes on every state change, so timers and stream queues can tell
	// whether they still refer to the activation they were made for.
	seq    uint64
	queued bool // an entry for this job is in its type's activatable heap
}

func (j *job) snapshot() Job {
	s := j.pub
	s.Spec.Variables = maps.Clone(j.pub.Spec.Variables)
	s.Spec.CustomHeaders = maps.Clone(j.pub.Spec.CustomHeaders)
	s.Variables = maps.Clone(j.pub.Variables)
	s.ErrorVariables = maps.Clone(j.pub.ErrorVariables)
	return s
}

func sortJobs(js []Job) {
	slices.SortFunc(js, func(a, b Job) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
}

// keyHeap orders activatable jobs of one type by key, as the broker's state
// does; entries are removed lazily when popped.
type keyHeap []int64

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, k int) bool { return h[i] < h[k] }
func (h keyHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type timer struct {
	at  time.Time
	key int64
	seq uint64
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, k int) bool { return h[i].at.Before(h[k].at) }
func (h timerHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (g *Gateway) newKeyLocked() int64 {
	g.lastKey++
	return g.lastKey
}

// CreateJob creates an activatable job and hands it to an open job stream of
// its type or wakes waiting pollers. It panics if Variables cannot be encoded
// as JSON.
func (g *Gateway) CreateJob(spec JobSpec) int64 {
	vars := make(map[string]json.RawMessage, len(spec.Variables))
	for name, v := range spec.Variables {
		raw, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("zeebesim: variable %q: %v", name, err))
		}
		vars[name] = raw
	}
	headers := spec.CustomHeaders
	if headers == nil {
		headers = map[string]string{}
	}
	headersDoc, err := json.Marshal(headers)
	if err != nil {
		panic(fmt.Sprintf("zeebesim: custom headers: %v", err))
	}
	spec.Variables = maps.Clone(spec.Variables)
	spec.CustomHeaders = maps.Clone(spec.CustomHeaders)
	if spec.Retries == 0 {
		spec.Retries = 3
	}
	if spec.TenantID == "" {
		spec.TenantID = DefaultTenantID
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if spec.ProcessDefinitionKey == 0 {
		spec.ProcessDefinitionKey = g.newKeyLocked()
	}
	if spec.ProcessInstanceKey == 0 {
		spec.ProcessInstanceKey = g.newKeyLocked()
	}
	eik := g.newKeyLocked()
	key := g.newKeyLocked()
	j := &job{
		pub:                Job{Key: key, Spec: spec, Retries: spec.Retries},
		vars:               vars,
		headersDoc:         string(headersDoc),
		elementInstanceKey: eik,
	}
	g.jobs[key] = j
	g.makeActivatableLocked(j)
	return key
}

// ResolveIncident makes a job in an incident activatable again, as resolving
// the incident does in Zeebe; like there, the job needs retries left (see
// UpdateJobRetries), otherwise it raises a new incident at once and false is
// returned.
func (g *Gateway) ResolveIncident(jobKey int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.jobs[jobKey]
	if !ok || j.pub.State != StateIncident || j.pub.Retries <= 0 {
		return false
	}
	j.pub.Incident = false
	g.makeActivatableLocked(j)
	return true
}

// makeActivatableLocked is every path by which a job becomes activatable:
// creation, timeout, end of retry backoff, yield of an undelivered push. As in
// Zeebe 8.5 an open job stream of the type gets the job first; otherwise it
// waits for pollers.
func (g *Gateway) makeActivatableLocked(j *job) {
	j.pub.State = StateActivatable
	j.pub.Deadline = time.Time{}
	j.seq++
	defer g.changedLocked()
	if g.pushToStreamLocked(j) {
		return
	}
	typ := j.pub.Spec.Type
	if !j.queued {
		h := g.activatable[typ]
		if h == nil {
			h = &keyHeap{}
			g.activatable[typ] = h
		}
		heap.Push(h, j.pub.Key)
		j.queued = true
	}
	if ch, ok := g.pollSignal[typ]; ok {
		close(ch)
		delete(g.pollSignal, typ)
	}
}

// pollSignalLocked returns a channel closed when a job of typ next becomes
// activatable for pollers.
func (g *Gateway) pollSignalLocked(typ string) <-chan struct{} {
	ch, ok := g.pollSignal[typ]
	if !ok {
		ch = make(chan struct{})
		g.pollSignal[typ] = ch
	}
	return ch
}

type activation struct {
	worker  string
	timeout time.Duration
	fetch   []string
	tenants []string
}

func tenantAllowed(tenant string, tenants []string) bool {
	// The zbc client sends no tenant ids unless told; then every job matches,
	// which keeps tests that set a TenantID simple.
	return len(tenants) == 0 || slices.Contains(tenants, tenant)
}

// activatedJobLocked builds the protocol form of j as activated by a.
func (g *Gateway) activatedJobLocked(j *job, a activation, deadline time.Time) *pb.ActivatedJob {
	return &pb.ActivatedJob{
		Key:                      j.pub.Key,
		Type:                     j.pub.Spec.Type,
		ProcessInstanceKey:       j.pub.Spec.ProcessInstanceKey,
		BpmnProcessId:            j.pub.Spec.BpmnProcessID,
		ProcessDefinitionVersion: 1,
		ProcessDefinitionKey:     j.pub.Spec.ProcessDefinitionKey,
		ElementId:                j.pub.Spec.ElementID,
		ElementInstanceKey:       j.elementInstanceKey,
		CustomHeaders:            j.headersDoc,
		Worker:                   a.worker,
		Retries:                  j.pub.Retries,
		Deadline:                 deadline.UnixMilli(),
		Variables:                j.variablesDoc(a.fetch),
		TenantId:                 j.pub.Spec.TenantID,
	}
}

func (j *job) variablesDoc(fetch []string) string {
	if len(fetch) == 0 {
		if j.varsDoc == "" {
			j.varsDoc = encodeVars(j.vars)
		}
		return j.varsDoc
	}
	sub := make(map[string]json.RawMessage, len(fetch))
	for _, name := range fetch {
		if v, ok := j.vars[name]; ok {
			sub[name] = v
		}
	}
	return encodeVars(sub)
}

func encodeVars(vars map[string]json.RawMessage) string {
	b, err := json.Marshal(vars)
	if err != nil {
		// Values were produced by json.Marshal or validated on receipt.
		panic(fmt.Sprintf("zeebesim: encode variables: %v", err))
	}
	return string(b)
}

// tryActivateLocked activates j for a unless its activated form exceeds
// limit bytes. A job that does not fit even alone raises an incident, as the
// broker does ("the current job is simply too large"), so it does not block
// its type forever; alone, limit is all a response can carry.
func (g *Gateway) tryActivateLocked(j *job, a activation, limit int, alone bool) (*pb.ActivatedJob, bool) {
	deadline := time.Now().Add(a.timeout)
	aj := g.activatedJobLocked(j, a, deadline)
	// Frame overhead of a repeated field entry.
	size := proto.Size(aj) + 16
	if size > limit {
		if alone {
			j.pub.State = StateIncident
			j.pub.Incident = true
			j.pub.ErrorMessage = fmt.Sprintf("The job with key '%d' can not be activated, because it is larger than the configured message size (per default is 4 MB). Try to reduce the size by reducing the number of fetched variables or modifying the variable values.", j.pub.Key)
			j.seq++
			g.changedLocked()
		}
		return nil, false
	}
	j.pub.State = StateActivated
	j.pub.Streamed = false
	j.pub.Activations++
	j.pub.Worker = a.worker
	j.pub.Deadline = deadline
	j.seq++
	g.scheduleLocked(deadline, j)
	g.changedLocked()
	return aj, true
}

// activateForPollLocked activates up to max activatable jobs of typ, in key
// order, within one response message.
func (g *Gateway) activateForPollLocked(typ string, max int, a activation) []*pb.ActivatedJob {
	h := g.activatable[typ]
	if h == nil {
		return nil
	}
	var out []*pb.ActivatedJob
	var skipped []int64
	budget := g.opts.maxMessageSize - 64
	for h.Len() > 0 && len(out) < max {
		key := heap.Pop(h).(int64)
		j := g.jobs[key]
		if j.pub.State != StateActivatable {
			j.queued = false
			continue
		}
		if !tenantAllowed(j.pub.Spec.TenantID, a.tenants) {
			skipped = append(skipped, key)
			continue
		}
		aj, ok := g.tryActivateLocked(j, a, budget, len(out) == 0)
		if !ok {
			if j.pub.State == StateActivatable {
				skipped = append(skipped, key)
				break
			}
			j.queued = false
			continue
		}
		j.queued = false
		budget -= proto.Size(aj) + 16
		out = append(out, aj)
	}
	for _, k := range skipped {
		heap.Push(h, k)
	}
	if h.Len() == 0 {
		delete(g.activatable, typ)
	}
	return out
}

func (g *Gateway) scheduleLocked(at time.Time, j *job) {
	wasHead := len(g.timers) == 0 || at.Before(g.timers[0].at)
	heap.Push(&g.timers, timer{at: at, key: j.pub.Key, seq: j.seq})
	if wasHead {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
}

// sweep turns expired activations and elapsed retry backoffs back into
// activatable jobs, like the broker's timeout and backoff checkers.
func (g *Gateway) sweep() {
	defer close(g.sweeperDone)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		g.mu.Lock()
		now := time.Now()
		for len(g.timers) > 0 && !g.timers[0].at.After(now) {
			tm := heap.Pop(&g.timers).(timer)
			j := g.jobs[tm.key]
			if j.seq != tm.seq {
				continue
			}
			switch j.pub.State {
			case StateActivated, StateFailed:
				g.makeActivatableLocked(j)
			}
		}
		wait := time.Hour
		if len(g.timers) > 0 {
			wait = g.timers[0].at.Sub(now)
		}
		g.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-g.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-g.done:
			return
		}
	}
}

// Rejections are worded as the gateway maps broker rejections:
// "Command '<INTENT>' rejected with code '<TYPE>': <reason>".
func rejection(code codes.Code, intent, typ, reason string) error {
	return status.Errorf(code, "Command '%s' rejected with code '%s': %s", intent, typ, reason)
}

// commandableLocked applies the broker's precondition for complete, fail and
// throw error: the job must exist and be activatable or activated.
func (g *Gateway) commandableLocked(key int64, intent, verb string) (*job, error) {
	j, ok := g.jobs[key]
	if ok {
		switch j.pub.State {
		case StateActivatable, StateActivated:
			return j, nil
		case StateFailed, StateIncident:
			return nil, rejection(codes.FailedPrecondition, intent, "INVALID_STATE",
				fmt.Sprintf("Expected to %s job with key '%d', but it is in state 'FAILED'", verb, key))
		}
	}
	// Completed jobs and jobs whose error was caught are deleted by the broker.
	return nil, rejection(codes.NotFound, intent, "NOT_FOUND",
		fmt.Sprintf("Expected to %s job with key '%d', but no such job was found", verb, key))
}

// parseVariables accepts what the broker accepts: empty, or a JSON object.
func parseVariables(doc string) (map[string]json.RawMessage, map[string]any, error) {
	doc = strings.TrimSpace(doc)
	if doc == "" {
		return nil, nil, nil
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return nil, nil, status.Errorf(codes.InvalidArgument,
			"Property 'variables' is invalid: Expected document to be a root level object, but was '%s'", docKind(doc))
	}
	var decoded map[string]any
	if err := json.Unmarshal([]byte(doc), &decoded); err != nil {
		return nil, nil, status.Errorf(codes.InvalidArgument, "Property 'variables' is invalid: %v", err)
	}
	return raw, decoded, nil
}

func docKind(doc string) string {
	switch {
	case strings.HasPrefix(doc, "["):
		return "ARRAY"
	case strings.HasPrefix(doc, "\""):
		return "STRING"
	case doc == "null":
		return "NIL"
	case doc == "true" || doc == "false":
		return "BOOLEAN"
	}
	return "INVALID"
}

func (g *Gateway) completeJob(key int64, variables string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, err := g.commandableLocked(key, "COMPLETE", "complete")
	if err != nil {
		return err
	}
	_, decoded, err := parseVariables(variables)
	if err != nil {
		return err
	}
	j.pub.State = StateCompleted
	j.pub.Completions++
	g.completedJobs++
	j.pub.Variables = decoded
	j.pub.Deadline = time.Time{}
	j.seq++
	g.changedLocked()
	return nil
}

func (g *Gateway) failJob(key int64, retries int32, backoff time.Duration, msg, variables string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, err := g.commandableLocked(key, "FAIL", "fail")
	if err != nil {
		return err
	}
	raw, decoded, err := parseVariables(variables)
	if err != nil {
		return err
	}
	// Fail variables become local variables of the task, so the next
	// activation sees them.
	if len(raw) > 0 {
		maps.Copy(j.vars, raw)
		j.varsDoc = ""
	}
	j.pub.ErrorVariables = decoded
	j.pub.ErrorMessage = msg
	j.pub.Retries = retries
	j.pub.RetryBackoff = backoff
	j.pub.Deadline = time.Time{}
	switch {
	case retries <= 0:
		j.pub.State = StateIncident
		j.pub.Incident = true
		j.seq++
		g.changedLocked()
	case backoff > 0:
		j.pub.State = StateFailed
		j.seq++
		g.scheduleLocked(time.Now().Add(backoff), j)
		g.changedLocked()
	default:
		g.makeActivatableLocked(j)
	}
	return nil
}

func (g *Gateway) throwError(key int64, code, msg, variables string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, err := g.commandableLocked(key, "THROW_ERROR", "throw an error for")
	if err != nil {
		return err
	}
	_, decoded, err := parseVariables(variables)
	if err != nil {
		return err
	}
	j.pub.State = StateErrorThrown
	j.pub.ErrorCode = code
	j.pub.ErrorMessage = msg
	j.pub.ErrorVariables = decoded
	j.pub.Deadline = time.Time{}
	j.seq++
	g.changedLocked()
	return nil
}

func (g *Gateway) updateJobRetries(key int64, retries int32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.jobs[key]
	if !ok || j.pub.State == StateCompleted || j.pub.State == StateErrorThrown {
		return rejection(codes.NotFound, "UPDATE_RETRIES", "NOT_FOUND",
			fmt.Sprintf("Expected to update retries for job with key '%d', but no such job was found", key))
	}
	if retries < 1 {
		return rejection(codes.InvalidArgument, "UPDATE_RETRIES", "INVALID_ARGUMENT",
			fmt.Sprintf("Expected to update retries for job with key '%d' with a positive amount of retries, but the amount given was '%d'", key, retries))
	}
	j.pub.Retries = retries
	g.changedLocked()
	return nil
}

func (g *Gateway) updateJobTimeout(key int64, timeout time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.jobs[key]
	if !ok || j.pub.State == StateCompleted || j.pub.State == StateErrorThrown {
		return rejection(codes.NotFound, "UPDATE_TIMEOUT", "NOT_FOUND",
			fmt.Sprintf("Expected to update job with key '%d', but no such job was found", key))
	}
	if j.pub.State != StateActivated {
		return rejection(codes.FailedPrecondition, "UPDATE_TIMEOUT", "INVALID_STATE",
			fmt.Sprintf("Expected to update the timeout of job with key '%d', but it is not active", key))
	}
	j.pub.Deadline = time.Now().Add(timeout)
	j.seq++
	g.scheduleLocked(j.pub.Deadline, j)
	g.changedLocked()
	return nil
}

// completed counts completed jobs.
func (g *Gateway) completed() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.completedJobs
}
