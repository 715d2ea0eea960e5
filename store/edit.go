package store

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/store/transcript"
)

var (
	bucketSegments = []byte("segments")
	bucketNotes    = []byte("notes")
)

// RecordUpdate changes a record; nil fields stay as they are. Hold and
// RetainUntil are for admins only.
type RecordUpdate struct {
	Title     *string
	ProjectID *uint64
	Hold      *bool
	// RetainUntil keeps the record at least until then; a zero time clears it.
	RetainUntil *time.Time
}

// UpdateRecord renames a record, moves it to another project the caller
// may see, or (admins) sets its hold and retain_until. Audit
// record_updated. Returns not_found, validation_error, forbidden (hold or
// retain_until by a non-admin).
func (db *DB) UpdateRecord(ctx context.Context, id uint64, up RecordUpdate) (rec *Record, err error) {
	defer func() { err = boundary("update record", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if up.Title == nil && up.ProjectID == nil && up.Hold == nil && up.RetainUntil == nil {
		return nil, errorf(CodeValidation, "nothing to change: give title, project_id, hold or retain_until")
	}
	if p := PrincipalFrom(ctx); (up.Hold != nil || up.RetainUntil != nil) && p != nil && p.Role != RoleAdmin {
		return nil, errorf(CodeForbidden, "only admins set hold and retain_until")
	}
	var title string
	if up.Title != nil {
		if title, err = cleanText("title", *up.Title, MaxTitleRunes, false); err != nil {
			return nil, err
		}
	}
	err = db.update(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		meta := map[string]any{}
		var secrets recordSecrets
		if err := openJSON(l.key, l.row.Sealed, &secrets); err != nil {
			return err
		}
		if up.Title != nil {
			secrets.Title = title
			if l.row.Sealed, err = sealJSON(l.key, secrets); err != nil {
				return err
			}
			meta["title_changed"] = true
		}
		if up.ProjectID != nil && *up.ProjectID != l.acc.ProjectID {
			if _, err := db.loadProject(ctx, tx, *up.ProjectID); err != nil {
				return err
			}
			if err := db.countInProject(tx, l.acc, -1); err != nil {
				return err
			}
			if err := tx.Bucket(bucketProjectIndex).Delete(db.projectIndexKey(l.acc.ProjectID, id)); err != nil {
				return err
			}
			l.acc.ProjectID = *up.ProjectID
			if err := db.countInProject(tx, l.acc, +1); err != nil {
				return err
			}
			meta["project_changed"] = true
		}
		if up.Hold != nil {
			l.acc.Hold = *up.Hold
			meta["hold"] = *up.Hold
		}
		if up.RetainUntil != nil {
			l.acc.RetainUntil = up.RetainUntil.UTC()
			meta["retain_until_set"] = !up.RetainUntil.IsZero()
		}
		if err := db.putRecord(tx, &l); err != nil {
			return err
		}
		if err := db.appendAudit(ctx, tx, AuditEvent{Action: ActionRecordUpdated, RecordID: id, ProjectID: l.acc.ProjectID, Meta: meta}); err != nil {
			return err
		}
		rec, err = db.decodeRecord(tx, l)
		return err
	})
	return rec, err
}

// Segment is one stretch of a record's transcript.
type Segment = transcript.Segment

// PutSegments replaces record id's transcript with segs, checked by
// transcript.Check and sealed under the record key. Audit
// segments_replaced (count only). Returns not_found, validation_error.
func (db *DB) PutSegments(ctx context.Context, id uint64, segs []Segment) (err error) {
	defer func() { err = boundary("put segments", err) }()
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if segs == nil {
		segs = []Segment{}
	}
	if err := transcript.Check(segs); err != nil {
		return &Error{Code: CodeValidation, Message: err.Error()}
	}
	return db.update(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		sealed, err := sealJSON(l.key, segs)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketSegments).Put(itob(id), sealed); err != nil {
			return err
		}
		l.acc.Segments = len(segs)
		if err := db.putRecord(tx, &l); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionSegmentsReplaced, RecordID: id, ProjectID: l.acc.ProjectID,
			Meta: map[string]any{"segments": len(segs)}})
	})
}

