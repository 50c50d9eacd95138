package feel

import (
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/apd/v3"
)

type nativeFn = func(s *state, a []Value) (Value, error)

var builtins = map[string]*Function{}

// reg registers a built-in. params name the arguments for named invocation; alt lists
// other accepted name sets (overloads).
func reg(name string, params []string, fn nativeFn, alt ...[]string) {
	builtins[name] = &Function{name: name, params: params, alt: alt, native: fn}
}

func null() (Value, error) { return nil, nil }

func argN(a []Value, i int) Value {
	if i < len(a) {
		return a[i]
	}
	return nil
}

func asNum(v Value) (*apd.Decimal, bool) {
	d, ok := v.(*apd.Decimal)
	return d, ok
}

func asInt(v Value) (int64, bool) {
	d, ok := v.(*apd.Decimal)
	if !ok {
		return 0, false
	}
	var r apd.Decimal
	tc := *decCtx
	tc.Rounding = apd.RoundDown
	if _, err := tc.RoundToIntegralValue(&r, d); err != nil {
		return 0, false
	}
	i, err := r.Int64()
	return i, err == nil
}

func asStr(v Value) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// asList applies FEEL's singleton-list conversion: a non-list value stands for a list of
// one element; null stays null.
func asList(v Value) ([]any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case []any:
		return x, true
	}
	return []any{v}, true
}

// listArg accepts either one list argument or the items spread out as arguments.
func listArg(a []Value) ([]any, bool) {
	if len(a) == 1 {
		switch x := a[0].(type) {
		case []any:
			return x, true
		case nil:
			return nil, false
		}
	}
	if len(a) == 0 {
		return nil, false
	}
	return a, true
}

func init() {
	registerConversions()
	registerStrings()
	registerLists()
	registerNumbers()
	registerTemporal()
	registerContexts()
}

func registerConversions() {
	reg("not", []string{"negand"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		if b, ok := a[0].(bool); ok {
			return !b, nil
		}
		return null()
	})
	reg("string", []string{"from"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 || a[0] == nil {
			return null()
		}
		str := toString(a[0])
		return str, checkString(len(str))
	})
	reg("number", []string{"from", "grouping separator", "decimal separator"}, func(s *state, a []Value) (Value, error) {
		if len(a) == 0 || len(a) > 3 {
			return null()
		}
		str, ok := asStr(a[0])
		if !ok {
			return null()
		}
		grp, dec := argN(a, 1), argN(a, 2)
		if grp != nil {
			g, ok := grp.(string)
			if !ok || g != " " && g != "," && g != "." {
				return null()
			}
			str = strings.ReplaceAll(str, g, "")
		}
		if dec != nil {
			d, ok := dec.(string)
			if !ok || d != "," && d != "." || d == grp {
				return null()
			}
			str = strings.ReplaceAll(str, d, ".")
		}
		return parseNumber(str), nil
	})
	reg("is", []string{"value1", "value2"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 1 || len(a) > 2 {
			return null()
		}
		a = []Value{a[0], argN(a, 1)}
		if typeName(a[0]) != typeName(a[1]) {
			return false, nil
		}
		switch x := a[0].(type) {
		case Time:
			y := a[1].(Time)
			return x.ns == y.ns && x.zone == y.zone && x.off == y.off && x.loc.String() == y.loc.String(), nil
		case DateTime:
			y := a[1].(DateTime)
			_, o1 := x.t.Zone()
			_, o2 := y.t.Zone()
			return x.zone == y.zone && x.t.Equal(y.t) && o1 == o2 && x.t.Location().String() == y.t.Location().String(), nil
		}
		eq, ok := equal(a[0], a[1])
		return ok && eq, nil
	})
	reg("get or else", []string{"value", "default"}, func(s *state, a []Value) (Value, error) {
		if v := argN(a, 0); v != nil {
			return v, nil
		}
		return argN(a, 1), nil
	})
	reg("assert", []string{"value", "condition", "cause"}, func(s *state, a []Value) (Value, error) {
		if argN(a, 1) == true {
			return argN(a, 0), nil
		}
		return null()
	})
}

// parseNumber reads a FEEL number from text; anything else is null.
func parseNumber(str string) Value {
	str = strings.TrimSpace(str)
	if str == "" {
		return nil
	}
	for i, c := range str {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || (c == '-' || c == '+') && (i == 0 || str[i-1] == 'e' || str[i-1] == 'E')) {
			return nil
		}
	}
	return nilIfNil(decFromString(str))
}

// toString renders a value as FEEL string() does.
func toString(v Value) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case *apd.Decimal:
		return formatNumber(x)
	case Date:
		return x.String()
	case Time:
		return x.String()
	case DateTime:
		return x.String()
	case DayTimeDuration:
		return x.String()
	case YearMonthDuration:
		return x.String()
	case []any:
		var b strings.Builder
		b.WriteString("[")
		for i, it := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoted(norm(it)))
		}
		b.WriteString("]")
		return b.String()
	case *Context, map[string]any:
		var b strings.Builder
		b.WriteString("{")
		for i, k := range ctxKeys(x) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteString(":")
			vv, _ := ctxGet(x, k)
			b.WriteString(quoted(vv))
		}
		b.WriteString("}")
		return b.String()
	case *Range:
		if x.op != "" {
			return x.op + " " + quoted(x.Start) + quoted(x.End)
		}
		lo, hi := "(", ")"
		if x.StartIncl {
			lo = "["
		}
		if x.EndIncl {
			hi = "]"
		}
		return lo + quoted(x.Start) + ".." + quoted(x.End) + hi
	case *Function:
		return "function"
	}
	return ""
}

