package feel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

// Resource limits of one evaluation. They keep a hostile or mistaken expression from
// tying up a worker; exceeding one is an error, not null.
const (
	maxSteps     = 1_000_000
	maxListLen   = 1_000_000
	maxStringLen = 16 << 20
	maxCallDepth = 256
)

// LimitError reports a resource limit exceeded during evaluation.
type LimitError struct{ What string }

func (e *LimitError) Error() string { return "feel: " + e.What }

var errSteps = &LimitError{What: fmt.Sprintf("evaluation exceeded %d steps", maxSteps)}

type state struct {
	steps int
	depth int
	vars  map[string]any
	opts  *evalOptions
}

func (s *state) step() error {
	s.steps++
	if s.steps > maxSteps {
		return errSteps
	}
	return nil
}

// spend charges n steps at once (for loops that do work outside node evaluation).
func (s *state) spend(n int) error {
	s.steps += n
	if s.steps > maxSteps {
		return errSteps
	}
	return nil
}

func checkList(n int) error {
	if n > maxListLen {
		return &LimitError{What: fmt.Sprintf("list longer than %d elements", maxListLen)}
	}
	return nil
}

func checkString(n int) error {
	if n > maxStringLen {
		return &LimitError{What: fmt.Sprintf("string longer than %d bytes", maxStringLen)}
	}
	return nil
}

// env is a chain of scopes: single bindings, or a context whose entries are visible.
type env struct {
	parent *env
	name   string
	val    Value
	ctx    Value // when non-nil, this frame exposes the entries of ctx
}

func (e *env) bind(name string, v Value) *env { return &env{parent: e, name: name, val: v} }

func (e *env) withContext(c Value) *env { return &env{parent: e, ctx: c} }

func (s *state) lookup(e *env, name string) (Value, bool) {
	for f := e; f != nil; f = f.parent {
		if f.ctx != nil {
			if v, ok := ctxGet(f.ctx, name); ok {
				return v, true
			}
		} else if f.name == name {
			return f.val, true
		}
	}
	if v, ok := s.vars[name]; ok {
		return norm(v), true
	}
	if f := s.function(name); f != nil {
		return f, true
	}
	return nil, false
}

func (s *state) function(name string) *Function {
	if s.opts != nil {
		if f, ok := s.opts.funcs[name]; ok {
			return f
		}
	}
	if f, ok := builtins[name]; ok {
		return f
	}
	return nil
}

func (n *constLit) eval(s *state, e *env) (Value, error) { return n.v, nil }

func (n *nameRef) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	v, _ := s.lookup(e, n.name)
	return v, nil
}

func (n *pathExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	base, err := n.base.eval(s, e)
	if err != nil {
		return nil, err
	}
	v, _, err := s.member(base, n.name)
	return v, err
}

// member reads base.name: a context entry, a property of a temporal value, or a
// projection over a list.
func (s *state) member(base Value, name string) (Value, bool, error) {
	switch b := base.(type) {
	case *Context, map[string]any:
		v, ok := ctxGet(b, name)
		return v, ok, nil
	case []any:
		if err := s.spend(len(b)); err != nil {
			return nil, false, err
		}
		out := make([]any, len(b))
		for i, it := range b {
			v, _, err := s.member(norm(it), name)
			if err != nil {
				return nil, false, err
			}
			out[i] = v
		}
		return out, true, nil
	case *Range:
		switch name {
		case "start":
			return b.Start, true, nil
		case "end":
			return b.End, true, nil
		case "start included":
			return b.StartIncl, true, nil
		case "end included":
			return b.EndIncl, true, nil
		}
		return nil, false, nil
	}
	v, ok := temporalProperty(base, name)
	return v, ok, nil
}

func (n *filterExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	base, err := n.base.eval(s, e)
	if err != nil {
		return nil, err
	}
	if base == nil {
		return nil, nil
	}
	list, isList := base.([]any)
	if !isList {
		list = []any{base}
	}
	scope := func(it Value) *env {
		ie := e.bind("item", it)
		if isContext(it) {
			ie = ie.withContext(it)
		}
		return ie
	}
	if len(list) == 0 {
		c, err := n.cond.eval(s, e)
		if err != nil {
			return nil, err
		}
		if _, ok := c.(*apd.Decimal); ok {
			return nil, nil
		}
		return []any{}, nil
	}
	first, err := n.cond.eval(s, scope(norm(list[0])))
	if err != nil {
		return nil, err
	}
	if d, ok := first.(*apd.Decimal); ok {
		v := index(list, d)
		return v, nil
	}
	out := make([]any, 0, len(list))
	for i, it := range list {
		itv := norm(it)
		c := first
		if i > 0 {
			c, err = n.cond.eval(s, scope(itv))
			if err != nil {
				return nil, err
			}
		}
		if c == true {
			out = append(out, itv)
		}
	}
	return out, nil
}

