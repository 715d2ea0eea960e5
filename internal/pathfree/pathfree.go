// Package pathfree strips paths from errors before they are logged or
// answered: a path in the data directory names nothing secret, but a path
// a user gave (a backup target, a socket) may, and every log line must be
// safe to hand to anyone (DESIGN, privacy rules).
package pathfree

import (
	"errors"
	"io/fs"
	"os"
)

// Error is a *fs.PathError or *os.LinkError without its path(s): the
// operation and the cause (the errno) stay, and errors.Is still finds
// the cause.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Strip returns err's first path or link error without its path(s), or
// err as it is when it holds none. Errors deeper in a chain are formatted
// by their wrappers already, so a caller strips a path error before it
// wraps it.
func Strip(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &Error{Op: pe.Op, Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return &Error{Op: le.Op, Err: le.Err}
	}
	return err
}
