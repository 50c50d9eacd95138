package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

type env struct {
	*sandbox.Env
	logs     *sandbox.LogBuffer
	mgmtAddr chan string
}

func start(t *testing.T, o sandbox.Options) *env {
	t.Helper()
	e := &env{logs: &sandbox.LogBuffer{}, mgmtAddr: make(chan string, 1)}
	o.Logs = e.logs
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	prev := o.App
	o.App = func(opts *app.Options) {
		opts.Ready = func(addr string) { e.mgmtAddr <- addr }
		if prev != nil {
			prev(opts)
		}
	}
	se, err := sandbox.Start(o)
	require.NoError(t, err)
	e.Env = se
	t.Cleanup(func() { require.NoError(t, se.Close()) })
	return e
}

const jobType = "o365-mail:1"

func (e *env) submit(vars map[string]any, headers map[string]string) int64 {
	if _, ok := vars["authentication"]; !ok {
		vars["authentication"] = e.Auth()
	}
	if headers == nil {
		headers = map[string]string{}
	}
	return e.Zeebe.CreateJob(zeebesim.JobSpec{Type: jobType, Variables: vars, CustomHeaders: headers, Retries: 3, BpmnProcessID: "e2e", ElementID: "task"})
}

func ended(j zeebesim.Job) bool {
	if j.Ended() {
		return true
	}
	switch j.State {
	case zeebesim.StateFailed, zeebesim.StateActivatable:
		return j.Activations > 0 && j.ErrorMessage != ""
	}
	return false
}

// wait returns the job once it has completed, thrown, raised an incident
// or been failed with retries left.
func (e *env) wait(t *testing.T, key int64) zeebesim.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, e.Zeebe.AwaitJobs(ctx, []int64{key}, ended))
	j, _ := e.Zeebe.Job(key)
	return j
}

func (e *env) lastFail(key int64) zeebesim.Command {
	var last zeebesim.Command
	for _, c := range e.Zeebe.Commands() {
		if c.JobKey == key && c.Method == "FailJob" {
			last = c
		}
	}
	return last
}
