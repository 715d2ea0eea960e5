package store

import (
	"crypto/sha256"
	"sync"
	"time"
)

// accessWindow is how long one audio_accessed event covers further listens
// by the same principal to the same record: a player's range requests, a
// replay, a page reload. Without it every GET would append an fsynced event
// and one viewer could grow the database without bound.
const accessWindow = 10 * time.Minute

// maxCoalesced bounds the coalescer's table: when full, the oldest entry
// goes (its next access is audited again, which is harmless).
const maxCoalesced = 10_000

// coalescer remembers which keys had an event written recently. Keys are
// hashed, so the table holds no ids in the clear either.
type coalescer struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[[32]byte]time.Time
	order  [][32]byte // insertion order, for eviction
}

func newCoalescer(window time.Duration, max int) *coalescer {
	return &coalescer{window: window, max: max, seen: map[[32]byte]time.Time{}}
}

// due reports whether an event for key should be written at now, and if so
// marks it written. Marking before the write means a failed write is not
// retried within the window, which errs on the side of fewer events only
// for a failing disk.
func (c *coalescer) due(key string, now time.Time) bool {
	k := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.seen[k]; ok && now.Sub(t) < c.window && now.Sub(t) >= 0 {
		return false
	}
	if _, ok := c.seen[k]; !ok {
		for len(c.seen) >= c.max && len(c.order) > 0 {
			delete(c.seen, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, k)
		if len(c.order) > 2*c.max { // forgotten keys leave stale entries
			live := c.order[:0:0]
			for _, o := range c.order {
				if _, ok := c.seen[o]; ok {
					live = append(live, o)
				}
			}
			c.order = live
		}
	}
	c.seen[k] = now
	return true
}

// forget drops key, so its next event is written (after a failed write).
func (c *coalescer) forget(key string) {
	k := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, k)
}
