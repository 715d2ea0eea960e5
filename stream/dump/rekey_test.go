package dump_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
	"tyst/stream/dump"
)

// TestRekey: after a rotation, an encrypted dump under the old key is
// encrypted again under the new one, whole; a plaintext dump, a dump
// written to a moment ago and a file not named like a dump are left alone;
// a second run finds nothing to do.
func TestRekey(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	dir := filepath.Join(t.TempDir(), dump.DirName)
	clk := &clock{time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	d, _ := mustDumper(t, dump.Config{Dir: dir, Key: oldKey, Now: clk.now})
	pcm := bytes.Repeat([]byte("pcm-"), 400_000) // 1.6 MB: two chunks
	f, err := d.Open(streamA, "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(pcm)
	f.Close()
	clk.t = clk.t.Add(time.Second)
	p, _ := mustDumper(t, dump.Config{Dir: dir, Plaintext: true, Now: clk.now})
	pf, err := p.Open(streamB, "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	pf.Write([]byte("plain pcm"))
	pf.Close()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a dump"), 0o600)
	names := listDir(t, dir)

	// Just written: left for the next run.
	if n, err := dump.Rekey(dir, newKey, []*fernet.Key{newKey, oldKey}, time.Now().Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("rekey of fresh dumps: %d %v", n, err)
	}
	n, err := dump.Rekey(dir, newKey, []*fernet.Key{newKey, oldKey}, time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("rekey: %d %v, want 1", n, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, names[0]))
	got, err := io.ReadAll(fstream.NewReader(bytes.NewReader(raw), []*fernet.Key{newKey}))
	if err != nil || !bytes.Equal(got, pcm) {
		t.Fatalf("the rekeyed dump under the new key alone: %d bytes, %v", len(got), err)
	}
	if plain, _ := os.ReadFile(filepath.Join(dir, names[1])); string(plain) != "plain pcm" {
		t.Fatalf("the plaintext dump changed: %q", plain)
	}
	if after := listDir(t, dir); len(after) != len(names) {
		t.Fatalf("files %v, want %v (no temp file left)", after, names)
	}
	if n, err := dump.Rekey(dir, newKey, []*fernet.Key{newKey, oldKey}, time.Now().Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("second run: %d %v", n, err)
	}
}
