package export_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/export"
	"tyst/store/fstream"
	"tyst/store/signing"
)

func TestWrite_Verify(t *testing.T) {
	for _, c := range []struct {
		name, file, mode, ext, audioEntry string
	}{
		{"Encrypted", "tone.m4a", export.ModeEncrypted, "", "audio.bin"},
		{"Decrypted", "tone.m4a", export.ModeDecrypted, "m4a", "audio.m4a"},
		{"DecryptedWAV", "tone.wav", export.ModeDecrypted, "wav", "audio.wav"},
		{"NoAudio", "", export.ModeEncrypted, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := mustFixture(t, c.file)
			pkg, m := fx.mustWrite(t, fx.input(c.mode, c.ext))

			names, data := entries(t, pkg)
			want := []string{"README.txt", "VERIFY.txt", "allowed_signers", "transcript.json", "audit.json"}
			if c.audioEntry != "" {
				want = append(want, c.audioEntry)
			}
			want = append(want, "manifest.json", "manifest.json.sig")
			if !slices.Equal(names, want) {
				t.Fatalf("entries %q, want %q", names, want)
			}

			// The returned manifest is the one in the package.
			var inZip export.Manifest
			if err := json.Unmarshal(data["manifest.json"], &inZip); err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(t, inZip), mustJSON(t, *m); a != b {
				t.Fatalf("manifest in the ZIP %s\nreturned %s", a, b)
			}
			h := m.IntegrityHashes
			if m.Format != "tyst-export-v1" || m.PackageID != "pkg_0001-test" || m.AudioMode != c.mode || h.TranscriptID != 42 {
				t.Fatalf("manifest %+v", m)
			}
			if got, want := m.CreatedAt, time.Date(2026, 3, 14, 14, 9, 26, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
				t.Fatalf("created_at %v, want %v in UTC, to the second", got, want)
			}
			if m.Counts["segments"] != 1 || m.Counts["audit_events"] != 1 {
				t.Fatalf("counts %v", m.Counts)
			}
			// Every hash is the SHA-256 of the entry as it stands in the ZIP
			// (sha256sum semantics), and the manifest lists every entry but
			// itself and its signature.
			if len(m.Files) != len(names)-2 {
				t.Fatalf("files lists %d entries, the package has %d besides the manifest", len(m.Files), len(names)-2)
			}
			for _, n := range names[:len(names)-2] {
				if got, want := m.Files[n], sha256Hex(data[n]); got != want {
					t.Fatalf("files[%s]=%s, sha256 of the entry is %s", n, got, want)
				}
			}
			if h.TranscriptHash != sha256Hex(data["transcript.json"]) || h.AuditHash != sha256Hex(data["audit.json"]) {
				t.Fatalf("t_hash/audit_hash differ from the entries")
			}
			if c.audioEntry == "" {
				if h.AudioSHA256 != "" || h.AudioFileSHA256 != "" {
					t.Fatalf("no audio, but audio hashes %q %q", h.AudioSHA256, h.AudioFileSHA256)
				}
			} else {
				if h.AudioSHA256 != fx.audioSum || h.AudioFileSHA256 != sha256Hex(data[c.audioEntry]) {
					t.Fatalf("audio hashes %q %q", h.AudioSHA256, h.AudioFileSHA256)
				}
				audio := data[c.audioEntry]
				if c.mode == export.ModeEncrypted {
					if bytes.Contains(audio, fx.audio[:64]) {
						t.Fatal("audio.bin holds plaintext audio")
					}
					audio = decrypt(t, audio, fx.fkey)
				}
				if !bytes.Equal(audio, fx.audio) {
					t.Fatal("the audio entry does not give back the original audio")
				}
			}
			if !bytes.Equal(data["transcript.json"], fx.input(c.mode, c.ext).Transcript) {
				t.Fatal("transcript.json is not the transcript given")
			}

			rep, err := verifyBytes(pkg, fx.trusted())
			if err != nil {
				t.Fatalf("Verify: %v\n%+v", err, rep)
			}
			if !rep.OK || !rep.Signature.OK || !rep.Signature.Trusted || rep.Signature.Fingerprint != fx.key.Fingerprint() ||
				rep.PackageID != m.PackageID || rep.AudioMode != c.mode || rep.CreatedAt != "2026-03-14T14:09:26Z" ||
				len(rep.Problems) != 0 || len(rep.Notes) != 0 || len(rep.Entries) != len(names)-2 {
				t.Fatalf("report %+v", rep)
			}
			if got, want := rep.Audio, (export.AudioReport{Present: c.audioEntry != "", Entry: c.audioEntry, Checked: c.audioEntry != "", OK: c.audioEntry != ""}); got != want {
				t.Fatalf("audio report %+v, want %+v", got, want)
			}
			for _, e := range rep.Entries {
				if !e.OK || e.SHA256 != m.Files[e.Name] {
					t.Fatalf("entry report %+v", e)
				}
			}
		})
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func decrypt(tb testing.TB, enc []byte, key *fernet.Key) []byte {
	tb.Helper()
	plain, err := io.ReadAll(fstream.NewReader(bytes.NewReader(enc), []*fernet.Key{key}))
	if err != nil {
		tb.Fatal(err)
	}
	return plain
}

// TestWrite_NoTimelineNoNames: every entry has the same fixed time whatever
// the export time, audio.bin's tokens carry the epoch, and nothing but
// transcript.json names the record; no entry, header or comment holds a file
// name or a path.
func TestWrite_NoTimelineNoNames(t *testing.T) {
	fx := mustFixture(t, "tone.m4a")
	in := fx.input(export.ModeEncrypted, "")
	a, _ := fx.mustWrite(t, in)
	in = fx.input(export.ModeEncrypted, "")
	in.CreatedAt = in.CreatedAt.Add(400 * 24 * time.Hour)
	b, _ := fx.mustWrite(t, in)

	for _, pkg := range [][]byte{a, b} {
		zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
		if err != nil {
			t.Fatal(err)
		}
		if zr.Comment != "" {
			t.Fatalf("ZIP comment %q", zr.Comment)
		}
		for _, f := range zr.File {
			if !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) || f.ModifiedDate != 0x21 || f.ModifiedTime != 0 {
				t.Fatalf("%s modified %v (%x %x)", f.Name, f.Modified, f.ModifiedDate, f.ModifiedTime)
			}
			if f.Comment != "" {
				t.Fatalf("%s has a comment", f.Name)
			}
			if f.Mode().Perm() != 0o600 {
				t.Fatalf("%s mode %v, want 0600", f.Name, f.Mode())
			}
		}
	}

	_, data := entries(t, a)
	// Every Fernet token of audio.bin carries the Unix epoch.
	var tokens []byte
	sc := bufio.NewScanner(bytes.NewReader(data["audio.bin"]))
	sc.Buffer(nil, 2<<20)
	for sc.Scan() {
		raw, err := base64.URLEncoding.DecodeString(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		if ts := binary.BigEndian.Uint64(raw[1:9]); ts != 0 {
			t.Fatalf("a token of audio.bin carries time %d", ts)
		}
		tokens = append(tokens, raw...)
	}
	// audio.bin is stored, so its base64 text stands in the package as it
	// is: a megabyte of it holds a given 4-letter word about once in 12
	// packages. The search below looks at its tokens' bytes instead.
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != "audio.bin" {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		a = append(append(append([]byte(nil), a[:off]...), tokens...), a[off+int64(f.CompressedSize64):]...)
	}
	data["audio.bin"] = tokens

	wd, _ := os.Getwd()
	abs, _ := filepath.Abs(audioDir)
	for _, forbidden := range []string{"tone", ".m4a", "testdata", wd, abs, os.TempDir() + "/", t.TempDir()} {
		if bytes.Contains(a, []byte(forbidden)) {
			t.Fatalf("the package holds %q", forbidden)
		}
		for name, d := range data {
			if bytes.Contains(d, []byte(forbidden)) {
				t.Fatalf("%s holds %q", name, forbidden)
			}
		}
	}
	for name, d := range data {
		if has := bytes.Contains(d, []byte("CANARY-TITLE")); has != (name == "transcript.json") {
			t.Fatalf("%s holds the title: %v", name, has)
		}
	}
}

// TestWrite_Texts: README.txt and VERIFY.txt say what the package holds and
// how to check it, for the mode at hand.
func TestWrite_Texts(t *testing.T) {
	for _, c := range []struct {
		name, file, mode, ext string
		readmeHas, readmeNot  []string
	}{
		{"Encrypted", "tone.m4a", export.ModeEncrypted, "", []string{"audio.bin", "tyst decrypt --key-file", "26 bytes", "bit 1 (value 2) marks a padding chunk", "1048576"}, []string{"NOT encrypted"}},
		{"Decrypted", "tone.m4a", export.ModeDecrypted, "m4a", []string{"audio.m4a", "NOT encrypted"}, []string{"audio.bin", "tyst decrypt"}},
		{"NoAudio", "", export.ModeEncrypted, "", []string{"(no audio)"}, []string{"audio.bin"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := mustFixture(t, c.file)
			pkg, _ := fx.mustWrite(t, fx.input(c.mode, c.ext))
			_, data := entries(t, pkg)
			readme, verify := string(data["README.txt"]), string(data["VERIFY.txt"])
			for _, s := range append(c.readmeHas, "transcript.json", "audit.json", "manifest.json.sig", "allowed_signers", "VERIFY.txt") {
				if !strings.Contains(readme, s) {
					t.Fatalf("README.txt lacks %q:\n%s", s, readme)
				}
			}
			for _, s := range c.readmeNot {
				if strings.Contains(readme, s) {
					t.Fatalf("README.txt has %q:\n%s", s, readme)
				}
			}
			for _, s := range []string{
				"ssh-keygen -Y verify -f allowed_signers -I tyst -n tyst-export-v1 -s manifest.json.sig < manifest.json",
				"OpenSSH 8.1", "cmd.exe", "not in PowerShell", "sha256sum *", "certutil -hashfile", "shasum -a 256",
				"Compare the fingerprint printed in", "the newsroom publishes", "tyst verify-package",
				"tyst verify-package package.zip --fingerprint SHA256:", "3  intact, but the signer was NOT checked",
			} {
				if !strings.Contains(verify, s) {
					t.Fatalf("VERIFY.txt lacks %q:\n%s", s, verify)
				}
			}
			for _, txt := range []string{readme, verify} {
				for i, line := range strings.Split(txt, "\n") {
					// Prose fits a terminal; commands stay on one line to be copied.
					if len([]rune(line)) > 78 && !strings.HasPrefix(line, "    ") {
						t.Fatalf("line %d is %d characters long: %q", i+1, len(line), line)
					}
				}
			}
		})
	}
}

func TestWrite_ErrAudioMismatch(t *testing.T) {
	for _, mode := range []string{export.ModeEncrypted, export.ModeDecrypted} {
		t.Run(mode, func(t *testing.T) {
			fx := mustFixture(t, "tone.wav")
			in := fx.input(mode, "wav")
			changed := bytes.Clone(fx.audio)
			changed[len(changed)/2] ^= 1
			in.Audio = bytes.NewReader(changed)
			var buf bytes.Buffer
			if _, err := export.Write(&buf, in, fx.key); !errors.Is(err, export.ErrAudioMismatch) {
				t.Fatalf("Write of changed audio: %v, want ErrAudioMismatch", err)
			}
			// What was written is no package.
			if _, err := verifyBytes(buf.Bytes(), fx.trusted()); !errors.Is(err, export.ErrInvalid) {
				t.Fatalf("the partial output verifies: %v", err)
			}
		})
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk failed")
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("no space left on device")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWrite_Err(t *testing.T) {
	fx := mustFixture(t, "tone.wav")
	t.Run("AudioReadFails", func(t *testing.T) {
		in := fx.input(export.ModeEncrypted, "")
		in.Audio = &failingReader{n: 3 << 20}
		if _, err := export.Write(io.Discard, in, fx.key); err == nil || !strings.Contains(err.Error(), "disk failed") {
			t.Fatalf("Write=%v", err)
		}
	})
	t.Run("WriterFails", func(t *testing.T) {
		for _, n := range []int{0, 100, 5000, 20000} {
			if _, err := export.Write(&failingWriter{n: n}, fx.input(export.ModeEncrypted, ""), fx.key); err == nil || !strings.Contains(err.Error(), "no space") {
				t.Fatalf("Write after %d bytes=%v", n, err)
			}
		}
	})
	secret := "SECRET-VALUE"
	for name, mutate := range map[string]func(*export.Input){
		"PackageIDEmpty":    func(in *export.Input) { in.PackageID = "" },
		"PackageIDSlash":    func(in *export.Input) { in.PackageID = "../" + secret },
		"PackageIDLong":     func(in *export.Input) { in.PackageID = strings.Repeat("a", 65) },
		"NoCreatedAt":       func(in *export.Input) { in.CreatedAt = time.Time{} },
		"BadMode":           func(in *export.Input) { in.AudioMode = secret },
		"NoTranscriptID":    func(in *export.Input) { in.TranscriptID = 0 },
		"TranscriptNotJSON": func(in *export.Input) { in.Transcript = []byte(`{"title":"` + secret) },
		"AuditNotJSON":      func(in *export.Input) { in.Audit = nil },
		"HashNotHex":        func(in *export.Input) { in.AudioSHA256 = strings.ToUpper(in.AudioSHA256) },
		"HashWithoutAudio":  func(in *export.Input) { in.Audio = nil },
		"NoAudioKey":        func(in *export.Input) { in.AudioKey = nil },
		"ExtBin":            func(in *export.Input) { in.AudioMode, in.AudioExt = export.ModeDecrypted, "bin" },
		"ExtPath":           func(in *export.Input) { in.AudioMode, in.AudioExt = export.ModeDecrypted, "/"+secret },
		"ExtEmpty":          func(in *export.Input) { in.AudioMode, in.AudioExt = export.ModeDecrypted, "" },
	} {
		t.Run("Err"+name, func(t *testing.T) {
			in := fx.input(export.ModeEncrypted, "")
			mutate(&in)
			var buf bytes.Buffer
			m, err := export.Write(&buf, in, fx.key)
			if err == nil || m != nil {
				t.Fatal("Write accepted bad input")
			}
			if buf.Len() != 0 {
				t.Fatalf("Write wrote %d bytes before refusing", buf.Len())
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error repeats the value: %v", err)
			}
		})
	}
	t.Run("ErrNoKey", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := export.Write(&buf, fx.input(export.ModeEncrypted, ""), nil); err == nil || buf.Len() != 0 {
			t.Fatalf("Write without signing key: %v, %d bytes", err, buf.Len())
		}
	})
}

// TestVerify_Trust: a package is good only against a trust anchor the
// receiver got from the newsroom (its allowed_signers, its key's
// fingerprint, or both). Without one, even an intact package is only
// "intact, signer unchecked" (ErrUnchecked): a forger who rebuilds a
// changed package with a key of his own, and puts that key inside, passes
// every other check, and only an anchor tells the two apart.
func TestVerify_Trust(t *testing.T) {
	fx := mustFixture(t, "tone.m4a")
	pkg, _ := fx.mustWrite(t, fx.input(export.ModeEncrypted, ""))
	forger := mustFixture(t, "tone.m4a")
	forger.fkey = fx.fkey
	forged, _ := forger.mustWrite(t, forger.input(export.ModeEncrypted, ""))
	anyFP := "SHA256:" + strings.Repeat("A", 43)

	allowed := func(f *fixture) []byte { return []byte(f.key.AllowedSigners() + "\n") }
	for _, c := range []struct {
		name             string
		pkg              []byte
		opts             export.VerifyOptions
		wantErr          error // nil, ErrUnchecked or ErrInvalid
		intact, trusted  bool
		fingerprint      string
		problem, noteHas string
	}{
		{name: "NoAnchor", pkg: pkg, wantErr: export.ErrUnchecked, intact: true,
			fingerprint: fx.key.Fingerprint(), noteHas: "proves nothing alone"},
		{name: "AllowedSigners", pkg: pkg, opts: export.VerifyOptions{AllowedSigners: allowed(fx)}, intact: true, trusted: true,
			fingerprint: fx.key.Fingerprint()},
		{name: "Fingerprint", pkg: pkg, opts: export.VerifyOptions{Fingerprint: fx.key.Fingerprint()}, intact: true, trusted: true,
			fingerprint: fx.key.Fingerprint()},
		{name: "Both", pkg: pkg, opts: export.VerifyOptions{AllowedSigners: allowed(fx), Fingerprint: fx.key.Fingerprint()}, intact: true, trusted: true,
			fingerprint: fx.key.Fingerprint()},
		{name: "ForgedNoAnchor", pkg: forged, wantErr: export.ErrUnchecked, intact: true,
			fingerprint: forger.key.Fingerprint(), noteHas: "proves nothing alone"},
		{name: "ErrForgedAllowedSigners", pkg: forged, opts: export.VerifyOptions{AllowedSigners: allowed(fx)}, wantErr: export.ErrInvalid, intact: true,
			fingerprint: forger.key.Fingerprint(), problem: "manifest.json.sig: signed by a key that is not in the allowed_signers given (not the newsroom's key)"},
		{name: "ErrForgedFingerprint", pkg: forged, opts: export.VerifyOptions{Fingerprint: fx.key.Fingerprint()}, wantErr: export.ErrInvalid, intact: true,
			fingerprint: forger.key.Fingerprint(), problem: "manifest.json.sig: signed by a key whose fingerprint is not the one given (not the newsroom's key)"},
		{name: "ErrAnchorsDisagree", pkg: pkg, opts: export.VerifyOptions{AllowedSigners: allowed(fx), Fingerprint: anyFP}, wantErr: export.ErrInvalid, intact: true,
			fingerprint: fx.key.Fingerprint(), problem: "manifest.json.sig: signed by a key whose fingerprint is not the one given (not the newsroom's key)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Keys = []*fernet.Key{fx.fkey}
			rep, err := verifyBytes(c.pkg, c.opts)
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("err=%v, want %v", err, c.wantErr)
			}
			if rep.OK != (c.wantErr == nil) || rep.Intact != c.intact || rep.Trusted != c.trusted || rep.Signature.Trusted != c.trusted ||
				!rep.Signature.OK || rep.Signature.Fingerprint != c.fingerprint || !rep.Audio.OK {
				t.Fatalf("report %+v", rep)
			}
			if want := []string{}; c.problem != "" && !slices.Equal(rep.Problems, []string{c.problem}) || c.problem == "" && !slices.Equal(rep.Problems, want) {
				t.Fatalf("problems %q, want %q", rep.Problems, c.problem)
			}
			if c.noteHas != "" && (len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], c.noteHas)) || c.noteHas == "" && len(rep.Notes) != 0 {
				t.Fatalf("notes %q", rep.Notes)
			}
		})
	}

	// A changed package is bad with or without an anchor: never merely
	// unchecked.
	names, data := entries(t, pkg)
	es := make([]entry, len(names))
	for i, n := range names {
		es[i] = entry{name: n, data: data[n], method: zip.Deflate}
		if n == export.NameAudioEncrypted {
			es[i].method = zip.Store
		}
		if n == export.NameTranscript {
			es[i].data = bytes.Replace(data[n], []byte("hej"), []byte("nej"), 1)
		}
	}
	for _, opts := range []export.VerifyOptions{{}, {Fingerprint: fx.key.Fingerprint()}} {
		rep, err := verifyBytes(rebuild(t, es), opts)
		if !errors.Is(err, export.ErrInvalid) || rep.OK || rep.Intact ||
			!slices.Equal(rep.Problems, []string{"transcript.json does not match its hash in manifest.json (changed)"}) {
			t.Fatalf("changed transcript, fingerprint %q: %v %+v", opts.Fingerprint, err, rep)
		}
	}
}

