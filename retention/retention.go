// Package retention owns tyst's purge policy (DESIGN §10): which records
// have outlived their retention time (Plan, a pure function), applying that
// plan best effort (Run), and the in-process schedule that runs purge and
// the debug-dump cleanup (Scheduler).
//
// It promises: a record on hold or with a later retain_until is never in a
// plan; Run counts and logs each failure (ids only, never a title or path)
// and goes on with the rest, so a second run cleans up what the first
// could not; a dry run changes nothing.
package retention

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"tyst/store"
)

// DefaultRetention is RECORDER_RETENTION_DAYS' default.
const DefaultRetention = store.DefaultRetention

// purgeBatch is how many records one transaction purges.
const purgeBatch = 100

// LeftoverAge is how old an orphan blob or a temp file must be before
// purge removes it, so an upload or stream in progress is never touched.
const LeftoverAge = time.Hour

// Plan returns the ids of the records in recs that have expired at now
// under retention, oldest first. It reads nothing and changes nothing.
func Plan(now time.Time, recs []store.RetentionInfo, retention time.Duration) []uint64 {
	var due []store.RetentionInfo
	for _, r := range recs {
		exp := store.ExpiresAt(r.CreatedAt, r.Hold, r.RetainUntil, retention)
		if !exp.IsZero() && !now.Before(exp) {
			due = append(due, r)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].CreatedAt.Equal(due[j].CreatedAt) {
			return due[i].CreatedAt.Before(due[j].CreatedAt)
		}
		return due[i].ID < due[j].ID
	})
	ids := make([]uint64, len(due))
	for i, r := range due {
		ids[i] = r.ID
	}
	return ids
}

// Store is what a purge needs; *store.DB implements it.
type Store interface {
	RetentionInfo(ctx context.Context) ([]store.RetentionInfo, error)
	// PurgeRecords deletes expired records in one transaction and says,
	// per record, what it did; an error fails the whole batch.
	PurgeRecords(ctx context.Context, ids []uint64, now time.Time, retention time.Duration) ([]store.Purged, error)
	RemoveBlob(name string) error
	PurgeExports(ctx context.Context, cutoff time.Time, dryRun bool) (int, error)
	SweepOrphans(ctx context.Context, olderThan time.Time, dryRun bool) (int, error)
	PurgeSessions(ctx context.Context, now time.Time, dryRun bool) (int, error)
	Compact(ctx context.Context) (store.CompactStats, error)
}

// Options configure a Run.
type Options struct {
	Retention time.Duration // DefaultRetention when zero
	DryRun    bool
	Now       time.Time    // the clock's reading; required
	Logger    *slog.Logger // discards when nil
}

// Stats is what a purge did (DESIGN §10), the JSON `tyst purge` prints.
type Stats struct {
	PurgedCount    int    `json:"purged_count"`
	FilesDeleted   int    `json:"files_deleted"`
	ExportsDeleted int    `json:"exports_deleted"`
	OrphansDeleted int    `json:"orphans_deleted"`
	Errors         int    `json:"errors"`
	DryRun         bool   `json:"dry_run"`
	RetentionDays  int    `json:"retention_days"`
	CutoffDate     string `json:"cutoff_date"`
	// SessionsDeleted counts expired logins swept.
	SessionsDeleted int `json:"sessions_deleted"`
}

// Run purges what Plan says has expired at o.Now, export packages older
// than the cutoff, orphan blobs and temp files older than LeftoverAge, and
// expired sessions; then compacts the database so freed pages keep no
// wrapped key of a purged record. Best effort: each failure is counted in
// Stats.Errors, logged, and the rest goes on. The error is only for a
// purge that could not start (the records could not be listed).
func Run(ctx context.Context, s Store, o Options) (Stats, error) {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cutoff := o.Now.Add(-o.Retention)
	st := Stats{DryRun: o.DryRun, RetentionDays: int(o.Retention / (24 * time.Hour)), CutoffDate: cutoff.UTC().Format(time.RFC3339)}
	recs, err := s.RetentionInfo(ctx)
	if err != nil {
		return st, err
	}
	fail := func(what string, err error, attrs ...any) {
		st.Errors++
		log.Warn("purge: "+what+" failed", append(attrs, "err", err.Error())...)
	}
	plan := Plan(o.Now, recs, o.Retention)
	for start := 0; start < len(plan); start += purgeBatch {
		if ctx.Err() != nil {
			fail("run", ctx.Err())
			break
		}
		batch := plan[start:min(start+purgeBatch, len(plan))]
		if o.DryRun {
			st.PurgedCount += len(batch)
			continue
		}
		done, err := s.PurgeRecords(ctx, batch, o.Now, o.Retention)
		if err != nil {
			// The batch's transaction failed: one by one, so one bad
			// record does not keep the others.
			done = done[:0]
			for _, id := range batch {
				one, err := s.PurgeRecords(ctx, []uint64{id}, o.Now, o.Retention)
				if err != nil {
					one = []store.Purged{{ID: id, Err: err}}
				}
				done = append(done, one...)
			}
		}
		for _, p := range done {
			switch {
			case store.ErrorCode(p.Err) == store.CodeConflict, store.ErrorCode(p.Err) == store.CodeNotFound:
				continue // put on hold or destroyed meanwhile
			case p.Err != nil:
				fail("record", p.Err, "record_id", p.ID)
				continue
			}
			st.PurgedCount++
			st.ExportsDeleted += p.Exports // removed with their record
			if p.Blob == "" {
				continue
			}
			if err := s.RemoveBlob(p.Blob); err != nil {
				fail("blob removal", err, "record_id", p.ID) // the orphan sweep of a later run retries
				continue
			}
			st.FilesDeleted++
		}
	}
	n, err := s.PurgeExports(ctx, cutoff, o.DryRun)
	st.ExportsDeleted += n
	if err != nil {
		fail("export packages", err)
	}
	n, err = s.SweepOrphans(ctx, o.Now.Add(-LeftoverAge), o.DryRun)
	st.OrphansDeleted = n
	if err != nil {
		fail("orphan sweep", err)
	}
	n, err = s.PurgeSessions(ctx, o.Now, o.DryRun)
	st.SessionsDeleted = n
	if err != nil {
		fail("sessions", err)
	}
	if !o.DryRun && (st.PurgedCount > 0 || st.SessionsDeleted > 0) {
		if _, err := s.Compact(ctx); err != nil && !errors.Is(err, context.Canceled) {
			fail("compaction", err)
		}
	}
	log.Info("purge finished", "purged", st.PurgedCount, "files", st.FilesDeleted, "exports", st.ExportsDeleted,
		"orphans", st.OrphansDeleted, "sessions", st.SessionsDeleted, "errors", st.Errors, "dry_run", st.DryRun)
	return st, nil
}
