package operations

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/graph"
)

// FuzzDecode feeds arbitrary job variables to every operation's Decode: it
// must not panic, must refuse with an INVALID_INPUT *connerr.Error, and
// what it accepts must name a mailbox that is safe as a path segment.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"operation":{"type":"listMessages","userId":"alice@contoso.example","folderId":"inbox","queryParameters":{"$top":5,"$select":"subject"},"maxResults":10}}`,
		`{"operation":{"type":"listMailFolders","userId":"alice@contoso.example","parentFolderId":"AAMk==","queryParameters":{"includeHiddenFolders":"true"}}}`,
		`{"operation":{"type":"createMailFolder","userId":"alice@contoso.example"},"folder":{"displayName":"Invoices","isHidden":false}}`,
		`{"operation":{"type":"sendMail","userId":"alice@contoso.example"},"message":{"subject":"s","bodyContentType":"html","bodyContent":"<b>x</b>","toRecipients":["bob@contoso.example",{"address":"carol@contoso.example","name":"Carol"}],"ccRecipients":[{"emailAddress":{"address":"d@e.fg"}}],"importance":"HIGH","attachments":[{"name":"a.txt","contentType":"text/plain","contentBytes":"aGVsbG8="}],"saveToSentItems":"false"}}`,
		`{"operation":{"userId":"../x"},"message":{"toRecipients":"a@b.c, d@e.f"}}`,
		`{"operation":{"userId":"a\u0000b","folderId":".."},"folder":"x"}`,
		`{"operation":{"userId":"alice@contoso.example","queryParameters":{"$search":"x","$filter":"y","$top":1e309}}}`,
		`{"operation":{"userId":"alice@contoso.example","maxResults":-1,"queryParameters":{"$skip":"-5","$count":3}}}`,
		`{"operation":[],"message":{"toRecipients":[null,1,true,{"address":{}}]}}`,
		`{"operation":{"userId":"alice@contoso.example"},"message":{"toRecipients":["a@b.c"],"attachments":[{"name":"","contentBytes":"!!"},{}]}}`,
		`{}`,
		`{"operation":null,"folder":null,"message":null}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	ops := Registry()
	f.Fuzz(func(t *testing.T, doc []byte, useNumber bool) {
		dec := json.NewDecoder(bytes.NewReader(doc))
		if useNumber {
			dec.UseNumber()
		}
		var vars map[string]any
		if err := dec.Decode(&vars); err != nil {
			return
		}
		for name, op := range ops {
			call, err := op.Decode(vars)
			if err != nil {
				var ce *connerr.Error
				if !errors.As(err, &ce) {
					t.Fatalf("%s: error %T is not a *connerr.Error: %v", name, err, err)
				}
				if ce.Code != connerr.CodeInvalidInput || !ce.Final {
					t.Fatalf("%s: code %s (final %v), want a final INVALID_INPUT: %v", name, ce.Code, ce.Final, err)
				}
				if ce.Message == "" {
					t.Fatalf("%s: empty message", name)
				}
				continue
			}
			if call == nil {
				t.Fatalf("%s: no call and no error", name)
			}
			if err := graph.ValidateUserID(call.UserID()); err != nil {
				t.Fatalf("%s: accepted a mailbox id that is not a safe path segment: %v", name, err)
			}
		}
	})
}
