package dump

import (
	"fmt"
	"strings"

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
	n := 0
	var first error
	for _, e := range entries {
		if !strings.HasPrefix(e.name, streamID+"_") {
			continue
		}
		d.mu.Lock()
		open := d.open[e.name]
		d.mu.Unlock()
		if open {
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
