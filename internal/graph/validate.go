package graph

import (
	"net"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// MaxUserIDLength bounds operation.userId: UPNs are at most 113 characters
// and object ids 36, so anything longer is a mistake or an attack.
const MaxUserIDLength = 256

// ValidateUserID checks operation.userId before it becomes a path segment.
// Escaping alone would keep a "/" inside the segment, but Graph (and proxies
// in front of it) may decode it again, so such ids are refused outright.
func ValidateUserID(userID string) error {
	const variable = "operation.userId"
	switch {
	case userID == "":
		return connerr.Input(variable, "expected a user principal name, e-mail address or object id, got an empty string")
	case len(userID) > MaxUserIDLength:
		return connerr.Input(variable, "expected at most %d characters, got %d", MaxUserIDLength, len(userID))
	case !utf8.ValidString(userID):
		return connerr.Input(variable, "expected valid UTF-8 text")
	}
	if userID == "." || strings.Contains(userID, "..") {
		return connerr.Input(variable, "must not be \".\" or contain \"..\", got %q", userID)
	}
	for _, r := range userID {
		switch {
		case r == '/' || r == '?' || r == '#' || r == '\\':
			return connerr.Input(variable, "must not contain %q (expected a user principal name, e-mail address or object id), got %q", r, userID)
		case isControl(r):
			return connerr.Input(variable, "must not contain control characters, got %q", userID)
		}
	}
	return nil
}

// ValidateID checks a folder or message id (or a well-known folder name)
// that becomes one path segment. Graph ids are base64url-like and may contain
// "/" in their standard-base64 form, which path escaping keeps inside the
// segment; dot segments and control characters can only be an attempt to
// step out of it. A dot segment between slashes counts too: a server or
// proxy that decodes %2F would resolve "../../other@contoso.com/..." into
// another mailbox, as ValidateUserID and nextLink checks already assume.
func ValidateID(variable, value string) error {
	switch {
	case value == "":
		return connerr.Input(variable, "expected a non-empty id, got an empty string")
	case hasDotSegment(value):
		return connerr.Input(variable, "expected an id, got %q (\".\" and \"..\" between slashes are path steps)", value)
	case len(value) > 4096:
		return connerr.Input(variable, "expected an id of at most 4096 characters, got %d", len(value))
	case !utf8.ValidString(value):
		return connerr.Input(variable, "expected valid UTF-8 text")
	}
	for _, r := range value {
		if isControl(r) {
			return connerr.Input(variable, "must not contain control characters, got %q", value)
		}
	}
	return nil
}

func hasDotSegment(value string) bool {
	for _, seg := range strings.FieldsFunc(value, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// validateBaseURL enforces the contract's rule that http is only for
// loopback hosts, and that the base carries nothing a request could inherit
// by accident (credentials, query, fragment).
func validateBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, connerr.Final(connerr.CodeInvalidInput, "GRAPH_BASE_URL: %v", err)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, connerr.Final(connerr.CodeInvalidInput, "GRAPH_BASE_URL: expected an absolute URL such as https://graph.microsoft.com/v1.0, got %q", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, connerr.Final(connerr.CodeInvalidInput, "GRAPH_BASE_URL: must not carry user info, a query or a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return nil, connerr.Final(connerr.CodeInvalidInput, "GRAPH_BASE_URL: http is only allowed for loopback hosts, got %q", u.Host)
		}
	default:
		return nil, connerr.Final(connerr.CodeInvalidInput, "GRAPH_BASE_URL: expected an https URL, got scheme %q", u.Scheme)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

// IsLoopbackHost reports whether host (without port) is localhost or a
// loopback IP address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
