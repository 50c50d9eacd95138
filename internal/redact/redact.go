// Package redact replaces secret values by "***" wherever text could leave
// the process: logs, job fail messages, error variables, BPMN errors.
//
// One Set is shared by the whole process. Every component that learns a
// secret (resolved {{secrets.X}}, client secret, refresh token, access token)
// adds it; every exit point runs its text through the Set.
package redact

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/o365-mail-connector/o365-mail-connector/internal/jsontree"
	"github.com/o365-mail-connector/o365-mail-connector/internal/odata"
)

// Mask is what a secret is replaced by.
const Mask = "***"

// MinLength is the shortest value that is redacted. Shorter values ("1",
// "yes") would mangle every message they occur in and are not credentials.
const MinLength = 4

// maxValues bounds memory and masking cost when tokens rotate for months.
// Values are refreshed whenever they are added again (every job re-adds the
// secrets it uses), so eviction drops the least recently used ones and never
// a client secret that is still in use.
const maxValues = 10_000

// Set is a concurrency-safe set of secret values. The zero value is ready.
type Set struct {
	mu       sync.Mutex
	values   map[string]entry
	tick     uint64
	dirty    atomic.Bool // values changed since the replacer was built
	replacer atomic.Pointer[strings.Replacer]
}

type entry struct {
	tick  uint64   // last use
	other []string // spellings besides the value itself (see forms)
}

// Add records secret values. Known values only have their last use
// refreshed; the replacer is rebuilt on the next masking, once per burst.
func (s *Set) Add(values ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if len(v) < MinLength {
			continue
		}
		if s.values == nil {
			s.values = map[string]entry{}
		}
		s.tick++
		e, ok := s.values[v]
		if !ok {
			e.other = otherForms(v)
			s.dirty.Store(true)
		}
		e.tick = s.tick
		s.values[v] = e
	}
	if len(s.values) > maxValues {
		s.evictLocked()
	}
}

// evictLocked drops the least recently used tenth in one sweep, so that
// sorting is rare.
func (s *Set) evictLocked() {
	ticks := make([]uint64, 0, len(s.values))
	for _, e := range s.values {
		ticks = append(ticks, e.tick)
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i] < ticks[j] })
	cut := ticks[len(ticks)-maxValues*9/10]
	for v, e := range s.values {
		if e.tick < cut {
			delete(s.values, v)
		}
	}
	s.dirty.Store(true)
}

// Contains reports whether v is a known secret value.
func (s *Set) Contains(v string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.values[v]
	return ok
}

// current returns the replacer for the values known now; without news it
// takes no lock, since every log line passes here.
func (s *Set) current() *strings.Replacer {
	if s.dirty.Load() {
		s.mu.Lock()
		if s.dirty.Load() {
			s.rebuildLocked()
			s.dirty.Store(false)
		}
		s.mu.Unlock()
	}
	return s.replacer.Load()
}

func (s *Set) rebuildLocked() {
	if len(s.values) == 0 {
		s.replacer.Store(nil)
		return
	}
	// Longest first, so that a secret containing another is masked whole.
	seen := make(map[string]bool, len(s.values))
	vals := make([]string, 0, len(s.values))
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			vals = append(vals, f)
		}
	}
	for v, e := range s.values {
		add(v)
		for _, f := range e.other {
			add(f)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Mask)
	}
	s.replacer.Store(strings.NewReplacer(pairs...))
}

// forms are the spellings of a secret that text leaving the process can
// carry: as is; escaped by %q and by JSON (input errors quote values); and
// percent-encoded as a URL path segment, a query value (with "+" or "%20"
// for a space) or as the Graph client encodes query values (package
// odata), in either hex case (Graph repeats request URLs in @odata.context
// and @odata.nextLink, and the client logs them). For the usual token and
// password characters they all coincide with the value.
func forms(v string) []string {
	q := strconv.Quote(v)
	var js strings.Builder
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	jsPlain := strings.TrimSuffix(js.String(), "\n")
	jsHTML, _ := json.Marshal(v)
	out := []string{v, q[1 : len(q)-1], jsPlain[1 : len(jsPlain)-1], string(jsHTML[1 : len(jsHTML)-1])}
	query := url.QueryEscape(v)
	for _, p := range []string{url.PathEscape(v), query, strings.ReplaceAll(query, "+", "%20"), odata.QueryValue(v)} {
		out = append(out, p, lowerHex(p))
	}
	return out
}

// otherForms are the forms that differ from v and are long enough to mask;
// nil for the usual token characters, so that most entries cost nothing.
func otherForms(v string) []string {
	var out []string
	for _, f := range forms(v)[1:] {
		if f != v && len(f) >= MinLength && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// lowerHex writes the hex digits of every %XX escape in lower case.
func lowerHex(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	b := []byte(p)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if 'A' <= b[j] && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}

// String masks every known secret in text.
func (s *Set) String(text string) string {
	if s == nil {
		return text
	}
	r := s.current()
	if r == nil {
		return text
	}
	return r.Replace(text)
}

// Value masks secrets in every string (keys included) of a JSON-like value.
// The input is not modified; parts without a secret are shared with it, so
// a large response without secrets costs a walk, not a copy.
func (s *Set) Value(v any) any {
	if s == nil || s.current() == nil {
		return v
	}
	out, _ := s.value(v)
	return out
}

func (s *Set) value(v any) (any, bool) {
	return jsontree.MapStrings(v, true, func(text string) (string, bool) {
		m := s.String(text)
		return m, m != text
	})
}
