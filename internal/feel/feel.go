// Package feel implements FEEL (Friendly Enough Expression Language, DMN 1.3+ with the
// Camunda extensions connector users rely on): a lexer, a recursive-descent parser and an
// evaluator with decimal numbers.
//
// Expressions are compiled once and evaluated many times; a compiled *Expr holds no
// mutable state, so concurrent Eval calls are safe.
package feel

import "time"

// Expr is a compiled FEEL expression.
type Expr struct {
	src  string
	root node
}

// Compile parses src. Errors are *SyntaxError.
func Compile(src string) (ex *Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			pa, ok := r.(parseAbort)
			if !ok {
				panic(r)
			}
			ex, err = nil, pa.err
		}
	}()
	root, err := parse(src)
	if err != nil {
		return nil, err
	}
	return &Expr{src: src, root: root}, nil
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

type evalOptions struct {
	funcs  map[string]*Function
	now    time.Time
	hasNow bool
}

// Option configures one evaluation.
type Option func(*evalOptions)

// WithFunction makes fn callable by name, with positional or named arguments (by params).
// Missing arguments arrive as nil; arguments are FEEL values.
func WithFunction(name string, params []string, fn func(args []Value) (Value, error)) Option {
	f := &Function{name: name, params: append([]string(nil), params...)}
	f.native = func(s *state, args []Value) (Value, error) {
		full := args
		if len(args) < len(f.params) {
			full = make([]Value, len(f.params))
			copy(full, args)
		}
		v, err := fn(full)
		if err != nil {
			return nil, &FunctionError{Name: name, Err: err}
		}
		return norm(v), nil
	}
	return func(o *evalOptions) {
		if o.funcs == nil {
			o.funcs = map[string]*Function{}
		}
		o.funcs[name] = f
	}
}

// FunctionError wraps an error returned by a function given with WithFunction.
type FunctionError struct {
	Name string
	Err  error
}

func (e *FunctionError) Error() string { return "feel: function " + e.Name + ": " + e.Err.Error() }
func (e *FunctionError) Unwrap() error { return e.Err }

// WithNow fixes the clock used by now() and today().
func WithNow(t time.Time) Option {
	return func(o *evalOptions) { o.now, o.hasNow = t, true }
}

// Eval evaluates the expression with the given variables. Missing variables and type
// mismatches give nil (FEEL null); errors are reserved for exceeded resource limits
// (*LimitError) and for errors returned by functions given with WithFunction.
func (e *Expr) Eval(vars map[string]any, opts ...Option) (v Value, err error) {
	o := &evalOptions{}
	for _, opt := range opts {
		opt(o)
	}
	s := &state{vars: vars, opts: o}
	v, err = e.root.eval(s, nil)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (s *state) now() time.Time {
	if s.opts != nil && s.opts.hasNow {
		return s.opts.now
	}
	return time.Now()
}
