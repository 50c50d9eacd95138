package graph

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// Credentials yields the bearer token for Graph requests. The auth package
// implements it per authentication type; Invalidate drops a token that Graph
// refused (401 InvalidAuthenticationToken) so that the next Token call
// fetches a new one, and reports whether one can come (a fixed bearer token
// cannot be renewed, and resending it is a wasted request).
type Credentials interface {
	Token(ctx context.Context) (string, error)
	Invalidate(token string) (renewable bool)
}

// Response is what a successful operation hands to result mapping: the same
// shape as Camunda's REST connector (contract section 4).
type Response struct {
	Status int
	// Headers has lower-case names; one value is a string, several a []any.
	// The client leaves it nil and keeps the HTTP header instead: read it
	// with HeaderMap, which converts on first use (most jobs never do).
	Headers    map[string]any
	httpHeader http.Header
	// Body is Graph's JSON decoded with json.Number numbers, a string for
	// other content, or nil for an empty body. Read it with JSONBody, which
	// decodes Raw first when the client left the JSON undecoded.
	Body any
	// Raw is valid JSON not decoded yet. It lives in a pooled buffer: it
	// is valid until JSONBody has decoded it or Release is called.
	Raw json.RawMessage
	// Acted tells that the request changed something (it was not a GET):
	// running the job again would do it again.
	Acted  bool
	pooled *[]byte
}

// Release hands the buffer behind an undecoded Raw back for reuse. The
// pipeline calls it once the job's outcome is built; Raw is nil afterwards.
func (r *Response) Release() {
	if r == nil {
		return
	}
	r.Raw = nil
	putBodyBuffer(r.pooled)
	r.pooled = nil
}

// JSONBody returns the body, decoding Raw on first use. Malformed JSON is
// the contract's retryable "502". Not safe for concurrent use; a response
// belongs to one job.
func (r *Response) JSONBody() (any, error) {
	if r.Raw != nil {
		v, err := decodeJSON(r.Raw)
		if err != nil {
			e := connerr.New("502", "malformed JSON from Graph: %v", err)
			e.Variables = map[string]any{"response": responseObject(r.Status, r.HeaderMap(), truncateString(string(r.Raw)))}
			e.Cause = err
			return nil, e
		}
		r.Body = v
		// The decoded value holds copies: the buffer is free again.
		r.Release()
	}
	return r.Body, nil
}

// AsMap is the response object as process variables see it.
func (r *Response) AsMap() (map[string]any, error) {
	if r == nil {
		return nil, nil
	}
	body, err := r.JSONBody()
	if err != nil {
		return nil, err
	}
	return responseObject(r.Status, r.HeaderMap(), body), nil
}

// responseObject is the shape of a response in process variables, the
// same as Camunda's REST connector: {status, headers, body}.
func responseObject(status int, headers map[string]any, body any) map[string]any {
	return map[string]any{"status": status, "headers": headers, "body": body}
}

// HeaderMap returns Headers, building it from the HTTP header on first use.
// Not safe for concurrent use, like JSONBody.
func (r *Response) HeaderMap() map[string]any {
	if r.Headers == nil {
		r.Headers = headerMap(r.httpHeader)
	}
	return r.Headers
}
