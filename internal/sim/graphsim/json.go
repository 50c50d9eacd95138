package graphsim

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"
)

// msgEncoding is a message's complete JSON object with the byte range of
// every member recorded, so that a $select answer is a few slice copies.
type msgEncoding struct {
	full       []byte
	start, end [numMsgFields]int
}

// numMsgFields is len(msgFields); an array length cannot refer to the table
// itself (its encoders mention msg), so init checks that the two agree.
const numMsgFields = 30

func init() {
	if len(msgFields) != numMsgFields {
		panic("graphsim: numMsgFields is out of date")
	}
}

type msgField struct {
	name string
	// hidden members are only sent when selected (as Graph does for uniqueBody).
	hidden bool
	enc    func(b []byte, m *msg) []byte
}

// Indexes of members that need special handling.
var (
	fEtag       = msgFieldIndex["@odata.etag"]
	fBody       = msgFieldIndex["body"]
	fUniqueBody = msgFieldIndex["uniquebody"]
)

// msgFields is in the order Graph sends message members.
var msgFields = []msgField{
	{name: "@odata.etag", enc: func(b []byte, m *msg) []byte {
		return appendJSONString(b, `W/"`+m.changeKey+`"`)
	}},
	{name: "id", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, m.id) }},
	{name: "createdDateTime", enc: func(b []byte, m *msg) []byte { return appendTime(b, m.created) }},
	{name: "lastModifiedDateTime", enc: func(b []byte, m *msg) []byte { return appendTime(b, m.modified) }},
	{name: "changeKey", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, m.changeKey) }},
	{name: "categories", enc: func(b []byte, m *msg) []byte { return append(b, "[]"...) }},
	{name: "receivedDateTime", enc: func(b []byte, m *msg) []byte { return appendTime(b, m.data.ReceivedDateTime) }},
	{name: "sentDateTime", enc: func(b []byte, m *msg) []byte { return appendTime(b, m.data.SentDateTime) }},
	{name: "hasAttachments", enc: func(b []byte, m *msg) []byte { return strconv.AppendBool(b, m.data.HasAttachments) }},
	{name: "internetMessageId", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, m.data.InternetMessageID) }},
	{name: "subject", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, m.data.Subject) }},
	{name: "bodyPreview", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, bodyPreview(m.data.plainBody())) }},
	{name: "importance", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, m.data.Importance) }},
	{name: "parentFolderId", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, m.folder.id) }},
	{name: "conversationId", enc: func(b []byte, m *msg) []byte { return appendJSONString(b, m.data.ConversationID) }},
	{name: "isDeliveryReceiptRequested", enc: func(b []byte, m *msg) []byte { return append(b, "false"...) }},
	{name: "isReadReceiptRequested", enc: func(b []byte, m *msg) []byte { return append(b, "false"...) }},
	{name: "isRead", enc: func(b []byte, m *msg) []byte { return strconv.AppendBool(b, m.data.IsRead) }},
	{name: "isDraft", enc: func(b []byte, m *msg) []byte { return strconv.AppendBool(b, m.data.IsDraft) }},
	{name: "webLink", enc: func(b []byte, m *msg) []byte {
		return appendJSONString(b, "https://outlook.office365.com/owa/?ItemID="+url.QueryEscape(m.id)+"&exvsurl=1&viewmodel=ReadMessageItem")
	}},
	{name: "inferenceClassification", enc: func(b []byte, m *msg) []byte { return append(b, `"focused"`...) }},
	{name: "body", enc: func(b []byte, m *msg) []byte { return appendBody(b, m.data.BodyContentType, m.data.BodyContent) }},
	{name: "sender", enc: func(b []byte, m *msg) []byte { return appendRecipientOrNull(b, m.data.From) }},
	{name: "from", enc: func(b []byte, m *msg) []byte { return appendRecipientOrNull(b, m.data.From) }},
	{name: "toRecipients", enc: func(b []byte, m *msg) []byte { return appendRecipients(b, m.data.To) }},
	{name: "ccRecipients", enc: func(b []byte, m *msg) []byte { return appendRecipients(b, m.data.Cc) }},
	{name: "bccRecipients", enc: func(b []byte, m *msg) []byte { return appendRecipients(b, m.data.Bcc) }},
	{name: "replyTo", enc: func(b []byte, m *msg) []byte { return appendRecipients(b, m.data.ReplyTo) }},
	{name: "flag", enc: func(b []byte, m *msg) []byte { return append(b, `{"flagStatus":"notFlagged"}`...) }},
	{name: "uniqueBody", hidden: true, enc: func(b []byte, m *msg) []byte {
		return appendBody(b, m.data.BodyContentType, m.data.BodyContent)
	}},
}

// msgFieldIndex maps lower-case property names to msgFields indexes.
var msgFieldIndex = func() map[string]int {
	idx := make(map[string]int, len(msgFields))
	for i, f := range msgFields {
		idx[lower(f.name)] = i
	}
	return idx
}()

