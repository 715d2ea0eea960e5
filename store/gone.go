package store

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// goneHooks holds the callbacks of OnRecordGone.
type goneHooks struct {
	mu  sync.Mutex
	fns []func(recordID uint64)
}

// OnRecordGone registers f to be called with the id of every record that
// Destroy or PurgeRecords deletes. f runs after the transaction that
// deleted the record has committed, on the goroutine of that call, outside
// every lock and transaction of the store (it may call the store), before
// the call returns. Other holders of a record's data (the stream server's
// spools) use it to erase theirs. f must not block for long: a destroy
// waits for it.
func (db *DB) OnRecordGone(f func(recordID uint64)) { db.gone.add(f) }

// OnAudioRemoved registers f to be called with the id of every record
// whose audio RemoveAudio removed, as OnRecordGone's callbacks are called.
func (db *DB) OnAudioRemoved(f func(recordID uint64)) { db.audioGone.add(f) }

func (h *goneHooks) add(f func(recordID uint64)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fns = append(h.fns, f)
}

// call calls the callbacks for each of ids.
func (h *goneHooks) call(ids ...uint64) {
	h.mu.Lock()
	fns := h.fns[:len(h.fns):len(h.fns)]
	h.mu.Unlock()
	for _, id := range ids {
		for _, f := range fns {
			f(id)
		}
	}
}

// recordsGone calls the OnRecordGone callbacks for each of ids, after
// their deletion committed.
func (db *DB) recordsGone(ids ...uint64) { db.gone.call(ids...) }

// ForEachGone calls f with the id of every record that was destroyed or
// purged (its tombstone remembers it), inside one read of the database
// (f must not write to it), until f returns an error, which it returns.
// For the server's own holders of record data, as RecordGone: the debug
// dump, at a start, erases what a crash left of such a record.
func (db *DB) ForEachGone(f func(id uint64) error) error {
	var ferr error
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTombstones).ForEach(func(k, _ []byte) error {
			if len(k) != 8 {
				return nil
			}
			ferr = f(btoi(k))
			return ferr
		})
	})
	if ferr != nil {
		return ferr
	}
	return boundary("records gone", err)
}

// RecordGone reports whether record id was destroyed or purged: a
// tombstone remembers it. It needs no principal and says nothing of who
// may see the record; it is for the server's own holders of record data
// (a spool found after a restart, its record destroyed meanwhile, even
// offline).
func (db *DB) RecordGone(id uint64) (gone bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		gone = tx.Bucket(bucketTombstones).Get(itob(id)) != nil
		return nil
	})
	return gone, boundary("record gone", err)
}
