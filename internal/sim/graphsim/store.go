package graphsim

import (
	"encoding/base64"
	"fmt"
	"html"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Recipient is an e-mail address with an optional display name.
type Recipient struct{ Name, Address string }

// Attachment is a file attachment.
type Attachment struct {
	Name, ContentType string
	// Size defaults to len(ContentBytes).
	Size         int
	ContentBytes []byte
}

// Message is a message as tests seed and inspect it.
type Message struct {
	ID, Subject string
	// BodyContentType is "text" (default) or "html".
	BodyContentType, BodyContent string
	From                         Recipient
	To, Cc, Bcc, ReplyTo         []Recipient
	IsRead                       bool
	// Importance is "low", "normal" (default) or "high".
	Importance       string
	ReceivedDateTime time.Time // default: now
	HasAttachments   bool      // also set when Attachments is not empty
	Attachments      []Attachment
	// FolderID is output only: the folder holding the message.
	FolderID string

	SentDateTime      time.Time // default: ReceivedDateTime
	InternetMessageID string    // default: generated
	ConversationID    string    // default: generated
	IsDraft           bool
}

// Folder is a mail folder as tests inspect it.
type Folder struct {
	ID, DisplayName, ParentFolderID string
	IsHidden                        bool
	ChildFolderCount                int
	UnreadItemCount                 int
	TotalItemCount                  int
	// WellKnownName is "inbox", "sentitems", ... for well-known folders.
	WellKnownName string
}

// wellKnownFolders are created in every mailbox, under msgfolderroot.
var wellKnownFolders = []struct{ name, display string }{
	{"archive", "Archive"},
	{"deleteditems", "Deleted Items"},
	{"drafts", "Drafts"},
	{"inbox", "Inbox"},
	{"junkemail", "Junk Email"},
	{"outbox", "Outbox"},
	{"sentitems", "Sent Items"},
}

// Mailbox is one simulated user's mailbox. Its methods are safe for
// concurrent use with the server's request handling.
type Mailbox struct {
	// UPN is the user principal name (also the primary SMTP address).
	UPN string
	// ID is the user's object id (a GUID); paths may use either.
	ID          string
	DisplayName string

	s            *Server
	restDisabled atomic.Bool
	accessDenied atomic.Bool
	inflight     atomic.Int64

	mu         sync.RWMutex
	root       *folder
	rootParent string
	folders    map[string]*folder // by id
	wellKnown  map[string]*folder // by lower-case well-known name
	msgs       map[string]*msg
	all        []*msg // every message, ordered by (receivedDateTime, seq)
}

type folder struct {
	id, displayName, wellKnown string
	parentID                   string
	parent                     *folder
	children                   []*folder // ordered by display name
	hidden                     bool
	msgs                       []*msg // ordered by (receivedDateTime, seq)
	unread                     int
	size                       int64 // sizeInBytes, kept up to date on insert
}

// msg is a stored message with its JSON pre-encoded per property, so that a
// page of messages costs a few appends rather than a reflection walk.
type msg struct {
	seq    uint64
	id     string
	folder *folder
	data   Message

	created, modified time.Time
	changeKey         string

	enc     msgEncoding
	textEnc []byte // the "body" member as text, for html bodies under Prefer text
}

// AddMailbox creates a mailbox with the well-known folders; an existing
// mailbox with that UPN (case-insensitive) is returned as is.
func (s *Server) AddMailbox(upn string) *Mailbox {
	key := lower(upn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb, ok := s.mailboxes[key]; ok {
		return mb
	}
	mb := &Mailbox{
		UPN:         upn,
		ID:          s.newGUID(),
		DisplayName: displayNameFor(upn),
		s:           s,
		folders:     map[string]*folder{},
		wellKnown:   map[string]*folder{},
		msgs:        map[string]*msg{},
	}
	mb.rootParent = s.newItemID(kindFolder)
	mb.root = &folder{id: s.newItemID(kindFolder), displayName: "Top of Information Store", wellKnown: "msgfolderroot", parentID: mb.rootParent}
	mb.folders[mb.root.id] = mb.root
	mb.wellKnown["msgfolderroot"] = mb.root
	for _, wk := range wellKnownFolders {
		f := &folder{id: s.newItemID(kindFolder), displayName: wk.display, wellKnown: wk.name}
		mb.attach(mb.root, f)
		mb.wellKnown[wk.name] = f
	}
	s.mailboxes[key] = mb
	s.mailboxes[lower(mb.ID)] = mb
	return mb
}

// Mailbox finds a mailbox by UPN (case-insensitive) or object id; nil if none.
func (s *Server) Mailbox(upnOrID string) *Mailbox {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mailboxes[lower(upnOrID)]
}

func (s *Server) mustMailbox(upn string) *Mailbox {
	mb := s.Mailbox(upn)
	if mb == nil {
		panic(fmt.Sprintf("graphsim: no mailbox %q", upn))
	}
	return mb
}

// AddMessage stores m in a folder (id or well-known name) of a mailbox and
// returns the message id. It panics on an unknown mailbox or folder: seeding
// data wrongly is a test bug. Mailbox.AddMessage returns an error instead.
func (s *Server) AddMessage(upn, folder string, m Message) string {
	id, err := s.mustMailbox(upn).AddMessage(folder, m)
	if err != nil {
		panic(err)
	}
	return id
}

// Messages returns copies of a folder's messages, newest first; folder ""
// means the whole mailbox. Unknown mailbox or folder: nil.
func (s *Server) Messages(upn, folder string) []Message {
	mb := s.Mailbox(upn)
	if mb == nil {
		return nil
	}
	out, _ := mb.Messages(folder)
	return out
}

// Folders returns every folder of a mailbox, msgfolderroot first, then
// depth-first in display-name order. Unknown mailbox: nil.
func (s *Server) Folders(upn string) []Folder {
	mb := s.Mailbox(upn)
	if mb == nil {
		return nil
	}
	return mb.Folders()
}

// SetRESTEnabled(false) makes the mailbox answer 404
// MailboxNotEnabledForRESTAPI, as Graph does for mailboxes it cannot reach
// (on-premises, unlicensed, being provisioned).
func (mb *Mailbox) SetRESTEnabled(enabled bool) { mb.restDisabled.Store(!enabled) }

// SetAccessDenied(true) makes the mailbox answer 403 ErrorAccessDenied, as
// Graph does when an application access policy excludes it.
func (mb *Mailbox) SetAccessDenied(denied bool) { mb.accessDenied.Store(denied) }

// AddMessage stores m in folder (id or well-known name) and returns its id.
func (mb *Mailbox) AddMessage(folderRef string, m Message) (string, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	f := mb.folderLocked(folderRef)
	if f == nil {
		return "", fmt.Errorf("graphsim: mailbox %s has no folder %q", mb.UPN, folderRef)
	}
	if m.ID != "" {
		if _, dup := mb.msgs[m.ID]; dup {
			return "", fmt.Errorf("graphsim: mailbox %s already has message %q", mb.UPN, m.ID)
		}
	}
	return mb.insertLocked(f, m).id, nil
}

// Messages returns copies of a folder's messages ("" = all), newest first.
func (mb *Mailbox) Messages(folderRef string) ([]Message, error) {
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	src := mb.all
	if folderRef != "" {
		f := mb.folderLocked(folderRef)
		if f == nil {
			return nil, fmt.Errorf("graphsim: mailbox %s has no folder %q", mb.UPN, folderRef)
		}
		src = f.msgs
	}
	out := make([]Message, 0, len(src))
	for i := len(src) - 1; i >= 0; i-- {
		out = append(out, src[i].export())
	}
	return out, nil
}

// Message returns a copy of one message.
func (mb *Mailbox) Message(id string) (Message, bool) {
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	m, ok := mb.msgs[id]
	if !ok {
		return Message{}, false
	}
	return m.export(), true
}

// Folders returns every folder, msgfolderroot first, then depth-first.
func (mb *Mailbox) Folders() []Folder {
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	var out []Folder
	var walk func(f *folder)
	walk = func(f *folder) {
		out = append(out, f.export())
		for _, c := range f.children {
			walk(c)
		}
	}
	walk(mb.root)
	return out
}

// FolderID resolves a folder id or well-known name to the folder id.
func (mb *Mailbox) FolderID(ref string) (string, bool) {
	mb.mu.RLock()
	defer mb.mu.RUnlock()
	f := mb.folderLocked(ref)
	if f == nil {
		return "", false
	}
	return f.id, true
}

// CreateFolder adds a folder under parent (id or well-known name; "" = the
// root, like POST /mailFolders).
func (mb *Mailbox) CreateFolder(parent, displayName string, hidden bool) (Folder, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	p := mb.root
	if parent != "" {
		if p = mb.folderLocked(parent); p == nil {
			return Folder{}, fmt.Errorf("graphsim: mailbox %s has no folder %q", mb.UPN, parent)
		}
	}
	if p.childNamed(displayName) != nil {
		return Folder{}, fmt.Errorf("graphsim: folder %q already exists", displayName)
	}
	f := &folder{id: mb.s.newItemID(kindFolder), displayName: displayName, hidden: hidden}
	mb.attach(p, f)
	return f.export(), nil
}

func (mb *Mailbox) folderLocked(ref string) *folder {
	if f, ok := mb.folders[ref]; ok {
		return f
	}
	return mb.wellKnown[lower(ref)]
}

func (mb *Mailbox) attach(parent, f *folder) {
	f.parent = parent
	f.parentID = parent.id
	key := lower(f.displayName)
	i := sort.Search(len(parent.children), func(i int) bool { return lower(parent.children[i].displayName) > key })
	parent.children = append(parent.children, nil)
	copy(parent.children[i+1:], parent.children[i:])
	parent.children[i] = f
	mb.folders[f.id] = f
}

func (f *folder) childNamed(name string) *folder {
	for _, c := range f.children {
		if strings.EqualFold(c.displayName, name) {
			return c
		}
	}
	return nil
}

func (f *folder) export() Folder {
	return Folder{
		ID:               f.id,
		DisplayName:      f.displayName,
		ParentFolderID:   f.parentID,
		IsHidden:         f.hidden,
		ChildFolderCount: len(f.children),
		UnreadItemCount:  f.unread,
		TotalItemCount:   len(f.msgs),
		WellKnownName:    f.wellKnown,
	}
}

// insertLocked normalises m, stores it in f and returns the stored message.
func (mb *Mailbox) insertLocked(f *folder, m Message) *msg {
	s := mb.s
	now := time.Now().UTC().Truncate(time.Second)
	if m.ReceivedDateTime.IsZero() {
		m.ReceivedDateTime = now
	}
	m.ReceivedDateTime = m.ReceivedDateTime.UTC()
	if m.SentDateTime.IsZero() {
		m.SentDateTime = m.ReceivedDateTime
	}
	m.SentDateTime = m.SentDateTime.UTC()
	if m.Importance == "" {
		m.Importance = "normal"
	}
	m.Importance = lower(m.Importance)
	if m.BodyContentType == "" {
		m.BodyContentType = "text"
	}
	m.BodyContentType = lower(m.BodyContentType)
	if len(m.Attachments) > 0 {
		m.HasAttachments = true
		atts := make([]Attachment, len(m.Attachments))
		for i, a := range m.Attachments {
			if a.Size == 0 {
				a.Size = len(a.ContentBytes)
			}
			if a.ContentType == "" {
				a.ContentType = "application/octet-stream"
			}
			atts[i] = a
		}
		m.Attachments = atts
	}
	seq := s.idSeq.Add(1)
	if m.ID == "" {
		m.ID = s.newItemIDSeq(kindMessage, seq)
	}
	if m.InternetMessageID == "" {
		m.InternetMessageID = fmt.Sprintf("<SIM%016X@graphsim.local>", seq)
	}
	if m.ConversationID == "" {
		m.ConversationID = s.newItemID(kindConversation)
	}
	m.To, m.Cc, m.Bcc, m.ReplyTo = cloneRecipients(m.To), cloneRecipients(m.Cc), cloneRecipients(m.Bcc), cloneRecipients(m.ReplyTo)
	created := now
	if m.ReceivedDateTime.Before(created) {
		created = m.ReceivedDateTime
	}
	x := &msg{seq: seq, id: m.ID, folder: f, data: m, created: created, modified: created}
	x.changeKey = changeKeyFor(seq, 1)
	m.FolderID = f.id
	x.data.FolderID = f.id
	x.encode()
	mb.msgs[x.id] = x
	mb.all = insertSorted(mb.all, x)
	f.msgs = insertSorted(f.msgs, x)
	if !m.IsRead {
		f.unread++
	}
	f.size += int64(len(x.enc.full))
	for _, a := range x.data.Attachments {
		f.size += int64(a.Size)
	}
	return x
}

func cloneRecipients(in []Recipient) []Recipient {
	if len(in) == 0 {
		return nil
	}
	return append([]Recipient(nil), in...)
}

func (m *msg) less(o *msg) bool {
	if !m.data.ReceivedDateTime.Equal(o.data.ReceivedDateTime) {
		return m.data.ReceivedDateTime.Before(o.data.ReceivedDateTime)
	}
	return m.seq < o.seq
}

// insertSorted keeps list ordered by (receivedDateTime, seq); new mail is
// usually the newest, so the append fast path is the common one.
func insertSorted(list []*msg, x *msg) []*msg {
	n := len(list)
	if n == 0 || !x.less(list[n-1]) {
		return append(list, x)
	}
	i := sort.Search(n, func(i int) bool { return x.less(list[i]) })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = x
	return list
}

func (m *msg) export() Message {
	out := m.data
	out.FolderID = m.folder.id
	out.To, out.Cc, out.Bcc, out.ReplyTo = cloneRecipients(out.To), cloneRecipients(out.Cc), cloneRecipients(out.Bcc), cloneRecipients(out.ReplyTo)
	if len(out.Attachments) > 0 {
		out.Attachments = append([]Attachment(nil), out.Attachments...)
	}
	return out
}

// Item ids look like Exchange's (base64url, "AAMk" prefix) so that code which
// puts them into URLs meets the same characters; the kind byte and the length
// let the server tell a malformed id (400) from an unknown one (404).
const (
	kindFolder       = 1
	kindMessage      = 2
	kindConversation = 3
	idPayloadLen     = 33
)

func (s *Server) newItemID(kind byte) string { return s.newItemIDSeq(kind, s.idSeq.Add(1)) }

func (s *Server) newItemIDSeq(kind byte, seq uint64) string {
	var b [idPayloadLen]byte
	fillPseudo(b[1:], seq*31+uint64(kind))
	b[0] = kind
	for k := 0; k < 8; k++ {
		b[idPayloadLen-1-k] = byte(seq >> (8 * k))
	}
	prefix := "AAMk"
	if kind == kindConversation {
		prefix = "AAQk"
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// wellFormedID tells whether id has the shape of an item id of kind.
func wellFormedID(id string, kind byte) bool {
	if len(id) != 4+44 || id[:4] != "AAMk" {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(id[4:])
	return err == nil && len(b) == idPayloadLen && b[0] == kind
}

func changeKeyFor(seq uint64, version int) string {
	var b [18]byte
	b[0], b[1] = 0x09, 0x00
	fillPseudo(b[2:], seq^uint64(version)<<56)
	b[17] = byte(version)
	return base64.StdEncoding.EncodeToString(b[:])
}

func displayNameFor(upn string) string {
	local, _, _ := strings.Cut(upn, "@")
	parts := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' })
	for i, p := range parts {
		r, n := utf8.DecodeRuneInString(p)
		parts[i] = strings.ToUpper(string(r)) + p[n:]
	}
	if len(parts) == 0 {
		return upn
	}
	return strings.Join(parts, " ")
}

// htmlToText is a rough rendering of an html body as text: enough for
// bodyPreview, $search and Prefer: outlook.body-content-type="text".
func htmlToText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inTag := false
	skipUntil := ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if skipUntil != "" {
			if c == '<' && hasPrefixFold(s[i:], skipUntil) {
				skipUntil = ""
				inTag = true
			}
			continue
		}
		switch {
		case inTag:
			if c == '>' {
				inTag = false
			}
		case c == '<':
			inTag = true
			rest := s[i+1:]
			switch {
			case hasPrefixFold(rest, "br"), hasPrefixFold(rest, "p"), hasPrefixFold(rest, "/p"), hasPrefixFold(rest, "div"), hasPrefixFold(rest, "/div"):
				b.WriteByte('\n')
			case hasPrefixFold(rest, "style"):
				skipUntil = "</style"
			case hasPrefixFold(rest, "script"):
				skipUntil = "</script"
			}
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(html.UnescapeString(b.String()))
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (m *Message) plainBody() string {
	if m.BodyContentType == "html" {
		return htmlToText(m.BodyContent)
	}
	return m.BodyContent
}

func bodyPreview(text string) string {
	fields := strings.Fields(text)
	var b strings.Builder
	n := 0
	for _, f := range fields {
		if n > 0 {
			b.WriteByte(' ')
			n++
		}
		for _, r := range f {
			if n >= 255 {
				return b.String()
			}
			b.WriteRune(r)
			n++
		}
		if n >= 255 {
			break
		}
	}
	return b.String()
}
