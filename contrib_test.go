package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// unitFile is the systemd unit the README's Production section installs.
const unitFile = "contrib/tyst.service"

// TestSystemdUnit checks contrib/tyst.service as far as a machine without a
// running systemd allows: the settings the README relies on are there,
// systemd-analyze verify accepts the unit, and its ExecStart line, run with
// a credential as systemd would pass it, starts tyst and stops cleanly on
// SIGTERM.
func TestSystemdUnit(t *testing.T) {
	clearKeyEnv(t)
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	for k, want := range map[string]string{
		"User": "tyst", "Group": "tyst", "StateDirectory": "tyst", "StateDirectoryMode": "0700",
		"LoadCredential": "files.key:/etc/tyst/files.key", "Restart": "on-failure", "LimitCORE": "0",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "UMask": "0077",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", // TCP and the admin socket
	} {
		if got := unit[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", k, got, want)
		}
	}
	if len(unit["ExecStart"]) != 1 {
		t.Fatalf("ExecStart=%v", unit["ExecStart"])
	}
	exec0 := strings.Fields(unit["ExecStart"][0])
	if exec0[0] != "/usr/local/bin/tyst" || !strings.Contains(unit["ExecStart"][0], "--key-file %d/files.key") ||
		!strings.Contains(unit["ExecStart"][0], "--data /var/lib/tyst") {
		t.Fatalf("ExecStart=%s: want /usr/local/bin/tyst serve with the credential and the state directory", unit["ExecStart"][0])
	}
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}

	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			if os.Getenv("TYST_E2E_REQUIRED") == "1" {
				t.Fatal("systemd-analyze is not installed (Debian package systemd), and TYST_E2E_REQUIRED=1")
			}
			t.Skip("systemd-analyze is not installed (Debian package systemd; .ci/run installs it)")
		}
		// verify checks that ExecStart's binary exists: point it at the one
		// just built, and change nothing else.
		dir := t.TempDir()
		local := strings.Replace(string(b), "/usr/local/bin/tyst", bin, 1)
		if err := os.WriteFile(filepath.Join(dir, "tyst.service"), []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "tyst.service")).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
	t.Run("ExecStart", func(t *testing.T) {
		// What systemd does: the key lands 0400 in a credentials directory,
		// and the state directory exists empty.
		creds, state := t.TempDir(), filepath.Join(t.TempDir(), "tyst")
		os.Mkdir(state, 0o700)
		if _, errOut, code := runCmd(t, nil, "keygen", "--out", filepath.Join(creds, "files.key")); code != 0 {
			t.Fatal(errOut)
		}
		os.Chmod(filepath.Join(creds, "files.key"), 0o400)
		args := exec0[1:]
		for i, a := range args {
			switch {
			case strings.HasPrefix(a, "%d/"):
				args[i] = filepath.Join(creds, strings.TrimPrefix(a, "%d/"))
			case a == "/var/lib/tyst":
				args[i] = state
			case a == "127.0.0.1:8080":
				args[i] = "127.0.0.1:0"
			}
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		line := startServing(t, cmd)
		if line["key_source"] != "file" {
			t.Fatalf("serving with key source %v, want the credential file", line["key_source"])
		}
		if _, err := os.Stat(filepath.Join(state, "files.key")); err == nil {
			t.Fatal("a key was generated in the state directory")
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("serve after SIGTERM: %v, want exit 0", err)
		}
	})
}
