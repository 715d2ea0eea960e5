package main

import (
	"errors"
	"fmt"
	"io"

	"tyst/store"
)

const keygenUsage = `keygen [--out FILE]

Makes a new newsroom key (Fernet: 32 random bytes, base64url) and prints it
on stdout, or writes it to a new FILE with mode 0600. Keep a copy offline:
without the key the data cannot be read.`

// runKeygen handles `tyst keygen`.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", keygenUsage, stderr)
	out := fs.String("out", "", "write the key to this new file with mode 0600 instead of stdout; an existing file is never overwritten")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		_, err := fmt.Fprintln(stdout, store.GenerateKey())
		return err
	}
	key, err := store.CreateKeyFile(*out)
	if errors.Is(err, store.ErrKeyFileExists) {
		return errors.New("keygen: --out names a file that exists already: a key is never overwritten (remove the file first if you mean to)")
	}
	if err != nil {
		return fmt.Errorf("keygen: --out cannot be written: %w", err)
	}
	id, err := store.KeyID(key)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stderr, "key written (mode 0600), key id %s\n", id)
	return err
}
