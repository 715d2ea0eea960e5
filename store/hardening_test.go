package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"tyst/store"
	"tyst/store/media"
)

// wavOfSize returns a PCM WAV of exactly n bytes (n >= 44) with a pattern
// that depends on seed.
func wavOfSize(n int, seed byte) []byte {
	b := make([]byte, n)
	copy(b, media.WAVHeader(int64(n-media.WAVHeaderSize), 16000, 1))
	for i := 44; i < n; i++ {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// mustPrincipal creates a user with role and returns the principal of a
// new API token of theirs (scope "" or stream).
func mustPrincipal(tb testing.TB, db *store.DB, name, role, scope string) *store.Principal {
	tb.Helper()
	if _, err := db.CreateUser(ctx, store.NewUser{Username: name, Password: "a long password " + name, Role: role}); err != nil && store.ErrorCode(err) != store.CodeConflict {
		tb.Fatal(err)
	}
	secret, _, err := db.CreateToken(ctx, name, scope, "")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := db.Authenticate(ctx, secret)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// clearFields lists, per bucket, the JSON fields a row may show in the
// clear: ids, boxes (key id and ciphertext), hashes, times for sweeping.
var clearFields = map[string][]string{
	"records":  {"access", "id", "sealed"},
	"projects": {"box", "id"},
	"assets":   {"blob", "id", "sealed", "wrapped_key"},
	"audit":    {"body", "body_hash", "hash", "prev", "seq"},
	"users":    {"box", "id"},
	"sessions": {"box", "expires_at"},
	"tokens":   {"box", "id"},
}

// TestSeizedDisk: a copy of the data directory taken after realistic use
// tells someone without the newsroom key only ids, times and counts. Two
// uploads of different files of nearly equal size leave blobs of the same
// size; no MIME type, duration, exact size, role, sensitivity, name or
// user–record link stands in the clear.
func TestSeizedDisk(t *testing.T) {
	db, env := mustOpenDB(t)
	admin := store.WithPrincipal(ctx, mustPrincipal(t, db, "chief", store.RoleAdmin, ""))
	reporter := store.WithPrincipal(ctx, mustPrincipal(t, db, "reporter", store.RoleEditor, ""))
	viewer := store.WithPrincipal(ctx, mustPrincipal(t, db, "intern", store.RoleViewer, ""))
	const sizeA, sizeB = 700_123, 700_911 // both in the same MiB
	a, err := db.CreateRecord(reporter, store.NewRecord{Title: "Källan i hamnen", Language: "sv"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.CreateRecord(reporter, store.NewRecord{Title: "Whistleblower", Sensitivity: store.SensitivitySensitive, Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AttachAudio(reporter, a.ID, store.NewAudio{Body: bytes.NewReader(wavOfSize(sizeA, 1))}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AttachAudio(reporter, b.ID, store.NewAudio{Body: bytes.NewReader(wavOfSize(sizeB, 2))}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ctx context.Context
		id  uint64
	}{{viewer, a.ID}, {admin, b.ID}, {reporter, b.ID}} {
		ar, err := db.OpenAudio(c.ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, ar)
		ar.Close()
	}
	db.Close()
	seized := t.TempDir()
	copyDir(t, env.dir, seized)

	// Blobs: the same size, so size does not tell which upload is which.
	blobs := blobFiles(t, seized)
	if len(blobs) != 2 {
		t.Fatalf("blobs=%v", blobs)
	}
	s0, _ := os.Stat(blobs[0])
	s1, _ := os.Stat(blobs[1])
	if s0.Size() != s1.Size() {
		t.Fatalf("blob sizes %d and %d differ: the disk tells the uploads (%d and %d bytes) apart", s0.Size(), s1.Size(), sizeA, sizeB)
	}

	// The database file: none of these in the clear.
	raw := mustReadFile(t, filepath.Join(seized, "tyst.db"))
	// Every string searched holds a character no Fernet token (base64url)
	// has, or is long enough that random ciphertext does not hold it.
	for _, s := range []string{"audio/wav", `"audio`, `wav"`, `"sensitive"`, `"standard"`, `"admin"`, `"editor"`, `"viewer"`,
		`"chief"`, "reporter", `"intern"`, "Källan", "Whistleblower", `"sv"`, `"duration`, `"size_bytes"`, `"mime_type"`,
		`:` + fmt.Sprint(sizeA), `:` + fmt.Sprint(sizeB), `"created_by"`, `"actor`, `"record_id"`, `"user_id"`, `"role"`, `"title"`} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("tyst.db holds %q in the clear", s)
		}
	}

	// Every row shows only its allowed clear fields, and no index key
	// starts with a plain id.
	bdb, err := bolt.Open(filepath.Join(seized, "tyst.db"), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	bdb.View(func(tx *bolt.Tx) error {
		for bucket, allowed := range clearFields {
			rows := 0
			tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
				rows++
				var row map[string]json.RawMessage
				if err := json.Unmarshal(v, &row); err != nil {
					t.Errorf("%s: row is not JSON", bucket)
					return nil
				}
				var fields []string
				for f := range row {
					fields = append(fields, f)
				}
				sort.Strings(fields)
				for _, f := range fields {
					if !contains(allowed, f) {
						t.Errorf("%s row shows field %q in the clear (fields %v)", bucket, f, fields)
					}
				}
				return nil
			})
			if rows == 0 && bucket != "sessions" {
				t.Errorf("bucket %s is empty: the test searched nothing", bucket)
			}
		}
		for _, bucket := range []string{"audit_by_record", "project_records", "users_by_name"} {
			tx.Bucket([]byte(bucket)).ForEach(func(k, _ []byte) error {
				for _, id := range []uint64{a.ID, b.ID, a.ProjectID, b.ProjectID, 1, 2, 3} {
					if bytes.HasPrefix(k, binary.BigEndian.AppendUint64(nil, id)) {
						t.Errorf("%s key starts with the plain id %d", bucket, id)
					}
				}
				return nil
			})
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestForgedRows: someone with write access to tyst.db but without the
// key gains nothing: a viewer's row given an admin's sealed role, a session
// minted from a copied box, the settings row edited or deleted, a sensitive
// record given a standard record's access — each is refused.
func TestForgedRows(t *testing.T) {
	db, env := mustOpenDB(t)
	mustPrincipal(t, db, "chief", store.RoleAdmin, "")
	viewerSecret := func() string {
		if _, err := db.CreateUser(ctx, store.NewUser{Username: "intern", Password: "a long password intern", Role: store.RoleViewer}); err != nil {
			t.Fatal(err)
		}
		s, _, err := db.CreateToken(ctx, "intern", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	session, _, err := db.Login(ctx, "chief", "a long password chief", "")
	if err != nil {
		t.Fatal(err)
	}
	owner := store.WithPrincipal(ctx, mustPrincipal(t, db, "reporter", store.RoleEditor, ""))
	standard, _ := db.CreateRecord(owner, store.NewRecord{Title: "open"})
	secret, _ := db.CreateRecord(owner, store.NewRecord{Title: "secret", Sensitivity: store.SensitivitySensitive})
	if err := db.UpdateSettings(ctx, store.Settings{RequireAdminTOTP: true}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	reopen := func(t *testing.T, edit func(path string)) *store.DB {
		t.Helper()
		dir := t.TempDir()
		copyDir(t, env.dir, dir)
		edit(filepath.Join(dir, "tyst.db"))
		e2 := *env
		e2.dir = dir
		return mustOpenEnv(t, &e2, testOptions(t, &e2))
	}
	t.Run("ViewerPromoted", func(t *testing.T) {
		db := reopen(t, func(path string) {
			editBolt(t, path, "users", func(rows map[uint64]map[string]any) {
				var admin, intern uint64
				for id := range rows {
					switch id {
					case 1:
						admin = id
					case 2:
						intern = id
					}
				}
				rows[intern]["box"] = rows[admin]["box"] // the admin's sealed role, on the viewer's row
			})
		})
		p, err := db.Authenticate(ctx, viewerSecret)
		if err == nil && p.Role == store.RoleAdmin {
			t.Fatal("a viewer became admin by an edit of the database")
		}
		wantCode(t, err, store.CodeUnauthorized)
	})
	t.Run("SessionMinted", func(t *testing.T) {
		minted := "tyst_s_minted-by-an-attacker"
		db := reopen(t, func(path string) {
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			bdb.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("sessions"))
				_, v := b.Cursor().First() // the admin's real session row
				h := sha256.Sum256([]byte(minted))
				return b.Put(h[:], append([]byte(nil), v...)) // copied under the attacker's hash
			})
		})
		if _, err := db.Authenticate(ctx, minted); store.ErrorCode(err) != store.CodeUnauthorized {
			t.Fatalf("a minted session authenticates: err=%v", err)
		}
		if p, err := db.Authenticate(ctx, session); err != nil || p.Role != store.RoleAdmin {
			t.Fatalf("the real session: %+v %v", p, err)
		}
	})
	for name, edit := range map[string]func(m map[string]any){
		"SettingEdited":  func(m map[string]any) { m["box"] = "x" },
		"SettingDeleted": nil,
	} {
		t.Run(name, func(t *testing.T) {
			db := reopen(t, func(path string) {
				bdb, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer bdb.Close()
				bdb.Update(func(tx *bolt.Tx) error {
					meta := tx.Bucket([]byte("meta"))
					if edit == nil {
						return meta.Delete([]byte("settings"))
					}
					var b map[string]any
					json.Unmarshal(meta.Get([]byte("settings")), &b)
					b["sealed"] = strings.Repeat("A", 120) // no key: only garbage can be written
					raw, _ := json.Marshal(b)
					return meta.Put([]byte("settings"), raw)
				})
			})
			st, err := db.Settings(ctx)
			if err != nil || !st.RequireAdminTOTP {
				t.Fatalf("settings after the edit: %+v %v: the protection was turned off", st, err)
			}
			p, err := db.Authenticate(ctx, session)
			if err != nil || !p.NeedsTOTP {
				t.Fatalf("admin without TOTP after the edit: %+v %v", p, err)
			}
		})
	}
	t.Run("RecordMadeStandard", func(t *testing.T) {
		db := reopen(t, func(path string) {
			editBolt(t, path, "records", func(rows map[uint64]map[string]any) {
				rows[secret.ID]["access"] = rows[standard.ID]["access"]
			})
		})
		other := store.WithPrincipal(ctx, &store.Principal{UserID: 99, Role: store.RoleEditor})
		if _, err := db.Record(other, secret.ID); store.ErrorCode(err) != store.CodeNotFound {
			t.Fatalf("another user reads the edited sensitive record: %v", err)
		}
		recs, _, err := db.Records(other, store.RecordFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.ID == secret.ID || r.Title == "secret" {
				t.Fatal("the edited sensitive record is listed to another user")
			}
		}
	})
}

// TestStreamToken: a stream token uploads only into records it created;
// anywhere else the answer is the same 404 whatever the record's state.
func TestStreamToken(t *testing.T) {
	db, _ := mustOpenDB(t)
	wav := mustReadFile(t, wavFile)
	field := store.WithPrincipal(ctx, mustPrincipal(t, db, "fieldbox", store.RoleEditor, store.ScopeStream))
	other := store.WithPrincipal(ctx, mustPrincipal(t, db, "fieldbox", store.RoleEditor, store.ScopeStream)) // same user, another token
	editor := store.WithPrincipal(ctx, mustPrincipal(t, db, "reporter", store.RoleEditor, ""))
	own, err := db.CreateRecord(field, store.NewRecord{Title: "from the field"})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := db.CreateRecord(editor, store.NewRecord{Title: "the desk's"})
	withAudio, _ := db.CreateRecord(editor, store.NewRecord{Title: "has audio"})
	mustAttach(t, db, withAudio.ID, "", wav)
	sensitive, _ := db.CreateRecord(editor, store.NewRecord{Title: "s", Sensitivity: store.SensitivitySensitive})
	for name, id := range map[string]uint64{"plain": plain.ID, "with audio": withAudio.ID, "sensitive": sensitive.ID, "missing": 999} {
		_, err := db.AttachAudio(field, id, store.NewAudio{Body: bytes.NewReader(wav)})
		if store.ErrorCode(err) != store.CodeNotFound || store.ErrorMessage(err) != "record not found" {
			t.Errorf("%s record: err=%v, want the same not_found", name, err)
		}
		if _, err := db.Record(field, id); store.ErrorCode(err) != store.CodeNotFound {
			t.Errorf("%s record read by the stream token: %v", name, err)
		}
	}
	if _, err := db.AttachAudio(other, own.ID, store.NewAudio{Body: bytes.NewReader(wav)}); store.ErrorCode(err) != store.CodeNotFound {
		t.Errorf("another token of the same user uploads into it: %v", err)
	}
	if _, err := db.AttachAudio(field, own.ID, store.NewAudio{Body: bytes.NewReader(wav)}); err != nil {
		t.Fatalf("its own record: %v", err)
	}
}

// TestResetRevokesTokens: a password or second-factor reset revokes the
// user's API tokens and says how many.
func TestResetRevokesTokens(t *testing.T) {
	db, _ := mustOpenDB(t)
	p := mustPrincipal(t, db, "reporter", store.RoleEditor, "")
	second, _, _ := db.CreateToken(ctx, "reporter", store.ScopeStream, "field box 3")
	pw := "a brand new password"
	res, err := db.UpdateUser(ctx, p.UserID, store.UserUpdate{Password: &pw})
	if err != nil || res.TokensRevoked != 2 {
		t.Fatalf("revoked=%d err=%v, want 2", res.TokensRevoked, err)
	}
	if _, err := db.Authenticate(ctx, second); store.ErrorCode(err) != store.CodeUnauthorized {
		t.Fatalf("a token works after the password reset: %v", err)
	}
	third, _, _ := db.CreateToken(ctx, "reporter", "", "")
	res, err = db.UpdateUser(ctx, p.UserID, store.UserUpdate{ResetTOTP: true})
	if err != nil || res.TokensRevoked != 1 {
		t.Fatalf("revoked=%d err=%v, want 1", res.TokensRevoked, err)
	}
	if _, err := db.Authenticate(ctx, third); store.ErrorCode(err) != store.CodeUnauthorized {
		t.Fatalf("a token works after the second-factor reset: %v", err)
	}
	role := store.RoleViewer
	fourth, _, _ := db.CreateToken(ctx, "reporter", "", "")
	if res, err := db.UpdateUser(ctx, p.UserID, store.UserUpdate{Role: &role}); err != nil || res.TokensRevoked != 0 {
		t.Fatalf("a role change revoked %d tokens (err %v)", res.TokensRevoked, err)
	}
	if _, err := db.Authenticate(ctx, fourth); err != nil {
		t.Fatalf("a role change broke the token: %v", err)
	}
}

// TestAudioAccess_Coalesced: listens of one principal to one record within
// ten minutes are one audio_accessed event; another principal, another
// record, or a later listen are new events.
func TestAudioAccess_Coalesced(t *testing.T) {
	db, env := mustOpenDB(t)
	wav := mustReadFile(t, wavFile)
	p1 := store.WithPrincipal(ctx, mustPrincipal(t, db, "one", store.RoleViewer, ""))
	p2 := store.WithPrincipal(ctx, mustPrincipal(t, db, "two", store.RoleViewer, ""))
	rec := mustCreate(t, db, "r")
	mustAttach(t, db, rec.ID, "", wav)
	listen := func(c context.Context) {
		t.Helper()
		ar, err := db.OpenAudio(c, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		ar.Close()
	}
	count := func() int {
		events, _, err := db.AuditEvents(ctx, store.AuditFilter{RecordID: rec.ID})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range events {
			if ev.Action == store.ActionAudioAccessed {
				n++
			}
		}
		return n
	}
	for range 50 {
		listen(p1)
	}
	if got := count(); got != 1 {
		t.Fatalf("50 listens in a row: %d events, want 1", got)
	}
	listen(p2)
	if got := count(); got != 2 {
		t.Fatalf("another principal: %d events, want 2", got)
	}
	env.now = env.now.Add(11 * time.Minute)
	listen(p1)
	if got := count(); got != 3 {
		t.Fatalf("a listen after the window: %d events, want 3", got)
	}
}

// TestSetupRefused_Audited: refused setup attempts are audited, at most one
// event a minute, and never hash a password.
func TestSetupRefused_Audited(t *testing.T) {
	db, env := mustOpenDB(t)
	if _, err := db.NewSetupToken(ctx); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		_, err := db.CompleteSetup(ctx, "tyst_setup_wrong", store.NewUser{Username: "x1", Password: "a long password"})
		wantCode(t, err, store.CodeUnauthorized)
	}
	refused := func() int {
		events, _, _ := db.AuditEvents(ctx, store.AuditFilter{})
		n := 0
		for _, ev := range events {
			if ev.Action == store.ActionSetupRefused {
				n++
			}
		}
		return n
	}
	if got := refused(); got != 1 {
		t.Fatalf("%d setup_refused events for 20 attempts in a minute, want 1", got)
	}
	env.now = env.now.Add(2 * time.Minute)
	db.CompleteSetup(ctx, "tyst_setup_wrong", store.NewUser{Username: "x1", Password: "a long password"})
	if got := refused(); got != 2 {
		t.Fatalf("%d events after the minute, want 2", got)
	}
}
