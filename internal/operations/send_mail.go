package operations

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
)

// SendMail sends a message from the mailbox: POST .../sendMail, answered 202
// with no body (accepted, not yet delivered). It is not idempotent; the
// graph client repeats it only when Graph cannot have acted on it.
type SendMail struct{}

// MaxRecipients is Graph's limit of To, Cc and Bcc recipients together.
const MaxRecipients = 500

// MaxInlineRequestBytes bounds the sendMail request: Graph refuses requests
// of about 4 MB (413); larger attachments need an upload session, which
// this operation does not do.
const MaxInlineRequestBytes = 4_000_000

var (
	fieldSubject     = Field{Path: "message.subject", Type: "string"}
	fieldContentType = Field{Path: "message.bodyContentType", Type: "string", Values: []string{"text", "html"}, Default: "text"}
	fieldContent     = Field{Path: "message.bodyContent", Type: "string"}
	fieldTo          = Field{Path: "message.toRecipients", Type: "list", Required: true}
	fieldCc          = Field{Path: "message.ccRecipients", Type: "list"}
	fieldBcc         = Field{Path: "message.bccRecipients", Type: "list"}
	fieldReplyTo     = Field{Path: "message.replyTo", Type: "list"}
	fieldImportance  = Field{Path: "message.importance", Type: "string", Values: []string{"low", "normal", "high"}}
	fieldAttachments = Field{Path: "message.attachments", Type: "list"}
	fieldSaveToSent  = Field{Path: "message.saveToSentItems", Type: "boolean", Default: true}
)

func (SendMail) Type() string { return "sendMail" }

func (SendMail) Fields() []Field {
	return []Field{fieldUserID, fieldSubject, fieldContentType, fieldContent, fieldTo, fieldCc, fieldBcc,
		fieldReplyTo, fieldImportance, fieldAttachments, fieldSaveToSent}
}

type attachmentInfo struct {
	name string
	size int // base64 characters
}

func (SendMail) Decode(vars map[string]any) (Call, error) {
	d := &decoder{vars: vars}
	userID := decodeUserID(d)
	msg := map[string]any{}
	if s, ok := d.get(fieldSubject.Path); ok {
		var subject string
		d.fail(DecodeInto(s, fieldSubject.Path, &subject))
		msg["subject"] = subject
	}
	contentType := d.oneOf(fieldContentType.Path, fieldContentType.Values, "text")
	var content string
	if v, ok := d.get(fieldContent.Path); ok {
		d.fail(DecodeInto(v, fieldContent.Path, &content))
	}
	msg["body"] = map[string]any{"contentType": contentType, "content": content}

	total := 0
	for _, f := range []Field{fieldTo, fieldCc, fieldBcc, fieldReplyTo} {
		rs := decodeRecipients(d, f)
		if f.Path != fieldReplyTo.Path {
			total += len(rs)
		}
		if len(rs) > 0 {
			msg[strings.TrimPrefix(f.Path, "message.")] = rs
		}
	}
	if d.err == nil && total > MaxRecipients {
		d.fail(connerr.Input("message", "at most %d recipients (To, Cc and Bcc together) are allowed, got %d", MaxRecipients, total))
	}
	if imp := d.oneOf(fieldImportance.Path, fieldImportance.Values, ""); imp != "" {
		msg["importance"] = imp
	}
	atts, infos := decodeAttachments(d)
	if len(atts) > 0 {
		msg["attachments"] = atts
	}
	save := d.boolean(fieldSaveToSent.Path, true)
	if d.err != nil {
		return nil, d.err
	}
	body, err := graph.EncodeJSON(map[string]any{"message": msg, "saveToSentItems": save})
	if err != nil {
		return nil, connerr.Input("message", "cannot be encoded as JSON: %v", err)
	}
	if len(body) > MaxInlineRequestBytes {
		return nil, tooLargeError(len(body), infos)
	}
	return &sendCall{userID: userID, body: body}, nil
}

func tooLargeError(size int, infos []attachmentInfo) error {
	if len(infos) == 0 {
		return connerr.Input(fieldContent.Path, "the message is %s, larger than the %s Graph accepts in one request", mb(size), mb(MaxInlineRequestBytes))
	}
	largest := infos[0]
	for _, a := range infos[1:] {
		if a.size > largest.size {
			largest = a
		}
	}
	return connerr.Input(fieldAttachments.Path,
		"attachment %q (%s encoded) is too large for inline sending: the request would be %s, Graph accepts about %s (upload sessions for large attachments are not supported)",
		largest.name, mb(largest.size), mb(size), mb(MaxInlineRequestBytes))
}