func quoted(v Value) string {
	if s, ok := v.(string); ok {
		return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
	}
	return toString(v)
}

func registerStrings() {
	str1 := func(name, param string, f func(string) Value) {
		reg(name, []string{param}, func(s *state, a []Value) (Value, error) {
			if len(a) != 1 {
				return null()
			}
			x, ok := asStr(a[0])
			if !ok {
				return null()
			}
			return f(x), nil
		})
	}
	str1("string length", "string", func(x string) Value { return decFromInt(int64(utf8.RuneCountInString(x))) })
	str1("upper case", "string", func(x string) Value { return strings.ToUpper(x) })
	str1("lower case", "string", func(x string) Value { return strings.ToLower(x) })
	str1("trim", "string", func(x string) Value { return strings.TrimSpace(x) })
	str1("is blank", "string", func(x string) Value { return strings.TrimSpace(x) == "" })
	str2 := func(name string, params []string, f func(a, b string) Value) {
		reg(name, params, func(s *state, a []Value) (Value, error) {
			if len(a) != 2 {
				return null()
			}
			x, ok1 := asStr(a[0])
			y, ok2 := asStr(a[1])
			if !ok1 || !ok2 {
				return null()
			}
			return f(x, y), nil
		})
	}
	str2("substring before", []string{"string", "match"}, func(x, y string) Value {
		if i := strings.Index(x, y); i >= 0 {
			return x[:i]
		}
		return ""
	})
	str2("substring after", []string{"string", "match"}, func(x, y string) Value {
		if i := strings.Index(x, y); i >= 0 {
			return x[i+len(y):]
		}
		return ""
	})
	str2("contains", []string{"string", "match"}, func(x, y string) Value { return strings.Contains(x, y) })
	str2("starts with", []string{"string", "match"}, func(x, y string) Value { return strings.HasPrefix(x, y) })
	str2("ends with", []string{"string", "match"}, func(x, y string) Value { return strings.HasSuffix(x, y) })
	reg("substring", []string{"string", "start position", "length"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 2 || len(a) > 3 {
			return null()
		}
		x, ok := asStr(a[0])
		start, ok2 := asNum(a[1])
		if !ok || !ok2 {
			return null()
		}
		st, ok := asInt(start)
		if !ok {
			return null()
		}
		r := []rune(x)
		n := int64(len(r))
		if st < 0 {
			st = n + st + 1
		}
		if st <= 0 {
			st = 1
		}
		if st > n+1 {
			return "", nil
		}
		end := n
		if l := argN(a, 2); l != nil {
			ln, ok := asInt(l)
			if !ok || ln < 0 {
				return null()
			}
			if st-1+ln < end {
				end = st - 1 + ln
			}
		}
		return string(r[st-1 : end]), nil
	})
	reg("matches", []string{"input", "pattern", "flags"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 2 || len(a) > 3 {
			return null()
		}
		in, ok1 := asStr(a[0])
		pat, ok2 := asStr(a[1])
		re, ok3 := compileRegex(pat, argN(a, 2))
		if !ok1 || !ok2 || !ok3 {
			return null()
		}
		return re.MatchString(in), nil
	})
	reg("replace", []string{"input", "pattern", "replacement", "flags"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 3 || len(a) > 4 {
			return null()
		}
		in, ok1 := asStr(a[0])
		pat, ok2 := asStr(a[1])
		rep, ok3 := asStr(a[2])
		if !ok1 || !ok2 || !ok3 {
			return null()
		}
		re, ok := compileRegex(pat, argN(a, 3))
		if !ok {
			return null()
		}
		if re.MatchString("") && pat != "" && !strings.Contains(flagStr(argN(a, 3)), "q") {
			// XPath forbids patterns that match the empty string.
			return null()
		}
		goRep, ok := translateReplacement(rep, strings.Contains(flagStr(argN(a, 3)), "q"))
		if !ok {
			return null()
		}
		out := re.ReplaceAllString(in, goRep)
		return out, checkString(len(out))
	})
	reg("split", []string{"string", "delimiter"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 {
			return null()
		}
		in, ok1 := asStr(a[0])
		del, ok2 := asStr(a[1])
		if !ok1 || !ok2 || del == "" {
			return null()
		}
		re, ok := compileRegex(del, nil)
		if !ok {
			return null()
		}
		parts := re.Split(in, -1)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	})
	reg("extract", []string{"string", "pattern"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 {
			return null()
		}
		in, ok1 := asStr(a[0])
		pat, ok2 := asStr(a[1])
		re, ok3 := compileRegex(pat, nil)
		if !ok1 || !ok2 || !ok3 {
			return null()
		}
		ms := re.FindAllString(in, -1)
		out := make([]any, len(ms))
		for i, m := range ms {
			out[i] = m
		}
		return out, nil
	})
	reg("string join", []string{"list", "delimiter", "prefix", "suffix"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 1 || len(a) > 4 || len(a) == 3 {
			return null()
		}
		l, ok := asList(a[0])
		if !ok {
			return null()
		}
		var sep, pre, suf string
		for i, p := range []*string{&sep, &pre, &suf} {
			if v := argN(a, i+1); v != nil {
				x, ok := v.(string)
				if !ok {
					return null()
				}
				*p = x
			}
		}
		parts := make([]string, 0, len(l))
		size := 0
		for _, it := range l {
			switch x := norm(it).(type) {
			case nil:
			case string:
				parts = append(parts, x)
				size += len(x) + len(sep)
			default:
				return null()
			}
		}
		if err := checkString(size + len(pre) + len(suf)); err != nil {
			return nil, err
		}
		return pre + strings.Join(parts, sep) + suf, nil
	})
}

