// Package odata holds how the Graph client encodes OData query values, so
// that the redactor recognises a secret in exactly the spelling that goes
// out (and is logged, and comes back in @odata.nextLink).
package odata

import "strings"

// keep are the bytes left literal besides letters and digits: OData's "$"
// and the separators Graph expects literally in $select and $filter (",",
// "'", "(", ")", ":"), plus the unreserved ones. Spaces become %20, because
// "+" is not a space to every OData parser.
const keep = "-._~$'(),:@/!*"

// WriteQueryValue writes s percent-encoded as a query key or value.
func WriteQueryValue(sb *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', strings.IndexByte(keep, b) >= 0:
			sb.WriteByte(b)
		default:
			sb.WriteByte('%')
			sb.WriteByte(hex[b>>4])
			sb.WriteByte(hex[b&15])
		}
	}
}

// QueryValue is s as WriteQueryValue writes it.
func QueryValue(s string) string {
	var sb strings.Builder
	WriteQueryValue(&sb, s)
	return sb.String()
}
