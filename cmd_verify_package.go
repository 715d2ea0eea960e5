package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strings"

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

// fingerprintPattern is a signing key fingerprint as ssh-keygen and
// `tyst signing-key` print it: SHA-256, unpadded base64.
var fingerprintPattern = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)

// runVerifyPackage checks an export package offline, without a database
// (DESIGN §12): signature, every hash, and with the newsroom key the audio.
// The JSON report goes to stdout. The exit status is 0 when the package is
// intact and signed by the newsroom's key as a trust anchor the receiver got
// out of band says (--allowed-signers, --fingerprint), 1 when a check
// failed (a signing key that is not the anchor's included), 2 for a usage
// error, and 3 when the package is intact but no anchor was given, so its
// signer was not checked (uncheckedError).
func runVerifyPackage(args []string, stdout, stderr io.Writer) error {
	const synopsis = "verify-package FILE.zip (--allowed-signers F | --fingerprint SHA256:…) [--key-file F]\n\n" +
		"Exit status: 0 intact and signed by the newsroom's key; 1 changed, damaged or signed\n" +
		"by another key; 2 usage; 3 intact, but the signer was not checked (give\n" +
		"--allowed-signers or --fingerprint, from the newsroom, not from the package)."
	flags := newFlagSet("verify-package", synopsis, stderr)
	allowedFile := flags.String("allowed-signers", envOr("TYST_ALLOWED_SIGNERS", ""),
		"the newsroom's published allowed_signers file (TYST_ALLOWED_SIGNERS): the package must be signed by a key it admits")
	fingerprint := flags.String("fingerprint", envOr("TYST_FINGERPRINT", ""),
		"the newsroom signing key's published fingerprint, SHA256:… as tyst signing-key prints it (TYST_FINGERPRINT): the package must be signed by that key")
	keyFile := flags.String("key-file", envOr("TYST_KEY_FILE", ""),
		"file holding the newsroom key, to decrypt audio.bin in memory and check it (TYST_KEY_FILE); else PROJECT_FILES_KEY when set; PROJECT_FILES_OLD_KEYS are tried too")
	path, err := parseOneArg(flags, args)
	if err != nil {
		return err
	}

	var opts export.VerifyOptions
	if fp := strings.TrimSpace(*fingerprint); fp != "" {
		if !fingerprintPattern.MatchString(fp) {
			return &usageError{"--fingerprint must be SHA256: and 43 base64 characters, as tyst signing-key prints it"}
		}
		opts.Fingerprint = fp
	}
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
	switch {
	case errors.Is(verr, export.ErrUnchecked):
		return uncheckedError{}
	case verr != nil:
		return fmt.Errorf("package does not verify: %s", rep.Problems[0])
	}
	return nil
}

// uncheckedError is an intact package whose signer was not checked, for
// want of a trust anchor: exit status 3.
type uncheckedError struct{}

func (uncheckedError) Error() string {
	return "package intact, but its signer was not checked: anyone can sign a changed package with a key of their own " +
		"and put that key inside. Give --allowed-signers with the newsroom's published allowed_signers file, or " +
		"--fingerprint with the signing key fingerprint the newsroom publishes (SHA256:…)"
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
