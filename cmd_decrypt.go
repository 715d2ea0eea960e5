package main

import (
	"errors"
	"io"
	"os"

	"tyst/store/fstream"
)

func runDecrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("decrypt [--key-file F] < IN > OUT", "decrypt [--key-file F] < IN > OUT", stderr)
	keyFile := fs.String("key-file", envOr("TYST_KEY_FILE", ""), "file holding the newsroom key (TYST_KEY_FILE); else PROJECT_FILES_KEY; PROJECT_FILES_OLD_KEYS are tried too")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyFile == "" && os.Getenv("PROJECT_FILES_KEY") == "" {
		return &usageError{"decrypt needs a key: set PROJECT_FILES_KEY or give --key-file"}
	}
	keys, _, err := loadKeys(*keyFile, "", false)
	if err != nil {
		return err
	}
	_, err = io.Copy(stdout, fstream.NewReader(stdin, keys.All()))
	if errors.Is(err, fstream.ErrCorrupt) {
		return errors.New("input is damaged, incomplete, or not encrypted under the given key")
	}
	return err
}
