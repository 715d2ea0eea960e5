package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"tyst/store"
)

// diskFullMiB is the size of the file system TestDiskFull runs tyst on.
const diskFullMiB = 64

// mustTmpfs mounts a tmpfs of sizeMiB under a temp directory and returns
// its path; cleanup unmounts it. Mounting needs root: without it the test
// is skipped, unless TYST_E2E_REQUIRED=1 (CI runs as root) makes that a
// failure.
func mustTmpfs(t *testing.T, sizeMiB int) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		if os.Getenv("TYST_E2E_REQUIRED") == "1" {
			t.Fatal("the full-disk test mounts a tmpfs and needs root (TYST_E2E_REQUIRED=1)")
		}
		t.Skip("the full-disk test mounts a tmpfs: run as root (CI does)")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", sizeMiB)); err != nil {
		if os.Getenv("TYST_E2E_REQUIRED") == "1" {
			t.Fatalf("mount tmpfs as root: %v", err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

// diskFiller takes the free space of a file system with one file.
type diskFiller struct {
	t    *testing.T
	path string
}

// leave fills the file system so that about free bytes stay available.
func (f diskFiller) leave(free int64) {
	f.t.Helper()
	os.Remove(f.path)
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(f.path), &st); err != nil {
		f.t.Fatal(err)
	}
	fill := int64(st.Bavail)*st.Bsize - free
	if fill <= 0 {
		return
	}
	file, err := os.Create(f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer file.Close()
	buf := make([]byte, 1<<20)
	for fill > 0 {
		n, err := file.Write(buf[:min(int64(len(buf)), fill)])
		fill -= int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

// free removes the filler.
func (f diskFiller) free() { os.Remove(f.path) }

// dataState lists every file under data but the database, with its size,
// and the records with their audio: what a refused request must not change.
func dataState(t *testing.T, c *http.Client, base, data string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != "tyst.db" && d.Name() != "admin.sock" {
			rel, _ := filepath.Rel(data, p)
			info, _ := d.Info()
			lines = append(lines, fmt.Sprintf("%s %d", rel, info.Size()))
		}
		return nil
	})
	sort.Strings(lines)
	resp, body := doRead(t, c, bodyRequest(t, "GET", base+"/api/v1/records?limit=100", "", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var page struct {
		Records []struct {
			ID    uint64          `json:"transcript_id"`
			Audio json.RawMessage `json:"audio"`
		} `json:"records"`
	}
	json.Unmarshal(body, &page)
	for _, r := range page.Records {
		lines = append(lines, fmt.Sprintf("record %d audio %s", r.ID, r.Audio))
	}
	return strings.Join(lines, "\n")
}

func bodyRequest(t *testing.T, method, url, ct string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return req
}

// multipartWAV is an upload body of wav.
func multipartWAV(wav []byte) (string, io.Reader) {
	head := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
	return "multipart/form-data; boundary=b", io.MultiReader(strings.NewReader(head), bytes.NewReader(wav), strings.NewReader("\r\n--b--\r\n"))
}

// wantStatus checks an answer's status and error code.
func wantStatus(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, body, status)
	}
	if code != "" && !strings.Contains(string(body), `"code":"`+code+`"`) {
		t.Fatalf("%s: %s, want code %s", what, body, code)
	}
}

// TestDiskFull runs the real binary on a small tmpfs and fills it. Every
// write path that runs out of space — an upload, an export, a live
// stream's spool and its stop, the compaction after a destroy, a purge,
// a rekey — answers
// 507 insufficient_storage (an error frame for a stream, an error that
// says so for the CLI),
// leaves no temp file, half blob or half package behind and changes no
// record; once space is freed every one of them works, and tyst verify
// finds nothing wrong.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary on a tmpfs")
	}
	clearKeyEnv(t)
	mnt := mustTmpfs(t, diskFullMiB)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(mnt, "data")
	key, newKey := store.GenerateKey(), store.GenerateKey()
	token := offlineUser(t, bin, data, key, "full", store.RoleEditor, "")
	c := authClient(token)
	// No export reserve: the export below must meet the full disk itself
	// (TestExport_Reserve and the API tests check the reserve).
	noReserve := []string{"TYST_EXPORT_RESERVE_MB=0", "TYST_EXPORT_RESERVE_PERCENT=0"}
	srv := startServer(t, bin, data, key, noReserve...)
	disk := diskFiller{t, filepath.Join(mnt, "filler")}

	create := func() uint64 {
		resp, body := doRead(t, c, bodyRequest(t, "POST", srv.base+"/api/v1/record", "application/json", strings.NewReader(`{"title":"full"}`)))
		wantStatus(t, "create", resp, body, 201, "")
		var out struct {
			ID uint64 `json:"transcript_id"`
		}
		json.Unmarshal(body, &out)
		return out.ID
	}
	upload := func(id uint64, wav []byte) (*http.Response, []byte) {
		ct, body := multipartWAV(wav)
		return doRead(t, c, bodyRequest(t, "POST", fmt.Sprintf("%s/api/v1/record/%d/audio", srv.base, id), ct, body))
	}
	export := func(id uint64) (*http.Response, []byte) {
		return doRead(t, c, bodyRequest(t, "POST", fmt.Sprintf("%s/api/v1/record/%d/export", srv.base, id), "application/json",
			strings.NewReader(`{"confirm":true,"reason":"for the editor"}`)))
	}
	cli := func(env []string, args ...string) ([]byte, error) {
		cmd := exec.Command(bin, append(args, "--data", data)...)
		cmd.Env = append(os.Environ(), env...)
		return cmd.CombinedOutput()
	}
	verify := func(env ...string) {
		t.Helper()
		if len(env) == 0 {
			env = []string{"PROJECT_FILES_KEY=" + key}
		}
		if out, err := cli(env, "verify"); err != nil {
			t.Fatalf("tyst verify: %v\n%s", err, out)
		}
	}
	noLeftovers := func(what string) {
		t.Helper()
		for _, dir := range []string{"blobs/tmp", "exports/tmp"} {
			if n := countFiles(filepath.Join(data, dir), ""); n != 0 {
				t.Fatalf("%s left %d temp files in %s", what, n, dir)
			}
		}
		for _, f := range []string{"tyst.db.compact", "tyst.db.old"} {
			if _, err := os.Stat(filepath.Join(data, f)); err == nil {
				t.Fatalf("%s left %s", what, f)
			}
		}
	}

	wav := hostileWAV(6 << 20)
	sum := sha256.Sum256(wav)
	kept := create()
	if resp, body := upload(kept, wav); resp.StatusCode != 201 {
		t.Fatalf("upload with space: %d %s", resp.StatusCode, body)
	}
	target, streamRec := create(), create()
	destroyMe, destroyToo := create(), create()
	for _, id := range []uint64{destroyMe, destroyToo} {
		if resp, body := upload(id, hostileWAV(1<<20)); resp.StatusCode != 201 {
			t.Fatalf("upload with space: %d %s", resp.StatusCode, body)
		}
	}

	func() { // Upload
		disk.leave(2 << 20)
		before := dataState(t, c, srv.base, data)
		resp, body := upload(target, wav)
		wantStatus(t, "upload on a full disk", resp, body, 507, "insufficient_storage")
		noLeftovers("a refused upload")
		if after := dataState(t, c, srv.base, data); after != before {
			t.Fatalf("a refused upload changed the data:\n%s\nbefore:\n%s", after, before)
		}
	}()
	func() { // Export
		disk.leave(2 << 20)
		before := dataState(t, c, srv.base, data)
		resp, body := export(kept)
		wantStatus(t, "export on a full disk", resp, body, 507, "insufficient_storage")
		noLeftovers("a refused export")
		if after := dataState(t, c, srv.base, data); after != before {
			t.Fatalf("a refused export changed the data:\n%s\nbefore:\n%s", after, before)
		}
	}()
	func() { // Stream
		streamOnFullDisk(t, srv.base, token, streamRec, disk, noLeftovers)
	}()
	func() { // Compaction
		destroy := func(id uint64) (*http.Response, []byte) {
			return doRead(t, c, bodyRequest(t, "POST", fmt.Sprintf("%s/api/v1/record/%d/destroy", srv.base, id),
				"application/json", strings.NewReader(`{"dry_run":false,"confirm":true,"reason":"source asked"}`)))
		}
		// No space at all: the database cannot commit, the destroy is
		// refused whole.
		disk.leave(0)
		before := dataState(t, c, srv.base, data)
		resp, body := destroy(destroyMe)
		wantStatus(t, "destroy on a full disk", resp, body, 507, "insufficient_storage")
		if after := dataState(t, c, srv.base, data); after != before {
			t.Fatalf("a refused destroy changed the data:\n%s\nbefore:\n%s", after, before)
		}
		// Room for the commit but not for a second copy of the database:
		// the destroy commits and answers, its compaction fails, and
		// nothing half-made stays.
		db, err := os.Stat(filepath.Join(data, "tyst.db"))
		if err != nil {
			t.Fatal(err)
		}
		disk.leave(db.Size() / 8)
		resp, body = destroy(destroyMe)
		wantStatus(t, "destroy with little space", resp, body, 200, "")
		noLeftovers("a compaction on a full disk")
		if !strings.Contains(srv.tail.String(), "compaction after destroy failed") {
			t.Fatalf("the compaction did not meet the full disk:\n%s", srv.tail)
		}
		// Room for the copy, none to spare: the compaction completes, and
		// the old file's pages are overwritten in place (no new space).
		db, err = os.Stat(filepath.Join(data, "tyst.db"))
		if err != nil {
			t.Fatal(err)
		}
		disk.leave(db.Size() + 64<<10)
		resp, body = destroy(destroyToo)
		wantStatus(t, "destroy with room for one copy", resp, body, 200, "")
		if logs := srv.tail.String(); !strings.Contains(logs, "database compacted") || strings.Contains(logs, "not overwritten") {
			t.Fatalf("compaction with room for one copy:\n%s", logs)
		}
		noLeftovers("a compaction with room for one copy")
		// A purge on the full disk (nothing has expired, so it only
		// sweeps) runs through and leaves nothing either.
		disk.leave(0)
		if out, err := cli([]string{"PROJECT_FILES_KEY=" + key}, "purge"); err != nil {
			t.Fatalf("purge on a full disk: %v\n%s", err, out)
		}
		noLeftovers("a purge on a full disk")
	}()
	func() { // Rekey
		disk.free()
		if resp, body := export(kept); resp.StatusCode != 201 { // a package for the rekey to encrypt again
			t.Fatalf("export with space: %d %s", resp.StatusCode, body)
		}
		srv.stop(t)
		rotated := []string{"PROJECT_FILES_KEY=" + newKey, "PROJECT_FILES_OLD_KEYS=" + key}
		disk.leave(1 << 20) // less than the package
		out, err := cli(rotated, "rekey")
		if err == nil || !strings.Contains(string(out), "insufficient storage") {
			t.Fatalf("rekey on a full disk: %v\n%s", err, out)
		}
		noLeftovers("a rekey on a full disk")
		disk.free()
		verify(rotated...) // everything still opens, under one key or the other
		if out, err := cli(rotated, "rekey"); err != nil {
			t.Fatalf("rekey with space: %v\n%s", err, out)
		}
		key = newKey
		srv = startServer(t, bin, data, key, noReserve...)
	}()
	func() { // WorksAgain
		disk.free()
		resp, body := upload(target, wav)
		wantStatus(t, "upload with space again", resp, body, 201, "")
		if !strings.Contains(string(body), hex.EncodeToString(sum[:])) {
			t.Fatalf("upload: %s", body)
		}
		resp, body = export(target)
		wantStatus(t, "export with space again", resp, body, 201, "")
		if out, err := cli([]string{"PROJECT_FILES_KEY=" + key}, "purge"); err != nil {
			t.Fatalf("purge with space again: %v\n%s", err, out)
		}
		noLeftovers("the runs with space")
		verify()
	}()
}
