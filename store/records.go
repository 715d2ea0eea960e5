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
	"unicode"
	"unicode/utf8"

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
	ExpiresAt   time.Time
	Audio       *Audio // nil until audio is stored
}

// LogValue logs a record as its id only (DESIGN §11).
func (r *Record) LogValue() slog.Value { return slog.Uint64Value(r.ID) }

// Audio describes a record's stored audio.
type Audio struct {
	FileID     uint64
	SHA256     string // hex, of the original bytes
	SizeBytes  int64
	MIMEType   string
	DurationMS int64 // 0 when unknown
	CreatedAt  time.Time
}

// Project groups records.
type Project struct {
	ID        uint64
	Name      string
	CreatedAt time.Time
	Records   int
	// Unreadable is true when the name's key is not configured; Name is "".
	Unreadable bool
}

// LogValue logs a project as its id only.
func (p *Project) LogValue() slog.Value { return slog.Uint64Value(p.ID) }

// recordRow is a record as stored. Everything that can hold source content
// is in Sealed, encrypted with the record key, which is stored only wrapped
// by the newsroom key with id KeyID.
type recordRow struct {
	ID          uint64    `json:"id"`
	ProjectID   uint64    `json:"project_id"`
	CreatedAt   time.Time `json:"created_at"`
	Sensitivity string    `json:"sensitivity"`
	KeyID       string    `json:"key_id"`
	WrappedKey  []byte    `json:"wrapped_key"`
	Sealed      []byte    `json:"sealed"`
	AssetID     uint64    `json:"asset_id,omitempty"`
	CreatedBy   uint64    `json:"created_by,omitempty"` // user id; 0 for the system
}

// recordSecrets is the plaintext of recordRow.Sealed.
type recordSecrets struct {
	Title    string `json:"title"`
	Language string `json:"language"`
}

// projectRow is a project as stored; its name is sealed under the newsroom
// key with id KeyID.
type projectRow struct {
	ID        uint64    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy uint64    `json:"created_by,omitempty"`
	KeyID     string    `json:"key_id"`
	Name      []byte    `json:"name"`
}

