package connector

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
)

// FuzzDecodeVariables feeds arbitrary variable documents to the pipeline's
// first steps: no panic, refusals are INVALID_INPUT naming a variable, only
// the connector's variables are kept, and an accepted operation type is
// trimmed and non-empty.
func FuzzDecodeVariables(f *testing.F) {
	for _, s := range []string{
		`{"operation":{"type":"listMessages","userId":"a@b.c"},"authentication":{"type":"bearer","token":"t"}}`,
		`{"operation":{"type":"  sendMail  "},"message":{"toRecipients":["a@b.c"]},"other":1,"folder":{}}`,
		`{"operation":{"type":""}}`,
		`{"operation":{"type":42}}`,
		`{"operation":"listMessages"}`,
		`{"operation":null}`,
		`[]`,
		`null`,
		`"x"`,
		`{"a":1} {"b":2}`,
		`   `,
		``,
		`{"operation":{"type":"x"}`,
		`{"operation":{"type":1e999}}`,
	} {
		f.Add(s)
	}
	allowed := map[string]bool{"authentication": true, "operation": true, "folder": true, "message": true}
	f.Fuzz(func(t *testing.T, doc string) {
		vars, err := decodeVariables(doc)
		if err != nil {
			requireInput(t, err, "variables")
			if json.Valid([]byte(doc)) && strings.HasPrefix(strings.TrimSpace(doc), "{") {
				t.Fatalf("a valid JSON object was refused: %v", err)
			}
			return
		}
		if vars == nil {
			t.Fatal("nil variables without an error")
		}
		if want, ok := referenceDecode(doc); ok && !reflect.DeepEqual(vars, want) {
			t.Fatalf("decoded %#v, encoding/json into a map gives %#v", vars, want)
		}
		for k := range vars {
			if !allowed[k] {
				t.Fatalf("variable %q kept", k)
			}
		}
		typ, err := operationType(vars)
		if err != nil {
			requireInput(t, err, "operation")
			return
		}
		if typ == "" || typ != strings.TrimSpace(typ) {
			t.Fatalf("operation type %q is empty or untrimmed", typ)
		}
	})
}

// referenceDecode is the straightforward decoding: into a map, numbers
// kept as written, only the connector's variables kept.
func referenceDecode(doc string) (map[string]any, bool) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	out := map[string]any{}
	for k, v := range m {
		if slices.Contains(job.Variables, k) {
			out[k] = v
		}
	}
	return out, true
}

func TestDecodeVariables(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want map[string]any
		err  string // part of the refusal
	}{
		{doc: `{"operation":{"type":"listMessages","top":10},"x":1}`, want: map[string]any{"operation": map[string]any{"type": "listMessages", "top": json.Number("10")}}},
		{doc: `null`, want: map[string]any{}},
		{doc: ``, want: map[string]any{}},
		{doc: `[{"operation":{}}]`, err: "got a list"},
		{doc: `"operation"`, err: "got string"},
		{doc: `42`, err: "got number 42"},
		{doc: `{"operation":`, err: "unexpected EOF"},
	} {
		vars, err := decodeVariables(tc.doc)
		if tc.err != "" {
			if err == nil {
				t.Errorf("%s: accepted as %v", tc.doc, vars)
				continue
			}
			requireInput(t, err, "variables")
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want it to say %q", tc.doc, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.doc, err)
			continue
		}
		if !reflect.DeepEqual(vars, tc.want) {
			t.Errorf("%s: %#v, want %#v", tc.doc, vars, tc.want)
		}
	}
}

func requireInput(t *testing.T, err error, names string) {
	t.Helper()
	var ce *connerr.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not a *connerr.Error: %v", err, err)
	}
	if ce.Code != connerr.CodeInvalidInput || !ce.Final {
		t.Fatalf("code %s (final %v), want a final INVALID_INPUT: %v", ce.Code, ce.Final, err)
	}
	if !strings.HasPrefix(ce.Message, names) {
		t.Fatalf("message %q does not start with the variable %q", ce.Message, names)
	}
}
