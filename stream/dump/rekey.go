package dump

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
)

// Rekey encrypts the encrypted dumps in dir that an old newsroom key covers
// again under primary (DESIGN §10: rekey carries the debug dumps) and
// returns how many. It reads a dump with any of all, writes the new one to
// a temp file beside it and renames it over the old one, so an interrupted
// rekey leaves each dump under one key or the other. Dumps written to
// after olderThan (still open) are left for the next run; plaintext dumps,
// other files and symlinks are left alone. A dump that a crash left without
// its last chunk is encrypted again as far as it goes.
func Rekey(dir string, primary *fernet.Key, all []*fernet.Key, olderThan time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dump: read directory: %w", pathFree(err))
	}
	n := 0
	for _, de := range entries {
		if !de.Type().IsRegular() || !namePattern.MatchString(de.Name()) {
			continue
		}
		info, err := de.Info()
		if err != nil || !info.ModTime().Before(olderThan) {
			continue
		}
		done, err := rekeyFile(filepath.Join(dir, de.Name()), primary, all)
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	return n, nil
}

// rekeyFile re-encrypts one dump; false when it needs nothing (already
// under primary, or not encrypted under any configured key).
func rekeyFile(path string, primary *fernet.Key, all []*fernet.Key) (bool, error) {
	if opens(path, []*fernet.Key{primary}) || !opens(path, all) {
		return false, nil
	}
	in, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("dump: %w", pathFree(err))
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rekey-*.tmp")
	if err != nil {
		return false, fmt.Errorf("dump: %w", pathFree(err))
	}
	defer os.Remove(tmp.Name()) // gone after the rename
	w, err := fstream.NewWriter(tmp, primary)
	if err == nil {
		_, err = io.Copy(w, fstream.NewReader(in, all))
		if errors.Is(err, fstream.ErrCorrupt) {
			err = nil // a crashed dump: keep what it holds
		}
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return false, fmt.Errorf("dump: re-encrypt: %w", pathFree(err))
	}
	return true, nil
}

// opens reports whether the first chunk of the file at path decrypts under
// keys.
func opens(path string, keys []*fernet.Key) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [1]byte
	_, err = fstream.NewReader(bufio.NewReader(f), keys).Read(b[:])
	return err == nil || err == io.EOF
}
