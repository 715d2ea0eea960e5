package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
)

func TestKeygen(t *testing.T) {
	out, _, code := runCmd(t, nil, "keygen")
	key := strings.TrimSpace(out)
	if code != 0 || len(key) != 44 {
		t.Fatalf("keygen: %q exit %d", out, code)
	}
	if _, err := store.NewKeyring(key); err != nil {
		t.Fatalf("keygen printed an unusable key: %v", err)
	}
	out2, _, _ := runCmd(t, nil, "keygen")
	if out2 == out {
		t.Fatal("keygen printed the same key twice")
	}
}

// TestKeygen_Out: --out writes a new file of mode 0600 that serve accepts as
// --key-file, prints no key, and never overwrites an existing file.
func TestKeygen_Out(t *testing.T) {
	clearKeyEnv(t)
	path := filepath.Join(t.TempDir(), "files.key")
	out, errOut, code := runCmd(t, nil, "keygen", "--out", path)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v: want 0600", st.Mode(), err)
	}
	key, _ := os.ReadFile(path)
	kr, _, err := store.LoadKeyring(store.KeyConfig{File: path})
	if err != nil {
		t.Fatalf("the written key does not load as --key-file: %v", err)
	}
	if strings.Contains(errOut, strings.TrimSpace(string(key))) || strings.Contains(errOut, path) || !strings.Contains(errOut, kr.PrimaryID()) {
		t.Fatalf("stderr %q: want the key id, not the key or the path", errOut)
	}

	out, errOut, code = runCmd(t, nil, "keygen", "--out", path)
	if code != 1 || out != "" || !strings.Contains(errOut, "never overwritten") || strings.Contains(errOut, path) {
		t.Fatalf("existing file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if again, _ := os.ReadFile(path); string(again) != string(key) {
		t.Fatal("keygen --out overwrote an existing key")
	}
	if _, errOut, code := runCmd(t, nil, "keygen", "--out", filepath.Join(path+".missing", "k")); code != 1 || strings.Contains(errOut, path) {
		t.Fatalf("missing directory: exit %d, %q", code, errOut)
	}
}
