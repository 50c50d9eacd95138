package connector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
	"github.com/o365-mail-connector/o365-mail-connector/internal/job"
)

func TestAbortedNamesTheShutdown(t *testing.T) {
	const msg = "worker shutting down: the operation was aborted"

	plain := aborted(errors.New("something below Graph"))
	var ce *connerr.Error
	require.ErrorAs(t, plain, &ce)
	require.Equal(t, connerr.CodeUnavailable, ce.Code)
	require.Equal(t, msg, ce.Message)

	// A send cut short on the wire keeps the Graph client's warning; the
	// error it came in is left untouched.
	canceled := connerr.New(connerr.CodeUnavailable, "Graph request canceled; the message may have been sent")
	canceled.Cause = context.Canceled
	got := aborted(canceled)
	require.ErrorAs(t, got, &ce)
	require.NotSame(t, canceled, ce)
	require.Equal(t, msg+" (Graph request canceled; the message may have been sent)", ce.Message)
	require.Equal(t, "Graph request canceled; the message may have been sent", canceled.Message)
	require.ErrorIs(t, got, context.Canceled)

	// Graph answered before the abort: its answer stands.
	answered := connerr.New("404", "ErrorItemNotFound: The specified object was not found in the store.")
	require.Same(t, answered, aborted(answered))
}

func TestShutdownHandsBackOnlyWhatCannotHaveTakenEffect(t *testing.T) {
	j := job.Job{Key: 1, Retries: 2}

	// Cut at a throttled mailbox's gate: back with its retries, after the
	// rest of the Retry-After.
	waiting := connerr.New(connerr.CodeUnavailable, "Graph request canceled")
	waiting.Cause, waiting.MinBackoff = context.Canceled, 40*time.Second
	out, ok := handBack(waiting, j)
	require.True(t, ok)
	require.Equal(t, job.Fail, out.Kind)
	require.Equal(t, int32(2), out.Retries)
	require.Equal(t, 40*time.Second, out.Backoff)
	require.Contains(t, out.Message, "handed back with its retries")

	// A send (or a folder creation) that may have reached Graph is not
	// handed back: it fails as before, with the warning, and counts a retry.
	sent := connerr.New(connerr.CodeUnavailable, "Graph request canceled; the message may have been sent")
	sent.Cause, sent.MayHaveActed = context.Canceled, true
	_, ok = handBack(sent, j)
	require.False(t, ok)

	// Graph's own answer is judged as usual.
	_, ok = handBack(connerr.New("500", "boom"), j)
	require.False(t, ok)
}
