package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"tyst/adminsock"
	"tyst/store"
)

const verifyUsage = `verify [--data DIR] [--key-file F] [--audit-head SEQ:HASH]

Checks the data directory: bbolt's consistency, that every record key
unwraps, that every blob exists, decrypts to its end and matches its
SHA-256, that no blob is an orphan, and that the audit chain holds; counts
the items each newsroom key still covers. Prints a JSON report on stdout;
exits 0 when healthy, 1 with problems. Works online (admin socket) and
offline.

The report's audit.head names the audit log's last event. Keep it off the
box (it says nothing about what the log holds) and give it back with
--audit-head to a later verify: the log must still hold that event,
unchanged, or the report says audit_rollback (the log was cut, or the
database replaced by an older copy).`

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", verifyUsage, stderr)
	var f maintFlags
	f.register(fs)
	head := fs.String("audit-head", "", "audit.head of an earlier report: the log must still hold that event")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Given, the flag must hold a head: an empty value (a cron job's
	// "$(cat head)" of a missing file) would silently check nothing.
	given := false
	fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "audit-head" })
	if given {
		if _, _, err := store.ParseAuditHead(*head); err != nil {
			return &usageError{"--audit-head must be SEQ:HASH, as a verify report's audit.head gives it"}
		}
	}
	rep, err := decodeResult[store.VerifyReport](runMaint(ctx, f, adminsock.Request{Op: adminsock.OpVerify, AuditHead: *head}, stdout, stderr,
		func(ctx context.Context, m *maintainer, progress func(int, int)) (any, error) {
			return m.Verify(ctx, *head, progress)
		}))
	if err != nil {
		return err
	}
	if !rep.OK {
		return errors.New("verify found problems: see the report")
	}
	return nil
}
