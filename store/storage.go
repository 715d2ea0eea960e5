package store

import (
	"context"
	"os"
	"syscall"
)

// Storage is what the data directory holds and what its disk has left.
type Storage struct {
	Blobs     int
	Bytes     int64 // blobs and export packages, encrypted
	Exports   int
	FreeBytes int64 // available to tyst on the data directory's file system
}

// Storage counts blobs and export packages and reads the free space.
func (db *DB) Storage(ctx context.Context) (st Storage, err error) {
	defer func() { err = boundary("storage", err) }()
	names, err := db.blobs.list()
	if err != nil {
		return st, err
	}
	for _, name := range names {
		if fi, err := os.Stat(db.blobs.path(name)); err == nil {
			st.Blobs++
			st.Bytes += fi.Size()
		}
	}
	exports, err := db.exportFiles()
	if err != nil {
		return st, err
	}
	for _, p := range exports {
		if fi, err := os.Stat(p); err == nil {
			st.Exports++
			st.Bytes += fi.Size()
		}
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(db.dir, &fs); err == nil {
		st.FreeBytes = int64(fs.Bavail) * int64(fs.Bsize)
	}
	return st, nil
}
