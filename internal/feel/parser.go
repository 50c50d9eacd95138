package feel

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

const (
	maxSourceLen = 64 << 10
	maxDepth     = 128
)

type node interface {
	eval(s *state, e *env) (Value, error)
}

type (
	constLit struct{ v Value }
	nameRef  struct{ name string }
	pathExpr struct {
		base node
		name string
	}
	filterExpr struct{ base, cond node }
	callExpr   struct {
		fn    node
		name  string // set when fn is a plain name
		args  []node
		names []string // named arguments; nil for positional
	}
	binaryExpr struct {
		op   string
		l, r node
	}
	andExpr struct{ l, r node }
	orExpr  struct{ l, r node }
	negExpr struct{ x node }
	ifExpr  struct{ c, t, f node }
	iterVar struct {
		name   string
		in, to node // to is set for "a..b"
	}
	forExpr struct {
		vars []iterVar
		ret  node
	}
	quantExpr struct {
		every bool
		vars  []iterVar
		cond  node
	}
	betweenExpr struct{ x, lo, hi node }
	inExpr      struct {
		x     node
		tests []node
	}
	instanceExpr struct {
		x node
		t *typeSpec
	}
	listLit struct{ elems []node }
	ctxLit  struct {
		keys []string
		vals []node
	}
	rangeLit struct {
		lo, hi         node
		loIncl, hiIncl bool
	}
	unaryTest struct {
		op string
		v  node
	}
	tupleExpr struct{ items []node }
	funcDef   struct {
		params []string
		body   node
	}
	definedExpr struct{ x node } // is defined(x): needs to see missing vs null
)

type typeSpec struct {
	name   string      // number, string, list, context, range, function, Any, Null, ...
	elem   *typeSpec   // list<T>, range<T>
	fields []typeField // context<a: T>
	params []*typeSpec // function<A,B>->R
	ret    *typeSpec
}

type typeField struct {
	name string
	t    *typeSpec
}

var keywords = map[string]bool{
	"and": true, "or": true, "if": true, "then": true, "else": true, "for": true, "in": true,
	"return": true, "some": true, "every": true, "satisfies": true, "between": true,
	"instance": true, "function": true, "true": true, "false": true, "null": true,
}

// Names of built-ins that contain keywords; the lexer alone cannot tell them apart.
var keywordNames = [][]string{
	{"date", "and", "time"},
	{"years", "and", "months", "duration"},
	{"get", "or", "else"},
}

type parser struct {
	src   string
	toks  []token
	i     int
	tok   token
	depth int
	// rangeEnd is set while parsing the upper endpoint of a range, where "[" may close
	// the range ("[1..10[") instead of starting a filter.
	rangeEnd bool
}

func parse(src string) (node, error) {
	if len(src) > maxSourceLen {
		return nil, &SyntaxError{Pos: maxSourceLen, Line: 1, Col: 1, Msg: fmt.Sprintf("expression longer than %d bytes", maxSourceLen)}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	p.tok = toks[0]
	n := p.parseExpr()
	if p.tok.kind != tEOF {
		p.fail(p.tok.pos, "unexpected %s after the end of the expression", p.describe(p.tok))
	}
	return n, nil
}

type parseAbort struct{ err *SyntaxError }

func (p *parser) fail(pos int, f string, args ...any) {
	panic(parseAbort{newSyntaxError(p.src, pos, fmt.Sprintf(f, args...))})
}

func (p *parser) describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tNumber:
		return "number " + t.text
	case tString:
		return "string literal"
	case tTemporal:
		return "temporal literal"
	}
	return fmt.Sprintf("%q", p.src[t.pos:t.end])
}

func (p *parser) next() {
	if p.i < len(p.toks)-1 {
		p.i++
	}
	p.tok = p.toks[p.i]
}

func (p *parser) peek(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) isPunct(s string) bool { return p.tok.kind == tPunct && p.tok.text == s }
func (p *parser) isKw(s string) bool    { return p.tok.kind == tName && p.tok.text == s }

func (p *parser) expectPunct(s string) {
	if !p.isPunct(s) {
		p.fail(p.tok.pos, "expected %q, found %s", s, p.describe(p.tok))
	}
	p.next()
}

