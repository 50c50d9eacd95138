package operations

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// Variables arrive as Zeebe's JSON decoded into any: maps, []any, strings,
// bools and float64 or json.Number. The rules below follow what Camunda's
// Java runtime (Jackson) accepts, so that templates written for it work:
// "true"/"false" strings are booleans, integral numbers and numeric strings
// are integers, and null is the same as absent.

// DecodeInto converts raw, the value of variable, into *dst (a *string,
// *bool, *int, *[]any or *map[string]any) with the lenient conversions
// above. A null raw leaves *dst unchanged. Errors are INVALID_INPUT naming
// variable, what was expected and what was given.
func DecodeInto(raw any, variable string, dst any) error {
	if raw == nil {
		return nil
	}
	switch p := dst.(type) {
	case *string:
		s, ok := raw.(string)
		if !ok {
			return connerr.Input(variable, "expected a string, got %s", connerr.Describe(raw))
		}
		*p = s
	case *bool:
		switch t := raw.(type) {
		case bool:
			*p = t
		case string:
			switch strings.ToLower(strings.TrimSpace(t)) {
			case "true":
				*p = true
			case "false":
				*p = false
			default:
				return connerr.Input(variable, "expected a boolean, got %s", connerr.Describe(raw))
			}
		default:
			return connerr.Input(variable, "expected a boolean, got %s", connerr.Describe(raw))
		}
	case *int:
		n, ok := toInt(raw)
		if !ok {
			return connerr.Input(variable, "expected an integer, got %s", connerr.Describe(raw))
		}
		*p = n
	case *[]any:
		l, ok := raw.([]any)
		if !ok {
			return connerr.Input(variable, "expected a list, got %s", connerr.Describe(raw))
		}
		*p = l
	case *map[string]any:
		m, ok := raw.(map[string]any)
		if !ok {
			return connerr.Input(variable, "expected a context, got %s", connerr.Describe(raw))
		}
		*p = m
	default:
		panic(fmt.Sprintf("operations.DecodeInto: unsupported destination %T", dst))
	}
	return nil
}

// maxInt bounds integers to what every platform's int holds and float64
// represents exactly.
const maxInt = 1<<53 - 1

func toInt(raw any) (int, bool) {
	var f float64
	switch t := raw.(type) {
	case float64:
		f = t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			if i > maxInt || i < -maxInt {
				return 0, false
			}
			return int(i), true
		}
		v, err := t.Float64()
		if err != nil {
			return 0, false
		}
		f = v
	case int:
		return t, t <= maxInt && t >= -maxInt
	case int64:
		return int(t), t <= maxInt && t >= -maxInt
	case int32:
		return int(t), true
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil || i > maxInt || i < -maxInt {
			return 0, false
		}
		return int(i), true
	default:
		return 0, false
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) || f > maxInt || f < -maxInt {
		return 0, false
	}
	return int(f), true
}

// decoder reads dotted paths from the job variables; the first error wins
// and later reads are no-ops, so that decode functions read straight
// through.
type decoder struct {
	vars map[string]any
	err  error
}

func (d *decoder) fail(err error) {
	if d.err == nil && err != nil {
		d.err = err
	}
}

// get returns the value at path ("message.toRecipients"); a missing or null
// value is (nil, false). A parent that is not a context is an error naming
// the parent.
func (d *decoder) get(path string) (any, bool) {
	if d.err != nil {
		return nil, false
	}
	parts := strings.Split(path, ".")
	cur := d.vars
	for i, p := range parts {
		v, ok := cur[p] // nil map reads are fine
		if !ok || v == nil {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		m, ok := v.(map[string]any)
		if !ok {
			d.fail(connerr.Input(strings.Join(parts[:i+1], "."), "expected a context, got %s", connerr.Describe(v)))
			return nil, false
		}
		cur = m
	}
	return nil, false
}

// str reads a string. what says what is expected, for the message when it
// is required and missing or empty.
func (d *decoder) str(path string, required bool, what string) string {
	v, ok := d.get(path)
	if !ok {
		if required {
			d.fail(connerr.Input(path, "required, expected %s", what))
		}
		return ""
	}
	var s string
	if err := DecodeInto(v, path, &s); err != nil {
		d.fail(err)
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		d.fail(connerr.Input(path, "required, expected %s, got an empty string", what))
	}
	return s
}

// optID reads an optional id; an empty string is the same as absent (an
// element template sends "" for an empty optional field).
func (d *decoder) optID(path string) string {
	v, ok := d.get(path)
	if !ok {
		return ""
	}
	var s string
	if err := DecodeInto(v, path, &s); err != nil {
		d.fail(err)
		return ""
	}
	return strings.TrimSpace(s)
}

func (d *decoder) boolean(path string, def bool) bool {
	v, ok := d.get(path)
	if !ok {
		return def
	}
	if s, isStr := v.(string); isStr && strings.TrimSpace(s) == "" {
		return def
	}
	b := def
	d.fail(DecodeInto(v, path, &b))
	return b
}

// integer reads an optional integer; 0, false when absent.
func (d *decoder) integer(path string) (int, bool) {
	v, ok := d.get(path)
	if !ok {
		return 0, false
	}
	if s, isStr := v.(string); isStr && strings.TrimSpace(s) == "" {
		return 0, false
	}
	var n int
	if err := DecodeInto(v, path, &n); err != nil {
		d.fail(err)
		return 0, false
	}
	return n, true
}

func (d *decoder) list(path string) ([]any, bool) {
	v, ok := d.get(path)
	if !ok {
		return nil, false
	}
	var l []any
	if err := DecodeInto(v, path, &l); err != nil {
		d.fail(err)
		return nil, false
	}
	return l, true
}

func (d *decoder) context(path string) (map[string]any, bool) {
	v, ok := d.get(path)
	if !ok {
		return nil, false
	}
	var m map[string]any
	if err := DecodeInto(v, path, &m); err != nil {
		d.fail(err)
		return nil, false
	}
	return m, true
}

// oneOf reads an optional enumeration, case-insensitively, returning the
// canonical (lower-case) value or def.
func (d *decoder) oneOf(path string, values []string, def string) string {
	v, ok := d.get(path)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		d.fail(connerr.Input(path, "expected one of %s, got %s", strings.Join(values, ", "), connerr.Describe(v)))
		return def
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	for _, val := range values {
		if strings.EqualFold(s, val) {
			return val
		}
	}
	d.fail(connerr.Input(path, "expected one of %s, got %s", strings.Join(values, ", "), connerr.Describe(v)))
	return def
}
