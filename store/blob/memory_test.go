package blob_test

import (
	"testing"
	"time"

	"tyst/store/blob"
)

// TestMemory_Clock: ModTime and CleanTemp follow the injected clock; a
// write's age counts from its last Write.
func TestMemory_Clock(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	m := blob.NewMemory(blob.MemoryOptions{Names: blobNames, Now: func() time.Time { return now }})
	stale, _ := m.Create()
	stale.Write([]byte("crash leftover"))
	busy, _ := m.Create()
	now = t0.Add(2 * time.Hour)
	busy.Write([]byte("still writing"))
	if n, err := m.CleanTemp(t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("CleanTemp removed %d (err %v), want the stale write", n, err)
	}
	if err := stale.Commit(blobName(1)); err == nil {
		t.Fatal("the cleaned write committed")
	}
	if err := busy.Commit(blobName(2)); err != nil {
		t.Fatal(err)
	}
	info, err := m.Stat(blobName(2))
	if err != nil || !info.ModTime.Equal(now) {
		t.Fatalf("Stat=%+v, %v; want ModTime %v", info, err, now)
	}
}

// TestMemory_DefaultNames: without a pattern, the rules of every store still
// hold.
func TestMemory_DefaultNames(t *testing.T) {
	m := blob.NewMemory(blob.MemoryOptions{})
	w, _ := m.Create()
	if err := w.Commit("a-name"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../a-name", "A-NAME", "a/b"} {
		if _, err := m.Stat(bad); err != blob.ErrBadName {
			t.Fatalf("Stat(%q) err=%v, want ErrBadName", bad, err)
		}
	}
}
