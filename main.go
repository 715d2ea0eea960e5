// Command tyst stores interview audio encrypted, serves it to reporters in a
// browser and destroys it on request or when its retention time is up. This
// file dispatches the subcommands, each in its cmd_<name>.go, and picks the
// exit status; nothing else.
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
  serve           run the server (default 127.0.0.1:8080, data in ./tyst-data)
  user            add an account: user add --username U --role R --password-stdin
  token           create an API token: token create --username U [--scope stream]
  purge           delete what has outlived its retention time (also runs in serve)
  verify          check every blob, key and the audit chain
  rekey           seal everything under the primary newsroom key after a rotation
  backup          write a consistent copy of the data directory
  signing-key     print the newsroom signing key's allowed_signers line and fingerprint
  stream          stream live PCM from stdin into a record (arecord ... | tyst stream)
  verify-package  check an export package offline: verify-package FILE.zip --fingerprint SHA256:…
  keygen          make a new newsroom key (Fernet, base64url): stdout or --out FILE
  decrypt         decrypt a file of tyst's stream format: stdin to stdout or --out FILE
  version         print the version

Run "tyst <command> --help" or "tyst help <command>" for a command's flags.
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
		return runDecrypt(ctx, rest, stdin, stdout, stderr)
	case "purge":
		return runPurge(ctx, rest, stdout, stderr)
	case "verify":
		return runVerify(ctx, rest, stdout, stderr)
	case "rekey":
		return runRekey(ctx, rest, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, stdout, stderr)
	case "signing-key":
		return runSigningKey(ctx, rest, stdout, stderr)
	case "verify-package":
		return runVerifyPackage(rest, stdout, stderr)
	case "stream":
		return runStream(ctx, rest, stdin, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "--help":
		if len(rest) > 0 && cmd == "help" && rest[0] != "help" {
			return run(ctx, []string{rest[0], "--help"}, stdin, stdout, stderr)
		}
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
	case errors.As(err, new(uncheckedError)):
		return 3 // verify-package: intact, signer not checked
	}
	return 1
}
