package main

import (
	"context"
	"errors"
	"io"

	"tyst/adminsock"
	"tyst/store"
)

const verifyUsage = `verify [--data DIR] [--key-file F]

Checks the data directory: bbolt's consistency, that every record key
unwraps, that every blob exists, decrypts to its end and matches its
SHA-256, that no blob is an orphan, and that the audit chain holds; counts
the items each newsroom key still covers. Prints a JSON report on stdout;
exits 0 when healthy, 1 with problems. Works online (admin socket) and
offline.`

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", verifyUsage, stderr)
	var f maintFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep, err := decodeResult[store.VerifyReport](runMaint(ctx, f, adminsock.Request{Op: adminsock.OpVerify}, stdout, stderr,
		func(ctx context.Context, m *maintainer, progress func(int, int)) (any, error) {
			return m.Verify(ctx, progress)
		}))
	if err != nil {
		return err
	}
	if !rep.OK {
		return errors.New("verify found problems: see the report")
	}
	return nil
}
