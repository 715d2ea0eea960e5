package store_test

import (
	"context"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"tyst/store"
	"tyst/store/blob"
)

// cancelAt is an export store whose writes call cancel once at bytes have
// reached it: a client that gives up while its package is being written.
type cancelAt struct {
	blob.Store
	at     int64
	cancel context.CancelFunc

	mu      sync.Mutex
	written int64 // by the last writer
}

func (c *cancelAt) Create() (blob.Writer, error) {
	w, err := c.Store.Create()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.written = 0
	c.mu.Unlock()
	return &cancelWriter{Writer: w, c: c}, nil
}

func (c *cancelAt) setCancel(f context.CancelFunc) {
	c.mu.Lock()
	c.cancel = f
	c.mu.Unlock()
}

func (c *cancelAt) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

type cancelWriter struct {
	blob.Writer
	c *cancelAt
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	w.c.written += int64(len(p))
	if w.c.written >= w.c.at && w.c.cancel != nil {
		w.c.cancel()
	}
	w.c.mu.Unlock()
	return w.Writer.Write(p)
}

// cancelEnv opens a store whose export store is hook (wrapping the real
// one, when not nil) and fault, with a record of audio MiB of audio and an
// account quota of quota MiB.
func cancelEnv(t *testing.T, audio, quota int64, hook *cancelAt, fault func(string) error) (*store.DB, *testEnv, uint64, context.Context) {
	t.Helper()
	env := newEnv(t)
	opts := testOptions(t, env)
	opts.ExportLimits = &store.ExportLimits{PerUser: quota << 20}
	opts.Fault = fault
	if hook != nil {
		local, err := blob.NewLocal(filepath.Join(env.dir, "exports"), blob.LocalOptions{Names: regexp.MustCompile(`^export-[0-9a-f]{32}$`), Ext: ".zip.enc"})
		if err != nil {
			t.Fatal(err)
		}
		hook.Store = local
		opts.Exports = hook
	}
	db := mustOpenEnv(t, env, opts)
	rec := mustCreate(t, db, "flaky link")
	mustAttach(t, db, rec.ID, "audio/wav", wavOfSize(int(audio<<20), 1))
	return db, env, rec.ID, store.WithPrincipal(ctx, mustPrincipal(t, db, "editor", store.RoleEditor, ""))
}

// mustAbandon runs an export under run's cancellable context and checks
// that it is abandoned: unavailable, nothing changed (no package file,
// temp file, row, receipt or audit event), and the account's next export
// fits its quota, which holds one package (the one after is refused).
func mustAbandon(t *testing.T, db *store.DB, env *testEnv, id uint64, ed context.Context, run func(context.Context) error) {
	t.Helper()
	before := exportSnapshot(t, db, env.dir)
	wantCode(t, run(ed), store.CodeUnavailable)
	if after := exportSnapshot(t, db, env.dir); after != before {
		t.Fatalf("an abandoned export changed something:\n%s\n---\n%s", before, after)
	}
	req := store.ExportRequest{Confirm: true, Reason: "for the desk"}
	if _, err := db.Export(ed, id, req); err != nil {
		t.Fatalf("the next export: %v", err)
	}
	_, err := db.Export(ed, id, req)
	wantCode(t, err, store.CodeQuotaExceeded)
}

// TestExport_CancelledMidWrite: a client that gives up while its package
// is being written stops the export within a few chunks, and the export
// leaves nothing.
func TestExport_CancelledMidWrite(t *testing.T) {
	hook := &cancelAt{at: 1 << 20}
	db, env, id, ed := cancelEnv(t, 16, 48, hook, nil) // a package of 32 MiB
	var stopped int64
	mustAbandon(t, db, env, id, ed, func(ed context.Context) error {
		c, cancel := context.WithCancel(ed)
		defer cancel()
		hook.setCancel(cancel)
		_, err := db.Export(c, id, store.ExportRequest{Confirm: true, Reason: "for the desk"})
		hook.setCancel(nil)
		stopped = hook.bytes()
		return err
	})
	// What is in flight when the client goes — a few read-ahead buffers,
	// a chunk or two per stage — is written; nothing more.
	if stopped < 1<<20 || stopped > 8<<20 {
		t.Fatalf("the abandoned export wrote %d bytes, want it stopped soon after 1 MiB", stopped)
	}
}

// TestExport_CancelledBeforeCommit: a client that gives up once its
// package is written — before the file has its name, or after, before the
// transaction that records it — leaves nothing either.
func TestExport_CancelledBeforeCommit(t *testing.T) {
	for _, point := range []string{store.FaultExportWritten, store.FaultExportRenamed} {
		t.Run(point, func(t *testing.T) {
			var mu sync.Mutex
			var cancel context.CancelFunc
			reached := false
			db, env, id, ed := cancelEnv(t, 3, 12, nil, func(p string) error { // packages of 8 MiB
				mu.Lock()
				defer mu.Unlock()
				if p == point && cancel != nil {
					reached = true
					cancel()
				}
				return nil
			})
			mustAbandon(t, db, env, id, ed, func(ed context.Context) error {
				c, cf := context.WithCancel(ed)
				defer cf()
				mu.Lock()
				cancel = cf
				mu.Unlock()
				_, err := db.Export(c, id, store.ExportRequest{Confirm: true, Reason: "for the desk"})
				mu.Lock()
				cancel = nil
				mu.Unlock()
				return err
			})
			if !reached {
				t.Fatalf("the export never reached %s: the test proves nothing", point)
			}
		})
	}
}
