package fstream

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
)

// TestSealer_KnownAnswer checks the token maker against the Fernet spec's
// generate.json (copied from fernet/fernet-go into testdata).
func TestSealer_KnownAnswer(t *testing.T) {
	raw, err := os.ReadFile("testdata/fernet-generate.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Token  string    `json:"token"`
		Now    time.Time `json:"now"`
		IV     []byte    `json:"iv"`
		Src    string    `json:"src"`
		Secret string    `json:"secret"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no known answers")
	}
	for _, c := range cases {
		k := fernet.MustDecodeKeys(c.Secret)[0]
		var iv [16]byte
		if copy(iv[:], c.IV) != 16 {
			t.Fatalf("iv has %d bytes", len(c.IV))
		}
		s := newSealer(k)
		got := s.lineAt([]byte(c.Src), iv, c.Now)
		if want := c.Token + "\n"; string(got) != want {
			t.Fatalf("token\n got %s\nwant %s", got, want)
		}
		// Reuse of the buffers must not change the next answer.
		s.lineAt(bytes.Repeat([]byte("x"), 5000), iv, c.Now)
		if got := s.lineAt([]byte(c.Src), iv, c.Now); string(got) != c.Token+"\n" {
			t.Fatal("second token differs after buffer reuse")
		}
	}
}

// TestWriter_NoChunkGarbage: a long stream allocates no chunk-sized buffer
// per chunk (only the few bytes of a CBC encrypter).
func TestWriter_NoChunkGarbage(t *testing.T) {
	var k fernet.Key
	k.Generate()
	w, err := NewWriter(discard{}, &k)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, ChunkSize)
	w.Write(chunk) // the first chunks size the buffers
	w.Write(chunk)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 20
	for range n {
		w.Write(chunk)
	}
	runtime.ReadMemStats(&after)
	if perChunk := (after.TotalAlloc - before.TotalAlloc) / n; perChunk > 1024 {
		t.Fatalf("%d bytes allocated per 1 MiB chunk, want at most 1 KiB", perChunk)
	}
	// The final data chunk and the padding reuse the same buffers.
	w.Write(chunk[:ChunkSize/3])
	runtime.ReadMemStats(&before)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if closeAlloc := after.TotalAlloc - before.TotalAlloc; closeAlloc > 3*1024 {
		t.Fatalf("Close allocated %d bytes, want at most 1 KiB per chunk", closeAlloc)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
