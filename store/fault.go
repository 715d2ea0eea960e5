package store

// Fault points: the steps of the write paths where Options.Fault is
// called. Each names the moment just reached.
const (
	FaultUploadWritten   = "upload:written"    // the temp blob is complete, not yet renamed
	FaultUploadRenamed   = "upload:renamed"    // the blob has its name, no transaction yet
	FaultUploadCommitted = "upload:committed"  // the transaction that references it committed
	FaultDestroyCommit   = "destroy:committed" // the record is gone from the database
	FaultDestroyCompact  = "destroy:compacted" // freed pages are gone; the blob is not yet removed
	FaultRemoveCommitted = "remove:committed"  // an audio removal committed; the blob is not yet removed
	FaultPurgeRecord     = "purge:record"      // a purge is about to delete one record
)

// faultAt calls the injected fault hook, if any.
func (db *DB) faultAt(point string) error {
	if db.fault == nil {
		return nil
	}
	return db.fault(point)
}
