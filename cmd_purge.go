package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"tyst/adminsock"
	"tyst/retention"
	"tyst/store"
)

const purgeUsage = `purge [--data DIR] [--dry-run] [--retention-days N] [--key-file F]

Deletes the records that have outlived their retention time (never one on
hold or before its retain_until), export packages older than the cutoff,
orphan blobs and temp files older than an hour and expired sessions, then
compacts the database. With a running server it asks it over the admin
socket; without one it opens the database itself. Prints the stats as JSON
on stdout; exits 0 without errors, 1 with.`

func runPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("purge", purgeUsage, stderr)
	var f maintFlags
	f.register(fs)
	days, err := envInt("RECORDER_RETENTION_DAYS", int64(store.DefaultRetention/(24*time.Hour)))
	if err != nil {
		return err
	}
	dryRun := fs.Bool("dry-run", false, "only count what would be deleted")
	override := fs.Int("retention-days", 0, "days a record is kept, for this run; default: the server's setting (RECORDER_RETENTION_DAYS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Given, it must be a retention: 0 (not "the server's setting", which
	// leaving it out means) would silently purge by the default instead.
	given := false
	fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "retention-days" })
	if given && *override < 1 {
		return &usageError{"--retention-days must be at least 1"}
	}
	f.retentionDays = days
	req := adminsock.Request{Op: adminsock.OpPurge, DryRun: *dryRun, RetentionDays: *override}
	st, err := decodeResult[retention.Stats](runMaint(ctx, f, req, stdout, stderr, func(ctx context.Context, m *maintainer, _ func(int, int)) (any, error) {
		return m.Purge(ctx, *dryRun, *override, nil)
	}))
	if err != nil {
		return err
	}
	if st.Errors > 0 {
		return errors.New("purge finished with errors: see the log; a second run retries")
	}
	return nil
}
