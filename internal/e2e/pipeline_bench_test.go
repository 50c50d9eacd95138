package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/operations"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
)

// BenchmarkPipelineHandle is one job's work inside the worker (secrets,
// decoding, credentials, Graph call, mapping) without the gateway.
func BenchmarkPipelineHandle(b *testing.B) {
	for _, bc := range []struct {
		name    string
		headers map[string]string
	}{
		{"no-mapping", map[string]string{}},
		{"result-expression", map[string]string{"resultExpression": "={subjects: body.value.subject}"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := sandbox.Start(sandbox.Options{})
			if err != nil {
				b.Fatal(err)
			}
			// Close waits out the worker's long poll; it is not the job's cost.
			defer func() { b.StopTimer(); e.Close() }()
			vars, _ := json.Marshal(map[string]any{
				"authentication": e.Auth(),
				"operation":      map[string]any{"type": "listMessages", "userId": "alice@contoso.example", "folderId": "inbox"},
			})
			j := job.Job{Key: 1, Retries: 3, Variables: string(vars), Headers: bc.headers, Deadline: time.Now().Add(time.Hour)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if out := e.Runtime.Pipeline.Handle(context.Background(), j); out.Kind != job.Complete {
					b.Fatalf("%+v", out)
				}
			}
		})
	}
}

// BenchmarkPipelineOverhead is the pipeline around an operation that makes
// no Graph call: decoding, secrets, credentials, mapping, redaction.
func BenchmarkPipelineOverhead(b *testing.B) {
	e, err := sandbox.Start(sandbox.Options{App: func(o *app.Options) {
		o.Operations = operations.Registry()
		o.Operations["echo"] = echo{}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { b.StopTimer(); e.Close() }()
	vars, _ := json.Marshal(map[string]any{
		"authentication": e.Auth(),
		"operation":      map[string]any{"type": "echo", "userId": "alice@contoso.example", "text": "{{secrets.O365_CLIENT_SECRET}}"},
	})
	j := job.Job{Key: 1, Retries: 3, Variables: string(vars), Headers: map[string]string{}, Deadline: time.Now().Add(time.Hour)}
	// Warm the token cache.
	e.Runtime.Pipeline.Handle(context.Background(), j)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out := e.Runtime.Pipeline.Handle(context.Background(), j); out.Kind != job.Complete {
			b.Fatalf("%+v", out)
		}
	}
}
