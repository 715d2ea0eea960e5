package client

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/fernet/fernet-go"
)

// TestBuffer_ShredsSegments: with a buffer key kept on disk
// (--spool-key-file), a removed segment is overwritten first, so a second
// name of the file (as freed blocks of an SD card) holds nothing the key
// opens; with the key in memory only the segment is just removed (nothing
// opens it once the process ends), which the same check tells apart.
func TestBuffer_ShredsSegments(t *testing.T) {
	for _, shredded := range []bool{true, false} {
		var key fernet.Key
		if err := key.Generate(); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		b, err := newBuffer(filepath.Join(dir, "buf"), &key, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b.shred = shredded
		pcm := bytes.Repeat([]byte("PCM-CANARY"), 3200)
		if _, err := b.append(pcm); err != nil {
			t.Fatal(err)
		}
		seg := b.segs[0].path
		link := filepath.Join(dir, "second-name")
		if err := os.Link(seg, link); err != nil {
			t.Fatal(err)
		}
		b.close()
		if _, err := os.Stat(seg); !os.IsNotExist(err) {
			t.Fatalf("shred %v: the segment is still there (%v)", shredded, err)
		}
		after, _ := os.ReadFile(link)
		opened := false
		for _, line := range bytes.Split(after, []byte("\n")) {
			if plain := fernet.VerifyAndDecrypt(line, 0, []*fernet.Key{&key}); bytes.Contains(plain, []byte("PCM-CANARY")) {
				opened = true
			}
		}
		if opened == shredded {
			t.Fatalf("shred %v: the key opens the removed segment's old bytes: %v", shredded, opened)
		}
	}
}
