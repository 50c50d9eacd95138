package mapping

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
)

func messages() *graph.Response {
	return &graph.Response{Status: 200, Headers: map[string]any{"content-type": "application/json"}, Body: map[string]any{
		"@odata.context": "x",
		"value": []any{
			map[string]any{"id": "1", "subject": "a", "isRead": false},
			map[string]any{"id": "2", "subject": "b", "isRead": true},
		},
	}}
}

func plan(t *testing.T, headers map[string]string) *Plan {
	t.Helper()
	var m Mapper
	p, err := m.Prepare(headers)
	require.NoError(t, err)
	return p
}

func TestResultVariableAndExpression(t *testing.T) {
	p := plan(t, map[string]string{
		"resultVariable":   "mail",
		"resultExpression": `={subjects: body.value.subject, unread: response.body.value[isRead = false].id, "@odata.type": "x", n: count(body.value) + 0.5}`,
	})
	out := p.Success(messages(), 3)
	require.Equal(t, job.Complete, out.Kind)
	require.Equal(t, 200, out.Variables["mail"].(map[string]any)["status"])
	require.Equal(t, []any{"a", "b"}, out.Variables["subjects"])
	require.Equal(t, []any{"1"}, out.Variables["unread"])
	require.Equal(t, "x", out.Variables["@odata.type"])
	require.Equal(t, json.Number("2.5"), out.Variables["n"])
}

func TestResultExpressionMustBeAContext(t *testing.T) {
	out := plan(t, map[string]string{"resultExpression": "body.value"}).Success(messages(), 3)
	require.Equal(t, job.Fail, out.Kind)
	require.Zero(t, out.Retries)
	require.Contains(t, out.Message, "INVALID_INPUT: header resultExpression: expected the expression to return a context")

	out = plan(t, map[string]string{"resultExpression": "body.missing"}).Success(messages(), 3)
	require.Equal(t, job.Complete, out.Kind, "null is no variables")
	require.Empty(t, out.Variables)
}

func TestInvalidHeadersAreInputErrors(t *testing.T) {
	var m Mapper
	for h, v := range map[string]string{
		"resultExpression": "={a: ",
		"errorExpression":  "if then",
		"retryBackoff":     "30 seconds",
	} {
		_, err := m.Prepare(map[string]string{h: v})
		var ce *connerr.Error
		require.ErrorAs(t, err, &ce, h)
		require.Equal(t, connerr.CodeInvalidInput, ce.Code)
		require.Contains(t, ce.Message, "header "+h)
		require.True(t, ce.Final)
	}
	_, err := m.Prepare(map[string]string{"retryBackoff": "P1M"})
	require.Error(t, err, "months are not a day-time duration")
}

// An invalid retryBackoff or result expression is judged by the error
// expression when that one compiled (Camunda's runtime does the same for
// retryBackoff); a broken error expression leaves a plain incident.
func TestHeaderErrorsAreJudgedByAWorkingErrorExpression(t *testing.T) {
	var m Mapper
	catchAll := `=bpmnError("BROKEN_MODEL", error.message)`
	for h, v := range map[string]string{"retryBackoff": "30 seconds", "resultExpression": "={a: "} {
		p, err := m.Prepare(map[string]string{h: v, "errorExpression": catchAll})
		require.Error(t, err)
		o := p.Failure(connerr.From(err), 3)
		require.Equal(t, job.ThrowError, o.Kind, "%s: %+v", h, o)
		require.Equal(t, "BROKEN_MODEL", o.Code)
		require.Contains(t, o.Message, "header "+h)

		p, err = m.Prepare(map[string]string{h: v, "errorExpression": "=bpmnError("})
		require.Error(t, err)
		o = p.Failure(connerr.From(err), 3)
		require.Equal(t, job.Fail, o.Kind)
		require.Zero(t, o.Retries)
		require.Contains(t, o.Message, "INVALID_INPUT: header errorExpression", "the error expression's own error is reported first")
	}
}

func graphError(status string) *connerr.Error {
	e := connerr.New(status, "ErrorItemNotFound: The specified object was not found in the store.")
	e.Variables = map[string]any{"response": map[string]any{"status": 404, "headers": map[string]any{}, "body": map[string]any{"error": map[string]any{"code": "ErrorItemNotFound"}}}}
	return e
}

