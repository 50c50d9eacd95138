package graphsim

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)

// seed puts n messages into the inbox, message i received at t0+i minutes:
// even ones unread, every third one high importance, every fifth with an
// attachment, from sender<i%3>@ext.test.
func seed(s *Server, upn string, n int) []string {
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		m := Message{
			Subject:          fmt.Sprintf("msg %02d", i),
			BodyContent:      fmt.Sprintf("body of message %d", i),
			From:             Recipient{Name: fmt.Sprintf("Sender %d", i%3), Address: fmt.Sprintf("sender%d@ext.test", i%3)},
			To:               []Recipient{{Address: upn}},
			IsRead:           i%2 == 1,
			ReceivedDateTime: t0.Add(time.Duration(i) * time.Minute),
		}
		if i%3 == 0 {
			m.Importance = "high"
		}
		if i%5 == 0 {
			m.Attachments = []Attachment{{Name: "a.txt", ContentType: "text/plain", ContentBytes: []byte("hello")}}
		}
		ids[i] = s.AddMessage(upn, "inbox", m)
	}
	return ids
}

func subjects(r *resp) []string { return names(r.values(), "subject") }

func TestListMessagesFollowNextLinkToTheEnd(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	seed(s, "a@x.test", 25)
	s.AddMessage("a@x.test", "drafts", Message{Subject: "draft", ReceivedDateTime: t0.Add(time.Hour)})

	r := call(t, s, "GET", "/users/a@x.test/mailFolders/inbox/messages", nil)
	wantStatus(t, r, 200, "")
	if n := len(r.values()); n != 10 {
		t.Fatalf("default page has %d messages", n)
	}
	next, _ := r.body["@odata.nextLink"].(string)
	if next != s.URL()+"/users/a@x.test/mailFolders/inbox/messages?%24skip=10" {
		t.Fatalf("nextLink %q", next)
	}
	var got []string
	got = append(got, subjects(r)...)
	for r.body["@odata.nextLink"] != nil {
		r = call(t, s, "GET", r.body["@odata.nextLink"].(string), nil)
		wantStatus(t, r, 200, "")
		got = append(got, subjects(r)...)
	}
	if len(got) != 25 {
		t.Fatalf("collected %d: %v", len(got), got)
	}
	for i, subj := range got {
		if want := fmt.Sprintf("msg %02d", 24-i); subj != want {
			t.Fatalf("position %d: %s, want %s (newest first)", i, subj, want)
		}
	}

	// $top and $skip; the nextLink keeps $top and the other options.
	r = call(t, s, "GET", "/users/a@x.test/mailFolders/inbox/messages?$top=7&$skip=3&$select=subject", nil)
	if got := subjects(r); len(got) != 7 || got[0] != "msg 21" || got[6] != "msg 15" {
		t.Fatalf("top/skip page %v", got)
	}
	next = r.body["@odata.nextLink"].(string)
	u, _ := url.Parse(next)
	if q := u.Query(); q.Get("$top") != "7" || q.Get("$skip") != "10" || q.Get("$select") != "subject" {
		t.Fatalf("nextLink %s", next)
	}
	// The last page has no nextLink, and past the end is an empty page.
	r = call(t, s, "GET", "/users/a@x.test/mailFolders/inbox/messages?$top=5&$skip=20", nil)
	if len(r.values()) != 5 || r.body["@odata.nextLink"] != nil {
		t.Fatalf("last page %v", r.body)
	}
	r = call(t, s, "GET", "/users/a@x.test/mailFolders/inbox/messages?$skip=100", nil)
	if len(r.values()) != 0 || r.body["@odata.nextLink"] != nil {
		t.Fatalf("past the end %v", r.body)
	}
	// /messages spans all folders.
	r = call(t, s, "GET", "/users/a@x.test/messages?$top=1000&$count=true", nil)
	if len(r.values()) != 26 || r.body["@odata.count"] != float64(26) || subjects(r)[0] != "draft" {
		t.Fatalf("all messages: %d, count %v", len(r.values()), r.body["@odata.count"])
	}
}

