package store

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockFileName is the data directory's lock: held by the one process that
// has the database open, for as long as it has it open. bbolt locks its
// own file too, but Compact closes and reopens that file, and no other
// process may slip in between.
const lockFileName = "tyst.lock"

// lockDir takes the data directory's lock, waiting up to timeout.
func lockDir(dir string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, ErrLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}
