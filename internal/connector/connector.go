// Package connector is the job pipeline: variables → secrets → decode and
// validate → credentials → operation → result mapping → outcome. It knows
// nothing of gRPC (the worker sends the outcome) and nothing of HTTP (the
// operations and the Graph client do).
package connector

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/auth"
	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/mapping"
	"github.com/o365-mail-connector/o365-mail-connector/internal/operations"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
	"github.com/o365-mail-connector/o365-mail-connector/internal/secrets"
)

// Pipeline handles jobs; one per process, safe for concurrent use.
type Pipeline struct {
	secrets    *secrets.Resolver
	auth       *auth.Manager
	graph      *graph.Client
	operations map[string]operations.Operation
	typeList   string
	mapper     mapping.Mapper
	redact     *redact.Set
	log        *zap.Logger
}

// Deps are the pipeline's collaborators, built once by the caller.
type Deps struct {
	Secrets    *secrets.Resolver
	Auth       *auth.Manager
	Graph      *graph.Client
	Operations map[string]operations.Operation
	Redact     *redact.Set
	Log        *zap.Logger
}

func New(d Deps) *Pipeline {
	names := make([]string, 0, len(d.Operations))
	for n := range d.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	return &Pipeline{
		secrets: d.Secrets, auth: d.Auth, graph: d.Graph, operations: d.Operations,
		typeList: strings.Join(names, ", "), redact: d.Redact, log: d.Log,
	}
}

// commandMargin is kept free before the job deadline so that the job
// command still reaches the gateway while the job is ours.
func commandMargin(left time.Duration) time.Duration {
	return min(2*time.Second, left/10)
}

// Handle runs one job. Every string that leaves it is redacted.
func (p *Pipeline) Handle(ctx context.Context, j job.Job) job.Outcome {
	out := p.handle(ctx, j)
	out.Message = p.redact.String(out.Message)
	out.Code = p.redact.String(out.Code)
	if out.Variables != nil {
		out.Variables, _ = p.redact.Value(out.Variables).(map[string]any)
	}
	return out
}

func (p *Pipeline) handle(ctx context.Context, j job.Job) job.Outcome {
	// Headers first: a broken expression must never cost a sent mail.
	plan, err := p.mapper.Prepare(j.Headers)
	if err != nil {
		// Header errors are final input errors, mapped by what of the
		// headers could be read.
		return plan.Failure(connerr.From(err), j.Retries)
	}
	fail := func(err error, op string) job.Outcome {
		cerr := connerr.From(err)
		out := plan.Failure(cerr, j.Retries)
		out.Operation = op
		return out
	}

	vars, err := decodeVariables(j.Variables)
	if err != nil {
		return fail(err, "")
	}
	if vars, err = p.secrets.Substitute(vars); err != nil {
		return fail(err, "")
	}
	opType, err := operationType(vars)
	if err != nil {
		return fail(err, "")
	}
	op, ok := p.operations[opType]
	if !ok {
		return fail(connerr.Input("operation.type", "expected one of %s, got %q", p.typeList, opType), "")
	}
	call, err := op.Decode(vars)
	if err != nil {
		return fail(err, opType)
	}
	in, err := auth.Decode(vars["authentication"])
	if err != nil {
		return fail(err, opType)
	}
	creds, err := p.auth.Credentials(in)
	if err != nil {
		return fail(err, opType)
	}

	left := time.Until(j.Deadline)
	runCtx, cancel := context.WithDeadline(ctx, j.Deadline.Add(-commandMargin(left)))
	defer cancel()
	resp, err := call.Run(runCtx, p.graph, creds)
	if err != nil {
		if ctx.Err() != nil {
			if out, ok := handBack(err, j); ok {
				out.Operation = opType
				return out
			}
			err = aborted(err)
		}
		return fail(err, opType)
	}
	out := plan.Success(resp, j.Retries)
	// The outcome holds decoded copies, never the raw body.
	resp.Release()
	out.Operation = opType
	return out
}

// handBack is the outcome of a call that the worker's shutdown cut short
// before it could take effect: a read, or a send or folder creation that
// never reached Graph. Like a job that was never started, it goes back with
// its retries and without the error expression (a shutdown is not the
// process's error), and waits only as long as Graph asked (a throttled
// mailbox's Retry-After).
func handBack(err error, j job.Job) (job.Outcome, bool) {
	if !errors.Is(err, context.Canceled) {
		return job.Outcome{}, false // Graph's own answer, or not ours to judge
	}
	var backoff time.Duration
	var ce *connerr.Error
	if errors.As(err, &ce) {
		if ce.MayHaveActed {
			return job.Outcome{}, false
		}
		backoff = ce.MinBackoff
	}
	return job.Outcome{Kind: job.Fail, Retries: j.Retries, Backoff: backoff, Code: connerr.CodeUnavailable,
		Message: "worker shutting down: the operation was aborted before it took effect; handed back with its retries"}, true
}

// aborted names the worker's shutdown as the cause of a call it cut short,
// keeping what the Graph client knows (such as a send that may have gone
// out). A Graph answer that came back anyway is left as it is.
func aborted(err error) error {
	const msg = "worker shutting down: the operation was aborted"
	var ce *connerr.Error
	if !errors.As(err, &ce) {
		return connerr.New(connerr.CodeUnavailable, msg)
	}
	if !errors.Is(err, context.Canceled) {
		return err
	}
	own := *ce // the error may be shared
	own.Message = msg + " (" + ce.Message + ")"
	return &own
}

// decodeVariables keeps only the connector's variables (the gateway
// already filters them; a test gateway or an old broker may not).
func decodeVariables(doc string) (map[string]any, error) {
	if strings.TrimSpace(doc) == "" {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	// Into an interface rather than a map: encoding/json then builds the
	// whole tree without reflection, a fifth faster.
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, connerr.Input("variables", "expected a JSON object of process variables: %v", err)
	}
	if v == nil {
		return map[string]any{}, nil
	}
	all, ok := v.(map[string]any)
	if !ok {
		return nil, connerr.Input("variables", "expected a JSON object of process variables, got %s", connerr.Describe(v))
	}
	for k := range all {
		if !slices.Contains(job.Variables, k) {
			delete(all, k)
		}
	}
	return all, nil
}

func operationType(vars map[string]any) (string, error) {
	raw, ok := vars["operation"]
	if !ok || raw == nil {
		return "", connerr.Input("operation", "expected a context with at least operation.type, got nothing")
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return "", connerr.Input("operation", "expected a context such as {type: \"listMessages\", userId: ...}, got %s", connerr.Describe(raw))
	}
	t, ok := m["type"].(string)
	if !ok || strings.TrimSpace(t) == "" {
		return "", connerr.Input("operation.type", "expected the operation name as a string, got %s", connerr.Describe(m["type"]))
	}
	return strings.TrimSpace(t), nil
}
