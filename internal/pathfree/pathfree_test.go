package pathfree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "canary-SOURCE-NAME")
	_, openErr := os.Open(dir)
	linkErr := os.Rename(dir, dir+"-2")
	for _, err := range []error{openErr, linkErr, fmt.Errorf("backup: %w", openErr)} {
		if err == nil || !strings.Contains(err.Error(), "canary-SOURCE-NAME") {
			t.Fatalf("want an error that names the path, got %v", err)
		}
		got := Strip(err)
		if strings.Contains(got.Error(), "canary") {
			t.Errorf("Strip(%q) = %q: still names the path", err, got)
		}
		if !errors.Is(got, fs.ErrNotExist) {
			t.Errorf("Strip(%q) = %q: lost its cause", err, got)
		}
	}
	plain := errors.New("no path here")
	if Strip(plain) != plain {
		t.Error("an error without a path must come back as it is")
	}
}
