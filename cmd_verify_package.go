package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"tyst/store/export"
)

// maxAllowedSignersFile bounds the allowed_signers file verify-package reads.
const maxAllowedSignersFile = 1 << 20

// verifyMemoryLimit is the Go runtime's soft memory limit while a package is
// verified, unless GOMEMLIMIT sets one. Decrypting audio.bin allocates about
// 2.5 MiB of short-lived garbage per MiB of audio (fernet-go makes new
// buffers for every token); the live heap stays under 10 MiB, but on a busy
// machine the collector can fall behind and let the heap overshoot (a peak
// RSS of 130 MiB was seen once in ten runs on 600 MB of audio). The limit
// makes it collect harder before that: ten runs then stayed at 37-45 MiB.
const verifyMemoryLimit = 48 << 20

// runVerifyPackage checks an export package offline, without a database
// (DESIGN §12): signature, every hash, and with the newsroom key the audio.
// The JSON report goes to stdout; the exit status is 0 when every check
// made passed, 1 when one failed, 2 for a usage error.
func runVerifyPackage(args []string, stdout, stderr io.Writer) error {
	const synopsis = "verify-package FILE.zip [--allowed-signers F] [--key-file F]"
	flags := newFlagSet("verify-package", synopsis, stderr)
	allowedFile := flags.String("allowed-signers", envOr("TYST_ALLOWED_SIGNERS", ""),
		"the newsroom's published allowed_signers file (TYST_ALLOWED_SIGNERS); without it the package's own key is used, which proves nothing alone")
	keyFile := flags.String("key-file", envOr("TYST_KEY_FILE", ""),
		"file holding the newsroom key, to decrypt audio.bin in memory and check it (TYST_KEY_FILE); else PROJECT_FILES_KEY when set; PROJECT_FILES_OLD_KEYS are tried too")
	path, err := parseOneArg(flags, args)
	if err != nil {
		return err
	}

	var opts export.VerifyOptions
	if *allowedFile != "" {
		if opts.AllowedSigners, err = readAllowedSigners(*allowedFile); err != nil {
			return err
		}
	}
	if *keyFile != "" || os.Getenv("PROJECT_FILES_KEY") != "" {
		keys, _, err := loadKeys(*keyFile, "", false)
		if err != nil {
			return err
		}
		opts.Keys = keys.All()
	}

	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("package file cannot be opened: %w", withoutPath(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("package file cannot be read: %w", withoutPath(err))
	}
	if !info.Mode().IsRegular() {
		return errors.New("package file is not a regular file")
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(verifyMemoryLimit))
	}
	rep, verr := export.Verify(f, info.Size(), opts)
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", out); err != nil {
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stderr, "tyst: note:", n)
	}
	if verr != nil {
		return fmt.Errorf("package does not verify: %s", rep.Problems[0])
	}
	return nil
}

// parseOneArg parses flags before and after the one positional argument
// and returns it.
func parseOneArg(flags *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := flags.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", &usageError{err.Error()}
		}
		if flags.NArg() == 0 {
			break
		}
		pos = append(pos, flags.Arg(0))
		args = flags.Args()[1:]
	}
	if len(pos) != 1 {
		return "", &usageError{"verify-package needs exactly one package file"}
	}
	return pos[0], nil
}

// readAllowedSigners reads the --allowed-signers file; errors name the flag,
// never the path.
func readAllowedSigners(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("allowed signers file (--allowed-signers) cannot be read: %w", withoutPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAllowedSignersFile+1))
	if err != nil {
		return nil, fmt.Errorf("allowed signers file (--allowed-signers) cannot be read: %w", withoutPath(err))
	}
	if len(b) > maxAllowedSignersFile {
		return nil, errors.New("allowed signers file (--allowed-signers) is larger than 1 MiB")
	}
	return b, nil
}