func TestFailureWithoutExpressionUsesRetriesAndBackoff(t *testing.T) {
	p := plan(t, map[string]string{"retryBackoff": "PT30S"})
	out := p.Failure(graphError("404"), 3)
	require.Equal(t, job.Fail, out.Kind)
	require.Equal(t, int32(2), out.Retries)
	require.Equal(t, 30*time.Second, out.Backoff)
	require.Equal(t, "404: ErrorItemNotFound: The specified object was not found in the store.", out.Message)
	require.Equal(t, "404", out.Variables["error"].(map[string]any)["code"])

	throttled := graphError("429")
	throttled.MinBackoff = 90 * time.Second
	require.Equal(t, 90*time.Second, p.Failure(throttled, 3).Backoff, "Retry-After wins when larger")

	final := connerr.Input("operation.userId", "expected a mailbox")
	out = p.Failure(final, 3)
	require.Zero(t, out.Retries)
}

func TestErrorExpressionFunctions(t *testing.T) {
	cases := []struct {
		expr   string
		err    *connerr.Error
		kind   job.Kind
		check  func(t *testing.T, o Outcome)
		noErrs bool
	}{
		{expr: `if error.code = "404" then bpmnError("NOT_FOUND", error.message, {mailbox: "x"}) else null`, err: graphError("404"), kind: job.ThrowError,
			check: func(t *testing.T, o Outcome) {
				require.Equal(t, "NOT_FOUND", o.Code)
				require.Contains(t, o.Message, "ErrorItemNotFound")
				require.Equal(t, "x", o.Variables["mailbox"])
			}},
		{expr: `if response.status = 404 then jobError("gone", {}, job.retries - 1, duration("PT1M")) else null`, err: graphError("404"), kind: job.Fail,
			check: func(t *testing.T, o Outcome) {
				require.Equal(t, int32(2), o.Retries)
				require.Equal(t, time.Minute, o.Backoff)
				require.Equal(t, "gone", o.Message)
			}},
		{expr: `ignoreError({skipped: true})`, err: graphError("404"), kind: job.Complete,
			check: func(t *testing.T, o Outcome) { require.Equal(t, true, o.Variables["skipped"]) }},
		{expr: `if error = null then null else {}`, err: graphError("500"), kind: job.Fail,
			check: func(t *testing.T, o Outcome) { require.Equal(t, int32(2), o.Retries) }},
		{expr: `bpmnError(null, "no code")`, err: graphError("404"), kind: job.Fail},
		{expr: `{code: "LEGACY", message: "plain context"}`, err: graphError("404"), kind: job.ThrowError,
			check: func(t *testing.T, o Outcome) { require.Equal(t, "LEGACY", o.Code) }},
		{expr: `if count(body.value) > 1 then bpmnError("TOO_MANY", "x") else null`, kind: job.ThrowError},
		{expr: `if error != null then bpmnError("E", "x") else null`, kind: job.Complete},
		{expr: `"just a string"`, err: graphError("404"), kind: job.Fail,
			check: func(t *testing.T, o Outcome) { require.Contains(t, o.Message, "INVALID_INPUT: header errorExpression") }},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			p := plan(t, map[string]string{"errorExpression": "=" + c.expr})
			var o Outcome
			if c.err != nil {
				o = p.Failure(c.err, 3)
			} else {
				o = p.Success(messages(), 3)
			}
			require.Equal(t, c.kind, o.Kind, "%+v", o)
			if c.check != nil {
				c.check(t, o)
			}
		})
	}
}

