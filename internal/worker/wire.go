package worker

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// An error from a job command does not say whether the gateway processed
// it. A FailJob that leaves retries must not be processed twice (see
// sendOnce), yet one that never left the worker should be sent again: a
// gateway restarting is the usual cause, and the job would otherwise wait
// out its timeout. gRPC knows the difference: it names the peer of a call
// only once the call has a stream on a connection, and from then on its
// request may reach the gateway.

// attemptMark is what became of one attempt of a job command.
type attemptMark struct {
	watched bool      // markAttempt saw the attempt (NewClient installs it)
	peer    peer.Peer // set by gRPC if the call got a stream
}

type attemptMarkKey struct{}

func withAttemptMark(ctx context.Context) (context.Context, *attemptMark) {
	m := &attemptMark{}
	return context.WithValue(ctx, attemptMarkKey{}, m), m
}

// markAttempt is a unary client interceptor that has gRPC fill in the
// attemptMark of a call whose context carries one; other calls pass
// untouched.
func markAttempt(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if m, ok := ctx.Value(attemptMarkKey{}).(*attemptMark); ok {
		m.watched = true
		opts = append(opts, grpc.Peer(&m.peer))
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// mayHaveActed tells whether the gateway may have processed an attempt
// that failed with err. No: the call never got a stream (the connection was
// down or not ready), or the gateway refused it for back-pressure, which it
// answers before processing. Yes otherwise, in particular for UNAVAILABLE
// after the request went out (a gateway that died after forwarding it) and
// DEADLINE_EXCEEDED (an answer that did not come in time). Without the
// interceptor nothing is known, and the answer is yes.
//
// The answer errs towards yes: a call whose stream the gateway refused
// unprocessed (REFUSED_STREAM, or a GOAWAY during a gateway restart) and
// whose transparent retry then found no connection still names the first
// stream's peer. Such a FailJob is not repeated, and its job returns after
// its timeout.
func (m *attemptMark) mayHaveActed(err error) bool {
	if m == nil || !m.watched {
		return true
	}
	if m.peer.Addr == nil {
		return false
	}
	return status.Code(err) != codes.ResourceExhausted
}
