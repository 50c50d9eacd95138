package connector

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
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
