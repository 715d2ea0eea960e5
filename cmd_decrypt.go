package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"tyst/internal/ctxio"
	"tyst/store/fstream"
)

const decryptUsage = `decrypt [--key-file F] [--out FILE] < IN

Decrypts a file of tyst's stream format (a blob, a debug dump, later
audio.bin of an export package) under the newsroom key; PROJECT_FILES_OLD_KEYS
are tried too. With --out, FILE appears only once the whole input has
checked out. On stdout, a failure says that the output is incomplete.`

// runDecrypt handles `tyst decrypt`: stdin to stdout, or to --out through a
// temp file beside it, renamed only when every chunk checked out, so a
// damaged or cut input never leaves a FILE that looks whole.
func runDecrypt(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("decrypt", decryptUsage, stderr)
	keyFile := fs.String("key-file", envOr("TYST_KEY_FILE", ""), "file holding the newsroom key (TYST_KEY_FILE); else PROJECT_FILES_KEY")
	out := fs.String("out", "", "write the plaintext to this file (mode 0600, replaced only when the whole input checked out) instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyFile == "" && os.Getenv("PROJECT_FILES_KEY") == "" {
		return &usageError{"decrypt needs a key: set PROJECT_FILES_KEY or give --key-file"}
	}
	if *out != "" {
		if st, err := os.Stat(*out); err == nil && !st.Mode().IsRegular() {
			return &usageError{"decrypt: --out must name a file, not a directory or device"}
		}
	}
	keys, _, err := loadKeys(*keyFile, "", false)
	if err != nil {
		return err
	}
	src := fstream.NewReader(ctxio.Reader(ctx, stdin), keys.All()) // Ctrl-C ends a decrypt (and its temp file)
	if *out != "" {
		return decryptToFile(*out, src)
	}
	n, err := io.Copy(stdout, src)
	if err != nil && n > 0 {
		return fmt.Errorf("%w: the output written so far (%d bytes) is incomplete and must be discarded", decryptError(err), n)
	}
	return decryptError(err)
}

// decryptToFile writes src to a temp file (0600) in path's directory and
// renames it to path once src has been read to its verified end.
func decryptToFile(path string, src io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tyst-decrypt-*.tmp")
	if err != nil {
		return fmt.Errorf("decrypt: the directory of --out cannot be written: %w", withoutPath(err))
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("%w: --out was not written", decryptError(err))
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the new name survives a power cut
		d.Sync()
		d.Close()
	}
	return nil
}

// decryptError says what went wrong without a path.
func decryptError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fstream.ErrCorrupt):
		return errors.New("input is damaged, incomplete, or not encrypted under the given key")
	case errors.Is(err, context.Canceled):
		return errors.New("decrypt interrupted")
	}
	return fmt.Errorf("decrypt: %w", withoutPath(err))
}

// withoutPath drops the path of a *fs.PathError or *os.LinkError: messages
// name no path.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}
