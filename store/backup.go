package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"tyst/internal/dirsync"
	"tyst/store/blob"
)

// BackupStats says what Backup copied.
type BackupStats struct {
	DatabaseBytes int64 `json:"database_bytes"`
	Blobs         int   `json:"blobs"`
	BlobBytes     int64 `json:"blob_bytes"`
	Exports       int   `json:"exports"`
}

// BackupOptions configure Backup.
type BackupOptions struct {
	// Progress, when set, is called after each file with how many of how
	// many files are done.
	Progress func(done, total int)
}

// Backup writes a consistent copy of the data directory into dst, which
// must not exist or be empty, while the server goes on serving (DESIGN
// §10): the database as of one read transaction (bbolt's hot backup), and
// every blob and export package it references, read while blob removals
// wait. The copy holds no newsroom key: `tyst verify --data DST` and
// `tyst serve --data DST` need the same key settings as the original.
func (db *DB) Backup(ctx context.Context, dst string, o BackupOptions) (st BackupStats, err error) {
	defer func() { err = boundary("backup", err) }()
	if err := prepareBackupDir(dst); err != nil {
		return st, err
	}
	// Blob and package removals wait until the copy is done, so every
	// blob and package the snapshot references is still there to copy.
	// Only those are copied: a package file without a row (its record
	// destroyed, the removal failed) stays out of the backup.
	db.removals.Lock()
	defer db.removals.Unlock()
	var blobs, exports []string
	err = db.view(func(tx *bolt.Tx) error {
		f, err := os.OpenFile(filepath.Join(dst, dbFileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		n, err := tx.WriteTo(f)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		st.DatabaseBytes = n
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketAssets).ForEach(func(_, v []byte) error {
			var a assetRow
			if err := jsonUnmarshal(v, &a); err != nil {
				return err
			}
			blobs = append(blobs, a.Blob)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketExports).ForEach(func(k, _ []byte) error {
			exports = append(exports, exportObjectName(string(k)))
			return nil
		})
	})
	if err != nil {
		return st, err
	}
	dstBlobs, dstExports, err := openStores(dst, nil)
	if err != nil {
		return st, err
	}
	total := len(blobs) + len(exports)
	for i, name := range blobs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n, err := copyObject(db.blobs, dstBlobs, name)
		if err != nil {
			return st, fmt.Errorf("blob %s: %w", name, stripPaths(err))
		}
		st.Blobs++
		st.BlobBytes += n
		if o.Progress != nil {
			o.Progress(i+1, total)
		}
	}
	for i, name := range exports {
		if _, err := copyObject(db.exports, dstExports, name); errors.Is(err, blob.ErrNotExist) {
			continue // lost before the snapshot (verify reports it): nothing to copy
		} else if err != nil {
			return st, fmt.Errorf("export package: %w", stripPaths(err))
		}
		st.Exports++
		if o.Progress != nil {
			o.Progress(len(blobs)+i+1, total)
		}
	}
	if err := dirsync.Sync(dst); err != nil {
		return st, err
	}
	db.log.Info("backup written", "database_bytes", st.DatabaseBytes, "blobs", st.Blobs, "blob_bytes", st.BlobBytes, "exports", st.Exports)
	return st, nil
}

// prepareBackupDir makes dst (0700), refusing one that holds anything.
func prepareBackupDir(dst string) error {
	entries, err := os.ReadDir(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return &Error{Code: CodeValidation, Message: "backup directory cannot be created", Err: stripPaths(err)}
		}
	case err != nil:
		return &Error{Code: CodeValidation, Message: "backup directory cannot be read or is not a directory", Err: stripPaths(err)}
	case len(entries) > 0:
		return &Error{Code: CodeValidation, Message: "backup directory is not empty: give a new or empty directory"}
	}
	return nil
}
