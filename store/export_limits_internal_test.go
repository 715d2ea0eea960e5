package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"tyst/store/fstream"
	"tyst/store/media"
)

// TestEstimatePackage: the size an export checks against the quota and the
// disk's reserve before it writes is never below the package's real size on
// disk, and above it by at most one chunk's line, for audio on both sides
// of the chunk boundaries, without audio, and with a long transcript, in
// both modes.
func TestEstimatePackage(t *testing.T) {
	kr, _ := NewKeyring(GenerateKey())
	dir := t.TempDir()
	var db *DB
	var est int64 // the estimate of the export running: what it reserved
	fault := func(point string) error {
		if point == FaultExportWritten {
			db.exportBudget.mu.Lock()
			est = db.exportBudget.all
			db.exportBudget.mu.Unlock()
		}
		return nil
	}
	db, err := Open(dir, Options{Keys: kr, ExportLimits: &ExportLimits{}, Fault: fault})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	segs := make([]Segment, 2000)
	for i := range segs {
		segs[i] = Segment{StartMS: int64(i) * 1000, EndMS: int64(i)*1000 + 900, Speaker: "A", Text: fmt.Sprintf("line %d of a long interview, said slowly and at length", i)}
	}
	for _, size := range []int{0, 45, 1<<20 - 300, 1<<20 + 300, 3<<20 + 12345} {
		for _, long := range []bool{false, true} {
			rec, err := db.CreateRecord(ctx, NewRecord{Title: "t"})
			if err != nil {
				t.Fatal(err)
			}
			if size > 0 {
				if _, err := db.AttachAudio(ctx, rec.ID, NewAudio{Body: bytes.NewReader(pcmWAV(size))}); err != nil {
					t.Fatal(err)
				}
			}
			if long {
				if err := db.PutSegments(ctx, rec.ID, segs); err != nil {
					t.Fatal(err)
				}
			}
			for _, mode := range []string{ExportEncrypted, ExportDecrypted} {
				res, err := db.Export(ctx, rec.ID, ExportRequest{Confirm: true, Reason: "a reason long enough", Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				st, err := os.Stat(filepath.Join(dir, "exports", exportObjectName(res.PackageID)+".zip.enc"))
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() > est || est > st.Size()+fstream.LineSize {
					t.Errorf("audio %d B, long transcript %v, %s: estimate %d, package %d", size, long, mode, est, st.Size())
				}
			}
		}
	}
}

// pcmWAV is a mono 16 kHz 16-bit WAV file of n bytes in all.
func pcmWAV(n int) []byte {
	b := make([]byte, n)
	copy(b, media.WAVHeader(int64(n-media.WAVHeaderSize), 16000, 1))
	for i := 44; i < n; i++ {
		b[i] = byte(i * 7)
	}
	return b
}