func (m *msg) encode() {
	b := make([]byte, 0, 1024+len(m.data.BodyContent)*11/10)
	b = append(b, '{')
	first := true
	for i, f := range msgFields {
		if f.hidden {
			m.enc.start[i], m.enc.end[i] = -1, -1
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		m.enc.start[i] = len(b)
		b = appendJSONString(b, f.name)
		b = append(b, ':')
		b = f.enc(b, m)
		m.enc.end[i] = len(b)
	}
	b = append(b, '}')
	m.enc.full = b
	m.textEnc = nil
	if m.data.BodyContentType == "html" {
		t := appendJSONString(nil, "body")
		t = append(t, ':')
		m.textEnc = appendBody(t, "text", htmlToText(m.data.BodyContent))
	}
}

// appendMessage writes m as selected (nil sel = Graph's default members).
func appendMessage(b []byte, m *msg, sel []int, preferText bool, expandAtt bool) []byte {
	if sel == nil && !expandAtt && (!preferText || m.textEnc == nil) {
		return append(b, m.enc.full...)
	}
	b = append(b, '{')
	first := true
	put := func(i int) {
		if !first {
			b = append(b, ',')
		}
		first = false
		if (i == fBody || i == fUniqueBody) && preferText && m.textEnc != nil {
			if i == fBody {
				b = append(b, m.textEnc...)
				return
			}
			b = appendJSONString(b, "uniqueBody")
			b = append(b, ':')
			b = appendBody(b, "text", htmlToText(m.data.BodyContent))
			return
		}
		if m.enc.start[i] >= 0 {
			b = append(b, m.enc.full[m.enc.start[i]:m.enc.end[i]]...)
			return
		}
		b = appendJSONString(b, msgFields[i].name)
		b = append(b, ':')
		b = msgFields[i].enc(b, m)
	}
	if sel == nil {
		for i, f := range msgFields {
			if !f.hidden {
				put(i)
			}
		}
	} else {
		for _, i := range sel {
			put(i)
		}
	}
	if expandAtt {
		if !first {
			b = append(b, ',')
		}
		b = append(b, `"attachments":`...)
		b = appendAttachments(b, m)
	}
	return append(b, '}')
}

func appendAttachments(b []byte, m *msg) []byte {
	b = append(b, '[')
	for i, a := range m.data.Attachments {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"@odata.type":"#microsoft.graph.fileAttachment","@odata.mediaContentType":`...)
		b = appendJSONString(b, a.ContentType)
		b = append(b, `,"id":`...)
		b = appendJSONString(b, attachmentID(m.id, i))
		b = append(b, `,"lastModifiedDateTime":`...)
		b = appendTime(b, m.modified)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, a.Name)
		b = append(b, `,"contentType":`...)
		b = appendJSONString(b, a.ContentType)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, int64(a.Size), 10)
		b = append(b, `,"isInline":false,"contentId":null,"contentLocation":null,"contentBytes":"`...)
		b = base64.StdEncoding.AppendEncode(b, a.ContentBytes)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

func attachmentID(msgID string, i int) string {
	return msgID + "BEgAQA" + base64.RawURLEncoding.EncodeToString([]byte{byte(i >> 8), byte(i)})
}

func appendBody(b []byte, contentType, content string) []byte {
	b = append(b, `{"contentType":`...)
	b = appendJSONString(b, contentType)
	b = append(b, `,"content":`...)
	b = appendJSONString(b, content)
	return append(b, '}')
}

func appendRecipientOrNull(b []byte, r Recipient) []byte {
	if r.Address == "" && r.Name == "" {
		return append(b, "null"...)
	}
	return appendRecipient(b, r)
}

func appendRecipient(b []byte, r Recipient) []byte {
	name := r.Name
	if name == "" {
		name = r.Address
	}
	b = append(b, `{"emailAddress":{"name":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"address":`...)
	b = appendJSONString(b, r.Address)
	return append(b, "}}"...)
}

func appendRecipients(b []byte, rs []Recipient) []byte {
	b = append(b, '[')
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecipient(b, r)
	}
	return append(b, ']')
}

// folder members in Graph's order.
var folderFields = [...]string{"id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount", "totalItemCount", "sizeInBytes", "isHidden"}

var folderFieldIndex = func() map[string]int {
	idx := make(map[string]int, len(folderFields))
	for i, f := range folderFields {
		idx[lower(f)] = i
	}
	return idx
}()

func appendFolder(b []byte, f *folder, sel []int) []byte {
	b = append(b, '{')
	put := func(i int, first bool) {
		if !first {
			b = append(b, ',')
		}
		b = appendJSONString(b, folderFields[i])
		b = append(b, ':')
		switch i {
		case 0:
			b = appendJSONString(b, f.id)
		case 1:
			b = appendJSONString(b, f.displayName)
		case 2:
			b = appendJSONString(b, f.parentID)
		case 3:
			b = strconv.AppendInt(b, int64(len(f.children)), 10)
		case 4:
			b = strconv.AppendInt(b, int64(f.unread), 10)
		case 5:
			b = strconv.AppendInt(b, int64(len(f.msgs)), 10)
		case 6:
			b = strconv.AppendInt(b, f.size, 10)
		case 7:
			b = strconv.AppendBool(b, f.hidden)
		}
	}
	if sel == nil {
		for i := range folderFields {
			put(i, i == 0)
		}
	} else {
		for k, i := range sel {
			put(i, k == 0)
		}
	}
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s for JSON. Unlike encoding/json it leaves <, > and
// & alone, as Graph does; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
