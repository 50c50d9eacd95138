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

	"github.com/o365-mail-connector/o365-mail-connector/internal/jsontree"
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
	values   map[string]uint64 // value → last use (tick)
	tick     uint64
	dirty    atomic.Bool // values changed since the replacer was built
	replacer atomic.Pointer[strings.Replacer]
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
			s.values = map[string]uint64{}
		}
		s.tick++
		if _, ok := s.values[v]; !ok {
			s.dirty.Store(true)
		}
		s.values[v] = s.tick
	}
	if len(s.values) > maxValues {
		s.evictLocked()
	}
}

// evictLocked drops the least recently used tenth in one sweep, so that
// sorting is rare.
func (s *Set) evictLocked() {
	ticks := make([]uint64, 0, len(s.values))
	for _, t := range s.values {
		ticks = append(ticks, t)
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i] < ticks[j] })
	cut := ticks[len(ticks)-maxValues*9/10]
	for v, t := range s.values {
		if t < cut {
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
