package dirsync_test

import (
	"os"
	"path/filepath"
	"testing"

	"tyst/internal/dirsync"
)

// TestSync: a directory syncs; a missing one is an error.
func TestSync(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dirsync.Sync(dir); err != nil {
		t.Fatal(err)
	}
	if err := dirsync.Sync(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("Sync of a missing directory: %v", err)
	}
}
