package operations

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
)

// AllowedQueryKeys are the keys of operation.queryParameters (contract
// section 2). Anything else could change what the request does ($format,
// $deltatoken, ...) and is refused.
var AllowedQueryKeys = []string{"$select", "$filter", "$orderby", "$top", "$skip", "$search", "$expand", "$count", "includeHiddenFolders"}

// MaxTop is Graph's largest page for messages.
const MaxTop = 1000

// decodeQuery reads operation.queryParameters into URL query values.
func decodeQuery(d *decoder) url.Values {
	const path = "operation.queryParameters"
	m, ok := d.context(path)
	if !ok || len(m) == 0 {
		return nil
	}
	q := make(url.Values, len(m))
	for k, v := range m {
		if !slices.Contains(AllowedQueryKeys, k) {
			d.fail(connerr.Input(path, "key %q is not allowed; allowed keys are %s", k, strings.Join(AllowedQueryKeys, " ")))
			return nil
		}
		if v == nil {
			continue
		}
		variable := path + "." + k
		switch k {
		case "$top", "$skip":
			var n int
			if err := DecodeInto(v, variable, &n); err != nil {
				d.fail(err)
				return nil
			}
			if k == "$top" && (n < 1 || n > MaxTop) {
				d.fail(connerr.Input(variable, "expected an integer from 1 to %d, got %d", MaxTop, n))
				return nil
			}
			if n < 0 {
				d.fail(connerr.Input(variable, "expected an integer of at least 0, got %d", n))
				return nil
			}
			q.Set(k, strconv.Itoa(n))
		case "$count", "includeHiddenFolders":
			var b bool
			if err := DecodeInto(v, variable, &b); err != nil {
				d.fail(err)
				return nil
			}
			q.Set(k, strconv.FormatBool(b))
		default:
			switch t := v.(type) {
			case string:
				if strings.TrimSpace(t) == "" {
					continue // an empty template field
				}
				q.Set(k, t)
			case json.Number:
				q.Set(k, t.String())
			case float64:
				q.Set(k, strconv.FormatFloat(t, 'f', -1, 64))
			case bool:
				q.Set(k, strconv.FormatBool(t))
			default:
				d.fail(connerr.Input(variable, "expected a string, number or boolean, got %s", connerr.Describe(v)))
				return nil
			}
		}
	}
	if q.Has("$search") && (q.Has("$filter") || q.Has("$orderby")) {
		d.fail(connerr.Input(path, "$search cannot be combined with $filter or $orderby (Graph refuses the request)"))
		return nil
	}
	return q
}

// decodeMaxResults reads operation.maxResults: 0 when absent.
func decodeMaxResults(d *decoder) int {
	n, ok := d.integer(fieldMax.Path)
	if ok && n < 1 {
		d.fail(connerr.Input(fieldMax.Path, "expected an integer of at least 1, got %d", n))
	}
	return n
}

// listCall is a GET of a Graph collection, optionally followed over pages.
type listCall struct {
	userID     string
	path       []string
	query      url.Values
	maxResults int
}

func (c *listCall) UserID() string { return c.userID }

func (c *listCall) Run(ctx context.Context, gc *graph.Client, creds graph.Credentials) (*graph.Response, error) {
	query := c.query
	if c.maxResults > 0 {
		// Graph's default page of 10 would turn maxResults 500 into 50
		// requests against the mailbox's throttling budget; nextLink keeps
		// the page size. A page larger than maxResults would only fetch
		// items that are dropped (and may pass the response cap).
		top, err := strconv.Atoi(query.Get("$top"))
		if err != nil || top > c.maxResults {
			query = cloneValues(query)
			query.Set("$top", strconv.Itoa(min(c.maxResults, MaxTop)))
		}
	}
	resp, err := gc.Do(ctx, creds, graph.Request{Method: http.MethodGet, UserID: c.userID, Path: c.path, Query: query})
	if err != nil || c.maxResults == 0 {
		return resp, err
	}
	return collect(ctx, gc, creds, c.userID, resp, c.maxResults)
}

