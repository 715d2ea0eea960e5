// Package shred overwrites files with random bytes before they are
// removed, so that a file system that frees a file's blocks in place does
// not leave its old ciphertext readable to whoever later holds the disk
// and the key it was under. It is tyst's one overwrite routine: the store
// uses it for an old database file, the stream server for spools.
//
// An overwrite is best effort on flash and copy-on-write file systems,
// which may write the new bytes elsewhere; it only shrinks what a disk
// keeps.
package shred

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// File overwrites the data of the file at path with random bytes (Data),
// syncs it and removes it (At, in path's directory). The removal is not
// made durable: the caller syncs the directory when it needs to.
func File(path string) error {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer root.Close()
	return At(root, filepath.Base(path))
}

// At overwrites the data of file name in root with random bytes (Data),
// syncs it and removes it; root keeps a symbolic link from leading the
// overwrite outside it.
func At(root *os.Root, name string) error {
	f, err := root.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil {
		err = Data(f, st.Size())
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if rerr := root.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// Data writes random bytes over every data extent of f (size bytes long),
// leaving its holes alone; over all of it where the file system cannot
// tell data from holes. Holes are left alone because filling them would
// take free space that a nearly full disk does not have (bbolt grows its
// file sparse), and fail before the overwrite reached the data that
// matters. It does not sync f.
func Data(f *os.File, size int64) error {
	fd := int(f.Fd())
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		end := size
		if err != nil {
			start = off // no SEEK_DATA here: everything is data
		} else if end, err = unix.Seek(fd, start, unix.SEEK_HOLE); err != nil {
			return err
		}
		end = min(end, size)
		for start < end {
			n := min(int64(len(buf)), end-start)
			rand.Read(buf[:n]) // never fails (crypto/rand)
			if _, err := f.WriteAt(buf[:n], start); err != nil {
				return err
			}
			start += n
		}
		off = end
	}
	return nil
}
