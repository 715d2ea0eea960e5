package store

import (
	"context"
	"time"
)

var bucketExports = []byte("exports")

// PurgeExports removes export packages written before cutoff and returns
// how many (with dryRun, would remove).
func (db *DB) PurgeExports(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	return 0, nil
}

// rekeyFiles encrypts the files under the newsroom key again under the
// primary key: export packages and debug dumps.
func (db *DB) rekeyFiles(ctx context.Context) (int, error) {
	return 0, nil
}

// exportFiles returns the paths of every export package file.
func (db *DB) exportFiles() ([]string, error) {
	return nil, nil
}
