package feel

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// Value is a FEEL value. Values this package produces are one of: nil, bool, string,
// *apd.Decimal (number), []any (list), *Context, map[string]any (a context that came in
// from the caller and is read in place), Date, Time, DateTime, DayTimeDuration,
// YearMonthDuration, *Range, *Function. Raw caller values (float64, int, json.Number, ...)
// are converted to FEEL values when they are read.
type Value = any

// Context is an ordered FEEL context. It is never modified after construction, so it can
// be shared between evaluations.
type Context struct {
	keys []string
	vals map[string]Value
}

func newContext(n int) *Context {
	return &Context{keys: make([]string, 0, n), vals: make(map[string]Value, n)}
}

// set adds or replaces an entry; only used while the context is being built.
func (c *Context) set(k string, v Value) {
	if _, ok := c.vals[k]; !ok {
		c.keys = append(c.keys, k)
	}
	c.vals[k] = v
}

// Keys returns the entry names in order.
func (c *Context) Keys() []string { return c.keys }

// Get returns an entry.
func (c *Context) Get(k string) (Value, bool) {
	v, ok := c.vals[k]
	return v, ok
}

// Len returns the number of entries.
func (c *Context) Len() int { return len(c.keys) }

// Range is a FEEL range (interval). A nil bound is unbounded.
type Range struct {
	Start, End         Value
	StartIncl, EndIncl bool
	// op is set for ranges written as unary comparisons ("< 10", "= 5", "!= 5"); they
	// compare equal only to the same comparison.
	op string
}

// Function is a FEEL function value: a built-in, a caller-supplied function or a closure.
type Function struct {
	name    string
	params  []string
	alt     [][]string // alternative parameter-name sets of a built-in, for named arguments
	native  func(s *state, args []Value) (Value, error)
	body    node
	closure *env
}

var decCtx = func() *apd.Context {
	c := apd.BaseContext.WithPrecision(34)
	c.MaxExponent = 6144
	c.MinExponent = -6143
	c.Rounding = apd.RoundHalfEven
	c.Traps = 0
	return c
}()

func decFromInt(i int64) *apd.Decimal { return apd.New(i, 0) }

func decFromString(s string) *apd.Decimal {
	d, _, err := apd.NewFromString(s)
	if err != nil || d.Form != apd.Finite {
		return nil
	}
	return d
}

func decFromFloat(f float64) *apd.Decimal {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return decFromString(strconv.FormatFloat(f, 'g', -1, 64))
}

// norm converts a caller value into a FEEL value. Lists and maps are converted lazily: their
// elements are normalised when read.
func norm(v any) Value {
	switch x := v.(type) {
	case nil, bool, string, *apd.Decimal, []any, map[string]any, *Context, Date, Time, DateTime,
		DayTimeDuration, YearMonthDuration, *Range, *Function:
		return x
	case float64:
		return nilIfNil(decFromFloat(x))
	case int:
		return decFromInt(int64(x))
	case int64:
		return decFromInt(x)
	case int32:
		return decFromInt(int64(x))
	case json.Number:
		return nilIfNil(decFromString(string(x)))
	case float32:
		return nilIfNil(decFromString(strconv.FormatFloat(float64(x), 'g', -1, 32)))
	case uint:
		return nilIfNil(decFromString(strconv.FormatUint(uint64(x), 10)))
	case uint64:
		return nilIfNil(decFromString(strconv.FormatUint(x, 10)))
	case uint32:
		return decFromInt(int64(x))
	case int16:
		return decFromInt(int64(x))
	case int8:
		return decFromInt(int64(x))
	case uint16:
		return decFromInt(int64(x))
	case uint8:
		return decFromInt(int64(x))
	case apd.Decimal:
		return &x
	case time.Time:
		return DateTime{t: x, zone: zoneOffset}
	case time.Duration:
		return dtFromNanos(int64(x))
	case []string:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return l
	case []map[string]any:
		l := make([]any, len(x))
		for i, s := range x {
			l[i] = s
		}
		return l
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		l := make([]any, rv.Len())
		for i := range l {
			l[i] = rv.Index(i).Interface()
		}
		return l
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil
		}
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			m[it.Key().String()] = it.Value().Interface()
		}
		return m
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return norm(rv.Elem().Interface())
	}
	return nil
}

