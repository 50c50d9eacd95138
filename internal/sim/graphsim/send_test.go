package graphsim

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSendMailDelivers(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("alice@x.test")
	s.AddMailbox("bob@x.test")
	s.AddMailbox("carol@x.test")
	s.AddMailbox("dave@x.test")
	body := map[string]any{
		"message": map[string]any{
			"subject":       "Report",
			"body":          map[string]any{"contentType": "HTML", "content": "<p>See attached</p>"},
			"toRecipients":  []any{map[string]any{"emailAddress": map[string]any{"address": "BOB@x.test", "name": "Bob"}}, map[string]any{"emailAddress": map[string]any{"address": "out@ext.test"}}},
			"ccRecipients":  []any{map[string]any{"emailAddress": map[string]any{"address": "carol@x.test"}}},
			"bccRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "dave@x.test"}}},
			"replyTo":       []any{map[string]any{"emailAddress": map[string]any{"address": "desk@x.test"}}},
			"importance":    "High",
			"attachments": []any{map[string]any{
				"@odata.type": "#microsoft.graph.fileAttachment", "name": "r.csv", "contentType": "text/csv",
				"contentBytes": base64.StdEncoding.EncodeToString([]byte("a,b\n1,2\n")),
			}},
		},
	}
	r := call(t, s, "POST", "/users/alice@x.test/sendMail", body)
	if r.status != 202 || len(r.raw) != 0 {
		t.Fatalf("sendMail: %d %s", r.status, r.raw)
	}
	sent := s.Messages("alice@x.test", "sentitems")
	if len(sent) != 1 {
		t.Fatalf("sent items %v", sent)
	}
	m := sent[0]
	if m.Subject != "Report" || m.BodyContentType != "html" || m.Importance != "high" || !m.IsRead || len(m.Bcc) != 1 ||
		m.From.Address != "alice@x.test" || !m.HasAttachments || string(m.Attachments[0].ContentBytes) != "a,b\n1,2\n" || len(m.ReplyTo) != 1 {
		t.Fatalf("sent copy %+v", m)
	}
	for _, upn := range []string{"bob@x.test", "carol@x.test", "dave@x.test"} {
		in := s.Messages(upn, "inbox")
		if len(in) != 1 {
			t.Fatalf("%s inbox %v", upn, in)
		}
		if in[0].IsRead || len(in[0].Bcc) != 0 || in[0].Subject != "Report" || in[0].InternetMessageID != m.InternetMessageID || in[0].ID == m.ID {
			t.Fatalf("%s copy %+v", upn, in[0])
		}
	}
	if n := len(s.Messages("alice@x.test", "inbox")); n != 0 {
		t.Fatalf("sender inbox has %d", n)
	}
	// The recipient sees it through the API as unread with the attachment flag.
	g := call(t, s, "GET", "/users/bob@x.test/mailFolders/inbox/messages?$filter="+"isRead%20eq%20false", nil)
	if v := g.values(); len(v) != 1 || v[0]["hasAttachments"] != true || v[0]["bccRecipients"].([]any) == nil || len(v[0]["bccRecipients"].([]any)) != 0 {
		t.Fatalf("bob sees %v", g.values())
	}
	if st := s.Stats(); st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSendMailSaveToSentItemsFalseAndSelf(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("alice@x.test")
	b := sendMailBody("alice@x.test")
	b["saveToSentItems"] = false
	wantStatus(t, call(t, s, "POST", "/users/alice@x.test/sendMail", b), 202, "")
	if n := len(s.Messages("alice@x.test", "sentitems")); n != 0 {
		t.Fatalf("saved %d copies", n)
	}
	if n := len(s.Messages("alice@x.test", "inbox")); n != 1 {
		t.Fatalf("self-addressed mail: %d in inbox", n)
	}
	// Addressed by object id.
	id := s.Mailbox("alice@x.test").ID
	wantStatus(t, call(t, s, "POST", "/users/"+id+"/sendMail", sendMailBody("x@ext.test")), 202, "")
	if n := len(s.Messages("alice@x.test", "sentitems")); n != 1 {
		t.Fatalf("sent by id: %d", n)
	}
}

func TestSendMailErrors(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("alice@x.test")
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"invalid address", sendMailBody("not an address"), 400, "ErrorInvalidRecipients"},
		{"display name instead of address", sendMailBody("Bob <bob@x.test>"), 400, "ErrorInvalidRecipients"},
		{"no recipients", map[string]any{"message": map[string]any{"subject": "x"}}, 400, "ErrorInvalidRecipients"},
		{"recipient without emailAddress", map[string]any{"message": map[string]any{"toRecipients": []any{map[string]any{}}}}, 400, "ErrorInvalidRecipients"},
		{"no message", map[string]any{"saveToSentItems": true}, 400, "ErrorInvalidParameter"},
		{"malformed json", `{"message":`, 400, "BadRequest"},
		{"empty body", "", 400, "BadRequest"},
		{"bad content type", map[string]any{"message": map[string]any{"body": map[string]any{"contentType": "rtf"}, "toRecipients": sendMailBody("a@b.test")["message"].(map[string]any)["toRecipients"]}}, 400, "BadRequest"},
		{"bad importance", map[string]any{"message": map[string]any{"importance": "urgent", "toRecipients": sendMailBody("a@b.test")["message"].(map[string]any)["toRecipients"]}}, 400, "BadRequest"},
		{"bad base64", map[string]any{"message": map[string]any{"toRecipients": sendMailBody("a@b.test")["message"].(map[string]any)["toRecipients"],
			"attachments": []any{map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "x", "contentBytes": "%%%"}}}}, 400, "ErrorInvalidRequest"},
		{"item attachment", map[string]any{"message": map[string]any{"toRecipients": sendMailBody("a@b.test")["message"].(map[string]any)["toRecipients"],
			"attachments": []any{map[string]any{"@odata.type": "#microsoft.graph.itemAttachment", "name": "x"}}}}, 400, "BadRequest"},
	}
	for _, c := range cases {
		r := call(t, s, "POST", "/users/alice@x.test/sendMail", c.body)
		if r.status != c.status || r.errCode() != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.raw, c.status, c.code)
		}
	}
	if n := len(s.Messages("alice@x.test", "sentitems")); n != 0 {
		t.Fatalf("a refused send was saved: %d", n)
	}
	wantStatus(t, call(t, s, "GET", "/users/alice@x.test/sendMail", nil), 405, "BadRequest")
}

