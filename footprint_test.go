package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tyst/store"
)

// TestFootprint checks `make release` and measures what a field box
// cares about (docs/RELIABILITY.md, `make footprint`): every release
// binary is a static ELF for its architecture (no interpreter, no shared
// library), its size, and the idle RSS of `tyst serve` — the amd64 binary
// natively, the arm64 binary under qemu-user, whose figure includes the
// emulator's own memory (an upper bound, not a Raspberry Pi's figure). It
// runs only when TYST_FOOTPRINT_FIGURES names the file to write.
func TestFootprint(t *testing.T) {
	out := os.Getenv("TYST_FOOTPRINT_FIGURES")
	if out == "" {
		t.Skip("set TYST_FOOTPRINT_FIGURES (make footprint) to build the release and measure it")
	}
	clearKeyEnv(t)
	dir := t.TempDir()
	mustCopyModule(t, dir)
	mk := exec.Command("make", "-s", "release", "VERSION=footprint")
	mk.Dir = dir
	if b, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, b)
	}
	type binary struct {
		SizeMiB    float64 `json:"size_MiB"`
		Static     bool    `json:"static"`
		Machine    string  `json:"machine"`
		IdleRSSMiB float64 `json:"idle_rss_MiB,omitempty"`
		RSSHow     string  `json:"idle_rss_measured,omitempty"`
	}
	figs := map[string]*binary{}
	for name, machine := range map[string]elf.Machine{
		"tyst-linux-amd64": elf.EM_X86_64, "tyst-linux-arm64": elf.EM_AARCH64, "tyst-linux-armv7": elf.EM_ARM,
	} {
		path := filepath.Join(dir, "dist", name)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("make release did not write %s: %v", name, err)
		}
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		libs, _ := f.ImportedLibraries()
		static := len(libs) == 0
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if !static || f.Machine != machine {
			t.Fatalf("%s: static %v, machine %v; want a static %v binary", name, static, f.Machine, machine)
		}
		figs[name] = &binary{SizeMiB: round1(float64(st.Size()) / (1 << 20)), Static: static, Machine: machine.String()}
	}
	if b, err := exec.Command("go", "version", "-m", filepath.Join(dir, "dist", "tyst-linux-armv7")).Output(); err != nil || !strings.Contains(string(b), "GOARM=7") {
		t.Fatalf("the armv7 binary is not built with GOARM=7: %v\n%s", err, b)
	}

	idle := func(bin string) float64 {
		data, key := t.TempDir(), store.GenerateKey()
		srv := startServer(t, bin, data, key)
		time.Sleep(3 * time.Second) // past start-up work
		rss := procMiB(t, srv.cmd.Process.Pid, "VmRSS")
		srv.stop(t)
		return round1(rss)
	}
	amd := figs["tyst-linux-amd64"]
	amd.IdleRSSMiB, amd.RSSHow = idle(filepath.Join(dir, "dist", "tyst-linux-amd64")), "native, this machine"
	if qemu, err := exec.LookPath("qemu-aarch64-static"); err == nil {
		wrapper := filepath.Join(dir, "tyst-arm64-qemu")
		script := fmt.Sprintf("#!/bin/sh\nexec %s %s \"$@\"\n", qemu, filepath.Join(dir, "dist", "tyst-linux-arm64"))
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		arm := figs["tyst-linux-arm64"]
		arm.IdleRSSMiB, arm.RSSHow = idle(wrapper), "under qemu-user on this machine, emulator included"
	} else if os.Getenv("TYST_E2E_REQUIRED") == "1" {
		t.Fatal("qemu-aarch64-static is not installed (Debian qemu-user-static)")
	}
	b, _ := json.MarshalIndent(map[string]any{"binaries": figs, "go_version": strings.TrimPrefix(strings.Fields(goVersion(t))[2], "go")}, "", "  ")
	t.Logf("%s", b)
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
