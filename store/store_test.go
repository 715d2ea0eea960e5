package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tyst/store"
)

var ctx = context.Background()

type testEnv struct {
	dir  string
	key  string // the primary key as text
	keys *store.Keyring
	now  time.Time
}

func testOptions(tb testing.TB, env *testEnv) store.Options {
	tb.Helper()
	return store.Options{Keys: env.keys, Now: func() time.Time { return env.now }}
}

func newEnv(tb testing.TB) *testEnv {
	tb.Helper()
	key := store.GenerateKey()
	kr, err := store.NewKeyring(key)
	if err != nil {
		tb.Fatal(err)
	}
	return &testEnv{dir: tb.TempDir(), key: key, keys: kr, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
}

// mustOpenDB opens a real database in a temp dir; cleanup checks and closes it.
func mustOpenDB(tb testing.TB) (*store.DB, *testEnv) {
	tb.Helper()
	env := newEnv(tb)
	return mustOpenEnv(tb, env, testOptions(tb, env)), env
}

func mustOpenEnv(tb testing.TB, env *testEnv, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(env.dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mustCheckAndClose(tb, db) })
	return db
}

func mustCheckAndClose(tb testing.TB, db *store.DB) {
	tb.Helper()
	if err := db.Check(); err != nil && store.ErrorCode(err) != store.CodeUnavailable {
		tb.Fatal(err)
	}
	db.Close()
}

func mustCreate(tb testing.TB, db *store.DB, title string) *store.Record {
	tb.Helper()
	rec, err := db.CreateRecord(ctx, store.NewRecord{Title: title, Language: "sv"})
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

func mustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustAttach(tb testing.TB, db *store.DB, id uint64, declared string, data []byte) *store.Audio {
	tb.Helper()
	a, err := db.AttachAudio(ctx, id, store.NewAudio{DeclaredType: declared, Body: bytes.NewReader(data)})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func wantCode(tb testing.TB, err error, code store.Code) {
	tb.Helper()
	if got := store.ErrorCode(err); err == nil || got != code {
		tb.Fatalf("err=%v (code %s), want code %s", err, got, code)
	}
}

// blobFiles lists every file under <data>/blobs except the temp dir.
func blobFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

const wavFile = "../testdata/audio/tone.wav"

func TestDB_CreateRecord(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		db, env := mustOpenDB(t)
		rec := mustCreate(t, db, "Intervju med källan")
		if rec.ID == 0 || rec.ProjectID == 0 {
			t.Fatalf("ids not set: %+v", rec)
		}
		got, err := db.Record(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "Intervju med källan" || got.Language != "sv" || got.Sensitivity != store.SensitivityStandard || got.Status != store.StatusNew {
			t.Fatalf("record=%+v", got)
		}
		if got, want := got.ExpiresAt, env.now.Add(store.DefaultRetention); !got.Equal(want) {
			t.Fatalf("ExpiresAt=%v, want %v", got, want)
		}
		ps, err := db.Projects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].Name != "Untitled – 2026-03-01" || ps[0].Records != 1 {
			t.Fatalf("projects=%+v", ps[0])
		}
		events, _, _ := db.AuditEvents(ctx, store.AuditFilter{})
		if len(events) != 2 || events[0].Action != store.ActionProjectCreated || events[1].Action != store.ActionTranscriptCreated {
			t.Fatalf("audit=%+v", events)
		}
	})
	t.Run("IntoExistingProject", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		first := mustCreate(t, db, "a")
		rec, err := db.CreateRecord(ctx, store.NewRecord{ProjectID: first.ProjectID, Title: "b", Sensitivity: "sensitive"})
		if err != nil {
			t.Fatal(err)
		}
		if rec.ProjectID != first.ProjectID || rec.Sensitivity != "sensitive" || rec.Language != "und" {
			t.Fatalf("record=%+v", rec)
		}
		ps, _ := db.Projects(ctx)
		if len(ps) != 1 || ps[0].Records != 2 {
			t.Fatalf("projects=%+v", ps)
		}
	})
	t.Run("ErrNotFoundProject", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		_, err := db.CreateRecord(ctx, store.NewRecord{ProjectID: 99, Title: "x"})
		wantCode(t, err, store.CodeNotFound)
	})
	t.Run("ErrValidation", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		for name, n := range map[string]store.NewRecord{
			"NoTitle":        {},
			"BlankTitle":     {Title: "   "},
			"LongTitle":      {Title: strings.Repeat("x", 10_000)},
			"ControlChar":    {Title: "a\x00b"},
			"BadUTF8":        {Title: "a\xffb"},
			"BadSensitivity": {Title: "x", Sensitivity: "secret"},
			"BadLanguage":    {Title: "x", Language: "english please"},
		} {
			if _, err := db.CreateRecord(ctx, n); store.ErrorCode(err) != store.CodeValidation {
				t.Errorf("%s: err=%v, want validation_error", name, err)
			}
		}
		recs, _, _ := db.Records(ctx, store.RecordFilter{Before: 0, Limit: 10})
		events, _, _ := db.AuditEvents(ctx, store.AuditFilter{})
		if len(recs) != 0 || len(events) != 0 {
			t.Fatalf("bad input changed something: %d records, %d events", len(recs), len(events))
		}
	})
}

