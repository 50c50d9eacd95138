// Package secrets replaces {{secrets.NAME}} placeholders in job variables by
// values from the operator's environment or a mounted secrets directory
// (contract section 5).
//
// Substitution works on decoded variables, not on JSON text, so a value
// holding quotes or backslashes cannot break out of its string: it is
// escaped whenever the result is encoded again. The replacement is a single
// pass: placeholders inside secret values are never expanded, so a secret
// cannot pull in another one.
package secrets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"

	"github.com/o365-mail-connector/o365-mail-connector/internal/jsontree"
)

// DefaultEnvPrefix keeps modelers from reading arbitrary environment
// variables (ZEEBE_CLIENT_SECRET, ...) through a placeholder.
const DefaultEnvPrefix = "SECRET_"

// maxFileSize bounds what one secret file may hold; a larger file is a
// mistake (a directory of certificates mounted at the wrong place), not a
// credential, and must not end up in a job's variables.
const maxFileSize = 1 << 20

// A placeholder is matched like Camunda's runtime does with the pattern
// \{\{\s*secrets\.([^\s{}]*)\s*\}\}: optional blanks inside the braces,
// the name runs up to the first blank or brace. Names are checked
// afterwards (validName) so that a malformed one is reported instead of
// silently left in place. Both are scanned by hand: a regexp was a fifth of
// the pipeline's own CPU per job; the tests hold the scanners to the
// pattern.

// isSpace is RE2's \s (no \v).
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// nextPlaceholder finds the leftmost placeholder in s at or after from.
func nextPlaceholder(s string, from int) (start, end int, name string, ok bool) {
	for from < len(s) {
		i := strings.Index(s[from:], "{{")
		if i < 0 {
			break
		}
		i += from
		j := i + 2
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if strings.HasPrefix(s[j:], "secrets.") {
			j += len("secrets.")
			k := j
			for k < len(s) && !isSpace(s[k]) && s[k] != '{' && s[k] != '}' {
				k++
			}
			name := s[j:k]
			for k < len(s) && isSpace(s[k]) {
				k++
			}
			if strings.HasPrefix(s[k:], "}}") {
				return i, k + 2, name, true
			}
		}
		from = i + 1
	}
	return 0, 0, "", false
}

// validName is Camunda's secret name syntax (alphanumeric words joined by
// single '.' or '-') widened to allow leading, trailing and doubled '_' as
// environment variable names often have: ^[A-Za-z0-9_]+([.-][A-Za-z0-9_]+)*$.
// '/' is refused: it would address sub-directories of the secrets
// directory.
func validName(name string) bool {
	word := false // inside a word of [A-Za-z0-9_]
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			word = true
		case (c == '.' || c == '-') && word:
			word = false
		default:
			return false
		}
	}
	return word
}

// Config configures a Resolver. The zero value reads SECRET_* environment
// variables only.
type Config struct {
	// EnvPrefix is prepended to NAME to form the environment variable;
	// "" means DefaultEnvPrefix.
	EnvPrefix string
	// Dir holds one file per secret (a Kubernetes secret volume); "" turns
	// the file provider off.
	Dir string
	// LookupEnv defaults to os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Redactor learns every value that is substituted.
	Redactor *redact.Set
}

// Resolver substitutes secrets. It is safe for concurrent use.
type Resolver struct {
	prefix   string
	dir      string
	lookup   func(string) (string, bool)
	redactor *redact.Set
}

// New builds a Resolver.
func New(cfg Config) *Resolver {
	r := &Resolver{prefix: cfg.EnvPrefix, dir: cfg.Dir, lookup: cfg.LookupEnv, redactor: cfg.Redactor}
	if r.prefix == "" {
		r.prefix = DefaultEnvPrefix
	}
	if r.lookup == nil {
		r.lookup = os.LookupEnv
	}
	return r
}

// Substitute returns vars with every {{secrets.NAME}} inside any string, at
// any depth of maps and lists, replaced by the secret's value. Map keys and
// non-string values are kept as they are.
//
// vars is never modified. The result shares every map, list and string
// that held no placeholder with vars (copy on write), so that variables
// without secrets cost one scan and no allocation; treat both as read-only.
//
// A name that cannot be resolved yields a final SECRET_NOT_FOUND error that
// names every missing secret and the variable it was used in.
func (r *Resolver) Substitute(vars map[string]any) (map[string]any, error) {
	s := substitution{r: r}
	out, _ := s.value(vars)
	if len(s.missing) > 0 {
		return nil, s.err(vars)
	}
	if out == nil {
		return nil, nil
	}
	return out.(map[string]any), nil
}

// problem is one placeholder that could not be resolved.
type problem struct {
	name, path, reason string
}

type substitution struct {
	r       *Resolver
	cache   map[string]string
	missing map[string]string // name → reason
}

