package main

import (
	"fmt"
	"io"
)

// runVersion handles `tyst version`: the version set at build time.
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version\n\nPrints the version tyst was built as (make build sets it from git describe).", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "tyst", version)
	return err
}
