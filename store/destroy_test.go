package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store"
	"tyst/store/fstream"
	"tyst/store/signing"
)

// mustRecordWithEverything makes a record with audio, two segments and a
// note.
func mustRecordWithEverything(tb testing.TB, db *store.DB, c context.Context, title string) *store.Record {
	tb.Helper()
	rec, err := db.CreateRecord(c, store.NewRecord{Title: title})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.AttachAudio(c, rec.ID, store.NewAudio{Body: bytes.NewReader(mustReadFile(tb, wavFile))}); err != nil {
		tb.Fatal(err)
	}
	if err := db.PutSegments(c, rec.ID, []store.Segment{{StartMS: 0, EndMS: 500, Speaker: "A", Text: "one"}, {StartMS: 500, EndMS: 900, Text: "two"}}); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.AddNote(c, rec.ID, "call back on Monday"); err != nil {
		tb.Fatal(err)
	}
	return rec
}

func TestDB_Destroy(t *testing.T) {
	t.Run("DryRunChangesNothing", func(t *testing.T) {
		db, env := mustOpenDB(t)
		rec := mustRecordWithEverything(t, db, ctx, "t")
		before := dataSnapshot(t, db, env.dir)
		res, err := db.Destroy(ctx, rec.ID, store.DestroyRequest{DryRun: true})
		if err != nil || res.Status != store.DestroyDryRun || res.Counts != (store.DestroyCounts{Files: 1, Segments: 2, Notes: 1}) {
			t.Fatalf("res=%+v err=%v", res, err)
		}
		if after := dataSnapshot(t, db, env.dir); after != before {
			t.Fatalf("a dry run changed something:\n%s\n---\n%s", before, after)
		}
	})
	t.Run("ErrValidation", func(t *testing.T) {
		db, env := mustOpenDB(t)
		rec := mustRecordWithEverything(t, db, ctx, "t")
		before := dataSnapshot(t, db, env.dir)
		for name, req := range map[string]store.DestroyRequest{
			"NoConfirm":   {Reason: "source asked"},
			"NoReason":    {Confirm: true},
			"BlankReason": {Confirm: true, Reason: "  \u200b "},
			"BidiReason":  {Confirm: true, Reason: "source \u202e asked"},
		} {
			_, err := db.Destroy(ctx, rec.ID, req)
			if store.ErrorCode(err) != store.CodeValidation {
				t.Errorf("%s: err=%v, want validation_error", name, err)
			}
		}
		if after := dataSnapshot(t, db, env.dir); after != before {
			t.Fatalf("a refused destroy changed something")
		}
	})
	t.Run("OK", func(t *testing.T) {
		var copied string
		env := newEnv(t)
		opts := testOptions(t, env)
		opts.Fault = func(point string) error {
			if point == store.FaultDestroyCompact {
				// What someone seizing the disk right now holds: the
				// database after the commit, the blob not yet removed.
				copied = t.TempDir()
				copyDir(t, env.dir, copied)
			}
			return nil
		}
		db := mustOpenEnv(t, env, opts)
		owner := store.WithPrincipal(ctx, mustPrincipal(t, db, "reporter", store.RoleEditor, ""))
		rec := mustRecordWithEverything(t, db, owner, "Källan")
		keep := mustRecordWithEverything(t, db, owner, "keep")
		res, err := db.Destroy(owner, rec.ID, store.DestroyRequest{Confirm: true, Reason: "the source asked us to"})
		if err != nil || res.Status != store.DestroyDestroyed || res.Receipt == nil || res.Counts.Files != 1 || res.Counts.Notes != 1 {
			t.Fatalf("res=%+v err=%v", res, err)
		}
		if _, err := db.Record(owner, rec.ID); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("record after destroy: %v", err)
		}
		if got := len(blobFiles(t, env.dir)); got != 1 {
			t.Fatalf("%d blobs after destroy, want 1 (the other record's)", got)
		}
		if _, err := db.Record(owner, keep.ID); err != nil {
			t.Fatalf("another record suffered: %v", err)
		}
		// Again: the first receipt, already_deleted.
		again, err := db.Destroy(owner, rec.ID, store.DestroyRequest{Confirm: true, Reason: "again"})
		if err != nil || again.Status != store.DestroyAlreadyDeleted || again.Receipt.ID != res.Receipt.ID {
			t.Fatalf("repeat: %+v %v", again, err)
		}
		// The audit chain still verifies; the record's events are
		// redacted; `destroyed` is the last word.
		rep, err := db.VerifyAuditChain(ctx)
		if err != nil || rep.Redacted == 0 {
			t.Fatalf("chain: %+v %v", rep, err)
		}
		events, _, _ := db.AuditEvents(ctx, store.AuditFilter{RecordID: rec.ID})
		if len(events) != 1 || events[0].Action != store.ActionDestroyed || events[0].Meta["files"] != float64(1) {
			t.Fatalf("the record's events after destroy: %+v", events)
		}
		// The copy taken just before the blob removal: with the newsroom
		// key, the record and its audio are gone.
		if copied == "" {
			t.Fatal("the fault hook never ran")
		}
		blobs := blobFiles(t, copied)
		if len(blobs) != 2 {
			t.Fatalf("the copy holds %d blobs, want 2 (the removal had not run)", len(blobs))
		}
		// The newsroom key does not open a blob directly (each has its own
		// asset key, wrapped by its record key).
		for _, b := range blobs {
			raw := mustReadFile(t, b)
			if _, err := fstream.NewReadSeeker(bytes.NewReader(raw), int64(len(raw)), env.keys.All()); !errors.Is(err, fstream.ErrCorrupt) {
				t.Fatalf("the newsroom key opens a blob directly: %v", err)
			}
		}
		// And the copy's database, opened with the newsroom key, holds
		// nothing of the record: it was compacted before this moment, so
		// not even freed pages keep its sealed key.
		e2 := *env
		e2.dir = copied
		db2 := mustOpenEnv(t, &e2, testOptions(t, &e2))
		if _, err := db2.Record(ctx, rec.ID); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("the record is readable in the copy: %v", err)
		}
		db2.Close()
		if n := sealedAccessOf(t, filepath.Join(copied, "tyst.db"), env.key, rec.ID); n != 0 {
			t.Fatalf("the copy's database file still holds %d sealed keys of the destroyed record", n)
		}
		if n := sealedAccessOf(t, filepath.Join(env.dir, "tyst.db"), env.key, keep.ID); n == 0 {
			t.Fatal("the search finds not even the kept record's key: it proves nothing")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		_, err := db.Destroy(ctx, 42, store.DestroyRequest{Confirm: true, Reason: "x"})
		wantCode(t, err, store.CodeNotFound)
		_, err = db.Destroy(ctx, 42, store.DestroyRequest{DryRun: true})
		wantCode(t, err, store.CodeNotFound)
	})
	t.Run("SensitiveStaysHidden", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		owner := store.WithPrincipal(ctx, mustPrincipal(t, db, "reporter", store.RoleEditor, ""))
		other := store.WithPrincipal(ctx, mustPrincipal(t, db, "other", store.RoleEditor, ""))
		rec, _ := db.CreateRecord(owner, store.NewRecord{Title: "s", Sensitivity: store.SensitivitySensitive})
		res, err := db.Destroy(owner, rec.ID, store.DestroyRequest{Confirm: true, Reason: "done"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Destroy(other, rec.ID, store.DestroyRequest{Confirm: true, Reason: "probe"}); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("another user learns of the destroyed sensitive record: %v", err)
		}
		if _, err := db.Receipt(other, res.Receipt.ID); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("another user reads its receipt: %v", err)
		}
		r, err := db.Receipt(owner, res.Receipt.ID)
		if err != nil || r.Reason != "" {
			t.Fatalf("owner's receipt: %+v %v (reasons are for admins)", r, err)
		}
		if r, err := db.Receipt(ctx, res.Receipt.ID); err != nil || r.Reason != "done" {
			t.Fatalf("system's receipt: %+v %v", r, err)
		}
	})
}

