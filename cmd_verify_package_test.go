package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiddeco/sshsig"

	"tyst/store"
	"tyst/store/export"
	"tyst/store/signing"
)

// pkgFixture is an export package on disk and what made it.
type pkgFixture struct {
	dir      string // the test's temp dir, holding the files below
	zip      string // the package
	allowed  string // the newsroom's published allowed_signers
	keyFile  string // the newsroom key
	key      string // the newsroom key, base64url
	sigKey   *signing.Key
	audio    []byte
	manifest *export.Manifest
}

// mustPackage writes a package of testdata/audio/file (none when "") in mode.
func mustPackage(t *testing.T, file, mode string) *pkgFixture {
	t.Helper()
	sigKey, err := signing.Generate()
	if err != nil {
		t.Fatal(err)
	}
	key := store.GenerateKey()
	kr, err := store.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	fx := &pkgFixture{dir: t.TempDir(), key: key, sigKey: sigKey}
	in := export.Input{
		PackageID: "p7", CreatedAt: time.Now(), AudioMode: mode, TranscriptID: 7,
		Transcript: []byte(`{"title":"Källan berättar"}`), Audit: []byte(`[]`),
		AudioKey: kr.Primary(), AudioExt: strings.TrimPrefix(filepath.Ext(file), "."),
	}
	if file != "" {
		if fx.audio, err = os.ReadFile(filepath.Join("testdata", "audio", file)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(fx.audio)
		in.Audio, in.AudioSHA256 = bytes.NewReader(fx.audio), hex.EncodeToString(sum[:])
	}
	var buf bytes.Buffer
	if fx.manifest, err = export.Write(&buf, in, sigKey); err != nil {
		t.Fatal(err)
	}
	fx.zip = fx.write(t, "export.zip", buf.Bytes())
	fx.allowed = fx.write(t, "newsroom_allowed_signers", []byte(sigKey.AllowedSigners()+"\n"))
	fx.keyFile = fx.write(t, "newsroom.key", []byte(key+"\n"))
	return fx
}

func (fx *pkgFixture) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(fx.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyReport runs verify-package and decodes its report.
func verifyReport(t *testing.T, args ...string) (export.Report, string, int) {
	t.Helper()
	out, errOut, code := runCmd(t, nil, append([]string{"verify-package"}, args...)...)
	var rep export.Report
	if code != 2 && out != "" {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stdout is not a JSON report: %v\n%s", err, out)
		}
	}
	return rep, errOut, code
}

func TestVerifyPackage(t *testing.T) {
	clearKeyEnv(t)
	fx := mustPackage(t, "tone.m4a", export.ModeEncrypted)

	t.Run("TrustedWithKey", func(t *testing.T) {
		rep, errOut, code := verifyReport(t, fx.zip, "--allowed-signers", fx.allowed, "--key-file", fx.keyFile)
		if code != 0 || !rep.OK || !rep.Signature.Trusted || rep.Signature.Fingerprint != fx.sigKey.Fingerprint() ||
			!rep.Audio.Checked || !rep.Audio.OK || len(rep.Entries) != 6 || len(rep.Notes) != 0 || errOut != "" {
			t.Fatalf("exit %d, %+v, stderr %q", code, rep, errOut)
		}
	})
	t.Run("FlagsFirst", func(t *testing.T) {
		if _, _, code := verifyReport(t, "--key-file", fx.keyFile, "--allowed-signers", fx.allowed, fx.zip); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("EnvKeyAndAllowedSigners", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", fx.key)
		t.Setenv("TYST_ALLOWED_SIGNERS", fx.allowed)
		if rep, _, code := verifyReport(t, fx.zip); code != 0 || !rep.Audio.Checked || !rep.Signature.Trusted {
			t.Fatalf("exit %d, %+v", code, rep)
		}
	})
	t.Run("OldKey", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
		t.Setenv("PROJECT_FILES_OLD_KEYS", fx.key)
		if rep, _, code := verifyReport(t, fx.zip, "--allowed-signers", fx.allowed); code != 0 || !rep.Audio.OK {
			t.Fatalf("exit %d, %+v", code, rep)
		}
	})
	t.Run("Fingerprint", func(t *testing.T) {
		rep, errOut, code := verifyReport(t, fx.zip, "--fingerprint", fx.sigKey.Fingerprint(), "--key-file", fx.keyFile)
		if code != 0 || !rep.OK || !rep.Intact || !rep.Trusted || !rep.Signature.Trusted || !rep.Audio.OK || errOut != "" {
			t.Fatalf("exit %d, %+v, stderr %q", code, rep, errOut)
		}
	})
	t.Run("EnvFingerprint", func(t *testing.T) {
		t.Setenv("TYST_FINGERPRINT", fx.sigKey.Fingerprint())
		if rep, _, code := verifyReport(t, fx.zip); code != 0 || !rep.Trusted {
			t.Fatalf("exit %d, %+v", code, rep)
		}
	})
	t.Run("UncheckedNoAnchor", func(t *testing.T) {
		rep, errOut, code := verifyReport(t, fx.zip)
		if code != 3 || rep.OK || !rep.Intact || rep.Trusted || rep.Signature.Trusted || !rep.Signature.OK || rep.Audio.Checked {
			t.Fatalf("exit %d, %+v", code, rep)
		}
		for _, want := range []string{"intact, but its signer was not checked", "--allowed-signers", "--fingerprint", "audio_sha256 was not checked"} {
			if !strings.Contains(errOut, want) {
				t.Fatalf("stderr lacks %q: %q", want, errOut)
			}
		}
	})
	t.Run("ErrOtherAllowedSigners", func(t *testing.T) {
		other := mustPackage(t, "", export.ModeEncrypted)
		rep, errOut, code := verifyReport(t, fx.zip, "--allowed-signers", other.allowed)
		if code != 1 || rep.OK || rep.Trusted || !rep.Intact || !strings.Contains(errOut, "package does not verify") ||
			!strings.Contains(errOut, "not in the allowed_signers given") {
			t.Fatalf("exit %d, %+v, %q", code, rep, errOut)
		}
	})
	t.Run("ErrOtherFingerprint", func(t *testing.T) {
		other := mustPackage(t, "", export.ModeEncrypted)
		rep, errOut, code := verifyReport(t, fx.zip, "--fingerprint", other.sigKey.Fingerprint())
		if code != 1 || rep.OK || rep.Trusted || !strings.Contains(errOut, "fingerprint is not the one given") {
			t.Fatalf("exit %d, %+v, %q", code, rep, errOut)
		}
	})
	t.Run("ErrWrongKey", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", store.GenerateKey())
		rep, errOut, code := verifyReport(t, fx.zip, "--allowed-signers", fx.allowed)
		if code != 1 || rep.Audio.Checked || !strings.Contains(errOut, "audio.bin does not decrypt") {
			t.Fatalf("exit %d, %+v, %q", code, rep, errOut)
		}
	})
	t.Run("ErrBadKey", func(t *testing.T) {
		t.Setenv("PROJECT_FILES_KEY", "not-a-key-SECRET")
		_, errOut, code := verifyReport(t, fx.zip)
		if code != 1 || !strings.Contains(errOut, "PROJECT_FILES_KEY") || strings.Contains(errOut, "SECRET") {
			t.Fatalf("exit %d, %q", code, errOut)
		}
	})
	t.Run("ErrMissingFiles", func(t *testing.T) {
		missing := filepath.Join(fx.dir, "no-such-source-name.zip")
		for _, args := range [][]string{{missing}, {fx.zip, "--allowed-signers", missing}, {fx.zip, "--key-file", missing}, {fx.dir}} {
			out, errOut, code := runCmd(t, nil, append([]string{"verify-package"}, args...)...)
			if code != 1 || out != "" {
				t.Fatalf("%q: exit %d, stdout %q", args, code, out)
			}
			if strings.Contains(errOut, fx.dir) || strings.Contains(errOut, "no-such-source-name") {
				t.Fatalf("the error names a path: %q", errOut)
			}
		}
	})
	t.Run("Usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {fx.zip, fx.zip}, {fx.zip, "--no-such-flag"}, {"--key-file"}} {
			if _, _, code := runCmd(t, nil, append([]string{"verify-package"}, args...)...); code != 2 {
				t.Fatalf("%q: exit %d, want 2", args, code)
			}
		}
		for _, fp := range []string{"MD5:SECRET-ab:cd", fx.sigKey.Fingerprint() + "SECRET", strings.TrimPrefix(fx.sigKey.Fingerprint(), "SHA256:")} {
			out, errOut, code := runCmd(t, nil, "verify-package", fx.zip, "--fingerprint", fp)
			if code != 2 || out != "" || !strings.Contains(errOut, "--fingerprint must be SHA256:") || strings.Contains(errOut, "SECRET") {
				t.Fatalf("--fingerprint %q: exit %d, stdout %q, stderr %q", fp, code, out, errOut)
			}
		}
		_, errOut, code := runCmd(t, nil, "verify-package", "--help")
		for _, want := range []string{"-allowed-signers", "TYST_ALLOWED_SIGNERS", "-fingerprint", "TYST_FINGERPRINT", "PROJECT_FILES_KEY", "3 intact, but the signer was not checked"} {
			if code != 0 || !strings.Contains(errOut, want) {
				t.Fatalf("--help: exit %d, lacks %q: %q", code, want, errOut)
			}
		}
		if out, _, _ := runCmd(t, nil, "help"); !strings.Contains(out, "verify-package") {
			t.Fatal("the usage text does not list verify-package")
		}
	})
}

