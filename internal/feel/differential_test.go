package feel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The oracle script: reads [{expr, vars}] on stdin, writes [{ok, value, kind}] on stdout.
// Values that are not plain JSON (dates, durations, functions) are reported as kind
// "other" and skipped by the comparison.
const feelinScript = `
import { evaluate } from 'feelin';
import { readFileSync } from 'node:fs';
const cases = JSON.parse(readFileSync(0, 'utf8'));
function plain(v, depth) {
  if (depth > 50) throw new Error('deep');
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') { if (!isFinite(v)) throw new Error('nonfinite'); return v; }
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(x => plain(x, depth + 1));
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const o = {};
    for (const k of Object.keys(v)) o[k] = plain(v[k], depth + 1);
    return o;
  }
  throw new Error('other');
}
const out = cases.map(c => {
  try {
    const r = evaluate(c.expr, c.vars);
    const v = (r && typeof r === 'object' && 'value' in r && 'warnings' in r) ? r.value : r;
    return { ok: true, value: plain(v, 0) };
  } catch (e) {
    return { ok: false, kind: String(e && e.message || e) };
  }
});
process.stdout.write(JSON.stringify(out));
`

func findFeelin(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; skipping the feelin differential test")
	}
	dir = os.Getenv("FEELIN_DIR")
	if dir == "" {
		wd, _ := os.Getwd()
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "tools", "js", "node_modules", "feelin")
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if dir == "" {
		t.Skip("repository root not found; set FEELIN_DIR")
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		t.Skipf("feelin not installed at %s (run npm ci in tools/js or set FEELIN_DIR); skipping", dir)
	}
	return node, dir
}

type diffCase struct {
	Expr string         `json:"expr"`
	Vars map[string]any `json:"vars"`
}

type diffResult struct {
	OK    bool   `json:"ok"`
	Value any    `json:"value"`
	Kind  string `json:"kind"`
}

