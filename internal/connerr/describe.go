package connerr

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Describe names a value's type and, for scalars, the value, for input
// error messages such as `expected an integer, got string "ten"`.
func Describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if len(t) > maxQuoted {
			return Quote(t, maxQuoted)
		}
		return "string " + strconv.Quote(t)
	case bool:
		return fmt.Sprintf("boolean %v", t)
	case json.Number:
		return "number " + t.String()
	case float64:
		return "number " + strconv.FormatFloat(t, 'g', -1, 64)
	case float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("number %v", t)
	case []any:
		return "a list"
	case map[string]any:
		return "a context"
	default:
		return fmt.Sprintf("a value of type %T", v)
	}
}

// maxQuoted is the longest string Describe shows.
const maxQuoted = 60

// Quote shows s as a Go-quoted string for an error message when it has at
// most max bytes, and otherwise only its length. A long value is not cut
// short: a cut-off secret would no longer match the redactor, and its
// first part would leave in the message.
func Quote(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("a string of %d characters", utf8.RuneCountInString(s))
	}
	return strconv.Quote(s)
}
