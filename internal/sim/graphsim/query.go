package graphsim

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is an answer in Graph's error envelope.
type apiError struct {
	status        int
	code, message string
	retryAfter    string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

type propKind int

const (
	kString propKind = iota
	kBool
	kTime
	kInt
)

func (k propKind) edm() string {
	switch k {
	case kBool:
		return "Edm.Boolean"
	case kTime:
		return "Edm.DateTimeOffset"
	case kInt:
		return "Edm.Int32"
	}
	return "Edm.String"
}

type prop[T any] struct {
	kind propKind
	str  func(T) string
	bl   func(T) bool
	tm   func(T) time.Time
	num  func(T) int64
}

type schema[T any] struct {
	typeName string // as Graph names the type in errors, e.g. microsoft.graph.message
	props    map[string]prop[T]
}

func (s *schema[T]) lookup(path string) (prop[T], *apiError) {
	p, ok := s.props[lower(path)]
	if !ok {
		name := path
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		return p, badRequest("RequestBroker--ParseUri", "Could not find a property named '%s' on type '%s'.", name, s.typeName)
	}
	return p, nil
}

func sProp[T any](f func(T) string) prop[T]    { return prop[T]{kind: kString, str: f} }
func bProp[T any](f func(T) bool) prop[T]      { return prop[T]{kind: kBool, bl: f} }
func tProp[T any](f func(T) time.Time) prop[T] { return prop[T]{kind: kTime, tm: f} }
func iProp[T any](f func(T) int64) prop[T]     { return prop[T]{kind: kInt, num: f} }

var messageSchema = &schema[*msg]{
	typeName: "microsoft.graph.message",
	props: map[string]prop[*msg]{
		"id":                          sProp(func(m *msg) string { return m.id }),
		"subject":                     sProp(func(m *msg) string { return m.data.Subject }),
		"importance":                  sProp(func(m *msg) string { return m.data.Importance }),
		"parentfolderid":              sProp(func(m *msg) string { return m.folder.id }),
		"conversationid":              sProp(func(m *msg) string { return m.data.ConversationID }),
		"internetmessageid":           sProp(func(m *msg) string { return m.data.InternetMessageID }),
		"inferenceclassification":     sProp(func(m *msg) string { return "focused" }),
		"flag/flagstatus":             sProp(func(m *msg) string { return "notFlagged" }),
		"body/contenttype":            sProp(func(m *msg) string { return m.data.BodyContentType }),
		"from/emailaddress/address":   sProp(func(m *msg) string { return m.data.From.Address }),
		"from/emailaddress/name":      sProp(func(m *msg) string { return nameOrAddress(m.data.From) }),
		"sender/emailaddress/address": sProp(func(m *msg) string { return m.data.From.Address }),
		"sender/emailaddress/name":    sProp(func(m *msg) string { return nameOrAddress(m.data.From) }),
		"isread":                      bProp(func(m *msg) bool { return m.data.IsRead }),
		"hasattachments":              bProp(func(m *msg) bool { return m.data.HasAttachments }),
		"isdraft":                     bProp(func(m *msg) bool { return m.data.IsDraft }),
		"receiveddatetime":            tProp(func(m *msg) time.Time { return m.data.ReceivedDateTime }),
		"sentdatetime":                tProp(func(m *msg) time.Time { return m.data.SentDateTime }),
		"createddatetime":             tProp(func(m *msg) time.Time { return m.created }),
		"lastmodifieddatetime":        tProp(func(m *msg) time.Time { return m.modified }),
	},
}

var folderSchema = &schema[*folder]{
	typeName: "microsoft.graph.mailFolder",
	props: map[string]prop[*folder]{
		"id":               sProp(func(f *folder) string { return f.id }),
		"displayname":      sProp(func(f *folder) string { return f.displayName }),
		"parentfolderid":   sProp(func(f *folder) string { return f.parentID }),
		"ishidden":         bProp(func(f *folder) bool { return f.hidden }),
		"childfoldercount": iProp(func(f *folder) int64 { return int64(len(f.children)) }),
		"unreaditemcount":  iProp(func(f *folder) int64 { return int64(f.unread) }),
		"totalitemcount":   iProp(func(f *folder) int64 { return int64(len(f.msgs)) }),
	},
}

func nameOrAddress(r Recipient) string {
	if r.Name != "" {
		return r.Name
	}
	return r.Address
}

// listQuery is a parsed set of OData query options for a collection.
type listQuery[T any] struct {
	top, skip      int
	topSet         bool
	sel            []int    // nil = default members
	selNames       []string // as requested, for @odata.context
	filter         func(T) bool
	filterProps    []string // lower-case, in order of appearance
	order          []orderKey[T]
	orderProps     []string
	search         []searchTerm
	hasSearch      bool
	count          bool
	expandAtt      bool
	includeHidden  bool
	values         url.Values // the query as received, for @odata.nextLink
	defaultOrdered bool       // no $orderby given
}

type orderKey[T any] struct {
	p    prop[T]
	desc bool
}

// allowed query options per collection kind.
var (
	messageOptions = map[string]bool{"$select": true, "$filter": true, "$orderby": true, "$top": true, "$skip": true, "$search": true, "$count": true, "$expand": true}
	folderOptions  = map[string]bool{"$select": true, "$filter": true, "$orderby": true, "$top": true, "$skip": true, "$search": true, "$count": true, "$expand": true}
)

func parseQuery[T any](rawQuery string, sc *schema[T], fieldIndex map[string]int, allowed map[string]bool) (*listQuery[T], *apiError) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, badRequest("BadRequest", "The query string is malformed: %v", err)
	}
	q := &listQuery[T]{top: 10, values: vals, defaultOrdered: true}
	opts := map[string]string{}
	for k, vs := range vals {
		if !strings.HasPrefix(k, "$") {
			if strings.EqualFold(k, "includeHiddenFolders") {
				v := lower(strings.TrimSpace(vs[0]))
				if v != "true" && v != "false" {
					return nil, badRequest("ErrorInvalidUrlQuery", "The value '%s' of query parameter 'includeHiddenFolders' is not a valid boolean.", vs[0])
				}
				q.includeHidden = v == "true"
			}
			// Graph ignores query parameters it does not know when they lack the $.
			continue
		}
		lk := lower(k)
		if !allowed[lk] {
			return nil, badRequest("BadRequest", "The query parameter '%s' is not supported.", k)
		}
		if len(vs) > 1 {
			return nil, badRequest("BadRequest", "Query option '%s' was specified more than once, but it must be specified at most once.", k)
		}
		if _, dup := opts[lk]; dup {
			return nil, badRequest("BadRequest", "Query option '%s' was specified more than once, but it must be specified at most once.", k)
		}
		opts[lk] = vs[0]
	}
	if v, ok := opts["$top"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil || n < 0:
			return nil, badRequest("BadRequest", "Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v)
		case n > 1000:
			return nil, badRequest("BadRequest", "The limit of '1000' for Top query has been exceeded. The value from the incoming request is '%d'.", n)
		case n == 0:
			return nil, badRequest("BadRequest", "Invalid value '%s' for $top query option found. The $top query option requires a positive integer value.", v)
		}
		q.top, q.topSet = n, true
	}
	if v, ok := opts["$skip"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, badRequest("BadRequest", "Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer value.", v)
		}
		q.skip = n
	}
	if v, ok := opts["$count"]; ok {
		switch lower(strings.TrimSpace(v)) {
		case "true":
			q.count = true
		case "false":
		default:
			return nil, badRequest("BadRequest", "'%s' is not a valid count option.", v)
		}
	}
	if v, ok := opts["$select"]; ok {
		sel, names, e := parseSelect(v, sc, fieldIndex)
		if e != nil {
			return nil, e
		}
		q.sel, q.selNames = sel, names
	}
	if v, ok := opts["$expand"]; ok {
		for _, part := range strings.Split(v, ",") {
			name := strings.TrimSpace(part)
			if strings.EqualFold(name, "attachments") && sc.typeName == messageSchema.typeName {
				q.expandAtt = true
				continue
			}
			return nil, badRequest("BadRequest", "Parsing OData Select and Expand failed: Could not find a property named '%s' on type '%s'.", name, sc.typeName)
		}
	}
	if v, ok := opts["$search"]; ok {
		if sc.typeName != messageSchema.typeName {
			return nil, badRequest("ErrorInvalidUrlQuery", "The query parameter '$search' is not supported for type '%s'.", sc.typeName)
		}
		if _, f := opts["$filter"]; f {
			return nil, badRequest("ErrorInvalidUrlQuery", "The query parameter '$filter' is not supported with '$search'.")
		}
		if _, o := opts["$orderby"]; o {
			return nil, badRequest("SearchWithOrderBy", "The query parameter '$orderBy' is not supported with '$search'.")
		}
		terms, e := parseSearch(v)
		if e != nil {
			return nil, e
		}
		q.search, q.hasSearch = terms, true
	}
	if v, ok := opts["$filter"]; ok {
		f, props, e := compileFilter(v, sc)
		if e != nil {
			return nil, e
		}
		q.filter, q.filterProps = f, props
	}
	if v, ok := opts["$orderby"]; ok {
		keys, props, e := parseOrderBy(v, sc)
		if e != nil {
			return nil, e
		}
		q.order, q.orderProps, q.defaultOrdered = keys, props, false
	}
	return q, nil
}

