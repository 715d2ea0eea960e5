package blob

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The Local store reaches every directory and file below its root with
// openat and O_NOFOLLOW, one component at a time, so a symlink planted in
// the tree is never followed: not to read, not to write, not to delete.
// Only the root path itself, the operator's choice, may pass through
// symlinks.

// dirFlags open a directory without following a symlink.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openRoot opens the root directory and returns its descriptor.
func openRoot(root string) (int, error) {
	return retry(func() (int, error) { return unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) })
}

// openDirAt opens directory name in dir; with create it makes it (0700)
// first if absent. A symlink or a file under name is an error (ELOOP or
// ENOTDIR).
func openDirAt(dir int, name string, create bool) (int, error) {
	if create {
		if err := unix.Mkdirat(dir, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
	}
	return retry(func() (int, error) { return unix.Openat(dir, name, dirFlags, 0) })
}

// notThere reports whether err from openat or fstatat means the entry is
// not a store's object: absent, a symlink (ELOOP), a file where a directory
// belongs (ENOTDIR), or a FIFO or socket that will not open (ENXIO).
func notThere(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) ||
		errors.Is(err, unix.ENXIO)
}

// statAt describes entry name of dir without following a symlink.
func statAt(dir int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if !errors.Is(err, unix.EINTR) {
			return st, err
		}
	}
}

// isRegular reports whether st is a regular file.
func isRegular(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

// modTime returns st's modification time.
func modTime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Unix()) }

// eachName calls fn with the names in directory dir, a batch at a time, so
// a large directory costs no more memory than one batch. It does not close
// dir.
func eachName(dir int, fn func(name string) error) error {
	fd, err := retry(func() (int, error) { return unix.Dup(dir) })
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, name := range names {
			if err := fn(name); err != nil {
				return err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return stripPath(err)
		}
	}
}

// retry repeats a system call interrupted by a signal.
func retry(call func() (int, error)) (int, error) {
	for {
		fd, err := call()
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}
