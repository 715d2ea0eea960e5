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
func (db *DB) OnRecordGone(f func(recordID uint64)) {
	db.gone.mu.Lock()
	defer db.gone.mu.Unlock()
	db.gone.fns = append(db.gone.fns, f)
}

// recordsGone calls the OnRecordGone callbacks for each of ids, after
// their deletion committed.
func (db *DB) recordsGone(ids ...uint64) {
	db.gone.mu.Lock()
	fns := db.gone.fns[:len(db.gone.fns):len(db.gone.fns)]
	db.gone.mu.Unlock()
	for _, id := range ids {
		for _, f := range fns {
			f(id)
		}
	}
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
