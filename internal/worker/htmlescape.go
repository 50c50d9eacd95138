package worker

import (
	"context"
	"strings"

	"github.com/camunda/zeebe/clients/go/v8/pkg/pb"
	"google.golang.org/grpc"
)

// unescapeVariables undoes, in every job command's variables document, the
// HTML escaping that the client library's json.Marshal applies: <, > and &
// become the six bytes \u003c, \u003e and \u0026. The broker stores the same
// value either way, but Zeebe's message limit (4 MB by default) counts the
// bytes, and a result of HTML mail bodies grew by up to a third: a response
// within GRAPH_MAX_RESPONSE_BYTES (3 MiB, chosen to fit) could still end in
// RESULT_REJECTED. The library offers no encoder option, and its
// VariablesFromString parses the whole document again to validate it.
func unescapeVariables(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	switch r := req.(type) {
	case *pb.CompleteJobRequest:
		r.Variables = unescapeHTML(r.Variables)
	case *pb.FailJobRequest:
		r.Variables = unescapeHTML(r.Variables)
	case *pb.ThrowErrorRequest:
		r.Variables = unescapeHTML(r.Variables)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// unescapeHTML turns the escapes \u003c, \u003e and \u0026 of a JSON
// document back into the characters. Every other escape is kept, and an
// escaped backslash is stepped over as a pair, so that the text \u003c
// inside a string (written \\u003c) stays as it is. Any valid document
// keeps its value and stays valid, and a second pass changes nothing; for
// json.Marshal's output of decoded values it is what encoding/json writes
// with SetEscapeHTML(false).
func unescapeHTML(doc string) string {
	if !strings.Contains(doc, `\u00`) {
		return doc
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(doc)-1; i++ {
		if doc[i] != '\\' {
			continue
		}
		if i+6 <= len(doc) && doc[i+1] == 'u' && doc[i+2] == '0' && doc[i+3] == '0' {
			var c byte
			switch doc[i+4 : i+6] {
			case "3c":
				c = '<'
			case "3e":
				c = '>'
			case "26":
				c = '&'
			}
			if c != 0 {
				if b.Len() == 0 {
					b.Grow(len(doc))
				}
				b.WriteString(doc[last:i])
				b.WriteByte(c)
				last = i + 6
				i += 5
				continue
			}
		}
		i++ // the escaped character: a backslash here does not start an escape
	}
	if last == 0 {
		return doc
	}
	b.WriteString(doc[last:])
	return b.String()
}
