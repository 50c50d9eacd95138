// Package operations holds the connector's operations: for each one, the job
// variables it reads, their validation, and the Graph calls it makes. An
// operation never retries, waits or maps results: the graph client retries
// within a call, the runtime decides about the job.
package operations

import (
	"context"
	"slices"
	"strings"

	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
)

// Field describes one job variable an operation reads; the element template
// and its drift test are checked against these.
type Field struct {
	// Path is the variable as the template's input mapping names it, e.g.
	// "operation.userId".
	Path string
	// Type is string, boolean, integer, list or context.
	Type     string
	Required bool
	// Values lists the accepted values of an enumeration.
	Values  []string
	Default any
	// Operations lists the operation types that read the field (set by
	// Describe).
	Operations []string
}

// Operation is one value of operation.type.
type Operation interface {
	Type() string
	Fields() []Field
	// Decode reads the secret-substituted job variables ("operation",
	// "folder", "message"; numbers as float64 or json.Number) and validates
	// them. Errors are INVALID_INPUT naming the variable and what was
	// expected. Decode sends nothing.
	Decode(vars map[string]any) (Call, error)
}

// Call is a decoded, validated operation ready to run.
type Call interface {
	UserID() string
	Run(ctx context.Context, c *graph.Client, creds graph.Credentials) (*graph.Response, error)
}

// Registry returns the operations by type. It is built on every call, with
// no package state, so that tests and the worker cannot affect each other.
func Registry() map[string]Operation {
	ops := []Operation{
		ListMailFolders{},
		CreateMailFolder{},
		ListMessages{},
		SendMail{},
	}
	m := make(map[string]Operation, len(ops))
	for _, op := range ops {
		m[op.Type()] = op
	}
	return m
}

// Types lists the operation types, sorted.
func Types() []string {
	reg := Registry()
	types := make([]string, 0, len(reg))
	for t := range reg {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// Describe lists every field of every operation once, sorted by path, with
// the operations that read it; operation.type comes first.
func Describe() []Field {
	types := Types()
	reg := Registry()
	byPath := map[string]*Field{}
	var paths []string
	for _, t := range types {
		for _, f := range reg[t].Fields() {
			if have := byPath[f.Path]; have != nil {
				have.Operations = append(have.Operations, t)
				// A field required by one operation and optional for
				// another is required only where it is: the template shows
				// it per operation, so keep the stricter value visible.
				have.Required = have.Required || f.Required
				continue
			}
			f.Operations = []string{t}
			byPath[f.Path] = &f
			paths = append(paths, f.Path)
		}
	}
	slices.Sort(paths)
	out := []Field{{Path: "operation.type", Type: "string", Required: true, Values: types, Operations: types}}
	for _, p := range paths {
		out = append(out, *byPath[p])
	}
	return out
}

// Shared fields.
var (
	fieldUserID = Field{Path: "operation.userId", Type: "string", Required: true}
	fieldQuery  = Field{Path: "operation.queryParameters", Type: "context"}
	fieldMax    = Field{Path: "operation.maxResults", Type: "integer"}
)

// decodeUserID reads and checks operation.userId, the mailbox of every
// operation.
func decodeUserID(d *decoder) string {
	id := strings.TrimSpace(d.str(fieldUserID.Path, true, "a user principal name, e-mail address or object id"))
	if d.err == nil {
		d.fail(graph.ValidateUserID(id))
	}
	return id
}
