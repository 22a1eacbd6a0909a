package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"syscall"
)

// Sentinel errors of remote reads. Test with errors.Is.
var (
	// ErrAccessDenied: the store refused the credentials (or their absence):
	// HTTP 401 or 403.
	ErrAccessDenied = errors.New("access denied")
	// ErrRangeIgnored: an HTTP server answered a range request with the whole
	// object. ckpt does not fall back to downloading everything.
	ErrRangeIgnored = errors.New("the server does not honour Range requests")
	// ErrBadURL: a URL that names no object (s3:// without a bucket, hf://
	// without a repository).
	ErrBadURL = errors.New("malformed URL")
)

// Internal categories a backend wraps its errors in.
var (
	// errChanged: the object is no longer the version that was described
	// (If-Match failed, another ETag, gone). The store reports it as
	// formats.ErrFileChanged.
	errChanged = errors.New("the object changed while it was read")
	// errRetryable: a failure worth another attempt (5xx, 429, a reset or
	// timed-out connection, a short body).
	errRetryable = errors.New("temporary failure")
)

// Error is a remote request that failed: the URL, what was done, and why in
// words a person can act on. Kind is one of the sentinels above, fs.ErrNotExist,
// or nil; Err the underlying failure, if any.
type Error struct {
	URL    string
	Op     string // "HEAD", "GET", "list", ...
	Status int    // the HTTP status, 0 when there was no response
	Kind   error
	Detail string
	Err    error
}

func (e *Error) Error() string {
	msg := e.URL + ": "
	if e.Detail != "" {
		msg += e.Detail
	} else if e.Kind != nil {
		msg += e.Kind.Error()
	} else if e.Err != nil {
		msg += e.Err.Error()
	}
	return msg
}

// Unwrap exposes Kind and Err to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// statusError turns an HTTP error status into an *Error: 404/410 are
// fs.ErrNotExist, 401/403 ErrAccessDenied with deniedHint, 5xx and 429
// retryable.
func statusError(url, op string, status int, deniedHint, detail string) *Error {
	e := &Error{URL: url, Op: op, Status: status}
	text := fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		e.Kind, e.Detail = fs.ErrNotExist, "no such object ("+text+")"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind, e.Detail = ErrAccessDenied, "access denied ("+text+")"
		if deniedHint != "" {
			e.Detail += ": " + deniedHint
		}
	case status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout:
		e.Kind, e.Detail = errRetryable, "the server failed ("+text+")"
	default:
		e.Detail = op + " failed (" + text + ")"
	}
	if detail != "" {
		e.Detail += ": " + detail
	}
	return e
}

// transportError wraps a failure to get a response at all: retryable when it
// is a network failure (the caller's own cancellation is not).
func transportError(url, op string, err error) *Error {
	e := &Error{URL: url, Op: op, Err: err, Detail: op + " failed: " + err.Error()}
	if retryableNetError(err) {
		e.Kind = errRetryable
	}
	return e
}

// retryableNetError reports whether err is a network failure worth another
// attempt: a reset, refused or timed-out connection, an unexpected EOF.
func retryableNetError(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &ne):
		return true
	}
	return false
}
