package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

func segIs(seg, name string) bool { return strings.EqualFold(seg, name) }

func methodNotAllowed() *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, code: "BadRequest", message: "Specified HTTP method is not allowed for the request target."}
}

func segmentNotFound(seg string) *apiError {
	return badRequest("BadRequest", "Resource not found for the segment '%s'.", seg)
}

func itemNotFound() *apiError {
	return &apiError{status: http.StatusNotFound, code: "ErrorItemNotFound", message: "The specified object was not found in the store."}
}

func idMalformed() *apiError {
	return badRequest("ErrorInvalidIdMalformed", "Id is malformed.")
}

// route dispatches after authentication, throttling and faults.
func (rc *reqCtx) route() {
	segs := rc.segs
	if len(segs) == 0 {
		rc.fail(badRequest("BadRequest", "Invalid request."))
		return
	}
	if segIs(segs[0], "me") {
		rc.fail(badRequest("BadRequest", "/me request is only valid with delegated authentication flow."))
		return
	}
	if !segIs(segs[0], "users") {
		rc.fail(segmentNotFound(segs[0]))
		return
	}
	if len(segs) < 2 {
		rc.fail(&apiError{status: http.StatusForbidden, code: "Authorization_RequestDenied", message: "Insufficient privileges to complete the operation."})
		return
	}
	if rc.tooLarge {
		rc.fail(&apiError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge",
			message: "The request body is too large: it exceeds the maximum permissible limit of " + strconv.FormatInt(rc.s.opts.maxRequestBytes, 10) + " bytes."})
		return
	}
	mb := rc.mb
	if mb == nil {
		rc.fail(&apiError{status: http.StatusNotFound, code: "ErrorInvalidUser", message: "The requested user '" + segs[1] + "' is invalid."})
		return
	}
	rest := segs[2:]
	if len(rest) == 0 {
		if rc.r.Method != http.MethodGet {
			rc.fail(methodNotAllowed())
			return
		}
		rc.getUser()
		return
	}
	if mb.accessDenied.Load() {
		rc.fail(&apiError{status: http.StatusForbidden, code: "ErrorAccessDenied", message: "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."})
		return
	}
	if mb.restDisabled.Load() {
		rc.fail(&apiError{status: http.StatusNotFound, code: "MailboxNotEnabledForRESTAPI", message: "The mailbox is either inactive, soft-deleted, or is hosted on-premise."})
		return
	}
	switch {
	case segIs(rest[0], "sendMail") && len(rest) == 1:
		if rc.r.Method != http.MethodPost {
			rc.fail(methodNotAllowed())
			return
		}
		rc.sendMail()
	case segIs(rest[0], "messages"):
		rc.routeMessages(nil, rest[1:], "/messages")
	case segIs(rest[0], "mailFolders"):
		rc.routeFolders(rest[1:])
	default:
		rc.fail(segmentNotFound(rest[0]))
	}
}

// routeFolders handles everything below /mailFolders.
func (rc *reqCtx) routeFolders(rest []string) {
	mb := rc.mb
	ctxPath := "/mailFolders"
	if len(rest) == 0 {
		switch rc.r.Method {
		case http.MethodGet:
			rc.listFolders(nil, ctxPath)
		case http.MethodPost:
			rc.createFolder(nil)
		default:
			rc.fail(methodNotAllowed())
		}
		return
	}
	mb.mu.RLock()
	f, e := mb.resolveFolder(rest[0])
	mb.mu.RUnlock()
	if e != nil {
		rc.fail(e)
		return
	}
	ctxPath += "('" + rest[0] + "')"
	rest = rest[1:]
	for len(rest) >= 2 && segIs(rest[0], "childFolders") {
		mb.mu.RLock()
		c, e := mb.resolveFolder(rest[1])
		mb.mu.RUnlock()
		if e != nil {
			rc.fail(e)
			return
		}
		if c.parent != f {
			rc.fail(itemNotFound())
			return
		}
		f = c
		ctxPath += "/childFolders('" + rest[1] + "')"
		rest = rest[2:]
	}
	switch {
	case len(rest) == 0:
		if rc.r.Method != http.MethodGet {
			rc.fail(methodNotAllowed())
			return
		}
		rc.getFolder(f)
	case segIs(rest[0], "childFolders") && len(rest) == 1:
		switch rc.r.Method {
		case http.MethodGet:
			rc.listFolders(f, ctxPath+"/childFolders")
		case http.MethodPost:
			rc.createFolder(f)
		default:
			rc.fail(methodNotAllowed())
		}
	case segIs(rest[0], "messages"):
		rc.routeMessages(f, rest[1:], ctxPath+"/messages")
	default:
		rc.fail(segmentNotFound(rest[0]))
	}
}