// index implements list[n]: 1-based, negative counts from the end, otherwise null.
func index(list []any, d *apd.Decimal) Value {
	i, err := d.Int64()
	if err != nil {
		var r apd.Decimal
		if _, err := decCtx.RoundToIntegralExact(&r, d); err != nil {
			return nil
		}
		if r.Cmp(d) != 0 {
			return nil
		}
		i, err = r.Int64()
		if err != nil {
			return nil
		}
	}
	n := int64(len(list))
	switch {
	case i > 0 && i <= n:
		return norm(list[i-1])
	case i < 0 && -i <= n:
		return norm(list[n+i])
	}
	return nil
}

func (n *callExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	var fn *Function
	if n.name != "" {
		v, _ := s.lookup(e, n.name)
		fn, _ = v.(*Function)
	} else {
		v, err := n.fn.eval(s, e)
		if err != nil {
			return nil, err
		}
		fn, _ = v.(*Function)
	}
	if fn == nil {
		// Still evaluate the arguments so resource limits apply uniformly.
		for _, a := range n.args {
			if _, err := a.eval(s, e); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	args := make([]Value, len(n.args))
	for i, a := range n.args {
		v, err := a.eval(s, e)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	if n.names != nil {
		var ok bool
		args, ok = bindNamed(fn, n.names, args)
		if !ok {
			return nil, nil
		}
	}
	return s.call(fn, args)
}

// bindNamed orders named arguments by the function's parameter names.
func bindNamed(fn *Function, names []string, args []Value) ([]Value, bool) {
	sets := append([][]string{fn.params}, fn.alt...)
	for _, params := range sets {
		out := make([]Value, len(params))
		ok := true
		seen := 0
		for i, nm := range names {
			j := indexOf(params, nm)
			if j < 0 {
				ok = false
				break
			}
			out[j] = args[i]
			if j+1 > seen {
				seen = j + 1
			}
		}
		if ok {
			return out[:max(seen, minArgs(fn, params))], true
		}
	}
	return nil, false
}

func minArgs(fn *Function, params []string) int {
	if fn.native == nil {
		return len(params)
	}
	return 0
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}

func (s *state) call(fn *Function, args []Value) (Value, error) {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxCallDepth {
		return nil, &LimitError{What: fmt.Sprintf("function calls nested more than %d deep", maxCallDepth)}
	}
	if fn.native != nil {
		// Built-ins do work proportional to their arguments' size; charge for it so
		// the step budget bounds time, not just node visits.
		if err := s.spend(argCost(args)); err != nil {
			return nil, err
		}
		v, err := fn.native(s, args)
		if err != nil {
			if errors.Is(err, errNull) {
				return nil, nil
			}
			return nil, err
		}
		return v, nil
	}
	if len(args) != len(fn.params) {
		return nil, nil
	}
	fe := fn.closure
	for i, p := range fn.params {
		var v Value
		if i < len(args) {
			v = args[i]
		}
		fe = fe.bind(p, v)
	}
	return fn.body.eval(s, fe)
}

// argCost estimates the work a built-in may do on its arguments (shallowly).
func argCost(args []Value) int {
	n := 0
	for _, a := range args {
		n += valueCost(a)
	}
	return n
}

func valueCost(v Value) int {
	switch x := v.(type) {
	case string:
		return len(x) / 64
	case []any:
		return len(x)
	case *Context:
		return len(x.keys)
	case map[string]any:
		return len(x)
	}
	return 0
}

// errNull lets a built-in say "the result is null" through the error path.
var errNull = errors.New("null")

func (n *funcDef) eval(s *state, e *env) (Value, error) {
	return &Function{params: n.params, body: n.body, closure: e}, nil
}

func (n *definedExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	_, ok, err := s.resolve(n.x, e)
	return ok, err
}

// resolve evaluates a name or path and also says whether it exists.
func (s *state) resolve(n node, e *env) (Value, bool, error) {
	switch x := n.(type) {
	case *nameRef:
		v, ok := s.lookup(e, x.name)
		return v, ok, nil
	case *pathExpr:
		base, ok, err := s.resolve(x.base, e)
		if err != nil || !ok {
			return nil, false, err
		}
		return s.member(base, x.name)
	}
	v, err := n.eval(s, e)
	if err != nil {
		return nil, false, err
	}
	if _, isFilter := n.(*filterExpr); isFilter && v == nil {
		return nil, false, nil
	}
	return v, true, nil
}

func (n *negExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	v, err := n.x.eval(s, e)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case *apd.Decimal:
		var r apd.Decimal
		r.Neg(x)
		return &r, nil
	case DayTimeDuration:
		var r apd.Decimal
		r.Neg(x.secs())
		return DayTimeDuration{s: &r}, nil
	case YearMonthDuration:
		return YearMonthDuration{m: -x.m}, nil
	}
	return nil, nil
}

func (n *andExpr) eval(s *state, e *env) (Value, error) { return junction(s, e, n.l, n.r, false) }

func (n *orExpr) eval(s *state, e *env) (Value, error) { return junction(s, e, n.l, n.r, true) }

// junction is FEEL's three-valued and (decisive false) and or (decisive
// true): the decisive value on either side wins, even against null or a
// non-boolean, and the right side is not evaluated after a decisive left;
// both sides the other boolean give that boolean; anything else is null.
func junction(s *state, e *env, left, right node, decisive bool) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	l, err := left.eval(s, e)
	if err != nil {
		return nil, err
	}
	if l == decisive {
		return decisive, nil
	}
	r, err := right.eval(s, e)
	if err != nil {
		return nil, err
	}
	if r == decisive {
		return decisive, nil
	}
	if l == !decisive && r == !decisive {
		return !decisive, nil
	}
	return nil, nil
}

func (n *ifExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	c, err := n.c.eval(s, e)
	if err != nil {
		return nil, err
	}
	if c == true {
		return n.t.eval(s, e)
	}
	return n.f.eval(s, e)
}

// iterate yields the values an iteration variable takes.
func (s *state) iterValues(v iterVar, e *env) ([]any, bool, error) {
	from, err := v.in.eval(s, e)
	if err != nil {
		return nil, false, err
	}
	if v.to != nil {
		to, err := v.to.eval(s, e)
		if err != nil {
			return nil, false, err
		}
		return s.intRange(from, to, true, true)
	}
	switch x := from.(type) {
	case []any:
		return x, true, nil
	case *Range:
		if x.op != "" {
			return nil, false, nil
		}
		return s.intRange(x.Start, x.End, x.StartIncl, x.EndIncl)
	case nil:
		return nil, false, nil
	}
	return []any{from}, true, nil
}

// intRange expands an integer range a..b (descending when b < a).
func (s *state) intRange(from, to Value, loIncl, hiIncl bool) ([]any, bool, error) {
	if d1, ok := from.(Date); ok {
		d2, ok := to.(Date)
		if !ok {
			return nil, false, nil
		}
		days := d2.t.Sub(d1.t).Hours() / 24
		if days > maxListLen || days < -maxListLen {
			return nil, false, checkList(maxListLen + 1)
		}
		nums, ok, err := s.intRange(decFromInt(0), decFromInt(int64(days)), loIncl, hiIncl)
		if err != nil || !ok {
			return nil, ok, err
		}
		for i, n := range nums {
			k, _ := n.(*apd.Decimal).Int64()
			nums[i] = Date{t: d1.t.AddDate(0, 0, int(k))}
		}
		return nums, true, nil
	}
	a, ok1 := from.(*apd.Decimal)
	b, ok2 := to.(*apd.Decimal)
	if !ok1 || !ok2 {
		return nil, false, nil
	}
	ai, err1 := a.Int64()
	bi, err2 := b.Int64()
	if err1 != nil || err2 != nil {
		return nil, false, nil
	}
	step := int64(1)
	if bi < ai {
		step = -1
	}
	if !loIncl {
		ai += step
	}
	if !hiIncl {
		bi -= step
	}
	n := (bi-ai)*step + 1
	if n <= 0 {
		return []any{}, true, nil
	}
	if n > maxListLen {
		return nil, false, checkList(maxListLen + 1)
	}
	if err := s.spend(int(n)); err != nil {
		return nil, false, err
	}
	out := make([]any, n)
	for i := range out {
		out[i] = decFromInt(ai + int64(i)*step)
	}
	return out, true, nil
}

func (n *forExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	out := []any{}
	var rec func(i int, e *env) (bool, error)
	rec = func(i int, e *env) (bool, error) {
		if i == len(n.vars) {
			v, err := n.ret.eval(s, e.bind("partial", out))
			if err != nil {
				return false, err
			}
			if err := checkList(len(out) + 1); err != nil {
				return false, err
			}
			out = append(out, v)
			return true, nil
		}
		vals, ok, err := s.iterValues(n.vars[i], e)
		if err != nil || !ok {
			return false, err
		}
		for _, it := range vals {
			if ok, err := rec(i+1, e.bind(n.vars[i].name, norm(it))); err != nil || !ok {
				return ok, err
			}
		}
		return true, nil
	}
	ok, err := rec(0, e)
	if err != nil || !ok {
		return nil, err
	}
	return out, nil
}

func (n *quantExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	sawNull := false
	// found: for some, a true was seen; for every, a false was seen.
	found := false
	var rec func(i int, e *env) (bool, error)
	rec = func(i int, e *env) (bool, error) {
		if i == len(n.vars) {
			v, err := n.cond.eval(s, e)
			if err != nil {
				return false, err
			}
			switch {
			case v == true && !n.every, v != true && n.every:
				found = true
				return false, nil
			}
			return true, nil
		}
		vals, ok, err := s.iterValues(n.vars[i], e)
		if err != nil {
			return false, err
		}
		if !ok {
			// Iterating over null (or a non-iterable range) has no answer.
			sawNull = true
			return false, nil
		}
		for _, it := range vals {
			if cont, err := rec(i+1, e.bind(n.vars[i].name, norm(it))); err != nil || !cont {
				return cont, err
			}
		}
		return true, nil
	}
	if _, err := rec(0, e); err != nil {
		return nil, err
	}
	if sawNull {
		return nil, nil
	}
	// Like Camunda's engine: a condition that is not true counts as false, so the
	// result is always a boolean (a missing field does not turn "some" into null).
	if found {
		return !n.every, nil
	}
	return n.every, nil
}

func (n *listLit) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	out := make([]any, len(n.elems))
	for i, x := range n.elems {
		v, err := x.eval(s, e)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (n *ctxLit) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	c := newContext(len(n.keys))
	// Later entries see earlier ones; functions defined here see the whole context.
	ce := e.withContext(c)
	for i, k := range n.keys {
		v, err := n.vals[i].eval(s, ce)
		if err != nil {
			return nil, err
		}
		c.set(k, v)
	}
	return c, nil
}

func (n *rangeLit) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	lo, err := n.lo.eval(s, e)
	if err != nil {
		return nil, err
	}
	hi, err := n.hi.eval(s, e)
	if err != nil {
		return nil, err
	}
	if lo == nil || hi == nil {
		// Open ends are written as "< x" / "> x"; a null endpoint is an error.
		return nil, nil
	}
	return makeRange(lo, hi, n.loIncl, n.hiIncl), nil
}

