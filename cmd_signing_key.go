package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"tyst/adminsock"
)

const signingKeyUsage = `signing-key [--data DIR] [--key-file F]

Prints the newsroom's signing key as an allowed_signers line (for
ssh-keygen -Y verify) and its fingerprint, as ssh-keygen -l prints it.
Publish the fingerprint: receivers of export packages and receipts trust
it, not the key inside a package.`

func runSigningKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("signing-key", signingKeyUsage, stderr)
	var f maintFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var info signingKeyInfo
	resp, err := adminsock.Call(f.dataDir, adminsock.Request{Op: adminsock.OpSigningKey})
	switch {
	case errors.Is(err, adminsock.ErrNoServer):
		db, err := openOffline(f.dataDir, f.keyFile, false, stderr)
		if err != nil {
			return err
		}
		k := db.SigningKey()
		info = signingKeyInfo{Fingerprint: k.Fingerprint(), AllowedSigners: k.AllowedSigners()}
		if err := db.Close(); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(resp.Result, &info); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stdout, "%s\n%s\n", info.AllowedSigners, info.Fingerprint)
	return err
}
