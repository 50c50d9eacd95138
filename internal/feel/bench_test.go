package feel

import (
	"fmt"
	"testing"
)

func benchVars() map[string]any {
	msgs := make([]any, 100)
	for i := range msgs {
		msgs[i] = map[string]any{
			"id":               fmt.Sprintf("AAMk%03d", i),
			"subject":          fmt.Sprintf("Subject %d", i),
			"isRead":           i%2 == 0,
			"importance":       "normal",
			"receivedDateTime": "2024-03-01T10:00:00Z",
			"from":             map[string]any{"emailAddress": map[string]any{"address": "a@contoso.com"}},
		}
	}
	return map[string]any{"body": map[string]any{"id": "x", "subject": "s", "value": msgs}}
}

func benchEval(b *testing.B, src string) {
	ex, err := Compile(src)
	if err != nil {
		b.Fatal(err)
	}
	vars := benchVars()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Eval(vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProjection100(b *testing.B) { benchEval(b, `body.value.subject`) }
func BenchmarkFilter(b *testing.B)        { benchEval(b, `body.value[isRead = false]`) }
func BenchmarkContextLiteral(b *testing.B) {
	benchEval(b, `{id: body.id, subject: body.subject, n: count(body.value)}`)
}

func benchCompile(b *testing.B, src string) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileSimple(b *testing.B) { benchCompile(b, `body.value[isRead = false].subject`) }
func BenchmarkCompileConnector(b *testing.B) {
	benchCompile(b, `{"message":{"subject":sendMail_subject,"body":{"contentType":sendMail_body_content_type,"content":sendMail_body_content},"toRecipients": for currentEmail in sendMail_to_recipients return {"emailAddress":{"address":currentEmail}},"ccRecipients": if sendMail_cc_recipients != null then for currentEmail in sendMail_cc_recipients return {"emailAddress":{"address":currentEmail}} else null}}`)
}