// makeRange validates the endpoints: same comparable type, start not after end.
func makeRange(lo, hi Value, loIncl, hiIncl bool) Value {
	if lo == nil && hi == nil {
		return nil
	}
	if lo != nil && hi != nil {
		c, ok := compare(lo, hi)
		if !ok || c > 0 {
			return nil
		}
	} else {
		x := lo
		if x == nil {
			x = hi
		}
		if _, ok := compare(x, x); !ok {
			return nil
		}
	}
	return &Range{Start: lo, End: hi, StartIncl: loIncl, EndIncl: hiIncl}
}

func (n *unaryTest) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	v, err := n.v.eval(s, e)
	if err != nil {
		return nil, err
	}
	return unaryRange(n.op, v), nil
}

func unaryRange(op string, v Value) Value {
	r := &Range{op: op}
	switch op {
	case "<":
		r.End = v
	case "<=":
		r.End, r.EndIncl = v, true
	case ">":
		r.Start = v
	case ">=":
		r.Start, r.StartIncl = v, true
	default: // "=", "!=": a test, not an interval
		r.Start, r.End, r.StartIncl, r.EndIncl = v, v, true, true
	}
	return r
}

func (n *tupleExpr) eval(s *state, e *env) (Value, error) {
	// A parenthesised list of tests outside "in" has no value.
	return nil, nil
}