func TestTopAndUnknownOptions(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	seed(s, "a@x.test", 3)
	for _, q := range []string{"$top=0", "$top=1001", "$top=abc", "$top=-1", "$skip=-2", "$skip=x", "$count=maybe", "$xyz=1", "$top=1&$top=2", "$expand=mentions", "$format=json"} {
		r := call(t, s, "GET", "/users/a@x.test/messages?"+q, nil)
		if r.status != 400 || r.errCode() == "" {
			t.Errorf("%s: %d %s", q, r.status, r.raw)
		}
	}
	if r := call(t, s, "GET", "/users/a@x.test/messages?$top=1000", nil); r.status != 200 || len(r.values()) != 3 {
		t.Fatalf("$top=1000: %d", r.status)
	}
	// Options without $ that Graph does not know are ignored.
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?foo=bar", nil), 200, "")
}

func TestMessageJSONShape(t *testing.T) {
	s := newServer(t)
	mb := s.AddMailbox("a@x.test")
	id := s.AddMessage("a@x.test", "inbox", Message{
		Subject: "Quarterly <numbers> & \"quotes\"", BodyContentType: "html", BodyContent: "<p>Hello <b>world</b></p>",
		From: Recipient{Name: "Bob", Address: "bob@ext.test"}, To: []Recipient{{Name: "A", Address: "a@x.test"}},
		Cc: []Recipient{{Address: "c@x.test"}}, ReplyTo: []Recipient{{Address: "reply@ext.test"}}, Importance: "High",
		ReceivedDateTime: t0,
	})
	r := call(t, s, "GET", "/users/a@x.test/messages", nil, "client-request-id", "abc-123")
	wantStatus(t, r, 200, "")
	if ct := r.header.Get("Content-Type"); ct != contentTypeJSON {
		t.Fatalf("content-type %q", ct)
	}
	if r.header.Get("request-id") == "" || r.header.Get("client-request-id") != "abc-123" || r.header.Get("x-ms-ags-diagnostic") == "" {
		t.Fatalf("headers %v", r.header)
	}
	m := r.values()[0]
	for _, k := range []string{"@odata.etag", "id", "createdDateTime", "lastModifiedDateTime", "receivedDateTime", "sentDateTime",
		"hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance", "parentFolderId", "conversationId",
		"isRead", "isDraft", "webLink", "body", "sender", "from", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "flag"} {
		if _, ok := m[k]; !ok {
			t.Errorf("message lacks %s", k)
		}
	}
	inbox, _ := mb.FolderID("inbox")
	body := m["body"].(map[string]any)
	from := m["from"].(map[string]any)["emailAddress"].(map[string]any)
	if m["id"] != id || m["subject"] != "Quarterly <numbers> & \"quotes\"" || m["importance"] != "high" ||
		m["receivedDateTime"] != "2024-03-01T08:00:00Z" || m["parentFolderId"] != inbox || m["isRead"] != false ||
		body["contentType"] != "html" || body["content"] != "<p>Hello <b>world</b></p>" ||
		from["address"] != "bob@ext.test" || from["name"] != "Bob" || m["bodyPreview"] != "Hello world" ||
		m["flag"].(map[string]any)["flagStatus"] != "notFlagged" || !strings.HasPrefix(m["@odata.etag"].(string), `W/"`) {
		t.Fatalf("message %v", m)
	}
	cc := m["ccRecipients"].([]any)[0].(map[string]any)["emailAddress"].(map[string]any)
	if cc["address"] != "c@x.test" || cc["name"] != "c@x.test" {
		t.Fatalf("cc %v", cc)
	}

	// One message by id, with the text body preferred.
	g := call(t, s, "GET", "/users/a@x.test/messages/"+id, nil, "Prefer", `outlook.body-content-type="text"`)
	wantStatus(t, g, 200, "")
	if b := g.body["body"].(map[string]any); b["contentType"] != "text" || b["content"] != "Hello world" {
		t.Fatalf("text body %v", b)
	}
	if g.header.Get("Preference-Applied") == "" || !strings.HasSuffix(g.body["@odata.context"].(string), "/messages/$entity") {
		t.Fatalf("get: %v %v", g.header, g.body["@odata.context"])
	}
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders/inbox/messages/"+id, nil), 200, "")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders/drafts/messages/"+id, nil), 404, "ErrorItemNotFound")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages/garbage", nil), 400, "ErrorInvalidIdMalformed")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages/"+s.newItemID(kindMessage), nil), 404, "ErrorItemNotFound")
}

