package store

import (
	"context"
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
	blobs, err := listObjects(db.blobs)
	if err != nil {
		return st, err
	}
	for _, i := range blobs {
		st.Blobs++
		st.Bytes += i.Size
	}
	exports, err := listObjects(db.exports)
	if err != nil {
		return st, err
	}
	for _, i := range exports {
		st.Exports++
		st.Bytes += i.Size
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(db.dir, &fs); err == nil {
		st.FreeBytes = int64(fs.Bavail) * int64(fs.Bsize)
	}
	return st, nil
}
