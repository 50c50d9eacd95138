package graphsim

import (
	"strconv"
	"strings"
	"time"
)

// The $filter subset: comparisons (eq ne gt ge lt le) of a property path with
// a literal and startswith(property,'prefix'), combined with and / or / not
// and parentheses. Other functions, lambda operators and arithmetic are
// answered as Graph answers nodes it cannot evaluate on mail: 400
// ErrorInvalidUrlQueryFilter.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber // digits, dates and date-times: anything starting with a digit
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func lexFilter(src string) ([]token, int) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '\'':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(src) {
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(src[i])
				i++
			}
			if !closed {
				return nil, start
			}
			toks = append(toks, token{tString, b.String(), start})
		case c >= '0' && c <= '9' || c == '-' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			start := i
			i++
			for i < len(src) && (isAlnum(src[i]) || strings.IndexByte(":.-+", src[i]) >= 0) {
				i++
			}
			toks = append(toks, token{tNumber, src[start:i], start})
		case isAlnum(c) || c == '_' || c == '@' || c == '$':
			start := i
			for i < len(src) && (isAlnum(src[i]) || strings.IndexByte("_/.@$:", src[i]) >= 0) {
				i++
			}
			toks = append(toks, token{tIdent, src[start:i], start})
		default:
			return nil, i
		}
	}
	return append(toks, token{tEOF, "", len(src)}), -1
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

type filterParser[T any] struct {
	src   string
	toks  []token
	i     int
	sc    *schema[T]
	props []string
}

func compileFilter[T any](src string, sc *schema[T]) (func(T) bool, []string, *apiError) {
	toks, bad := lexFilter(src)
	if bad >= 0 {
		return nil, nil, syntaxError(src, bad)
	}
	p := &filterParser[T]{src: src, toks: toks, sc: sc}
	f, e := p.or()
	if e != nil {
		return nil, nil, e
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, nil, syntaxError(src, t.pos)
	}
	return f, p.props, nil
}

func syntaxError(src string, pos int) *apiError {
	return badRequest("BadRequest", "Invalid filter clause: Syntax error at position %d in '%s'.", pos, src)
}

func invalidNodes() *apiError {
	return badRequest("ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
}

func (p *filterParser[T]) peek() token { return p.toks[p.i] }
func (p *filterParser[T]) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *filterParser[T]) keyword(word string) bool {
	t := p.peek()
	if t.kind == tIdent && t.text == word {
		p.i++
		return true
	}
	return false
}

func (p *filterParser[T]) or() (func(T) bool, *apiError) {
	l, e := p.and()
	if e != nil {
		return nil, e
	}
	for p.keyword("or") {
		r, e := p.and()
		if e != nil {
			return nil, e
		}
		a, b := l, r
		l = func(x T) bool { return a(x) || b(x) }
	}
	return l, nil
}

func (p *filterParser[T]) and() (func(T) bool, *apiError) {
	l, e := p.unary()
	if e != nil {
		return nil, e
	}
	for p.keyword("and") {
		r, e := p.unary()
		if e != nil {
			return nil, e
		}
		a, b := l, r
		l = func(x T) bool { return a(x) && b(x) }
	}
	return l, nil
}

func (p *filterParser[T]) unary() (func(T) bool, *apiError) {
	if p.keyword("not") {
		f, e := p.unary()
		if e != nil {
			return nil, e
		}
		return func(x T) bool { return !f(x) }, nil
	}
	t := p.peek()
	if t.kind == tLParen {
		p.next()
		f, e := p.or()
		if e != nil {
			return nil, e
		}
		if r := p.next(); r.kind != tRParen {
			return nil, syntaxError(p.src, r.pos)
		}
		return f, nil
	}
	return p.comparison()
}

