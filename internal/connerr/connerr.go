// Package connerr holds the connector's error: the object that the contract
// (section 4) puts into the process as `error` and into the job's fail
// message. Every layer returns it so that the runtime decides retries and
// backoff in one place.
package connerr

import (
	"errors"
	"fmt"
	"time"
)

// Codes that are not HTTP statuses (contract section 4).
const (
	CodeInvalidInput             = "INVALID_INPUT"
	CodeSecretNotFound           = "SECRET_NOT_FOUND"
	CodeResponseTooLarge         = "RESPONSE_TOO_LARGE"
	CodeOAuthTokenError          = "OAUTH_TOKEN_ERROR"
	CodeOAuthRefreshTokenExpired = "OAUTH_REFRESH_TOKEN_EXPIRED"
	CodeOAuthInteractionRequired = "OAUTH_INTERACTION_REQUIRED"
	CodeTimeout                  = "408"
	CodeUnavailable              = "503"
)

// Types shown to error expressions as error.type, named after the Java
// runtime's exception classes so that expressions ported from it still match.
const (
	TypeConnector = "io.camunda.connector.api.error.ConnectorException"
	TypeInput     = "io.camunda.connector.api.error.ConnectorInputException"
)

// Error is a failed job as the contract describes it.
type Error struct {
	Type      string
	Code      string
	Message   string
	Variables map[string]any
	// Final errors end the job with retries 0 (an incident) whatever the
	// job's retries; the others fail it with retries − 1.
	Final bool
	// MinBackoff is a lower bound for the job's retry backoff, e.g. the
	// remaining Retry-After of a throttled mailbox.
	MinBackoff time.Duration
	// MayHaveActed marks a request that changes something (not a GET)
	// and reached Graph without an answer saying what became of it: Graph
	// may have acted on it, so it is never handed back as if not started.
	MayHaveActed bool
	// Cause is kept for logs; it is never shown to the process.
	Cause error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Cause }

// AsMap is the error as the process sees it (error expression, failure
// variables).
func (e *Error) AsMap() map[string]any {
	vars := e.Variables
	if vars == nil {
		vars = map[string]any{}
	}
	typ := e.Type
	if typ == "" {
		typ = TypeConnector
	}
	return map[string]any{"type": typ, "code": e.Code, "message": e.Message, "variables": vars}
}

// New is a retryable connector error.
func New(code, format string, args ...any) *Error {
	return &Error{Type: TypeConnector, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Input is a final input error. The message must name the variable and say
// what was expected, e.g. Input("operation.userId", "a user principal name or object id, got %q", v).
func Input(variable, format string, args ...any) *Error {
	return &Error{
		Type:    TypeInput,
		Code:    CodeInvalidInput,
		Message: variable + ": " + fmt.Sprintf(format, args...),
		Final:   true,
	}
}

// Final returns an error that raises an incident at once.
func Final(code, format string, args ...any) *Error {
	e := New(code, format, args...)
	e.Final = true
	return e
}

// From turns any error into an *Error; errors that are not ours become
// retryable internal errors (code "503"), so that nothing is lost.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Type: TypeConnector, Code: CodeUnavailable, Message: err.Error(), Cause: err}
}
