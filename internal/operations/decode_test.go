package operations

import (
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// parse turns a JSON literal into job variables the way the worker sees them
// (numbers as json.Number).
func parse(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

type decodeCase struct {
	name string
	vars string
	// err is the exact INVALID_INPUT message; "" = valid.
	err string
	// check inspects a valid call.
	check func(t *testing.T, c Call)
}

func runDecodeCases(t *testing.T, op Operation, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			call, err := op.Decode(parse(t, tc.vars))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.check != nil {
					tc.check(t, call)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.err)
			}
			ce, ok := err.(*connerr.Error)
			if !ok || ce.Code != connerr.CodeInvalidInput || !ce.Final || ce.Type != connerr.TypeInput {
				t.Fatalf("error %T %+v is not a final INVALID_INPUT", err, err)
			}
			if ce.Message != tc.err {
				t.Errorf("message\n got %q\nwant %q", ce.Message, tc.err)
			}
		})
	}
}

func listOf(t *testing.T, c Call) *listCall {
	t.Helper()
	lc, ok := c.(*listCall)
	if !ok {
		t.Fatalf("call is %T", c)
	}
	return lc
}

func wantPath(path ...string) func(t *testing.T, c Call) {
	return func(t *testing.T, c Call) {
		t.Helper()
		var got []string
		switch x := c.(type) {
		case *listCall:
			got = x.path
		case *createFolderCall:
			got = x.path
		}
		if !slices.Equal(got, path) {
			t.Errorf("path = %q, want %q", got, path)
		}
	}
}

func TestDecodeCommon(t *testing.T) {
	for _, op := range Registry() {
		t.Run(op.Type(), func(t *testing.T) {
			runDecodeCases(t, op, []decodeCase{
				{name: "no variables", vars: `{}`, err: "operation.userId: required, expected a user principal name, e-mail address or object id"},
				{name: "operation not a context", vars: `{"operation":"x"}`, err: `operation: expected a context, got string "x"`},
				{name: "userId null", vars: `{"operation":{"userId":null}}`, err: "operation.userId: required, expected a user principal name, e-mail address or object id"},
				{name: "userId number", vars: `{"operation":{"userId":12}}`, err: "operation.userId: expected a string, got number 12"},
				{name: "userId empty", vars: `{"operation":{"userId":"  "}}`, err: "operation.userId: required, expected a user principal name, e-mail address or object id, got an empty string"},
				{name: "userId with slash", vars: `{"operation":{"userId":"a@b.com/../x"}}`, err: `operation.userId: must not be "." or contain "..", got "a@b.com/../x"`},
				{name: "userId with query", vars: `{"operation":{"userId":"a@b.com?x"}}`, err: `operation.userId: must not contain '?' (expected a user principal name, e-mail address or object id), got "a@b.com?x"`},
			})
		})
	}
	// Nothing panics whatever the shapes.
	weird := []any{nil, "s", 1.5, true, []any{1}, map[string]any{}, map[string]any{"userId": []any{}}}
	for _, op := range Registry() {
		for _, op1 := range weird {
			for _, msg := range weird {
				_, _ = op.Decode(map[string]any{"operation": op1, "message": msg, "folder": msg})
			}
		}
		_, _ = op.Decode(nil)
	}
}

