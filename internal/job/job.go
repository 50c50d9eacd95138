// Package job holds what passes between the Zeebe worker and the connector
// pipeline: the activated job as the pipeline sees it, and the command the
// pipeline decides on. It keeps the worker free of Graph and FEEL, and the
// pipeline free of gRPC.
package job

import "time"

// Variables are the only process variables the connector reads
// (contract section 1): the worker fetches just these.
var Variables = []string{"authentication", "operation", "folder", "message"}

// Job is an activated job.
type Job struct {
	Key                int64
	Type               string
	Retries            int32
	Deadline           time.Time
	Variables          string // JSON document, already limited to the fetched variables
	Headers            map[string]string
	ProcessInstanceKey int64
	BpmnProcessID      string
	ElementID          string
	Worker             string
}

// Kind is the job command an outcome leads to.
type Kind int

const (
	Complete Kind = iota
	Fail
	ThrowError
)

func (k Kind) String() string {
	switch k {
	case Complete:
		return "complete"
	case Fail:
		return "fail"
	case ThrowError:
		return "throwError"
	}
	return "unknown"
}

// Outcome is the job command to send.
type Outcome struct {
	Kind      Kind
	Variables map[string]any
	// Fail only.
	Retries int32
	Backoff time.Duration
	// Fail: the fail message; ThrowError: the error message.
	Message string
	// ThrowError: the BPMN error code. Fail: the connector error code (metrics).
	Code string
	// Operation is the operation type, for logs and metrics ("" when unknown).
	Operation string
}
