package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/operations"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
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

// BenchmarkWorkerJobs is the whole worker (activation, pipeline, Graph call,
// CompleteJob) in one process with the simulators, over a backlog of b.N
// listMessages jobs. B/op and allocs/op include the simulators' share,
// which does not change between versions of the connector: compare them
// between two commits to see what a change does to the collector's work.
func BenchmarkWorkerJobs(b *testing.B) {
	e, err := sandbox.Start(sandbox.Options{Configure: func(c *config.Config) {
		c.MaxJobsActive, c.Concurrency = 32, 16
		c.PollInterval = 100 * time.Millisecond
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { b.StopTimer(); e.Close() }()
	spec := zeebesim.JobSpec{Type: e.Runtime.Config.JobType, Retries: 3, Variables: map[string]any{
		"authentication": e.Auth(),
		"operation":      map[string]any{"type": "listMessages", "userId": "alice@contoso.example", "folderId": "inbox"},
	}}
	// Warm the token cache and the connections.
	warm := e.Zeebe.CreateJob(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := e.Zeebe.AwaitJobs(ctx, []int64{warm}, func(j zeebesim.Job) bool { return j.Ended() }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	// The worker is polling already: jobs are taken while the backlog is
	// being created, so creating them is part of what is measured.
	start := time.Now()
	keys := make([]int64, b.N)
	for i := range keys {
		keys[i] = e.Zeebe.CreateJob(spec)
	}
	if err := e.Zeebe.AwaitJobs(ctx, keys, func(j zeebesim.Job) bool { return j.Ended() }); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
	for _, k := range keys {
		if j, _ := e.Zeebe.Job(k); j.State != zeebesim.StateCompleted {
			b.Fatalf("job %d ended as %s", k, j.State)
		}
	}
}
