package stream

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/fernet/fernet-go"

	"tyst/internal/shred"
	"tyst/stream/spool"
)

// rekeyExt marks the copy of a spool that rekeySpool writes; a start
// erases one a crash left (its spool is still whole under the old name).
const rekeyExt = ".rekey"

// spoolMeta reads the metadata chunk of the spool at path.
func (s *Server) spoolMeta(path string) (meta, error) {
	var md meta
	f, err := os.Open(path)
	if err != nil {
		return md, err
	}
	defer f.Close()
	first, err := spool.NewReader(f, s.cfg.Keys.All()).Next()
	if err != nil || !first.Meta {
		return md, errors.New("stream: spool has no readable metadata chunk")
	}
	return md, json.Unmarshal(first.Data, &md)
}

// rekeySpool writes the spool at path again under the primary newsroom
// key when any of its chunks is under an older one, and reports whether
// it did. It runs when the server opens, before any stream can write:
// after a rotation (the new key primary, the old one among the old keys)
// every spool is under the new key from the first start on, so a rekey
// that completes, and the old key's removal after it, leave no spool that
// nothing opens. The copy is synced and renamed over the old file; a crash
// leaves one or the other, both readable while the old key is configured.
func (s *Server) rekeySpool(path string) (bool, error) {
	primary := []*fernet.Key{s.cfg.Keys.Primary()}
	underPrimary, err := countChunks(path, primary)
	if err != nil {
		return false, err
	}
	all, err := countChunks(path, s.cfg.Keys.All())
	if err != nil || all == underPrimary {
		return false, err
	}
	in, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer in.Close()
	r := spool.NewReader(in, s.cfg.Keys.All())
	first, err := r.Next()
	if err != nil {
		return false, errors.New("stream: spool has no metadata chunk")
	}
	tmp := path + rekeyExt
	os.Remove(tmp)
	out, err := spool.Create(tmp, s.codec, first.Data, spool.Grow1MiB)
	if err != nil {
		return false, err
	}
	fail := func(err error) (bool, error) {
		out.Close()
		os.Remove(tmp)
		return false, err
	}
	for {
		c, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if c.Meta {
			err = out.AppendMeta(c.Data)
		} else {
			err = out.Append(c.Data)
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return false, err
	}
	// The old file's blocks are overwritten once the copy has replaced it
	// (through a descriptor opened before the rename), so what the old key
	// opens does not linger in freed blocks; a crash between the rename and
	// the overwrite leaves them, best effort as on every delete.
	old, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		os.Remove(tmp)
		return false, err
	}
	defer old.Close()
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, err
	}
	if st, err := old.Stat(); err == nil {
		if shred.Data(old, st.Size()) == nil {
			old.Sync()
		}
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return true, err
	}
	defer d.Close()
	return true, d.Sync()
}

// countChunks counts the valid chunks at the start of the spool at path
// that keys open.
func countChunks(path string, keys []*fernet.Key) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := spool.NewReader(f, keys)
	n := 0
	for {
		if _, err := r.Next(); errors.Is(err, io.EOF) {
			return n, nil
		} else if err != nil {
			return n, err
		}
		n++
	}
}