// TestVerifyPackage_DecryptAudio: the editor's way from a package to the
// audio, as README.txt tells it: unzip (archive/zip and the unzip command),
// then `tyst decrypt --key-file newsroom.key < audio.bin > audio`, whose
// SHA-256 is audio_sha256.
func TestVerifyPackage_DecryptAudio(t *testing.T) {
	clearKeyEnv(t)
	fx := mustPackage(t, "tone.ogg", export.ModeEncrypted)
	zr, err := zip.OpenReader(fx.zip)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	rc, err := zr.Open("audio.bin")
	if err != nil {
		t.Fatal(err)
	}
	viaArchive, _ := io.ReadAll(rc)
	rc.Close()
	viaUnzip, err := exec.Command(mustLookPath(t, "unzip"), "-p", fx.zip, "audio.bin").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(viaArchive, viaUnzip) {
		t.Fatal("archive/zip and unzip disagree on audio.bin")
	}
	var readme []byte
	if readme, err = exec.Command("unzip", "-p", fx.zip, "README.txt").Output(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "tyst decrypt --key-file newsroom.key < audio.bin > audio") {
		t.Fatal("README.txt no longer gives the command this test runs")
	}
	out, errOut, code := runCmd(t, bytes.NewReader(viaUnzip), "decrypt", "--key-file", fx.keyFile)
	if code != 0 {
		t.Fatalf("decrypt: exit %d, %s", code, errOut)
	}
	sum := sha256.Sum256([]byte(out))
	if got, want := hex.EncodeToString(sum[:]), fx.manifest.IntegrityHashes.AudioSHA256; got != want || out != string(fx.audio) {
		t.Fatalf("decrypted audio has SHA-256 %s, audio_sha256 is %s", got, want)
	}
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: apt-get install -y %s", name, name)
	}
	return p
}