func (mb *Mailbox) resolveFolder(ref string) (*folder, *apiError) {
	if f := mb.folderLocked(ref); f != nil {
		return f, nil
	}
	if wellFormedID(ref, kindFolder) {
		return nil, itemNotFound()
	}
	return nil, idMalformed()
}

func (rc *reqCtx) routeMessages(f *folder, rest []string, ctxPath string) {
	if len(rest) == 0 {
		if rc.r.Method != http.MethodGet {
			// Creating drafts is not modelled yet.
			rc.fail(methodNotAllowed())
			return
		}
		rc.listMessages(f, ctxPath)
		return
	}
	if len(rest) > 1 {
		rc.fail(segmentNotFound(rest[1]))
		return
	}
	if rc.r.Method != http.MethodGet {
		rc.fail(methodNotAllowed())
		return
	}
	rc.getMessage(f, rest[0])
}

func (rc *reqCtx) getUser() {
	mb := rc.mb
	b := []byte(`{"@odata.context":`)
	b = appendJSONString(b, rc.base+"/$metadata#users/$entity")
	b = append(b, `,"businessPhones":[],"displayName":`...)
	b = appendJSONString(b, mb.DisplayName)
	b = append(b, `,"mail":`...)
	b = appendJSONString(b, mb.UPN)
	b = append(b, `,"userPrincipalName":`...)
	b = appendJSONString(b, mb.UPN)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, mb.ID)
	b = append(b, '}')
	rc.writeJSON(http.StatusOK, b)
}

// ---- folders

func (rc *reqCtx) listFolders(parent *folder, ctxPath string) {
	q, e := parseQuery(rc.r.URL.RawQuery, folderSchema, folderFieldIndex, folderOptions)
	if e != nil {
		rc.fail(e)
		return
	}
	mb := rc.mb
	bp := getBuf()
	defer putBuf(bp)
	mb.mu.RLock()
	if parent == nil {
		parent = mb.root
	}
	var matched []*folder
	for _, c := range parent.children {
		if c.hidden && !q.includeHidden {
			continue
		}
		if q.filter != nil && !q.filter(c) {
			continue
		}
		matched = append(matched, c)
	}
	if len(q.order) > 0 {
		sort.SliceStable(matched, func(i, j int) bool { return q.compare(matched[i], matched[j]) < 0 })
	}
	total := len(matched)
	lo, hi := pageBounds(total, q.skip, q.top)
	b := rc.beginList(*bp, ctxPath, q.selNames, q.count, total, hi < total, q.values, q.topSet, q.top, hi)
	for i, f := range matched[lo:hi] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFolder(b, f, q.sel)
	}
	mb.mu.RUnlock()
	b = append(b, "]}"...)
	*bp = b
	rc.writeJSON(http.StatusOK, b)
}

func pageBounds(total, skip, top int) (int, int) {
	lo := min(skip, total)
	hi := min(lo+top, total)
	return lo, hi
}

