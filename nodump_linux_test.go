package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"tyst/store"
)

// TestServe_NotDumpable runs the built binary and checks that its memory is
// closed to other processes of its own user: a non-dumpable process's
// /proc/<pid>/mem belongs to root (proc(5)), not to the process's user.
// Run as root, the test starts serve as nobody, so the owner tells.
func TestServe_NotDumpable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	clearKeyEnv(t)
	// A directory others may enter: serve may run as nobody.
	dir, err := os.MkdirTemp("", "tyst-nodump-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	bin, err := buildBinary(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"))
	cmd.Env = []string{"PROJECT_FILES_KEY=" + store.GenerateKey(), "PATH=" + os.Getenv("PATH")}
	uid := os.Getuid()
	if uid == 0 {
		uid = 65534
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	startServing(t, cmd)

	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	status, err := os.ReadFile(proc + "/status")
	if err != nil || !strings.Contains(string(status), "\nUid:\t"+strconv.Itoa(uid)+"\t") {
		t.Fatalf("serve does not run as uid %d (%v):\n%s", uid, err, status)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(proc+"/mem", &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 {
		t.Fatalf("/proc/<pid>/mem belongs to uid %d: serve is dumpable, its own user's processes can read its memory", st.Uid)
	}
	if os.Getuid() != 0 {
		if f, err := os.Open(proc + "/mem"); err == nil {
			f.Close()
			t.Fatal("another process of the same user opened serve's memory")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGINT: %v, want exit 0", err)
	}
}
