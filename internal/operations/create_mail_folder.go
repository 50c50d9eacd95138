package operations

import (
	"context"
	"net/http"

	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
)

// CreateMailFolder creates a folder at the top level or below
// operation.parentFolderId. A duplicate name is Graph's ErrorFolderExists
// (400 or 409, both seen); its status and code are passed on unchanged so
// that an error expression can match on the message's code.
type CreateMailFolder struct{}

var (
	fieldDisplayName = Field{Path: "folder.displayName", Type: "string", Required: true}
	fieldIsHidden    = Field{Path: "folder.isHidden", Type: "boolean", Default: false}
)

func (CreateMailFolder) Type() string { return "createMailFolder" }

func (CreateMailFolder) Fields() []Field {
	return []Field{fieldUserID, fieldParentFolderID, fieldDisplayName, fieldIsHidden}
}

func (CreateMailFolder) Decode(vars map[string]any) (Call, error) {
	d := &decoder{vars: vars}
	c := &createFolderCall{userID: decodeUserID(d)}
	parent := d.optID(fieldParentFolderID.Path)
	name := d.str(fieldDisplayName.Path, true, "the new folder's name")
	hidden := d.boolean(fieldIsHidden.Path, false)
	if parent != "" && d.err == nil {
		d.fail(graph.ValidateID(fieldParentFolderID.Path, parent))
	}
	if d.err != nil {
		return nil, d.err
	}
	if parent == "" {
		c.path = []string{"mailFolders"}
	} else {
		c.path = []string{"mailFolders", parent, "childFolders"}
	}
	c.body = map[string]any{"displayName": name, "isHidden": hidden}
	return c, nil
}

type createFolderCall struct {
	userID string
	path   []string
	body   map[string]any
}

func (c *createFolderCall) UserID() string { return c.userID }

func (c *createFolderCall) Run(ctx context.Context, gc *graph.Client, creds graph.Credentials) (*graph.Response, error) {
	return gc.Do(ctx, creds, graph.Request{Method: http.MethodPost, UserID: c.userID, Path: c.path, Body: c.body})
}