func TestDecodeListMailFolders(t *testing.T) {
	runDecodeCases(t, ListMailFolders{}, []decodeCase{
		{name: "root", vars: `{"operation":{"userId":" anna@contoso.com "}}`, check: func(t *testing.T, c Call) {
			wantPath("mailFolders")(t, c)
			if c.UserID() != "anna@contoso.com" {
				t.Errorf("userId %q", c.UserID())
			}
			if lc := listOf(t, c); lc.query != nil || lc.maxResults != 0 {
				t.Errorf("%+v", lc)
			}
		}},
		{name: "children", vars: `{"operation":{"userId":"a@b.com","parentFolderId":"inbox"}}`, check: wantPath("mailFolders", "inbox", "childFolders")},
		{name: "empty parent is root", vars: `{"operation":{"userId":"a@b.com","parentFolderId":""}}`, check: wantPath("mailFolders")},
		{name: "hidden folders", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"includeHiddenFolders":"true","$top":"50"}}}`, check: func(t *testing.T, c Call) {
			if q := listOf(t, c).query; q.Get("includeHiddenFolders") != "true" || q.Get("$top") != "50" {
				t.Errorf("query %v", q)
			}
		}},
		{name: "parent dot-dot", vars: `{"operation":{"userId":"a@b.com","parentFolderId":".."}}`, err: `operation.parentFolderId: expected an id, got ".." ("." and ".." between slashes are path steps)`},
		{name: "parent not string", vars: `{"operation":{"userId":"a@b.com","parentFolderId":{}}}`, err: "operation.parentFolderId: expected a string, got a context"},
		{name: "includeHiddenFolders not bool", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"includeHiddenFolders":"yes"}}}`, err: `operation.queryParameters.includeHiddenFolders: expected a boolean, got string "yes"`},
	})
}