func TestSelect(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	seed(s, "a@x.test", 2)
	r := call(t, s, "GET", "/users/a@x.test/messages?$select=subject,from,SUBJECT", nil)
	wantStatus(t, r, 200, "")
	for _, m := range r.values() {
		if len(m) != 4 || m["id"] == nil || m["subject"] == nil || m["from"] == nil || m["@odata.etag"] == nil {
			t.Fatalf("selected %v", m)
		}
	}
	if !strings.HasSuffix(r.body["@odata.context"].(string), "/messages(subject,from)") {
		t.Fatalf("context %v", r.body["@odata.context"])
	}
	r = call(t, s, "GET", "/users/a@x.test/messages?$select=subject,isJunk", nil)
	wantStatus(t, r, 400, "RequestBroker--ParseUri")
	if !strings.Contains(r.raw2(), "isJunk") {
		t.Fatalf("message %s", r.raw)
	}
	// uniqueBody only comes when selected; attachments only when expanded.
	r = call(t, s, "GET", "/users/a@x.test/messages?$select=uniqueBody&$expand=attachments", nil)
	m := r.values()[1] // msg 00 has an attachment
	atts, _ := m["attachments"].([]any)
	if m["uniqueBody"] == nil || len(atts) != 1 {
		t.Fatalf("uniqueBody/attachments %v", m)
	}
	if a := atts[0].(map[string]any); a["contentBytes"] != "aGVsbG8=" || a["size"] != float64(5) || a["@odata.type"] != "#microsoft.graph.fileAttachment" {
		t.Fatalf("attachment %v", a)
	}
	if _, ok := call(t, s, "GET", "/users/a@x.test/messages", nil).values()[0]["uniqueBody"]; ok {
		t.Fatal("uniqueBody sent by default")
	}
}

func (r *resp) raw2() string { return string(r.raw) }