func (p *parser) expectKw(s string) {
	if !p.isKw(s) {
		p.fail(p.tok.pos, "expected %q, found %s", s, p.describe(p.tok))
	}
	p.next()
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.tok.pos, "expression nested more than %d levels deep", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// parseExpr parses a full expression, including the textual forms (if, for, some, every,
// function) that extend as far right as possible.
func (p *parser) parseExpr() node {
	p.enter()
	defer p.leave()
	if p.tok.kind == tName {
		switch p.tok.text {
		case "if":
			p.next()
			c := p.parseExpr()
			p.expectKw("then")
			t := p.parseExpr()
			p.expectKw("else")
			f := p.parseExpr()
			return &ifExpr{c, t, f}
		case "for":
			p.next()
			vars := p.parseIterVars()
			p.expectKw("return")
			return &forExpr{vars: vars, ret: p.parseExpr()}
		case "some", "every":
			if p.peek(1).kind == tName || p.peek(1).kind == tQuoted {
				every := p.tok.text == "every"
				p.next()
				vars := p.parseIterVars()
				p.expectKw("satisfies")
				return &quantExpr{every: every, vars: vars, cond: p.parseExpr()}
			}
		}
	}
	return p.parseOr()
}

func (p *parser) parseIterVars() []iterVar {
	var vars []iterVar
	for {
		name := p.parseSimpleName()
		p.expectKw("in")
		in := p.parseExprNoTextual()
		var to node
		if p.isPunct("..") {
			p.next()
			to = p.parseExprNoTextual()
		}
		vars = append(vars, iterVar{name: name, in: in, to: to})
		if !p.isPunct(",") {
			return vars
		}
		p.next()
	}
}

func (p *parser) parseExprNoTextual() node {
	p.enter()
	defer p.leave()
	return p.parseOr()
}

func (p *parser) parseSimpleName() string {
	switch p.tok.kind {
	case tQuoted:
		s := p.tok.text
		p.next()
		return s
	case tName:
		if keywords[p.tok.text] {
			p.fail(p.tok.pos, "expected a name, found %s", p.describe(p.tok))
		}
		return p.parseNameWords()
	}
	p.fail(p.tok.pos, "expected a name, found %s", p.describe(p.tok))
	return ""
}

// parseNameWords reads a name that may consist of several words ("string length").
func (p *parser) parseNameWords() string {
	for _, kn := range keywordNames {
		if p.tok.text != kn[0] {
			continue
		}
		ok := true
		for j := 1; j < len(kn); j++ {
			t := p.peek(j)
			if t.kind != tName || t.text != kn[j] {
				ok = false
				break
			}
		}
		if ok {
			for range kn {
				p.next()
			}
			return strings.Join(kn, " ")
		}
	}
	name := p.tok.text
	p.next()
	for p.tok.kind == tName && !keywords[p.tok.text] {
		name += " " + p.tok.text
		p.next()
	}
	return name
}

func (p *parser) parseOr() node {
	l := p.parseAnd()
	for p.isKw("or") {
		p.next()
		r := p.parseAnd()
		l = &orExpr{l, r}
	}
	return l
}

func (p *parser) parseAnd() node {
	l := p.parseComparison()
	for p.isKw("and") {
		p.next()
		r := p.parseComparison()
		l = &andExpr{l, r}
	}
	return l
}

func isCmpOp(s string) bool {
	switch s {
	case "=", "!=", "<", "<=", ">", ">=":
		return true
	}
	return false
}

func (p *parser) parseComparison() node {
	p.enter()
	defer p.leave()
	l := p.parseAdditive()
	for {
		switch {
		case p.tok.kind == tPunct && isCmpOp(p.tok.text):
			op := p.tok.text
			p.next()
			r := p.parseAdditive()
			l = &binaryExpr{op: op, l: l, r: r}
		case p.isKw("between"):
			p.next()
			lo := p.parseAdditive()
			p.expectKw("and")
			hi := p.parseAdditive()
			l = &betweenExpr{l, lo, hi}
		case p.isKw("in"):
			p.next()
			l = &inExpr{x: l, tests: p.parseInTests()}
		case p.isKw("instance") && p.peek(1).kind == tName && p.peek(1).text == "of":
			p.next()
			p.next()
			l = &instanceExpr{x: l, t: p.parseType()}
		default:
			return l
		}
	}
}

func (p *parser) parseInTests() []node {
	if p.tok.kind == tPunct && isCmpOp(p.tok.text) {
		return []node{p.parseUnaryTest()}
	}
	n := p.parseAdditive()
	if t, ok := n.(*tupleExpr); ok {
		return t.items
	}
	return []node{n}
}

func (p *parser) parseUnaryTest() node {
	op := p.tok.text
	p.next()
	v := p.parseAdditive()
	return &unaryTest{op: op, v: v}
}

var typeWords = [][]string{
	{"days", "and", "time", "duration"},
	{"years", "and", "months", "duration"},
	{"date", "and", "time"},
}

func (p *parser) parseType() *typeSpec {
	p.enter()
	defer p.leave()
	if p.isKw("function") {
		p.next()
		t := &typeSpec{name: "function"}
		if p.isPunct("<") {
			p.next()
			for !p.isPunct(">") {
				t.params = append(t.params, p.parseType())
				if p.isPunct(",") {
					p.next()
				} else if !p.isPunct(">") {
					p.fail(p.tok.pos, "expected \">\", found %s", p.describe(p.tok))
				}
			}
			p.next()
			p.expectPunct("->")
			t.ret = p.parseType()
		}
		return t
	}
	if p.tok.kind == tName && !keywords[p.tok.text] || p.isKw("null") {
		for _, tw := range typeWords {
			ok := true
			for j, w := range tw {
				t := p.peek(j)
				if t.kind != tName || t.text != w {
					ok = false
					break
				}
			}
			if ok {
				for range tw {
					p.next()
				}
				return &typeSpec{name: strings.Join(tw, " ")}
			}
		}
		name := p.tok.text
		p.next()
		for p.isPunct(".") && p.peek(1).kind == tName {
			p.next()
			name += "." + p.tok.text
			p.next()
		}
		t := &typeSpec{name: name}
		if p.isPunct("<") && (name == "list" || name == "range" || name == "context") {
			p.next()
			if name == "context" {
				for !p.isPunct(">") {
					fname := p.parseSimpleName()
					p.expectPunct(":")
					t.fields = append(t.fields, typeField{fname, p.parseType()})
					if p.isPunct(",") {
						p.next()
					} else if !p.isPunct(">") {
						p.fail(p.tok.pos, "expected \">\", found %s", p.describe(p.tok))
					}
				}
			} else {
				t.elem = p.parseType()
			}
			p.expectPunct(">")
		}
		return t
	}
	p.fail(p.tok.pos, "expected a type name, found %s", p.describe(p.tok))
	return nil
}

func (p *parser) parseAdditive() node {
	l := p.parseMultiplicative()
	for p.isPunct("+") || p.isPunct("-") {
		op := p.tok.text
		p.next()
		r := p.parseMultiplicative()
		l = &binaryExpr{op: op, l: l, r: r}
	}
	return l
}

func (p *parser) parseMultiplicative() node {
	l := p.parsePower()
	for p.isPunct("*") || p.isPunct("/") {
		op := p.tok.text
		p.next()
		r := p.parsePower()
		l = &binaryExpr{op: op, l: l, r: r}
	}
	return l
}

func (p *parser) parsePower() node {
	l := p.parseUnary()
	for p.isPunct("**") {
		p.next()
		r := p.parseUnary()
		l = &binaryExpr{op: "**", l: l, r: r}
	}
	return l
}

func (p *parser) parseUnary() node {
	if p.isPunct("-") {
		p.enter()
		defer p.leave()
		p.next()
		x := p.parseUnary()
		if c, ok := x.(*constLit); ok {
			if d, ok := c.v.(*apd.Decimal); ok {
				var n apd.Decimal
				n.Neg(d)
				return &constLit{&n}
			}
		}
		return &negExpr{x}
	}
	return p.parsePostfix()
}

func (p *parser) parsePostfix() node {
	n := p.parsePrimary()
	for {
		switch {
		case p.isPunct("."):
			p.next()
			var name string
			switch p.tok.kind {
			case tQuoted:
				name = p.tok.text
				p.next()
			case tName:
				// Keywords are fine as property names (x.time, x.null).
				name = p.tok.text
				p.next()
				for p.tok.kind == tName && !keywords[p.tok.text] {
					name += " " + p.tok.text
					p.next()
				}
			default:
				p.fail(p.tok.pos, "expected a name after \".\", found %s", p.describe(p.tok))
			}
			n = &pathExpr{base: n, name: name}
		case p.isPunct("[") && !(p.rangeEnd && p.closesRange()):
			p.enter()
			p.next()
			cond := p.parseExpr()
			p.expectPunct("]")
			p.leave()
			n = &filterExpr{base: n, cond: cond}
		case p.isPunct("("):
			p.enter()
			n = p.parseCall(n)
			p.leave()
		default:
			return n
		}
	}
}

// closesRange reports whether the "[" at the cursor ends a range rather than opening a
// filter: nothing that could start an expression follows it.
func (p *parser) closesRange() bool {
	t := p.peek(1)
	switch t.kind {
	case tEOF:
		return true
	case tPunct:
		switch t.text {
		case "(", "[", "{", "-", "<", "<=", ">", ">=":
			return false
		}
		return true
	case tName:
		return keywords[t.text] && t.text != "true" && t.text != "false" && t.text != "null" && t.text != "if" && t.text != "for" && t.text != "some" && t.text != "every" && t.text != "function"
	}
	return false
}

func (p *parser) parseRangeEnd() node {
	saved := p.rangeEnd
	p.rangeEnd = true
	n := p.parseExprNoTextual()
	p.rangeEnd = saved
	return n
}

func (p *parser) parseCall(fn node) node {
	p.next() // (
	c := &callExpr{fn: fn}
	if nr, ok := fn.(*nameRef); ok {
		c.name = nr.name
	}
	if p.isPunct(")") {
		p.next()
		return c.finish()
	}
	named := p.looksNamedArg()
	for {
		if named {
			name := p.parseSimpleName()
			p.expectPunct(":")
			c.names = append(c.names, name)
		}
		c.args = append(c.args, p.parseExpr())
		if p.isPunct(",") {
			p.next()
			continue
		}
		p.expectPunct(")")
		return c.finish()
	}
}

func (c *callExpr) finish() node {
	if c.name == "is defined" && len(c.args) == 1 {
		return &definedExpr{x: c.args[0]}
	}
	return c
}

// looksNamedArg reports whether the argument list starts with "name words :".
func (p *parser) looksNamedArg() bool {
	j := 0
	if p.peek(0).kind == tQuoted {
		return p.peek(1).kind == tPunct && p.peek(1).text == ":"
	}
	for p.peek(j).kind == tName {
		j++
	}
	return j > 0 && p.peek(j).kind == tPunct && p.peek(j).text == ":"
}

func (p *parser) parsePrimary() node {
	t := p.tok
	switch t.kind {
	case tNumber:
		p.next()
		d := decFromString(t.text)
		if d == nil {
			p.fail(t.pos, "bad number %s", t.text)
		}
		return &constLit{d}
	case tString:
		p.next()
		return &constLit{t.text}
	case tTemporal:
		p.next()
		v := parseTemporal(t.text)
		if v == nil {
			p.fail(t.pos, "invalid temporal literal @%q", t.text)
		}
		return &constLit{v}
	case tQuoted:
		p.next()
		return &nameRef{t.text}
	case tName:
		switch t.text {
		case "true":
			p.next()
			return &constLit{true}
		case "false":
			p.next()
			return &constLit{false}
		case "null":
			p.next()
			return &constLit{nil}
		case "function":
			return p.parseFuncDef()
		case "if", "for", "some", "every":
			if t.text == "if" || p.peek(1).kind == tName {
				return p.parseExpr()
			}
		}
		if keywords[t.text] {
			p.fail(t.pos, "unexpected %s", p.describe(t))
		}
		return &nameRef{p.parseNameWords()}
	case tPunct:
		switch t.text {
		case "(":
			return p.parseParen()
		case "[":
			return p.parseBracket()
		case "]":
			// ]a..b] and ]a..b[ : open start.
			p.next()
			return p.finishRange(false)
		case "{":
			return p.parseContext()
		case "<", "<=", ">", ">=", "=", "!=":
			// A unary comparison used as a range value: "< 10".
			return p.parseUnaryTest()
		}
	}
	p.fail(t.pos, "unexpected %s", p.describe(t))
	return nil
}

func (p *parser) parseParen() node {
	p.enter()
	defer p.leave()
	p.next() // (
	var first node
	if p.tok.kind == tPunct && isCmpOp(p.tok.text) {
		first = p.parseUnaryTest()
	} else {
		first = p.parseExpr()
		if p.isPunct("..") {
			p.next()
			hi := p.parseRangeEnd()
			r := &rangeLit{lo: first, hi: hi}
			r.hiIncl = p.closeRange()
			return r
		}
	}
	if p.isPunct(")") {
		p.next()
		return first
	}
	items := []node{first}
	for p.isPunct(",") {
		p.next()
		if p.tok.kind == tPunct && isCmpOp(p.tok.text) {
			items = append(items, p.parseUnaryTest())
		} else {
			items = append(items, p.parseExpr())
		}
	}
	p.expectPunct(")")
	return &tupleExpr{items}
}

// closeRange consumes the closing bracket of a range: "]" includes, ")" or "[" excludes.
func (p *parser) closeRange() bool {
	switch {
	case p.isPunct("]"):
		p.next()
		return true
	case p.isPunct(")"), p.isPunct("["):
		p.next()
		return false
	}
	p.fail(p.tok.pos, "expected the end of a range, found %s", p.describe(p.tok))
	return false
}

func (p *parser) finishRange(loIncl bool) node {
	p.enter()
	defer p.leave()
	lo := p.parseExprNoTextual()
	p.expectPunct("..")
	hi := p.parseRangeEnd()
	r := &rangeLit{lo: lo, hi: hi, loIncl: loIncl}
	r.hiIncl = p.closeRange()
	return r
}

func (p *parser) parseBracket() node {
	p.enter()
	defer p.leave()
	p.next() // [
	if p.isPunct("]") {
		p.next()
		return &listLit{}
	}
	first := p.parseExpr()
	if p.isPunct("..") {
		p.next()
		hi := p.parseRangeEnd()
		r := &rangeLit{lo: first, hi: hi, loIncl: true}
		r.hiIncl = p.closeRange()
		return r
	}
	l := &listLit{elems: []node{first}}
	for p.isPunct(",") {
		p.next()
		l.elems = append(l.elems, p.parseExpr())
	}
	p.expectPunct("]")
	return l
}

func (p *parser) parseContext() node {
	p.enter()
	defer p.leave()
	open := p.tok.pos
	p.next() // {
	c := &ctxLit{}
	seen := map[string]bool{}
	if p.isPunct("}") {
		p.next()
		return c
	}
	for {
		var key string
		keyPos := p.tok.pos
		switch p.tok.kind {
		case tString:
			key = p.tok.text
			p.next()
		case tQuoted:
			key = p.tok.text
			p.next()
		case tEOF:
			p.fail(open, "unterminated context: missing \"}\"")
		default:
			// Context keys may hold characters that are operators elsewhere ("foo+bar"):
			// take the source text up to the colon.
			start := p.tok.pos
			for p.tok.kind != tEOF && !p.isPunct(":") && !p.isPunct(",") && !p.isPunct("}") {
				p.next()
			}
			key = strings.Join(strings.Fields(p.src[start:p.tok.pos]), " ")
			if key == "" {
				p.fail(keyPos, "expected a context key, found %s", p.describe(p.tok))
			}
		}
		if seen[key] {
			p.fail(keyPos, "duplicate context key %q", key)
		}
		seen[key] = true
		p.expectPunct(":")
		c.keys = append(c.keys, key)
		c.vals = append(c.vals, p.parseExpr())
		if p.isPunct(",") {
			p.next()
			continue
		}
		if p.isPunct("}") {
			p.next()
			return c
		}
		if p.tok.kind == tEOF {
			p.fail(open, "unterminated context: missing \"}\"")
		}
		p.fail(p.tok.pos, "expected \",\" or \"}\", found %s", p.describe(p.tok))
	}
}

func (p *parser) parseFuncDef() node {
	p.enter()
	defer p.leave()
	p.next() // function
	p.expectPunct("(")
	f := &funcDef{}
	for !p.isPunct(")") {
		f.params = append(f.params, p.parseSimpleName())
		if p.isPunct(":") { // typed parameter: ignore the type
			p.next()
			p.parseType()
		}
		if p.isPunct(",") {
			p.next()
		} else if !p.isPunct(")") {
			p.fail(p.tok.pos, "expected \",\" or \")\", found %s", p.describe(p.tok))
		}
	}
	p.next()
	if p.isKw("external") {
		p.fail(p.tok.pos, "external functions are not supported")
	}
	f.body = p.parseExpr()
	return f
}
