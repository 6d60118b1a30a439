package betasync

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Every failure that crosses a package boundary carries one, so
// the HTTP API and the NATS micro service can both answer with the right
// status from one table (see Status).
const (
	EINVALID       = "invalid"        // out-of-range or malformed input (400)
	EUNPROCESSABLE = "unprocessable"  // a required value is missing or not a number (422)
	EUNAUTHORIZED  = "unauthorized"   // no or unknown API key (401)
	EFORBIDDEN     = "forbidden"      // known key without the role (403)
	ENOTFOUND      = "not_found"      // no such thing (404)
	ECONFLICT      = "conflict"       // a concurrent writer won; nothing was written (409)
	EUPSTREAM      = "upstream_error" // the mapping source failed or sent a bad document (502)
	EUNAVAILABLE   = "unavailable"    // no worker answered, or the bus is down (503)
	EINTERNAL      = "internal"       // a bug or an unexpected failure (500)
)

// Error is a failure with a code and a message that is safe to show to the
// caller. Wrap it with fmt.Errorf("...: %w", err) freely: ErrorCode and
// ErrorMessage find it with errors.As.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("betasync: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, and a
// generic message for any other error, so internal details never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

var codeStatus = map[string]int{
	EINVALID:       http.StatusBadRequest,
	EUNPROCESSABLE: http.StatusUnprocessableEntity,
	EUNAUTHORIZED:  http.StatusUnauthorized,
	EFORBIDDEN:     http.StatusForbidden,
	ENOTFOUND:      http.StatusNotFound,
	ECONFLICT:      http.StatusConflict,
	EUPSTREAM:      http.StatusBadGateway,
	EUNAVAILABLE:   http.StatusServiceUnavailable,
	EINTERNAL:      http.StatusInternalServerError,
}

// Status maps an error code to its HTTP status. The NATS micro service uses
// the same numbers in its Nats-Service-Error-Code header.
func Status(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus is the inverse of Status, for errors that arrive as a number
// (a micro service error header).
func CodeForStatus(status int) string {
	for c, s := range codeStatus {
		if s == status {
			return c
		}
	}
	return EINTERNAL
}
