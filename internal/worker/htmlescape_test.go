package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// withoutHTMLEscaping is the oracle: encoding/json's own encoder with HTML
// escaping off.
func withoutHTMLEscaping(t testing.TB, v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return strings.TrimSuffix(b.String(), "\n")
}

func checkUnescape(t testing.TB, v any) {
	escaped, err := json.Marshal(v)
	require.NoError(t, err)
	got := unescapeHTML(string(escaped))
	require.Equal(t, withoutHTMLEscaping(t, v), got)
	require.Equal(t, got, unescapeHTML(got), "a second pass changes nothing")
}

func TestUnescapeHTMLMatchesTheEncoderWithoutEscaping(t *testing.T) {
	for _, v := range []any{
		map[string]any{},
		map[string]any{"body": `<p class="x">Tom &amp; Jerry</p>`},
		map[string]any{"<k>": "&", "list": []any{"<", ">", "&", 1.5, true, nil}},
		// The text \u003c itself, and backslashes next to escapes.
		map[string]any{"a": `\u003c`, "b": `\\u003c`, "c": `\<`, "d": `<\`, "e": "\\\"<"},
		// Escapes that must stay: quotes, control characters, U+2028/2029.
		map[string]any{"q": "\"<\"", "ctl": "\x00\x1f<\t\n", "ls": "\u2028<\u2029"},
		map[string]any{"deep": map[string]any{"x": []any{map[string]any{"y": "a<b>c&d"}}}},
		map[string]any{"plain": "nothing to undo", "n": json.Number("12345678901234567890")},
	} {
		checkUnescape(t, v)
	}
}

func TestUnescapeHTMLLeavesOtherEscapesAlone(t *testing.T) {
	// Not from json.Marshal, but a document of escapes that only look alike.
	doc := `{"a":"\u0000 \\u003c \u003C \u0030c \u00"}`
	require.Equal(t, doc, unescapeHTML(doc))
}

func FuzzUnescapeHTML(f *testing.F) {
	for _, s := range []string{"", "<>&", `\u003c`, `\\u003c`, "\\", "a\u2028<", "\x00<\"&"} {
		f.Add(s, "k")
	}
	f.Fuzz(func(t *testing.T, s, k string) {
		checkUnescape(t, map[string]any{k: s, "list": []any{s, map[string]any{s: k}}})
	})
}

func decodeNumbers(t testing.TB, doc string) any {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), doc)
	return v
}

// Whatever valid document reaches a command, not only json.Marshal's, keeps
// its value, stays valid and is left alone by a second pass.
func FuzzUnescapeHTMLKeepsAnyDocumentsValue(f *testing.F) {
	for _, s := range []string{`{"a":"\u003c\\u003c\u003C"}`, `["\\\u0026",1e3,"\ud83d\ude00"]`, `{"\u003e":"\u2028\ufffd"}`, `"\"\\\"\u0026"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return
		}
		got := unescapeHTML(doc)
		require.True(t, json.Valid([]byte(got)), "%q became %q", doc, got)
		require.Equal(t, decodeNumbers(t, doc), decodeNumbers(t, got))
		require.Equal(t, got, unescapeHTML(got))
	})
}

// A result of HTML whose escaped form is over the gateway's 4 MB limit, and
// whose real size is far below it, completes instead of being refused, and
// the process variable holds the text as it was.
func TestHTMLResultsAreSentUnescaped(t *testing.T) {
	g, c := gateway(t)
	html := strings.Repeat("<b>&</b>", 150_000) // 1.2 MB; escaped about 5 MB
	escaped, _ := json.Marshal(html)
	require.Greater(t, len(escaped), 4<<20, "the test needs an escaped form beyond the limit")
	start(t, c, testConfig(), completeWith(map[string]any{"html": html}))
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted || j.Incident })
	j, _ := g.Job(key)
	require.Equal(t, zeebesim.StateCompleted, j.State, j.ErrorMessage)
	require.Equal(t, html, j.Variables["html"])
	for _, cmd := range g.Commands() {
		if cmd.Method == "CompleteJob" && cmd.JobKey == key {
			require.NotContains(t, cmd.Variables, `\u003c`)
		}
	}
}

// ThrowError carries variables too (a bpmnError's); FailJob's take the same
// path through the interceptor.
func TestErrorVariablesAreSentUnescaped(t *testing.T) {
	g, c := gateway(t)
	start(t, c, testConfig(), func(ctx context.Context, j job.Job) job.Outcome {
		return job.Outcome{Kind: job.ThrowError, Code: "MAIL_FAILED", Message: "m", Variables: map[string]any{"why": "<b>&</b>"}}
	})
	key := g.CreateJob(zeebesim.JobSpec{Type: jobType})
	await(t, g, []int64{key}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateErrorThrown })
	var seen bool
	for _, cmd := range g.Commands() {
		if cmd.Method == "ThrowError" && cmd.JobKey == key {
			seen = true
			require.JSONEq(t, `{"why":"<b>&</b>"}`, cmd.Variables)
			require.Contains(t, cmd.Variables, "<b>&</b>")
		}
	}
	require.True(t, seen)
}
