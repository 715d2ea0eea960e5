package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tyst/store"
)

// mustAgedData makes a data directory under key with records created days
// ago (one with audio), as a real store with a clock set back writes them.
func mustAgedData(t *testing.T, key string, days int, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	kr, _ := store.NewKeyring(key)
	then := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
	db, err := store.Open(dir, store.Options{Keys: kr, Now: func() time.Time { return then }})
	if err != nil {
		t.Fatal(err)
	}
	wav, _ := os.ReadFile("testdata/audio/tone.wav")
	for i := range n {
		rec, err := db.CreateRecord(context.Background(), store.NewRecord{Title: "CANARY-title"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := db.AttachAudio(context.Background(), rec.ID, store.NewAudio{Body: bytes.NewReader(wav)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()
	return dir
}

func TestPurgeCommand(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	dir := mustAgedData(t, key, 5, 3)

	// A retention of 0 or less is a usage error that purges nothing, not
	// the server's setting in disguise.
	for _, bad := range []string{"0", "-1"} {
		out, errOut, code := runCmd(t, nil, "purge", "--data", dir, "--retention-days", bad)
		if code != 2 || out != "" || !strings.Contains(errOut, "--retention-days must be at least 1") {
			t.Fatalf("--retention-days %s: code %d %q %s", bad, code, out, errOut)
		}
	}

	out, errOut, code := runCmd(t, nil, "purge", "--data", dir, "--dry-run", "--retention-days", "3")
	var st struct {
		PurgedCount  int    `json:"purged_count"`
		FilesDeleted int    `json:"files_deleted"`
		Errors       int    `json:"errors"`
		DryRun       bool   `json:"dry_run"`
		Retention    int    `json:"retention_days"`
		Cutoff       string `json:"cutoff_date"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st.PurgedCount != 3 || !st.DryRun || st.Retention != 3 || st.Cutoff == "" {
		t.Fatalf("dry run: code %d, %s %s", code, out, errOut)
	}
	if _, _, code := runCmd(t, nil, "purge", "--data", dir, "--retention-days", "7"); code != 0 {
		t.Fatalf("purge with a longer retention: code %d", code)
	}
	out, errOut, code = runCmd(t, nil, "purge", "--data", dir, "--retention-days", "3")
	json.Unmarshal([]byte(out), &st)
	if code != 0 || st.PurgedCount != 3 || st.FilesDeleted != 1 || st.DryRun || st.Errors != 0 {
		t.Fatalf("purge: code %d, %s %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "CANARY") || strings.Contains(out+errOut, dir) {
		t.Fatal("purge printed a title or the path")
	}
	out, _, _ = runCmd(t, nil, "purge", "--data", dir, "--retention-days", "3")
	json.Unmarshal([]byte(out), &st)
	if st.PurgedCount != 0 {
		t.Fatalf("a second purge found %d more", st.PurgedCount)
	}
}

// TestMaintenance_Locked: a database held by another process without an
// admin socket is a clear error within seconds, never a hang.
func TestMaintenance_Locked(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	dir := mustAgedData(t, key, 0, 1)
	kr, _ := store.NewKeyring(key)
	db, err := store.Open(dir, store.Options{Keys: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, cmd := range []string{"purge", "verify", "rekey", "signing-key"} {
		start := time.Now()
		_, errOut, code := runCmd(t, nil, cmd, "--data", dir)
		if code != 1 || !strings.Contains(errOut, "held by another tyst process") || time.Since(start) > 10*time.Second {
			t.Fatalf("%s on a locked database: code %d after %v: %s", cmd, code, time.Since(start), errOut)
		}
	}
}

func TestVerifyRekeyBackup_Offline(t *testing.T) {
	clearKeyEnv(t)
	oldKey, newKey := store.GenerateKey(), store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", oldKey)
	dir := mustAgedData(t, oldKey, 0, 4)
	out, errOut, code := runCmd(t, nil, "verify", "--data", dir)
	if code != 0 || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("verify: code %d %s %s", code, out, errOut)
	}
	printed := out + errOut
	defer func() {
		if strings.Contains(printed, "CANARY") || strings.Contains(printed, dir) {
			t.Fatal("a command printed a title or the data directory's path")
		}
	}()

	// Rotation: the new key with the old one kept; rekey; then the old
	// key can go.
	t.Setenv("PROJECT_FILES_KEY", newKey)
	t.Setenv("PROJECT_FILES_OLD_KEYS", oldKey)
	out, errOut, code = runCmd(t, nil, "rekey", "--data", dir)
	printed += out + errOut
	var st store.RekeyStats
	json.Unmarshal([]byte(out), &st)
	oldID, _ := store.KeyID(oldKey)
	if code != 0 || st.Resealed == 0 || st.KeyUsage[oldID] != 0 {
		t.Fatalf("rekey: code %d %s %s", code, out, errOut)
	}
	t.Setenv("PROJECT_FILES_OLD_KEYS", "")
	if out, errOut, code := runCmd(t, nil, "verify", "--data", dir); code != 0 {
		t.Fatalf("verify with only the new key: code %d %s %s", code, out, errOut)
	}

	backup := filepath.Join(t.TempDir(), "copy")
	if out, errOut, code := runCmd(t, nil, "backup", "--data", dir, "--out", backup); code != 0 || !strings.Contains(out, `"blobs": 1`) {
		t.Fatalf("backup: code %d %s %s", code, out, errOut)
	} else {
		printed += out + errOut
	}
	if out, errOut, code := runCmd(t, nil, "verify", "--data", backup); code != 0 {
		t.Fatalf("verify of the backup: code %d %s %s", code, out, errOut)
	}
	if _, _, code := runCmd(t, nil, "backup", "--data", dir, "--out", backup); code != 1 {
		t.Fatalf("a backup into a non-empty directory: code %d, want 1", code)
	}

	// Damage: one flipped bit in the blob; verify says so and exits 1.
	var blob string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".bin") {
			blob = p
		}
		return nil
	})
	b, _ := os.ReadFile(blob)
	b[len(b)/3] ^= 4
	os.WriteFile(blob, b, 0o600)
	out, _, code = runCmd(t, nil, "verify", "--data", dir)
	if code != 1 || !strings.Contains(out, `"kind": "corrupt_blob"`) {
		t.Fatalf("verify of a damaged blob: code %d %s", code, out)
	}
}

// TestMaintenance_Online: with a server running, the commands go through
// its admin socket (the database is the server's) and print the same.
func TestMaintenance_Online(t *testing.T) {
	clearKeyEnv(t)
	key := store.GenerateKey()
	t.Setenv("PROJECT_FILES_KEY", key)
	dir := mustAgedData(t, key, 0, 2)
	srv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", dir)
	out, errOut, code := runCmd(t, nil, "verify", "--data", dir)
	if code != 0 || !strings.Contains(out, `"records": 2`) {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	// The audit head goes over the socket too: the one just given holds, a
	// made-up one of the same event does not.
	head := auditHead(t, out)
	if out, errOut, code := runCmd(t, nil, "verify", "--data", dir, "--audit-head", head); code != 0 {
		t.Fatalf("verify --audit-head of its own head: %d %s %s", code, out, errOut)
	}
	seq, _, _ := strings.Cut(head, ":")
	if out, _, code := runCmd(t, nil, "verify", "--data", dir, "--audit-head", seq+":"+strings.Repeat("ab", 32)); code != 1 || !strings.Contains(out, `"kind": "audit_rollback"`) {
		t.Fatalf("verify --audit-head with another hash: %d %s", code, out)
	}
	if out, errOut, code := runCmd(t, nil, "purge", "--data", dir, "--dry-run"); code != 0 || !strings.Contains(out, `"dry_run": true`) {
		t.Fatalf("purge: %d %s %s", code, out, errOut)
	}
	backup := filepath.Join(t.TempDir(), "copy")
	if out, errOut, code := runCmd(t, nil, "backup", "--data", dir, "--out", backup); code != 0 {
		t.Fatalf("backup: %d %s %s", code, out, errOut)
	}
	out, errOut, code = runCmd(t, nil, "signing-key", "--data", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "tyst namespaces=") || !strings.HasPrefix(lines[1], "SHA256:") {
		t.Fatalf("signing-key: %d %q %s", code, out, errOut)
	}
	srv.stop(t)
	if out, errOut, code := runCmd(t, nil, "verify", "--data", backup); code != 0 {
		t.Fatalf("verify of the online backup: %d %s %s", code, out, errOut)
	}
	// The backup serves.
	copySrv := serveInProcess(t, "--listen", "127.0.0.1:0", "--data", backup)
	resp, err := http.Get("http://" + copySrv.addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("serve from the backup: %v %v", resp, err)
	}
	resp.Body.Close()
	copySrv.stop(t)
	if out2, _, _ := runCmd(t, nil, "signing-key", "--data", dir); out2 != out {
		t.Fatalf("offline signing-key differs: %q vs %q", out2, out)
	}
}
