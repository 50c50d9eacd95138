package secrets

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustConnErr(t *testing.T, err error, code string) *connerr.Error {
	t.Helper()
	var ce *connerr.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *connerr.Error %s, got %v", code, err)
	}
	if ce.Code != code || !ce.Final {
		t.Fatalf("want final %s, got %+v", code, ce)
	}
	return ce
}

func TestSubstituteDeep(t *testing.T) {
	red := &redact.Set{}
	r := New(Config{LookupEnv: envOf(map[string]string{
		"SECRET_CLIENT_SECRET": "s3cr3t-value",
		"SECRET_TENANT":        "contoso",
		"SECRET_a.b-c_d":       "dotted",
	}), Redactor: red})

	in := map[string]any{
		"authentication": map[string]any{
			"type":               "oauth-client-credentials-flow",
			"clientSecret":       "{{secrets.CLIENT_SECRET}}",
			"oauthTokenEndpoint": "https://login.microsoftonline.com/{{ secrets.TENANT }}/oauth2/v2.0/token",
		},
		"message": map[string]any{
			"toRecipients": []any{"a@b.c", map[string]any{"address": "{{secrets.a.b-c_d}}@x.y"}},
			"subject":      "tenant {{secrets.TENANT}} / {{secrets.TENANT}}",
			"count":        json.Number("3"),
			"flag":         true,
			"nothing":      nil,
		},
		"untouched":          map[string]any{"k": "no placeholder {{ but braces }}"},
		"{{secrets.TENANT}}": "keys are not substituted",
	}
	before, _ := json.Marshal(in)

	out, err := r.Substitute(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"authentication": map[string]any{
			"type":               "oauth-client-credentials-flow",
			"clientSecret":       "s3cr3t-value",
			"oauthTokenEndpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
		},
		"message": map[string]any{
			"toRecipients": []any{"a@b.c", map[string]any{"address": "dotted@x.y"}},
			"subject":      "tenant contoso / contoso",
			"count":        json.Number("3"),
			"flag":         true,
			"nothing":      nil,
		},
		"untouched":          map[string]any{"k": "no placeholder {{ but braces }}"},
		"{{secrets.TENANT}}": "keys are not substituted",
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got  %#v\nwant %#v", out, want)
	}
	after, _ := json.Marshal(in)
	if string(before) != string(after) {
		t.Fatal("Substitute modified its input")
	}
	for _, v := range []string{"s3cr3t-value", "contoso", "dotted"} {
		if !red.Contains(v) {
			t.Errorf("redactor does not know %q", v)
		}
	}
	// Copy on write: the subtree without placeholders is shared, the
	// changed ones are new.
	if reflect.ValueOf(out["untouched"]).Pointer() != reflect.ValueOf(in["untouched"]).Pointer() {
		t.Error("unchanged subtree was copied")
	}
	if reflect.ValueOf(out["authentication"]).Pointer() == reflect.ValueOf(in["authentication"]).Pointer() {
		t.Error("changed subtree shares the input map")
	}
}

func TestNoPlaceholderReturnsInput(t *testing.T) {
	r := New(Config{LookupEnv: envOf(nil)})
	in := map[string]any{"a": []any{"x", map[string]any{"b": "y"}}, "n": 1.5}
	out, err := r.Substitute(in)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(out).Pointer() != reflect.ValueOf(in).Pointer() {
		t.Fatal("variables without placeholders were copied")
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = r.Substitute(in) })
	if allocs > 0 {
		t.Fatalf("fast path allocates %v times", allocs)
	}
	if out, err := r.Substitute(nil); out != nil || err != nil {
		t.Fatalf("nil: %v %v", out, err)
	}
}

func TestJSONRoundTripEscaping(t *testing.T) {
	tricky := `pa"ss\word` + "\n\t\u2028</script>"
	r := New(Config{LookupEnv: envOf(map[string]string{"SECRET_X": tricky})})
	var in map[string]any
	if err := json.Unmarshal([]byte(`{"authentication":{"clientSecret":"{{secrets.X}}","wrapped":"<{{secrets.X}}>"}}`), &in); err != nil {
		t.Fatal(err)
	}
	out, err := r.Substitute(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("result is not valid JSON: %v\n%s", err, b)
	}
	auth := back["authentication"].(map[string]any)
	if auth["clientSecret"] != tricky || auth["wrapped"] != "<"+tricky+">" {
		t.Fatalf("round trip changed the value: %q", auth)
	}
	if len(back) != 1 || len(auth) != 2 {
		t.Fatalf("value broke out of its string: %s", b)
	}
}

