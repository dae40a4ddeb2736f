package registrar

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies a failure by what the caller should do about it. Adapters translate SDK errors
// into these at the boundary; the domain decides retry, rejection or compensation from the code
// alone, never from an SDK type or a message string.
type Code string

const (
	// CodeNotFound: the object does not exist (yet). Permanent unless replication is pending.
	CodeNotFound Code = "not_found"
	// CodeReplicating: the directory has not caught up with a write we just made
	// (Request_ResourceNotFound right after a create, NoBackingApplicationObject). Retry with backoff.
	CodeReplicating Code = "replicating"
	// CodeInvalid: the service refused the input as malformed. Retrying cannot help.
	CodeInvalid Code = "invalid"
	// CodeConflict: the object is in a state that forbids the operation (for example a soft-deleted
	// Key Vault secret name). An operator must act.
	CodeConflict Code = "conflict"
	// CodeForbidden: our identity lacks a permission. Retried (role assignments take minutes to
	// propagate) and dead-lettered if it persists, so the request survives until an operator fixes it.
	CodeForbidden Code = "forbidden"
	// CodeThrottled: 429 after the SDK's own retries.
	CodeThrottled Code = "throttled"
	// CodeUnavailable: 5xx, timeouts, connection failures.
	CodeUnavailable Code = "unavailable"
	// CodeInternal: anything unexpected.
	CodeInternal Code = "internal"
)

// Error is the error every adapter returns. Message is safe to log and to publish; it never
// contains a secret value or a raw response body.
type Error struct {
	Code Code
	// Reason, for a CodeInvalid refusal whose cause is known, is the machine-readable code of the
	// rejection it becomes (RejectQuotaExceeded, RejectLifetimePolicy, …); "" is directory_refused.
	Reason     string
	Op         string        // e.g. "graph.addPassword", "keyvault.set"
	Message    string        // short, human-readable, safe to publish
	RetryAfter time.Duration // the service's hint, if it gave one
	Err        error         // the wrapped cause, for errors.Is/As; not printed by Error()
}

// ReasonOf returns the rejection code an error names, or "".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: %s", e.Op, e.Code)
	}
	return fmt.Sprintf("%s: %s: %s", e.Op, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the Code of err, or CodeInternal for errors that are not ours.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return ErrorCode(err) == CodeNotFound }

// Retryable reports whether a later attempt may succeed without anyone changing anything.
func Retryable(err error) bool {
	switch ErrorCode(err) {
	case CodeReplicating, CodeThrottled, CodeUnavailable, CodeForbidden, CodeInternal:
		return true
	}
	return false
}
