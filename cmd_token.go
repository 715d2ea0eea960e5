package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"tyst/adminsock"
	"tyst/store"
)

// runToken handles `tyst token create`: it asks a running server over the
// admin socket, or opens the database itself. Only the token goes to
// stdout, so scripts can use $(tyst token create ...).
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token create", tokenUsage, stderr)
	dataDir := fs.String("data", envOr("TYST_DATA_DIR", "./tyst-data"), "data directory (TYST_DATA_DIR)")
	keyFile := fs.String("key-file", envOr("TYST_KEY_FILE", ""), "file holding the newsroom key (TYST_KEY_FILE), when no server runs; else PROJECT_FILES_KEY; else <data>/files.key")
	username := fs.String("username", "", "the account the token acts as")
	scope := fs.String("scope", "", `"stream" limits the token to creating records, and uploading and streaming into the records it created; empty gives the account's full role`)
	label := fs.String("label", "", `a name for the token, shown in lists, e.g. "field box 3"`)
	if err := checkSubcommand("token", "create", fs, args); err != nil {
		return err
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case *username == "":
		return &usageError{"--username is required"}
	case *scope != "" && *scope != store.ScopeStream:
		return &usageError{"--scope must be stream or empty"}
	}

	req := adminsock.Request{Op: adminsock.OpTokenCreate, Username: *username, Scope: *scope, Label: *label}
	resp, err := adminsock.Call(*dataDir, req)
	if errors.Is(err, adminsock.ErrNoServer) {
		resp.TokenID, err = offline(*dataDir, *keyFile, false, stderr, func(db *store.DB) (uint64, error) {
			secret, t, err := db.CreateToken(ctx, *username, *scope, *label)
			if err != nil {
				return 0, err
			}
			resp.Token = secret
			return t.ID, nil
		})
	}
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	_, err = fmt.Fprintln(stdout, resp.Token)
	return err
}
