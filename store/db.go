package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/store/blob"
	"tyst/store/signing"
)

// Bucket names (DESIGN §3).
var (
	bucketMeta          = []byte("meta")
	bucketProjects      = []byte("projects")
	bucketRecords       = []byte("records")
	bucketAssets        = []byte("assets")
	bucketAudit         = []byte("audit")
	bucketAuditByRecord = []byte("audit_by_record")
	bucketUsers         = []byte("users")
	bucketUsersByName   = []byte("users_by_name")
	bucketSessions      = []byte("sessions")
	bucketTokens        = []byte("tokens")
	bucketTokenHashes   = []byte("token_hashes")
	bucketProjectIndex  = []byte("project_records")
	allBuckets          = [][]byte{bucketMeta, bucketProjects, bucketRecords, bucketAssets, bucketAudit, bucketAuditByRecord,
		bucketUsers, bucketUsersByName, bucketSessions, bucketTokens, bucketTokenHashes, bucketProjectIndex,
		bucketSegments, bucketNotes, bucketReceipts, bucketTombstones, bucketExports, bucketUntitled}
)

const (
	// schemaVersion 2 seals every access-relevant field (DESIGN §4); the
	// unsealed rows of version 1 are not read.
	schemaVersion = 2
	dbFileName    = "tyst.db"
	// DefaultRetention is how long a record is kept (RECORDER_RETENTION_DAYS=14).
	DefaultRetention = 14 * 24 * time.Hour
)

// Options configure a DB.
type Options struct {
	Keys      *Keyring         // required: the newsroom keys
	Now       func() time.Time // the clock; time.Now when nil
	Logger    *slog.Logger     // discards when nil
	Retention time.Duration    // DefaultRetention when zero
	// LockTimeout is how long Open waits for another process's lock on the
	// database before it fails; 1 s when zero.
	LockTimeout time.Duration
	// SessionTTL is how long a login lasts; DefaultSessionTTL when zero.
	SessionTTL time.Duration
	// WrapBlobWriter, when set, wraps every blob file as it is written. Tests
	// inject a failing disk with it; production leaves it nil.
	WrapBlobWriter func(io.Writer) io.Writer
	// NoSync skips bbolt's fsync of each commit. Only for building large
	// fixtures in benchmarks: a crash loses the last commits.
	NoSync bool
	// Blobs and Exports, when set, are the stores of blobs and export
	// packages (another backend, or blob.Memory in tests); the local
	// directories <data>/blobs and <data>/exports otherwise.
	Blobs, Exports blob.Store
	// ExportLimits bound the export packages the server holds (per account,
	// and the free space an export must leave); DefaultExportLimits when
	// nil.
	ExportLimits *ExportLimits
	// Fault, when set, is called at each named step of the write paths
	// (the Fault* constants); an error it returns fails the operation
	// there, as a crash or a failing disk would. Tests walk a fault through
	// every step; production leaves it nil.
	Fault func(point string) error
}

// DB is tyst's store: the bbolt database and the blob directory beside it.
// Its methods are safe for concurrent use.
type DB struct {
	lock       *os.File // the data directory's lock (lockFileName)
	bolt       *bolt.DB
	dir        string
	blobs      blob.Store // encrypted audio
	exports    blob.Store // encrypted export packages
	keys       *Keyring
	now        func() time.Time
	log        *slog.Logger
	retention  time.Duration
	sessionTTL time.Duration
	wrapBlob   func(io.Writer) io.Writer
	fault      func(point string) error

	// indexKey keys the indexes that must stay readable (usernames,
	// audit by record, records by project), so they hold no plain user or
	// record ids. It is random, stored sealed under the newsroom key, and
	// survives a rotation unchanged.
	indexKey []byte
	signer   *signing.Key // signs export manifests and receipts

	// swap is held for reading by every transaction (view, update) and for
	// writing by Compact while it replaces the file.
	swap      sync.RWMutex
	compactMu sync.Mutex
	// removals is held by every blob removal and, for writing, by Backup,
	// so a backup copies every blob its snapshot references.
	removals sync.RWMutex

	mu           sync.Mutex
	uploading    map[uint64]bool // records with an upload in flight
	hashSlots    chan struct{}   // see maxConcurrentHashes
	exportBudget *exportBudget   // see ExportLimits
	redactions   redactionCache  // audit events a tombstone explains
	accesses     *coalescer      // audio_accessed events recently written
	refusals     *coalescer      // setup_refused events recently written
	failures     *loginFailures  // login_failed events, coalesced with their count
	gone         goneHooks       // OnRecordGone's callbacks
	audioGone    goneHooks       // OnAudioRemoved's callbacks
}

// ErrLocked is the cause when another process holds the database.
var ErrLocked = errors.New("store: the database is in use by another tyst process")

