package operations

import "github.com/o365-mail-connector/o365-mail-connector/internal/graph"

// ListMessages lists the messages of the whole mailbox, or of one folder
// given by id or well-known name (inbox, sentitems, ...): GET .../messages or
// .../mailFolders/{id}/messages, with OData query options.
type ListMessages struct{}

var fieldFolderID = Field{Path: "operation.folderId", Type: "string"}

func (ListMessages) Type() string { return "listMessages" }

func (ListMessages) Fields() []Field {
	return []Field{fieldUserID, fieldFolderID, fieldQuery, fieldMax}
}

func (ListMessages) Decode(vars map[string]any) (Call, error) {
	d := &decoder{vars: vars}
	c := &listCall{userID: decodeUserID(d)}
	folder := d.optID(fieldFolderID.Path)
	c.query = decodeQuery(d)
	c.maxResults = decodeMaxResults(d)
	if folder != "" && d.err == nil {
		d.fail(graph.ValidateID(fieldFolderID.Path, folder))
	}
	if d.err != nil {
		return nil, d.err
	}
	if folder == "" {
		c.path = []string{"messages"}
	} else {
		c.path = []string{"mailFolders", folder, "messages"}
	}
	return c, nil
}
