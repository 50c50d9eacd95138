package feel

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tNumber
	tString
	tName     // identifier (may be a keyword; the parser decides)
	tQuoted   // `backtick name`
	tTemporal // @"..."
	tPunct    // operators and brackets; text holds the symbol
)

type token struct {
	kind tokKind
	text string // identifier, symbol, number text, or decoded string
	pos  int    // byte offset in the source
	end  int
}

// SyntaxError reports where and why an expression does not parse.
type SyntaxError struct {
	Pos  int // byte offset
	Line int // 1-based
	Col  int // 1-based, in characters
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

func newSyntaxError(src string, pos int, msg string) *SyntaxError {
	if pos > len(src) {
		pos = len(src)
	}
	line, col := 1, 1
	for _, r := range src[:pos] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &SyntaxError{Pos: pos, Line: line, Col: col, Msg: msg}
}

func isNameStart(r rune) bool {
	return r == '_' || r == '?' || r == '$' || unicode.IsLetter(r) || r > 0x7f && (unicode.Is(unicode.So, r) || unicode.Is(unicode.Sk, r) || unicode.Is(unicode.Nl, r))
}

func isNamePart(r rune) bool {
	return isNameStart(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || r == '\''
}

// lex splits the whole source into tokens up front; expressions are small.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, newSyntaxError(src, i, "unterminated comment")
			}
			i += j + 4
			continue
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9' && !(len(toks) > 0 && toks[len(toks)-1].kind == tPunct && toks[len(toks)-1].text == ".."):
			start := i
			for i < len(src) && src[i] >= '0' && src[i] <= '9' {
				i++
			}
			if i+1 < len(src) && src[i] == '.' && src[i+1] >= '0' && src[i+1] <= '9' {
				i++
				for i < len(src) && src[i] >= '0' && src[i] <= '9' {
					i++
				}
			} else if i < len(src) && src[i] == '.' && start == i {
				i++
				for i < len(src) && src[i] >= '0' && src[i] <= '9' {
					i++
				}
			}
			if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
				j := i + 1
				if j < len(src) && (src[j] == '+' || src[j] == '-') {
					j++
				}
				if j < len(src) && src[j] >= '0' && src[j] <= '9' {
					for j < len(src) && src[j] >= '0' && src[j] <= '9' {
						j++
					}
					i = j
				}
			}
			toks = append(toks, token{kind: tNumber, text: src[start:i], pos: start, end: i})
			continue
		case c == '"':
			s, n, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, text: s, pos: i, end: i + n})
			i += n
			continue
		case c == '@' && i+1 < len(src) && src[i+1] == '"':
			s, n, err := lexString(src, i+1)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tTemporal, text: s, pos: i, end: i + 1 + n})
			i += 1 + n
			continue
		case c == '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return nil, newSyntaxError(src, i, "unterminated `name`")
			}
			toks = append(toks, token{kind: tQuoted, text: src[i+1 : i+1+j], pos: i, end: i + 2 + j})
			i += j + 2
			continue
		}
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, newSyntaxError(src, i, "invalid UTF-8")
		}
		if isNameStart(r) {
			start := i
			i += size
			for i < len(src) {
				r, size = utf8.DecodeRuneInString(src[i:])
				if !isNamePart(r) {
					break
				}
				i += size
			}
			toks = append(toks, token{kind: tName, text: src[start:i], pos: start, end: i})
			continue
		}
		for _, p := range puncts {
			if strings.HasPrefix(src[i:], p) {
				toks = append(toks, token{kind: tPunct, text: p, pos: i, end: i + len(p)})
				i += len(p)
				goto next
			}
		}
		return nil, newSyntaxError(src, i, fmt.Sprintf("unexpected character %q", r))
	next:
	}
	toks = append(toks, token{kind: tEOF, pos: len(src), end: len(src)})
	return toks, nil
}

// Longest symbols first.
var puncts = []string{"**", "..", "!=", "<=", ">=", "->", "(", ")", "[", "]", "{", "}", ",", ".", ":", "=", "<", ">", "+", "-", "*", "/", "!"}

// lexString decodes a "..." literal starting at src[i]; n is the bytes consumed.
func lexString(src string, i int) (string, int, error) {
	var b strings.Builder
	j := i + 1
	for j < len(src) {
		c := src[j]
		switch c {
		case '"':
			return b.String(), j + 1 - i, nil
		case '\\':
			if j+1 >= len(src) {
				return "", 0, newSyntaxError(src, j, "unterminated string")
			}
			e := src[j+1]
			switch e {
			case '"', '\\', '\'', '/':
				b.WriteByte(e)
				j += 2
			case 'n':
				b.WriteByte('\n')
				j += 2
			case 'r':
				b.WriteByte('\r')
				j += 2
			case 't':
				b.WriteByte('\t')
				j += 2
			case 'b':
				b.WriteByte('\b')
				j += 2
			case 'f':
				b.WriteByte('\f')
				j += 2
			case 'u':
				r, ok := hexRune(src, j+2, 4)
				if !ok {
					return "", 0, newSyntaxError(src, j, `bad \u escape`)
				}
				j += 6
				if utf16.IsSurrogate(r) {
					if j+6 <= len(src) && src[j] == '\\' && src[j+1] == 'u' {
						if r2, ok := hexRune(src, j+2, 4); ok {
							if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
								r = d
								j += 6
							}
						}
					}
				}
				b.WriteRune(r)
			case 'U':
				r, ok := hexRune(src, j+2, 6)
				if !ok || r > unicode.MaxRune {
					return "", 0, newSyntaxError(src, j, `bad \U escape`)
				}
				b.WriteRune(r)
				j += 8
			default:
				// Unknown escapes are kept as written.
				b.WriteByte('\\')
				j++
			}
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, newSyntaxError(src, i, "unterminated string")
}

func hexRune(src string, i, n int) (rune, bool) {
	if i+n > len(src) {
		return 0, false
	}
	v, err := strconv.ParseUint(src[i:i+n], 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}