func flagStr(v Value) string {
	s, _ := v.(string)
	return s
}

var (
	regexCache     sync.Map // pattern+flags -> *regexp.Regexp
	regexCacheSize atomic.Int64
)

// Patterns usually are constants in expressions; the cache stops growing after this many
// so that patterns built from data cannot exhaust memory.
const maxRegexCache = 1024

const maxRegexLen = 4096

// compileRegex translates an XPath regular expression with flags into Go syntax.
func compileRegex(pat string, flags Value) (*regexp.Regexp, bool) {
	fl := ""
	if flags != nil {
		f, ok := flags.(string)
		if !ok {
			return nil, false
		}
		fl = f
	}
	if len(pat) > maxRegexLen {
		return nil, false
	}
	key := fl + "\x00" + pat
	if re, ok := regexCache.Load(key); ok {
		return re.(*regexp.Regexp), true
	}
	prefix := ""
	for _, c := range fl {
		switch c {
		case 'i':
			prefix += "i"
		case 's':
			prefix += "s"
		case 'm':
			prefix += "m"
		case 'x':
			pat = stripRegexSpace(pat)
		case 'q':
			pat = regexp.QuoteMeta(pat)
		default:
			return nil, false
		}
	}
	if !strings.Contains(fl, "q") && !strings.Contains(fl, "s") {
		pat = xpathDot(pat)
	}
	if prefix != "" {
		pat = "(?" + prefix + ")" + pat
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, false
	}
	if regexCacheSize.Add(1) <= maxRegexCache {
		regexCache.Store(key, re)
	}
	return re, true
}