// value returns v with placeholders replaced and whether anything changed;
// unchanged values are returned as they are.
func (s *substitution) value(v any) (any, bool) {
	return jsontree.MapStrings(v, false, s.str)
}

func (s *substitution) str(in string) (string, bool) {
	start, end, name, found := nextPlaceholder(in, 0)
	if !found {
		return in, false
	}
	var b strings.Builder
	last := 0
	for found {
		val, ok := s.resolve(name)
		b.WriteString(in[last:start])
		if ok {
			b.WriteString(val)
		}
		last = end
		start, end, name, found = nextPlaceholder(in, end)
	}
	b.WriteString(in[last:])
	return b.String(), true
}

func (s *substitution) resolve(name string) (string, bool) {
	if v, ok := s.cache[name]; ok {
		return v, true
	}
	if _, ok := s.missing[name]; ok {
		return "", false
	}
	v, reason := s.r.lookupSecret(name)
	if reason != "" {
		if s.missing == nil {
			s.missing = map[string]string{}
		}
		s.missing[name] = reason
		return "", false
	}
	if s.cache == nil {
		s.cache = map[string]string{}
	}
	s.cache[name] = v
	s.r.redactor.Add(v)
	return v, true
}

// err reports the missing secrets with the variables they were used in.
// Paths are collected in a second walk so that the common, successful
// substitution does not pay for them.
func (s *substitution) err(vars map[string]any) error {
	var found []problem
	locate(vars, "", func(name, path string) {
		if reason, ok := s.missing[name]; ok {
			found = append(found, problem{name: name, path: path, reason: reason})
		}
	})
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if a.path != b.path {
			return a.path < b.path
		}
		return a.name < b.name
	})
	parts := make([]string, 0, len(found))
	seen := map[problem]bool{}
	for _, p := range found {
		if seen[p] {
			continue
		}
		seen[p] = true
		where := ""
		if p.path != "" {
			where = " (used in " + p.path + ")"
		}
		parts = append(parts, fmt.Sprintf("secret %q %s%s", p.name, p.reason, where))
	}
	e := connerr.Final(connerr.CodeSecretNotFound, "%s", strings.Join(parts, "; "))
	// Camunda's runtime reports a missing secret as a ConnectorInputException,
	// and error expressions may test error.type.
	e.Type = connerr.TypeInput
	return e
}

// locate calls fn for every placeholder name with the path of the string
// holding it, e.g. "authentication.clientSecret" or "message.toRecipients[0]".
func locate(v any, path string, fn func(name, path string)) {
	key := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	index := func(i int) string { return path + "[" + strconv.Itoa(i) + "]" }
	switch t := v.(type) {
	case string:
		for _, end, name, ok := nextPlaceholder(t, 0); ok; _, end, name, ok = nextPlaceholder(t, end) {
			fn(name, path)
		}
	case map[string]any:
		for k, e := range t {
			locate(e, key(k), fn)
		}
	case []any:
		for i, e := range t {
			locate(e, index(i), fn)
		}
	case map[string]string:
		for k, e := range t {
			locate(e, key(k), fn)
		}
	case []string:
		for i, e := range t {
			locate(e, index(i), fn)
		}
	}
}

// lookupSecret returns the value or, when there is none, why: a reason that
// names providers but never a value.
func (r *Resolver) lookupSecret(name string) (value, reason string) {
	if !validName(name) {
		return "", "is not a valid secret name (letters, digits, '_', and single '.' or '-' between them)"
	}
	if v, ok := r.lookup(r.prefix + name); ok {
		return v, ""
	}
	if r.dir == "" {
		return "", "not found: no environment variable " + r.prefix + name
	}
	v, err := readSecretFile(r.dir, name)
	switch {
	case err == nil:
		return v, ""
	case errors.Is(err, fs.ErrNotExist):
		return "", "not found: no environment variable " + r.prefix + name + " and no file of that name in the secrets directory"
	default:
		return "", "could not be read from the secrets directory: " + fileErrReason(err)
	}
}

// readSecretFile reads dir/name through os.Root, so that symlinks pointing
// out of dir are refused (Kubernetes' own ..data links stay inside).
func readSecretFile(dir, name string) (string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", errNotRegular
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFileSize {
		return "", errTooLarge
	}
	// Editors and `echo` add line ends that are not part of the secret.
	return strings.TrimRight(string(b), "\r\n"), nil
}

var (
	errNotRegular = errors.New("not a regular file")
	errTooLarge   = errors.New("larger than 1 MiB")
)

// fileErrReason describes a read failure without the path of the secrets
// directory, which is the operator's business, not the modeler's.
func fileErrReason(err error) string {
	switch {
	case errors.Is(err, errNotRegular), errors.Is(err, errTooLarge):
		return err.Error()
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	default:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err.Error()
		}
		return "unreadable"
	}
}
