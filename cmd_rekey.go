package main

import (
	"context"
	"errors"
	"io"

	"tyst/adminsock"
	"tyst/store"
)

const rekeyUsage = `rekey [--data DIR] [--key-file F]

After a rotation (the new key as --key-file or PROJECT_FILES_KEY, the old
one in PROJECT_FILES_OLD_KEYS), seals every record key, account, session,
token, receipt, audit event and the signing key again under the new key,
and encrypts export packages and debug dumps again. Blobs are not touched.
Safe to interrupt: run it again to finish. Prints JSON stats, with the
items each key id still covers, on stdout; exits 1 when items remain that
no configured key opens.`

func runRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rekey", rekeyUsage, stderr)
	var f maintFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, err := decodeResult[store.RekeyStats](runMaint(ctx, f, adminsock.Request{Op: adminsock.OpRekey}, stdout, stderr,
		func(ctx context.Context, m *maintainer, progress func(int, int)) (any, error) {
			return m.Rekey(ctx, progress)
		}))
	if err != nil {
		return err
	}
	if st.Skipped > 0 {
		return errors.New("some items are sealed under a key that is not configured: add it to PROJECT_FILES_OLD_KEYS and run rekey again")
	}
	return nil
}
