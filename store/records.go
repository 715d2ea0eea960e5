package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/fernet/fernet-go"
	bolt "go.etcd.io/bbolt"
)

// Sensitivity levels (DESIGN §5, §6).
const (
	SensitivityStandard  = "standard"
	SensitivitySensitive = "sensitive"
)

// Record statuses.
const (
	StatusNew   = "new"   // created, no audio yet
	StatusAudio = "audio" // audio stored
	// StatusUnreadable marks a listed record whose key is not configured or
	// whose data is damaged; Record returns an internal error for it.
	StatusUnreadable = "unreadable"
)

// MaxTitleRunes is the longest title accepted.
const MaxTitleRunes = 500

var languageTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$`)

// NewRecord is what CreateRecord needs.
type NewRecord struct {
	ProjectID   uint64 // 0 creates a project "Untitled – YYYY-MM-DD"
	Title       string // required, at most MaxTitleRunes
	Sensitivity string // standard (default) or sensitive
	Language    string // a BCP 47 tag such as "sv" or "en-GB"; "und" when empty
}

// Record is one interview: its metadata, decrypted, and its audio.
type Record struct {
	ID          uint64
	ProjectID   uint64
	Title       string
	Sensitivity string
	Language    string
	Status      string
	CreatedAt   time.Time
	// ExpiresAt is when purge deletes the record; zero while it is on hold.
	ExpiresAt   time.Time
	Hold        bool
	RetainUntil time.Time // zero when not set
	Audio       *Audio    // nil until audio is stored
	Segments    int       // number of transcript segments
	Notes       int       // number of notes
}

// LogValue logs a record as its id only (DESIGN §11).
func (r *Record) LogValue() slog.Value { return slog.Uint64Value(r.ID) }

// recordRow is a record as stored. Only its id stands in the clear. The
// record key and everything that decides who may see the record live in
// Access, sealed under the newsroom key; everything that can hold source
// content lives in Sealed, encrypted with the record key. Destroying the
// record deletes the row, and with Access the only copy of the record key.
type recordRow struct {
	ID     uint64 `json:"id"`
	Access box    `json:"access"` // recordAccess
	Sealed token  `json:"sealed"` // recordSecrets under the record key
}

// recordAccess is the plaintext of recordRow.Access.
type recordAccess struct {
	RecordID       uint64    `json:"record_id"` // binds the box to its row
	Key            []byte    `json:"key"`       // the record key
	ProjectID      uint64    `json:"project_id"`
	CreatedAt      time.Time `json:"created_at"`
	Sensitivity    string    `json:"sensitivity"`
	CreatedBy      uint64    `json:"created_by,omitempty"`       // user id; 0 for the system
	CreatedByToken uint64    `json:"created_by_token,omitempty"` // the API token that created it, if any
	AssetID        uint64    `json:"asset_id,omitempty"`
	Hold           bool      `json:"hold,omitempty"`
	RetainUntil    time.Time `json:"retain_until,omitzero"`
	Segments       int       `json:"segments,omitempty"`
	Notes          int       `json:"notes,omitempty"`
}

// recordSecrets is the plaintext of recordRow.Sealed.
type recordSecrets struct {
	Title    string `json:"title"`
	Language string `json:"language"`
}

// loaded is a record row opened under the newsroom key.
type loaded struct {
	row recordRow
	acc recordAccess
	key *fernet.Key
}

func (n *NewRecord) validate() error {
	title, err := cleanText("title", n.Title, MaxTitleRunes, false)
	if err != nil {
		return err
	}
	n.Title = title
	switch n.Sensitivity {
	case "":
		n.Sensitivity = SensitivityStandard
	case SensitivityStandard, SensitivitySensitive:
	default:
		return errorf(CodeValidation, "sensitivity must be standard or sensitive")
	}
	switch {
	case n.Language == "":
		n.Language = "und"
	case !languageTag.MatchString(n.Language):
		return errorf(CodeValidation, "language must be a language tag such as sv or en-GB")
	}
	return nil
}

// CreateRecord creates a record with a new record key. Without
// n.ProjectID it goes into the caller's project "Untitled – YYYY-MM-DD" of
// the day, made on first use (a sensitive record into a sensitive one).
// Audit: project_created, transcript_created. Returns validation_error for
// bad input and not_found for a project the caller may not see.
func (db *DB) CreateRecord(ctx context.Context, n NewRecord) (rec *Record, err error) {
	defer func() { err = boundary("create record", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if err := n.validate(); err != nil {
		return nil, err
	}
	var key fernet.Key
	if err := key.Generate(); err != nil {
		return nil, err
	}
	sealed, err := sealJSON(&key, recordSecrets{Title: n.Title, Language: n.Language})
	if err != nil {
		return nil, err
	}
	now := db.now().UTC()
	acc := recordAccess{Key: key[:], CreatedAt: now, Sensitivity: n.Sensitivity}
	if p := PrincipalFrom(ctx); p != nil {
		acc.CreatedBy, acc.CreatedByToken = p.UserID, p.TokenID
	}
	var l loaded
	err = db.update(func(tx *bolt.Tx) error {
		if n.ProjectID != 0 {
			if _, err := db.loadProject(ctx, tx, n.ProjectID); err != nil {
				return err
			}
			acc.ProjectID = n.ProjectID
		} else {
			pid, err := db.untitledProject(ctx, tx, now, n.Sensitivity)
			if err != nil {
				return err
			}
			acc.ProjectID = pid
		}
		id, err := tx.Bucket(bucketRecords).NextSequence()
		if err != nil {
			return err
		}
		acc.RecordID = id
		l = loaded{row: recordRow{ID: id, Sealed: sealed}, acc: acc, key: &key}
		if err := db.putRecord(tx, &l); err != nil {
			return err
		}
		if err := db.countInProject(tx, acc, +1); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{
			Action: ActionTranscriptCreated, RecordID: id, ProjectID: acc.ProjectID,
			Meta: map[string]any{"sensitivity": acc.Sensitivity},
		})
	})
	if err != nil {
		return nil, err
	}
	return db.recordFrom(l, recordSecrets{Title: n.Title, Language: n.Language}, nil), nil
}

// putRecord seals l.acc into l.row and stores it, with its project index
// entry.
func (db *DB) putRecord(tx *bolt.Tx, l *loaded) error {
	acc, err := db.keys.sealBox(l.acc)
	if err != nil {
		return err
	}
	l.row.Access = acc
	if err := putJSON(tx.Bucket(bucketRecords), itob(l.row.ID), l.row); err != nil {
		return err
	}
	return tx.Bucket(bucketProjectIndex).Put(db.projectIndexKey(l.acc.ProjectID, l.row.ID), nil)
}

// projectIndexKey is the project_records key of record id in project pid:
// a keyed hash of the project, then the record id, so a project's records
// sort together by id and the disk does not say which project they are in.
func (db *DB) projectIndexKey(pid, id uint64) []byte {
	return append(db.indexMAC(indexProject, itob(pid)), itob(id)...)
}

// openRecord opens row under the newsroom key: ErrKeyMissing when its key
// is not configured, ErrCorrupt when it was altered or belongs to another
// row.
func (db *DB) openRecord(row recordRow) (loaded, error) {
	l := loaded{row: row}
	if err := db.keys.openBox(row.Access, &l.acc); err != nil {
		return l, fmt.Errorf("record %d: %w", row.ID, err)
	}
	if l.acc.RecordID != row.ID || len(l.acc.Key) != len(fernet.Key{}) {
		return l, fmt.Errorf("record %d: access of another row: %w", row.ID, ErrCorrupt)
	}
	l.key = new(fernet.Key)
	copy(l.key[:], l.acc.Key)
	return l, nil
}

// loadRecord reads record id in tx; not_found when absent or when ctx's
// principal may not see it, so its existence is not revealed. A row that
// does not open (unknown key, altered) is not_found to everyone but the
// system and admins, who get the internal error.
func (db *DB) loadRecord(ctx context.Context, tx *bolt.Tx, id uint64) (loaded, error) {
	var row recordRow
	ok, err := getJSON(tx.Bucket(bucketRecords), itob(id), &row)
	if err != nil {
		return loaded{}, err
	}
	if !ok {
		return loaded{}, errorf(CodeNotFound, "record not found")
	}
	l, err := db.openRecord(row)
	if err != nil {
		if p := PrincipalFrom(ctx); p != nil && p.Role != RoleAdmin {
			db.log.Warn("record unreadable", "record_id", id, "err", err.Error())
			return l, errorf(CodeNotFound, "record not found")
		}
		return l, err
	}
	if !canSee(ctx, l.acc) {
		return l, errorf(CodeNotFound, "record not found")
	}
	return l, nil
}

// decodeRecord decrypts what the record key seals.
func (db *DB) decodeRecord(tx *bolt.Tx, l loaded) (*Record, error) {
	var s recordSecrets
	if err := openJSON(l.key, l.row.Sealed, &s); err != nil {
		return nil, fmt.Errorf("record %d: %w", l.row.ID, err)
	}
	var audio *Audio
	if l.acc.AssetID != 0 {
		a, err := db.loadAsset(tx, l)
		if err != nil {
			return nil, err
		}
		audio = a.audio()
	}
	return db.recordFrom(l, s, audio), nil
}

func (db *DB) recordFrom(l loaded, s recordSecrets, audio *Audio) *Record {
	status := StatusNew
	if audio != nil {
		status = StatusAudio
	}
	return &Record{
		ID: l.row.ID, ProjectID: l.acc.ProjectID, Title: s.Title, Sensitivity: l.acc.Sensitivity,
		Language: s.Language, Status: status, CreatedAt: l.acc.CreatedAt,
		ExpiresAt: db.expiresAt(l.acc), Hold: l.acc.Hold, RetainUntil: l.acc.RetainUntil, Audio: audio,
		Segments: l.acc.Segments, Notes: l.acc.Notes,
	}
}

// expiresAt is when purge may delete the record (ExpiresAt).
func (db *DB) expiresAt(acc recordAccess) time.Time {
	return ExpiresAt(acc.CreatedAt, acc.Hold, acc.RetainUntil, db.retention)
}

// Record returns record id; not_found when it does not exist or the caller
// may not see it.
func (db *DB) Record(ctx context.Context, id uint64) (rec *Record, err error) {
	defer func() { err = boundary("record", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	err = db.view(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		rec, err = db.decodeRecord(tx, l)
		return err
	})
	return rec, err
}

// MaxPageSize is the most records one Records call returns.
const MaxPageSize = 200

// RecordFilter selects records for Records.
type RecordFilter struct {
	ProjectID uint64 // only this project's records; 0 for all
	Query     string // only records whose title contains it, case-insensitively
	Before    uint64 // only ids below it (the cursor); 0 for the newest
	Limit     int    // 1 to MaxPageSize
}

// maxQueryRunes is the longest title search.
const maxQueryRunes = 200

// Records returns up to f.Limit records the caller may see, newest first.
// next is the cursor for the following page, 0 at the end. A project's
// records are read through its index, so listing one project does not
// scan the others.
func (db *DB) Records(ctx context.Context, f RecordFilter) (recs []*Record, next uint64, err error) {
	defer func() { err = boundary("records", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, 0, err
	}
	if f.Limit <= 0 || f.Limit > MaxPageSize {
		return nil, 0, errorf(CodeValidation, fmt.Sprintf("limit must be between 1 and %d", MaxPageSize))
	}
	query := ""
	if f.Query != "" {
		q, err := cleanText("q", f.Query, maxQueryRunes, false)
		if err != nil {
			return nil, 0, err
		}
		query = strings.ToLower(q)
	}
	err = db.view(func(tx *bolt.Tx) error {
		if f.ProjectID != 0 {
			if _, err := db.loadProject(ctx, tx, f.ProjectID); err != nil {
				return err
			}
		}
		records := tx.Bucket(bucketRecords)
		each := func(yield func(id uint64, v []byte) (bool, error)) error {
			if f.ProjectID == 0 {
				return reverseFrom(records.Cursor(), nil, f.Before, func(k, v []byte) (bool, error) { return yield(btoi(k), v) })
			}
			prefix := db.indexMAC(indexProject, itob(f.ProjectID))
			return reverseFrom(tx.Bucket(bucketProjectIndex).Cursor(), prefix, f.Before, func(k, _ []byte) (bool, error) {
				id := btoi(k[len(prefix):])
				v := records.Get(itob(id))
				if v == nil {
					return true, nil
				}
				return yield(id, v)
			})
		}
		return each(func(id uint64, v []byte) (bool, error) {
			var row recordRow
			if err := json.Unmarshal(v, &row); err != nil {
				return false, err
			}
			l, err := db.openRecord(row)
			if err != nil {
				// One record that cannot be read must not hide the others;
				// only admins (and the system) are told it exists.
				if p := PrincipalFrom(ctx); p != nil && p.Role != RoleAdmin || query != "" {
					return true, nil
				}
				if len(recs) == f.Limit {
					next = recs[len(recs)-1].ID
					return false, nil
				}
				db.log.Warn("record unreadable", "record_id", id, "key_id", row.Access.KeyID, "err", err.Error())
				recs = append(recs, &Record{ID: id, Status: StatusUnreadable})
				return true, nil
			}
			if !canSee(ctx, l.acc) || (f.ProjectID != 0 && l.acc.ProjectID != f.ProjectID) {
				return true, nil
			}
			rec, err := db.decodeRecord(tx, l)
			if errors.Is(err, ErrKeyMissing) || errors.Is(err, ErrCorrupt) {
				db.log.Warn("record unreadable", "record_id", id, "err", err.Error())
				rec = db.recordFrom(l, recordSecrets{}, nil)
				rec.Status = StatusUnreadable
			} else if err != nil {
				return false, err
			}
			if query != "" && !strings.Contains(strings.ToLower(rec.Title), query) {
				return true, nil
			}
			if len(recs) == f.Limit {
				// A next page only when a record the caller may see
				// follows: no hint of the ones it may not.
				next = recs[len(recs)-1].ID
				return false, nil
			}
			recs = append(recs, rec)
			return true, nil
		})
	})
	return recs, next, err
}

// reverseFrom walks c's keys that start with prefix backwards, from the
// last one whose id part (the 8 bytes after prefix) is below before (all
// when before is 0), calling fn until it returns false or an error.
func reverseFrom(c *bolt.Cursor, prefix []byte, before uint64, fn func(k, v []byte) (bool, error)) error {
	var k, v []byte
	if before == 0 {
		// One past the prefix: the first key after every key with it.
		end := nextPrefix(prefix)
		if end == nil {
			k, v = c.Last()
		} else if k, v = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	} else {
		if k, v = c.Seek(append(append([]byte(nil), prefix...), itob(before)...)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	for ; k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix); k, v = c.Prev() {
		if ok, err := fn(k, v); err != nil || !ok {
			return err
		}
	}
	return nil
}

// nextPrefix returns the smallest key greater than every key starting with
// p, or nil when there is none (p empty or all 0xff).
func nextPrefix(p []byte) []byte {
	out := append([]byte(nil), p...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] < 0xff {
			out[i]++
			return out[:i+1]
		}
	}
	return nil
}