func TestVerify_Keys(t *testing.T) {
	fx := mustFixture(t, "tone.ogg")
	pkg, _ := fx.mustWrite(t, fx.input(export.ModeEncrypted, ""))
	var other fernet.Key
	other.Generate()

	t.Run("NoKey", func(t *testing.T) {
		opts := fx.trusted()
		opts.Keys = nil
		rep, err := verifyBytes(pkg, opts)
		if err != nil || !rep.OK || rep.Audio.Checked || !rep.Audio.Present {
			t.Fatalf("%v %+v", err, rep)
		}
		if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "audio_sha256 was not checked") {
			t.Fatalf("notes %q", rep.Notes)
		}
	})
	t.Run("OldKeyAmongOthers", func(t *testing.T) {
		opts := fx.trusted()
		opts.Keys = []*fernet.Key{&other, fx.fkey}
		if rep, err := verifyBytes(pkg, opts); err != nil || !rep.Audio.Checked || !rep.Audio.OK {
			t.Fatalf("%v %+v", err, rep)
		}
	})
	t.Run("ErrWrongKey", func(t *testing.T) {
		opts := fx.trusted()
		opts.Keys = []*fernet.Key{&other}
		rep, err := verifyBytes(pkg, opts)
		if !errors.Is(err, export.ErrInvalid) || rep.Audio.Checked || rep.Audio.OK {
			t.Fatalf("%v %+v", err, rep)
		}
		if !slices.Equal(rep.Problems, []string{"audio.bin does not decrypt under the given keys (another key, or changed)"}) {
			t.Fatalf("problems %q", rep.Problems)
		}
		for _, e := range rep.Entries { // the file itself is intact
			if !e.OK {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}

// TestVerify_OneByteChange: a one-byte change of any entry, made with the
// ZIP's own checksums put right, fails the verification and names the entry;
// so does a flipped byte in the ZIP file itself.
func TestVerify_OneByteChange(t *testing.T) {
	for _, c := range []struct{ mode, ext string }{{export.ModeEncrypted, ""}, {export.ModeDecrypted, "mp3"}} {
		fx := mustFixture(t, "tone.mp3")
		pkg, _ := fx.mustWrite(t, fx.input(c.mode, c.ext))
		es := asEntries(t, pkg)
		for i, e := range es {
			for _, at := range []int{0, len(e.data) / 2, len(e.data) - 1} {
				t.Run(c.mode+"/"+e.name, func(t *testing.T) {
					changed := slices.Clone(es)
					changed[i].data = bytes.Clone(e.data)
					changed[i].data[at] ^= 0x01
					rep, err := verifyBytes(rebuild(t, changed), fx.trusted())
					if !errors.Is(err, export.ErrInvalid) || rep.OK {
						t.Fatalf("byte %d of %s changed: %v", at, e.name, err)
					}
					named := e.name
					if e.name == "manifest.json" {
						named = "manifest" // a broken signature, or an unreadable manifest
					}
					if !strings.Contains(strings.Join(rep.Problems, "\n"), named) {
						t.Fatalf("problems do not name %s: %q", e.name, rep.Problems)
					}
				})
			}
		}
		t.Run(c.mode+"/Unchanged", func(t *testing.T) {
			if _, err := verifyBytes(rebuild(t, es), fx.trusted()); err != nil {
				t.Fatalf("the rebuilt, unchanged package fails: %v", err)
			}
		})
		t.Run(c.mode+"/RawFlip", func(t *testing.T) {
			zr, _ := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
			for _, f := range zr.File {
				off, err := f.DataOffset()
				if err != nil {
					t.Fatal(err)
				}
				raw := bytes.Clone(pkg)
				raw[off+int64(f.CompressedSize64)/2] ^= 0x20
				if rep, err := verifyBytes(raw, fx.trusted()); !errors.Is(err, export.ErrInvalid) {
					t.Fatalf("flipped byte in %s: %v %+v", f.Name, err, rep)
				}
			}
		})
	}
}

// TestVerify_ChangedManifestResigned: someone who changes a hash in the
// manifest cannot sign it again with the newsroom's key, and a manifest
// that is consistent but lies about the audio fails the audio check.
func TestVerify_ManifestConsistency(t *testing.T) {
	fx := mustFixture(t, "tone.m4a")
	pkg, m := fx.mustWrite(t, fx.input(export.ModeEncrypted, ""))
	es := asEntries(t, pkg)
	resign := func(t *testing.T, mutate func(*export.Manifest)) []byte {
		mm := *m
		mm.Files = map[string]string{}
		for k, v := range m.Files {
			mm.Files[k] = v
		}
		mutate(&mm)
		mb, _ := json.MarshalIndent(mm, "", "  ")
		sig, err := fx.key.Sign(signing.NamespaceExport, bytes.NewReader(mb))
		if err != nil {
			t.Fatal(err)
		}
		out := slices.Clone(es)
		out[len(out)-2].data, out[len(out)-1].data = mb, sig
		return rebuild(t, out)
	}
	for name, c := range map[string]struct {
		mutate  func(*export.Manifest)
		problem string
	}{
		"AudioSHA": {func(m *export.Manifest) {
			m.IntegrityHashes.AudioSHA256 = strings.Repeat("0", 64)
		}, "the decrypted audio does not match audio_sha256"},
		"THashDisagrees": {func(m *export.Manifest) {
			m.IntegrityHashes.TranscriptHash = strings.Repeat("1", 64)
		}, "manifest.json: integrity_hashes disagree with files"},
		"FileUnlisted": {func(m *export.Manifest) { delete(m.Files, "README.txt") }, "README.txt is not listed in manifest.json (added)"},
		"FileMissing":  {func(m *export.Manifest) { m.Files["audio.wav"] = strings.Repeat("2", 64) }, "audio.wav is listed in manifest.json but missing"},
		"ForeignFile":  {func(m *export.Manifest) { m.Files["secret.doc"] = strings.Repeat("2", 64) }, "manifest.json lists a file that is not part of a tyst package"},
		"ModeLies":     {func(m *export.Manifest) { m.AudioMode = export.ModeDecrypted }, "the audio entry does not match audio_mode"},
		"Format":       {func(m *export.Manifest) { m.Format = "tyst-export-v2" }, "manifest.json is of an unknown format"},
		"BadID":        {func(m *export.Manifest) { m.PackageID = "a/b" }, "manifest.json: bad package_id"},
	} {
		t.Run(name, func(t *testing.T) {
			rep, err := verifyBytes(resign(t, c.mutate), fx.trusted())
			if !errors.Is(err, export.ErrInvalid) || !slices.Contains(rep.Problems, c.problem) {
				t.Fatalf("%v, problems %q, want %q", err, rep.Problems, c.problem)
			}
		})
	}
	t.Run("Resigned", func(t *testing.T) { // the test's own re-signing is sound
		if _, err := verifyBytes(resign(t, func(*export.Manifest) {}), fx.trusted()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrUnknownField", func(t *testing.T) {
		out := slices.Clone(es)
		mb := bytes.Replace(out[len(out)-2].data, []byte(`"format"`), []byte(`"extra": 1, "format"`), 1)
		sig, _ := fx.key.Sign(signing.NamespaceExport, bytes.NewReader(mb))
		out[len(out)-2].data, out[len(out)-1].data = mb, sig
		if rep, err := verifyBytes(rebuild(t, out), fx.trusted()); !errors.Is(err, export.ErrInvalid) || rep.Problems[0] != "manifest.json is not a tyst manifest" {
			t.Fatalf("%v %q", err, rep.Problems)
		}
	})
}

// TestPackage_Tools: the package as an editor handles it, with the real
// unzip, sha256sum and ssh-keygen, following VERIFY.txt's own commands.
func TestPackage_Tools(t *testing.T) {
	unzip, sha256sum, sshKeygen := mustTool(t, "unzip"), mustTool(t, "sha256sum"), mustTool(t, "ssh-keygen")
	fx := mustFixture(t, "tone.webm")
	pkg, m := fx.mustWrite(t, fx.input(export.ModeEncrypted, ""))
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "export.zip")
	if err := os.WriteFile(zipPath, pkg, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if b, err := exec.Command(unzip, "-q", zipPath, "-d", out).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v: %s", err, b)
	}
	if b, err := exec.Command(unzip, "-tq", zipPath).CombinedOutput(); err != nil || !strings.Contains(string(b), "No errors") {
		t.Fatalf("unzip -t: %v: %s", err, b)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 8 {
		t.Fatalf("unzip made %d files", len(ents))
	}
	for _, e := range ents {
		info, _ := e.Info()
		if !info.ModTime().Equal(time.Unix(315532800, 0)) || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s unzipped with time %v, mode %v", e.Name(), info.ModTime(), info.Mode())
		}
	}

	// sha256sum * (VERIFY.txt step 3) gives the manifest's values.
	cmd := exec.Command(sha256sum, "--", "README.txt", "VERIFY.txt", "allowed_signers", "audio.bin", "audit.json", "transcript.json")
	cmd.Dir = out
	b, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		if m.Files[name] != sum {
			t.Fatalf("sha256sum %s = %s, manifest says %s", name, sum, m.Files[name])
		}
	}
	h := m.IntegrityHashes
	if h.TranscriptHash != m.Files["transcript.json"] || h.AuditHash != m.Files["audit.json"] || h.AudioFileSHA256 != m.Files["audio.bin"] {
		t.Fatalf("integrity_hashes %+v disagree with sha256sum", h)
	}

	// VERIFY.txt's commands, run as written, in the unzipped folder.
	verifyTxt, _ := os.ReadFile(filepath.Join(out, "VERIFY.txt"))
	verifyCmd := commandLine(t, string(verifyTxt), "ssh-keygen -Y verify -f allowed_signers")
	fpCmd := commandLine(t, string(verifyTxt), "cut -d' ' -f3- allowed_signers")
	run := func(line string) (string, error) {
		c := exec.Command("sh", "-c", line)
		c.Dir = out
		c.Env = append(os.Environ(), "PATH="+filepath.Dir(sshKeygen)+":"+os.Getenv("PATH"))
		b, err := c.CombinedOutput()
		return string(b), err
	}
	if got, err := run(verifyCmd); err != nil || !strings.Contains(got, `Good "tyst-export-v1" signature for tyst with ED25519 key `+fx.key.Fingerprint()) {
		t.Fatalf("%s: %v: %s", verifyCmd, err, got)
	}
	if got, err := run(fpCmd); err != nil || !strings.Contains(got, fx.key.Fingerprint()) {
		t.Fatalf("%s: %v: %s", fpCmd, err, got)
	}

	// One changed byte of manifest.json, or of the signature, and
	// ssh-keygen refuses.
	manifest, _ := os.ReadFile(filepath.Join(out, "manifest.json"))
	sig, _ := os.ReadFile(filepath.Join(out, "manifest.json.sig"))
	for name, c := range map[string]struct {
		file string
		orig []byte
		at   int
	}{
		"ManifestFirst":  {"manifest.json", manifest, 0},
		"ManifestMiddle": {"manifest.json", manifest, len(manifest) / 2},
		"ManifestLast":   {"manifest.json", manifest, len(manifest) - 1},
		"SignatureBody":  {"manifest.json.sig", sig, len(sig) / 2},
		"SignatureKey":   {"manifest.json.sig", sig, 80},
	} {
		t.Run(name, func(t *testing.T) {
			changed := bytes.Clone(c.orig)
			changed[c.at] ^= 0x01
			p := filepath.Join(out, c.file)
			os.WriteFile(p, changed, 0o600)
			defer os.WriteFile(p, c.orig, 0o600)
			if got, err := run(verifyCmd); err == nil || strings.Contains(got, "Good") {
				t.Fatalf("ssh-keygen accepted a changed %s: %s", c.file, got)
			}
		})
	}
	if _, err := run(verifyCmd); err != nil {
		t.Fatal("the restored files no longer verify")
	}
}

// commandLine returns the indented line of text that starts with prefix.
func commandLine(tb testing.TB, text, prefix string) string {
	tb.Helper()
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	tb.Fatalf("no line starting with %q", prefix)
	return ""
}
