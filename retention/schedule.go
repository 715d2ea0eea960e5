package retention

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultPurgeSchedule runs purge daily at 02:00 UTC.
const DefaultPurgeSchedule = "0 2 * * *"

// DumpCleanupSchedule runs the debug-dump cleanup every 10 minutes.
const DumpCleanupSchedule = "*/10 * * * *"

// CheckSchedule reports whether spec is a standard five-field cron spec.
// The error names no value.
func CheckSchedule(spec string) error {
	if _, err := cron.ParseStandard(spec); err != nil {
		return fmt.Errorf("not a cron schedule of five fields (minute hour day month weekday)")
	}
	return nil
}

// Scheduler runs jobs on cron schedules, in UTC. A job that panics is
// logged and the server lives on (robfig/cron recovers only when told to);
// a job still running when its next time comes is skipped, not doubled.
type Scheduler struct {
	c    *cron.Cron
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc

	mu  sync.Mutex
	ids map[string]cron.EntryID
}

// NewScheduler returns a scheduler that logs through log.
func NewScheduler(log *slog.Logger) *Scheduler {
	l := cronLogger{log}
	ctx, stop := context.WithCancel(context.Background())
	return &Scheduler{
		c:   cron.New(cron.WithLocation(time.UTC), cron.WithLogger(l), cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l))),
		log: log, ctx: ctx, stop: stop, ids: map[string]cron.EntryID{},
	}
}

// Add schedules job under name on spec (five fields, UTC). The job's
// context ends when the scheduler stops.
func (s *Scheduler) Add(name, spec string, job func(ctx context.Context)) error {
	if err := CheckSchedule(spec); err != nil {
		return err
	}
	id, err := s.c.AddFunc(spec, func() { job(s.ctx) })
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ids[name] = id
	s.mu.Unlock()
	return nil
}

// Next returns when job name runs next; zero before Start or for an
// unknown name.
func (s *Scheduler) Next(name string) time.Time {
	s.mu.Lock()
	id, ok := s.ids[name]
	s.mu.Unlock()
	if !ok {
		return time.Time{}
	}
	return s.c.Entry(id).Next
}

// RunNow runs job name at once, through the same wrappers as a scheduled
// run (recover, skip if still running), and waits for it.
func (s *Scheduler) RunNow(name string) bool {
	s.mu.Lock()
	id, ok := s.ids[name]
	s.mu.Unlock()
	if ok {
		s.c.Entry(id).WrappedJob.Run()
	}
	return ok
}

// Start runs the schedule in the background.
func (s *Scheduler) Start() { s.c.Start() }

// Stop ends the schedule, cancels running jobs' context and waits for them
// (or for ctx).
func (s *Scheduler) Stop(ctx context.Context) {
	s.stop()
	select {
	case <-s.c.Stop().Done():
	case <-ctx.Done():
	}
}

// cronLogger passes robfig/cron's log lines to slog (its default logger
// prints to stdout).
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "wake" || msg == "run" || msg == "schedule" || msg == "added" || msg == "start" || msg == "stop" {
		return // routine; each job logs what it did
	}
	l.log.Info("cron: "+msg, sanitize(kv)...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(sanitize(kv), "err", fmt.Sprint(err))...)
}

// sanitize keeps cron's key-value pairs but drops entry functions.
func sanitize(kv []any) []any {
	out := make([]any, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok && k != "entry" {
			out = append(out, k, fmt.Sprint(kv[i+1]))
		}
	}
	return out
}
