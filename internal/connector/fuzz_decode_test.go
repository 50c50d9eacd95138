package connector

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
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