func (n *betweenExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	x, err := n.x.eval(s, e)
	if err != nil {
		return nil, err
	}
	lo, err := n.lo.eval(s, e)
	if err != nil {
		return nil, err
	}
	hi, err := n.hi.eval(s, e)
	if err != nil {
		return nil, err
	}
	c1, ok1 := compare(lo, x)
	c2, ok2 := compare(x, hi)
	if !ok1 || !ok2 {
		return nil, nil
	}
	return c1 <= 0 && c2 <= 0, nil
}

func (n *inExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	x, err := n.x.eval(s, e)
	if err != nil {
		return nil, err
	}
	te := e.bind("?", x)
	sawNull := false
	for _, t := range n.tests {
		tv, err := t.eval(s, te)
		if err != nil {
			return nil, err
		}
		r := testValue(x, tv)
		if r == true {
			return true, nil
		}
		if r == nil {
			sawNull = true
		}
	}
	if sawNull {
		return nil, nil
	}
	return false, nil
}

// testValue applies one positive unary test (already evaluated) to x.
func testValue(x, t Value) Value {
	switch tv := t.(type) {
	case nil:
		if x == nil {
			return true
		}
		return nil
	case *Range:
		return inRange(x, tv)
	case []any:
		sawNull := false
		for _, it := range tv {
			itv := norm(it)
			if r, ok := itv.(*Range); ok {
				res := inRange(x, r)
				if res == true {
					return true
				}
				continue
			}
			eq, ok := equal(x, itv)
			if ok && eq {
				return true
			}
			if !ok {
				sawNull = true
			}
		}
		if xl, ok := x.([]any); ok {
			if eq, ok := equal(xl, tv); ok && eq {
				return true
			}
		}
		_ = sawNull
		return false
	case bool:
		if _, xb := x.(bool); !xb {
			return tv
		}
	}
	eq, ok := equal(x, t)
	if !ok {
		return nil
	}
	return eq
}