func TestDB_Records(t *testing.T) {
	db, _ := mustOpenDB(t)
	for range 5 {
		mustCreate(t, db, "r")
	}
	var ids []uint64
	cursor := uint64(0)
	for page := 0; ; page++ {
		recs, next, err := db.Records(ctx, store.RecordFilter{Before: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		if next == 0 {
			break
		}
		cursor = next
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if got, want := len(ids), 5; got != want {
		t.Fatalf("got %d records over all pages (%v), want %d", got, ids, want)
	}
	for i, id := range ids {
		if id != uint64(5-i) {
			t.Fatalf("ids=%v, want newest first 5..1", ids)
		}
	}
	_, _, err := db.Records(ctx, store.RecordFilter{Before: 0, Limit: 0})
	wantCode(t, err, store.CodeValidation)
}

func TestDB_AttachAudio(t *testing.T) {
	wav := mustReadFile(t, wavFile)
	t.Run("OK", func(t *testing.T) {
		db, env := mustOpenDB(t)
		rec := mustCreate(t, db, "t")
		a := mustAttach(t, db, rec.ID, "audio/x-wav", wav)
		sum := sha256.Sum256(wav)
		if a.SHA256 != hex.EncodeToString(sum[:]) || a.SizeBytes != int64(len(wav)) || a.MIMEType != "audio/wav" {
			t.Fatalf("audio=%+v", a)
		}
		if a.DurationMS < 900 || a.DurationMS > 1100 {
			t.Fatalf("DurationMS=%d, want about 1000", a.DurationMS)
		}
		ar, err := db.OpenAudio(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(ar)
		ar.Close()
		if err != nil || !bytes.Equal(got, wav) {
			t.Fatalf("read back: err=%v equal=%v", err, bytes.Equal(got, wav))
		}
		files := blobFiles(t, env.dir)
		if len(files) != 1 || bytes.Contains(mustReadFile(t, files[0]), wav[44:200]) {
			t.Fatalf("blob files=%v (or plaintext inside)", files)
		}
		if strings.Contains(files[0], hex.EncodeToString(sum[:])) {
			t.Fatal("blob is named by the plain SHA-256 of the audio")
		}
		got2, _ := db.Record(ctx, rec.ID)
		if got2.Status != store.StatusAudio || got2.Audio == nil || got2.Audio.SHA256 != a.SHA256 {
			t.Fatalf("record=%+v", got2)
		}
		events, _, _ := db.AuditEvents(ctx, store.AuditFilter{RecordID: rec.ID})
		last := events[len(events)-1]
		if last.Action != store.ActionAudioAccessed || events[len(events)-2].Action != store.ActionAudioUploaded {
			t.Fatalf("audit=%+v", events)
		}
		if m := events[len(events)-2].Meta; len(m) != 2 || m["mime_type"] != "audio/wav" {
			t.Fatalf("upload meta=%v", m)
		}
	})
	t.Run("SameAudioTwoRecords", func(t *testing.T) {
		db, env := mustOpenDB(t)
		r1, r2 := mustCreate(t, db, "a"), mustCreate(t, db, "b")
		mustAttach(t, db, r1.ID, "", wav)
		mustAttach(t, db, r2.ID, "", wav)
		files := blobFiles(t, env.dir)
		if len(files) != 2 {
			t.Fatalf("files=%v, want two blobs", files)
		}
		n1, n2 := filepath.Base(files[0]), filepath.Base(files[1])
		if n1 == n2 || n1[:8] == n2[:8] {
			t.Fatalf("blob names related: %s %s", n1, n2)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		db, env := mustOpenDB(t)
		rec := mustCreate(t, db, "t")
		mustAttach(t, db, rec.ID, "", wav)
		_, err := db.AttachAudio(ctx, rec.ID, store.NewAudio{Body: bytes.NewReader(wav)})
		wantCode(t, err, store.CodeConflict)
		if n := len(blobFiles(t, env.dir)); n != 1 {
			t.Fatalf("%d blobs after a refused second upload", n)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		_, err := db.AttachAudio(ctx, 42, store.NewAudio{Body: bytes.NewReader(wav)})
		wantCode(t, err, store.CodeNotFound)
	})

	bad := map[string]struct {
		declared string
		body     io.Reader
		max      int64
		code     store.Code
	}{
		"Empty":          {"audio/wav", bytes.NewReader(nil), 0, store.CodeValidation},
		"TooLarge":       {"audio/wav", bytes.NewReader(wav), 1000, store.CodeTooLarge},
		"Mismatch":       {"audio/mpeg", bytes.NewReader(wav), 0, store.CodeUnsupported},
		"NotAudio":       {"", strings.NewReader("hello, this is text"), 0, store.CodeUnsupported},
		"TypeNotAllowed": {"image/png", bytes.NewReader(wav), 0, store.CodeUnsupported},
		"BrokenBody":     {"audio/wav", io.MultiReader(bytes.NewReader(wav[:100]), errReader{io.ErrUnexpectedEOF}), 0, store.CodeValidation},
		"DiskFull":       {"audio/wav", bytes.NewReader(wav), 0, store.CodeDiskFull},
	}
	for name, c := range bad {
		t.Run("Err"+name, func(t *testing.T) {
			env := newEnv(t)
			opts := testOptions(t, env)
			if name == "DiskFull" {
				opts.WrapBlobWriter = func(w io.Writer) io.Writer { return fullDisk{} }
			}
			db := mustOpenEnv(t, env, opts)
			rec := mustCreate(t, db, "t")
			_, err := db.AttachAudio(ctx, rec.ID, store.NewAudio{DeclaredType: c.declared, Body: c.body, MaxBytes: c.max})
			wantCode(t, err, c.code)
			if msg := err.Error(); strings.Contains(msg, env.dir) {
				t.Fatalf("error names a path: %s", msg)
			}
			got, _ := db.Record(ctx, rec.ID)
			if got.Audio != nil {
				t.Fatal("record got audio from a failed upload")
			}
			if files := blobFiles(t, env.dir); len(files) != 0 {
				t.Fatalf("files left: %v", files)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// fullDisk fails every write as a full disk does.
type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/secret/path/x.tmp", Err: syscall.ENOSPC}
}

func TestDB_OpenAudio_Corrupt(t *testing.T) {
	db, env := mustOpenDB(t)
	rec := mustCreate(t, db, "t")
	mustAttach(t, db, rec.ID, "", mustReadFile(t, wavFile))
	blob := blobFiles(t, env.dir)[0]
	b := mustReadFile(t, blob)
	b[100] ^= 1
	if err := os.WriteFile(blob, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := db.OpenAudio(ctx, rec.ID)
	wantCode(t, err, store.CodeInternal)
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("err=%v, want ErrCorrupt", err)
	}
	if strings.Contains(err.Error(), env.dir) {
		t.Fatal("error names a path")
	}
}

// TestOpen_Sweep shows crash recovery: a temp file of an interrupted upload
// and a blob whose transaction never committed are removed at start, and a
// referenced blob is kept.
func TestOpen_Sweep(t *testing.T) {
	env := newEnv(t)
	db, err := store.Open(env.dir, testOptions(t, env))
	if err != nil {
		t.Fatal(err)
	}
	rec := mustCreate(t, db, "t")
	mustAttach(t, db, rec.ID, "", mustReadFile(t, wavFile))
	db.Close()
	tmp := filepath.Join(env.dir, "blobs", "tmp", "up-123.tmp")
	orphan := filepath.Join(env.dir, "blobs", "ab", strings.Repeat("ab", 32)+".bin")
	notOurs := filepath.Join(env.dir, "blobs", "README")
	os.MkdirAll(filepath.Dir(orphan), 0o700)
	for _, p := range []string{tmp, orphan, notOurs} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db = mustOpenEnv(t, env, testOptions(t, env))
	for _, p := range []string{tmp, orphan} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("leftover not removed at start (err=%v)", err)
		}
	}
	if _, err := os.Stat(notOurs); err != nil {
		t.Fatal("a file not named like a blob was removed")
	}
	ar, err := db.OpenAudio(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	ar.Close()
}

func TestOpen_Errors(t *testing.T) {
	t.Run("WrongKey", func(t *testing.T) {
		db, env := mustOpenDB(t)
		mustCreate(t, db, "t")
		db.Close()
		wrong := store.GenerateKey()
		other, _ := store.NewKeyring(wrong)
		_, err := store.Open(env.dir, store.Options{Keys: other})
		var wk *store.WrongKeyError
		if !errors.As(err, &wk) || wk.KeyID != env.keys.PrimaryID() {
			t.Fatalf("err=%v, want WrongKeyError naming %s", err, env.keys.PrimaryID())
		}
		if msg := err.Error(); !strings.Contains(msg, "no configured key opens this data: wrong key?") ||
			!strings.Contains(msg, env.keys.PrimaryID()) || strings.Contains(msg, wrong) || strings.Contains(msg, env.dir) {
			t.Fatalf("message: %s", msg)
		}
	})
	t.Run("Locked", func(t *testing.T) {
		_, env := mustOpenDB(t)
		opts := testOptions(t, env)
		opts.LockTimeout = 50 * time.Millisecond
		start := time.Now()
		_, err := store.Open(env.dir, opts)
		if !errors.Is(err, store.ErrLocked) {
			t.Fatalf("err=%v, want ErrLocked", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("Open of a locked database hung")
		}
	})
	t.Run("Closed", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		db.Close()
		_, err := db.Record(ctx, 1)
		wantCode(t, err, store.CodeUnavailable)
		wantCode(t, db.Ready(ctx), store.CodeUnavailable)
	})
}

func TestKeys(t *testing.T) {
	t.Run("OldKeyUnwraps", func(t *testing.T) {
		oldKey := store.GenerateKey()
		env := newEnv(t)
		env.keys, _ = store.NewKeyring(oldKey)
		db, err := store.Open(env.dir, testOptions(t, env))
		if err != nil {
			t.Fatal(err)
		}
		rec := mustCreate(t, db, "old")
		db.Close()
		rotated, err := store.NewKeyring(store.GenerateKey(), oldKey)
		if err != nil {
			t.Fatal(err)
		}
		db2, err := store.Open(env.dir, store.Options{Keys: rotated})
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		got, err := db2.Record(ctx, rec.ID)
		if err != nil || got.Title != "old" {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("LoadKeyring", func(t *testing.T) {
		dir := t.TempDir()
		kr, src, err := store.LoadKeyring(store.KeyConfig{DataDir: dir})
		if err != nil || src != store.KeyFromDataDir {
			t.Fatalf("src=%v err=%v", src, err)
		}
		st, err := os.Stat(filepath.Join(dir, "files.key"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("files.key: %v %v", st, err)
		}
		kr2, _, _ := store.LoadKeyring(store.KeyConfig{DataDir: dir})
		if kr.PrimaryID() != kr2.PrimaryID() {
			t.Fatal("second load generated a new key")
		}
		secret := "not-a-key-" + strings.Repeat("Z", 20)
		for name, cfg := range map[string]store.KeyConfig{
			"EnvNotBase64": {Env: secret},
			"EnvShort":     {Env: "c2hvcnQ="},
			"OldBad":       {Env: store.GenerateKey(), OldKeys: secret},
			"FileMissing":  {File: filepath.Join(dir, "nope")},
		} {
			_, _, err := store.LoadKeyring(cfg)
			if err == nil {
				t.Fatalf("%s: accepted", name)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), dir) {
				t.Fatalf("%s: error shows the value or a path: %v", name, err)
			}
		}
	})
}

// TestEncryptedAtRest shows that the database holds no title, language or
// audio hash in the clear.
func TestEncryptedAtRest(t *testing.T) {
	db, env := mustOpenDB(t)
	const canary = "CANARY-title-7f3a"
	rec, err := db.CreateRecord(ctx, store.NewRecord{Title: canary, Language: "tlh"})
	if err != nil {
		t.Fatal(err)
	}
	a := mustAttach(t, db, rec.ID, "", mustReadFile(t, wavFile))
	db.Close()
	raw := mustReadFile(t, filepath.Join(env.dir, "tyst.db"))
	for _, s := range []string{canary, `"tlh"`, a.SHA256} {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("database holds %q in the clear", s)
		}
	}
}

func TestAuditChain(t *testing.T) {
	db, env := mustOpenDB(t)
	for range 3 {
		rec := mustCreate(t, db, "x")
		mustAttach(t, db, rec.ID, "", mustReadFile(t, wavFile))
	}
	rep, err := db.VerifyAuditChain(ctx)
	if err != nil || rep.Events != 7 || rep.Redacted != 0 { // one project of the day, three records with audio
		t.Fatalf("report=%+v err=%v", rep, err)
	}
	db.Close()
	for name, edit := range map[string]func(a, b map[string]any){
		// Bodies are sealed: an edit without the key can only move them.
		"SwappedBodies": func(a, b map[string]any) { a["body"], b["body"] = b["body"], a["body"] },
		"EditedLink": func(a, b map[string]any) { // two hex digits changed (a random hash starts with 00 once in 256)
			p := b["prev"].(string)
			b["prev"] = map[bool]string{true: "ff", false: "00"}[strings.HasPrefix(p, "00")] + p[2:]
		},
		"EditedHash": func(a, b map[string]any) { a["body_hash"] = b["body_hash"] },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, env.dir, dir)
			editBolt(t, filepath.Join(dir, "tyst.db"), "audit", func(rows map[uint64]map[string]any) {
				edit(rows[4], rows[5])
			})
			e2 := *env
			e2.dir = dir
			db2 := mustOpenEnv(t, &e2, testOptions(t, &e2))
			if _, err := db2.VerifyAuditChain(ctx); !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("err=%v, want ErrCorrupt", err)
			}
		})
	}
}

// TestDB_AttachAudio_Race: uploads racing for one record end with exactly
// one audio, conflicts for the rest, and no stray blob.
func TestDB_AttachAudio_Race(t *testing.T) {
	db, env := mustOpenDB(t)
	rec := mustCreate(t, db, "t")
	wav := mustReadFile(t, wavFile)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := db.AttachAudio(ctx, rec.ID, store.NewAudio{Body: bytes.NewReader(wav)})
			errs <- err
		}()
	}
	ok, conflicts := 0, 0
	for range n {
		switch err := <-errs; store.ErrorCode(err) {
		case store.CodeConflict:
			conflicts++
		default:
			if err != nil {
				t.Fatal(err)
			}
			ok++
		}
	}
	if ok != 1 || conflicts != n-1 {
		t.Fatalf("ok=%d conflicts=%d, want 1 and %d", ok, conflicts, n-1)
	}
	if files := blobFiles(t, env.dir); len(files) != 1 {
		t.Fatalf("%d blobs, want 1", len(files))
	}
}

func TestDB_KeyUsage(t *testing.T) {
	db, env := mustOpenDB(t)
	mustCreate(t, db, "a")
	mustCreate(t, db, "b")
	db.Close()
	oldKey := env.keys
	rotated, _ := store.NewKeyring(store.GenerateKey(), env.key)
	db2 := mustOpenEnv(t, env, store.Options{Keys: rotated})
	if _, err := db2.CreateRecord(ctx, store.NewRecord{Title: "c"}); err != nil {
		t.Fatal(err)
	}
	usage, err := db2.KeyUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Under the old key: two records, their one project of the day, three
	// audit events. Under the new (another day: db2 runs on the real clock):
	// one record, its project of the day, two events, and the database's
	// own index key, settings and signing key, which follow the primary key.
	if got, want := usage[oldKey.PrimaryID()], 6; got != want {
		t.Fatalf("old key covers %d items, want %d (usage=%v)", got, want, usage)
	}
	if got, want := usage[rotated.PrimaryID()], 7; got != want {
		t.Fatalf("new key covers %d items, want %d (usage=%v)", got, want, usage)
	}
}

// TestDB_Records_Unreadable: a record under a key that is not configured is
// listed as unreadable (to admins and the system) instead of hiding every
// other record; other users do not see it at all.
func TestDB_Records_Unreadable(t *testing.T) {
	db, env := mustOpenDB(t)
	old := mustCreate(t, db, "old")
	db.Close()
	k2 := store.GenerateKey()
	rotated, _ := store.NewKeyring(k2, env.key)
	db2 := mustOpenEnv(t, env, store.Options{Keys: rotated}) // moves the index key to k2
	db2.Close()
	only, _ := store.NewKeyring(k2)
	db3 := mustOpenEnv(t, env, store.Options{Keys: only})
	fresh, err := db3.CreateRecord(ctx, store.NewRecord{Title: "new"})
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := db3.Records(ctx, store.RecordFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != fresh.ID || recs[0].Title != "new" ||
		recs[1].ID != old.ID || recs[1].Status != store.StatusUnreadable || recs[1].Title != "" {
		t.Fatalf("records=%+v %+v", recs[0], recs[1])
	}
	viewer := store.WithPrincipal(ctx, &store.Principal{UserID: 5, Role: store.RoleViewer})
	if recs, _, err := db3.Records(viewer, store.RecordFilter{Limit: 10}); err != nil || len(recs) != 1 || recs[0].ID != fresh.ID {
		t.Fatalf("viewer's records=%v err=%v", recs, err)
	}
	if _, err := db3.Record(viewer, old.ID); store.ErrorCode(err) != store.CodeNotFound {
		t.Fatalf("viewer reads an unreadable record: %v", err)
	}
	ps, err := db3.Projects(ctx)
	if err != nil || len(ps) != 2 || !ps[0].Unreadable || ps[0].Name != "" || ps[1].Name == "" {
		t.Fatalf("projects=%+v err=%v", ps, err)
	}
}