// zipEntry is one entry of a rebuilt package.
type zipEntry struct {
	name   string
	data   []byte
	method uint16
}

func readEntries(t *testing.T, path string) []zipEntry {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var es []zipEntry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, zipEntry{f.Name, b, f.Method})
	}
	return es
}

func writeEntries(t *testing.T, path string, es []zipEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range es {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyPackage_Changed: one changed byte in any entry (the ZIP's CRC
// put right), an added, doubled or traversing entry, a huge declared size or
// a cut file: exit 1, with the report saying why.
func TestVerifyPackage_Changed(t *testing.T) {
	clearKeyEnv(t)
	for _, mode := range []string{export.ModeEncrypted, export.ModeDecrypted} {
		fx := mustPackage(t, "tone.mp3", mode)
		es := readEntries(t, fx.zip)
		if _, _, code := verifyReport(t, fx.zip, "--allowed-signers", fx.allowed, "--key-file", fx.keyFile); code != 0 {
			t.Fatalf("%s: the package itself fails", mode)
		}
		bad := filepath.Join(fx.dir, "bad.zip")
		check := func(t *testing.T, want string) {
			t.Helper()
			rep, errOut, code := verifyReport(t, bad, "--allowed-signers", fx.allowed, "--key-file", fx.keyFile)
			if code != 1 || rep.OK || !strings.Contains(strings.Join(rep.Problems, "\n"), want) || !strings.Contains(errOut, "package does not verify") {
				t.Fatalf("exit %d, problems %q (want %q), stderr %q", code, rep.Problems, want, errOut)
			}
		}
		for i, e := range es {
			t.Run(mode+"/Byte/"+e.name, func(t *testing.T) {
				changed := slices.Clone(es)
				changed[i].data = bytes.Clone(e.data)
				changed[i].data[len(e.data)/3] ^= 0x02
				writeEntries(t, bad, changed)
				check(t, strings.TrimSuffix(e.name, ".sig"))
			})
		}
		t.Run(mode+"/Extra", func(t *testing.T) {
			writeEntries(t, bad, append(slices.Clone(es), zipEntry{"interview-source-name.wav", []byte("RIFF"), zip.Store}))
			check(t, "an entry that is not part of a tyst package")
		})
		t.Run(mode+"/Duplicate", func(t *testing.T) {
			writeEntries(t, bad, append(slices.Clone(es), es[0]))
			check(t, "an entry appears twice")
		})
		t.Run(mode+"/Traversal", func(t *testing.T) {
			changed := slices.Clone(es)
			changed[0].name = "../../" + changed[0].name
			writeEntries(t, bad, changed)
			check(t, "an entry that is not part of a tyst package")
		})
		t.Run(mode+"/HugeDeclaredSize", func(t *testing.T) {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			for _, e := range es {
				if e.name == "audit.json" {
					w, _ := zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: zip.Store, CompressedSize64: uint64(len(e.data)), UncompressedSize64: 1 << 45})
					w.Write(e.data)
					continue
				}
				w, _ := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
				w.Write(e.data)
			}
			zw.Close()
			os.WriteFile(bad, buf.Bytes(), 0o600)
			check(t, "audit.json declares a size beyond the format's bounds")
		})
		t.Run(mode+"/Truncated", func(t *testing.T) {
			b, _ := os.ReadFile(fx.zip)
			for _, n := range []int{0, 10, len(b) / 2, len(b) - 1} {
				os.WriteFile(bad, b[:n], 0o600)
				check(t, "not a tyst package ZIP")
			}
		})
	}
}

// writeBigPackage writes a package of mb MB of real audio (tone.wav
// repeated), encrypted, to path.
func writeBigPackage(tb testing.TB, path string, mb int, sigKey *signing.Key, kr *store.Keyring) {
	tb.Helper()
	tone, err := os.ReadFile("testdata/audio/tone.wav")
	if err != nil {
		tb.Fatal(err)
	}
	audio := bytes.Repeat(tone, mb*1e6/len(tone))
	sum := sha256.Sum256(audio)
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	_, err = export.Write(f, export.Input{
		PackageID: "big", CreatedAt: time.Now(), AudioMode: export.ModeEncrypted, TranscriptID: 1,
		Transcript: []byte(`{}`), Audit: []byte(`[]`), Audio: bytes.NewReader(audio),
		AudioSHA256: hex.EncodeToString(sum[:]), AudioKey: kr.Primary(),
	}, sigKey)
	if err != nil {
		tb.Fatal(err)
	}
}

// runPeakRSS runs cmd to its end, reading its VmHWM (peak RSS of its own
// memory, after exec) from /proc every millisecond, and returns the highest
// value read in KiB. The exit's rusage cannot serve: Go starts children
// with CLONE_VM, so their ru_maxrss includes the parent's memory.
func runPeakRSS(tb testing.TB, cmd *exec.Cmd) int64 {
	tb.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				tb.Fatalf("%s: %v\n%s", cmd.Args[1], err, out.Bytes())
			}
			if peak == 0 {
				tb.Fatal("the process ended before its memory could be read")
			}
			return peak
		case <-tick.C:
			b, _ := os.ReadFile(status)
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					if kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
						peak = max(peak, kib)
					}
				}
			}
		}
	}
}

