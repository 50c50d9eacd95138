package operations

import "github.com/o365-mail-connector/o365-mail-connector/internal/graph"

// ListMailFolders lists the mailbox's top-level folders, or the child
// folders of operation.parentFolderId (GET .../mailFolders or
// .../mailFolders/{id}/childFolders). Hidden folders need
// queryParameters.includeHiddenFolders = true.
type ListMailFolders struct{}

var fieldParentFolderID = Field{Path: "operation.parentFolderId", Type: "string"}

func (ListMailFolders) Type() string { return "listMailFolders" }

func (ListMailFolders) Fields() []Field {
	return []Field{fieldUserID, fieldParentFolderID, fieldQuery, fieldMax}
}

func (ListMailFolders) Decode(vars map[string]any) (Call, error) {
	d := &decoder{vars: vars}
	c := &listCall{userID: decodeUserID(d)}
	parent := d.optID(fieldParentFolderID.Path)
	c.query = decodeQuery(d)
	c.maxResults = decodeMaxResults(d)
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
	return c, nil
}
