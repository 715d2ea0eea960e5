package store

// Fault points: the steps of the write paths where Options.Fault is
// called. Each names the moment just reached. A fault test walks an
// injected failure through them in order (fail at the first, then the
// second, … until the operation completes) and checks after each that
// the store holds no half state.
const (
	FaultUploadWritten   = "upload:written"    // the temp blob is complete, not yet renamed
	FaultUploadRenamed   = "upload:renamed"    // the blob has its name, no transaction yet
	FaultUploadCommitted = "upload:committed"  // the transaction that references it committed
	FaultDestroyCommit   = "destroy:committed" // the record is gone from the database
	FaultDestroyCompact  = "destroy:compacted" // freed pages are gone; the blob is not yet removed
	FaultRemoveCommitted = "remove:committed"  // an audio removal committed; the blob is not yet removed
	FaultRemoveCompacted = "remove:compacted"  // the removal's freed pages are gone; the blob is not yet removed
	FaultPurgeRecord     = "purge:record"      // a purge is about to delete one record
	FaultPurgeCommitted  = "purge:committed"   // an expired record is gone from the database; its blob is not yet removed
	FaultPurgeExports    = "purge:exports"     // old export packages' rows are deleted; their files not yet
	FaultExportWritten   = "export:written"    // the package's temp file is complete, not yet renamed
	FaultExportRenamed   = "export:renamed"    // the package file has its name, no transaction yet
	FaultExportCommitted = "export:committed"  // the transaction that records the package committed
	FaultCompactCopied   = "compact:copied"    // the compacted copy is synced beside the live file, not yet swapped
	FaultCompactRenamed  = "compact:renamed"   // the copy replaced the live file; the old file is not yet overwritten
	FaultRekeyBatch      = "rekey:batch"       // one batch of items is sealed again and committed
	FaultRekeyFile       = "rekey:file"        // an export package is encrypted again; its row does not yet say so
)

// faultAt calls the injected fault hook, if any.
func (db *DB) faultAt(point string) error {
	if db.fault == nil {
		return nil
	}
	return db.fault(point)
}
