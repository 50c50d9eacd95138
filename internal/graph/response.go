package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// bufferedBody is a response body already read (and capped) by the attempt
// layer, so that outer layers can look at it without consuming it.
type bufferedBody struct {
	*bytes.Reader
	b      []byte
	pooled *[]byte // b's buffer, for putBodyBuffer once b is no longer referred to
}

func (bufferedBody) Close() error { return nil }

func bodyBytes(resp *http.Response) []byte {
	if bb, ok := resp.Body.(bufferedBody); ok {
		return bb.b
	}
	return nil
}

// decodeBody follows the REST connector: JSON (numbers as json.Number, so
// that large ids and decimals survive), an empty body is nil and any other
// body is a string.
//
// JSON is handed on undecoded as Raw and checked where it is read
// (Response.JSONBody): decoding, and even validating, a Graph answer is
// most of a job's CPU, and a job whose headers read nothing of the body
// never needs it.
func decodeBody(h http.Header, raw []byte) (body any, rawJSON json.RawMessage) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		// Without a content type, JSON is still the best guess from Graph;
		// fall back to text when it does not parse.
		if json.Valid(raw) {
			return nil, raw
		}
		return string(raw), nil
	}
	if isJSONType(ct) {
		return nil, raw
	}
	return string(raw), nil
}

// isJSONType tells whether a Content-Type is JSON. Graph's own
// "application/json; odata.metadata=minimal; ..." is recognised without
// parsing its parameters, which cost more than the rest of reading a small
// answer.
func isJSONType(ct string) bool {
	const prefix = "application/json"
	if len(ct) >= len(prefix) && strings.EqualFold(ct[:len(prefix)], prefix) {
		rest := strings.TrimLeft(ct[len(prefix):], " \t")
		if rest == "" || rest[0] == ';' {
			return true
		}
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// graphError extracts error.code and error.message of Graph's envelope.
func graphError(raw []byte) (code, message string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return "", ""
	}
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &env) != nil {
		return "", ""
	}
	return env.Error.Code, env.Error.Message
}

// headerMap lower-cases names; one value is a string, several a []any (the
// REST connector's shape).
func headerMap(h http.Header) map[string]any {
	m := make(map[string]any, len(h))
	for k, vs := range h {
		k = strings.ToLower(k)
		switch len(vs) {
		case 0:
		case 1:
			m[k] = vs[0]
		default:
			l := make([]any, len(vs))
			for i, v := range vs {
				l[i] = v
			}
			m[k] = l
		}
	}
	return m
}