func (p *filterParser[T]) comparison() (func(T) bool, *apiError) {
	t := p.next()
	if t.kind != tIdent {
		if t.kind == tEOF {
			return nil, syntaxError(p.src, t.pos)
		}
		// A literal on the left, as in 'x' eq subject.
		return nil, invalidNodes()
	}
	if p.peek().kind == tLParen && strings.EqualFold(t.text, "startswith") {
		return p.startsWith()
	}
	if p.peek().kind == tLParen || strings.Contains(t.text, ":") {
		// Other functions (contains and endswith, which Exchange does not
		// evaluate on mail; any/all lambdas) are not modelled.
		return nil, invalidNodes()
	}
	pr, e := p.sc.lookup(t.text)
	if e != nil {
		return nil, e
	}
	p.props = append(p.props, lower(t.text))
	opTok := p.next()
	if opTok.kind != tIdent {
		if opTok.kind == tEOF && pr.kind == kBool {
			// A bare boolean property (isRead) means "isRead eq true".
			return pr.bl, nil
		}
		return nil, syntaxError(p.src, opTok.pos)
	}
	op := opTok.text
	switch op {
	case "eq", "ne", "gt", "ge", "lt", "le":
	case "and", "or":
		if pr.kind == kBool {
			p.i--
			return pr.bl, nil
		}
		return nil, syntaxError(p.src, opTok.pos)
	case "has", "in", "add", "sub", "mul", "div", "mod":
		return nil, invalidNodes()
	default:
		return nil, syntaxError(p.src, opTok.pos)
	}
	lit := p.next()
	litKind, ok := literalKind(lit)
	if !ok {
		if lit.kind == tIdent || lit.kind == tLParen {
			// Property-to-property comparisons and functions on the right.
			return nil, invalidNodes()
		}
		return nil, syntaxError(p.src, lit.pos)
	}
	if litKind == kString && lit.kind == tIdent && lit.text == "null" {
		litKind = pr.kind
	}
	if litKind != pr.kind {
		return nil, badRequest("BadRequest", "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.", pr.kind.edm(), litKind.edm(), opName(op))
	}
	cmp, e := p.comparer(pr, lit)
	if e != nil {
		return nil, e
	}
	if pr.kind == kBool && op != "eq" && op != "ne" {
		return nil, invalidNodes()
	}
	if pr.kind == kString && (op == "eq" || op == "ne") {
		// EqualFold avoids lower-casing every candidate on big mailboxes.
		want, get, neg := "", pr.str, op == "ne"
		if lit.kind == tString {
			want = lit.text
		}
		return func(x T) bool { return strings.EqualFold(get(x), want) != neg }, nil
	}
	switch op {
	case "eq":
		return func(x T) bool { return cmp(x) == 0 }, nil
	case "ne":
		return func(x T) bool { return cmp(x) != 0 }, nil
	case "gt":
		return func(x T) bool { return cmp(x) > 0 }, nil
	case "ge":
		return func(x T) bool { return cmp(x) >= 0 }, nil
	case "lt":
		return func(x T) bool { return cmp(x) < 0 }, nil
	default:
		return func(x T) bool { return cmp(x) <= 0 }, nil
	}
}

// startsWith parses the rest of startswith(property,'prefix'), which Graph
// evaluates on string properties of mail such as subject, case-insensitively.
func (p *filterParser[T]) startsWith() (func(T) bool, *apiError) {
	p.next() // (
	name := p.next()
	if name.kind != tIdent {
		return nil, invalidNodes()
	}
	pr, e := p.sc.lookup(name.text)
	if e != nil {
		return nil, e
	}
	if pr.kind != kString {
		return nil, invalidNodes()
	}
	p.props = append(p.props, lower(name.text))
	if c := p.next(); c.kind != tComma {
		return nil, syntaxError(p.src, c.pos)
	}
	lit := p.next()
	if lit.kind != tString {
		return nil, invalidNodes()
	}
	if r := p.next(); r.kind != tRParen {
		return nil, syntaxError(p.src, r.pos)
	}
	prefix := lower(lit.text)
	return func(x T) bool { return strings.HasPrefix(lower(pr.str(x)), prefix) }, nil
}

func opName(op string) string {
	return map[string]string{"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual", "lt": "LessThan", "le": "LessThanOrEqual"}[op]
}

// literalKind classifies a literal token; ok is false for non-literals.
func literalKind(t token) (propKind, bool) {
	switch t.kind {
	case tString:
		return kString, true
	case tIdent:
		switch t.text {
		case "true", "false":
			return kBool, true
		case "null":
			return kString, true
		}
		return 0, false
	case tNumber:
		if _, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			return kInt, true
		}
		if _, ok := parseFilterTime(t.text); ok {
			return kTime, true
		}
		return 0, false
	}
	return 0, false
}

func parseFilterTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// comparer returns a function comparing the property of x with the literal:
// negative, zero or positive. Strings compare case-insensitively, as
// Exchange does.
func (p *filterParser[T]) comparer(pr prop[T], lit token) (func(T) int, *apiError) {
	switch pr.kind {
	case kString:
		want := ""
		if lit.kind == tString {
			want = lower(lit.text)
		}
		return func(x T) int { return strings.Compare(lower(pr.str(x)), want) }, nil
	case kBool:
		want := lit.text == "true"
		return func(x T) int {
			if pr.bl(x) == want {
				return 0
			}
			return 1
		}, nil
	case kTime:
		want, _ := parseFilterTime(lit.text)
		return func(x T) int { return pr.tm(x).Compare(want) }, nil
	default:
		want, _ := strconv.ParseInt(lit.text, 10, 64)
		return func(x T) int {
			v := pr.num(x)
			switch {
			case v < want:
				return -1
			case v > want:
				return 1
			}
			return 0
		}, nil
	}
}
