// Command tyst stores interview audio encrypted, serves it to reporters in a
// browser and destroys it on request or when its retention time is up. This
// file parses subcommands and flags and wires the packages; nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"tyst/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tyst:", err)
	}
	os.Exit(exitCode(err)) // the only place that picks an exit status
}

const usage = `tyst keeps interview audio encrypted and serves it to reporters.

Usage: tyst <command> [flags]

Commands:
  serve     run the server (default 127.0.0.1:8080, data in ./tyst-data)
  user      add an account: user add --username U --role R --password-stdin
  token     create an API token: token create --username U [--scope stream]
  keygen    print a new newsroom key (Fernet, base64url)
  stream    stream live PCM from stdin into a record (arecord ... | tyst stream)
  decrypt   decrypt a file of tyst's stream format (stdin to stdout)
  version   print the version

Run "tyst <command> --help" for a command's flags.
`

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stderr)
	case "user":
		return runUser(ctx, rest, stdin, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "keygen":
		return runKeygen(rest, stdout, stderr)
	case "decrypt":
		return runDecrypt(rest, stdin, stdout, stderr)
	case "stream":
		return runStream(ctx, rest, stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "tyst", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tyst %s\n\nFlags (each also an environment variable where named):\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// loadKeys builds the newsroom keyring from --key-file, else
// PROJECT_FILES_KEY, else <dataDir>/files.key (generated only when generate
// is set), with PROJECT_FILES_OLD_KEYS for unwrapping. Every command that
// needs the key reads the settings here.
func loadKeys(keyFile, dataDir string, generate bool) (*store.Keyring, store.KeySource, error) {
	return store.LoadKeyring(store.KeyConfig{
		Env: os.Getenv("PROJECT_FILES_KEY"), File: keyFile,
		OldKeys: os.Getenv("PROJECT_FILES_OLD_KEYS"), DataDir: dataDir,
		NoGenerate: !generate,
	})
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
