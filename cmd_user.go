package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"tyst/adminsock"
	"tyst/store"
)

const (
	userUsage  = "user add --data DIR --username U --role admin|editor|viewer --password-stdin [--key-file F]"
	tokenUsage = "token create --data DIR --username U [--scope stream] [--label TEXT] [--key-file F]"
	// offlineLockTimeout is how long a command waits for the database when
	// no server answered on the admin socket.
	offlineLockTimeout = 2 * time.Second
	maxPasswordLine    = 4 << 10
)

// runUser handles `tyst user add`: it asks a running server over the admin
// socket, or opens the database itself. The password comes from stdin only.
// Nothing is printed on stdout; stderr gets the new user's id.
func runUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("user add", userUsage, stderr)
	dataDir := fs.String("data", envOr("TYST_DATA_DIR", "./tyst-data"), "data directory (TYST_DATA_DIR)")
	keyFile := fs.String("key-file", envOr("TYST_KEY_FILE", ""), "file holding the newsroom key (TYST_KEY_FILE), when no server runs; else PROJECT_FILES_KEY; else <data>/files.key")
	username := fs.String("username", "", "the new account's name: 2 to 64 of a-z, 0-9, dot, dash, underscore")
	role := fs.String("role", "", "admin, editor or viewer")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin (required: passwords never go on the command line)")
	if err := checkSubcommand("user", "add", fs, args); err != nil {
		return err
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case *username == "":
		return &usageError{"--username is required"}
	case !store.RoleAtLeast(*role, store.RoleViewer):
		return &usageError{"--role must be admin, editor or viewer"}
	case !*fromStdin:
		return &usageError{"give --password-stdin and the password on stdin: passwords never go on the command line"}
	}
	password, err := readPassword(stdin)
	if err != nil {
		return err
	}

	req := adminsock.Request{Op: adminsock.OpUserAdd, Username: *username, Role: *role, Password: password}
	resp, err := adminsock.Call(*dataDir, req)
	if errors.Is(err, adminsock.ErrNoServer) {
		resp.UserID, err = offline(*dataDir, *keyFile, true, stderr, func(db *store.DB) (uint64, error) {
			u, err := db.CreateUser(ctx, store.NewUser{Username: *username, Role: *role, Password: password})
			if err != nil {
				return 0, err
			}
			return u.ID, nil
		})
	}
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	_, err = fmt.Fprintf(stderr, "user created (id %d)%s\n", resp.UserID, usernameNote(*username))
	return err
}

// usernameNote says how the store normalised the username the operator
// typed, without repeating it: tyst prints no usernames.
func usernameNote(typed string) string {
	trimmed := strings.TrimSpace(typed)
	lower := strings.ToLower(trimmed)
	switch {
	case trimmed != typed && lower != trimmed:
		return "; the username was stored lower-cased and without its surrounding spaces (logins ignore case)"
	case lower != trimmed:
		return "; the username was stored lower-cased (logins ignore case)"
	case trimmed != typed:
		return "; the username was stored without its surrounding spaces"
	}
	return ""
}

// checkSubcommand checks that args start with cmd's only subcommand sub.
// For "tyst cmd --help" it prints fs's help, the subcommand's flags.
func checkSubcommand(cmd, sub string, fs *flag.FlagSet, args []string) error {
	switch {
	case len(args) == 0:
		return &usageError{fmt.Sprintf("%s: no subcommand given: the command is tyst %s %s (tyst %s --help lists its flags)", cmd, cmd, sub, cmd)}
	case args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help":
		fs.Usage()
		return flag.ErrHelp
	case args[0] != sub:
		return &usageError{fmt.Sprintf("%s: unknown subcommand: the command is tyst %s %s (tyst %s --help lists its flags)", cmd, cmd, sub, cmd)}
	}
	return nil
}

// readPassword returns the first line of stdin without its line ending.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(stdin, maxPasswordLine)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("password cannot be read from stdin: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", &usageError{"--password-stdin: no password on the first line of stdin"}
	}
	return line, nil
}

// offline opens the database itself, because no server answered on the
// admin socket, and runs do on it. create says whether a missing data
// directory may be created (user add may set up a new one; token create
// needs an existing one).
func offline(dataDir, keyFile string, create bool, stderr io.Writer, do func(*store.DB) (uint64, error)) (uint64, error) {
	db, err := openOffline(dataDir, keyFile, create, stderr)
	if err != nil {
		return 0, err
	}
	id, err := do(db)
	if cerr := db.Close(); err == nil && cerr != nil {
		return 0, fmt.Errorf("database cannot be closed: %w", cerr)
	}
	return id, err
}
