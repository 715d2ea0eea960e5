package main

import (
	"context"
	"flag"
	"log/slog"
	"strconv"
	"time"

	"tyst/api"
	"tyst/retention"
	"tyst/store"
)

// retentionSettings are serve's purge settings (DESIGN §10).
type retentionSettings struct {
	schedule string
	dryRun   bool
}

// retentionFlags registers the purge schedule and dry-run flags.
func retentionFlags(fs *flag.FlagSet, r *retentionSettings) error {
	fs.StringVar(&r.schedule, "purge-schedule", envOr("TYST_PURGE_SCHEDULE", retention.DefaultPurgeSchedule),
		"when purge runs in the server: a five-field cron spec in UTC (TYST_PURGE_SCHEDULE)")
	dry := envOr("RECORDER_PURGE_DRY_RUN", "false")
	def, err := strconv.ParseBool(dry)
	if err != nil {
		return &usageError{"RECORDER_PURGE_DRY_RUN must be true or false"}
	}
	fs.BoolVar(&r.dryRun, "purge-dry-run", def, "scheduled purges only count what they would delete (RECORDER_PURGE_DRY_RUN)")
	return nil
}

func (r *retentionSettings) validate() error {
	if err := retention.CheckSchedule(r.schedule); err != nil {
		return &usageError{"--purge-schedule (TYST_PURGE_SCHEDULE) is " + err.Error()}
	}
	return nil
}

// schedulePurge runs purge on the schedule of r, through m, so its stats
// show in GET /status; and the cleanup jobs, each every ten minutes.
func schedulePurge(s *retention.Scheduler, r retentionSettings, m *maintainer, log *slog.Logger, cleanups ...func(ctx context.Context)) error {
	err := s.Add("purge", r.schedule, func(ctx context.Context) {
		if _, err := m.Purge(ctx, r.dryRun, 0, nil); err != nil {
			log.Error("scheduled purge could not run", "err", err.Error())
		}
	})
	if err != nil {
		return err
	}
	for i, c := range cleanups {
		if err := s.Add("cleanup-"+strconv.Itoa(i), retention.DumpCleanupSchedule, c); err != nil {
			return err
		}
	}
	return nil
}

// statusFunc fills what the server around the API knows into GET /status:
// retention, the purge schedule and its last run, the key source and
// warnings.
func statusFunc(r retentionSettings, ret time.Duration, s *retention.Scheduler, m *maintainer, keys *store.Keyring, src store.KeySource, dataDir string, dump func() api.DumpStatus) api.StatusFunc {
	return func(ctx context.Context, rep *api.StatusReport) error {
		rep.RetentionDays = int(ret / (24 * time.Hour))
		rep.Purge = api.PurgeStatus{Schedule: r.schedule + " (UTC)", DryRun: r.dryRun}
		if next := s.Next("purge"); !next.IsZero() {
			at := next.UTC().Format(time.RFC3339)
			rep.Purge.NextAt = &at
		}
		if last := m.lastRun(); last != nil {
			rep.Purge.Last = last
		}
		if dump != nil {
			rep.DebugDump = dump()
		}
		rep.Keys.Source = string(src)
		rep.Keys.PrimaryID = keys.PrimaryID()
		gen, _ := store.GeneratedKeyID(dataDir)
		rep.Keys.BesideData = gen != ""
		if src == store.KeyFromDataDir {
			rep.Keys.Warnings = append(rep.Keys.Warnings, "the newsroom key lies beside the data (files.key): anyone who copies the data directory can read everything; set PROJECT_FILES_KEY or --key-file")
		} else if rep.Keys.BesideData {
			rep.Keys.Warnings = append(rep.Keys.Warnings, "a generated files.key is still in the data directory: run tyst rekey, then remove it once it covers nothing")
		}
		for id, n := range rep.Keys.ItemsPerKey {
			if id != keys.PrimaryID() && n > 0 {
				rep.Keys.Warnings = append(rep.Keys.Warnings, strconv.Itoa(n)+" items are still sealed under key "+id+": run tyst rekey")
			}
		}
		return nil
	}
}