func TestDecodeListMessages(t *testing.T) {
	runDecodeCases(t, ListMessages{}, []decodeCase{
		{name: "all messages", vars: `{"operation":{"userId":"a@b.com"}}`, check: wantPath("messages")},
		{name: "well-known folder", vars: `{"operation":{"userId":"a@b.com","folderId":"sentitems"}}`, check: wantPath("mailFolders", "sentitems", "messages")},
		{name: "folder id with slash is escaped later", vars: `{"operation":{"userId":"a@b.com","folderId":"AAMk/x+="}}`, check: wantPath("mailFolders", "AAMk/x+=", "messages")},
		{name: "query options", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$top":10,"$select":"subject,from","$filter":"isRead eq false","$orderby":"receivedDateTime desc","$count":true,"$skip":0,"$expand":"attachments","$ignored":null}}}`,
			err: `operation.queryParameters: key "$ignored" is not allowed; allowed keys are $select $filter $orderby $top $skip $search $expand $count includeHiddenFolders`},
		{name: "query values", vars: `{"operation":{"userId":"a@b.com","maxResults":25,"queryParameters":{"$top":10.0,"$select":"subject,from","$filter":"isRead eq false","$count":true,"$skip":"5","$search":null}}}`, check: func(t *testing.T, c Call) {
			lc := listOf(t, c)
			want := url.Values{"$top": {"10"}, "$select": {"subject,from"}, "$filter": {"isRead eq false"}, "$count": {"true"}, "$skip": {"5"}}
			if !reflect.DeepEqual(lc.query, want) {
				t.Errorf("query %v, want %v", lc.query, want)
			}
			if lc.maxResults != 25 {
				t.Errorf("maxResults %d", lc.maxResults)
			}
		}},
		{name: "disallowed key", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$format":"json"}}}`,
			err: `operation.queryParameters: key "$format" is not allowed; allowed keys are $select $filter $orderby $top $skip $search $expand $count includeHiddenFolders`},
		{name: "queryParameters not a context", vars: `{"operation":{"userId":"a@b.com","queryParameters":"$top=5"}}`, err: `operation.queryParameters: expected a context, got string "$top=5"`},
		{name: "top zero", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$top":0}}}`, err: "operation.queryParameters.$top: expected an integer from 1 to 1000, got 0"},
		{name: "top too big", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$top":1001}}}`, err: "operation.queryParameters.$top: expected an integer from 1 to 1000, got 1001"},
		{name: "top fraction", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$top":2.5}}}`, err: "operation.queryParameters.$top: expected an integer, got number 2.5"},
		{name: "skip negative", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$skip":-1}}}`, err: "operation.queryParameters.$skip: expected an integer of at least 0, got -1"},
		{name: "select list", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$select":["subject"]}}}`, err: "operation.queryParameters.$select: expected a string, number or boolean, got a list"},
		{name: "search with filter", vars: `{"operation":{"userId":"a@b.com","queryParameters":{"$search":"\"pizza\"","$filter":"isRead eq false"}}}`, err: "operation.queryParameters: $search cannot be combined with $filter or $orderby (Graph refuses the request)"},
		{name: "maxResults word", vars: `{"operation":{"userId":"a@b.com","maxResults":"ten"}}`, err: `operation.maxResults: expected an integer, got string "ten"`},
		{name: "maxResults zero", vars: `{"operation":{"userId":"a@b.com","maxResults":0}}`, err: "operation.maxResults: expected an integer of at least 1, got 0"},
		{name: "maxResults float", vars: `{"operation":{"userId":"a@b.com","maxResults":1.5}}`, err: "operation.maxResults: expected an integer, got number 1.5"},
		{name: "maxResults string number", vars: `{"operation":{"userId":"a@b.com","maxResults":"30"}}`, check: func(t *testing.T, c Call) {
			if listOf(t, c).maxResults != 30 {
				t.Error("maxResults")
			}
		}},
		{name: "folder control char", vars: `{"operation":{"userId":"a@b.com","folderId":"in\nbox"}}`, err: `operation.folderId: must not contain control characters, got "in\nbox"`},
	})
}

func TestDecodeCreateMailFolder(t *testing.T) {
	runDecodeCases(t, CreateMailFolder{}, []decodeCase{
		{name: "root", vars: `{"operation":{"userId":"a@b.com"},"folder":{"displayName":"Invoices"}}`, check: func(t *testing.T, c Call) {
			wantPath("mailFolders")(t, c)
			if b := c.(*createFolderCall).body; !reflect.DeepEqual(b, map[string]any{"displayName": "Invoices", "isHidden": false}) {
				t.Errorf("body %v", b)
			}
		}},
		{name: "child hidden", vars: `{"operation":{"userId":"a@b.com","parentFolderId":"inbox"},"folder":{"displayName":"X","isHidden":true}}`, check: func(t *testing.T, c Call) {
			wantPath("mailFolders", "inbox", "childFolders")(t, c)
			if c.(*createFolderCall).body["isHidden"] != true {
				t.Error("isHidden")
			}
		}},
		{name: "no folder", vars: `{"operation":{"userId":"a@b.com"}}`, err: "folder.displayName: required, expected the new folder's name"},
		{name: "empty name", vars: `{"operation":{"userId":"a@b.com"},"folder":{"displayName":""}}`, err: "folder.displayName: required, expected the new folder's name, got an empty string"},
		{name: "folder not context", vars: `{"operation":{"userId":"a@b.com"},"folder":["x"]}`, err: "folder: expected a context, got a list"},
		{name: "isHidden wrong", vars: `{"operation":{"userId":"a@b.com"},"folder":{"displayName":"X","isHidden":1}}`, err: "folder.isHidden: expected a boolean, got number 1"},
	})
}

func TestDecodeSendMail(t *testing.T) {
	body := func(t *testing.T, c Call) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(c.(*sendCall).body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	full := `{"operation":{"userId":"a@b.com"},"message":{
		"subject":"Hi","bodyContentType":"HTML","bodyContent":"<p>x</p>",
		"toRecipients":["bob@x.com",{"address":"carol@x.com","name":"Carol C"}],
		"ccRecipients":[{"emailAddress":{"address":"dave@x.com"}}],
		"bccRecipients":"eve@x.com",
		"replyTo":["r@x.com"],
		"importance":"High",
		"attachments":[{"name":"a.txt","contentType":"text/plain","contentBytes":"aGVsbG8="},{"name":"b.bin","contentBytes":""}],
		"saveToSentItems":false}}`
	runDecodeCases(t, SendMail{}, []decodeCase{
		{name: "full", vars: full, check: func(t *testing.T, c Call) {
			want := map[string]any{
				"message": map[string]any{
					"subject": "Hi",
					"body":    map[string]any{"contentType": "html", "content": "<p>x</p>"},
					"toRecipients": []any{
						map[string]any{"emailAddress": map[string]any{"address": "bob@x.com"}},
						map[string]any{"emailAddress": map[string]any{"address": "carol@x.com", "name": "Carol C"}},
					},
					"ccRecipients":  []any{map[string]any{"emailAddress": map[string]any{"address": "dave@x.com"}}},
					"bccRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "eve@x.com"}}},
					"replyTo":       []any{map[string]any{"emailAddress": map[string]any{"address": "r@x.com"}}},
					"importance":    "high",
					"attachments": []any{
						map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt", "contentType": "text/plain", "contentBytes": "aGVsbG8="},
						map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "b.bin", "contentType": "application/octet-stream", "contentBytes": ""},
					},
				},
				"saveToSentItems": false,
			}
			if got := body(t, c); !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", " ")
				t.Errorf("body:\n%s", g)
			}
		}},
		{name: "minimal defaults", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["b@c.com"]}}`, check: func(t *testing.T, c Call) {
			m := body(t, c)
			if m["saveToSentItems"] != true {
				t.Error("saveToSentItems default")
			}
			if b := m["message"].(map[string]any)["body"].(map[string]any); b["contentType"] != "text" || b["content"] != "" {
				t.Errorf("body %v", b)
			}
		}},
		{name: "no message", vars: `{"operation":{"userId":"a@b.com"}}`, err: "message.toRecipients: required, expected a non-empty list of e-mail addresses"},
		{name: "empty to", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":[]}}`, err: "message.toRecipients: required, expected a non-empty list of e-mail addresses, got an empty list"},
		{name: "to is number", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":5}}`, err: "message.toRecipients: expected a list of e-mail addresses, got number 5"},
		{name: "bad address", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["ok@x.com","not-an-address"]}}`,
			err: `message.toRecipients: item 2: expected an e-mail address such as "name@example.com" (RFC 5322 addr-spec; put a display name into {"address", "name"}), got "not-an-address"`},
		{name: "display name form", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["Bob <bob@x.com>"]}}`,
			err: `message.toRecipients: item 1: expected an e-mail address such as "name@example.com" (RFC 5322 addr-spec; put a display name into {"address", "name"}), got "Bob <bob@x.com>"`},
		{name: "two in one string", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":"a@x.com, b@x.com"}}`,
			err: `message.toRecipients: item 1: expected an e-mail address such as "name@example.com" (RFC 5322 addr-spec; put a display name into {"address", "name"}), got "a@x.com, b@x.com"`},
		{name: "bad cc object", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"ccRecipients":[{"name":"x"}]}}`,
			err: `message.ccRecipients: item 1: expected "address" to be a string, got null`},
		{name: "bad reply-to item", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"replyTo":[true]}}`,
			err: `message.replyTo: item 1: expected an e-mail address or {"address", "name"}, got boolean true`},
		{name: "content type", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"bodyContentType":"rtf"}}`,
			err: `message.bodyContentType: expected one of text, html, got string "rtf"`},
		{name: "importance", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"importance":"urgent"}}`,
			err: `message.importance: expected one of low, normal, high, got string "urgent"`},
		{name: "subject number", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"subject":1}}`,
			err: "message.subject: expected a string, got number 1"},
		{name: "saveToSentItems", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"saveToSentItems":"nope"}}`,
			err: `message.saveToSentItems: expected a boolean, got string "nope"`},
		{name: "attachment base64", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"attachments":[{"name":"a.pdf","contentBytes":"not base64!"}]}}`,
			err: `message.attachments: item 1 ("a.pdf"): "contentBytes" is not valid base64: illegal base64 data at input byte 3`},
		{name: "attachment no name", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"attachments":[{"contentBytes":"aGk="}]}}`,
			err: `message.attachments: item 1: expected "name" to be a non-empty string, got null`},
		{name: "attachment no bytes", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"attachments":[{"name":"x"}]}}`,
			err: `message.attachments: item 1 ("x"): expected "contentBytes" to be a base64 string, got null`},
		{name: "attachments not list", vars: `{"operation":{"userId":"a@b.com"},"message":{"toRecipients":["a@x.com"],"attachments":{}}}`,
			err: "message.attachments: expected a list, got a context"},
	})
}

func TestSendMailRecipientLimit(t *testing.T) {
	addrs := func(n int, p string) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = p + strings.Repeat("x", i%7) + "@example.com"
		}
		return l
	}
	vars := map[string]any{"operation": map[string]any{"userId": "a@b.com"},
		"message": map[string]any{"toRecipients": addrs(300, "t"), "ccRecipients": addrs(150, "c"), "bccRecipients": addrs(50, "b"), "replyTo": addrs(3, "r")}}
	if _, err := (SendMail{}).Decode(vars); err != nil {
		t.Fatalf("500 recipients refused: %v", err)
	}
	vars["message"].(map[string]any)["bccRecipients"] = addrs(51, "b")
	_, err := (SendMail{}).Decode(vars)
	if ce, ok := err.(*connerr.Error); !ok || ce.Message != "message: at most 500 recipients (To, Cc and Bcc together) are allowed, got 501" {
		t.Errorf("%v", err)
	}
}

func TestSendMailAttachmentTooLarge(t *testing.T) {
	big := strings.Repeat("QUFB", 825_000) // 3.3 MB of base64
	small := strings.Repeat("QUFB", 200_000)
	vars := map[string]any{"operation": map[string]any{"userId": "a@b.com"},
		"message": map[string]any{"toRecipients": []any{"b@c.com"}, "attachments": []any{
			map[string]any{"name": "small.bin", "contentBytes": small},
			map[string]any{"name": "big.bin", "contentBytes": big},
		}}}
	_, err := (SendMail{}).Decode(vars)
	ce, ok := err.(*connerr.Error)
	if !ok || ce.Code != connerr.CodeInvalidInput || !strings.HasPrefix(ce.Message, `message.attachments: attachment "big.bin" (3.3 MB encoded) is too large for inline sending`) {
		t.Fatalf("%v", err)
	}
	// One alone fits.
	vars["message"].(map[string]any)["attachments"] = []any{map[string]any{"name": "big.bin", "contentBytes": big}}
	if _, err := (SendMail{}).Decode(vars); err != nil {
		t.Fatal(err)
	}
}

func TestValidAddress(t *testing.T) {
	for s, ok := range map[string]bool{
		"a@b.com":                  true,
		"first.last+tag@sub.b.org": true,
		"o'brien@x.ie":             true,
		`"quoted local"@x.com`:     true,
		"a@b":                      true,
		"":                         false,
		"a":                        false,
		"a@":                       false,
		"@b.com":                   false,
		"a b@c.com":                false,
		"<a@b.com>":                false,
		"A <a@b.com>":              false,
		"a@b.com (comment)":        false,
		"a@b.com,c@d.com":          false,
		"a@b.com\r\nBcc: x@y.com":  false,
	} {
		if ValidAddress(s) != ok {
			t.Errorf("ValidAddress(%q) = %v", s, !ok)
		}
	}
}

func TestDescribe(t *testing.T) {
	fields := Describe()
	byPath := map[string]Field{}
	for _, f := range fields {
		if _, dup := byPath[f.Path]; dup {
			t.Errorf("duplicate %s", f.Path)
		}
		byPath[f.Path] = f
	}
	if f := fields[0]; f.Path != "operation.type" || !slices.Equal(f.Values, []string{"createMailFolder", "listMailFolders", "listMessages", "sendMail"}) {
		t.Errorf("first field %+v", f)
	}
	if f := byPath["operation.userId"]; !f.Required || len(f.Operations) != 4 {
		t.Errorf("%+v", f)
	}
	if f := byPath["operation.parentFolderId"]; !slices.Equal(f.Operations, []string{"createMailFolder", "listMailFolders"}) {
		t.Errorf("%+v", f)
	}
	if f := byPath["message.saveToSentItems"]; f.Default != true || f.Type != "boolean" {
		t.Errorf("%+v", f)
	}
	for _, p := range []string{"operation.queryParameters", "operation.maxResults", "operation.folderId", "folder.displayName", "folder.isHidden",
		"message.subject", "message.bodyContentType", "message.bodyContent", "message.toRecipients", "message.ccRecipients",
		"message.bccRecipients", "message.replyTo", "message.importance", "message.attachments"} {
		if _, ok := byPath[p]; !ok {
			t.Errorf("%s missing", p)
		}
	}
	// Registry is rebuilt per call: changing one copy does not leak.
	r := Registry()
	delete(r, "sendMail")
	if _, ok := Registry()["sendMail"]; !ok {
		t.Error("registry shared")
	}
}
