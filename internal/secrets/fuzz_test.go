package secrets

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// placeholderRE and nameRE are the patterns the scanners implement
// (Camunda's placeholder pattern and the secret name syntax): the reference
// against which Substitute and validName are checked.
var (
	placeholderRE = regexp.MustCompile(`\{\{\s*secrets\.([^\s{}]*)\s*\}\}`)
	nameRE        = regexp.MustCompile(`^[A-Za-z0-9_]+([.-][A-Za-z0-9_]+)*$`)
)

func reference(in string, value func(string) (string, bool)) (string, bool) {
	ok := true
	out := placeholderRE.ReplaceAllStringFunc(in, func(m string) string {
		v, found := value(placeholderRE.FindStringSubmatch(m)[1])
		ok = ok && found
		return v
	})
	return out, ok
}

func fuzzValue(name string) (string, bool) {
	if !nameRE.MatchString(name) {
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
		{"{{secrets.a..b}} {{secrets.-a}}", "a-"},
		{"{{ secrets.__x__ }}{{secrets.a.b-c_d}}", "a.b-c_d"},
		{"{{secrets.x/y}}", "."},
	} {
		f.Add(seed[0], seed[1])
	}
	r := New(Config{LookupEnv: func(k string) (string, bool) {
		return fuzzValue(strings.TrimPrefix(k, DefaultEnvPrefix))
	}})
	f.Fuzz(func(t *testing.T, raw, name string) {
		if validName(name) != nameRE.MatchString(name) {
			t.Fatalf("validName(%q) = %v, the pattern says %v", name, validName(name), nameRE.MatchString(name))
		}
		if validName(raw) != nameRE.MatchString(raw) {
			t.Fatalf("validName(%q) = %v, the pattern says %v", raw, validName(raw), nameRE.MatchString(raw))
		}
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