// TestVerifyPackage_MemoryFlat runs the real binary on packages of 4 MB and
// 40 MB of encrypted audio, with the key (so it decrypts it all), and
// compares their peak RSS: memory does not grow with the audio.
// BenchmarkVerifyPackage does the same for 200 MB.
func TestVerifyPackage_MemoryFlat(t *testing.T) {
	clearKeyEnv(t)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sigKey, _ := signing.Generate()
	key := store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(key), 0o600)
	peak := map[int]int64{}
	for _, mb := range []int{4, 40} {
		path := filepath.Join(dir, "pkg.zip")
		writeBigPackage(t, path, mb, sigKey, kr)
		cmd := exec.Command(bin, "verify-package", path, "--fingerprint", sigKey.Fingerprint(), "--key-file", keyFile)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		peak[mb] = runPeakRSS(t, cmd)
		t.Logf("%d MB of audio: peak RSS %d KiB", mb, peak[mb])
	}
	// The resident set holds the binary and the runtime besides the heap;
	// the bound is the upload's target (README), the slack covers the
	// collector's timing on a busy machine.
	if peak[40] > 64<<10 || peak[40] > peak[4]+24<<10 {
		t.Fatalf("peak RSS %d KiB for 4 MB of audio, %d KiB for 40 MB", peak[4], peak[40])
	}
}