func TestSendMailTooLarge(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("alice@x.test")
	big := base64.StdEncoding.EncodeToString(make([]byte, 3<<20+100)) // > 4 MB once base64-encoded
	b := sendMailBody("bob@ext.test")
	b["message"].(map[string]any)["attachments"] = []any{map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "big.bin", "contentBytes": big}}
	r := call(t, s, "POST", "/users/alice@x.test/sendMail", b)
	wantStatus(t, r, 413, "RequestEntityTooLarge")
	if n := len(s.Messages("alice@x.test", "sentitems")); n != 0 {
		t.Fatalf("oversized send saved")
	}
	// Just under the limit is accepted.
	s2 := newServer(t, WithMaxRequestBytes(1000))
	s2.AddMailbox("alice@x.test")
	wantStatus(t, call(t, s2, "POST", "/users/alice@x.test/sendMail", sendMailBody("bob@ext.test")), 202, "")
	b["message"].(map[string]any)["attachments"] = []any{map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": "x", "contentBytes": strings.Repeat("A", 1000)}}
	wantStatus(t, call(t, s2, "POST", "/users/alice@x.test/sendMail", b), 413, "RequestEntityTooLarge")
}

func TestAuthentication(t *testing.T) {
	s := newServer(t, WithTokenCheck(func(tok string) error {
		switch tok {
		case "expired":
			return ErrTokenExpired
		case "garbage":
			return ErrTokenInvalid
		case "weird":
			return errors.New("other")
		}
		return nil
	}))
	s.AddMailbox("a@x.test")
	r := call(t, s, "GET", "/users/a@x.test/messages", nil, "Authorization", "")
	wantStatus(t, r, 401, "InvalidAuthenticationToken")
	if !strings.Contains(string(r.raw), "Access token is empty.") || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("missing token: %s %v", r.raw, r.header)
	}
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages", nil, "Authorization", "Basic abc"), 401, "InvalidAuthenticationToken")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages", nil, "Authorization", "Bearer "), 401, "InvalidAuthenticationToken")
	r = call(t, s, "GET", "/users/a@x.test/messages", nil, "Authorization", "Bearer expired")
	wantStatus(t, r, 401, "InvalidAuthenticationToken")
	if !strings.Contains(string(r.raw), "Access token has expired or is not yet valid.") {
		t.Fatalf("expired: %s", r.raw)
	}
	for _, tok := range []string{"garbage", "weird"} {
		r = call(t, s, "GET", "/users/a@x.test/messages", nil, "Authorization", "Bearer "+tok)
		wantStatus(t, r, 401, "InvalidAuthenticationToken")
		if strings.Contains(string(r.raw), "expired") {
			t.Fatalf("%s: %s", tok, r.raw)
		}
	}
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages", nil, "Authorization", "bearer good"), 200, "")
	// A refused request never reaches the mailbox.
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/sendMail", sendMailBody("a@x.test"), "Authorization", "Bearer expired"), 401, "InvalidAuthenticationToken")
	if len(s.Messages("a@x.test", "")) != 0 {
		t.Fatal("unauthenticated send delivered")
	}
	// Default: any non-empty bearer token.
	s2 := newServer(t)
	s2.AddMailbox("a@x.test")
	wantStatus(t, call(t, s2, "GET", "/users/a@x.test/messages", nil, "Authorization", "Bearer whatever"), 200, "")
}

