package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxProjectNameRunes is the longest project name accepted.
const MaxProjectNameRunes = 200

// Project groups records.
type Project struct {
	ID          uint64
	Name        string
	Sensitivity string
	CreatedAt   time.Time
	Records     int // records in it that the caller may see
	// Unreadable is true when the project's key is not configured; Name is "".
	Unreadable bool
}

// LogValue logs a project as its id only.
func (p *Project) LogValue() slog.Value { return slog.Uint64Value(p.ID) }

// projectRow is a project as stored: its id, and everything else sealed
// under the newsroom key, including its record counts, so that listing
// projects reads no record.
type projectRow struct {
	ID  uint64 `json:"id"`
	Box box    `json:"box"` // projectSecrets
}

// projectSecrets is the plaintext of projectRow.Box.
type projectSecrets struct {
	ProjectID   uint64    `json:"project_id"` // binds the box to its row
	Name        string    `json:"name"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   uint64    `json:"created_by,omitempty"`
	Sensitivity string    `json:"sensitivity"`
	// Standard counts the project's standard records; Sensitive its
	// sensitive ones per creator (user id), which only they and admins see.
	Standard  int            `json:"standard"`
	Sensitive map[uint64]int `json:"sensitive,omitempty"`
}

// canSeeProject: a sensitive project (one made for a sensitive record) only
// its creator and admins see, so it does not betray that the record exists.
func canSeeProject(ctx context.Context, ps projectSecrets) bool {
	p := PrincipalFrom(ctx)
	return p == nil || p.Role == RoleAdmin || ps.Sensitivity != SensitivitySensitive || ps.CreatedBy == p.UserID
}

// visibleCount is how many of the project's records ctx's principal sees.
func visibleCount(ctx context.Context, ps projectSecrets) int {
	p := PrincipalFrom(ctx)
	if p == nil || p.Role == RoleAdmin {
		n := ps.Standard
		for _, c := range ps.Sensitive {
			n += c
		}
		return n
	}
	return ps.Standard + ps.Sensitive[p.UserID]
}

// openProject opens a project row under the newsroom key.
func (db *DB) openProject(row projectRow) (projectSecrets, error) {
	var ps projectSecrets
	if err := db.keys.openBox(row.Box, &ps); err != nil {
		return ps, err
	}
	if ps.ProjectID != row.ID {
		return ps, ErrCorrupt
	}
	return ps, nil
}

// loadProject reads project id; not_found when absent, unreadable or not
// visible to ctx's principal.
func (db *DB) loadProject(ctx context.Context, tx *bolt.Tx, id uint64) (projectSecrets, error) {
	var row projectRow
	ok, err := getJSON(tx.Bucket(bucketProjects), itob(id), &row)
	if err != nil {
		return projectSecrets{}, err
	}
	if !ok {
		return projectSecrets{}, errorf(CodeNotFound, "project not found")
	}
	ps, err := db.openProject(row)
	if err != nil {
		db.log.Warn("project unreadable", "project_id", id, "key_id", row.Box.KeyID)
		return ps, errorf(CodeNotFound, "project not found")
	}
	if !canSeeProject(ctx, ps) {
		return ps, errorf(CodeNotFound, "project not found")
	}
	return ps, nil
}

func (db *DB) putProject(tx *bolt.Tx, ps projectSecrets) error {
	b, err := db.keys.sealBox(ps)
	if err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketProjects), itob(ps.ProjectID), projectRow{ID: ps.ProjectID, Box: b})
}

func (db *DB) createProject(ctx context.Context, tx *bolt.Tx, name, sensitivity string) (projectSecrets, error) {
	id, err := tx.Bucket(bucketProjects).NextSequence()
	if err != nil {
		return projectSecrets{}, err
	}
	ps := projectSecrets{ProjectID: id, Name: name, CreatedAt: db.now().UTC(), Sensitivity: sensitivity}
	if p := PrincipalFrom(ctx); p != nil {
		ps.CreatedBy = p.UserID
	}
	if err := db.putProject(tx, ps); err != nil {
		return ps, err
	}
	return ps, db.appendAudit(ctx, tx, AuditEvent{Action: ActionProjectCreated, ProjectID: id})
}

// countInProject adds delta to the count of acc's record in its project.
func (db *DB) countInProject(tx *bolt.Tx, acc recordAccess, delta int) error {
	var row projectRow
	if ok, err := getJSON(tx.Bucket(bucketProjects), itob(acc.ProjectID), &row); err != nil || !ok {
		return err // a project that is gone has nothing to count
	}
	ps, err := db.openProject(row)
	if err != nil {
		return err
	}
	if acc.Sensitivity == SensitivitySensitive {
		if ps.Sensitive == nil {
			ps.Sensitive = map[uint64]int{}
		}
		ps.Sensitive[acc.CreatedBy] += delta
		if ps.Sensitive[acc.CreatedBy] <= 0 {
			delete(ps.Sensitive, acc.CreatedBy)
		}
	} else {
		ps.Standard = max(ps.Standard+delta, 0)
	}
	return db.putProject(tx, ps)
}

func newProject(ctx context.Context, ps projectSecrets) *Project {
	return &Project{ID: ps.ProjectID, Name: ps.Name, Sensitivity: ps.Sensitivity, CreatedAt: ps.CreatedAt, Records: visibleCount(ctx, ps)}
}

// Projects returns the projects the caller may see, each with the number of
// its records the caller may see. It reads only the projects.
func (db *DB) Projects(ctx context.Context) (out []*Project, err error) {
	defer func() { err = boundary("projects", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	err = db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProjects).ForEach(func(_, v []byte) error {
			var row projectRow
			if err := json.Unmarshal(v, &row); err != nil {
				return err
			}
			ps, err := db.openProject(row)
			if err != nil {
				if p := PrincipalFrom(ctx); p == nil || p.Role == RoleAdmin {
					db.log.Warn("project unreadable", "project_id", row.ID, "key_id", row.Box.KeyID)
					out = append(out, &Project{ID: row.ID, Unreadable: true})
				}
				return nil
			}
			if canSeeProject(ctx, ps) {
				out = append(out, newProject(ctx, ps))
			}
			return nil
		})
	})
	return out, err
}

// NewProject is what CreateProject needs.
type NewProject struct {
	Name        string
	Sensitivity string // standard (default) or sensitive
}

// CreateProject creates a project. Audit project_created. Returns
// validation_error.
func (db *DB) CreateProject(ctx context.Context, n NewProject) (p *Project, err error) {
	defer func() { err = boundary("create project", err) }()
	name, err := cleanText("name", n.Name, MaxProjectNameRunes, false)
	if err != nil {
		return nil, err
	}
	switch n.Sensitivity {
	case "":
		n.Sensitivity = SensitivityStandard
	case SensitivityStandard, SensitivitySensitive:
	default:
		return nil, errorf(CodeValidation, "sensitivity must be standard or sensitive")
	}
	err = db.update(func(tx *bolt.Tx) error {
		ps, err := db.createProject(ctx, tx, name, n.Sensitivity)
		p = newProject(ctx, ps)
		return err
	})
	return p, err
}

// RenameProject renames project id. Audit project_renamed. Returns
// not_found, validation_error.
func (db *DB) RenameProject(ctx context.Context, id uint64, name string) (p *Project, err error) {
	defer func() { err = boundary("rename project", err) }()
	name, err = cleanText("name", name, MaxProjectNameRunes, false)
	if err != nil {
		return nil, err
	}
	err = db.update(func(tx *bolt.Tx) error {
		ps, err := db.loadProject(ctx, tx, id)
		if err != nil {
			return err
		}
		ps.Name = name
		if err := db.putProject(tx, ps); err != nil {
			return err
		}
		p = newProject(ctx, ps)
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionProjectRenamed, ProjectID: id})
	})
	return p, err
}

var bucketUntitled = []byte("day_projects")

// untitledProject returns the id of ctx's principal's "Untitled –
// YYYY-MM-DD" project of now's day and sensitivity, creating it on first
// use, so records made without a project group by day instead of each
// getting a project of its own. The index key is a keyed hash of user, day
// and sensitivity.
func (db *DB) untitledProject(ctx context.Context, tx *bolt.Tx, now time.Time, sensitivity string) (uint64, error) {
	var user uint64
	if p := PrincipalFrom(ctx); p != nil {
		user = p.UserID
	}
	day := now.Format("2006-01-02")
	key := db.indexMAC(indexUntitled, []byte(fmt.Sprintf("%d|%s|%s", user, day, sensitivity)))
	b := tx.Bucket(bucketUntitled)
	if v := b.Get(key); v != nil {
		id := btoi(v)
		var row projectRow
		if ok, err := getJSON(tx.Bucket(bucketProjects), itob(id), &row); err == nil && ok {
			if ps, err := db.openProject(row); err == nil && canSeeProject(ctx, ps) {
				return id, nil
			}
		}
		// Renamed projects stay the user's; a project that is gone or
		// no longer opens is replaced.
	}
	ps, err := db.createProject(ctx, tx, "Untitled – "+day, sensitivity)
	if err != nil {
		return 0, err
	}
	return ps.ProjectID, b.Put(key, itob(ps.ProjectID))
}