func (n *NewRecord) validate() error {
	n.Title = strings.TrimSpace(n.Title)
	switch {
	case n.Title == "":
		return errorf(CodeValidation, "title is required")
	case !utf8.ValidString(n.Title):
		return errorf(CodeValidation, "title must be UTF-8")
	case utf8.RuneCountInString(n.Title) > MaxTitleRunes:
		return errorf(CodeValidation, fmt.Sprintf("title is longer than %d characters", MaxTitleRunes))
	case strings.IndexFunc(n.Title, unicode.IsControl) >= 0:
		return errorf(CodeValidation, "title must not hold control characters")
	}
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

// CreateRecord creates a record with a new record key, and a project for it
// when n.ProjectID is 0. Audit: project_created, transcript_created.
// Returns validation_error for bad input and not_found for an unknown project.
func (db *DB) CreateRecord(ctx context.Context, n NewRecord) (rec *Record, err error) {
	defer func() { err = boundary("create record", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if err := n.validate(); err != nil {
		return nil, err
	}
	key, wrapped, keyID, err := db.keys.newRecordKey()
	if err != nil {
		return nil, err
	}
	sealed, err := sealJSON(key, recordSecrets{Title: n.Title, Language: n.Language})
	if err != nil {
		return nil, err
	}
	now := db.now().UTC()
	row := recordRow{CreatedAt: now, Sensitivity: n.Sensitivity, KeyID: keyID, WrappedKey: wrapped, Sealed: sealed}
	if p := PrincipalFrom(ctx); p != nil {
		row.CreatedBy = p.UserID
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		projects := tx.Bucket(bucketProjects)
		if n.ProjectID != 0 {
			var pr projectRow
			ok, err := getJSON(projects, itob(n.ProjectID), &pr)
			if err != nil {
				return err
			}
			if !ok || !canSeeProject(ctx, pr, visibleIn(ctx, tx, pr.ID)) {
				return errorf(CodeNotFound, "project not found")
			}
			row.ProjectID = n.ProjectID
		} else {
			id, err := db.createProject(ctx, tx, now)
			if err != nil {
				return err
			}
			row.ProjectID = id
		}
		records := tx.Bucket(bucketRecords)
		id, err := records.NextSequence()
		if err != nil {
			return err
		}
		row.ID = id
		if err := putJSON(records, itob(id), row); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{
			Action: ActionTranscriptCreated, RecordID: id, ProjectID: row.ProjectID,
			Meta: map[string]any{"sensitivity": row.Sensitivity},
		})
	})
	if err != nil {
		return nil, err
	}
	return db.recordFrom(row, n.Title, n.Language, nil), nil
}

func (db *DB) createProject(ctx context.Context, tx *bolt.Tx, now time.Time) (uint64, error) {
	b := tx.Bucket(bucketProjects)
	id, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	name := "Untitled – " + now.Format("2006-01-02")
	sealed, keyID, err := db.keys.seal([]byte(name))
	if err != nil {
		return 0, err
	}
	row := projectRow{ID: id, CreatedAt: now, KeyID: keyID, Name: sealed}
	if p := PrincipalFrom(ctx); p != nil {
		row.CreatedBy = p.UserID
	}
	if err := putJSON(b, itob(id), row); err != nil {
		return 0, err
	}
	return id, db.appendAudit(ctx, tx, AuditEvent{Action: ActionProjectCreated, ProjectID: id})
}

func sealJSON(key *fernet.Key, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return sealWith(key, raw)
}

func openJSON(key *fernet.Key, tok []byte, v any) error {
	raw, err := openWith(tok, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func (db *DB) recordFrom(row recordRow, title, language string, audio *Audio) *Record {
	status := StatusNew
	if audio != nil {
		status = StatusAudio
	}
	return &Record{
		ID: row.ID, ProjectID: row.ProjectID, Title: title, Sensitivity: row.Sensitivity,
		Language: language, Status: status, CreatedAt: row.CreatedAt,
		ExpiresAt: row.CreatedAt.Add(db.retention), Audio: audio,
	}
}

// loadRecord reads record id in tx; not_found when absent or when ctx's
// principal may not see it, so its existence is not revealed.
func loadRecord(ctx context.Context, tx *bolt.Tx, id uint64) (recordRow, error) {
	var row recordRow
	ok, err := getJSON(tx.Bucket(bucketRecords), itob(id), &row)
	if err != nil {
		return row, err
	}
	if !ok || !canSee(ctx, row) {
		return row, errorf(CodeNotFound, "record not found")
	}
	return row, nil
}

// decodeRecord unwraps the record key of row and decrypts what it seals.
func (db *DB) decodeRecord(tx *bolt.Tx, row recordRow) (*Record, error) {
	key, err := db.keys.unwrap(row.WrappedKey)
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", row.ID, err)
	}
	var s recordSecrets
	if err := openJSON(key, row.Sealed, &s); err != nil {
		return nil, fmt.Errorf("record %d: %w", row.ID, err)
	}
	var audio *Audio
	if row.AssetID != 0 {
		var a assetRow
		ok, err := getJSON(tx.Bucket(bucketAssets), itob(row.AssetID), &a)
		if err != nil || !ok {
			return nil, fmt.Errorf("record %d: asset missing: %w", row.ID, ErrCorrupt)
		}
		audio, err = a.decode(key)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", row.ID, err)
		}
	}
	return db.recordFrom(row, s.Title, s.Language, audio), nil
}

// Record returns record id; not_found when it does not exist.
func (db *DB) Record(ctx context.Context, id uint64) (rec *Record, err error) {
	defer func() { err = boundary("record", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		row, err := loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		rec, err = db.decodeRecord(tx, row)
		return err
	})
	return rec, err
}

// MaxPageSize is the most records one Records call returns.
const MaxPageSize = 200

// Records returns up to limit records, newest first, with ids below before
// (all when before is 0). next is the cursor for the following page, 0 at
// the end.
func (db *DB) Records(ctx context.Context, before uint64, limit int) (recs []*Record, next uint64, err error) {
	defer func() { err = boundary("records", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || limit > MaxPageSize {
		return nil, 0, errorf(CodeValidation, fmt.Sprintf("limit must be between 1 and %d", MaxPageSize))
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			k, v = c.Seek(itob(before))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			var row recordRow
			if err := json.Unmarshal(v, &row); err != nil {
				return err
			}
			if !canSee(ctx, row) {
				continue
			}
			if len(recs) == limit {
				// A next page only when a record the caller may see
				// follows: no hint of the ones it may not.
				next = recs[len(recs)-1].ID
				return nil
			}
			rec, err := db.decodeRecord(tx, row)
			if errors.Is(err, ErrKeyMissing) || errors.Is(err, ErrCorrupt) {
				// One record that cannot be read must not hide the others.
				db.log.Warn("record unreadable", "record_id", row.ID, "key_id", row.KeyID, "err", err.Error())
				rec = db.recordFrom(row, "", "", nil)
				rec.Status = StatusUnreadable
			} else if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	return recs, next, err
}

// visibleIn counts the records of project id that ctx's principal may see.
func visibleIn(ctx context.Context, tx *bolt.Tx, id uint64) int {
	n := 0
	tx.Bucket(bucketRecords).ForEach(func(_, v []byte) error {
		var row recordRow
		if json.Unmarshal(v, &row) == nil && row.ProjectID == id && canSee(ctx, row) {
			n++
		}
		return nil
	})
	return n
}

// canSeeProject: a project that holds none of the records the caller may
// see shows only to its creator and admins, so a sensitive record's own
// project does not betray that it exists.
func canSeeProject(ctx context.Context, row projectRow, visible int) bool {
	p := PrincipalFrom(ctx)
	return p == nil || p.Role == RoleAdmin || visible > 0 || row.CreatedBy == p.UserID
}

// Projects returns the projects the caller may see, each with the number of
// records in it the caller may see.
func (db *DB) Projects(ctx context.Context) (ps []*Project, err error) {
	defer func() { err = boundary("projects", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		counts := map[uint64]int{}
		err := tx.Bucket(bucketRecords).ForEach(func(_, v []byte) error {
			var row recordRow
			if err := json.Unmarshal(v, &row); err != nil {
				return err
			}
			if canSee(ctx, row) {
				counts[row.ProjectID]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketProjects).ForEach(func(_, v []byte) error {
			var row projectRow
			if err := json.Unmarshal(v, &row); err != nil {
				return err
			}
			if !canSeeProject(ctx, row, counts[row.ID]) {
				return nil
			}
			p := &Project{ID: row.ID, CreatedAt: row.CreatedAt, Records: counts[row.ID]}
			if name, err := db.keys.open(row.Name); err == nil {
				p.Name = string(name)
			} else {
				db.log.Warn("project name unreadable", "project_id", row.ID, "key_id", row.KeyID)
				p.Unreadable = true
			}
			ps = append(ps, p)
			return nil
		})
	})
	return ps, err
}
