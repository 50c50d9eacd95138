package zeebesim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/camunda/zeebe/clients/go/v8/pkg/entities"
	"github.com/camunda/zeebe/clients/go/v8/pkg/worker"
	"github.com/stretchr/testify/require"
)

// BenchmarkWorkerNoop measures the bare client against the simulator: a job
// worker whose handler only completes the job. It is the ceiling any handler
// work is measured against.
func BenchmarkWorkerNoop(b *testing.B) {
	for _, cfg := range []struct{ maxActive, concurrency int }{{32, 8}, {128, 32}} {
		b.Run(fmt.Sprintf("max%d_conc%d", cfg.maxActive, cfg.concurrency), func(b *testing.B) {
			g := startGateway(b)
			c := newClient(b, g)
			keys := make([]int64, b.N)
			for i := range keys {
				keys[i] = g.CreateJob(JobSpec{Type: "bench", Variables: map[string]any{"i": i}})
			}
			b.ResetTimer()
			start := time.Now()
			w := c.NewJobWorker().JobType("bench").Handler(func(jc worker.JobClient, job entities.Job) {
				_, _ = jc.NewCompleteJobCommand().JobKey(job.Key).Send(context.Background())
			}).MaxJobsActive(cfg.maxActive).Concurrency(cfg.concurrency).BackoffSupplier(safeBackoff()).Open()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			require.NoError(b, g.Await(ctx, func(g *Gateway) bool { return g.completed() == len(keys) }))
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
			closeWorker(b, w, c)
		})
	}
}