func nilIfNil(d *apd.Decimal) Value {
	if d == nil {
		return nil
	}
	return d
}

func isContext(v Value) bool {
	switch v.(type) {
	case *Context, map[string]any:
		return true
	}
	return false
}

// ctxGet reads an entry of a context value.
func ctxGet(v Value, k string) (Value, bool) {
	switch c := v.(type) {
	case *Context:
		x, ok := c.vals[k]
		return x, ok
	case map[string]any:
		x, ok := c[k]
		if !ok {
			return nil, false
		}
		return norm(x), true
	}
	return nil, false
}

// ctxKeys lists the entry names of a context value: in order for *Context, sorted for maps
// (they carry no order).
func ctxKeys(v Value) []string {
	switch c := v.(type) {
	case *Context:
		return c.keys
	case map[string]any:
		ks := make([]string, 0, len(c))
		for k := range c {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	return nil
}

func ctxLen(v Value) int {
	switch c := v.(type) {
	case *Context:
		return len(c.keys)
	case map[string]any:
		return len(c)
	}
	return 0
}

func toOrdered(v Value) *Context {
	if c, ok := v.(*Context); ok {
		return c
	}
	ks := ctxKeys(v)
	c := newContext(len(ks))
	for _, k := range ks {
		x, _ := ctxGet(v, k)
		c.set(k, x)
	}
	return c
}

func listOf(v Value) ([]any, bool) {
	l, ok := v.([]any)
	return l, ok
}

// typeName names the FEEL type of a value, for error messages and instance of.
func typeName(v Value) string {
	switch v.(type) {
	case nil:
		return "Null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case *apd.Decimal:
		return "number"
	case []any:
		return "list"
	case *Context, map[string]any:
		return "context"
	case Date:
		return "date"
	case Time:
		return "time"
	case DateTime:
		return "date and time"
	case DayTimeDuration:
		return "days and time duration"
	case YearMonthDuration:
		return "years and months duration"
	case *Range:
		return "range"
	case *Function:
		return "function"
	}
	return "Any"
}

// formatNumber renders a decimal in plain notation without superfluous trailing zeros.
func formatNumber(d *apd.Decimal) string {
	var r apd.Decimal
	r.Reduce(d)
	if r.IsZero() {
		return "0"
	}
	return r.Text('f')
}

// ToJSON converts a FEEL value into JSON-marshallable Go values.
func ToJSON(v Value) (any, error) {
	return toJSON(norm(v), 0)
}

func toJSON(v Value, depth int) (any, error) {
	if depth > 1000 {
		return nil, fmt.Errorf("feel: value nested too deeply")
	}
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case *apd.Decimal:
		return json.Number(formatNumber(x)), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			j, err := toJSON(norm(e), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case *Context:
		out := make(map[string]any, len(x.keys))
		for _, k := range x.keys {
			j, err := toJSON(x.vals[k], depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = j
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			j, err := toJSON(norm(e), depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = j
		}
		return out, nil
	case Date, Time, DateTime, DayTimeDuration, YearMonthDuration:
		return toString(x), nil
	case *Range:
		return nil, fmt.Errorf("feel: a range cannot be converted to JSON")
	case *Function:
		return nil, fmt.Errorf("feel: a function cannot be converted to JSON")
	}
	return nil, fmt.Errorf("feel: unsupported value %T", v)
}

// AsDuration converts a days-and-time duration value into a time.Duration.
func AsDuration(v Value) (time.Duration, bool) {
	d, ok := v.(DayTimeDuration)
	if !ok {
		return 0, false
	}
	ns, ok := d.nanos()
	return time.Duration(ns), ok
}
