package main

import (
	"context"
	"io"
	"path/filepath"

	"tyst/adminsock"
)

const backupUsage = `backup [--data DIR] --out DIR2 [--key-file F]

Writes a consistent copy of the data directory into DIR2 (new or empty)
while the server goes on serving: the database as of one moment and every
blob and export package it references. The copy holds no key: keep the
newsroom key separately. tyst verify --data DIR2 and tyst serve --data DIR2
take the same key settings as the original. Prints JSON stats on stdout.`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", backupUsage, stderr)
	var f maintFlags
	f.register(fs)
	out := fs.String("out", "", "the directory to write the copy into: new or empty")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return &usageError{"--out is required: the directory to write the copy into"}
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		return &usageError{"--out cannot be made absolute"}
	}
	_, err = runMaint(ctx, f, adminsock.Request{Op: adminsock.OpBackup, Out: abs}, stdout, stderr,
		func(ctx context.Context, m *maintainer, progress func(int, int)) (any, error) {
			return m.Backup(ctx, abs, progress)
		})
	return err
}
