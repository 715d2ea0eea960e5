package store_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"tyst/store"
)

// mustKeyFile writes key into a new file of mode perm and returns its path.
func mustKeyFile(tb testing.TB, key string, perm fs.FileMode) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "files.key")
	if err := os.WriteFile(path, []byte(key+"\n"), perm); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // the umask may have cut perm
		tb.Fatal(err)
	}
	return path
}

// wantKeyErr checks that err mentions want and shows neither secret nor a
// path under dir.
func wantKeyErr(tb testing.TB, err error, want, secret, dir string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("accepted; want an error naming %q", want)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) {
		tb.Fatalf("error %q does not mention %q", msg, want)
	}
	if (secret != "" && strings.Contains(msg, secret)) || (dir != "" && strings.Contains(msg, dir)) {
		tb.Fatalf("error shows the key or a path: %q", msg)
	}
}

func TestLoadKeyring_KeyFile(t *testing.T) {
	key := store.GenerateKey()
	want, _ := store.KeyID(key)

	t.Run("OK", func(t *testing.T) {
		for _, perm := range []fs.FileMode{0o600, 0o400} {
			kr, src, err := store.LoadKeyring(store.KeyConfig{File: mustKeyFile(t, key, perm), Env: store.GenerateKey()})
			if err != nil || src != store.KeyFromFile || kr.PrimaryID() != want {
				t.Fatalf("mode %04o: src=%v err=%v", perm, src, err)
			}
		}
	})
	t.Run("ErrOpenToOthers", func(t *testing.T) {
		for _, perm := range []fs.FileMode{0o640, 0o604, 0o644, 0o620, 0o660} {
			path := mustKeyFile(t, key, perm)
			_, _, err := store.LoadKeyring(store.KeyConfig{File: path})
			wantKeyErr(t, err, "chmod 600", key, filepath.Dir(path))
			wantKeyErr(t, err, "--key-file", key, filepath.Dir(path))
		}
	})
	t.Run("ErrDirectory", func(t *testing.T) {
		dir := t.TempDir()
		_, _, err := store.LoadKeyring(store.KeyConfig{File: dir})
		wantKeyErr(t, err, "not a regular file", "", dir)
	})
	t.Run("ErrFIFO", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { _, _, err := store.LoadKeyring(store.KeyConfig{File: path}); errc <- err }()
		select {
		case err := <-errc:
			wantKeyErr(t, err, "not a regular file", "", filepath.Dir(path))
		case <-time.After(5 * time.Second):
			t.Fatal("reading a FIFO waits for a writer")
		}
	})
	t.Run("ErrDevZero", func(t *testing.T) {
		start := time.Now()
		_, _, err := store.LoadKeyring(store.KeyConfig{File: "/dev/zero"})
		wantKeyErr(t, err, "not a regular file", "", "/dev")
		if d := time.Since(start); d > time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("ErrHuge", func(t *testing.T) {
		// A sparse 1 GiB regular file: read whole, it would cost 1 GiB.
		path := filepath.Join(t.TempDir(), "big")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(key + "\n")
		if err := f.Truncate(1 << 30); err != nil {
			t.Fatal(err)
		}
		f.Close()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err = store.LoadKeyring(store.KeyConfig{File: path})
		runtime.ReadMemStats(&after)
		wantKeyErr(t, err, "too large", key, filepath.Dir(path))
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Fatalf("allocated %d bytes for a refused key file", n)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		path := mustKeyFile(t, "not-a-key-SECRETVALUE", 0o600)
		_, _, err := store.LoadKeyring(store.KeyConfig{File: path})
		wantKeyErr(t, err, "--key-file", "SECRETVALUE", filepath.Dir(path))
	})
}

func TestLoadKeyring_Generate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new", "data")
		kr, src, err := store.LoadKeyring(store.KeyConfig{DataDir: dir})
		if err != nil || src != store.KeyFromDataDir {
			t.Fatalf("src=%v err=%v", src, err)
		}
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("data dir: %v %v", st, err)
		}
		if id, err := store.GeneratedKeyID(dir); err != nil || id != kr.PrimaryID() {
			t.Fatalf("GeneratedKeyID = %q, %v; want %q", id, err, kr.PrimaryID())
		}
	})
	t.Run("OKEmptyDataDir", func(t *testing.T) {
		// What a failed first start leaves: an empty database file and
		// empty blob directories hold no data.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "tyst.db"), nil, 0o600)
		os.MkdirAll(filepath.Join(dir, "blobs", "tmp"), 0o700)
		os.MkdirAll(filepath.Join(dir, "blobs", "ab"), 0o700)
		if _, _, err := store.LoadKeyring(store.KeyConfig{DataDir: dir}); err != nil {
			t.Fatal(err)
		}
	})
	refuse := func(t *testing.T, dir string) {
		t.Helper()
		_, _, err := store.LoadKeyring(store.KeyConfig{DataDir: dir})
		wantKeyErr(t, err, "--key-file (TYST_KEY_FILE) or PROJECT_FILES_KEY", "", dir)
		wantKeyErr(t, err, "holds data", "", dir)
		if _, err := os.Stat(filepath.Join(dir, "files.key")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a key was generated beside existing data: %v", err)
		}
	}
	t.Run("ErrDatabaseExists", func(t *testing.T) {
		dir := t.TempDir() // a store written under a key the operator did not give now
		kr, _ := store.NewKeyring(store.GenerateKey())
		db, err := store.Open(dir, store.Options{Keys: kr})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		refuse(t, dir)
	})
	t.Run("ErrBlobsExist", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "blobs", "3f"), 0o700)
		os.WriteFile(filepath.Join(dir, "blobs", "3f", strings.Repeat("3f", 32)+".bin"), []byte("x"), 0o600)
		refuse(t, dir)
	})
	t.Run("ErrGeneratedOpenToOthers", func(t *testing.T) {
		dir := t.TempDir()
		if _, _, err := store.LoadKeyring(store.KeyConfig{DataDir: dir}); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, "files.key"), 0o644)
		_, _, err := store.LoadKeyring(store.KeyConfig{DataDir: dir})
		wantKeyErr(t, err, "chmod 600", "", dir)
		wantKeyErr(t, err, "files.key in the data directory", "", dir)
		if _, err := store.GeneratedKeyID(dir); err == nil {
			t.Fatal("GeneratedKeyID read a key open to others")
		}
	})
	t.Run("ErrNoGenerate", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "d")
		_, _, err := store.LoadKeyring(store.KeyConfig{DataDir: dir, NoGenerate: true})
		wantKeyErr(t, err, "no newsroom key", "", dir)
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("data directory made: %v", err)
		}
	})
}

