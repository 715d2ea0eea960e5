package dump_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/internal/testlog"
	"tyst/store/fstream"
	"tyst/stream/dump"
)

const (
	streamA = "0123456789abcdef0123456789abcdef"
	streamB = "fedcba9876543210fedcba9876543210"
)

// clock is a settable fake clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func mustKey(tb testing.TB) *fernet.Key {
	tb.Helper()
	var k fernet.Key
	if err := k.Generate(); err != nil {
		tb.Fatal(err)
	}
	return &k
}

func mustDumper(tb testing.TB, cfg dump.Config) (*dump.Dumper, *testlog.Buffer) {
	tb.Helper()
	logs := &testlog.Buffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(tb.TempDir(), dump.DirName)
	}
	if cfg.Key == nil {
		cfg.Key = mustKey(tb) // required: it keys the source tags
	}
	d, err := dump.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return d, logs
}

func listDir(tb testing.TB, dir string) []string {
	tb.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestDump_EncryptedRoundTrip(t *testing.T) {
	key := mustKey(t)
	clk := &clock{time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	d, logs := mustDumper(t, dump.Config{Key: key, Now: clk.now})
	f, err := d.Open(streamA, "desk-1", 7)
	if err != nil {
		t.Fatal(err)
	}
	pcm := bytes.Repeat([]byte("PCMCANARY-"), 300_000) // 3 MB: several chunks
	for p := pcm; len(p) > 0; p = p[min(len(p), 4000):] {
		if err := f.Write(p[:min(len(p), 4000)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dir := d.Dir()
	names := listDir(t, dir)
	want := streamA + "_" + d.SourceTag("desk-1") + "_" + dump.RecordTag(key, 7) + "_20260304T050607Z.pcm"
	if len(names) != 1 || names[0] != want {
		t.Fatalf("files %v, want [%s]", names, want)
	}
	raw, err := os.ReadFile(filepath.Join(dir, want))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("PCMCANARY")) {
		t.Fatal("plaintext PCM in an encrypted dump")
	}
	got, err := io.ReadAll(fstream.NewReader(bytes.NewReader(raw), []*fernet.Key{key}))
	if err != nil || !bytes.Equal(got, pcm) {
		t.Fatalf("decrypted %d bytes (%v), want the %d written", len(got), err, len(pcm))
	}
	for _, p := range []string{dir, filepath.Join(dir, want)} {
		fi, _ := os.Stat(p)
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Fatalf("%s has mode %v", filepath.Base(p), perm)
		}
	}
	if strings.Contains(logs.String(), "desk-1") || strings.Contains(logs.String(), streamA) {
		t.Fatalf("the log names a source or file:\n%s", logs)
	}
	if on, files, size := d.Status(); !on || files != 1 || size != int64(len(raw)) {
		t.Fatalf("Status() = %v %d %d", on, files, size)
	}
}

func TestDump_Plaintext(t *testing.T) {
	d, _ := mustDumper(t, dump.Config{Plaintext: true})
	f, err := d.Open(streamA, "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("raw pcm"))
	f.Close()
	names := listDir(t, d.Dir())
	b, _ := os.ReadFile(filepath.Join(d.Dir(), names[0]))
	if string(b) != "raw pcm" {
		t.Fatalf("plaintext dump holds %q", b)
	}
}

// writeDump creates a closed dump file named for stream id at time at, of
// size bytes, with its modification time at.
func writeDump(tb testing.TB, dir, id string, at time.Time, size int) string {
	tb.Helper()
	name := fmt.Sprintf("%s_mic_%s.pcm", id, at.UTC().Format("20060102T150405Z"))
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chtimes(p, at, at); err != nil {
		tb.Fatal(err)
	}
	return name
}

func hexID(i int) string { return fmt.Sprintf("%032x", i) }

// TestDump_Cleanup checks the three limits with a fake clock, oldest first,
// and that only tyst's own regular files are touched.
func TestDump_Cleanup(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	t.Run("ByAge", func(t *testing.T) {
		d, _ := mustDumper(t, dump.Config{Plaintext: true, MaxAge: 24 * time.Hour})
		os.MkdirAll(d.Dir(), 0o700)
		old := writeDump(t, d.Dir(), hexID(1), now.Add(-25*time.Hour), 10)
		keep := writeDump(t, d.Dir(), hexID(2), now.Add(-23*time.Hour), 10)
		n, err := d.Cleanup(now)
		if err != nil || n != 1 {
			t.Fatalf("Cleanup = %d, %v", n, err)
		}
		if names := listDir(t, d.Dir()); len(names) != 1 || names[0] != keep {
			t.Fatalf("left %v, want only %s (removed %s)", names, keep, old)
		}
	})
	t.Run("ByCount", func(t *testing.T) {
		d, _ := mustDumper(t, dump.Config{Plaintext: true, MaxFiles: 3})
		os.MkdirAll(d.Dir(), 0o700)
		var names []string
		for i := range 5 {
			names = append(names, writeDump(t, d.Dir(), hexID(i), now.Add(time.Duration(i-10)*time.Minute), 10))
		}
		if n, err := d.Cleanup(now); err != nil || n != 2 {
			t.Fatalf("Cleanup = %d, %v", n, err)
		}
		if got := listDir(t, d.Dir()); strings.Join(got, ",") != strings.Join(names[2:], ",") {
			t.Fatalf("left %v, want the 3 newest %v", got, names[2:])
		}
	})
	t.Run("BySize", func(t *testing.T) {
		d, _ := mustDumper(t, dump.Config{Plaintext: true, MaxBytes: 2500})
		os.MkdirAll(d.Dir(), 0o700)
		var names []string
		for i := range 4 {
			names = append(names, writeDump(t, d.Dir(), hexID(i), now.Add(time.Duration(i-10)*time.Minute), 1000))
		}
		if n, err := d.Cleanup(now); err != nil || n != 2 {
			t.Fatalf("Cleanup = %d, %v", n, err)
		}
		if got := listDir(t, d.Dir()); strings.Join(got, ",") != strings.Join(names[2:], ",") {
			t.Fatalf("left %v, want the 2 newest %v", got, names[2:])
		}
	})
	t.Run("OnlyOwnRegularFiles", func(t *testing.T) {
		d, _ := mustDumper(t, dump.Config{Plaintext: true, MaxFiles: 1, MaxAge: time.Hour})
		os.MkdirAll(d.Dir(), 0o700)
		outside := filepath.Join(t.TempDir(), "precious.pcm")
		os.WriteFile(outside, []byte("keep me"), 0o600)
		old := now.Add(-48 * time.Hour)
		link := fmt.Sprintf("%s_mic_%s.pcm", hexID(9), old.Format("20060102T150405Z"))
		if err := os.Symlink(outside, filepath.Join(d.Dir(), link)); err != nil {
			t.Fatal(err)
		}
		foreign := filepath.Join(d.Dir(), "notes.txt")
		os.WriteFile(foreign, []byte("x"), 0o600)
		os.Chtimes(foreign, old, old)
		a := writeDump(t, d.Dir(), hexID(1), old, 10)
		if n, err := d.Cleanup(now); err != nil || n != 1 {
			t.Fatalf("Cleanup = %d, %v", n, err)
		}
		if _, err := os.Stat(filepath.Join(d.Dir(), a)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("the old dump is still there")
		}
		for _, p := range []string{outside, foreign, filepath.Join(d.Dir(), link)} {
			if _, err := os.Lstat(p); err != nil {
				t.Fatalf("%s was removed: cleanup touched a file that is not its own", filepath.Base(p))
			}
		}
	})
	t.Run("OpenDumpsStay", func(t *testing.T) {
		clk := &clock{now}
		d, _ := mustDumper(t, dump.Config{Plaintext: true, MaxFiles: 1, Now: clk.now})
		f, err := d.Open(streamA, "mic", 7)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		clk.t = now.Add(time.Second)
		g, err := d.Open(streamB, "mic", 7) // cleans: two files, limit one; the first is open
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if got := listDir(t, d.Dir()); len(got) != 2 {
			t.Fatalf("files %v: an open dump was removed", got)
		}
	})
}

// TestDump_CleanupRunsOnOpen: opening a dump cleans the directory first.
func TestDump_CleanupRunsOnOpen(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	clk := &clock{now}
	d, _ := mustDumper(t, dump.Config{Plaintext: true, Now: clk.now})
	os.MkdirAll(d.Dir(), 0o700)
	writeDump(t, d.Dir(), hexID(1), now.Add(-30*time.Hour), 10)
	f, err := d.Open(streamA, "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := listDir(t, d.Dir()); len(got) != 1 || !strings.HasPrefix(got[0], streamA) {
		t.Fatalf("files %v: the day-old dump was not cleaned on open", got)
	}
}

// TestDump_RemoveFails: a file that cannot be removed is logged, and the
// rest are still cleaned.
func TestDump_RemoveFails(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	d, logs := mustDumper(t, dump.Config{Plaintext: true, MaxFiles: 2})
	os.MkdirAll(d.Dir(), 0o700)
	stuck := writeDump(t, d.Dir(), hexID(1), now.Add(-3*time.Minute), 10)
	gone := writeDump(t, d.Dir(), hexID(2), now.Add(-2*time.Minute), 10)
	keep := writeDump(t, d.Dir(), hexID(3), now.Add(-1*time.Minute), 10)
	dump.FailRemove(d, stuck, &fs.PathError{Op: "unlinkat", Path: "/data/debug-audio/" + stuck, Err: syscall.EPERM})
	n, err := d.Cleanup(now)
	if n != 1 || err == nil {
		t.Fatalf("Cleanup = %d, %v; want 1 removed and an error", n, err)
	}
	got := strings.Join(listDir(t, d.Dir()), ",")
	if got != stuck+","+keep {
		t.Fatalf("left %s, want %s and %s (not %s)", got, stuck, keep, gone)
	}
	if !strings.Contains(logs.String(), "not removed") || strings.Contains(logs.String(), hexID(1)) {
		t.Fatalf("want a warning without the file name:\n%s", logs)
	}
}

// TestDump_DirectoryNotCreatable: Open fails (the stream goes on without a
// dump) when the directory cannot be made, or is a symlink.
func TestDump_DirectoryNotCreatable(t *testing.T) {
	base := t.TempDir()
	blocker := filepath.Join(base, "data")
	os.WriteFile(blocker, []byte("a file where the data directory should be"), 0o600)
	d, _ := mustDumper(t, dump.Config{Plaintext: true, Dir: filepath.Join(blocker, dump.DirName)})
	if _, err := d.Open(streamA, "mic", 7); err == nil {
		t.Fatal("Open succeeded under a file")
	} else if strings.Contains(err.Error(), base) {
		t.Fatalf("error names the path: %v", err)
	}

	target := t.TempDir()
	link := filepath.Join(base, "linked")
	os.Symlink(target, link)
	d, _ = mustDumper(t, dump.Config{Plaintext: true, Dir: link})
	if _, err := d.Open(streamA, "mic", 7); err == nil {
		t.Fatal("Open wrote through a symlinked directory")
	}
	if n := len(listDir(t, target)); n != 0 {
		t.Fatalf("%d files appeared behind the symlink", n)
	}
}

// failingWriter fails every write as a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/data/debug-audio/x.pcm", Err: syscall.ENOSPC}
}

func TestDump_WriteFails(t *testing.T) {
	d, _ := mustDumper(t, dump.Config{Plaintext: true, WrapWriter: func(io.Writer) io.Writer { return failingWriter{} }})
	f, err := d.Open(streamA, "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.Write([]byte("pcm"))
	if !errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "/data") {
		t.Fatalf("write error %v: want ENOSPC without a path", err)
	}
}

func TestDump_FileLimit(t *testing.T) {
	d, _ := mustDumper(t, dump.Config{Plaintext: true, MaxBytes: 100})
	f, err := d.Open(streamA, "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(make([]byte, 2)); !errors.Is(err, dump.ErrFull) {
		t.Fatalf("write past the limit: %v, want ErrFull", err)
	}
}

func TestDump_Refuses(t *testing.T) {
	d, _ := mustDumper(t, dump.Config{Plaintext: true, MaxOpen: 1})
	for _, tc := range [][2]string{{"../x", "mic"}, {streamA, "../../etc"}, {streamA, "MIC"}, {streamA, ""}} {
		if _, err := d.Open(tc[0], tc[1], 7); err == nil {
			t.Fatalf("Open(%q, %q) accepted", tc[0], tc[1])
		}
	}
	f, err := d.Open(streamA, "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(streamB, "mic", 7); !errors.Is(err, dump.ErrBusy) {
		t.Fatalf("a second dump over MaxOpen: %v", err)
	}
	f.Close()
	if _, err := dump.New(dump.Config{Dir: t.TempDir()}); err == nil {
		t.Fatal("an encrypted dump without a key was accepted")
	}
	var off *dump.Dumper
	if on, _, _ := off.Status(); on {
		t.Fatal("a nil Dumper reports on")
	}
}

// TestDump_SourceTag: a dump's name holds a tag of its source, never the
// source (plaintext dumps too): 8 hex digits, the same for one source
// under one key, different for another source or another key. The
// README's line that maps sources to tags computes the same ones.
func TestDump_SourceTag(t *testing.T) {
	key := mustKey(t)
	d, _ := mustDumper(t, dump.Config{Plaintext: true, Key: key})
	f, err := d.Open(streamA, "canarysrc", 7)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	names := listDir(t, d.Dir())
	tag := d.SourceTag("canarysrc")
	if len(names) != 1 || strings.Contains(names[0], "canarysrc") || !strings.HasPrefix(names[0], streamA+"_"+tag+"_") {
		t.Fatalf("files %v, want one named %s_%s_<time>.pcm", names, streamA, tag)
	}
	if ok, _ := regexp.MatchString(`^[0-9a-f]{8}$`, tag); !ok {
		t.Fatalf("tag %q is not 8 hex digits", tag)
	}
	same, _ := mustDumper(t, dump.Config{Key: key})
	other, _ := mustDumper(t, dump.Config{Key: mustKey(t)})
	if same.SourceTag("canarysrc") != tag || d.SourceTag("mic") == tag || other.SourceTag("canarysrc") == tag {
		t.Fatal("tags are not one per source and key")
	}

	// The README's Python line, run as printed, on a key file.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\n(python3 -c 'import sys,hmac.*?) /etc/tyst/files\.key ([a-z0-9 _-]+)\n`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README has no line that maps sources to tags")
	}
	keyFile := filepath.Join(t.TempDir(), "files.key")
	if err := os.WriteFile(keyFile, []byte(base64.URLEncoding.EncodeToString(key[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", string(m[1])+" "+keyFile+" canarysrc mic").CombinedOutput()
	if err != nil {
		t.Fatalf("the README's line: %v\n%s", err, out)
	}
	want := tag + " canarysrc\n" + d.SourceTag("mic") + " mic\n"
	if string(out) != want {
		t.Fatalf("the README's line printed %q, want %q", out, want)
	}
}

// TestDump_NeedsKey: the key is required, for a plaintext dump too (it
// keys the source tags).
func TestDump_NeedsKey(t *testing.T) {
	for _, plain := range []bool{false, true} {
		if _, err := dump.New(dump.Config{Dir: t.TempDir(), Plaintext: plain}); err == nil {
			t.Fatalf("plaintext %v: a dumper without the newsroom key", plain)
		}
	}
}