// BenchmarkVerifyPackage runs the real binary on a package of 200 MB of
// encrypted audio with the key: MB/s of audio and its peak RSS (target ≤ 64
// MiB, as for uploads).
func BenchmarkVerifyPackage(b *testing.B) {
	bin, err := buildBinary(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	sigKey, _ := signing.Generate()
	key := store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	dir := b.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(key), 0o600)
	path := filepath.Join(dir, "pkg.zip")
	const mb = 200
	writeBigPackage(b, path, mb, sigKey, kr)
	b.SetBytes(mb * 1e6)
	var peak int64
	for b.Loop() {
		cmd := exec.Command(bin, "verify-package", path, "--fingerprint", sigKey.Fingerprint(), "--key-file", keyFile)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		peak = max(peak, runPeakRSS(b, cmd))
	}
	b.ReportMetric(float64(peak)/1024, "peak_rss_MiB")
	if peak > 64<<10 {
		b.Logf("TARGET MISSED: peak RSS %.1f MiB > 64 MiB", float64(peak)/1024)
	}
}

// TestVerifyPackage_Forged is the forgery of the adversarial review: the
// transcript changed, the manifest's hashes put right, the manifest
// re-signed with ssh-keygen by the forger's own key, and that key shipped
// as the package's allowed_signers. Every check against the package itself
// passes, so without a trust anchor verify-package must not say good: it
// exits 3, intact but unchecked. With the newsroom's allowed_signers or
// fingerprint it exits 1.
func TestVerifyPackage_Forged(t *testing.T) {
	clearKeyEnv(t)
	fx := mustPackage(t, "tone.m4a", export.ModeEncrypted)
	es := readEntries(t, fx.zip)
	keyPath := filepath.Join(fx.dir, "forger")
	if out, err := exec.Command(mustLookPath(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", keyPath).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub := strings.Fields(string(mustReadFile(t, keyPath+".pub")))
	data := map[string][]byte{}
	for _, e := range es {
		data[e.name] = e.data
	}
	data[export.NameTranscript] = []byte(`{"title":"FORGED TITLE","segments":[{"text":"words the source never said"}]}`)
	data[export.NameAllowedSigners] = []byte(fmt.Sprintf("tyst namespaces=\"tyst-export-v1,tyst-receipt-v1\" %s %s\n", pub[0], pub[1]))
	m := *fx.manifest
	m.Files = maps.Clone(m.Files)
	for name := range m.Files {
		sum := sha256.Sum256(data[name])
		m.Files[name] = hex.EncodeToString(sum[:])
	}
	m.IntegrityHashes.TranscriptHash = m.Files[export.NameTranscript]
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data[export.NameManifest] = manifest
	manifestPath := fx.write(t, "manifest.json", manifest)
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-f", keyPath, "-n", "tyst-export-v1", manifestPath).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v %s", err, out)
	}
	sig, err := sshsig.Unarmor(mustReadFile(t, manifestPath+".sig"))
	if err != nil {
		t.Fatal(err)
	}
	data[export.NameSignature] = sshsig.Armor(sig) // the form tyst writes
	for i := range es {
		es[i].data = data[es[i].name]
	}
	forged := filepath.Join(fx.dir, "forged.zip")
	writeEntries(t, forged, es)

	// The forgery is good against its own key, as ssh-keygen -Y verify
	// with the allowed_signers inside shows.
	own := fx.write(t, "own_signers", data[export.NameAllowedSigners])
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", own, "-I", "tyst", "-n", "tyst-export-v1", "-s", manifestPath+".sig")
	cmd.Stdin = bytes.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify of the forgery against its own key: %v %s", err, out)
	}

	rep, errOut, code := verifyReport(t, forged, "--key-file", fx.keyFile)
	if code != 3 || rep.OK || !rep.Intact || rep.Trusted || !strings.Contains(errOut, "signer was not checked") {
		t.Fatalf("no anchor: exit %d, %+v, stderr %q", code, rep, errOut)
	}
	for _, anchor := range [][]string{{"--allowed-signers", fx.allowed}, {"--fingerprint", fx.sigKey.Fingerprint()}} {
		rep, errOut, code := verifyReport(t, append([]string{forged, "--key-file", fx.keyFile}, anchor...)...)
		if code != 1 || rep.OK || rep.Trusted || !strings.Contains(errOut, "package does not verify") || !strings.Contains(errOut, "not the newsroom's key") {
			t.Fatalf("%s: exit %d, %+v, stderr %q", anchor[0], code, rep, errOut)
		}
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
