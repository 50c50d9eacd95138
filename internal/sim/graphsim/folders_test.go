package graphsim

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

func names(vs []map[string]any, key string) []string {
	var out []string
	for _, v := range vs {
		s, _ := v[key].(string)
		out = append(out, s)
	}
	return out
}

func TestListFoldersShowsWellKnownFoldersUnderRoot(t *testing.T) {
	s := newServer(t)
	mb := s.AddMailbox("Alice@Contoso.com")
	r := call(t, s, "GET", "/users/alice@contoso.com/mailFolders", nil)
	wantStatus(t, r, 200, "")
	got := names(r.values(), "displayName")
	want := []string{"Archive", "Deleted Items", "Drafts", "Inbox", "Junk Email", "Outbox", "Sent Items"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("folders %v, want %v", got, want)
	}
	rootID, _ := mb.FolderID("msgfolderroot")
	for _, f := range r.values() {
		if f["parentFolderId"] != rootID {
			t.Fatalf("folder %v not under the root %s", f, rootID)
		}
		for _, k := range []string{"id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount", "totalItemCount", "sizeInBytes", "isHidden"} {
			if _, ok := f[k]; !ok {
				t.Fatalf("folder lacks %s: %v", k, f)
			}
		}
	}
	if ctx := r.body["@odata.context"]; ctx != s.URL()+"/$metadata#users('alice%40contoso.com')/mailFolders" {
		t.Fatalf("context %v", ctx)
	}
	if r.body["@odata.nextLink"] != nil {
		t.Fatalf("7 folders fit one page: %v", r.body["@odata.nextLink"])
	}
	// Every well-known name is addressable, case-insensitively.
	for _, wk := range []string{"inbox", "Drafts", "SENTITEMS", "deleteditems", "archive", "junkemail", "outbox", "msgfolderroot"} {
		g := call(t, s, "GET", "/users/alice@contoso.com/mailFolders/"+wk, nil)
		wantStatus(t, g, 200, "")
		id, _ := mb.FolderID(wk)
		if g.body["id"] != id || id == "" {
			t.Fatalf("%s: id %v, want %s", wk, g.body["id"], id)
		}
	}
	if len(s.Folders("alice@contoso.com")) != 8 {
		t.Fatalf("Folders: %v", s.Folders("alice@contoso.com"))
	}
}

func TestFolderPagingAndQueryOptions(t *testing.T) {
	s := newServer(t)
	s.AddMailbox("a@x.test")
	r := call(t, s, "GET", "/users/a@x.test/mailFolders?$top=3", nil)
	wantStatus(t, r, 200, "")
	var all []string
	all = append(all, names(r.values(), "displayName")...)
	pages := 1
	for r.body["@odata.nextLink"] != nil {
		next := r.body["@odata.nextLink"].(string)
		if !strings.Contains(next, "%24top=3") || !strings.Contains(next, "%24skip=") {
			t.Fatalf("nextLink %s", next)
		}
		r = call(t, s, "GET", next, nil)
		wantStatus(t, r, 200, "")
		all = append(all, names(r.values(), "displayName")...)
		pages++
	}
	if pages != 3 || len(all) != 7 {
		t.Fatalf("%d pages, folders %v", pages, all)
	}

	r = call(t, s, "GET", "/users/a@x.test/mailFolders?$filter="+url.QueryEscape("displayName eq 'inbox'")+"&$select=displayName", nil)
	wantStatus(t, r, 200, "")
	if v := r.values(); len(v) != 1 || v[0]["displayName"] != "Inbox" || len(v[0]) != 2 {
		t.Fatalf("filtered folders %v", v)
	}
	r = call(t, s, "GET", "/users/a@x.test/mailFolders?$orderby="+url.QueryEscape("displayName desc")+"&$count=true", nil)
	if got := names(r.values(), "displayName"); got[0] != "Sent Items" || r.body["@odata.count"] != float64(7) {
		t.Fatalf("ordered %v count %v", got, r.body["@odata.count"])
	}
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders?$select=isRead", nil), 400, "BadRequest")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders?$search=inbox", nil), 400, "ErrorInvalidUrlQuery")
}