func parseSelect[T any](v string, sc *schema[T], fieldIndex map[string]int) ([]int, []string, *apiError) {
	seen := map[int]bool{}
	var names []string
	for _, part := range strings.Split(v, ",") {
		name := strings.TrimSpace(part)
		i, ok := fieldIndex[lower(name)]
		if name == "" || name[0] == '@' || !ok {
			if sc.typeName == messageSchema.typeName {
				return nil, nil, badRequest("RequestBroker--ParseUri", "Could not find a property named '%s' on type '%s'.", name, sc.typeName)
			}
			return nil, nil, badRequest("BadRequest", "Parsing OData Select and Expand failed: Could not find a property named '%s' on type '%s'.", name, sc.typeName)
		}
		if !seen[i] {
			seen[i] = true
			names = append(names, name)
		}
	}
	// id (and a message's etag) come whatever was selected; members keep Graph's order.
	if sc.typeName == messageSchema.typeName {
		seen[fEtag] = true
	}
	seen[fieldIndex["id"]] = true
	sel := make([]int, 0, len(seen))
	for i := 0; i < len(fieldIndex); i++ {
		if seen[i] {
			sel = append(sel, i)
		}
	}
	return sel, names, nil
}

func parseOrderBy[T any](v string, sc *schema[T]) ([]orderKey[T], []string, *apiError) {
	var keys []orderKey[T]
	var props []string
	for _, part := range strings.Split(v, ",") {
		f := strings.Fields(part)
		if len(f) == 0 || len(f) > 2 {
			return nil, nil, badRequest("BadRequest", "Syntax error at position %d in '%s'.", len(v), v)
		}
		p, e := sc.lookup(f[0])
		if e != nil {
			return nil, nil, e
		}
		k := orderKey[T]{p: p}
		if len(f) == 2 {
			switch lower(f[1]) {
			case "asc":
			case "desc":
				k.desc = true
			default:
				return nil, nil, badRequest("BadRequest", "Syntax error: character '%s' is not valid at position %d in '%s'.", f[1], strings.Index(v, f[1]), v)
			}
		}
		keys = append(keys, k)
		props = append(props, lower(f[0]))
	}
	return keys, props, nil
}

