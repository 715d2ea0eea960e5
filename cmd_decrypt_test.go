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
	t.Run("ErrNoKey", func(t *testing.T) {
		if _, errOut, code := runCmd(t, bytes.NewReader(enc.Bytes()), "decrypt"); code != 2 || !strings.Contains(errOut, "PROJECT_FILES_KEY") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
	})
}
