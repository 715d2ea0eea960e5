package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"tyst/retention"
	"tyst/store"
	"tyst/stream/dump"
)

// maintainer carries out the long operations — purge, verify, rekey,
// backup — on an open database. The server answers them over the admin
// socket with it (and runs purge on its schedule); the CLI runs them with
// it when no server runs.
type maintainer struct {
	db        *store.DB
	keys      *store.Keyring
	dataDir   string
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu   sync.Mutex
	last *lastPurge // the last purge this process ran, for GET /status
}

// lastPurge is a finished purge's stats and when it finished.
type lastPurge struct {
	retention.Stats
	FinishedAt time.Time `json:"finished_at"`
}

func newMaintainer(db *store.DB, keys *store.Keyring, dataDir string, ret time.Duration, log *slog.Logger) *maintainer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &maintainer{db: db, keys: keys, dataDir: dataDir, retention: ret, log: log, now: time.Now}
}

// Purge runs one purge (DESIGN §10). retentionDays overrides the server's
// retention when it is above 0.
func (m *maintainer) Purge(ctx context.Context, dryRun bool, retentionDays int, _ func(done, total int)) (any, error) {
	ret := m.retention
	if retentionDays > 0 {
		ret = time.Duration(retentionDays) * 24 * time.Hour
	}
	st, err := retention.Run(ctx, m.db, retention.Options{Retention: ret, DryRun: dryRun, Now: m.now(), Logger: m.log})
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.last = &lastPurge{Stats: st, FinishedAt: m.now().UTC()}
	m.mu.Unlock()
	return st, nil
}

// lastRun returns the last purge, or nil.
func (m *maintainer) lastRun() *lastPurge {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// Verify checks every blob, key and the audit chain, and that the log still
// holds auditHead (an earlier report's audit.head) when it is set.
func (m *maintainer) Verify(ctx context.Context, auditHead string, progress func(done, total int)) (any, error) {
	return m.db.Verify(ctx, store.VerifyOptions{Progress: progress, AuditHead: auditHead})
}

// Rekey seals everything under the primary key, the debug dumps included
// (those written to in the last minute wait for the next run).
func (m *maintainer) Rekey(ctx context.Context, progress func(done, total int)) (any, error) {
	st, err := m.db.Rekey(ctx, store.RekeyOptions{Progress: progress})
	if err != nil {
		return st, err
	}
	n, err := dump.Rekey(filepath.Join(m.dataDir, dump.DirName), m.keys.Primary(), m.keys.All(), m.now().Add(-time.Minute))
	st.Files += n
	return st, err
}

// Backup writes a consistent copy into out.
func (m *maintainer) Backup(ctx context.Context, out string, progress func(done, total int)) (any, error) {
	return m.db.Backup(ctx, out, store.BackupOptions{Progress: progress})
}

// signingKeyInfo is what `tyst signing-key` prints.
type signingKeyInfo struct {
	Fingerprint    string `json:"fingerprint"`
	AllowedSigners string `json:"allowed_signers"`
}

// SigningKey returns the public part of the newsroom's signing key.
func (m *maintainer) SigningKey(ctx context.Context) (any, error) {
	k := m.db.SigningKey()
	return signingKeyInfo{Fingerprint: k.Fingerprint(), AllowedSigners: k.AllowedSigners()}, nil
}