func TestFilter(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	seed(s, "a@x.test", 20)
	cases := []struct {
		filter string
		want   []string // subjects, newest first; nil = count only
		count  int
	}{
		{filter: "subject eq 'msg 05'", want: []string{"msg 05"}},
		{filter: "subject eq 'MSG 05'", want: []string{"msg 05"}},
		{filter: "subject ne 'msg 05'", count: 19},
		{filter: "isRead eq false", count: 10},
		{filter: "isRead eq true and importance eq 'high'", want: []string{"msg 15", "msg 09", "msg 03"}},
		{filter: "from/emailAddress/address eq 'sender1@ext.test'", want: []string{"msg 19", "msg 16", "msg 13", "msg 10", "msg 07", "msg 04", "msg 01"}},
		{filter: "hasAttachments eq true", want: []string{"msg 15", "msg 10", "msg 05", "msg 00"}},
		{filter: "receivedDateTime ge 2024-03-01T08:17:00Z", want: []string{"msg 19", "msg 18", "msg 17"}},
		{filter: "receivedDateTime gt 2024-03-01T08:17:00Z and receivedDateTime lt 2024-03-01T08:19:00Z", want: []string{"msg 18"}},
		{filter: "receivedDateTime le 2024-03-01T08:01:00Z", want: []string{"msg 01", "msg 00"}},
		{filter: "receivedDateTime lt 2024-03-01", count: 0},
		{filter: "subject eq 'msg 01' or subject eq 'msg 02'", want: []string{"msg 02", "msg 01"}},
		{filter: "(subject eq 'msg 01' or subject eq 'msg 02') and isRead eq false", want: []string{"msg 02"}},
		{filter: "not (isRead eq true) and hasAttachments eq true", want: []string{"msg 10", "msg 00"}},
		{filter: "isRead and hasAttachments eq true", want: []string{"msg 15", "msg 05"}},
		{filter: "subject eq 'it''s'", count: 0},
		{filter: "startswith(subject,'MSG 1')", count: 10},
		{filter: "startswith(from/emailAddress/address,'sender1') and isRead eq false", want: []string{"msg 16", "msg 10", "msg 04"}},
		{filter: "not startswith(subject,'msg 1')", count: 10},
	}
	for _, c := range cases {
		r := call(t, s, "GET", "/users/a@x.test/messages?$top=100&$count=true&$filter="+url.QueryEscape(c.filter), nil)
		if r.status != 200 {
			t.Errorf("%s: %d %s", c.filter, r.status, r.raw)
			continue
		}
		got := subjects(r)
		if c.want != nil && strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: got %v, want %v", c.filter, got, c.want)
		}
		if c.want == nil && len(got) != c.count {
			t.Errorf("%s: got %d, want %d", c.filter, len(got), c.count)
		}
		if r.body["@odata.count"] != float64(len(got)) {
			t.Errorf("%s: count %v, got %d", c.filter, r.body["@odata.count"], len(got))
		}
	}
	errs := []struct{ filter, code string }{
		{"subject eq", "BadRequest"},
		{"subject eq 'x", "BadRequest"},
		{"subject eq 'x' and", "BadRequest"},
		{"(subject eq 'x'", "BadRequest"},
		{"isJunk eq true", "RequestBroker--ParseUri"},
		{"startswith(isRead,'t')", "ErrorInvalidUrlQueryFilter"},
		{"startswith(subject,1)", "ErrorInvalidUrlQueryFilter"},
		{"startswith(subject,'x'", "BadRequest"},
		{"endswith(subject,'msg')", "ErrorInvalidUrlQueryFilter"},
		{"contains(subject,'msg')", "ErrorInvalidUrlQueryFilter"},
		{"toRecipients/any(r:r/emailAddress/address eq 'a@x.test')", "ErrorInvalidUrlQueryFilter"},
		{"'x' eq subject", "ErrorInvalidUrlQueryFilter"},
		{"subject eq bodyPreview", "ErrorInvalidUrlQueryFilter"},
		{"isRead eq 'yes'", "BadRequest"},
		{"receivedDateTime ge 'yesterday'", "BadRequest"},
		{"isRead gt false", "ErrorInvalidUrlQueryFilter"},
		{"subject ~ 'x'", "BadRequest"},
	}
	for _, e := range errs {
		r := call(t, s, "GET", "/users/a@x.test/messages?$filter="+url.QueryEscape(e.filter), nil)
		if r.status != 400 || r.errCode() != e.code {
			t.Errorf("%s: %d %s, want 400 %s", e.filter, r.status, r.errCode(), e.code)
		}
	}
	// Paging through a filtered list.
	r := call(t, s, "GET", "/users/a@x.test/messages?$top=4&$filter="+url.QueryEscape("isRead eq false"), nil)
	var got []string
	got = append(got, subjects(r)...)
	for r.body["@odata.nextLink"] != nil {
		r = call(t, s, "GET", r.body["@odata.nextLink"].(string), nil)
		got = append(got, subjects(r)...)
	}
	if len(got) != 10 || got[0] != "msg 18" || got[9] != "msg 00" {
		t.Fatalf("filtered paging %v", got)
	}
}

