package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"tyst/internal/testlog"
)

// runCmd runs the CLI in-process and returns stdout, stderr and the exit code.
func runCmd(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr testlog.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	err := run(t.Context(), args, stdin, &stdout, &stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(&stderr, "tyst:", err)
	}
	return stdout.String(), stderr.String(), exitCode(err)
}

// clearKeyEnv makes the test independent of the caller's environment.
func clearKeyEnv(t *testing.T) {
	for _, k := range []string{"PROJECT_FILES_KEY", "PROJECT_FILES_OLD_KEYS", "TYST_KEY_FILE", "TYST_LISTEN", "TYST_DATA_DIR", "TYST_MAX_UPLOAD_MB", "RECORDER_RETENTION_DAYS",
		"TYST_ALLOWED_SIGNERS", "TYST_FINGERPRINT"} {
		t.Setenv(k, "")
	}
}

func TestVersionAndHelp(t *testing.T) {
	clearKeyEnv(t)
	out, _, code := runCmd(t, nil, "version")
	if code != 0 || out != "tyst dev\n" {
		t.Fatalf("version: %q code %d", out, code)
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		if out, _, code := runCmd(t, nil, args...); code != 0 || !strings.Contains(out, "Commands:") {
			t.Fatalf("%v: exit %d, stdout %q", args, code, out)
		}
	}
	if _, errOut, code := runCmd(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: exit %d, %q", code, errOut)
	}
	if _, _, code := runCmd(t, nil); code != 2 {
		t.Fatalf("no command: exit %d, want 2", code)
	}
}

// commandFlags lists every subcommand and the flags its --help must show.
var commandFlags = []struct {
	cmd   []string
	flags []string
}{
	{[]string{"serve"}, []string{"-listen", "-data", "-key-file", "-max-upload-mb", "-retention-days", "-tls-cert", "-tls-key",
		"-allow-plain-http", "-secure-cookies", "-client-ip-header", "TYST_LISTEN", "TYST_DATA_DIR", "TYST_KEY_FILE"}},
	{[]string{"user", "add"}, []string{"-data", "-key-file", "-username", "-role", "-password-stdin"}},
	{[]string{"token", "create"}, []string{"-data", "-key-file", "-username", "-scope", "-label"}},
	{[]string{"purge"}, []string{"-data", "-key-file", "-dry-run", "-retention-days"}},
	{[]string{"verify"}, []string{"-data", "-key-file"}},
	{[]string{"rekey"}, []string{"-data", "-key-file"}},
	{[]string{"backup"}, []string{"-data", "-key-file", "-out"}},
	{[]string{"signing-key"}, []string{"-data", "-key-file"}},
	{[]string{"keygen"}, []string{"-out"}},
	{[]string{"decrypt"}, []string{"-key-file", "-out"}},
	{[]string{"version"}, nil},
}

// TestHelp: every subcommand's --help (and "tyst help <command>") exits 0
// and lists the command's flags; a command without flags shows no empty
// flags heading.
func TestHelp(t *testing.T) {
	clearKeyEnv(t)
	for _, c := range commandFlags {
		name := strings.Join(c.cmd, " ")
		for _, args := range [][]string{
			append(append([]string{}, c.cmd...), "--help"),
			append(append([]string{}, c.cmd...), "-h"),
			{"help", c.cmd[0]},
			{c.cmd[0], "--help"},
		} {
			out, errOut, code := runCmd(t, nil, args...)
			if code != 0 || out != "" || !strings.Contains(errOut, "Usage: tyst "+name) {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
			for _, f := range c.flags {
				if !strings.Contains(errOut, f) {
					t.Fatalf("%v does not list %s:\n%s", args, f, errOut)
				}
			}
			if hasHeading := strings.Contains(errOut, "Flags"); hasHeading != (len(c.flags) > 0) {
				t.Fatalf("%v: a Flags heading %v, flags %v:\n%s", args, hasHeading, c.flags, errOut)
			}
		}
	}
}

// TestFlagErrors: a mistake on the command line exits 2 and is said once,
// naming the flag but not the value given.
func TestFlagErrors(t *testing.T) {
	clearKeyEnv(t)
	for _, c := range commandFlags {
		args := append(append([]string{}, c.cmd...), "--no-such-flag")
		out, errOut, code := runCmd(t, nil, args...)
		if code != 2 || out != "" || strings.Count(errOut, "flag provided but not defined: -no-such-flag") != 1 {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q: want the error once, exit 2", args, code, out, errOut)
		}
		if strings.Contains(errOut, "Usage:") {
			t.Fatalf("%v: the whole help buries the error:\n%s", args, errOut)
		}
	}
	for _, args := range [][]string{
		{"serve", "--max-upload-mb", "SECRET-value"},
		{"serve", "--allow-plain-http=SECRET-value"},
		{"decrypt", "SECRET-value"},
		{"keygen", "SECRET-value"},
		{"serve", "--=SECRET-value"},
	} {
		_, errOut, code := runCmd(t, nil, args...)
		if code != 2 || strings.Contains(errOut, "SECRET") || strings.Count(errOut, "tyst:") != 1 {
			t.Fatalf("%v: exit %d, stderr %q: want exit 2, one error, no value", args, code, errOut)
		}
	}
	if _, errOut, code := runCmd(t, nil, "serve", "--max-upload-mb", "x"); !strings.Contains(errOut, "-max-upload-mb") || code != 2 {
		t.Fatalf("bad value: exit %d, %q does not name the flag", code, errOut)
	}
}
