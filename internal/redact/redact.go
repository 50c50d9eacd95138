// Package redact replaces secret values by "***" wherever text could leave
// the process: logs, job fail messages, error variables, BPMN errors.
//
// One Set is shared by the whole process. Every component that learns a
// secret (resolved {{secrets.X}}, client secret, refresh token, access token)
// adds it; every exit point runs its text through the Set.
package redact

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Mask is what a secret is replaced by.
const Mask = "***"

// MinLength is the shortest value that is redacted. Shorter values ("1",
// "yes") would mangle every message they occur in and are not credentials.
const MinLength = 4

// maxValues bounds memory when tokens rotate for months; the oldest go first.
const maxValues = 50_000

// Set is a concurrency-safe set of secret values. The zero value is ready.
type Set struct {
	mu       sync.Mutex
	values   map[string]struct{}
	order    []string
	replacer atomic.Pointer[strings.Replacer]
}

// Add records secret values. Cheap when the values are known already.
func (s *Set) Add(values ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range values {
		if len(v) < MinLength {
			continue
		}
		if _, ok := s.values[v]; ok {
			continue
		}
		if s.values == nil {
			s.values = map[string]struct{}{}
		}
		s.values[v] = struct{}{}
		s.order = append(s.order, v)
		changed = true
	}
	for len(s.order) > maxValues {
		delete(s.values, s.order[0])
		s.order = s.order[1:]
		changed = true
	}
	if changed {
		s.rebuild()
	}
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

func (s *Set) rebuild() {
	// Longest first, so that a secret containing another is masked whole.
	vals := make([]string, 0, len(s.values))
	for v := range s.values {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Mask)
	}
	s.replacer.Store(strings.NewReplacer(pairs...))
}

// String masks every known secret in text.
func (s *Set) String(text string) string {
	if s == nil {
		return text
	}
	r := s.replacer.Load()
	if r == nil {
		return text
	}
	return r.Replace(text)
}

// Value masks secrets in every string (keys included) of a JSON-like value
// and returns a copy; the input is not modified.
func (s *Set) Value(v any) any {
	if s == nil || s.replacer.Load() == nil {
		return v
	}
	switch t := v.(type) {
	case string:
		return s.String(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[s.String(k)] = s.Value(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = s.Value(e)
		}
		return out
	default:
		return v
	}
}