func TestMissingSecret(t *testing.T) {
	red := &redact.Set{}
	r := New(Config{LookupEnv: envOf(map[string]string{"SECRET_KNOWN": "known-value", "OTHER": "x"}), Redactor: red})
	_, err := r.Substitute(map[string]any{
		"authentication": map[string]any{"clientSecret": "{{secrets.MISSING}}", "clientId": "{{secrets.KNOWN}}"},
		"message":        map[string]any{"toRecipients": []any{"{{ secrets.ALSO_MISSING }}"}},
	})
	ce := mustConnErr(t, err, connerr.CodeSecretNotFound)
	if ce.Type != connerr.TypeInput || !ce.Final {
		t.Errorf("a missing secret is a final ConnectorInputException, as in Camunda's runtime; got type %q, final %v", ce.Type, ce.Final)
	}
	for _, want := range []string{`"MISSING"`, "authentication.clientSecret", `"ALSO_MISSING"`, "message.toRecipients[0]", "SECRET_MISSING"} {
		if !strings.Contains(ce.Message, want) {
			t.Errorf("message %q lacks %q", ce.Message, want)
		}
	}
	if strings.Contains(ce.Message, "known-value") {
		t.Error("message carries a secret value")
	}

	// The prefix keeps other environment variables out of reach.
	_, err = r.Substitute(map[string]any{"a": "{{secrets.OTHER}}"})
	mustConnErr(t, err, connerr.CodeSecretNotFound)
}

func TestCustomPrefix(t *testing.T) {
	r := New(Config{EnvPrefix: "MY_", LookupEnv: envOf(map[string]string{"MY_A": "va", "SECRET_A": "wrong"})})
	out, err := r.Substitute(map[string]any{"a": "{{secrets.A}}"})
	if err != nil || out["a"] != "va" {
		t.Fatalf("%v %v", out, err)
	}
}

func TestFileProvider(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	write := func(p, v string) {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "LF"), "lf-value\n")
	write(filepath.Join(dir, "CRLF"), "crlf-value\r\n")
	write(filepath.Join(dir, "PLAIN"), "plain value")
	write(filepath.Join(dir, "ENVWINS"), "from-file")
	write(filepath.Join(outside, "stolen"), "outside-value")
	write(filepath.Join(dir, ".hidden"), "hidden-value")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "sub", "x"), "sub-value")
	// Kubernetes mounts: NAME -> ..data/NAME -> ..2025_01_01/NAME.
	if err := os.MkdirAll(filepath.Join(dir, "..2025_01_01"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "..2025_01_01", "K8S"), "k8s-value\n")
	if err := os.Symlink("..2025_01_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "K8S"), filepath.Join(dir, "K8S")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "stolen"), filepath.Join(dir, "ESCAPE")); err != nil {
		t.Fatal(err)
	}

	r := New(Config{Dir: dir, LookupEnv: envOf(map[string]string{"SECRET_ENVWINS": "from-env"})})
	out, err := r.Substitute(map[string]any{
		"lf": "{{secrets.LF}}", "crlf": "{{secrets.CRLF}}", "plain": "{{secrets.PLAIN}}",
		"env": "{{secrets.ENVWINS}}", "k8s": "{{secrets.K8S}}",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"lf": "lf-value", "crlf": "crlf-value", "plain": "plain value", "env": "from-env", "k8s": "k8s-value"}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %v", out)
	}

	refused := []string{
		"ESCAPE", "..", "../" + filepath.Base(outside) + "/stolen", ".hidden", "sub/x", "sub", "..data", "a..b", "-x", "x.", "",
	}
	for _, name := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := r.Substitute(map[string]any{"v": "{{secrets." + name + "}}"})
			ce := mustConnErr(t, err, connerr.CodeSecretNotFound)
			for _, leaked := range []string{"outside-value", "hidden-value", "sub-value", dir} {
				if strings.Contains(ce.Message, leaked) {
					t.Fatalf("message leaks %q: %s", leaked, ce.Message)
				}
			}
			if !strings.Contains(ce.Message, `"`+name+`"`) {
				t.Fatalf("message does not name %q: %s", name, ce.Message)
			}
		})
	}
}

func TestSecretValuesAreNotExpanded(t *testing.T) {
	r := New(Config{LookupEnv: envOf(map[string]string{"SECRET_A": "{{secrets.B}}", "SECRET_B": "b-value"})})
	out, err := r.Substitute(map[string]any{"v": "{{secrets.A}}"})
	if err != nil || out["v"] != "{{secrets.B}}" {
		t.Fatalf("%v %v", out, err)
	}
}

func TestMalformedPlaceholdersStay(t *testing.T) {
	r := New(Config{LookupEnv: envOf(map[string]string{"SECRET_A": "x"})})
	for _, s := range []string{"{{secrets.A", "{secrets.A}", "{{ secret.A }}", "{{secrets.A B}}", "secrets.A", "{{SECRETS.A}}"} {
		out, err := r.Substitute(map[string]any{"v": s})
		if err != nil || out["v"] != s {
			t.Errorf("%q became %v, %v", s, out["v"], err)
		}
	}
}

func BenchmarkSubstituteNoPlaceholder(b *testing.B) {
	r := New(Config{LookupEnv: envOf(nil)})
	vars := map[string]any{
		"authentication": map[string]any{"type": "bearer", "token": strings.Repeat("t", 1200)},
		"message":        map[string]any{"subject": "hello", "bodyContent": strings.Repeat("body ", 2000), "toRecipients": []any{"a@b.c", "d@e.f"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Substitute(vars); err != nil {
			b.Fatal(err)
		}
	}
}
