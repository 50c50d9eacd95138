package worker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// A job's log lines carry what an operator searches by; completions are
// debug, failures info.
func TestJobLinesCarryTheJobsIdentity(t *testing.T) {
	g, c := gateway(t)
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := New(c, testConfig(), func(_ context.Context, j job.Job) job.Outcome {
		if j.BpmnProcessID == "fails" {
			return job.Outcome{Kind: job.Fail, Retries: 0, Message: "INVALID_INPUT: x", Code: "INVALID_INPUT", Operation: "sendMail"}
		}
		return job.Outcome{Kind: job.Complete, Operation: "listMessages"}
	}, zap.New(core), nil)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	okKey := g.CreateJob(zeebesim.JobSpec{Type: jobType, BpmnProcessID: "works", ElementID: "a", ProcessInstanceKey: 7})
	failKey := g.CreateJob(zeebesim.JobSpec{Type: jobType, BpmnProcessID: "fails", ElementID: "send", ProcessInstanceKey: 9})
	await(t, g, []int64{okKey}, func(j zeebesim.Job) bool { return j.State == zeebesim.StateCompleted })
	await(t, g, []int64{failKey}, func(j zeebesim.Job) bool { return j.Incident })

	var lines []observer.LoggedEntry
	require.Eventually(t, func() bool {
		lines = logs.FilterMessage("job done").All()
		return len(lines) == 1
	}, 10*time.Second, 5*time.Millisecond, "one info line: the failure; the completion is debug")
	fields := lines[0].ContextMap()
	require.Equal(t, failKey, fields["jobKey"])
	require.Equal(t, int64(9), fields["processInstanceKey"])
	require.Equal(t, "fails", fields["bpmnProcessId"])
	require.Equal(t, "send", fields["elementId"])
	require.Equal(t, "sendMail", fields["operation"])
	require.Equal(t, "INVALID_INPUT", fields["code"])
}
