package secrets

import (
	"errors"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// reference is a plain scanner for the placeholder syntax, written without
// the regexp, against which Substitute is checked.
func reference(in string, value func(string) (string, bool)) (string, bool) {
	var b strings.Builder
	ok := true
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' } // RE2's \s: no \v
	for i := 0; i < len(in); {
		if strings.HasPrefix(in[i:], "{{") {
			j := i + 2
			for j < len(in) && isSpace(in[j]) {
				j++
			}
			if strings.HasPrefix(in[j:], "secrets.") {
				j += len("secrets.")
				start := j
				for j < len(in) && !isSpace(in[j]) && in[j] != '{' && in[j] != '}' {
					j++
				}
				name := in[start:j]
				for j < len(in) && isSpace(in[j]) {
					j++
				}
				if strings.HasPrefix(in[j:], "}}") {
					v, found := value(name)
					ok = ok && found
					b.WriteString(v)
					i = j + 2
					continue
				}
			}
		}
		b.WriteByte(in[i])
		i++
	}
	return b.String(), ok
}

func fuzzValue(name string) (string, bool) {
	if !validName.MatchString(name) {
		return "", false
	}
	return "<" + name + ">", true
}

func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "X"
	}
	return b.String()
}

func FuzzSubstitute(f *testing.F) {
	for _, seed := range [][2]string{
		{"{{secrets.A}}", "B"},
		{"x {{ secrets.A }} y {{secrets.b.c-d}}", "n"},
		{"{{secrets.{{secrets.a}}}}", ""},
		{"{{{{secrets.a}}}}", "a.b"},
		{"{{secrets.../etc/passwd}}", "../x"},
		{"{{secrets.}}{{secrets.a", " "},
		{"\u00e9{{\tsecrets.\u00e9\n}}", "\x00"},
		{"{{\vsecrets.A}}", "A"},
	} {
		f.Add(seed[0], seed[1])
	}
	r := New(Config{LookupEnv: func(k string) (string, bool) {
		return fuzzValue(strings.TrimPrefix(k, DefaultEnvPrefix))
	}})
	f.Fuzz(func(t *testing.T, raw, name string) {
		// 1. Arbitrary text: same result as the reference scanner, and an
		// error exactly when the reference meets an unresolvable name.
		want, resolvable := reference(raw, fuzzValue)
		out, err := r.Substitute(map[string]any{"a": raw, "l": []any{raw}})
		if !resolvable {
			var ce *connerr.Error
			if !errors.As(err, &ce) || ce.Code != connerr.CodeSecretNotFound || !ce.Final {
				t.Fatalf("%q: want SECRET_NOT_FOUND, got %v", raw, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if out["a"] != want || out["l"].([]any)[0] != want {
			t.Fatalf("%q: got %q, reference %q", raw, out["a"], want)
		}

		// 2. Placeholders between brace-free text: nothing of the syntax
		// may survive.
		lit := strings.NewReplacer("{", "", "}", "").Replace(raw)
		n := sanitizeName(name)
		in := lit + "{{secrets." + n + "}}" + lit + "{{ secrets." + n + "\t}}" + lit
		out, err = r.Substitute(map[string]any{"m": map[string]any{"k": in}})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got := out["m"].(map[string]any)["k"].(string)
		if strings.Contains(got, "{{") || strings.Contains(got, "secrets."+n+"}") {
			t.Fatalf("%q: placeholder left in %q", in, got)
		}
		if exp := lit + "<" + n + ">" + lit + "<" + n + ">" + lit; got != exp {
			t.Fatalf("%q: got %q want %q", in, got, exp)
		}
	})
}