// Camunda's runtime examines the error expression for every failure,
// ConnectorInputException included (retries 0 unless the expression says
// otherwise).
func TestInputErrorsGoThroughTheErrorExpression(t *testing.T) {
	input := connerr.Input("message.toRecipients", "expected a list")
	cases := []struct {
		expr  string
		kind  job.Kind
		check func(t *testing.T, o Outcome)
	}{
		{expr: `if error.code = "INVALID_INPUT" then bpmnError("BAD_INPUT", error.message) else null`, kind: job.ThrowError,
			check: func(t *testing.T, o Outcome) {
				require.Equal(t, "BAD_INPUT", o.Code)
				require.Equal(t, "message.toRecipients: expected a list", o.Message)
			}},
		{expr: `if error.type = "io.camunda.connector.api.error.ConnectorInputException" then bpmnError("T", "by type") else null`, kind: job.ThrowError},
		{expr: `if error.code = "404" then bpmnError("NOT_FOUND", error.message) else null`, kind: job.Fail,
			check: func(t *testing.T, o Outcome) {
				require.Zero(t, o.Retries, "left alone, an input error is an incident at once")
				require.Equal(t, "INVALID_INPUT: message.toRecipients: expected a list", o.Message)
			}},
		{expr: `jobError("fix the model: " + error.message)`, kind: job.Fail,
			check: func(t *testing.T, o Outcome) {
				require.Zero(t, o.Retries, "jobError's retries default to 0")
				require.Equal(t, "fix the model: message.toRecipients: expected a list", o.Message)
			}},
		{expr: `jobError("again", {}, job.retries - 1, duration("PT5M"))`, kind: job.Fail,
			check: func(t *testing.T, o Outcome) {
				require.Equal(t, int32(2), o.Retries, "the model asked for retries")
				require.Equal(t, 5*time.Minute, o.Backoff)
			}},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			o := plan(t, map[string]string{"errorExpression": "=" + c.expr}).Failure(input, 3)
			require.Equal(t, c.kind, o.Kind, "%+v", o)
			if c.check != nil {
				c.check(t, o)
			}
		})
	}
}

func TestExpressionsAreCompiledOnce(t *testing.T) {
	var m Mapper
	h := map[string]string{"resultExpression": "={a: 1}"}
	p1, err := m.Prepare(h)
	require.NoError(t, err)
	p2, err := m.Prepare(h)
	require.NoError(t, err)
	require.Same(t, p1.result, p2.result)
}

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"PT30S": 30 * time.Second, "PT1M30S": 90 * time.Second, "P1DT2H": 26 * time.Hour, "PT0.5S": 500 * time.Millisecond, "PT0S": 0,
		// As java.time.Duration.parse reads them: either case, a decimal comma.
		"pt30s": 30 * time.Second, "p1dt2h": 26 * time.Hour, "PT1,5S": 1500 * time.Millisecond} {
		got, err := ParseISODuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "P", "PT", "30s", "P1Y", "-PT1S", "PT1H2", "p", "pt", "PT1,S"} {
		_, err := ParseISODuration(bad)
		require.Error(t, err, bad)
	}
	// Beyond time.Duration (about 292 years): refused, never wrapped into a
	// negative backoff.
	for _, huge := range []string{"P200000D", "PT2562048H", "PT153722868M", "P106751DT23H47M17S", "P100000DT999999999S"} {
		d, err := ParseISODuration(huge)
		require.ErrorContains(t, err, "out of range", "%s gave %s", huge, d)
	}
	d, err := ParseISODuration("P106751DT23H47M16S")
	require.NoError(t, err, "the largest duration that fits")
	require.Positive(t, d)
}

func TestBodyIsDecodedOnlyWhenAHeaderReadsIt(t *testing.T) {
	raw := func() *graph.Response {
		return &graph.Response{Status: 200, Headers: map[string]any{}, Raw: []byte(`{"value":[{"subject":"a"}]}`)}
	}
	r := raw()
	out := plan(t, nil).Success(r, 3)
	require.Equal(t, job.Complete, out.Kind)
	require.Empty(t, out.Variables)
	require.NotNil(t, r.Raw, "left undecoded")

	r = raw()
	out = plan(t, map[string]string{"resultExpression": "={s: body.value[1].subject}"}).Success(r, 3)
	require.Equal(t, "a", out.Variables["s"])
}

