package dump

import (
	"fmt"
	"os"
	"strings"

	"github.com/fernet/fernet-go"

	"tyst/internal/shred"
)

// Erase overwrites with random bytes and removes every dump of stream
// streamID that is not being written (close its File first): its record
// was destroyed, and the dump, under the newsroom key (or plain), must not
// outlive it. It returns how many it erased; errors name no path.
func (d *Dumper) Erase(streamID string) (int, error) {
	if d == nil || !idPattern.MatchString(streamID) {
		return 0, nil
	}
	entries, root, err := d.list()
	if err != nil || root == nil {
		return 0, err
	}
	defer root.Close()
	return erase(root, entries, func(name string) bool {
		return strings.HasPrefix(name, streamID+"_") && !d.Writing(name)
	})
}

// EraseRecords overwrites and removes the dumps in dir of records ids,
// which were destroyed, purged or lost their audio: those whose record
// tag is the tag of one of ids under one of keys (a dump written before
// a rekey has its tag under the old key). A dump that writing reports
// (nil: none) is left alone: its stream ends and erases it. Dumps of
// earlier releases, without a record tag, are found only by their age.
// A missing dir erases nothing. It works whether or not the dump is on
// now: dumps written while it was on go with their records all the same.
func EraseRecords(dir string, keys []*fernet.Key, ids []uint64, writing func(name string) bool) (int, error) {
	tags := map[string]bool{}
	for _, id := range ids {
		for _, k := range keys {
			tags[RecordTag(k, id)] = true
		}
	}
	return eraseTagged(dir, writing, func(tag string) bool { return tags[tag] })
}

// EraseGone erases, at a start, the dumps in dir of every record that
// forEachGone yields (the destroyed and purged ones, by their
// tombstones): a crash between a destroy and the erasure of its dumps
// leaves them. It reads the records only when dir holds a dump with a
// record tag.
func EraseGone(dir string, keys []*fernet.Key, forEachGone func(func(id uint64) error) error) (int, error) {
	entries, root, err := listDir(dir)
	if err != nil || root == nil {
		return 0, err
	}
	defer root.Close()
	present := map[string]bool{} // record tags in dir; true once a gone record has it
	for _, e := range entries {
		if m := recordTagPattern.FindStringSubmatch(e.name); m != nil {
			present[m[1]] = false
		}
	}
	if len(present) == 0 {
		return 0, nil
	}
	found := false
	err = forEachGone(func(id uint64) error {
		for _, k := range keys {
			tag := RecordTag(k, id)
			if _, ok := present[tag]; ok {
				present[tag], found = true, true
			}
		}
		return nil
	})
	if err != nil || !found {
		return 0, err
	}
	return erase(root, entries, func(name string) bool {
		m := recordTagPattern.FindStringSubmatch(name)
		return m != nil && present[m[1]]
	})
}

// eraseTagged erases the dumps in dir whose record tag match accepts
// and that writing (nil: none) does not report.
func eraseTagged(dir string, writing func(string) bool, match func(tag string) bool) (int, error) {
	entries, root, err := listDir(dir)
	if err != nil || root == nil {
		return 0, err
	}
	defer root.Close()
	return erase(root, entries, func(name string) bool {
		m := recordTagPattern.FindStringSubmatch(name)
		return m != nil && match(m[1]) && (writing == nil || !writing(name))
	})
}

// erase overwrites and removes the entries that pick accepts; it returns
// how many and the first error (path-free).
func erase(root *os.Root, entries []entry, pick func(name string) bool) (int, error) {
	n := 0
	var first error
	for _, e := range entries {
		if !pick(e.name) {
			continue
		}
		if err := shred.At(root, e.name); err != nil {
			if first == nil {
				first = fmt.Errorf("dump: erase: %w", pathFree(err))
			}
			continue
		}
		n++
	}
	return n, first
}
