package store_test

import (
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// copyDir copies the data directory src into dst, as someone who seizes a
// disk would.
func copyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// editBolt edits the JSON rows of bucket in the closed database file path,
// as someone with write access to the disk but without the key would. The
// rows are keyed by their 8-byte id.
func editBolt(tb testing.TB, path, bucket string, edit func(rows map[uint64]map[string]any)) {
	tb.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		rows := map[uint64]map[string]any{}
		if err := b.ForEach(func(k, v []byte) error {
			var row map[string]any
			if err := json.Unmarshal(v, &row); err != nil {
				return err
			}
			rows[binary.BigEndian.Uint64(k)] = row
			return nil
		}); err != nil {
			return err
		}
		edit(rows)
		for id, row := range rows {
			raw, err := json.Marshal(row)
			if err != nil {
				return err
			}
			k := make([]byte, 8)
			binary.BigEndian.PutUint64(k, id)
			if err := b.Put(k, raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
