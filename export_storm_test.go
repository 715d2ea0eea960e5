package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"tyst/store"
)

// TestExport_StormOnSmallDisk is the adversarial review's export storm
// (M1) against the real binary on a 64 MiB tmpfs, with the free space read
// by statfs: an editor fires 20 exports at once and then one after another
// until refused. One runs at a time for the account (the rest answer 429
// with Retry-After), no export takes the disk below the reserve (507
// insufficient_storage before a byte is written, no temp file left), and
// an upload still finds room afterwards.
func TestExport_StormOnSmallDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary on a tmpfs")
	}
	clearKeyEnv(t)
	mnt := mustTmpfs(t, 64)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(mnt, "data")
	key := store.GenerateKey()
	token := offlineUser(t, bin, data, key, "editor", store.RoleEditor, "")
	c := authClient(token)
	const reserveMiB = 20
	srv := startServer(t, bin, data, key, fmt.Sprintf("TYST_EXPORT_RESERVE_MB=%d", reserveMiB), "TYST_EXPORT_RESERVE_PERCENT=0")
	create := func() uint64 {
		resp, body := doRead(t, c, bodyRequest(t, "POST", srv.base+"/api/v1/record", "application/json", strings.NewReader(`{"title":"storm"}`)))
		wantStatus(t, "create", resp, body, 201, "")
		var out struct {
			ID uint64 `json:"transcript_id"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		return out.ID
	}
	upload := func(id uint64) (int, string) {
		ct, body := multipartWAV(hostileWAV(6 << 20))
		resp, b := doRead(t, c, bodyRequest(t, "POST", fmt.Sprintf("%s/api/v1/record/%d/audio", srv.base, id), ct, body))
		return resp.StatusCode, string(b)
	}
	export := func(id uint64) (int, string, string) {
		resp, b := doRead(t, c, bodyRequest(t, "POST", fmt.Sprintf("%s/api/v1/record/%d/export", srv.base, id), "application/json",
			strings.NewReader(`{"confirm":true,"reason":"storm"}`)))
		return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
	}
	freeMiB := func() int64 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(data, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bavail) * st.Bsize >> 20
	}
	id := create()
	if status, b := upload(id); status != 201 {
		t.Fatalf("upload: %d %s", status, b)
	}

	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			status, b, retry := export(id)
			mu.Lock()
			defer mu.Unlock()
			counts[status]++
			if status == 429 && retry == "" {
				t.Errorf("429 without Retry-After: %s", b)
			}
			if status != 201 && status != 429 && status != 507 {
				t.Errorf("export in the storm: %d %s", status, b)
			}
		})
	}
	wg.Wait()
	t.Logf("20 exports at once: %v; %d MiB free", counts, freeMiB())
	if counts[429] == 0 || counts[201] == 0 {
		t.Fatalf("20 exports at once by one account: %v, want some 201 and the rest 429", counts)
	}
	refused := ""
	for i := 0; i < 10 && refused == ""; i++ {
		switch status, b, _ := export(id); status {
		case 201:
		case 507:
			refused = b
		default:
			t.Fatalf("export %d: %d %s", i, status, b)
		}
	}
	if !strings.Contains(refused, `"code":"insufficient_storage"`) || !strings.Contains(refused, "free for uploads and live recordings") {
		t.Fatalf("exports until the reserve: never refused for it (%q)", refused)
	}
	free := freeMiB()
	t.Logf("refused at %d MiB free", free)
	if free < reserveMiB-2 {
		t.Fatalf("%d MiB free after the storm, under the %d MiB reserve", free, reserveMiB)
	}
	if n := countFiles(filepath.Join(data, "exports", "tmp"), ""); n != 0 {
		t.Fatalf("%d temp files left by the exports", n)
	}
	// The room the reserve kept: a reporter's upload still fits.
	if status, b := upload(create()); status != 201 {
		t.Fatalf("an upload after the export storm: %d %s", status, b)
	}
}
