package feel

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

const sampleVars = `{
 "body": {"value": [
   {"id": "m1", "subject": "Hello", "isRead": false, "importance": "high",
    "from": {"emailAddress": {"address": "a@example.com", "name": "A"}},
    "receivedDateTime": "2024-03-01T10:00:00Z"},
   {"id": "m2", "subject": "World", "isRead": true, "importance": "normal",
    "from": {"emailAddress": {"address": "b@example.com", "name": "B"}},
    "receivedDateTime": "2024-03-02T11:30:00Z"},
   {"id": "m3", "subject": "Again", "isRead": false, "importance": "low",
    "from": {"emailAddress": {"address": "a@example.com", "name": "A"}},
    "receivedDateTime": "2024-03-03T09:15:00Z"}
 ], "@odata.nextLink": "https://graph.example/next"},
 "error": {"code": "ErrorItemNotFound", "message": "The specified object was not found."},
 "n": 3.5, "i": 7, "nothing": null, "flag": true, "name": "Ada", "ids": ["a", "b", "c"]
}`

// evalJSON evaluates src and renders the result as JSON text.
func evalJSON(t *testing.T, src string, vars map[string]any, opts ...Option) string {
	t.Helper()
	ex, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	v, err := ex.Eval(vars, opts...)
	if err != nil {
		t.Fatalf("Eval(%q): %v", src, err)
	}
	j, err := ToJSON(v)
	if err != nil {
		t.Fatalf("ToJSON(%q): %v", src, err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEvalFeatures(t *testing.T) {
	vars := mustJSON(t, sampleVars)
	now := time.Date(2024, 3, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct{ src, want string }{
		// literals
		{`42`, `42`},
		{`-1.50`, `-1.5`},
		{`.5`, `0.5`},
		{`1.2e3`, `1200`},
		{`"a\"b\\c\n\u00e9"`, `"a\"b\\c\né"`},
		{`true`, `true`},
		{`null`, `null`},
		{`[1, "x", null]`, `[1,"x",null]`},
		{`[]`, `[]`},
		// decimal arithmetic
		{`0.1 + 0.2`, `0.3`},
		{`0.1 + 0.2 = 0.3`, `true`},
		{`10 / 4`, `2.5`},
		{`1 / 0`, `null`},
		{`2 ** 10`, `1024`},
		{`-3 ** 2`, `9`},
		{`7 - 2 * 3`, `1`},
		{`(7 - 2) * 3`, `15`},
		{`-n`, `-3.5`},
		{`i + n`, `10.5`},
		{`"a" + 1`, `null`},
		{`"foo" + "bar"`, `"foobar"`},
		{`null + 1`, `null`},
		// contexts
		{`{a: 1, "@odata.type": "x", b: a + 1}`, `{"@odata.type":"x","a":1,"b":2}`},
		{`{a: {b: 2}}.a.b`, `2`},
		{`{foo bar: 1}`, `{"foo bar":1}`},
		{`{}`, `{}`},
		// paths
		{`body.value[1].from.emailAddress.address`, `"a@example.com"`},
		{`body.missing.deeper.still`, `null`},
		{`nothing.x`, `null`},
		{`body.value.subject`, `["Hello","World","Again"]`},
		{`body.value.from.emailAddress.name`, `["A","B","A"]`},
		{"body.`@odata.nextLink`", `"https://graph.example/next"`},
		// filters
		{`body.value[isRead = false].subject`, `["Hello","Again"]`},
		{`body.value[item.isRead].id`, `["m2"]`},
		{`body.value[importance = "high" or importance = "low"].id`, `["m1","m3"]`},
		{`body.value[1].id`, `"m1"`},
		{`body.value[-1].id`, `"m3"`},
		{`body.value[0]`, `null`},
		{`body.value[4]`, `null`},
		{`[1, 2, 3, 4][item > 2]`, `[3,4]`},
		{`[1, 2, 3][item > 5]`, `[]`},
		{`ids[2]`, `"b"`},
		{`nothing[1]`, `null`},
		// if / comparisons / null semantics
		{`if n > 3 then "big" else "small"`, `"big"`},
		{`if nothing then 1 else 2`, `2`},
		{`nothing = null`, `true`},
		{`undefinedVar = null`, `true`},
		{`n != null`, `true`},
		{`1 < 2`, `true`},
		{`"a" < "b"`, `true`},
		{`1 < "b"`, `null`},
		{`1 = "1"`, `null`},
		{`[1, 2] = [1, 2]`, `true`},
		{`{a: 1} = {a: 1}`, `true`},
		// three-valued logic
		{`true and null`, `null`},
		{`false and null`, `false`},
		{`true or null`, `true`},
		{`false or null`, `null`},
		{`not(true)`, `false`},
		{`not(null)`, `null`},
		{`not(1)`, `null`},
		// loops and quantifiers
		{`for x in [1, 2, 3] return x * 2`, `[2,4,6]`},
		{`for x in 1..3 return x`, `[1,2,3]`},
		{`for x in 3..1 return x`, `[3,2,1]`},
		{`for x in [1, 2], y in [10, 20] return x + y`, `[11,21,12,22]`},
		{`for m in body.value return m.id`, `["m1","m2","m3"]`},
		{`some m in body.value satisfies m.isRead`, `true`},
		{`every m in body.value satisfies m.isRead`, `false`},
		{`every x in [] satisfies x > 1`, `true`},
		{`some m in body.value satisfies m.nope = 1`, `false`},
		{`some x in nothing satisfies x > 1`, `null`},
		{`count(nothing)`, `null`},
		{`[1..10[ = [1..10)`, `true`},
		{`5 in (null..10]`, `null`},
		{`for d in @"2024-01-30"..@"2024-02-01" return string(d)`, `["2024-01-30","2024-01-31","2024-02-01"]`},
		// between / in / instance of
		{`5 between 1 and 10`, `true`},
		{`5 in [1..5]`, `true`},
		{`5 in [1..5)`, `false`},
		{`5 in (1..5]`, `true`},
		{`"b" in ["a", "b"]`, `true`},
		{`5 in (< 10)`, `true`},
		{`5 in (1, 2, > 4)`, `true`},
		{`5 in >= 6`, `false`},
		{`n instance of number`, `true`},
		{`name instance of string`, `true`},
		{`body instance of context`, `true`},
		{`ids instance of list`, `true`},
		{`nothing instance of Null`, `true`},
		{`flag instance of boolean`, `true`},
		{`@"2024-01-02" instance of date`, `true`},
		{`@"P1D" instance of days and time duration`, `true`},
		{`@"P1Y" instance of years and months duration`, `true`},
		{`date and time("2024-01-02T10:00:00") instance of date and time`, `true`},
		{`n instance of Any`, `true`},
		// functions
		{`(function(a, b) a + b)(1, 2)`, `3`},
		{`{f: function(x) x * 2, r: f(21)}.r`, `42`},
		{`{fact: function(n) if n <= 1 then 1 else n * fact(n - 1), r: fact(5)}.r`, `120`},
		{`substring(string: "abcdef", start position: 2, length: 3)`, `"bcd"`},
		{`substring("abcdef", -2)`, `"ef"`},
		{`is defined(body.value)`, `true`},
		{`is defined(body.nope)`, `false`},
		{`is defined(nothing)`, `true`},
		{`is defined(nope.deeper)`, `false`},
		// built-ins
		{`string(1.50)`, `"1.5"`},
		{`string(true)`, `"true"`},
		{`number("12.5")`, `12.5`},
		{`number("1.000,5", ".", ",")`, `1000.5`},
		{`number("x")`, `null`},
		{`string length("héllo")`, `5`},
		{`upper case(name)`, `"ADA"`},
		{`lower case("ABC")`, `"abc"`},
		{`substring before("foo@bar", "@")`, `"foo"`},
		{`substring after("foo@bar", "@")`, `"bar"`},
		{`contains(error.message, "not found")`, `true`},
		{`starts with(error.code, "Error")`, `true`},
		{`ends with("abc", "bc")`, `true`},
		{`matches("abc123", "^[a-z]+\d+$")`, `true`},
		{`matches("ABC", "abc", "i")`, `true`},
		{`replace("abc", "b", "[$0]")`, `"a[b]c"`},
		{`replace("2024-01-02", "(\d+)-(\d+)-(\d+)", "$3/$2/$1")`, `"02/01/2024"`},
		{`split("a,b,,c", ",")`, `["a","b","","c"]`},
		{`split("Bearer abc", " ")[2]`, `"abc"`},
		{`string join(["a", "b"], ", ")`, `"a, b"`},
		{`string join(["a", null, "b"])`, `"ab"`},
		{`extract("a1b22", "\d+")`, `["1","22"]`},
		{`list contains(ids, "b")`, `true`},
		{`count(body.value)`, `3`},
		{`min([3, 1, 2])`, `1`},
		{`max(3, 1, 2)`, `3`},
		{`sum([1, 2, 3.5])`, `6.5`},
		{`mean([1, 2, 3, 4])`, `2.5`},
		{`median([3, 1, 2, 4])`, `2.5`},
		{`mode([1, 2, 2, 3])`, `[2]`},
		{`product([2, 3])`, `6`},
		{`all([true, true])`, `true`},
		{`any([false, null, true])`, `true`},
		{`sublist([1, 2, 3, 4], 2, 2)`, `[2,3]`},
		{`append([1], 2, 3)`, `[1,2,3]`},
		{`concatenate([1], [2, 3])`, `[1,2,3]`},
		{`insert before([1, 3], 2, 2)`, `[1,2,3]`},
		{`remove([1, 2, 3], 2)`, `[1,3]`},
		{`reverse([1, 2, 3])`, `[3,2,1]`},
		{`index of([1, 2, 1], 1)`, `[1,3]`},
		{`union([1, 2], [2, 3])`, `[1,2,3]`},
		{`distinct values([1, 2, 1])`, `[1,2]`},
		{`flatten([1, [2, [3]]])`, `[1,2,3]`},
		{`sort([3, 1, 2])`, `[1,2,3]`},
		{`sort(body.value, function(a, b) a.subject < b.subject).id`, `["m3","m1","m2"]`},
		{`floor(1.5)`, `1`},
		{`ceiling(1.2)`, `2`},
		{`decimal(1.125, 2)`, `1.12`},
		{`round half up(1.125, 2)`, `1.13`},
		{`abs(-2)`, `2`},
		{`modulo(-12, 5)`, `3`},
		{`sqrt(16)`, `4`},
		{`odd(3)`, `true`},
		{`even(3)`, `false`},
		{`get value({a: 1}, "a")`, `1`},
		{`get entries({a: 1})`, `[{"key":"a","value":1}]`},
		{`context put({a: 1}, "b", 2)`, `{"a":1,"b":2}`},
		{`context merge([{a: 1}, {b: 2}])`, `{"a":1,"b":2}`},
		{`context([{key: "a", value: 1}])`, `{"a":1}`},
		{`get or else(nothing, "d")`, `"d"`},
		// temporal
		{`date("2024-01-02")`, `"2024-01-02"`},
		{`date(2024, 2, 30)`, `null`},
		{`date("2024-01-31") + duration("P1M")`, `"2024-02-29"`},
		{`date and time("2024-01-02T10:00:00Z") + duration("PT1H30M")`, `"2024-01-02T11:30:00Z"`},
		{`date and time(body.value[2].receivedDateTime) - date and time(body.value[1].receivedDateTime)`, `"P1DT1H30M"`},
		{`date and time("2024-03-01T10:00:00Z") < date and time("2024-03-01T11:00:00+01:00")`, `false`},
		{`duration("P1Y2M")`, `"P1Y2M"`},
		{`duration("PT90S")`, `"PT1M30S"`},
		{`duration("P1D") * 2`, `"P2D"`},
		{`years and months duration(date("2020-01-15"), date("2021-03-14"))`, `"P1Y1M"`},
		// The time of day does not count, only the dates.
		{`years and months duration(date and time("2014-12-31T23:59:59"), date and time("2016-12-31T00:00:01"))`, `"P2Y"`},
		{`years and months duration(date and time("2016-12-31T00:00:01"), date and time("2014-12-31T23:59:59"))`, `"-P2Y"`},
		{`time("10:30:00") + duration("PT45M")`, `"11:15:00"`},
		{`date("2024-03-04").weekday`, `1`},
		{`day of week(date("2024-03-04"))`, `"Monday"`},
		{`month of year(date("2024-03-04"))`, `"March"`},
		{`day of year(date("2024-02-01"))`, `32`},
		{`week of year(date("2024-01-01"))`, `1`},
		{`now()`, `"2024-03-04T12:00:00Z"`},
		{`now() - duration("P1D") < now()`, `true`},
		{`today()`, `"2024-03-04"`},
		{`@"2024-01-02T10:00:00@Europe/Paris"`, `"2024-01-02T10:00:00@Europe/Paris"`},
		{`string(@"PT1M")`, `"PT1M"`},
		// comments and multi-line
		{"1 + // one\n 2 /* two */", `3`},
		// connector-style
		{`{messages: for m in body.value[isRead = false] return {id: m.id, subject: m.subject}, next: body.` + "`@odata.nextLink`" + `}`,
			`{"messages":[{"id":"m1","subject":"Hello"},{"id":"m3","subject":"Again"}],"next":"https://graph.example/next"}`},
		{`if error.code = "ErrorItemNotFound" then {code: "NOT_FOUND", message: error.message} else null`,
			`{"code":"NOT_FOUND","message":"The specified object was not found."}`},
		{`{n: count(body.value[isRead = false])}`, `{"n":2}`},
	}
	for _, c := range cases {
		if got := evalJSON(t, c.src, vars, WithNow(now)); got != c.want {
			t.Errorf("%s\n got  %s\n want %s", c.src, got, c.want)
		}
	}
}

func TestContextKeepsOrder(t *testing.T) {
	ex, err := Compile(`{z: 1, a: 2, m: 3}`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ex.Eval(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := v.(*Context)
	if !ok {
		t.Fatalf("got %T", v)
	}
	if got := strings.Join(c.Keys(), ","); got != "z,a,m" {
		t.Errorf("keys %s", got)
	}
}

func TestRawCallerValues(t *testing.T) {
	vars := map[string]any{
		"f": 0.1, "i": 3, "i64": int64(4), "num": json.Number("2.50"),
		"list": []any{1, 2.5, json.Number("3")}, "strs": []string{"a", "b"},
	}
	cases := []struct{ src, want string }{
		{`f + 0.2`, `0.3`},
		{`i + i64`, `7`},
		{`num * 2`, `5`},
		{`sum(list)`, `6.5`},
		{`strs[2]`, `"b"`},
		{`count(strs)`, `2`},
	}
	for _, c := range cases {
		if got := evalJSON(t, c.src, vars); got != c.want {
			t.Errorf("%s: got %s want %s", c.src, got, c.want)
		}
	}
}

func TestWithFunction(t *testing.T) {
	var gotArgs []Value
	bpmnError := WithFunction("bpmnError", []string{"code", "message", "variables"}, func(args []Value) (Value, error) {
		gotArgs = args
		return map[string]any{"code": args[0], "message": args[1]}, nil
	})
	got := evalJSON(t, `bpmnError("E1", "boom")`, nil, bpmnError)
	if got != `{"code":"E1","message":"boom"}` {
		t.Errorf("got %s", got)
	}
	if len(gotArgs) != 3 || gotArgs[2] != nil {
		t.Errorf("missing args should be nil, got %#v", gotArgs)
	}
	got = evalJSON(t, `bpmnError(message: "m", code: "c")`, nil, bpmnError)
	if got != `{"code":"c","message":"m"}` {
		t.Errorf("named: got %s", got)
	}
	spaced := WithFunction("job error", []string{"message"}, func(args []Value) (Value, error) {
		return "job:" + args[0].(string), nil
	})
	if got := evalJSON(t, `job error("x")`, nil, spaced); got != `"job:x"` {
		t.Errorf("spaced name: got %s", got)
	}
	boom := errors.New("boom")
	failing := WithFunction("fail", nil, func(args []Value) (Value, error) { return nil, boom })
	ex, _ := Compile(`{a: fail()}`)
	if _, err := ex.Eval(nil, failing); !errors.Is(err, boom) {
		t.Errorf("want the function's error, got %v", err)
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		src       string
		line, col int
		msg       string
	}{
		{`if x then 1`, 1, 12, `expected "else", found end of input`},
		{`if x else 1`, 1, 6, `expected "then", found "else"`},
		{"{\n  a: 1,\n  b: )\n}", 3, 6, `unexpected ")"`},
		{`[1, 2`, 1, 6, `expected "]", found end of input`},
		{`"abc`, 1, 1, `unterminated string`},
		{`1 + `, 1, 5, `unexpected end of input`},
		{`a ! b`, 1, 3, `unexpected "!" after the end of the expression`},
		{`{a: 1, a: 2}`, 1, 8, `duplicate context key "a"`},
		{`@"nope"`, 1, 1, `invalid temporal literal`},
		{`f(x`, 1, 4, `expected ")", found end of input`},
	}
	for _, c := range cases {
		_, err := Compile(c.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: want *SyntaxError, got %v", c.src, err)
			continue
		}
		if se.Line != c.line || se.Col != c.col || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("%q: got %d:%d %q, want %d:%d %q", c.src, se.Line, se.Col, se.Msg, c.line, c.col, c.msg)
		}
		if !strings.HasPrefix(se.Error(), "line ") {
			t.Errorf("%q: Error() = %q", c.src, se.Error())
		}
	}
}

func TestLimits(t *testing.T) {
	deep := strings.Repeat("(", 10000) + "1" + strings.Repeat(")", 10000)
	if _, err := Compile(deep); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("deep nesting: %v", err)
	}
	deepList := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	if _, err := Compile(deepList); err == nil {
		t.Error("deep list nesting should fail")
	}
	long := strings.Repeat("1+", maxSourceLen)
	if _, err := Compile(long); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Errorf("long source: %v", err)
	}
	for _, src := range []string{
		`for x in 1..1000000000 return x`,
		`count(for x in 1..100000, y in 1..100000 return 1)`,
		`{f: function(n) f(n + 1)}.f(1)`,
		`some x in 1..10000, y in 1..10000, z in 1..10000 satisfies false`,
	} {
		ex, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		var le *LimitError
		if _, err := ex.Eval(nil); !errors.As(err, &le) {
			t.Errorf("%s: want a LimitError, got %v", src, err)
		}
	}
	ex, _ := Compile(`for i in 1..30 return s`)
	// Doubling a string past the size limit must stop with an error, not exhaust memory.
	ex2, _ := Compile(`{a: s + s + s + s + s + s + s + s}.a`)
	big := strings.Repeat("x", maxStringLen/4)
	if _, err := ex2.Eval(map[string]any{"s": big}); err == nil {
		t.Error("string limit not enforced")
	}
	if _, err := ex.Eval(map[string]any{"s": "x"}); err != nil {
		t.Error(err)
	}
}

func TestToJSONAndDuration(t *testing.T) {
	ex, _ := Compile(`{d: @"PT1M", ym: @"P1Y2M", date: @"2024-01-02", n: 1.10, l: [true]}`)
	v, _ := ex.Eval(nil)
	j, err := ToJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	m := j.(map[string]any)
	if m["d"] != "PT1M" || m["ym"] != "P1Y2M" || m["date"] != "2024-01-02" || m["n"] != json.Number("1.1") {
		t.Errorf("ToJSON: %#v", m)
	}
	fn, _ := Compile(`function(x) x`)
	fv, _ := fn.Eval(nil)
	if _, err := ToJSON(fv); err == nil {
		t.Error("function must not convert to JSON")
	}
	rg, _ := Compile(`[1..2]`)
	rv, _ := rg.Eval(nil)
	if _, err := ToJSON(rv); err == nil {
		t.Error("range must not convert to JSON")
	}
	dv, _ := Compile(`duration("PT1M30S")`)
	d, _ := dv.Eval(nil)
	if got, ok := AsDuration(d); !ok || got != 90*time.Second {
		t.Errorf("AsDuration: %v %v", got, ok)
	}
	if _, ok := AsDuration("PT1M"); ok {
		t.Error("AsDuration of a string")
	}
}

func TestConcurrentEval(t *testing.T) {
	ex, err := Compile(`{ids: body.value[isRead = false].id, n: count(body.value), s: sum(for m in body.value return 1)}`)
	if err != nil {
		t.Fatal(err)
	}
	vars := mustJSON(t, sampleVars)
	var wg sync.WaitGroup
	results := make([]string, 8)
	for g := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				v, err := ex.Eval(vars)
				if err != nil {
					t.Error(err)
					return
				}
				j, _ := ToJSON(v)
				b, _ := json.Marshal(j)
				results[g] = string(b)
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r != `{"ids":["m1","m3"],"n":3,"s":3}` {
			t.Errorf("got %s", r)
		}
	}
	if ex.String() == "" {
		t.Error("String() empty")
	}
}