func inRange(x Value, r *Range) Value {
	switch r.op {
	case "=":
		eq, ok := equal(x, r.Start)
		if !ok {
			return nil
		}
		return eq
	case "!=":
		eq, ok := equal(x, r.Start)
		if !ok {
			return nil
		}
		return !eq
	}
	if x == nil {
		return nil
	}
	if r.Start != nil {
		c, ok := compare(r.Start, x)
		if !ok {
			return nil
		}
		if c > 0 || c == 0 && !r.StartIncl {
			return false
		}
	}
	if r.End != nil {
		c, ok := compare(x, r.End)
		if !ok {
			return nil
		}
		if c > 0 || c == 0 && !r.EndIncl {
			return false
		}
	}
	return true
}

func (n *instanceExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	x, err := n.x.eval(s, e)
	if err != nil {
		return nil, err
	}
	return instanceOf(x, n.t), nil
}

func instanceOf(v Value, t *typeSpec) bool {
	switch t.name {
	case "Any":
		return v != nil
	case "Null":
		return v == nil
	case "list":
		l, ok := v.([]any)
		if !ok {
			return false
		}
		if t.elem != nil {
			for _, it := range l {
				itv := norm(it)
				if itv != nil && !instanceOf(itv, t.elem) {
					return false
				}
			}
		}
		return true
	case "context":
		if !isContext(v) {
			return false
		}
		for _, f := range t.fields {
			fv, ok := ctxGet(v, f.name)
			if !ok || fv != nil && !instanceOf(fv, f.t) {
				return false
			}
		}
		return true
	case "range":
		r, ok := v.(*Range)
		if !ok {
			return false
		}
		if t.elem != nil {
			for _, b := range []Value{r.Start, r.End} {
				if b != nil && !instanceOf(b, t.elem) {
					return false
				}
			}
		}
		return true
	case "function":
		f, ok := v.(*Function)
		if !ok {
			return false
		}
		if t.params != nil && f.native == nil && len(f.params) != len(t.params) {
			return false
		}
		return true
	}
	if v == nil {
		return false
	}
	return typeName(v) == t.name
}

