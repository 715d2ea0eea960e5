package main

import (
	"fmt"
	"io"

	"tyst/store"
)

func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", "keygen", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, store.GenerateKey())
	return err
}
