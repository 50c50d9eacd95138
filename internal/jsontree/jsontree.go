// Package jsontree rewrites the strings of decoded JSON values (nil, bool,
// string, numbers, []any, map[string]any) without touching the input:
// secret substitution and redaction both walk job variables this way.
package jsontree

// MapStrings applies f to every string in v, and to map keys when keys is
// set. f reports whether it changed its string. Maps and lists are copied
// only where something below them changed, so a large value without a match
// costs a walk, not a copy; changed tells whether the result differs.
func MapStrings(v any, keys bool, f func(string) (string, bool)) (out any, changed bool) {
	switch t := v.(type) {
	case string:
		if s, ok := f(t); ok {
			return s, true
		}
		return v, false
	case map[string]any:
		var m map[string]any
		for k, e := range t {
			nk, kChanged := k, false
			if keys {
				nk, kChanged = f(k)
			}
			ne, eChanged := MapStrings(e, keys, f)
			if !kChanged && !eChanged {
				continue
			}
			if m == nil {
				m = make(map[string]any, len(t))
				for k2, e2 := range t {
					m[k2] = e2
				}
			}
			if kChanged {
				delete(m, k)
			}
			m[nk] = ne
		}
		if m == nil {
			return v, false
		}
		return m, true
	case []any:
		var l []any
		for i, e := range t {
			ne, eChanged := MapStrings(e, keys, f)
			if !eChanged {
				continue
			}
			if l == nil {
				l = append([]any(nil), t...)
			}
			l[i] = ne
		}
		if l == nil {
			return v, false
		}
		return l, true
	}
	return v, false
}
