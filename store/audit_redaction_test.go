package store_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"tyst/store"
)

// auditFixture is a live record with an export and a listen, and a
// destroyed one whose events are legitimately redacted.
type auditFixture struct {
	live, destroyed uint64
	exportSeq       uint64 // the live record's export_created event
	events          int
}

func mustAuditFixture(t *testing.T, db *store.DB) auditFixture {
	t.Helper()
	var f auditFixture
	live := mustRecordWithEverything(t, db, ctx, "live")
	if _, err := db.Export(ctx, live.ID, store.ExportRequest{Confirm: true, Reason: "insider leak of the tape", Mode: store.ExportDecrypted}); err != nil {
		t.Fatal(err)
	}
	ar, err := db.OpenAudio(ctx, live.ID)
	if err != nil {
		t.Fatal(err)
	}
	ar.Close()
	gone := mustRecordWithEverything(t, db, ctx, "gone")
	if _, err := db.Destroy(ctx, gone.ID, store.DestroyRequest{Confirm: true, Reason: "source asked"}); err != nil {
		t.Fatal(err)
	}
	events, _, err := db.AuditEvents(ctx, store.AuditFilter{RecordID: live.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Action == store.ActionExportCreated {
			f.exportSeq = ev.Seq
		}
	}
	all, _, _ := db.AuditEvents(ctx, store.AuditFilter{})
	f.live, f.destroyed, f.events = live.ID, gone.ID, len(all)
	if f.exportSeq == 0 {
		t.Fatal("no export_created event")
	}
	return f
}

// TestAudit_RedactionOnlyByDestroy: verify and the audit API accept an
// event without a body only where its record's destroy or purge removed
// it (the record's sealed tombstone lists it). A body removed offline by
// someone who can write the database but has not the key — from a live
// record's event, or from a destroyed record's event that its tombstone
// no longer vouches for — is a verify problem ("audit event N: body
// missing") and shows as body_missing, not as redacted.
func TestAudit_RedactionOnlyByDestroy(t *testing.T) {
	t.Run("DestroyedRecordOK", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		f := mustAuditFixture(t, db)
		rep, err := db.Verify(ctx, store.VerifyOptions{})
		if err != nil || !rep.OK || rep.Audit.Redacted == 0 || rep.Audit.BodyMissing != 0 {
			t.Fatalf("verify with a destroyed record: %+v %v", rep, err)
		}
		all, _, _ := db.AuditEvents(ctx, store.AuditFilter{})
		redacted := 0
		for _, ev := range all {
			if ev.BodyMissing {
				t.Fatalf("event %d shows body_missing", ev.Seq)
			}
			if ev.Redacted {
				redacted++
			}
		}
		if redacted != rep.Audit.Redacted {
			t.Fatalf("the API shows %d redacted events, verify counts %d", redacted, rep.Audit.Redacted)
		}
		if rep.Audit.Events != f.events {
			t.Fatalf("verify counts %d events, the API lists %d", rep.Audit.Events, f.events)
		}
	})
	t.Run("LiveRecordBodyRemoved", func(t *testing.T) {
		env := newEnv(t)
		db := mustOpenRaw(t, env.dir, testOptions(t, env))
		f := mustAuditFixture(t, db)
		db.Close()
		// Offline: the export_created event of the live record loses its
		// body, as the adversarial review's script did.
		editBolt(t, filepath.Join(env.dir, "tyst.db"), "audit", func(rows map[uint64]map[string]any) {
			delete(rows[f.exportSeq], "body")
		})
		db = mustOpenEnv(t, env, testOptions(t, env))
		rep, err := db.Verify(ctx, store.VerifyOptions{})
		if err != nil || rep.OK || rep.Audit.BodyMissing != 1 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
		want := "audit event " + strconv.FormatUint(f.exportSeq, 10) + ": body missing"
		if !hasProblem(rep, store.ProblemAuditChain, want) {
			t.Fatalf("verify problems %+v, want one saying %q", rep.Problems, want)
		}
		events, _, err := db.AuditEvents(ctx, store.AuditFilter{RecordID: f.live})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range events {
			if ev.Seq == f.exportSeq {
				found = true
				if ev.Redacted || !ev.BodyMissing {
					t.Fatalf("the altered event shows as %+v, want body_missing", ev)
				}
			} else if ev.Redacted || ev.BodyMissing {
				t.Fatalf("event %d: %+v", ev.Seq, ev)
			}
		}
		if !found {
			t.Fatal("the altered event is not listed")
		}
	})
	t.Run("TombstoneRemoved", func(t *testing.T) {
		env := newEnv(t)
		db := mustOpenRaw(t, env.dir, testOptions(t, env))
		f := mustAuditFixture(t, db)
		before, err := db.Verify(ctx, store.VerifyOptions{})
		if err != nil || !before.OK {
			t.Fatalf("verify: %+v %v", before, err)
		}
		db.Close()
		// The redactions stand, but nothing vouches for them any more.
		deleteRow(t, filepath.Join(env.dir, "tyst.db"), "tombstones", f.destroyed)
		db = mustOpenEnv(t, env, testOptions(t, env))
		rep, err := db.Verify(ctx, store.VerifyOptions{})
		if err != nil || rep.OK || rep.Audit.BodyMissing != before.Audit.Redacted || rep.Audit.Redacted != 0 {
			t.Fatalf("verify without the tombstone: %+v %v", rep, err)
		}
	})
	t.Run("BodyMovedToAnotherTombstone", func(t *testing.T) {
		// A second destroyed record's tombstone copied over the first's
		// vouches only for its own events (the list is sealed with its
		// record id).
		env := newEnv(t)
		db := mustOpenRaw(t, env.dir, testOptions(t, env))
		f := mustAuditFixture(t, db)
		other := mustRecordWithEverything(t, db, ctx, "other")
		if _, err := db.Destroy(ctx, other.ID, store.DestroyRequest{Confirm: true, Reason: "done"}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		editBolt(t, filepath.Join(env.dir, "tyst.db"), "tombstones", func(rows map[uint64]map[string]any) {
			rows[f.destroyed] = rows[other.ID]
		})
		db = mustOpenEnv(t, env, testOptions(t, env))
		rep, err := db.Verify(ctx, store.VerifyOptions{})
		if err != nil || rep.OK || rep.Audit.BodyMissing == 0 {
			t.Fatalf("verify with a copied tombstone: %+v %v", rep, err)
		}
	})
}

func hasProblem(rep store.VerifyReport, kind, detail string) bool {
	for _, p := range rep.Problems {
		if p.Kind == kind && strings.Contains(p.Detail, detail) {
			return true
		}
	}
	return false
}

// deleteRow deletes the row with the 8-byte id of bucket in the closed
// database file path, as someone with write access to the disk would.
func deleteRow(tb testing.TB, path, bucket string, id uint64) {
	tb.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		k := make([]byte, 8)
		binary.BigEndian.PutUint64(k, id)
		if tx.Bucket([]byte(bucket)).Get(k) == nil {
			return fmt.Errorf("no row %d in %s", id, bucket)
		}
		return tx.Bucket([]byte(bucket)).Delete(k)
	})
	if err != nil {
		tb.Fatal(err)
	}
}