// compare orders a and b by the keys; 0 when equal.
func (q *listQuery[T]) compare(a, b T) int {
	for _, k := range q.order {
		c := 0
		switch k.p.kind {
		case kString:
			c = strings.Compare(lower(k.p.str(a)), lower(k.p.str(b)))
		case kBool:
			x, y := k.p.bl(a), k.p.bl(b)
			if x != y {
				if y {
					c = -1
				} else {
					c = 1
				}
			}
		case kTime:
			c = k.p.tm(a).Compare(k.p.tm(b))
		case kInt:
			x, y := k.p.num(a), k.p.num(b)
			if x < y {
				c = -1
			} else if x > y {
				c = 1
			}
		}
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// searchTerm is one KQL term: a word or phrase, optionally restricted to a property.
type searchTerm struct {
	prop string // "" = subject, body, from, recipients
	text string // lower-case
}

// parseSearch understands the subset of KQL that the connector's users are
// likely to send: words and quoted phrases, optionally prop:value, joined by
// AND (implicit or explicit).
func parseSearch(v string) ([]searchTerm, *apiError) {
	s := strings.TrimSpace(v)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	} else if strings.Count(s, `"`)%2 != 0 {
		return nil, badRequest("BadRequest", "Syntax error: character '\"' is not valid at position %d in '%s'.", strings.IndexByte(s, '"'), v)
	}
	var terms []searchTerm
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		var tok string
		if s[0] == '\'' || s[0] == '"' {
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return nil, badRequest("BadRequest", "Syntax error: unbalanced quote in '%s'.", v)
			}
			tok, s = s[1:end+1], s[end+2:]
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			tok, s = s[:end], s[end:]
		}
		if tok == "AND" {
			continue
		}
		t := searchTerm{text: lower(tok)}
		if i := strings.IndexByte(tok, ':'); i > 0 {
			switch p := lower(tok[:i]); p {
			case "subject", "body", "from", "to", "cc", "bcc", "participants", "attachment":
				t.prop, t.text = p, lower(strings.Trim(tok[i+1:], `"'`))
			}
		}
		if t.text != "" {
			terms = append(terms, t)
		}
	}
	if len(terms) == 0 {
		return nil, badRequest("BadRequest", "The search query '%s' is empty.", v)
	}
	return terms, nil
}

func (m *msg) matches(terms []searchTerm) bool {
	for _, t := range terms {
		var hay string
		switch t.prop {
		case "":
			hay = m.searchText()
		case "subject":
			hay = lower(m.data.Subject)
		case "body":
			hay = lower(m.data.plainBody())
		case "from":
			hay = lower(m.data.From.Address + " " + m.data.From.Name)
		case "to":
			hay = recipientsText(m.data.To)
		case "cc":
			hay = recipientsText(m.data.Cc)
		case "bcc":
			hay = recipientsText(m.data.Bcc)
		case "participants":
			hay = lower(m.data.From.Address+" "+m.data.From.Name) + recipientsText(m.data.To) + recipientsText(m.data.Cc)
		case "attachment":
			for _, a := range m.data.Attachments {
				hay += lower(a.Name) + " "
			}
		}
		if !strings.Contains(hay, t.text) {
			return false
		}
	}
	return true
}

func (m *msg) searchText() string {
	return lower(m.data.Subject) + "\n" + lower(m.data.plainBody()) + "\n" +
		lower(m.data.From.Address+" "+m.data.From.Name) + "\n" + recipientsText(m.data.To) + recipientsText(m.data.Cc)
}

func recipientsText(rs []Recipient) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(lower(r.Address))
		b.WriteByte(' ')
		b.WriteString(lower(r.Name))
		b.WriteByte(' ')
	}
	return b.String()
}