func TestMailboxAddressing(t *testing.T) {
	s := newServer(t)
	mb := s.AddMailbox("Alice.Smith@X.test")
	if s.AddMailbox("alice.smith@x.test") != mb || s.Mailbox(strings.ToUpper(mb.ID)) != mb || mb.DisplayName != "Alice Smith" {
		t.Fatalf("mailbox lookup")
	}
	wantStatus(t, call(t, s, "GET", "/users/ALICE.SMITH@x.test/messages", nil), 200, "")
	wantStatus(t, call(t, s, "GET", "/users/alice.smith%40x.test/messages", nil), 200, "")
	wantStatus(t, call(t, s, "GET", "/users/"+mb.ID+"/mailFolders", nil), 200, "")
	u := call(t, s, "GET", "/users/"+mb.ID, nil)
	if u.body["userPrincipalName"] != "Alice.Smith@X.test" || u.body["id"] != mb.ID {
		t.Fatalf("user %v", u.body)
	}
	r := call(t, s, "GET", "/users/nobody@x.test/messages", nil)
	wantStatus(t, r, 404, "ErrorInvalidUser")
	wantStatus(t, call(t, s, "POST", "/users/nobody@x.test/sendMail", sendMailBody("a@b.test")), 404, "ErrorInvalidUser")
	wantStatus(t, call(t, s, "GET", "/me/messages", nil), 400, "BadRequest")
	mb.SetRESTEnabled(false)
	wantStatus(t, call(t, s, "GET", "/users/alice.smith@x.test/mailFolders", nil), 404, "MailboxNotEnabledForRESTAPI")
	mb.SetRESTEnabled(true)
	mb.SetAccessDenied(true)
	wantStatus(t, call(t, s, "POST", "/users/alice.smith@x.test/sendMail", sendMailBody("a@b.test")), 403, "ErrorAccessDenied")
	mb.SetAccessDenied(false)
	wantStatus(t, call(t, s, "GET", "/users/alice.smith@x.test/mailFolders", nil), 200, "")
	// The envelope carries innerError.
	inner, _ := r.body["error"].(map[string]any)["innerError"].(map[string]any)
	if inner["request-id"] != r.header.Get("request-id") || inner["client-request-id"] == nil || inner["date"] == nil {
		t.Fatalf("innerError %v", inner)
	}
}