// collect follows @odata.nextLink until maxResults items are gathered and
// merges the pages into the first page's body: one "value" list and no
// "@odata.nextLink" (paging stops after maxResults items, possibly inside a
// page, where no link to the rest exists). The merged body is held to the
// client's response cap, as each page is.
func collect(ctx context.Context, gc *graph.Client, creds graph.Credentials, userID string, first *graph.Response, maxResults int) (*graph.Response, error) {
	decoded, err := first.JSONBody()
	if err != nil {
		return nil, err
	}
	body, ok := decoded.(map[string]any)
	if !ok {
		return first, nil
	}
	values, ok := body["value"].([]any)
	if !ok {
		return first, nil
	}
	limit := gc.MaxResponseBytes()
	var size sizeCounter
	// The merged body is the first page's envelope (@odata.context,
	// @odata.count, ...) with every page's items: the envelope is counted
	// too, as the attempt layer counted it on every page.
	merged := make(map[string]any, len(body))
	for k, v := range body {
		if k != "value" && k != "@odata.nextLink" {
			merged[k] = v
		}
	}
	if err := size.add(merged); err != nil {
		return nil, connerr.New("502", "Graph returned a page that cannot be encoded: %v", err)
	}
	size.n += int64(len(`,"value":[]`))
	items := make([]any, 0, min(maxResults, max(len(values), 16)))
	ids := map[string]struct{}{}
	add := func(vs []any) error {
		for _, v := range vs {
			if len(items) == maxResults {
				return nil
			}
			// $skip-based nextLinks shift when mail arrives between
			// pages: the same message would be listed twice.
			if m, ok := v.(map[string]any); ok {
				if id, ok := m["id"].(string); ok && id != "" {
					if _, dup := ids[id]; dup {
						continue
					}
					ids[id] = struct{}{}
				}
			}
			if err := size.add(v); err != nil {
				return connerr.New("502", "Graph returned an item that cannot be encoded: %v", err)
			}
			if size.n > limit {
				return connerr.Final(connerr.CodeResponseTooLarge,
					"the pages merged for operation.maxResults (%d) are larger than GRAPH_MAX_RESPONSE_BYTES (%d bytes) after %d items; fetch less with $select or a smaller operation.maxResults",
					maxResults, limit, len(items))
			}
			items = append(items, v)
		}
		return nil
	}
	if err := add(values); err != nil {
		return nil, err
	}
	next, _ := body["@odata.nextLink"].(string)
	followed := map[string]struct{}{}
	for len(items) < maxResults && next != "" {
		if _, again := followed[next]; again {
			// A cycle of links would loop until the job's deadline.
			return nil, connerr.New("502", "Graph returned an @odata.nextLink that was already followed")
		}
		followed[next] = struct{}{}
		page, err := gc.Follow(ctx, creds, userID, next)
		if err != nil {
			return nil, err
		}
		decoded, err := page.JSONBody()
		if err != nil {
			return nil, err
		}
		pb, ok := decoded.(map[string]any)
		if !ok {
			return nil, connerr.New("502", "a page of @odata.nextLink is not a JSON object")
		}
		vs, _ := pb["value"].([]any)
		if err := add(vs); err != nil {
			return nil, err
		}
		next, _ = pb["@odata.nextLink"].(string)
	}
	merged["value"] = items
	return &graph.Response{Status: first.Status, Headers: first.HeaderMap(), Body: merged}, nil
}

// sizeCounter sums the JSON sizes of the items kept, re-encoded the way
// they will leave the process, so that the merged body's size is known
// without building it.
type sizeCounter struct {
	n   int64
	enc *json.Encoder
}

func (s *sizeCounter) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	return len(p), nil
}

func (s *sizeCounter) add(v any) error {
	if s.enc == nil {
		s.enc = json.NewEncoder(s)
		s.enc.SetEscapeHTML(false)
	}
	return s.enc.Encode(v) // the newline stands for the separating comma
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+1)
	for k, vs := range v {
		out[k] = vs
	}
	return out
}