func graphContexts() []map[string]any {
	msgs := func(n int) []any {
		imp := []string{"low", "normal", "high"}
		out := []any{}
		for i := 1; i <= n; i++ {
			out = append(out, map[string]any{
				"id":               fmt.Sprintf("AAMk%03d", i),
				"subject":          fmt.Sprintf("Invoice %d", i*7%13),
				"isRead":           i%3 == 0,
				"importance":       imp[i%3],
				"hasAttachments":   i%4 == 1,
				"receivedDateTime": fmt.Sprintf("2024-03-%02dT%02d:15:00Z", i%28+1, i%24),
				"from": map[string]any{"emailAddress": map[string]any{
					"name": fmt.Sprintf("Sender %d", i%4), "address": fmt.Sprintf("sender%d@contoso.com", i%4)}},
				"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "me@contoso.com"}}},
				"categories":   []any{"Blue", fmt.Sprintf("Cat%d", i%2)},
			})
		}
		return out
	}
	folders := []any{
		map[string]any{"id": "f1", "displayName": "Inbox", "totalItemCount": 120, "unreadItemCount": 7, "childFolderCount": 2},
		map[string]any{"id": "f2", "displayName": "Archive", "totalItemCount": 3400, "unreadItemCount": 0, "childFolderCount": 0},
		map[string]any{"id": "f3", "displayName": "Sent Items", "totalItemCount": 88, "unreadItemCount": 1, "childFolderCount": 0},
	}
	return []map[string]any{
		{"status": 200, "body": map[string]any{"value": msgs(6), "@odata.nextLink": "https://graph.microsoft.com/v1.0/me/messages?$skip=6"}},
		{"status": 200, "body": map[string]any{"value": msgs(1)}},
		{"status": 200, "body": map[string]any{"value": []any{}}},
		{"status": 200, "body": map[string]any{"value": folders}},
		{"status": 404, "body": map[string]any{"error": map[string]any{"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}}},
		{"status": 429, "body": map[string]any{"error": map[string]any{"code": "TooManyRequests", "message": "Application is over its MailboxConcurrency limit."}}, "retryAfter": 7},
	}
}

// Left out on purpose, because feelin differs from Camunda's engine there: "is defined"
// (a Camunda extension feelin lacks), "item" and bare boolean names in filters, sort without a precedes
// function, null arguments to concatenate/sublist, and descending ranges such as 1..0.
var diffTemplates = []string{
	`body.value`,
	`body.value.subject`,
	`body.value.id`,
	`body.value[1]`,
	`body.value[1].subject`,
	`body.value[-1].id`,
	`body.value[2].from.emailAddress.address`,
	`body.value[isRead = false]`,
	`body.value[isRead = false].subject`,
	`body.value[importance = "high"].id`,
	`body.value[importance != "low" and hasAttachments].id`,
	`body.value[from.emailAddress.address = "sender1@contoso.com"].subject`,
	`body.value.from.emailAddress.name`,
	`count(body.value)`,
	`count(body.value[isRead = false])`,
	`count(body.value) > 0`,
	`body.value = null`,
	`body.value != null`,
	`body.error = null`,
	`body.error.code`,
	`body.error.message`,
	`if body.error != null then body.error.code else "ok"`,
	`if status >= 400 then {code: body.error.code, message: body.error.message} else null`,
	`if status = 429 then "retry" else if status = 404 then "missing" else "fine"`,
	`{ids: body.value.id, next: body.` + "`@odata.nextLink`" + `}`,
	`{n: count(body.value), first: body.value[1].subject}`,
	`{"@odata.type": "#microsoft.graph.message", subject: body.value[1].subject}`,
	`{a: count(body.value), b: a * 2, c: b + 1}`,
	`for m in body.value return m.subject`,
	`for i in 1..3 return i * count(body.value)`,
	`sort(body.value.subject, function(a, b) a < b)`,
	`for m in body.value return {id: m.id, read: m.isRead}`,
	`for m in body.value[isRead = false] return upper case(m.subject)`,
	`some m in body.value satisfies m.importance = "high"`,
	`every m in body.value satisfies m.isRead`,
	`some f in body.value satisfies f.unreadItemCount > 5`,
	`body.value[unreadItemCount > 0].displayName`,
	`body.value.displayName`,
	`sum(body.value.totalItemCount)`,
	`sum(body.value.unreadItemCount)`,
	`max(body.value.totalItemCount)`,
	`min(body.value.unreadItemCount)`,
	`body.value[displayName = "Inbox"][1].id`,
	`list contains(body.value.displayName, "Archive")`,
	`string join(body.value.subject, ", ")`,
	`string join(body.value.displayName, "|")`,
	`distinct values(body.value.importance)`,
	`distinct values(body.value.from.emailAddress.address)`,
	`flatten(body.value.categories)`,
	`distinct values(flatten(body.value.categories))`,
	`body.value[1].categories[2]`,
	`reverse(body.value.id)`,
	`append(body.value.id, "extra")`,
	`index of(body.value.importance, "normal")`,
	`get value(body, "status")`,
	`starts with(body.value[1].subject, "Invoice")`,
	`ends with(body.value[1].from.emailAddress.address, "contoso.com")`,
	`contains(body.error.message, "limit")`,
	`substring(body.value[1].subject, 1, 7)`,
	`substring before(body.value[1].from.emailAddress.address, "@")`,
	`substring after(body.value[1].from.emailAddress.address, "@")`,
	`string length(body.value[1].subject)`,
	`upper case(body.error.code)`,
	`lower case(body.value[1].importance)`,
	`matches(body.value[1].id, "^AAMk\\d+$")`,
	`replace(body.value[1].subject, "\\d+", "#")`,
	`split(body.value[1].from.emailAddress.address, "@")`,
	`split(body.value[1].from.emailAddress.address, "@")[2]`,
	`body.value[1].subject + " / " + body.value[1].importance`,
	`"a" + 1`,
	`retryAfter * 1000`,
	`retryAfter + 0.5`,
	`status / 100`,
	`floor(status / 100)`,
	`status between 400 and 499`,
	`status in [200, 201, 204]`,
	`status in [400..499]`,
	`not(body.value[1].isRead)`,
	`body.value[1].isRead and body.value[1].hasAttachments`,
	`body.value[1].isRead or body.value[1].hasAttachments`,
	`missing.deep.path`,
	`missing = null`,
	`sort(body.value, function(x, y) x.subject < y.subject).id`,
	`context put({}, "n", count(body.value))`,
	`context merge({a: 1}, {b: count(body.value)})`,
	`get entries({a: body.value[1].id})`,
	`body.value[1] instance of context`,
	`body.value.subject instance of list`,
	`status instance of number`,
}

func TestDifferentialFeelin(t *testing.T) {
	node, dir := findFeelin(t)
	var cases []diffCase
	for _, ctx := range graphContexts() {
		for _, tpl := range diffTemplates {
			cases = append(cases, diffCase{Expr: tpl, Vars: ctx})
		}
	}
	// Random integer arithmetic and comparisons, deterministic.
	rng := rand.New(rand.NewPCG(1, 2))
	ops := []string{"+", "-", "*", "<", ">", "=", "!=", "<=", ">="}
	for range 120 {
		a, b, c := rng.IntN(200)-100, rng.IntN(200)-100, rng.IntN(50)
		op1, op2 := ops[rng.IntN(3)], ops[rng.IntN(len(ops))]
		cases = append(cases, diffCase{Expr: fmt.Sprintf("(%d %s %d) %s %d", a, op1, b, op2, c), Vars: map[string]any{}})
	}
	// The script must sit next to a node_modules that holds feelin.
	tmp := t.TempDir()
	nm := filepath.Join(tmp, "node_modules")
	if err := os.MkdirAll(nm, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(nm, "feelin")); err != nil {
		t.Fatal(err)
	}
	// feelin's own dependencies live beside it.
	if parent := filepath.Dir(dir); filepath.Base(parent) == "node_modules" {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if e.Name() != "feelin" {
				_ = os.Symlink(filepath.Join(parent, e.Name()), filepath.Join(nm, e.Name()))
			}
		}
	}
	script := filepath.Join(tmp, "oracle.mjs")
	if err := os.WriteFile(script, []byte(feelinScript), 0o644); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(cases)
	cmd := exec.Command(node, script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node oracle failed: %v\n%s", err, stderr.String())
	}
	var results []diffResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("oracle output: %v", err)
	}
	if len(results) != len(cases) {
		t.Fatalf("oracle returned %d results for %d cases", len(results), len(cases))
	}
	agree, skipped := 0, 0
	for i, c := range cases {
		r := results[i]
		if !r.OK {
			skipped++
			continue
		}
		// Our side gets the same variables through a JSON round trip, as the worker does.
		vb, _ := json.Marshal(c.Vars)
		vars := map[string]any{}
		dec := json.NewDecoder(bytes.NewReader(vb))
		dec.UseNumber()
		_ = dec.Decode(&vars)
		ex, err := Compile(c.Expr)
		if err != nil {
			t.Errorf("%s: compile: %v", c.Expr, err)
			continue
		}
		v, err := ex.Eval(vars)
		if err != nil {
			t.Errorf("%s: eval: %v", c.Expr, err)
			continue
		}
		got, err := ToJSON(v)
		if err != nil {
			skipped++ // functions, ranges
			continue
		}
		gb, _ := json.Marshal(got)
		var ours any
		_ = json.Unmarshal(gb, &ours)
		switch sameJSON(ours, r.Value) {
		case cmpEqual:
			agree++
		case cmpPrecision:
			skipped++
		default:
			t.Errorf("%s\n  vars   %s\n  ours   %s\n  feelin %s", c.Expr, truncate(string(vb), 200), gb, mustMarshal(r.Value))
		}
	}
	t.Logf("differential vs feelin: %d cases, %d agree, %d skipped (oracle error, non-JSON value or float precision)", len(cases), agree, skipped)
	if agree < len(cases)*3/4 {
		t.Errorf("only %d of %d cases compared", agree, len(cases))
	}
}

type cmpResult int

const (
	cmpEqual cmpResult = iota
	cmpPrecision
	cmpDiffer
)

// sameJSON compares decoded JSON; numbers that differ only in the last float digits are
// reported as a precision difference (feelin computes in binary floating point).
func sameJSON(a, b any) cmpResult {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return cmpDiffer
		}
		if x == y {
			return cmpEqual
		}
		if math.Abs(x-y) <= 1e-9*math.Max(1, math.Max(math.Abs(x), math.Abs(y))) {
			return cmpPrecision
		}
		return cmpDiffer
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return cmpDiffer
		}
		res := cmpEqual
		for i := range x {
			r := sameJSON(x[i], y[i])
			if r == cmpDiffer {
				return r
			}
			res = max(res, r)
		}
		return res
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return cmpDiffer
		}
		res := cmpEqual
		for k := range x {
			r := sameJSON(x[k], y[k])
			if r == cmpDiffer {
				return r
			}
			res = max(res, r)
		}
		return res
	}
	if a == b {
		return cmpEqual
	}
	return cmpDiffer
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
