// Package mapping turns a Graph response or a connector error into the job
// command, the way Camunda's connector runtime does (camunda-semantics.md):
// resultVariable, resultExpression, errorExpression with bpmnError, jobError
// and ignoreError, and the retryBackoff header. Operations never map results
// themselves.
package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/feel"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
)

// Task header names (contract section 3).
const (
	HeaderResultVariable   = "resultVariable"
	HeaderResultExpression = "resultExpression"
	HeaderErrorExpression  = "errorExpression"
	HeaderRetryBackoff     = "retryBackoff"
)

// Outcome is re-exported for brevity in this package.
type Outcome = job.Outcome

// Mapper compiles header expressions once per distinct text; it is shared
// by every job of the process.
type Mapper struct {
	cache sync.Map // expression text → compiled
	size  atomic.Int64
}

// maxCached bounds the cache for processes that generate expression texts.
const maxCached = 10_000

type compiled struct {
	expr *feel.Expr
	err  error
}

func (m *Mapper) compile(text string) (*feel.Expr, error) {
	if c, ok := m.cache.Load(text); ok {
		return c.(compiled).expr, c.(compiled).err
	}
	expr, err := feel.Compile(text)
	if m.size.Load() < maxCached {
		// Two jobs compiling the same text at once keep the first result.
		if c, loaded := m.cache.LoadOrStore(text, compiled{expr, err}); loaded {
			return c.(compiled).expr, c.(compiled).err
		}
		m.size.Add(1)
	}
	return expr, err
}

// Plan is the parsed headers of one job.
type Plan struct {
	resultVariable string
	result         *feel.Expr
	errorExpr      *feel.Expr
	backoff        time.Duration
}

// Prepare checks the headers before the operation runs, so that a broken
// expression or backoff never costs a sent mail. On error it still returns
// a plan for the failure: one that holds the error expression when that
// compiled, since Camunda's runtime lets the error expression judge an
// invalid retryBackoff like any other input error.
func (m *Mapper) Prepare(headers map[string]string) (*Plan, error) {
	errorExpr, err := m.header(headers, HeaderErrorExpression)
	if err != nil {
		return &Plan{}, err
	}
	p := &Plan{resultVariable: strings.TrimSpace(headers[HeaderResultVariable]), errorExpr: errorExpr}
	if p.result, err = m.header(headers, HeaderResultExpression); err != nil {
		return &Plan{errorExpr: errorExpr}, err
	}
	if raw := strings.TrimSpace(headers[HeaderRetryBackoff]); raw != "" {
		if p.backoff, err = ParseISODuration(raw); err != nil {
			return &Plan{errorExpr: errorExpr}, connerr.Input("header "+HeaderRetryBackoff, "%v", err)
		}
	}
	return p, nil
}

func (m *Mapper) header(headers map[string]string, name string) (*feel.Expr, error) {
	text := strings.TrimSpace(headers[name])
	text = strings.TrimSpace(strings.TrimPrefix(text, "="))
	if text == "" {
		return nil, nil
	}
	expr, err := m.compile(text)
	if err != nil {
		return nil, connerr.Input("header "+name, "invalid FEEL expression: %v", err)
	}
	return expr, nil
}

// Success maps a Graph response.
func (p *Plan) Success(resp *graph.Response, retries int32) Outcome {
	if p.resultVariable == "" && p.result == nil && p.errorExpr == nil {
		// Nothing reads the response: its body is never decoded, and the
		// job completes without variables.
		return Outcome{Kind: job.Complete}
	}
	vars := map[string]any{}
	respMap, err := resp.AsMap()
	if err != nil {
		return p.failAfterCall(resp, connerr.From(err), retries)
	}
	if p.resultVariable != "" {
		vars[p.resultVariable] = respMap
	}
	if p.result != nil {
		// A result expression that fails is an input error that the error
		// expression judges, as in Camunda's runtime (the mapping runs in
		// the same try as the call). Left alone, it is an incident at once,
		// not a retry: retrying would run the operation, a send say, again
		// (failAfterCall).
		out, err := p.result.Eval(scope(respMap, nil, retries))
		var entries map[string]any
		if err == nil {
			entries, err = asContext(out)
		}
		if err != nil {
			return p.failAfterCall(resp, connerr.Input("header "+HeaderResultExpression, "%v", err), retries)
		}
		for k, v := range entries {
			vars[k] = v
		}
	}
	if p.errorExpr != nil {
		if o, handled := p.evalError(scope(respMap, nil, retries), retries, nil); handled {
			return o
		}
	}
	return Outcome{Kind: job.Complete, Variables: vars}
}

