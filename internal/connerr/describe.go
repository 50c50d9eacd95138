package connerr

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Describe names a value's type and, for scalars, the value, for input
// error messages such as `expected an integer, got string "ten"`.
func Describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if len(t) > 60 {
			t = t[:57] + "..."
		}
		return fmt.Sprintf("string %q", t)
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
