package store

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"

	"tyst/store/blob"
)

// Object names. A blob is named by a keyed hash of its audio (DESIGN §4);
// an export package by its random package id.
var (
	blobNamePattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	exportNamePattern = regexp.MustCompile(`^export-[0-9a-f]{32}$`)
)

// openStores opens the local blob and export stores of the data directory
// dir: blobs/ab/<name>.bin and exports/export-<id>.zip.enc.
func openStores(dir string, wrap func(io.Writer) io.Writer) (blobs, exports blob.Store, err error) {
	b, err := blob.NewLocal(filepath.Join(dir, "blobs"), blob.LocalOptions{Names: blobNamePattern, FanOut: true, Ext: ".bin", WrapWriter: wrap})
	if err != nil {
		return nil, nil, fmt.Errorf("data directory is not writable: %w", err)
	}
	e, err := blob.NewLocal(filepath.Join(dir, "exports"), blob.LocalOptions{Names: exportNamePattern, Ext: ".zip.enc", WrapWriter: wrap})
	if err != nil {
		return nil, nil, fmt.Errorf("data directory is not writable: %w", err)
	}
	return b, e, nil
}

// removeBlob deletes blob name (overwritten first, best effort), unless a
// backup is copying blobs, in which case it waits for it. An absent blob
// is no error.
func (db *DB) removeBlob(name string) error {
	db.removals.RLock()
	defer db.removals.RUnlock()
	return db.blobs.Delete(name)
}

// listObjects returns every committed object of s.
func listObjects(s blob.Store) ([]blob.Info, error) {
	var out []blob.Info
	err := s.List(func(i blob.Info) error {
		out = append(out, i)
		return nil
	})
	return out, err
}

// copyObject copies object name from src to dst.
func copyObject(src, dst blob.Store, name string) (int64, error) {
	in, err := src.Open(name)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	w, err := dst.Create()
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	n, err := io.Copy(w, io.NewSectionReader(in, 0, in.Size()))
	if err != nil {
		return n, err
	}
	return n, w.Commit(name)
}

// errNoBlob is the cause when an asset's blob is not there.
var errNoBlob = errors.New("store: blob missing")

// openBlob opens blob name; a missing one is errNoBlob wrapped in
// ErrCorrupt (a finding for verify).
func (db *DB) openBlob(name string) (blob.Object, error) {
	o, err := db.blobs.Open(name)
	if errors.Is(err, blob.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, errNoBlob)
	}
	return o, err
}