// Failure maps a connector error.
func (p *Plan) Failure(cerr *connerr.Error, retries int32) Outcome {
	// Input errors go through the error expression too, as in Camunda's
	// runtime: it fails a ConnectorInputException with retries 0 and then
	// examines the error expression like for any other failure, so a model
	// that routes every error to a BPMN error boundary keeps doing so. Only
	// when the expression leaves the error alone is it an incident at once.
	if p.errorExpr != nil {
		var respMap map[string]any
		if r, ok := cerr.Variables["response"].(map[string]any); ok {
			respMap = r
		}
		if o, handled := p.evalError(scope(respMap, cerr.AsMap(), retries), retries, cerr); handled {
			return o
		}
	}
	return p.fail(cerr, retries)
}

func (p *Plan) fail(cerr *connerr.Error, retries int32) Outcome {
	left := retries - 1
	if cerr.Final || left < 0 {
		left = 0
	}
	backoff := p.backoff
	if cerr.MinBackoff > backoff {
		backoff = cerr.MinBackoff
	}
	return Outcome{
		Kind:      job.Fail,
		Retries:   left,
		Backoff:   backoff,
		Message:   cerr.Code + ": " + cerr.Message,
		Code:      cerr.Code,
		Variables: map[string]any{"error": cerr.AsMap()},
	}
}

// failAfterCall judges a failure that came after Graph answered with
// success. When Graph has acted (a mail is sent), a jobError cannot ask for
// a retry: the job would run again and send the mail twice, and the error
// expression cannot tell this input error from one caught before the call.
func (p *Plan) failAfterCall(resp *graph.Response, cerr *connerr.Error, retries int32) Outcome {
	o := p.Failure(cerr, retries)
	if resp.Acted && o.Kind == job.Fail && o.Retries > 0 {
		o.Retries = 0
		o.Message += " (not retried: Graph has already acted on the request, a retry would repeat it)"
	}
	return o
}

func (p *Plan) inputFailure(header string, err error) Outcome {
	return p.fail(connerr.Input("header "+header, "%v", err), 0)
}

// scope is the evaluation context: the response's fields, `response`
// itself, `error` when the call failed and `job.retries`.
func scope(resp map[string]any, errMap map[string]any, retries int32) map[string]any {
	s := make(map[string]any, 6)
	for k, v := range resp {
		s[k] = v
	}
	if resp != nil {
		s["response"] = resp
	}
	if errMap != nil {
		s["error"] = errMap
	}
	s["job"] = map[string]any{"retries": int64(retries)}
	return s
}

// Connector functions return contexts tagged with errorType, as Camunda's do.
var connectorFunctions = []feel.Option{
	feel.WithFunction("bpmnError", []string{"code", "message", "variables"}, func(a []feel.Value) (feel.Value, error) {
		return map[string]any{"errorType": "bpmnError", "code": a[0], "message": a[1], "variables": a[2]}, nil
	}),
	feel.WithFunction("jobError", []string{"message", "variables", "retries", "retryBackoff"}, func(a []feel.Value) (feel.Value, error) {
		return map[string]any{"errorType": "jobError", "message": a[0], "variables": a[1], "retries": a[2], "retryBackoff": a[3]}, nil
	}),
	feel.WithFunction("ignoreError", []string{"variables"}, func(a []feel.Value) (feel.Value, error) {
		return map[string]any{"errorType": "ignoreError", "variables": a[0]}, nil
	}),
}