func TestCreateFolderAndChildFolders(t *testing.T) {
	s := newServer(t)
	mb := s.AddMailbox("a@x.test")
	r := call(t, s, "POST", "/users/a@x.test/mailFolders", map[string]any{"displayName": "Projects"})
	wantStatus(t, r, 201, "")
	pid, _ := r.body["id"].(string)
	root, _ := mb.FolderID("msgfolderroot")
	if r.body["displayName"] != "Projects" || r.body["parentFolderId"] != root || r.body["isHidden"] != false || pid == "" {
		t.Fatalf("created %v", r.body)
	}
	if !strings.HasSuffix(r.body["@odata.context"].(string), "/mailFolders/$entity") {
		t.Fatalf("context %v", r.body["@odata.context"])
	}

	// Same name among siblings, any case: ErrorFolderExists.
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/mailFolders", map[string]any{"displayName": "projects"}), 409, "ErrorFolderExists")
	// Missing name and malformed JSON.
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/mailFolders", map[string]any{"isHidden": true}), 400, "ErrorInvalidRequest")
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/mailFolders", "{not json"), 400, "BadRequest")

	// A child of the new folder, and a hidden one.
	r = call(t, s, "POST", "/users/a@x.test/mailFolders/"+pid+"/childFolders", map[string]any{"displayName": "2024"})
	wantStatus(t, r, 201, "")
	cid := r.body["id"].(string)
	if r.body["parentFolderId"] != pid {
		t.Fatalf("child %v", r.body)
	}
	// The same name is fine under another parent.
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/mailFolders/inbox/childFolders", map[string]any{"displayName": "2024"}), 201, "")
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/mailFolders/"+pid+"/childFolders", map[string]any{"displayName": "Secret", "isHidden": true}), 201, "")

	r = call(t, s, "GET", "/users/a@x.test/mailFolders/"+pid+"/childFolders", nil)
	if got := names(r.values(), "displayName"); len(got) != 1 || got[0] != "2024" {
		t.Fatalf("visible children %v", got)
	}
	r = call(t, s, "GET", "/users/a@x.test/mailFolders/"+pid+"/childFolders?includeHiddenFolders=true", nil)
	if got := names(r.values(), "displayName"); len(got) != 2 {
		t.Fatalf("all children %v", got)
	}
	r = call(t, s, "GET", "/users/a@x.test/mailFolders/"+pid, nil)
	if r.body["childFolderCount"] != float64(2) {
		t.Fatalf("parent %v", r.body)
	}
	// Nested addressing: /mailFolders/{p}/childFolders/{c}.
	r = call(t, s, "GET", "/users/a@x.test/mailFolders/"+pid+"/childFolders/"+cid, nil)
	if r.body["id"] != cid {
		t.Fatalf("nested get %v", r.body)
	}
	var got []string
	for _, f := range s.Folders("a@x.test") {
		got = append(got, f.DisplayName)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "2024,2024,Archive,Deleted Items,Drafts,Inbox,Junk Email,Outbox,Projects,Secret,Sent Items,Top of Information Store" {
		t.Fatalf("Folders %v", got)
	}

	s2 := newServer(t, WithFolderExistsStatus(http.StatusBadRequest))
	s2.AddMailbox("a@x.test")
	wantStatus(t, call(t, s2, "POST", "/users/a@x.test/mailFolders", map[string]any{"displayName": "Inbox"}), 400, "ErrorFolderExists")
}

func TestFolderIDErrors(t *testing.T) {
	s := newServer(t)
	mb := s.AddMailbox("a@x.test")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders/not-an-id/messages", nil), 400, "ErrorInvalidIdMalformed")
	// A well-formed id of a folder that does not exist (another mailbox's).
	other := s.AddMailbox("b@x.test")
	oid, _ := other.FolderID("inbox")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders/"+oid+"/messages", nil), 404, "ErrorItemNotFound")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders/"+oid+"/childFolders", nil), 404, "ErrorItemNotFound")
	wantStatus(t, call(t, s, "POST", "/users/a@x.test/mailFolders/"+oid+"/childFolders", map[string]any{"displayName": "x"}), 404, "ErrorItemNotFound")
	// A child addressed under the wrong parent.
	iid, _ := mb.FolderID("inbox")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/mailFolders/drafts/childFolders/"+iid, nil), 404, "ErrorItemNotFound")
	wantStatus(t, call(t, s, "DELETE", "/users/a@x.test/mailFolders", nil), 405, "BadRequest")
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/calendars", nil), 400, "BadRequest")
}

func TestFolderCountsFollowMessages(t *testing.T) {
	s := newServer(t)
	mb := s.AddMailbox("a@x.test")
	seed(s, "a@x.test", 20)
	r := call(t, s, "GET", "/users/a@x.test/mailFolders/inbox", nil)
	if r.body["totalItemCount"] != float64(20) || r.body["unreadItemCount"] != float64(10) || r.body["sizeInBytes"].(float64) <= 0 {
		t.Fatalf("inbox %v", r.body)
	}
	if _, err := mb.AddMessage("nope", Message{}); err == nil {
		t.Fatal("AddMessage into an unknown folder")
	}
	if _, err := mb.CreateFolder("", "inbox", false); err == nil {
		t.Fatal("duplicate CreateFolder")
	}
	f, err := mb.CreateFolder("inbox", "Sub", true)
	if err != nil || !f.IsHidden || f.ParentFolderID == "" {
		t.Fatalf("CreateFolder %+v %v", f, err)
	}
	id, err := mb.AddMessage(f.ID, Message{ID: "custom-id", Subject: "custom"})
	if err != nil || id != "custom-id" {
		t.Fatalf("custom id %q %v", id, err)
	}
	if m, ok := mb.Message("custom-id"); !ok || m.FolderID != f.ID {
		t.Fatalf("Message %+v", m)
	}
	wantStatus(t, call(t, s, "GET", "/users/a@x.test/messages/custom-id", nil), 200, "")
	defer func() {
		if recover() == nil {
			t.Fatal("Server.AddMessage to an unknown mailbox did not panic")
		}
	}()
	s.AddMessage("ghost@x.test", "inbox", Message{})
}