func TestMalformedBodyFailsWhereItIsRead(t *testing.T) {
	bad := func() *graph.Response {
		return &graph.Response{Status: 200, Headers: map[string]any{}, Raw: []byte(`{"value": [`)}
	}
	out := plan(t, map[string]string{"resultVariable": "r", "retryBackoff": "PT10S"}).Success(bad(), 3)
	require.Equal(t, job.Fail, out.Kind)
	require.Equal(t, int32(2), out.Retries)
	require.Equal(t, 10*time.Second, out.Backoff)
	require.Contains(t, out.Message, "502: malformed JSON from Graph")

	out = plan(t, map[string]string{"errorExpression": `=if error.code = "502" then bpmnError("BAD_GRAPH", error.message) else null`}).Success(bad(), 3)
	require.Equal(t, job.ThrowError, out.Kind, "the error expression sees the failure")

	require.Equal(t, job.Complete, plan(t, nil).Success(bad(), 3).Kind, "nothing reads it")
}

func TestExpressionCacheIsBounded(t *testing.T) {
	var m Mapper
	for i := 0; i < maxCached+50; i++ {
		p, err := m.Prepare(map[string]string{"resultExpression": fmt.Sprintf("={n: %d}", i)})
		require.NoError(t, err)
		require.Equal(t, json.Number(fmt.Sprint(i)), p.Success(messages(), 3).Variables["n"], "expressions past the bound still work")
	}
	n := 0
	m.cache.Range(func(any, any) bool { n++; return true })
	require.Equal(t, maxCached, n)
	require.Equal(t, int64(maxCached), m.size.Load())
}

// A result expression that fails after the call is judged by the error
// expression, as in Camunda's runtime; left alone it stays an incident.
func TestResultExpressionFailureIsJudgedByTheErrorExpression(t *testing.T) {
	headers := map[string]string{
		"resultExpression": "=body.value",
		"errorExpression":  `=if error != null then bpmnError("MAPPING", error.message) else null`,
	}
	out := plan(t, headers).Success(messages(), 3)
	require.Equal(t, job.ThrowError, out.Kind, "%+v", out)
	require.Equal(t, "MAPPING", out.Code)
	require.Contains(t, out.Message, "header resultExpression: expected the expression to return a context")

	headers["errorExpression"] = `=if error.code = "404" then bpmnError("NOT_FOUND", "x") else null`
	out = plan(t, headers).Success(messages(), 3)
	require.Equal(t, job.Fail, out.Kind)
	require.Zero(t, out.Retries, "an incident at once: a retry would run the operation again")
	require.Contains(t, out.Message, "INVALID_INPUT: header resultExpression")
}

// Camunda sends max(retries, 0) of jobError's retries, taken as an integer.
func TestJobErrorRetriesAreClampedLikeCamunda(t *testing.T) {
	for expr, want := range map[string]int32{
		`jobError("giving up", {}, job.retries - 5)`: 0,
		`jobError("giving up", {}, 1.5)`:             1,
		`jobError("giving up", {}, 1e400)`:           1 << 30,
		`jobError("giving up", {}, -1e400)`:          0,
	} {
		o := plan(t, map[string]string{"errorExpression": "=" + expr}).Failure(connerr.New("503", "unavailable"), 3)
		require.Equal(t, job.Fail, o.Kind, expr)
		require.Equal(t, "giving up", o.Message, expr)
		require.Equal(t, want, o.Retries, expr)
	}
}

// After a request that Graph acted on (a sent mail), a failing result
// expression cannot be retried through jobError: the job would send again.
// After a read it can, as in Camunda's runtime.
func TestJobErrorAfterAnActedRequestIsNotRetried(t *testing.T) {
	headers := map[string]string{
		"resultExpression": "=[1, 2]",
		"errorExpression":  `=if error != null then jobError(error.message, {}, job.retries - 1) else null`,
	}
	sent := &graph.Response{Status: 202, Acted: true}
	out := plan(t, headers).Success(sent, 3)
	require.Equal(t, job.Fail, out.Kind)
	require.Zero(t, out.Retries, "%+v", out)
	require.Contains(t, out.Message, "not retried: Graph has already acted on the request")

	out = plan(t, headers).Success(messages(), 3)
	require.Equal(t, job.Fail, out.Kind)
	require.Equal(t, int32(2), out.Retries, "a read may run again")

	headers["errorExpression"] = `=if error != null then bpmnError("MAPPING", error.message) else null`
	out = plan(t, headers).Success(sent, 3)
	require.Equal(t, job.ThrowError, out.Kind, "a BPMN error still routes the process")
}
