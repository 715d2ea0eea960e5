// Package store owns tyst's data: the domain types, the bbolt database, the
// encrypted blob directory, the newsroom and record keys, the record
// operations and the audit log. It knows nothing of HTTP.
//
// Every error an exported method returns is an *Error with a stable Code
// (ErrorCode finds it); its message is safe to show to clients and its cause
// is safe to log: neither holds a title, file name, path or key.
package store

import (
	"errors"
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"

	"tyst/store/fstream"

	"tyst/internal/pathfree"
)

// Code is a machine-readable error class; the values are the API contract of
// DESIGN §5.
type Code string

// The codes of DESIGN §5.
const (
	CodeValidation   Code = "validation_error"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeTooLarge     Code = "payload_too_large"
	CodeUnsupported  Code = "unsupported_media_type"
	// CodeRangeNotSatisfiable: a byte range that starts at or past the end.
	CodeRangeNotSatisfiable Code = "range_not_satisfiable"
	CodeRateLimited         Code = "rate_limited"
	CodeInternal            Code = "internal_error"
	CodeUnavailable         Code = "unavailable"
	CodeDiskFull            Code = "insufficient_storage"
	// CodeQuotaExceeded: an account's share of the server's storage is
	// used up (its export packages, ExportLimits.PerUser).
	CodeQuotaExceeded Code = "quota_exceeded"
)

// Error is the error store returns across its boundary.
type Error struct {
	Code    Code   // what clients switch on
	Message string // shown to clients: no titles, names, file names or paths
	Err     error  // the cause; logged (path-free), never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns err's code, or CodeInternal if err is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of err, or a generic one.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}

// ErrCorrupt is the cause of an internal_error when stored data does not
// decrypt or does not match its SHA-256: a finding for `tyst verify`.
var ErrCorrupt = fstream.ErrCorrupt

// ErrKeyMissing is the cause of an internal_error when no configured
// newsroom key unwraps a record key.
var ErrKeyMissing = errors.New("store: no configured key unwraps this item")

func errorf(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// boundary classifies err as it leaves the package: an *Error stays as it is;
// a closed database is unavailable; a full disk is insufficient_storage;
// everything else is internal. Paths are dropped from the cause.
func boundary(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Err != nil {
			e.Err = fmt.Errorf("store: %s: %w", op, stripPaths(e.Err))
		}
		return e
	}
	cause := fmt.Errorf("store: %s: %w", op, stripPaths(err))
	switch {
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return &Error{Code: CodeUnavailable, Message: "database is not open", Err: cause}
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &Error{Code: CodeDiskFull, Message: "insufficient storage", Err: cause}
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: cause}
}

// stripPaths drops the path of the chain's path error (package pathfree).
func stripPaths(err error) error { return pathfree.Strip(err) }