func TestOrderBy(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	seed(s, "a@x.test", 12)
	r := call(t, s, "GET", "/users/a@x.test/messages?$orderby="+url.QueryEscape("receivedDateTime asc")+"&$top=3", nil)
	if got := subjects(r); strings.Join(got, ",") != "msg 00,msg 01,msg 02" {
		t.Fatalf("asc %v", got)
	}
	r = call(t, s, "GET", r.body["@odata.nextLink"].(string), nil)
	if got := subjects(r); strings.Join(got, ",") != "msg 03,msg 04,msg 05" {
		t.Fatalf("asc page 2 %v", got)
	}
	r = call(t, s, "GET", "/users/a@x.test/messages?$orderby=subject&$top=2", nil)
	if got := subjects(r); strings.Join(got, ",") != "msg 00,msg 01" {
		t.Fatalf("by subject %v", got)
	}
	r = call(t, s, "GET", "/users/a@x.test/messages?$orderby="+url.QueryEscape("from/emailAddress/address desc,receivedDateTime desc")+"&$top=2", nil)
	if got := subjects(r); strings.Join(got, ",") != "msg 11,msg 08" {
		t.Fatalf("by sender %v", got)
	}
	// Sorted properties must lead the filter.
	ok := "receivedDateTime ge 2024-03-01T08:05:00Z and isRead eq false"
	r = call(t, s, "GET", "/users/a@x.test/messages?$orderby="+url.QueryEscape("receivedDateTime asc")+"&$filter="+url.QueryEscape(ok), nil)
	if got := subjects(r); r.status != 200 || strings.Join(got, ",") != "msg 06,msg 08,msg 10" {
		t.Fatalf("filter+orderby %d %v %s", r.status, got, r.raw)
	}
	bad := "isRead eq false and receivedDateTime ge 2024-03-01T08:05:00Z"
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?$orderby=receivedDateTime&$filter="+url.QueryEscape(bad), nil), 400, "InefficientFilter")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?$orderby=subject&$filter="+url.QueryEscape("isRead eq false"), nil), 400, "InefficientFilter")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?$orderby=nope", nil), 400, "RequestBroker--ParseUri")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?$orderby="+url.QueryEscape("subject sideways"), nil), 400, "BadRequest")
}

func TestSearch(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	seed(s, "a@x.test", 12)
	s.AddMessage("a@x.test", "inbox", Message{Subject: "Invoice 42", BodyContent: "Please pay the pizza bill", ReceivedDateTime: t0.Add(-time.Hour)})
	s.AddMessage("a@x.test", "archive", Message{Subject: "Lunch", BodyContentType: "html", BodyContent: "<i>pizza</i> at noon", ReceivedDateTime: t0.Add(-2 * time.Hour)})
	cases := map[string][]string{
		`"pizza"`:             {"Invoice 42", "Lunch"},
		`pizza`:               {"Invoice 42", "Lunch"},
		`"subject:invoice"`:   {"Invoice 42"},
		`"pizza AND noon"`:    {"Lunch"},
		`"body:message 11"`:   {"msg 11"},
		`"from:sender2"`:      {"msg 11", "msg 08", "msg 05", "msg 02"},
		`"attachment:a.txt"`:  {"msg 10", "msg 05", "msg 00"},
		`"nothing like this"`: nil,
	}
	for q, want := range cases {
		r := call(t, s, "GET", "/users/a@x.test/messages?$search="+url.QueryEscape(q), nil)
		if got := subjects(r); r.status != 200 || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("search %s: %d %v, want %v", q, r.status, got, want)
		}
	}
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?$search=pizza&$filter="+url.QueryEscape("isRead eq true"), nil), 400, "ErrorInvalidUrlQuery")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?$search=pizza&$orderby=subject", nil), 400, "SearchWithOrderBy")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages?$search="+url.QueryEscape(`"unbalanced`), nil), 400, "BadRequest")
}
