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
	for _, k := range []string{"PROJECT_FILES_KEY", "PROJECT_FILES_OLD_KEYS", "TYST_KEY_FILE", "TYST_LISTEN", "TYST_DATA_DIR", "TYST_MAX_UPLOAD_MB", "RECORDER_RETENTION_DAYS"} {
		t.Setenv(k, "")
	}
}

func TestVersionAndHelp(t *testing.T) {
	clearKeyEnv(t)
	out, _, code := runCmd(t, nil, "version")
	if code != 0 || out != "tyst dev\n" {
		t.Fatalf("version: %q code %d", out, code)
	}
	_, errOut, code := runCmd(t, nil, "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help exit %d", code)
	}
	for _, flagName := range []string{"-listen", "-data", "-key-file", "-max-upload-mb", "TYST_LISTEN", "TYST_DATA_DIR"} {
		if !strings.Contains(errOut, flagName) {
			t.Fatalf("serve --help does not mention %s:\n%s", flagName, errOut)
		}
	}
	for _, cmd := range []string{"keygen", "decrypt"} {
		if _, _, code := runCmd(t, nil, cmd, "--help"); code != 0 {
			t.Fatalf("%s --help exit %d", cmd, code)
		}
	}
	if _, errOut, code := runCmd(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: exit %d, %q", code, errOut)
	}
	if _, _, code := runCmd(t, nil); code != 2 {
		t.Fatalf("no command: exit %d, want 2", code)
	}
	if _, _, code := runCmd(t, nil, "serve", "--no-such-flag"); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
}