func mb(n int) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// decodeRecipients reads a recipient list: each item an address string or
// {"address", "name"} (Graph's own {"emailAddress": {...}} is accepted too,
// so that a received message's from/toRecipients can be passed on).
func decodeRecipients(d *decoder, f Field) []any {
	v, ok := d.get(f.Path)
	if !ok {
		if f.Required {
			d.fail(connerr.Input(f.Path, "required, expected a non-empty list of e-mail addresses"))
		}
		return nil
	}
	var items []any
	switch t := v.(type) {
	case []any:
		items = t
	case string:
		// A single address where a list was expected: a common template
		// shortcut. Several addresses in one string are refused below.
		if strings.TrimSpace(t) != "" {
			items = []any{t}
		}
	default:
		d.fail(connerr.Input(f.Path, "expected a list of e-mail addresses, got %s", connerr.Describe(v)))
		return nil
	}
	if len(items) == 0 {
		if f.Required {
			d.fail(connerr.Input(f.Path, "required, expected a non-empty list of e-mail addresses, got an empty list"))
		}
		return nil
	}
	if len(items) > MaxRecipients {
		d.fail(connerr.Input(f.Path, "at most %d recipients are allowed, got %d", MaxRecipients, len(items)))
		return nil
	}
	out := make([]any, 0, len(items))
	for i, it := range items {
		where := fmt.Sprintf("item %d: ", i+1)
		var addr, name string
		switch t := it.(type) {
		case string:
			addr = t
		case map[string]any:
			if inner, ok := t["emailAddress"].(map[string]any); ok {
				t = inner
			}
			a, ok := t["address"].(string)
			if !ok {
				d.fail(connerr.Input(f.Path, "%sexpected \"address\" to be a string, got %s", where, connerr.Describe(t["address"])))
				return nil
			}
			addr = a
			if n, present := t["name"]; present && n != nil {
				s, ok := n.(string)
				if !ok {
					d.fail(connerr.Input(f.Path, "%sexpected \"name\" to be a string, got %s", where, connerr.Describe(n)))
					return nil
				}
				name = s
			}
		default:
			d.fail(connerr.Input(f.Path, "%sexpected an e-mail address or {\"address\", \"name\"}, got %s", where, connerr.Describe(it)))
			return nil
		}
		addr = strings.TrimSpace(addr)
		if !ValidAddress(addr) {
			d.fail(connerr.Input(f.Path, "%sexpected an e-mail address such as \"name@example.com\" (RFC 5322 addr-spec; put a display name into {\"address\", \"name\"}), got %q", where, addr))
			return nil
		}
		ea := map[string]any{"address": addr}
		if name != "" {
			ea["name"] = name
		}
		out = append(out, map[string]any{"emailAddress": ea})
	}
	return out
}

// ValidAddress reports whether s is a bare RFC 5322 addr-spec: no display
// name, no angle brackets, no comments, nothing around it.
func ValidAddress(s string) bool {
	if s == "" || len(s) > 320 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" {
		return false
	}
	if a.Address == s {
		return true
	}
	// net/mail unquotes a quoted local part ("john doe"@x.com); that is
	// still a bare addr-spec, while angle brackets and comments are not.
	return s[0] == '"' && !strings.ContainsAny(s, "<>()")
}

func decodeAttachments(d *decoder) ([]any, []attachmentInfo) {
	list, ok := d.list(fieldAttachments.Path)
	if !ok || len(list) == 0 {
		return nil, nil
	}
	out := make([]any, 0, len(list))
	infos := make([]attachmentInfo, 0, len(list))
	for i, it := range list {
		where := fmt.Sprintf("item %d: ", i+1)
		m, ok := it.(map[string]any)
		if !ok {
			d.fail(connerr.Input(fieldAttachments.Path, "%sexpected {\"name\", \"contentType\", \"contentBytes\"}, got %s", where, connerr.Describe(it)))
			return nil, nil
		}
		name, ok := m["name"].(string)
		if !ok || strings.TrimSpace(name) == "" {
			d.fail(connerr.Input(fieldAttachments.Path, "%sexpected \"name\" to be a non-empty string, got %s", where, connerr.Describe(m["name"])))
			return nil, nil
		}
		where = fmt.Sprintf("item %d (%q): ", i+1, name)
		ct := "application/octet-stream"
		if v, present := m["contentType"]; present && v != nil {
			s, ok := v.(string)
			if !ok {
				d.fail(connerr.Input(fieldAttachments.Path, "%sexpected \"contentType\" to be a string, got %s", where, connerr.Describe(v)))
				return nil, nil
			}
			if strings.TrimSpace(s) != "" {
				ct = s
			}
		}
		b64, ok := m["contentBytes"].(string)
		if !ok {
			d.fail(connerr.Input(fieldAttachments.Path, "%sexpected \"contentBytes\" to be a base64 string, got %s", where, connerr.Describe(m["contentBytes"])))
			return nil, nil
		}
		if len(b64) > MaxInlineRequestBytes {
			// No need to decode what cannot be sent anyway.
			d.fail(tooLargeError(len(b64), []attachmentInfo{{name: name, size: len(b64)}}))
			return nil, nil
		}
		if err := checkBase64(b64); err != nil {
			d.fail(connerr.Input(fieldAttachments.Path, "%s\"contentBytes\" is not valid base64: %v", where, err))
			return nil, nil
		}
		out = append(out, map[string]any{
			"@odata.type":  "#microsoft.graph.fileAttachment",
			"name":         name,
			"contentType":  ct,
			"contentBytes": b64,
		})
		infos = append(infos, attachmentInfo{name: name, size: len(b64)})
	}
	return out, infos
}

// checkBase64 validates standard base64 (with padding, line breaks
// allowed) without holding the decoded bytes.
func checkBase64(s string) error {
	_, err := io.Copy(io.Discard, base64.NewDecoder(base64.StdEncoding, strings.NewReader(s)))
	return err
}

type sendCall struct {
	userID string
	body   json.RawMessage
}

func (c *sendCall) UserID() string { return c.userID }

func (c *sendCall) Run(ctx context.Context, gc *graph.Client, creds graph.Credentials) (*graph.Response, error) {
	return gc.Do(ctx, creds, graph.Request{
		Method: http.MethodPost,
		UserID: c.userID,
		Path:   []string{"sendMail"},
		Body:   c.body,
		Send:   true,
	})
}
