package feel

import (
	"errors"
	"testing"
)

// FuzzCompileEval checks that no input panics and that evaluation stays within its
// limits: an error, if any, is a SyntaxError from Compile or a LimitError from Eval.
func FuzzCompileEval(f *testing.F) {
	seeds := []string{
		`split(request.headers.authorization, " ")[2]`,
		`{"data":{"projects":[ projectId ], "name": taskName, "parent": if parentTaskId = null then null else parentTaskId}}`,
		`if is defined(internal_organization) and internal_organization != null then {"Content-Type":"application/json"} else {}`,
		`={label: if (x = null or x = "") then "default" else x, baseName: "camunda::", definitionType: baseName + label}.definitionType`,
		`{"inputs": for id in batchReadIds return { id: id }}`,
		`{ "variables": [a, b, c], "result": variables[item != null][1] }.result`,
		`context merge({"message": m}, if sha != null and sha != "" then {"sha": sha} else {})`,
		"request.body.id + (if is defined(request.headers.`x-token`) then (\"-\" + request.headers.`x-token`) else \"\")",
		`body.value[isRead = false].subject`,
		`some m in body.value satisfies m.importance = "high"`,
		`for x in 1..1000000000 return x`,
		`date and time("2024-01-02T10:00:00Z") + duration("P1DT2H")`,
		`sum(for x in [1, 2.5, -3] return x ** 2) / count([1,2])`,
		`[1..10) = ]0..10[`,
		`x instance of list<context<a: number>>`,
		`{f: function(n) if n = 0 then 0 else f(n - 1)}.f(50)`,
		`replace("abc", "(b)", "[$1]", "i")`,
		`5 in (< 10, > 20)`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	vars := map[string]any{
		"body": map[string]any{"value": []any{
			map[string]any{"subject": "a", "isRead": false, "importance": "high"},
			map[string]any{"subject": "b", "isRead": true, "importance": "low"},
		}},
		"request": map[string]any{"headers": map[string]any{"authorization": "Bearer t"}},
		"x":       []any{1, 2.5, "s", nil},
		"n":       7,
	}
	f.Fuzz(func(t *testing.T, src string) {
		ex, err := Compile(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile error of type %T: %v", err, err)
			}
			return
		}
		v, err := ex.Eval(vars)
		if err != nil {
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("Eval error of type %T: %v", err, err)
			}
			return
		}
		_, _ = ToJSON(v)
		_ = toString(v)
	})
}
