package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"tyst/store"
)

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints nothing itself: parseFlags prints the help when asked for, and
// main prints an error once. synopsis follows "Usage: tyst "; it may go on
// with a blank line and a description.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tyst %s\n", synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			return
		}
		fmt.Fprint(stderr, "\nFlags (each also an environment variable where named):\n")
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args and refuses positional arguments. On -h or
// --help it prints the flag set's help and returns flag.ErrHelp (exit 0);
// a mistake is a usageError (exit 2) that names the flag, never its value.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {} // the flag package would print it on every error
	err := fs.Parse(args)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		usage()
		return err
	}
	if err != nil {
		return &usageError{fmt.Sprintf("%s: %s (tyst %s --help lists its flags)", fs.Name(), flagErrorText(err), fs.Name())}
	}
	if fs.NArg() > 0 {
		// Not echoed: a stray argument may be a file name or a secret.
		return &usageError{fmt.Sprintf("%s: unexpected argument: it takes flags only (tyst %s --help lists them)", fs.Name(), fs.Name())}
	}
	return nil
}

// flagErrorText is the flag package's error without the value it quotes
// ("invalid value "…" for flag -x: parse error"): a value may be a path or
// a secret.
func flagErrorText(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"invalid value ", "invalid boolean value "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			for _, sep := range []string{" for flag -", " for -"} {
				if i := strings.LastIndex(rest, sep); i >= 0 {
					return strings.TrimSuffix(prefix, " ") + rest[i:]
				}
			}
			return strings.TrimSuffix(prefix, " ")
		}
	}
	if strings.HasPrefix(msg, "bad flag syntax") {
		return "bad flag syntax"
	}
	return msg
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