// Segments returns record id's transcript, oldest first. Returns not_found.
func (db *DB) Segments(ctx context.Context, id uint64) (segs []Segment, err error) {
	defer func() { err = boundary("segments", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		segs, err = db.segments(tx, l)
		return err
	})
	return segs, err
}

func (db *DB) segments(tx *bolt.Tx, l loaded) ([]Segment, error) {
	segs := []Segment{}
	if v := tx.Bucket(bucketSegments).Get(itob(l.row.ID)); v != nil {
		if err := openJSON(l.key, v, &segs); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

// MaxNoteRunes is the longest note; MaxNotes the most notes per record.
const (
	MaxNoteRunes = 20_000
	MaxNotes     = 1_000
)

// Note is a reporter's note on a record.
type Note struct {
	ID        uint64    `json:"note_id"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy uint64    `json:"created_by,omitempty"`
}

// noteKey is the notes key of note nid of record id.
func noteKey(id, nid uint64) []byte { return append(itob(id), itob(nid)...) }

// AddNote adds a note to record id, sealed under the record key. Audit
// note_added. Returns not_found, validation_error.
func (db *DB) AddNote(ctx context.Context, id uint64, text string) (n *Note, err error) {
	defer func() { err = boundary("add note", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	text, err = cleanText("text", text, MaxNoteRunes, true)
	if err != nil {
		return nil, err
	}
	err = db.update(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		if l.acc.Notes >= MaxNotes {
			return errorf(CodeValidation, "a record holds at most 1000 notes")
		}
		b := tx.Bucket(bucketNotes)
		nid, err := b.NextSequence()
		if err != nil {
			return err
		}
		n = &Note{ID: nid, Text: text, CreatedAt: db.now().UTC()}
		if p := PrincipalFrom(ctx); p != nil {
			n.CreatedBy = p.UserID
		}
		sealed, err := sealJSON(l.key, n)
		if err != nil {
			return err
		}
		if err := b.Put(noteKey(id, nid), sealed); err != nil {
			return err
		}
		l.acc.Notes++
		if err := db.putRecord(tx, &l); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionNoteAdded, RecordID: id, ProjectID: l.acc.ProjectID, Meta: map[string]any{"note_id": nid}})
	})
	return n, err
}

// Notes returns record id's notes, oldest first. Returns not_found.
func (db *DB) Notes(ctx context.Context, id uint64) (notes []*Note, err error) {
	defer func() { err = boundary("notes", err) }()
	err = db.view(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		notes, err = db.notes(tx, l)
		return err
	})
	return notes, err
}

func (db *DB) notes(tx *bolt.Tx, l loaded) ([]*Note, error) {
	notes := []*Note{}
	prefix := itob(l.row.ID)
	c := tx.Bucket(bucketNotes).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var n Note
		if err := openJSON(l.key, v, &n); err != nil {
			return nil, err
		}
		if n.ID != btoi(k[8:]) {
			return nil, ErrCorrupt
		}
		notes = append(notes, &n)
	}
	return notes, nil
}

// DeleteNote removes note nid of record id. Audit note_deleted. Returns
// not_found.
func (db *DB) DeleteNote(ctx context.Context, id, nid uint64) (err error) {
	defer func() { err = boundary("delete note", err) }()
	return db.update(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketNotes)
		if b.Get(noteKey(id, nid)) == nil {
			return errorf(CodeNotFound, "note not found")
		}
		if err := b.Delete(noteKey(id, nid)); err != nil {
			return err
		}
		l.acc.Notes = max(l.acc.Notes-1, 0)
		if err := db.putRecord(tx, &l); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionNoteDeleted, RecordID: id, ProjectID: l.acc.ProjectID, Meta: map[string]any{"note_id": nid}})
	})
}
