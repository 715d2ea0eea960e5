package store

import (
	"encoding/json"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"tyst/store/fstream"
)

// Defaults of ExportLimits. A package holds the audio encrypted once more
// (mode encrypted: twice), so an account that exports freely fills a disk
// fast; these keep an account's packages to a few large exports and keep
// room on the disk for what must not fail, uploads and live recordings.
const (
	DefaultExportQuota          = 2 << 30   // bytes of packages one account holds on the server
	DefaultExportReserve        = 512 << 20 // bytes an export leaves free, at least
	DefaultExportReservePercent = 1         // % of the file system an export leaves free, at least
)

// ExportLimits bound the export packages the server holds, so that
// exports cannot fill the disk under uploads and live streams.
type ExportLimits struct {
	// PerUser is the most bytes of export packages (as stored: encrypted
	// and padded) one account may hold on the server, those in progress
	// included; 0 for no cap. An export over it is refused with
	// quota_exceeded. Exports without an account (the system's) are not
	// counted.
	PerUser int64
	// ReserveBytes and ReservePercent: an export is refused with
	// insufficient_storage unless the data directory's file system keeps
	// at least max(ReserveBytes, ReservePercent % of its size) free after
	// the package (its size estimated before it is written) and the other
	// exports in progress. Zero for no reserve.
	ReserveBytes   int64
	ReservePercent int
	// FreeSpace reports the bytes available to tyst on the data
	// directory's file system and its size; statfs(2) on the data
	// directory when nil. Tests inject a full disk with it.
	FreeSpace func() (free, total int64, err error)
}

// DefaultExportLimits returns the limits Open uses when Options give none.
func DefaultExportLimits() ExportLimits {
	return ExportLimits{PerUser: DefaultExportQuota, ReserveBytes: DefaultExportReserve, ReservePercent: DefaultExportReservePercent}
}

// exportBudget holds the limits and the estimated sizes of the exports in
// progress, per account and in all.
type exportBudget struct {
	limits  ExportLimits
	mu      sync.Mutex
	perUser map[uint64]int64
	all     int64
}

func newExportBudget(l ExportLimits, dir string) *exportBudget {
	if l.FreeSpace == nil {
		l.FreeSpace = func() (int64, int64, error) { return statfs(dir) }
	}
	return &exportBudget{limits: l, perUser: map[uint64]int64{}}
}

// statfs returns the bytes available to an unprivileged process on dir's
// file system, and its size.
func statfs(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize)
	return int64(st.Bavail * bs), int64(st.Blocks * bs), nil
}

// packageOverhead bounds what a package holds besides its audio and its
// two JSON documents: the manifest, its signature, the signers line, the
// README and VERIFY texts and the ZIP's headers.
const packageOverhead = 64 << 10

// estimatePackage returns an upper bound of the stored size of a package of
// audio bytes of audio in mode, with JSON documents of docs bytes: the
// audio stored in the ZIP (encrypted once more in mode encrypted), the
// documents deflated (never much larger), and the whole encrypted at rest.
func estimatePackage(audio int64, mode string, docs int) int64 {
	entry := audio
	if mode == ExportEncrypted && audio > 0 {
		entry = fstream.EncryptedSize(audio)
	}
	return fstream.EncryptedSize(entry + int64(docs) + packageOverhead)
}

// heldBy returns the stored bytes of the packages user exported that the
// server holds, read within tx.
func (db *DB) heldBy(tx *bolt.Tx, user uint64) int64 {
	var n int64
	tx.Bucket(bucketExports).ForEach(func(_, v []byte) error {
		var row exportRow
		var sec exportSecrets
		if json.Unmarshal(v, &row) == nil && db.keys.openBox(row.Box, &sec) == nil && sec.ExportedBy == user {
			n += fstream.EncryptedSize(sec.Size)
		}
		return nil
	})
	return n
}

// reserve takes size bytes of the budget for an export by user (0: no
// account), or says why not: quota_exceeded over the account's cap,
// insufficient_storage when the disk would keep less than the reserve.
// held reads the bytes of the account's recorded packages; it is called
// under the budget's lock, and an export's row is committed before its
// release, so every package is counted once, recorded or in progress. The
// caller calls release once the export is recorded or abandoned.
func (b *exportBudget) reserve(user uint64, size int64, held func() (int64, error)) (release func(), err error) {
	l := b.limits
	var free, total int64
	if l.ReserveBytes > 0 || l.ReservePercent > 0 {
		if free, total, err = l.FreeSpace(); err != nil {
			return nil, fmt.Errorf("free space of the data directory: %w", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if user != 0 && l.PerUser > 0 {
		h, err := held()
		if err != nil {
			return nil, err
		}
		if h+b.perUser[user]+size > l.PerUser {
			return nil, quotaError(h+b.perUser[user]+size, l.PerUser)
		}
	}
	if l.ReserveBytes > 0 || l.ReservePercent > 0 {
		keep := max(l.ReserveBytes, total/100*int64(l.ReservePercent))
		if free-b.all-size < keep {
			return nil, &Error{Code: CodeDiskFull, Message: fmt.Sprintf(
				"not enough free space for this export: the server keeps %d MiB free for uploads and live recordings", keep>>20)}
		}
	}
	b.perUser[user] += size
	b.all += size
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.perUser[user] -= size; b.perUser[user] <= 0 {
				delete(b.perUser, user)
			}
			b.all -= size
		})
	}, nil
}

// quotaError says that an account's packages would take need bytes of its
// quota.
func quotaError(need, quota int64) error {
	return &Error{Code: CodeQuotaExceeded, Message: fmt.Sprintf(
		"export quota reached: this account's export packages on the server, this one included, would take %d MiB of the %d MiB "+
			"an account may hold; packages go when purge removes them by age or their record is destroyed", MiB(need), quota>>20)}
}
