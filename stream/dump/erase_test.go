package dump_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/stream/dump"
)

// writeClosed writes and closes one dump of stream id into record.
func writeClosed(tb testing.TB, d *dump.Dumper, id string, record uint64) {
	tb.Helper()
	f, err := d.Open(id, "mic", record)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Write([]byte("PCM-OF-THE-RECORD")); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// streamsIn returns the stream ids of the dumps in dir, sorted.
func streamsIn(tb testing.TB, dir string) []string {
	tb.Helper()
	var ids []string
	for _, n := range listDir(tb, dir) {
		ids = append(ids, strings.SplitN(n, "_", 2)[0])
	}
	slices.Sort(ids)
	return ids
}

// TestEraseRecords: a destroyed record's dumps go, those written under a
// key a rekey replaced included; other records' dumps, a dump being
// written, a dump of an earlier release without a record tag and a
// symlink stay.
func TestEraseRecords(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	before, _ := mustDumper(t, dump.Config{Key: oldKey})
	dir := before.Dir()
	after, _ := mustDumper(t, dump.Config{Key: newKey, Dir: dir})
	writeClosed(t, before, hexID(1), 7) // under the old key
	writeClosed(t, before, hexID(2), 8)
	writeClosed(t, after, hexID(3), 7) // under the new key
	live, err := after.Open(hexID(4), "mic", 7)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	earlier := writeDump(t, dir, hexID(5), time.Now(), 10) // no record tag
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := hexID(6) + "_0badcafe_" + dump.RecordTag(newKey, 7) + "_20260101T000000Z.pcm"
	if err := os.Symlink(outside, filepath.Join(dir, link)); err != nil {
		t.Fatal(err)
	}

	n, err := dump.EraseRecords(dir, []*fernet.Key{newKey, oldKey}, []uint64{7}, after.Writing)
	if err != nil || n != 2 {
		t.Fatalf("EraseRecords = %d, %v; want the two closed dumps of record 7", n, err)
	}
	if got, want := streamsIn(t, dir), []string{hexID(2), hexID(4), hexID(5), hexID(6)}; !slices.Equal(got, want) {
		t.Fatalf("left the dumps of streams %v, want %v (record 8, the one being written, the untagged one, the symlink)", got, want)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Fatalf("the symlink's target changed: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, earlier)); err != nil {
		t.Fatal("the untagged dump was removed")
	}

	// Once closed, the dump being written goes too; a missing directory
	// erases nothing and is no error.
	live.Close()
	if n, err := dump.EraseRecords(dir, []*fernet.Key{newKey}, []uint64{7}, after.Writing); err != nil || n != 1 {
		t.Fatalf("EraseRecords after close = %d, %v; want 1", n, err)
	}
	if n, err := dump.EraseRecords(filepath.Join(t.TempDir(), "none"), []*fernet.Key{newKey}, []uint64{7}, nil); err != nil || n != 0 {
		t.Fatalf("EraseRecords of a missing directory = %d, %v", n, err)
	}
}

// TestEraseGone: at a start, the dumps of the records the tombstones
// name go; the tombstones are read only when a dump has a record tag.
func TestEraseGone(t *testing.T) {
	key := mustKey(t)
	d, _ := mustDumper(t, dump.Config{Key: key})
	dir := d.Dir()
	reads := 0
	gone := func(ids ...uint64) func(func(uint64) error) error {
		return func(f func(uint64) error) error {
			reads++
			for _, id := range ids {
				if err := f(id); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if n, err := dump.EraseGone(dir, []*fernet.Key{key}, gone(7)); n != 0 || err != nil || reads != 0 {
		t.Fatalf("no directory: EraseGone = %d, %v after %d reads of the tombstones, want none", n, err, reads)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeDump(t, dir, hexID(9), time.Now(), 10) // untagged: no reason to read
	if n, err := dump.EraseGone(dir, []*fernet.Key{key}, gone(7)); n != 0 || err != nil || reads != 0 {
		t.Fatalf("untagged dumps only: EraseGone = %d, %v after %d reads, want none", n, err, reads)
	}

	writeClosed(t, d, hexID(1), 7)
	writeClosed(t, d, hexID(2), 8)
	n, err := dump.EraseGone(dir, []*fernet.Key{key}, gone(6, 7, 9))
	if err != nil || n != 1 || reads != 1 {
		t.Fatalf("EraseGone = %d, %v after %d reads; want record 7's dump, in one read", n, err, reads)
	}
	if got, want := streamsIn(t, dir), []string{hexID(2), hexID(9)}; !slices.Equal(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	boom := errors.New("boom")
	if _, err := dump.EraseGone(dir, []*fernet.Key{key}, func(func(uint64) error) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("a failing read of the tombstones gave %v", err)
	}
}