// Open opens (creating if needed) the data directory dir with mode 0700, its
// database and blob directory. It removes uploads left in progress by a
// crash and blobs that no record references (none can be in flight before
// Open returns). Errors name no path.
func Open(dir string, opts Options) (*DB, error) {
	if opts.Keys == nil {
		return nil, errors.New("store: no newsroom keys")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory cannot be created: %w", stripPaths(err))
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory cannot be restricted to 0700: %w", stripPaths(err))
	}
	blobs, exports := opts.Blobs, opts.Exports
	if blobs == nil || exports == nil {
		b, e, err := openStores(dir, opts.WrapBlobWriter)
		if err != nil {
			return nil, err
		}
		if blobs == nil {
			blobs = b
		}
		if exports == nil {
			exports = e
		}
	}
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	lock, err := lockDir(dir, timeout)
	if errors.Is(err, ErrLocked) {
		return nil, ErrLocked
	} else if err != nil {
		return nil, fmt.Errorf("data directory cannot be locked: %w", stripPaths(err))
	}
	if err := cleanCompaction(filepath.Join(dir, dbFileName)); err != nil {
		lock.Close()
		return nil, fmt.Errorf("leftover of an interrupted compaction cannot be removed: %w", stripPaths(err))
	}
	bdb, err := bolt.Open(filepath.Join(dir, dbFileName), 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		lock.Close()
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("database cannot be opened: %w", stripPaths(err))
	}
	bdb.NoSync = opts.NoSync
	db := &DB{
		lock:      lock,
		bolt:      bdb,
		dir:       dir,
		blobs:     blobs,
		exports:   exports,
		keys:      opts.Keys,
		now:       opts.Now,
		log:       opts.Logger,
		retention: opts.Retention,
		wrapBlob:  opts.WrapBlobWriter,
		fault:     opts.Fault,
		uploading: map[uint64]bool{},
		hashSlots: make(chan struct{}, maxConcurrentHashes),
		accesses:  newCoalescer(accessWindow, maxCoalesced),
		refusals:  newCoalescer(time.Minute, 1),
	}
	db.failures = newLoginFailures(db, loginFailedWindow)
	limits := DefaultExportLimits()
	if opts.ExportLimits != nil {
		limits = *opts.ExportLimits
	}
	db.exportBudget = newExportBudget(limits, dir)
	if db.now == nil {
		db.now = time.Now
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if db.retention == 0 {
		db.retention = DefaultRetention
	}
	db.sessionTTL = opts.SessionTTL
	if db.sessionTTL == 0 {
		db.sessionTTL = DefaultSessionTTL
	}
	if err := db.init(); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.sweep(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) init() error {
	return db.update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: create bucket: %w", err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchemaVersion); v != nil {
			if got := btoi(v); got != schemaVersion {
				return &Error{Code: CodeInternal, Message: fmt.Sprintf(
					"this data directory has database schema %d; this tyst reads schema %d", got, schemaVersion)}
			}
			if err := db.loadIndexKey(meta); err != nil {
				return err
			}
			return db.loadSigningKey(meta)
		}
		if !emptyDB(tx) {
			return &Error{Code: CodeInternal, Message: "the database has no schema version: it is not tyst's, or it is damaged"}
		}
		if err := meta.Put(keySchemaVersion, itob(schemaVersion)); err != nil {
			return err
		}
		if err := db.newIndexKey(meta); err != nil {
			return err
		}
		if err := db.loadSigningKey(meta); err != nil {
			return err
		}
		return db.putSettings(tx, Settings{})
	})
}

var keySchemaVersion = []byte("schema_version")

// emptyDB reports whether no bucket holds a row.
func emptyDB(tx *bolt.Tx) bool {
	for _, name := range allBuckets {
		if k, _ := tx.Bucket(name).Cursor().First(); k != nil {
			return false
		}
	}
	return true
}

// sweep removes temp files and unreferenced blobs left by a crash. Crash
// order (blob first, then the transaction that references it) means only
// unreferenced files can be left.
func (db *DB) sweep() error {
	// Before Open returns no write can be in progress (the data
	// directory's lock is held): every temp file is a crash's leftover,
	// whatever its time.
	everything := time.Now().Add(24 * time.Hour)
	tmp, err := db.blobs.CleanTemp(everything)
	if err != nil {
		return fmt.Errorf("store: sweep temp files: %w", err)
	}
	if n, err := db.exports.CleanTemp(everything); err == nil {
		tmp += n
	}
	referenced, err := db.referencedBlobs()
	if err != nil {
		return fmt.Errorf("store: sweep: %w", err)
	}
	orphans := 0
	infos, err := listObjects(db.blobs)
	if err != nil {
		return err
	}
	for _, i := range infos {
		if !referenced[i.Name] {
			if err := db.removeBlob(i.Name); err != nil {
				db.log.Warn("orphan blob not removed", "err", stripPaths(err).Error())
				continue
			}
			orphans++
		}
	}
	packages, err := db.sweepExports(everything, false)
	if err != nil {
		return fmt.Errorf("store: sweep: %w", err)
	}
	if tmp > 0 || orphans > 0 || packages > 0 {
		db.log.Info("removed leftovers of an interrupted run", "temp_files", tmp, "orphan_blobs", orphans, "orphan_exports", packages)
	}
	return nil
}

// Close closes the database, after writing the failed logins counted since
// the last login_failed event. Methods called after Close return
// unavailable.
func (db *DB) Close() error {
	if err := db.failures.close(); err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		db.log.Warn("failed logins counted since the last audit event not written", "err", err.Error())
	}
	db.swap.Lock()
	defer db.swap.Unlock()
	err := db.bolt.Close()
	if db.lock != nil {
		db.lock.Close() // releases the lock
		db.lock = nil
	}
	return err
}

// Ready reports whether the database is open and answers.
func (db *DB) Ready(ctx context.Context) error {
	err := db.view(func(tx *bolt.Tx) error { return nil })
	return boundary("ready", err)
}

// Retention returns how long a record is kept.
func (db *DB) Retention() time.Duration { return db.retention }

// Check runs bbolt's consistency check, for tests and `tyst verify`.
func (db *DB) Check() error {
	return boundary("check", db.view(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker blocks until read
			if first == nil {
				first = err
			}
		}
		return first
	}))
}

func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func btoi(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// getJSON decodes the value at key in b into v; false when absent.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func jsonUnmarshal(v []byte, x any) error {
	if err := json.Unmarshal(v, x); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return &Error{Code: CodeUnavailable, Message: "request cancelled", Err: err}
	}
	return nil
}