// TestReceipt_SSHKeygen: a receipt's signature verifies with the real
// ssh-keygen against the newsroom's allowed_signers line, and a changed
// byte fails.
func TestReceipt_SSHKeygen(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		if os.Getenv("TYST_E2E_REQUIRED") == "1" {
			t.Fatal("ssh-keygen is not installed (Debian: openssh-client), and TYST_E2E_REQUIRED=1")
		}
		t.Skip("ssh-keygen not installed (Debian: openssh-client); .ci/run installs it")
	}
	db, _ := mustOpenDB(t)
	rec := mustRecordWithEverything(t, db, ctx, "t")
	res, err := db.Destroy(ctx, rec.ID, store.DestroyRequest{Confirm: true, Reason: "source asked"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed_signers")
	sig := filepath.Join(dir, "receipt.sig")
	os.WriteFile(allowed, []byte(db.SigningKey().AllowedSigners()+"\n"), 0o600)
	os.WriteFile(sig, res.Receipt.Signature, 0o600)
	verify := func(doc []byte) error {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", signing.Principal, "-n", signing.NamespaceReceipt, "-s", sig)
		cmd.Stdin = bytes.NewReader(doc)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	if err := verify(res.Receipt.Document); err != nil {
		t.Fatalf("ssh-keygen refuses a real receipt: %v", err)
	}
	doc := bytes.Replace(res.Receipt.Document, []byte(`"destroy"`), []byte(`"destrox"`), 1)
	if err := verify(doc); err == nil {
		t.Fatal("ssh-keygen accepts a changed receipt")
	}
	for _, s := range []string{"source asked", "reason", "t\""} {
		if strings.Contains(string(res.Receipt.Document), s) {
			t.Fatalf("the signed document holds %q", s)
		}
	}
}

func TestDB_RemoveAudio(t *testing.T) {
	db, env := mustOpenDB(t)
	rec := mustRecordWithEverything(t, db, ctx, "t")
	_, err := db.RemoveAudio(ctx, rec.ID, false, "wrong file")
	wantCode(t, err, store.CodeValidation)
	r, err := db.RemoveAudio(ctx, rec.ID, true, "wrong file uploaded")
	if err != nil || r.Kind != store.ReceiptAudioRemoval {
		t.Fatalf("receipt=%+v err=%v", r, err)
	}
	got, _ := db.Record(ctx, rec.ID)
	if got.Audio != nil || got.Segments != 2 || got.Notes != 1 {
		t.Fatalf("record after removal: %+v", got)
	}
	if n := len(blobFiles(t, env.dir)); n != 0 {
		t.Fatalf("%d blobs left", n)
	}
	_, err = db.RemoveAudio(ctx, rec.ID, true, "again")
	wantCode(t, err, store.CodeNotFound)
	mustAttach(t, db, rec.ID, "", mustReadFile(t, wavFile)) // the correct file
}

func TestDB_EditRecord(t *testing.T) {
	db, env := mustOpenDB(t)
	editor := store.WithPrincipal(ctx, mustPrincipal(t, db, "reporter", store.RoleEditor, ""))
	admin := store.WithPrincipal(ctx, mustPrincipal(t, db, "chief", store.RoleAdmin, ""))
	rec, _ := db.CreateRecord(editor, store.NewRecord{Title: "first"})
	p, err := db.CreateProject(editor, store.NewProject{Name: "Harbour investigation"})
	if err != nil {
		t.Fatal(err)
	}
	title := "second"
	got, err := db.UpdateRecord(editor, rec.ID, store.RecordUpdate{Title: &title, ProjectID: &p.ID})
	if err != nil || got.Title != "second" || got.ProjectID != p.ID {
		t.Fatalf("update: %+v %v", got, err)
	}
	recs, _, _ := db.Records(editor, store.RecordFilter{ProjectID: p.ID, Limit: 10})
	if len(recs) != 1 || recs[0].ID != rec.ID {
		t.Fatalf("project list: %+v", recs)
	}
	ps, _ := db.Projects(editor)
	counts := map[uint64]int{}
	for _, pr := range ps {
		counts[pr.ID] = pr.Records
	}
	if counts[p.ID] != 1 || counts[rec.ProjectID] != 0 {
		t.Fatalf("counts after the move: %v", counts)
	}
	hold := true
	_, err = db.UpdateRecord(editor, rec.ID, store.RecordUpdate{Hold: &hold})
	wantCode(t, err, store.CodeForbidden)
	until := env.now.Add(400 * 24 * time.Hour)
	got, err = db.UpdateRecord(admin, rec.ID, store.RecordUpdate{RetainUntil: &until})
	if err != nil || !got.ExpiresAt.Equal(until) {
		t.Fatalf("retain_until: %+v %v", got, err)
	}
	got, err = db.UpdateRecord(admin, rec.ID, store.RecordUpdate{Hold: &hold})
	if err != nil || !got.Hold || !got.ExpiresAt.IsZero() {
		t.Fatalf("hold: %+v %v", got, err)
	}
	before := dataSnapshot(t, db, env.dir)
	bad := ""
	for name, up := range map[string]store.RecordUpdate{
		"Nothing":        {},
		"EmptyTitle":     {Title: &bad},
		"UnknownProject": {ProjectID: ptr(uint64(999))},
	} {
		if _, err := db.UpdateRecord(editor, rec.ID, up); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if after := dataSnapshot(t, db, env.dir); after != before {
		t.Fatal("a refused update changed something")
	}
}

func ptr[T any](v T) *T { return &v }

func TestDB_SegmentsAndNotes(t *testing.T) {
	db, env := mustOpenDB(t)
	rec := mustCreate(t, db, "t")
	segs := []store.Segment{{StartMS: 0, EndMS: 1000, Speaker: "Reporter", Text: "CANARY-segment-text"}}
	if err := db.PutSegments(ctx, rec.ID, segs); err != nil {
		t.Fatal(err)
	}
	got, err := db.Segments(ctx, rec.ID)
	if err != nil || len(got) != 1 || got[0] != segs[0] {
		t.Fatalf("segments=%+v err=%v", got, err)
	}
	n, err := db.AddNote(ctx, rec.ID, "CANARY-note-text\nsecond line")
	if err != nil {
		t.Fatal(err)
	}
	notes, _ := db.Notes(ctx, rec.ID)
	if len(notes) != 1 || notes[0].Text != "CANARY-note-text\nsecond line" {
		t.Fatalf("notes=%+v", notes)
	}
	before := dataSnapshot(t, db, env.dir)
	if err := db.PutSegments(ctx, rec.ID, []store.Segment{{StartMS: 5, EndMS: 1}}); store.ErrorCode(err) != store.CodeValidation {
		t.Fatalf("bad segments: %v", err)
	}
	if _, err := db.AddNote(ctx, rec.ID, strings.Repeat("x", store.MaxNoteRunes+1)); store.ErrorCode(err) != store.CodeValidation {
		t.Fatalf("long note: %v", err)
	}
	if err := db.DeleteNote(ctx, rec.ID, 999); store.ErrorCode(err) != store.CodeNotFound {
		t.Fatalf("unknown note: %v", err)
	}
	if after := dataSnapshot(t, db, env.dir); after != before {
		t.Fatal("refused input changed something")
	}
	if err := db.DeleteNote(ctx, rec.ID, n.ID); err != nil {
		t.Fatal(err)
	}
	r, _ := db.Record(ctx, rec.ID)
	if r.Segments != 1 || r.Notes != 0 {
		t.Fatalf("counts=%d/%d", r.Segments, r.Notes)
	}
	db.Close()
	raw := mustReadFile(t, filepath.Join(env.dir, "tyst.db"))
	if bytes.Contains(raw, []byte("CANARY")) {
		t.Fatal("segment or note text stands in the database in the clear")
	}
}

// dataSnapshot is what refused input must not change: every record as the
// system sees it, the audit log, and every file with its size.
func dataSnapshot(tb testing.TB, db *store.DB, dir string) string {
	tb.Helper()
	var sb strings.Builder
	recs, _, err := db.Records(ctx, store.RecordFilter{Limit: store.MaxPageSize})
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range recs {
		segs, _ := db.Segments(ctx, r.ID)
		notes, _ := db.Notes(ctx, r.ID)
		sb.WriteString(strings.Join([]string{r.Title, r.Status, r.ExpiresAt.String(), r.Sensitivity}, "|"))
		sb.WriteString(strings.Repeat("s", len(segs)) + strings.Repeat("n", len(notes)) + "\n")
	}
	events, _, _ := db.AuditEvents(ctx, store.AuditFilter{})
	sb.WriteString(strings.Repeat("e", len(events)) + "\n")
	for _, f := range blobFiles(tb, dir) {
		st, _ := os.Stat(f)
		sb.WriteString(filepath.Base(f) + " " + st.ModTime().String() + "\n")
	}
	return sb.String()
}

var fernetToken = regexp.MustCompile(`gAAAAA[A-Za-z0-9_=-]{80,}`)

// sealedAccessOf counts the sealed record accesses (which hold a record's
// key) of record id anywhere in the raw file at path — live rows and freed
// pages alike — that the newsroom key opens: what someone holding the file
// and, later, the key could recover.
func sealedAccessOf(tb testing.TB, path, key string, id uint64) int {
	tb.Helper()
	k, err := fernet.DecodeKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, tok := range fernetToken.FindAll(mustReadFile(tb, path), -1) {
		plain := fernet.VerifyAndDecrypt(tok, 0, []*fernet.Key{k})
		var acc struct {
			RecordID uint64 `json:"record_id"`
			Key      []byte `json:"key"`
		}
		if plain != nil && json.Unmarshal(plain, &acc) == nil && acc.RecordID == id && len(acc.Key) > 0 {
			n++
		}
	}
	return n
}