// TestLoadKeyring_MalformedWritesNothing: a bad key stops before the data
// directory or a generated key exists.
func TestLoadKeyring_MalformedWritesNothing(t *testing.T) {
	secret := "SECRET-not-a-key"
	for name, cfg := range map[string]store.KeyConfig{
		"Env":        {Env: secret},
		"OldKeys":    {OldKeys: store.GenerateKey() + "," + secret},
		"OldWithEnv": {Env: store.GenerateKey(), OldKeys: secret},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			_, _, err := store.LoadKeyring(cfg)
			wantKeyErr(t, err, "PROJECT_FILES_", secret, cfg.DataDir)
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("data directory made: %v", err)
			}
		})
	}
}

func TestCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.key")
	key, err := store.CreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	kr, _, err := store.LoadKeyring(store.KeyConfig{File: path})
	if id, _ := store.KeyID(key); err != nil || kr.PrimaryID() != id {
		t.Fatalf("the written key does not load back: %v", err)
	}
	if _, err := store.CreateKeyFile(path); !errors.Is(err, store.ErrKeyFileExists) {
		t.Fatalf("second create: %v, want ErrKeyFileExists", err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != key {
		t.Fatal("the existing key was overwritten")
	}
	if _, err := store.CreateKeyFile(filepath.Join(path+".d", "x")); err == nil || strings.Contains(err.Error(), path) {
		t.Fatalf("missing directory: %v", err)
	}
}

func TestKeyID(t *testing.T) {
	key := store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	if id, err := store.KeyID(key + "\n"); err != nil || id != kr.PrimaryID() {
		t.Fatalf("KeyID = %q, %v; want the keyring's %q", id, err, kr.PrimaryID())
	}
	if _, err := store.KeyID("SECRET"); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("malformed key: %v", err)
	}
	if id, err := store.GeneratedKeyID(t.TempDir()); id != "" || err != nil {
		t.Fatalf("no files.key: %q, %v", id, err)
	}
}
