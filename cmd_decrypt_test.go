package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
	"tyst/store/fstream"
)

func TestDecrypt(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	plain := bytes.Repeat([]byte("audio bytes "), 200_000) // 2.4 MB: three chunks
	var enc bytes.Buffer
	w, err := fstream.NewWriter(&enc, kr.Primary())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()

	t.Run("Env", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", key)
		out, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt")
		if code != 0 || out != string(plain) {
			t.Fatalf("exit %d, equal=%v, stderr %q", code, out == string(plain), errOut)
		}
	})
	t.Run("KeyFile", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", store.GenerateKey()) // the flag wins
		kf := filepath.Join(t.TempDir(), "key")
		os.WriteFile(kf, []byte(key+"\n"), 0o600)
		out, _, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt", "--key-file", kf)
		if code != 0 || out != string(plain) {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("OldKey", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
		t.Setenv("PROJECT_FILES_OLD_KEYS", store.GenerateKey()+","+key)
		if out, _, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt"); code != 0 || out != string(plain) {
			t.Fatalf("exit %d", code)
		}
	})
	for name, c := range map[string]struct {
		key string
		in  []byte
	}{
		"WrongKey":  {store.GenerateKey(), enc.Bytes()},
		"Truncated": {key, enc.Bytes()[:enc.Len()-100]},
		"NotStream": {key, []byte("RIFF....WAVEfmt plain audio\n")},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			t.Setenv("PROJECT_FILES_KEY", c.key)
			_, errOut, code := runCmd(t, bytes.NewReader(c.in), "decrypt")
			if code != 1 || !strings.Contains(errOut, "damaged, incomplete, or not encrypted under the given key") {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
	t.Run("Out", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", key)
		dir := t.TempDir()
		path := filepath.Join(dir, "interview.wav")
		os.WriteFile(path, []byte("an older file, replaced"), 0o644)
		out, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt", "--out", path)
		if code != 0 || out != "" {
			t.Fatalf("exit %d, stdout %d bytes, stderr %q", code, len(out), errOut)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("--out holds %d bytes, want the %d of the plaintext (%v)", len(got), len(plain), err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Fatalf("--out mode %v, want 0600", st.Mode().Perm())
		}
		if names := dirNames(t, dir); len(names) != 1 {
			t.Fatalf("files left beside --out: %v", names)
		}
	})
	for name, c := range map[string]struct {
		key string
		in  []byte
	}{
		"WrongKey":       {store.GenerateKey(), enc.Bytes()},
		"Truncated":      {key, enc.Bytes()[:enc.Len()-100]},
		"CutAfterAChunk": {key, enc.Bytes()[:bytes.IndexByte(enc.Bytes(), '\n')+1]},
	} {
		t.Run("ErrOut"+name, func(t *testing.T) {
			t.Setenv("PROJECT_FILES_KEY", c.key)
			dir := t.TempDir()
			path := filepath.Join(dir, "interview.wav")
			_, errOut, code := runCmd(t, bytes.NewReader(c.in), "decrypt", "--out", path)
			if code != 1 || !strings.Contains(errOut, "damaged") || !strings.Contains(errOut, "--out was not written") || strings.Contains(errOut, dir) {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("damaged input left %v", names)
			}
			// An existing FILE stays as it was.
			os.WriteFile(path, []byte("keep me"), 0o600)
			runCmd(t, bytes.NewReader(c.in), "decrypt", "--out", path)
			if got, _ := os.ReadFile(path); string(got) != "keep me" || len(dirNames(t, dir)) != 1 {
				t.Fatalf("damaged input changed the existing --out file: %q", got)
			}
		})
	}
	t.Run("ErrStdoutIncomplete", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", key)
		out, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()[:enc.Len()-100]), "decrypt")
		if code != 1 || len(out) == 0 || !strings.Contains(errOut, "incomplete and must be discarded") {
			t.Fatalf("exit %d, %d bytes out, stderr %q: want a warning that the output is incomplete", code, len(out), errOut)
		}
	})
	t.Run("ErrOutIsADirectory", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", key)
		dir := t.TempDir()
		if _, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt", "--out", dir); code != 2 || strings.Contains(errOut, dir) {
			t.Fatalf("exit %d, %q", code, errOut)
		}
	})
	t.Run("ErrNoKey", func(t *testing.T) {
		if _, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt"); code != 2 || !strings.Contains(errOut, "PROJECT_FILES_KEY") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
	})
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
