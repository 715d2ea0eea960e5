package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// loginFailedWindow is how long one login_failed event covers the failures
// that follow it. Each failure used to append its own fsynced event, so a
// flood of wrong passwords from many addresses (the per-client limit counts
// each address apart) grew the database by megabytes a minute without
// bound. Now the first failure after a quiet window is written at once, so
// the admin sees an attack begin, and the failures after it are counted in
// memory and written as one event with their count when the window ends,
// when the audit log is listed, or when the database closes: at most one
// event per window and reason, however many failures.
const loginFailedWindow = 15 * time.Minute

// maxFailedNames bounds the distinct usernames a window counts (as keyed
// hashes); past it, "usernames" says at least this many.
const maxFailedNames = 10_000

// loginFailures coalesces login_failed events, one tally per reason.
type loginFailures struct {
	db     *DB
	window time.Duration
	key    []byte // keys the username hashes; random per process, never stored

	mu      sync.Mutex
	tallies map[string]*failureTally
	closed  bool // after Close: no timer is armed again
}

// failureTally is what one reason's failures since its last event were.
type failureTally struct {
	open  bool // a window is open: failures are counted, not written
	count int  // failures counted since the last event
	names map[[32]byte]struct{}
	timer *time.Timer // writes the count when the window ends
}

func newLoginFailures(db *DB, window time.Duration) *loginFailures {
	key := make([]byte, 32)
	rand.Read(key)
	return &loginFailures{db: db, window: window, key: key, tallies: map[string]*failureTally{}}
}

// nameHash is the keyed hash of a username as login compares it: the
// tally tells apart how many names were tried without holding any.
func (f *loginFailures) nameHash(username string) [32]byte {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(username))))
	var h [32]byte
	copy(h[:], m.Sum(nil))
	return h
}

// add counts one failed login of username for reason. The first failure of
// a quiet window is written at once as an event of count 1 and opens a
// window; later ones are counted for the event that ends it.
func (f *loginFailures) add(reason, username string) error {
	f.mu.Lock()
	t := f.tallies[reason]
	if t == nil {
		t = &failureTally{names: map[[32]byte]struct{}{}}
		f.tallies[reason] = t
	}
	if t.open {
		t.count++
		if len(t.names) < maxFailedNames {
			t.names[f.nameHash(username)] = struct{}{}
		}
		f.mu.Unlock()
		return nil
	}
	t.open = true
	f.arm(reason, t)
	f.mu.Unlock()
	err := f.write(reason, 1, 1)
	if err != nil { // counted for the next event instead
		f.mu.Lock()
		t.count++
		t.names[f.nameHash(username)] = struct{}{}
		f.mu.Unlock()
	}
	return err
}

// arm starts t's timer for the end of its window; f.mu is held.
func (f *loginFailures) arm(reason string, t *failureTally) {
	if f.closed {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timer = time.AfterFunc(f.window, func() {
		if err := f.flush(reason, true); err != nil {
			f.db.log.Warn("failed logins not audited; the next failure, audit listing or shutdown retries", "err", err.Error())
		}
	})
}

// flush writes the failures counted for reason as one event. At a window's
// end (ended) with nothing counted, it closes the window, so the next
// failure is written at once; with failures counted, the window goes on.
func (f *loginFailures) flush(reason string, ended bool) error {
	f.mu.Lock()
	t := f.tallies[reason]
	if t == nil || t.count == 0 {
		if t != nil && ended {
			t.open = false
		}
		f.mu.Unlock()
		return nil
	}
	count, names := t.count, len(t.names)
	t.count, t.names = 0, map[[32]byte]struct{}{}
	if ended {
		f.arm(reason, t)
	}
	f.mu.Unlock()
	if err := f.write(reason, count, names); err != nil {
		f.mu.Lock()
		t.count += count // for the next try; the names are lost, so it says fewer
		f.mu.Unlock()
		return err
	}
	return nil
}

// flushAll writes every count pending (before the audit log is listed, and
// at Close).
func (f *loginFailures) flushAll() error {
	f.mu.Lock()
	var reasons []string
	for r := range f.tallies {
		reasons = append(reasons, r)
	}
	f.mu.Unlock()
	var first error
	for _, r := range reasons {
		if err := f.flush(r, false); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// close stops the timers and writes what is pending, before the database
// closes.
func (f *loginFailures) close() error {
	f.mu.Lock()
	f.closed = true
	for _, t := range f.tallies {
		if t.timer != nil {
			t.timer.Stop()
		}
	}
	f.mu.Unlock()
	return f.flushAll()
}

// write appends one login_failed event: count failures for reason, of
// names distinct usernames (at least, past maxFailedNames). It runs
// outside the context of the request that caused it, so a flush before an
// admin's listing does not name the admin as the actor.
func (f *loginFailures) write(reason string, count, names int) error {
	return f.db.update(func(tx *bolt.Tx) error {
		return f.db.appendAudit(context.Background(), tx, AuditEvent{Action: ActionLoginFailed, Meta: map[string]any{
			"reason": reason, "count": count, "usernames": names,
		}})
	})
}