func (n *binaryExpr) eval(s *state, e *env) (Value, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	l, err := n.l.eval(s, e)
	if err != nil {
		return nil, err
	}
	r, err := n.r.eval(s, e)
	if err != nil {
		return nil, err
	}
	if err := s.spend(valueCost(l) + valueCost(r)); err != nil {
		return nil, err
	}
	switch n.op {
	case "=", "!=":
		eq, ok := equal(l, r)
		if !ok {
			return nil, nil
		}
		if n.op == "!=" {
			return !eq, nil
		}
		return eq, nil
	case "<", "<=", ">", ">=":
		c, ok := compare(l, r)
		if !ok {
			return nil, nil
		}
		switch n.op {
		case "<":
			return c < 0, nil
		case "<=":
			return c <= 0, nil
		case ">":
			return c > 0, nil
		}
		return c >= 0, nil
	case "+":
		return add(l, r)
	case "-":
		return sub(l, r), nil
	case "*":
		return mul(l, r), nil
	case "/":
		return div(l, r), nil
	case "**":
		return pow(l, r), nil
	}
	return nil, nil
}

// equal implements FEEL "=": ok is false when the operands are not comparable (null result).
func equal(a, b Value) (bool, bool) {
	if a == nil || b == nil {
		return a == nil && b == nil, true
	}
	switch x := a.(type) {
	case bool:
		y, ok := b.(bool)
		return ok && x == y, ok
	case string:
		y, ok := b.(string)
		return ok && x == y, ok
	case *apd.Decimal:
		y, ok := b.(*apd.Decimal)
		return ok && x.Cmp(y) == 0, ok
	case []any:
		y, ok := b.([]any)
		if !ok {
			return false, false
		}
		if len(x) != len(y) {
			return false, true
		}
		for i := range x {
			eq, ok := equal(norm(x[i]), norm(y[i]))
			if !ok || !eq {
				return false, ok
			}
		}
		return true, true
	case *Context, map[string]any:
		if !isContext(b) {
			return false, false
		}
		if ctxLen(a) != ctxLen(b) {
			return false, true
		}
		for _, k := range ctxKeys(a) {
			av, _ := ctxGet(a, k)
			bv, ok := ctxGet(b, k)
			if !ok {
				return false, true
			}
			eq, ok := equal(av, bv)
			if !ok || !eq {
				return false, ok
			}
		}
		return true, true
	case *Range:
		y, ok := b.(*Range)
		if !ok {
			return false, false
		}
		if x.op != y.op || x.StartIncl != y.StartIncl || x.EndIncl != y.EndIncl {
			return false, true
		}
		e1, ok1 := equal(x.Start, y.Start)
		e2, ok2 := equal(x.End, y.End)
		return e1 && e2, ok1 && ok2
	case *Function:
		y, ok := b.(*Function)
		return ok && x == y, ok
	case Date, Time, DateTime, DayTimeDuration, YearMonthDuration:
		if dt, ok := a.(DateTime); ok {
			if y, ok := b.(DateTime); ok {
				if (dt.zone == zoneLocal) != (y.zone == zoneLocal) {
					return false, true
				}
				// Date-times compare at millisecond precision, like the reference engines.
				if dt.zone == zoneLocal {
					return wall(dt.t).UnixMilli() == wall(y.t).UnixMilli(), true
				}
				return dt.t.UnixMilli() == y.t.UnixMilli(), true
			}
		}
		if t1, ok := a.(Time); ok {
			if t2, ok := b.(Time); ok {
				if (t1.zone == zoneLocal) != (t2.zone == zoneLocal) {
					return false, true
				}
				// Times compare at millisecond precision, like the reference engines.
				return t1.ns/1e6-int64(t1.offsetSeconds())*1e3 == t2.ns/1e6-int64(t2.offsetSeconds())*1e3, true
			}
		}
		c, ok := compareTemporal(a, b)
		return ok && c == 0, ok
	}
	return false, false
}

// compare orders numbers, strings and temporal values of one kind.
func compare(a, b Value) (int, bool) {
	switch x := a.(type) {
	case *apd.Decimal:
		y, ok := b.(*apd.Decimal)
		if !ok {
			return 0, false
		}
		return x.Cmp(y), true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case nil, bool, []any, *Context, map[string]any, *Range, *Function:
		return 0, false
	}
	return compareTemporal(a, b)
}