// evalError runs the error expression. handled is false when it decided
// "no error" (null, {} or a bpmnError without code).
func (p *Plan) evalError(vars map[string]any, retries int32, cerr *connerr.Error) (Outcome, bool) {
	out, err := p.errorExpr.Eval(vars, connectorFunctions...)
	if err != nil {
		return p.inputFailure(HeaderErrorExpression, err), true
	}
	ctx, err := asContext(out)
	if err != nil {
		return p.inputFailure(HeaderErrorExpression, err), true
	}
	if len(ctx) == 0 {
		return Outcome{}, false
	}
	str := func(k string) string {
		if s, ok := ctx[k].(string); ok {
			return s
		}
		if ctx[k] == nil {
			return ""
		}
		return fmt.Sprint(ctx[k])
	}
	variables := func() (map[string]any, error) {
		if ctx["variables"] == nil {
			return map[string]any{}, nil
		}
		v, ok := ctx["variables"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("variables must be a context, got %s", connerr.Describe(ctx["variables"]))
		}
		return v, nil
	}
	errorType := str("errorType")
	if errorType == "" && str("code") != "" {
		errorType = "bpmnError" // a plain {code, message} context, as older templates write it
	}
	switch errorType {
	case "bpmnError":
		if str("code") == "" {
			return Outcome{}, false
		}
		v, err := variables()
		if err != nil {
			return p.inputFailure(HeaderErrorExpression, fmt.Errorf("bpmnError: %v", err)), true
		}
		return Outcome{Kind: job.ThrowError, Code: str("code"), Message: str("message"), Variables: v}, true
	case "jobError":
		v, err := variables()
		if err != nil {
			return p.inputFailure(HeaderErrorExpression, fmt.Errorf("jobError: %v", err)), true
		}
		left := int32(0)
		if r, ok := ctx["retries"].(json.Number); ok {
			// Camunda takes the retries as an integer (a fraction is cut
			// off) and sends max(retries, 0).
			f, err := strconv.ParseFloat(string(r), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return p.inputFailure(HeaderErrorExpression, fmt.Errorf("jobError: retries must be a number, got %s", r)), true
			}
			left = int32(max(min(math.Trunc(f), 1<<30), 0))
		} else if ctx["retries"] != nil {
			return p.inputFailure(HeaderErrorExpression, fmt.Errorf("jobError: retries must be a number, got %s", connerr.Describe(ctx["retries"]))), true
		}
		var backoff time.Duration
		switch b := ctx["retryBackoff"].(type) {
		case nil:
		case string:
			d, err := ParseISODuration(b)
			if err != nil {
				return p.inputFailure(HeaderErrorExpression, fmt.Errorf("jobError: retryBackoff: %v", err)), true
			}
			backoff = d
		default:
			return p.inputFailure(HeaderErrorExpression, fmt.Errorf("jobError: retryBackoff must be a duration, got %s", connerr.Describe(b))), true
		}
		msg := str("message")
		vars := map[string]any{}
		for k, val := range v {
			vars[k] = val
		}
		if cerr != nil {
			if _, ok := vars["error"]; !ok {
				vars["error"] = cerr.AsMap()
			}
		}
		return Outcome{Kind: job.Fail, Retries: left, Backoff: backoff, Message: msg, Code: "JOB_ERROR", Variables: vars}, true
	case "ignoreError":
		v, err := variables()
		if err != nil {
			return p.inputFailure(HeaderErrorExpression, fmt.Errorf("ignoreError: %v", err)), true
		}
		return Outcome{Kind: job.Complete, Variables: v}, true
	}
	return p.inputFailure(HeaderErrorExpression, fmt.Errorf("expected null, {}, bpmnError(...), jobError(...) or ignoreError(...), got a context with keys %s", keys(ctx))), true
}

// asContext converts a FEEL result into process variables. Null is taken
// as "no variables" rather than an error, as Camunda's connector runtime
// does (its createOutputVariables skips a null mapped result): a result
// expression over a missing path should not turn an already sent mail into
// an incident. camunda-semantics.md's "anything else is an input error"
// holds for every other non-context result.
func asContext(v feel.Value) (map[string]any, error) {
	j, err := feel.ToJSON(v)
	if err != nil {
		return nil, err
	}
	switch t := j.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return t, nil
	}
	return nil, fmt.Errorf("expected the expression to return a context such as {name: value}, got %s", connerr.Describe(j))
}

func keys(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return "[" + strings.Join(ks, ", ") + "]"
}
