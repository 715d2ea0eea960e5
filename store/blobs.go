package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// blobDir is the encrypted blob directory: blobs/<ab>/<name>.bin, where
// <name> is a keyed hash (DESIGN §4), and blobs/tmp for writes in progress.
type blobDir struct {
	root string // <data>/blobs
	tmp  string // <data>/blobs/tmp
}

var blobName = regexp.MustCompile(`^[0-9a-f]{64}$`)

func openBlobDir(dataDir string) (*blobDir, error) {
	d := &blobDir{root: filepath.Join(dataDir, "blobs")}
	d.tmp = filepath.Join(d.root, "tmp")
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("data directory is not writable: %w", stripPaths(err))
	}
	// Prove writability now, not at the first upload.
	f, err := os.CreateTemp(d.tmp, "probe-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("data directory is not writable: %w", stripPaths(err))
	}
	f.Close()
	os.Remove(f.Name())
	return d, nil
}

func (d *blobDir) path(name string) string {
	return filepath.Join(d.root, name[:2], name+".bin")
}

// create returns a new temp file (0600) for a blob being written.
func (d *blobDir) create() (*os.File, error) {
	return os.CreateTemp(d.tmp, "up-*.tmp")
}

// commit makes the written temp file f the blob name: sync, close, rename,
// then sync the directories so the rename survives a power cut.
func (d *blobDir) commit(f *os.File, name string) error {
	if !blobName.MatchString(name) {
		return errors.New("store: bad blob name")
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	// Close, then rename: the file is complete before it gets its name.
	if err := f.Close(); err != nil {
		return err
	}
	sub := filepath.Join(d.root, name[:2])
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), d.path(name)); err != nil {
		return err
	}
	if err := syncDir(sub); err != nil {
		return err
	}
	return syncDir(d.root)
}

// open opens blob name for reading.
func (d *blobDir) open(name string) (*os.File, error) {
	if !blobName.MatchString(name) {
		return nil, errors.New("store: bad blob name")
	}
	return os.Open(d.path(name))
}

// remove overwrites blob name with random bytes (best effort: an SSD or a
// copy-on-write file system may keep the old blocks; the record key is gone
// by then anyway) and removes it. A missing blob is no error.
func (d *blobDir) remove(name string) error {
	if !blobName.MatchString(name) {
		return errors.New("store: bad blob name")
	}
	p := d.path(name)
	if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
		if st, err := f.Stat(); err == nil {
			io.CopyN(f, rand.Reader, st.Size())
			f.Sync()
		}
		f.Close()
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// list returns the names of all blobs. Anything not named like a blob is
// not tyst's and is left alone.
func (d *blobDir) list() ([]string, error) {
	subs, err := os.ReadDir(d.root)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, sub := range subs {
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(d.root, sub.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			name, ok := strings.CutSuffix(f.Name(), ".bin")
			if ok && f.Type().IsRegular() && blobName.MatchString(name) && name[:2] == sub.Name() {
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// modTime returns when blob name was written.
func (d *blobDir) modTime(name string) (time.Time, error) {
	if !blobName.MatchString(name) {
		return time.Time{}, errors.New("store: bad blob name")
	}
	st, err := os.Stat(d.path(name))
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}

// cleanTmpOlder removes temp files last written before t (uploads a crash
// or a lost client left), never one in progress.
func (d *blobDir) cleanTmpOlder(t time.Time, dryRun bool) (int, error) {
	files, err := os.ReadDir(d.tmp)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		info, err := f.Info()
		if err != nil || !f.Type().IsRegular() || !info.ModTime().Before(t) {
			continue
		}
		if dryRun {
			n++
		} else if err := os.Remove(filepath.Join(d.tmp, f.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

// cleanTmp removes every temp file (uploads a crash interrupted).
func (d *blobDir) cleanTmp() (int, error) {
	files, err := os.ReadDir(d.tmp)
	if err != nil {
		return 0, fmt.Errorf("store: read temp directory: %w", stripPaths(err))
	}
	n := 0
	for _, f := range files {
		if f.Type().IsRegular() {
			if err := os.Remove(filepath.Join(d.tmp, f.Name())); err == nil {
				n++
			}
		}
	}
	return n, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// removeBlob overwrites and removes blob name, unless a backup is copying
// blobs, in which case it waits for it.
func (db *DB) removeBlob(name string) error {
	db.removals.RLock()
	defer db.removals.RUnlock()
	return db.blobs.remove(name)
}