// beginList writes the list envelope up to the opening bracket of value.
func (rc *reqCtx) beginList(b []byte, ctxPath string, sel []string, count bool, total int, more bool, vals url.Values, topSet bool, top, nextSkip int) []byte {
	ctx := rc.contextURL(ctxPath)
	if sel != nil {
		ctx += "(" + strings.Join(sel, ",") + ")"
	}
	b = append(b, `{"@odata.context":`...)
	b = appendJSONString(b, ctx)
	if count {
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	if more {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendJSONString(b, rc.nextLink(vals, topSet, top, nextSkip))
	}
	return append(b, `,"value":[`...)
}

// nextLink repeats the request with $skip advanced, like Graph's
// ...messages?%24top=10&%24skip=10.
func (rc *reqCtx) nextLink(vals url.Values, topSet bool, top, skip int) string {
	next := url.Values{}
	for k, v := range vals {
		lk := lower(k)
		if lk == "$skip" || lk == "$top" {
			continue
		}
		next[k] = v
	}
	if topSet {
		next.Set("$top", strconv.Itoa(top))
	}
	next.Set("$skip", strconv.Itoa(skip))
	return rc.base + "/" + strings.Join(rc.rawSegs, "/") + "?" + next.Encode()
}

func (rc *reqCtx) getFolder(f *folder) {
	q, e := parseQuery(rc.r.URL.RawQuery, folderSchema, folderFieldIndex, map[string]bool{"$select": true})
	if e != nil {
		rc.fail(e)
		return
	}
	ctx := rc.contextURL("/mailFolders/$entity")
	rc.mb.mu.RLock()
	obj := appendFolder(nil, f, q.sel)
	rc.mb.mu.RUnlock()
	rc.writeJSON(http.StatusOK, entity(ctx, obj))
}

// entity puts an @odata.context in front of an encoded object's members.
func entity(ctx string, obj []byte) []byte {
	b := make([]byte, 0, len(obj)+len(ctx)+24)
	b = append(b, `{"@odata.context":`...)
	b = appendJSONString(b, ctx)
	if len(obj) > 2 {
		b = append(b, ',')
	}
	return append(b, obj[1:]...)
}

func (rc *reqCtx) createFolder(parent *folder) {
	var in struct {
		DisplayName *string `json:"displayName"`
		IsHidden    *bool   `json:"isHidden"`
	}
	if e := decodeJSON(rc.body, &in); e != nil {
		rc.fail(e)
		return
	}
	if in.DisplayName == nil || strings.TrimSpace(*in.DisplayName) == "" {
		rc.fail(badRequest("ErrorInvalidRequest", "The request is invalid: the property 'displayName' is required and cannot be empty."))
		return
	}
	mb := rc.mb
	mb.mu.Lock()
	if parent == nil {
		parent = mb.root
	}
	if parent.childNamed(*in.DisplayName) != nil {
		mb.mu.Unlock()
		rc.fail(&apiError{status: rc.s.opts.folderExistsStatus(), code: "ErrorFolderExists", message: "A folder with the specified name already exists."})
		return
	}
	f := &folder{id: rc.s.newItemID(kindFolder), displayName: *in.DisplayName, hidden: in.IsHidden != nil && *in.IsHidden}
	mb.attach(parent, f)
	obj := appendFolder(nil, f, nil)
	mb.mu.Unlock()
	rc.writeJSON(http.StatusCreated, entity(rc.contextURL("/mailFolders/$entity"), obj))
}

func decodeJSON(body []byte, v any) *apiError {
	if len(strings.TrimSpace(string(body))) == 0 {
		return badRequest("BadRequest", "Empty Payload. JSON content expected.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	return nil
}

// ---- messages

func (rc *reqCtx) listMessages(f *folder, ctxPath string) {
	q, e := parseQuery(rc.r.URL.RawQuery, messageSchema, msgFieldIndex, messageOptions)
	if e != nil {
		rc.fail(e)
		return
	}
	if q.filter != nil && len(q.order) > 0 {
		// Exchange only serves a filter with a sort when the sorted
		// properties lead the filter, in the same order.
		for i, p := range q.orderProps {
			if i >= len(q.filterProps) || q.filterProps[i] != p {
				rc.fail(badRequest("InefficientFilter", "The restriction or sort order is too complex for this operation."))
				return
			}
		}
	}
	preferText := preferTextBody(rc.r)
	if preferText {
		rc.w.Header().Set("Preference-Applied", `outlook.body-content-type="text"`)
	}
	mb := rc.mb
	bp := getBuf()
	defer putBuf(bp)

	mb.mu.RLock()
	src := mb.all
	if f != nil {
		src = f.msgs
	}
	page, total, more := messagePage(q, src)
	b := rc.beginList(*bp, ctxPath, q.selNames, q.count, total, more, q.values, q.topSet, q.top, q.skip+len(page))
	for i, m := range page {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMessage(b, m, q.sel, preferText, q.expandAtt)
	}
	mb.mu.RUnlock()
	b = append(b, "]}"...)
	*bp = b
	rc.writeJSON(http.StatusOK, b)
}

// messagePage picks the requested page from src (ordered oldest first).
// total is only exact when $count asked for it (or no filter applies).
func messagePage(q *listQuery[*msg], src []*msg) (page []*msg, total int, more bool) {
	match := func(m *msg) bool {
		if q.filter != nil && !q.filter(m) {
			return false
		}
		return !q.hasSearch || m.matches(q.search)
	}
	byReceived := q.defaultOrdered || (len(q.orderProps) == 1 && q.orderProps[0] == "receiveddatetime")
	desc := q.defaultOrdered || (byReceived && q.order[0].desc)
	n := len(src)
	at := func(i int) *msg {
		if desc {
			return src[n-1-i]
		}
		return src[i]
	}
	if byReceived && q.filter == nil && !q.hasSearch {
		lo, hi := pageBounds(n, q.skip, q.top)
		page = make([]*msg, 0, hi-lo)
		for i := lo; i < hi; i++ {
			page = append(page, at(i))
		}
		return page, n, hi < n
	}
	if byReceived {
		seen := 0
		for i := 0; i < n; i++ {
			m := at(i)
			if !match(m) {
				continue
			}
			switch {
			case seen < q.skip:
			case len(page) < q.top:
				page = append(page, m)
			default:
				more = true
			}
			seen++
			if more && !q.count {
				break
			}
		}
		return page, seen, more
	}
	var all []*msg
	for i := n - 1; i >= 0; i-- {
		if match(src[i]) {
			all = append(all, src[i])
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return q.compare(all[i], all[j]) < 0 })
	lo, hi := pageBounds(len(all), q.skip, q.top)
	return all[lo:hi], len(all), hi < len(all)
}

func preferTextBody(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "outlook.body-content-type") &&
				strings.EqualFold(strings.Trim(strings.TrimSpace(val), `"`), "text") {
				return true
			}
		}
	}
	return false
}