// xpathDot rewrites "." outside character classes: in XPath it excludes \r as well as \n.
func xpathDot(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
			continue
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case c == '.' && !inClass:
			b.WriteString(`[^\n\r]`)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func stripRegexSpace(p string) string {
	var b strings.Builder
	inClass := false
	for _, c := range p {
		switch {
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case !inClass && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// translateReplacement turns an XPath replacement string ($1, \$) into Go's form.
func translateReplacement(rep string, literal bool) (string, bool) {
	if literal {
		return strings.ReplaceAll(rep, "$", "$$"), true
	}
	var b strings.Builder
	for i := 0; i < len(rep); i++ {
		c := rep[i]
		switch c {
		case '\\':
			if i+1 >= len(rep) || rep[i+1] != '\\' && rep[i+1] != '$' {
				return "", false
			}
			if rep[i+1] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte('\\')
			}
			i++
		case '$':
			j := i + 1
			for j < len(rep) && rep[j] >= '0' && rep[j] <= '9' {
				j++
			}
			if j == i+1 {
				return "", false
			}
			b.WriteString("${" + rep[i+1:j] + "}")
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func registerLists() {
	reg("list contains", []string{"list", "element"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		for _, it := range l {
			if eq, ok := equal(norm(it), a[1]); ok && eq {
				return true, nil
			}
		}
		return false, nil
	})
	reg("count", []string{"list"}, func(s *state, a []Value) (Value, error) {
		l, ok := listArg(a)
		if !ok {
			return null()
		}
		return decFromInt(int64(len(l))), nil
	})
	minmax := func(name string, want int) {
		reg(name, []string{"list"}, func(s *state, a []Value) (Value, error) {
			l, ok := listArg(a)
			if !ok || len(l) == 0 {
				return null()
			}
			best := norm(l[0])
			for _, it := range l[1:] {
				v := norm(it)
				c, ok := compare(v, best)
				if !ok {
					return null()
				}
				if c == want {
					best = v
				}
			}
			if _, ok := compare(best, best); !ok {
				return null()
			}
			return best, nil
		})
	}
	minmax("min", -1)
	minmax("max", 1)
	// fold combines a non-empty list of numbers; any non-number, or an
	// arithmetic failure, is null.
	fold := func(name string, unit int64, op decFn) {
		reg(name, []string{"list"}, func(s *state, a []Value) (Value, error) {
			nums, ok := numList(a)
			if !ok || len(nums) == 0 {
				return null()
			}
			acc := apd.New(unit, 0)
			for _, d := range nums {
				r, _ := decOp(op, acc, d).(*apd.Decimal)
				if r == nil {
					return null()
				}
				acc = r
			}
			return acc, nil
		})
	}
	fold("sum", 0, decCtx.Add)
	fold("product", 1, decCtx.Mul)
	reg("mean", []string{"list"}, func(s *state, a []Value) (Value, error) {
		nums, ok := numList(a)
		if !ok || len(nums) == 0 {
			return null()
		}
		return meanOf(nums), nil
	})
	reg("median", []string{"list"}, func(s *state, a []Value) (Value, error) {
		nums, ok := numList(a)
		if !ok || len(nums) == 0 {
			return null()
		}
		sort.Slice(nums, func(i, j int) bool { return nums[i].Cmp(nums[j]) < 0 })
		n := len(nums)
		if n%2 == 1 {
			return nums[n/2], nil
		}
		return div(decOp(decCtx.Add, nums[n/2-1], nums[n/2]), apd.New(2, 0)), nil
	})
	reg("stddev", []string{"list"}, func(s *state, a []Value) (Value, error) {
		nums, ok := numList(a)
		if !ok || len(nums) < 2 {
			return null()
		}
		m := meanOf(nums).(*apd.Decimal)
		acc := apd.New(0, 0)
		for _, x := range nums {
			var d, sq apd.Decimal
			decCtx.Sub(&d, x, m)
			decCtx.Mul(&sq, &d, &d)
			decCtx.Add(acc, acc, &sq)
		}
		var v, r apd.Decimal
		decCtx.Quo(&v, acc, apd.New(int64(len(nums)-1), 0))
		decCtx.Sqrt(&r, &v)
		return &r, nil
	})
	reg("mode", []string{"list"}, func(s *state, a []Value) (Value, error) {
		nums, ok := numList(a)
		if !ok {
			return null()
		}
		if len(nums) == 0 {
			return []any{}, nil
		}
		sort.Slice(nums, func(i, j int) bool { return nums[i].Cmp(nums[j]) < 0 })
		best := 0
		var out []any
		for i := 0; i < len(nums); {
			j := i
			for j < len(nums) && nums[j].Cmp(nums[i]) == 0 {
				j++
			}
			switch c := j - i; {
			case c > best:
				best = c
				out = []any{nums[i]}
			case c == best:
				out = append(out, nums[i])
			}
			i = j
		}
		return out, nil
	})
	boolAgg := func(name string, isAll bool) {
		reg(name, []string{"list"}, func(s *state, a []Value) (Value, error) {
			l, ok := listArg(a)
			if !ok {
				if len(a) == 1 {
					if b, ok := a[0].(bool); ok {
						return b, nil
					}
				}
				return null()
			}
			sawNull := false
			for _, it := range l {
				switch v := norm(it).(type) {
				case bool:
					if v != isAll {
						return v, nil
					}
				default:
					sawNull = true
				}
			}
			if sawNull {
				return null()
			}
			return isAll, nil
		})
	}
	boolAgg("all", true)
	boolAgg("any", false)
	reg("sublist", []string{"list", "start position", "length"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 2 || len(a) > 3 {
			return null()
		}
		l, ok := a[0].([]any)
		st, ok2 := asInt(a[1])
		if !ok || !ok2 || st == 0 {
			return null()
		}
		n := int64(len(l))
		if st < 0 {
			st = n + st + 1
		}
		if st < 1 || st > n {
			return null()
		}
		end := n
		if a2 := argN(a, 2); a2 != nil {
			ln, ok := asInt(a2)
			if !ok || ln < 0 || st-1+ln > n {
				return null()
			}
			end = st - 1 + ln
		}
		return append([]any{}, l[st-1:end]...), nil
	})
	reg("append", []string{"list", "item"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 1 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		if err := checkList(len(l) + len(a) - 1); err != nil {
			return nil, err
		}
		out := make([]any, 0, len(l)+len(a)-1)
		out = append(out, l...)
		return append(out, a[1:]...), nil
	})
	reg("concatenate", []string{"list"}, func(s *state, a []Value) (Value, error) {
		out := []any{}
		for _, x := range a {
			l, ok := x.([]any)
			if !ok {
				return null()
			}
			if err := checkList(len(out) + len(l)); err != nil {
				return nil, err
			}
			out = append(out, l...)
		}
		return out, nil
	})
	reg("insert before", []string{"list", "position", "newItem"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 3 {
			return null()
		}
		l, ok := a[0].([]any)
		p, ok2 := asInt(a[1])
		if !ok || !ok2 {
			return null()
		}
		n := int64(len(l))
		if p < 0 {
			p = n + p + 1
		}
		if p < 1 || p > n+1 {
			return null()
		}
		out := make([]any, 0, n+1)
		out = append(out, l[:p-1]...)
		out = append(out, a[2])
		return append(out, l[p-1:]...), nil
	})
	reg("remove", []string{"list", "position"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 {
			return null()
		}
		l, ok := a[0].([]any)
		p, ok2 := asInt(a[1])
		if !ok || !ok2 {
			return null()
		}
		n := int64(len(l))
		if p < 0 {
			p = n + p + 1
		}
		if p < 1 || p > n {
			return null()
		}
		out := make([]any, 0, n-1)
		out = append(out, l[:p-1]...)
		return append(out, l[p:]...), nil
	})
	reg("list replace", []string{"list", "position", "newItem"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 3 {
			return null()
		}
		l, ok := asList(a[0])
		if !ok {
			return null()
		}
		out := append([]any{}, l...)
		if f, ok := a[1].(*Function); ok {
			for i, it := range l {
				r, err := s.call(f, []Value{norm(it), a[2]})
				if err != nil {
					return nil, err
				}
				switch r {
				case true:
					out[i] = a[2]
				case false:
				default:
					return null()
				}
			}
			return out, nil
		}
		p, ok := asInt(a[1])
		if !ok {
			return null()
		}
		n := int64(len(l))
		if p < 0 {
			p = n + p + 1
		}
		if p < 1 || p > n {
			return null()
		}
		out[p-1] = a[2]
		return out, nil
	}, []string{"list", "match", "newItem"})
	reg("reverse", []string{"list"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		out := make([]any, len(l))
		for i, it := range l {
			out[len(l)-1-i] = it
		}
		return out, nil
	})
	reg("index of", []string{"list", "match"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		out := []any{}
		for i, it := range l {
			if eq, ok := equal(norm(it), a[1]); ok && eq {
				out = append(out, decFromInt(int64(i+1)))
			}
		}
		return out, nil
	})
	reg("union", []string{"list"}, func(s *state, a []Value) (Value, error) {
		var all []any
		for _, x := range a {
			l, ok := x.([]any)
			if !ok {
				return null()
			}
			all = append(all, l...)
		}
		return distinct(s, all)
	})
	reg("distinct values", []string{"list"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		return distinct(s, l)
	})
	reg("duplicate values", []string{"list"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		if err := s.spend(len(l) * len(l) / 8); err != nil {
			return nil, err
		}
		out := []any{}
		for i, it := range l {
			v := norm(it)
			dup := false
			for _, o := range l[i+1:] {
				if eq, ok := equal(v, norm(o)); ok && eq {
					dup = true
					break
				}
			}
			if dup && !containsEq(out, v) {
				out = append(out, v)
			}
		}
		return out, nil
	})
	reg("flatten", []string{"list"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		out := []any{}
		var rec func(l []any, depth int) error
		rec = func(l []any, depth int) error {
			if depth > 1000 {
				return &LimitError{What: "list nested too deeply"}
			}
			for _, it := range l {
				if sub, ok := it.([]any); ok {
					if err := rec(sub, depth+1); err != nil {
						return err
					}
					continue
				}
				if err := checkList(len(out) + 1); err != nil {
					return err
				}
				out = append(out, norm(it))
			}
			return nil
		}
		return out, rec(l, 0)
	})
	reg("sort", []string{"list", "precedes"}, func(s *state, a []Value) (Value, error) {
		if len(a) < 1 || len(a) > 2 {
			return null()
		}
		l, ok := a[0].([]any)
		if !ok {
			return null()
		}
		out := make([]any, len(l))
		for i, it := range l {
			out[i] = norm(it)
		}
		var fail error
		bad := false
		if f, ok := argN(a, 1).(*Function); ok {
			sort.SliceStable(out, func(i, j int) bool {
				if fail != nil {
					return false
				}
				r, err := s.call(f, []Value{out[i], out[j]})
				if err != nil {
					fail = err
				}
				return r == true
			})
		} else if argN(a, 1) != nil {
			return null()
		} else {
			sort.SliceStable(out, func(i, j int) bool {
				c, ok := compare(out[i], out[j])
				if !ok {
					bad = true
				}
				return c < 0
			})
		}
		if fail != nil {
			return nil, fail
		}
		if bad {
			return null()
		}
		return out, nil
	})
	reg("is empty", []string{"list"}, func(s *state, a []Value) (Value, error) {
		l, ok := argN(a, 0).([]any)
		if !ok || len(a) != 1 {
			return null()
		}
		return len(l) == 0, nil
	})
	reg("partition", []string{"list", "size"}, func(s *state, a []Value) (Value, error) {
		l, ok := argN(a, 0).([]any)
		n, ok2 := asInt(argN(a, 1))
		if !ok || !ok2 || n <= 0 {
			return null()
		}
		out := []any{}
		for i := 0; i < len(l); i += int(n) {
			out = append(out, append([]any{}, l[i:min(len(l), i+int(n))]...))
		}
		return out, nil
	})
}

func containsEq(l []any, v Value) bool {
	for _, o := range l {
		if eq, ok := equal(norm(o), v); ok && eq {
			return true
		}
	}
	return false
}

func distinct(s *state, l []any) (Value, error) {
	if err := s.spend(len(l) * len(l) / 8); err != nil {
		return nil, err
	}
	out := []any{}
	for _, it := range l {
		v := norm(it)
		if !containsEq(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func numList(a []Value) ([]*apd.Decimal, bool) {
	l, ok := listArg(a)
	if !ok {
		return nil, false
	}
	out := make([]*apd.Decimal, len(l))
	for i, it := range l {
		d, ok := norm(it).(*apd.Decimal)
		if !ok {
			return nil, false
		}
		out[i] = d
	}
	return out, true
}

func meanOf(nums []*apd.Decimal) Value {
	acc := apd.New(0, 0)
	for _, x := range nums {
		decCtx.Add(acc, acc, x)
	}
	return div(acc, apd.New(int64(len(nums)), 0))
}

// roundTo rounds n to scale digits after the point with the given mode.
func roundTo(n *apd.Decimal, scale int64, mode apd.Rounder) Value {
	if scale < -6111 || scale > 6176 {
		return nil
	}
	if int64(n.Exponent) >= -scale {
		// Already at or below the requested precision.
		r := new(apd.Decimal)
		r.Set(n)
		return r
	}
	tc := *decCtx
	tc.Rounding = mode
	// Room for long results; quantize fails rather than rounding beyond this.
	tc.Precision = 1000
	r := new(apd.Decimal)
	if _, err := tc.Quantize(r, n, int32(-scale)); err != nil || r.Form != apd.Finite {
		return nil
	}
	return r
}

func registerNumbers() {
	round := func(name string, mode apd.Rounder) {
		reg(name, []string{"n", "scale"}, func(s *state, a []Value) (Value, error) {
			if len(a) != 2 {
				return null()
			}
			n, ok := asNum(a[0])
			sc, ok2 := asNum(a[1])
			if !ok || !ok2 {
				return null()
			}
			si, ok := asInt(sc)
			if !ok {
				return null()
			}
			return roundTo(n, si, mode), nil
		})
	}
	round("decimal", apd.RoundHalfEven)
	round("round up", apd.RoundUp)
	round("round down", apd.RoundDown)
	round("round half up", apd.RoundHalfUp)
	round("round half down", apd.RoundHalfDown)
	floorCeil := func(name string, mode apd.Rounder) {
		reg(name, []string{"n", "scale"}, func(s *state, a []Value) (Value, error) {
			if len(a) < 1 || len(a) > 2 {
				return null()
			}
			n, ok := asNum(a[0])
			if !ok {
				return null()
			}
			var sc int64
			if len(a) == 2 {
				d, ok := asNum(a[1])
				if !ok {
					return null()
				}
				v, err := d.Int64()
				if err != nil {
					return null()
				}
				sc = v
			}
			return roundTo(n, sc, mode), nil
		})
	}
	floorCeil("floor", apd.RoundFloor)
	floorCeil("ceiling", apd.RoundCeiling)
	reg("abs", []string{"n"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		switch x := a[0].(type) {
		case *apd.Decimal:
			r := new(apd.Decimal)
			r.Abs(x)
			return r, nil
		case DayTimeDuration:
			r := new(apd.Decimal)
			r.Abs(x.secs())
			return DayTimeDuration{s: r}, nil
		case YearMonthDuration:
			if x.m < 0 {
				x.m = -x.m
			}
			return x, nil
		}
		return null()
	})
	reg("modulo", []string{"dividend", "divisor"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 {
			return null()
		}
		x, ok := asNum(a[0])
		y, ok2 := asNum(a[1])
		if !ok || !ok2 || y.IsZero() {
			return null()
		}
		var q, fl, p apd.Decimal
		if _, err := decCtx.Quo(&q, x, y); err != nil {
			return null()
		}
		decCtx.Floor(&fl, &q)
		decCtx.Mul(&p, y, &fl)
		return decOp(decCtx.Sub, x, &p), nil
	})
	num1 := func(name string, f func(r, x *apd.Decimal) (apd.Condition, error), valid func(x *apd.Decimal) bool) {
		reg(name, []string{"number"}, func(s *state, a []Value) (Value, error) {
			if len(a) != 1 {
				return null()
			}
			x, ok := asNum(a[0])
			if !ok || !valid(x) {
				return null()
			}
			return decOp(func(d, x, _ *apd.Decimal) (apd.Condition, error) { return f(d, x) }, x, nil), nil
		})
	}
	num1("sqrt", decCtx.Sqrt, func(x *apd.Decimal) bool { return x.Sign() >= 0 })
	num1("log", decCtx.Ln, func(x *apd.Decimal) bool { return x.Sign() > 0 })
	num1("exp", decCtx.Exp, func(x *apd.Decimal) bool {
		// e**x overflows the exponent range long before x reaches this.
		return x.Cmp(apd.New(15000, 0)) < 0
	})
	parity := func(name string, even bool) {
		reg(name, []string{"number"}, func(s *state, a []Value) (Value, error) {
			if len(a) != 1 {
				return null()
			}
			x, ok := asNum(a[0])
			if !ok {
				return null()
			}
			var r apd.Decimal
			if _, err := decCtx.Rem(&r, x, apd.New(2, 0)); err != nil {
				return null()
			}
			if !isInteger(x) {
				return null()
			}
			return r.IsZero() == even, nil
		})
	}
	parity("even", true)
	parity("odd", false)
}

func isInteger(x *apd.Decimal) bool {
	var r apd.Decimal
	if _, err := decCtx.RoundToIntegralValue(&r, x); err != nil {
		return false
	}
	return r.Cmp(x) == 0
}

func registerTemporal() {
	reg("date", []string{"from"}, func(s *state, a []Value) (Value, error) {
		switch len(a) {
		case 1:
			switch x := a[0].(type) {
			case string:
				if d, ok := parseDate(x); ok {
					return d, nil
				}
			case Date:
				return x, nil
			case DateTime:
				return x.date(), nil
			}
		case 3:
			y, ok1 := asInt(a[0])
			m, ok2 := asInt(a[1])
			d, ok3 := asInt(a[2])
			if ok1 && ok2 && ok3 && y > -1e9 && y < 1e9 && m < 100 && d < 100 {
				if dd, ok := makeDate(int(y), int(m), int(d)); ok {
					return dd, nil
				}
			}
		}
		return null()
	}, []string{"year", "month", "day"})
	reg("time", []string{"from"}, func(s *state, a []Value) (Value, error) {
		switch len(a) {
		case 1:
			switch x := a[0].(type) {
			case string:
				if t, ok := parseTime(x); ok {
					return t, nil
				}
			case Time:
				return x, nil
			case DateTime:
				return x.clock(), nil
			case Date:
				return Time{zone: zoneOffset}, nil
			}
		case 3, 4:
			h, ok1 := asInt(a[0])
			m, ok2 := asInt(a[1])
			sd, ok3 := asNum(a[2])
			if !ok1 || !ok2 || !ok3 || h < 0 || h > 23 || m < 0 || m > 59 || sd.Sign() < 0 || sd.Cmp(apd.New(60, 0)) >= 0 {
				return null()
			}
			ns, ok := dtFromSeconds(sd).nanos()
			if !ok {
				return null()
			}
			t := Time{ns: h*int64(time.Hour) + m*int64(time.Minute) + ns}
			if off := argN(a, 3); off != nil {
				d, ok := off.(DayTimeDuration)
				if !ok {
					return null()
				}
				on, ok := d.nanos()
				if !ok || on%int64(time.Second) != 0 || on > 18*int64(time.Hour) || on < -18*int64(time.Hour) {
					return null()
				}
				t.zone, t.off = zoneOffset, int(on/int64(time.Second))
			}
			return t, nil
		}
		return null()
	}, []string{"hour", "minute", "second", "offset"})
	reg("date and time", []string{"from"}, func(s *state, a []Value) (Value, error) {
		switch len(a) {
		case 1:
			switch x := a[0].(type) {
			case string:
				if dt, ok := parseDateTime(x); ok {
					return dt, nil
				}
				if d, ok := parseDate(x); ok {
					return dateToDateTime(d), nil
				}
			case DateTime:
				return x, nil
			case Date:
				return dateToDateTime(x), nil
			}
		case 2:
			var d Date
			switch x := a[0].(type) {
			case Date:
				d = x
			case DateTime:
				d = x.date()
			default:
				return null()
			}
			t, ok := a[1].(Time)
			if !ok {
				return null()
			}
			return combine(d, clock{ns: t.ns, zone: t.zone, off: t.off, loc: t.loc}), nil
		}
		return null()
	}, []string{"date", "time"})
	reg("duration", []string{"from"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		x, ok := asStr(a[0])
		if !ok {
			return null()
		}
		v, ok := parseDuration(x)
		if !ok {
			return null()
		}
		return v, nil
	})
	reg("years and months duration", []string{"from", "to"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 {
			return null()
		}
		from, ok1 := toDateTimeWall(a[0])
		to, ok2 := toDateTimeWall(a[1])
		if !ok1 || !ok2 {
			return null()
		}
		m := monthsBetween(from, to)
		return YearMonthDuration{m: m}, nil
	})
	reg("now", nil, func(s *state, a []Value) (Value, error) {
		if len(a) != 0 {
			return null()
		}
		t := s.now()
		loc := t.Location()
		if loc == time.UTC || loc == time.Local || loc.String() == "" {
			// No IANA name to show: use the offset form.
			_, off := t.Zone()
			return DateTime{t: t.In(fixedZone(off)), zone: zoneOffset}, nil
		}
		return DateTime{t: t, zone: zoneID}, nil
	})
	reg("today", nil, func(s *state, a []Value) (Value, error) {
		if len(a) != 0 {
			return null()
		}
		y, m, d := s.now().Date()
		return Date{t: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}, nil
	})
	dateFn := func(name string, f func(t time.Time) Value) {
		reg(name, []string{"date"}, func(s *state, a []Value) (Value, error) {
			if len(a) != 1 {
				return null()
			}
			switch x := a[0].(type) {
			case Date:
				return f(x.t), nil
			case DateTime:
				return f(x.t), nil
			}
			return null()
		})
	}
	dateFn("day of week", func(t time.Time) Value { return t.Weekday().String() })
	dateFn("day of year", func(t time.Time) Value { return decFromInt(int64(t.YearDay())) })
	dateFn("month of year", func(t time.Time) Value { return t.Month().String() })
	dateFn("week of year", func(t time.Time) Value {
		_, w := t.ISOWeek()
		return decFromInt(int64(w))
	})
}

func toDateTimeWall(v Value) (time.Time, bool) {
	switch x := v.(type) {
	case Date:
		return x.t, true
	case DateTime:
		return wall(x.t), true
	}
	return time.Time{}, false
}

// monthsBetween counts whole months from a's date to b's, truncated towards
// zero. The time of day does not count (DMN TCK: 2011-08-25T15:59:59 to
// 2015-08-25T15:20:59 is P4Y).
func monthsBetween(a, b time.Time) int64 {
	m := int64(b.Year()-a.Year())*12 + int64(b.Month()-a.Month())
	if m > 0 && b.Day() < a.Day() {
		m--
	} else if m < 0 && b.Day() > a.Day() {
		m++
	}
	return m
}

func registerContexts() {
	reg("get value", []string{"m", "key"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 2 || !isContext(a[0]) {
			return null()
		}
		switch k := a[1].(type) {
		case string:
			v, _ := ctxGet(a[0], k)
			return v, nil
		case []any:
			cur := a[0]
			for _, p := range k {
				ks, ok := norm(p).(string)
				if !ok {
					return null()
				}
				cur, _ = ctxGet(cur, ks)
			}
			return cur, nil
		}
		return null()
	}, []string{"context", "keys"})
	reg("get entries", []string{"m"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 || !isContext(a[0]) {
			return null()
		}
		ks := ctxKeys(a[0])
		out := make([]any, len(ks))
		for i, k := range ks {
			v, _ := ctxGet(a[0], k)
			e := newContext(2)
			e.set("key", k)
			e.set("value", v)
			out[i] = e
		}
		return out, nil
	}, []string{"context"})
	reg("context", []string{"entries"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		l, ok := asList(a[0])
		if !ok {
			return null()
		}
		c := newContext(len(l))
		for _, it := range l {
			e := norm(it)
			k, ok := ctxGet(e, "key")
			ks, ok2 := k.(string)
			v, ok3 := ctxGet(e, "value")
			if !ok || !ok2 || !ok3 {
				return null()
			}
			if _, dup := c.vals[ks]; dup {
				return null()
			}
			c.set(ks, v)
		}
		return c, nil
	})
	reg("context put", []string{"context", "key", "value"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 3 || !isContext(a[0]) {
			return null()
		}
		var path []string
		switch k := a[1].(type) {
		case string:
			path = []string{k}
		case []any:
			if len(k) == 0 {
				return null()
			}
			for _, p := range k {
				ks, ok := norm(p).(string)
				if !ok {
					return null()
				}
				path = append(path, ks)
			}
		default:
			return null()
		}
		return contextPut(a[0], path, a[2]), nil
	}, []string{"context", "keys", "value"})
	merge := func(s *state, a []Value) (Value, error) {
		l, ok := listArg(a)
		if !ok {
			return null()
		}
		out := newContext(0)
		for _, it := range l {
			c := norm(it)
			if !isContext(c) {
				return null()
			}
			for _, k := range ctxKeys(c) {
				v, _ := ctxGet(c, k)
				out.set(k, v)
			}
		}
		return out, nil
	}
	reg("context merge", []string{"contexts"}, merge)
	reg("put all", []string{"contexts"}, merge)
	reg("put", []string{"context", "key", "value"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 3 || !isContext(a[0]) {
			return null()
		}
		k, ok := a[1].(string)
		if !ok {
			return null()
		}
		return contextPut(a[0], []string{k}, a[2]), nil
	})
	reg("range", []string{"from"}, func(s *state, a []Value) (Value, error) {
		if len(a) != 1 {
			return null()
		}
		str, ok := a[0].(string)
		if !ok {
			return null()
		}
		return parseRangeString(s, str)
	})
}

func contextPut(c Value, path []string, v Value) Value {
	out := newContext(ctxLen(c) + 1)
	for _, k := range ctxKeys(c) {
		x, _ := ctxGet(c, k)
		out.set(k, x)
	}
	if len(path) == 1 {
		out.set(path[0], v)
		return out
	}
	inner, ok := ctxGet(c, path[0])
	if !ok {
		inner = newContext(0)
	} else if !isContext(inner) {
		return nil
	}
	nv := contextPut(inner, path[1:], v)
	if nv == nil {
		return nil
	}
	out.set(path[0], nv)
	return out
}

// parseRangeString implements range("[1..10)"): endpoints must be literals.
func parseRangeString(s *state, str string) (Value, error) {
	ex, err := Compile(str)
	if err != nil {
		return null()
	}
	var r *rangeLit
	switch x := ex.root.(type) {
	case *rangeLit:
		r = x
	default:
		return null()
	}
	if !literalNode(r.lo) || !literalNode(r.hi) {
		return null()
	}
	lo, err := r.lo.eval(s, nil)
	if err != nil {
		return nil, err
	}
	hi, err := r.hi.eval(s, nil)
	if err != nil {
		return nil, err
	}
	return makeRange(lo, hi, r.loIncl, r.hiIncl), nil
}

// literalNode accepts literals and calls of the temporal constructors on literals.
func literalNode(n node) bool {
	switch x := n.(type) {
	case *constLit:
		return true
	case *callExpr:
		switch x.name {
		case "date", "time", "date and time", "duration":
			for _, a := range x.args {
				if c, ok := a.(*constLit); !ok {
					return false
				} else if _, ok := c.v.(string); !ok {
					return false
				}
			}
			return true
		}
	}
	return false
}
