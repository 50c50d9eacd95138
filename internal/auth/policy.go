package auth

import (
	"net"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// DefaultAllowedHosts are the token endpoints of Microsoft's public and
// national clouds (contract section 6, OAUTH_ALLOWED_HOSTS).
var DefaultAllowedHosts = []string{"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"}

const endpointVar = "authentication.oauthTokenEndpoint"

// checkEndpoint is the SSRF guard: a modeler chooses the token endpoint,
// and the worker would otherwise POST client secrets to any address it can
// reach. It runs before any request.
func checkEndpoint(raw string, allowed map[string]bool) (host string, err error) {
	u, perr := url.Parse(raw)
	if perr != nil || u.Opaque != "" || u.Host == "" {
		return "", connerr.Input(endpointVar, "must be an absolute https:// URL, got %s", connerr.Quote(raw, 200))
	}
	if u.User != nil {
		// Credentials in the URL would be sent to the endpoint and show up
		// in logs; the message does not repeat them.
		return "", connerr.Input(endpointVar, "must not contain user information (user:password@)")
	}
	host = u.Hostname()
	if host == "" {
		return "", connerr.Input(endpointVar, "has no host: %s", connerr.Quote(raw, 200))
	}
	// Compare what net/http will dial: it converts a non-ASCII host with
	// IDNA, while strings.ToLower folds e.g. U+0130 to an ASCII 'i'.
	if strings.ContainsFunc(host, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return "", connerr.Input(endpointVar, "host must be ASCII (write an internationalized name in its xn-- form)")
	}
	host = strings.ToLower(host)
	loopback := IsLoopback(host)
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !loopback {
			return "", connerr.Input(endpointVar, "must use https:// (http:// is accepted only for loopback hosts), got host %q", host)
		}
	default:
		return "", connerr.Input(endpointVar, "must be an https:// URL, got scheme %q", u.Scheme)
	}
	if !loopback && !allowed[host] {
		return "", connerr.Input(endpointVar, "host %q is not an allowed token endpoint host (allowed: %s; the operator sets OAUTH_ALLOWED_HOSTS)",
			host, allowedList(allowed))
	}
	return host, nil
}

// IsLoopback reports whether host (without port) names this machine:
// localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func allowedList(allowed map[string]bool) string {
	if len(allowed) == 0 {
		return "none"
	}
	hosts := make([]string, 0, len(allowed))
	for h := range allowed {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	return strings.Join(hosts, ", ")
}