func (rc *reqCtx) getMessage(f *folder, id string) {
	q, e := parseQuery(rc.r.URL.RawQuery, messageSchema, msgFieldIndex, map[string]bool{"$select": true, "$expand": true})
	if e != nil {
		rc.fail(e)
		return
	}
	preferText := preferTextBody(rc.r)
	if preferText {
		rc.w.Header().Set("Preference-Applied", `outlook.body-content-type="text"`)
	}
	mb := rc.mb
	mb.mu.RLock()
	m, ok := mb.msgs[id]
	if !ok || (f != nil && m.folder != f) {
		mb.mu.RUnlock()
		if ok || wellFormedID(id, kindMessage) {
			rc.fail(itemNotFound())
		} else {
			rc.fail(idMalformed())
		}
		return
	}
	obj := appendMessage(nil, m, q.sel, preferText, q.expandAtt)
	mb.mu.RUnlock()
	rc.writeJSON(http.StatusOK, entity(rc.contextURL("/messages/$entity"), obj))
}

// ---- sendMail

type jsonRecipient struct {
	EmailAddress *struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"emailAddress"`
}

type sendMailRequest struct {
	Message *struct {
		Subject string `json:"subject"`
		Body    *struct {
			ContentType string `json:"contentType"`
			Content     string `json:"content"`
		} `json:"body"`
		From          *jsonRecipient  `json:"from"`
		ToRecipients  []jsonRecipient `json:"toRecipients"`
		CcRecipients  []jsonRecipient `json:"ccRecipients"`
		BccRecipients []jsonRecipient `json:"bccRecipients"`
		ReplyTo       []jsonRecipient `json:"replyTo"`
		Importance    string          `json:"importance"`
		Attachments   []struct {
			ODataType    string `json:"@odata.type"`
			Name         string `json:"name"`
			ContentType  string `json:"contentType"`
			ContentBytes string `json:"contentBytes"`
		} `json:"attachments"`
	} `json:"message"`
	SaveToSentItems *bool `json:"saveToSentItems"`
}

func invalidRecipient(addr string) *apiError {
	return badRequest("ErrorInvalidRecipients", "At least one recipient isn't valid., Recipient '%s' isn't resolved. All recipients must be resolved before a message can be submitted.", addr)
}

func convertRecipients(in []jsonRecipient) ([]Recipient, *apiError) {
	out := make([]Recipient, 0, len(in))
	for _, r := range in {
		if r.EmailAddress == nil {
			return nil, invalidRecipient("")
		}
		addr := strings.TrimSpace(r.EmailAddress.Address)
		if !validAddress(addr) {
			return nil, invalidRecipient(r.EmailAddress.Address)
		}
		out = append(out, Recipient{Name: r.EmailAddress.Name, Address: addr})
	}
	return out, nil
}

func validAddress(addr string) bool {
	if addr == "" {
		return false
	}
	a, err := mail.ParseAddress(addr)
	return err == nil && strings.EqualFold(a.Address, addr)
}

func (rc *reqCtx) sendMail() {
	var in sendMailRequest
	if e := decodeJSON(rc.body, &in); e != nil {
		rc.fail(e)
		return
	}
	if in.Message == nil {
		rc.fail(badRequest("ErrorInvalidParameter", "The value of the parameter 'Message' is empty."))
		return
	}
	im := in.Message
	m := Message{Subject: im.Subject, BodyContentType: "text", Importance: "normal"}
	if im.Body != nil {
		switch ct := lower(im.Body.ContentType); ct {
		case "", "text", "html":
			if ct != "" {
				m.BodyContentType = ct
			}
		default:
			rc.fail(badRequest("BadRequest", "Requested value '%s' was not found.", im.Body.ContentType))
			return
		}
		m.BodyContent = im.Body.Content
	}
	switch imp := lower(im.Importance); imp {
	case "":
	case "low", "normal", "high":
		m.Importance = imp
	default:
		rc.fail(badRequest("BadRequest", "Requested value '%s' was not found.", im.Importance))
		return
	}
	var e *apiError
	if m.To, e = convertRecipients(im.ToRecipients); e != nil {
		rc.fail(e)
		return
	}
	if m.Cc, e = convertRecipients(im.CcRecipients); e != nil {
		rc.fail(e)
		return
	}
	if m.Bcc, e = convertRecipients(im.BccRecipients); e != nil {
		rc.fail(e)
		return
	}
	if m.ReplyTo, e = convertRecipients(im.ReplyTo); e != nil {
		rc.fail(e)
		return
	}
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		rc.fail(badRequest("ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be sent because it contains no recipients."))
		return
	}
	for _, a := range im.Attachments {
		if !strings.EqualFold(a.ODataType, "#microsoft.graph.fileAttachment") {
			rc.fail(badRequest("BadRequest", "Attachment '%s': only '#microsoft.graph.fileAttachment' is supported, got '@odata.type' '%s'.", a.Name, a.ODataType))
			return
		}
		data, err := base64.StdEncoding.DecodeString(a.ContentBytes)
		if err != nil {
			rc.fail(badRequest("ErrorInvalidRequest", "Attachment '%s': the value of 'contentBytes' is not valid base64.", a.Name))
			return
		}
		m.Attachments = append(m.Attachments, Attachment{Name: a.Name, ContentType: a.ContentType, ContentBytes: data})
	}
	sender := rc.mb
	m.From = Recipient{Name: sender.DisplayName, Address: sender.UPN}
	if im.From != nil && im.From.EmailAddress != nil && im.From.EmailAddress.Address != "" {
		m.From = Recipient{Name: im.From.EmailAddress.Name, Address: im.From.EmailAddress.Address}
	}
	rc.s.deliver(sender, m, in.SaveToSentItems == nil || *in.SaveToSentItems)
	rc.s.nSent.Add(1)
	rc.write(http.StatusAccepted, "", nil)
}

// deliver files a sent message: a copy in the sender's Sent Items and one in
// the inbox of every recipient that is a simulated mailbox.
func (s *Server) deliver(sender *Mailbox, m Message, saveToSent bool) {
	now := time.Now().UTC()
	m.ReceivedDateTime, m.SentDateTime = now, now
	seq := s.idSeq.Add(1)
	m.InternetMessageID = "<SIM" + strconv.FormatUint(seq, 16) + "." + strconv.FormatInt(now.UnixNano(), 36) + "@graphsim.local>"
	m.ConversationID = s.newItemID(kindConversation)
	if saveToSent {
		sent := m
		sent.IsRead = true
		sender.mu.Lock()
		sender.insertLocked(sender.wellKnown["sentitems"], sent)
		sender.mu.Unlock()
	}
	seen := map[*Mailbox]bool{}
	for _, list := range [][]Recipient{m.To, m.Cc, m.Bcc} {
		for _, r := range list {
			mb := s.Mailbox(r.Address)
			if mb == nil || seen[mb] {
				continue
			}
			seen[mb] = true
			in := m
			in.Bcc = nil // recipients never see the Bcc list
			in.IsRead = false
			mb.mu.Lock()
			mb.insertLocked(mb.wellKnown["inbox"], in)
			mb.mu.Unlock()
		}
	}
}
