package export_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/export"
	"tyst/store/signing"
)

const audioDir = "../../testdata/audio"

// canaryTitle stands in the transcript only; no other entry may hold it.
const canaryTitle = "CANARY-TITLE-Intervju med kallan"

// fixture is what a test package is made of.
type fixture struct {
	key      *signing.Key
	fkey     *fernet.Key
	audio    []byte
	audioSum string
}

func mustFixture(tb testing.TB, audioFile string) *fixture {
	tb.Helper()
	key, err := signing.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	var fk fernet.Key
	if err := fk.Generate(); err != nil {
		tb.Fatal(err)
	}
	fx := &fixture{key: key, fkey: &fk}
	if audioFile != "" {
		b, err := os.ReadFile(filepath.Join(audioDir, audioFile))
		if err != nil {
			tb.Fatal(err)
		}
		fx.audio, fx.audioSum = b, sha256Hex(b)
	}
	return fx
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// input returns the Input of a record with the fixture's audio (none when
// the fixture has none) in mode.
func (fx *fixture) input(mode, ext string) export.Input {
	in := export.Input{
		PackageID:    "pkg_0001-test",
		CreatedAt:    time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.FixedZone("CET", 3600)),
		AudioMode:    mode,
		TranscriptID: 42,
		Transcript:   []byte(`{"transcript_id":42,"title":"` + canaryTitle + `","segments":[{"start_ms":0,"end_ms":900,"speaker":"A","text":"hej"}],"notes":[]}`),
		Audit:        []byte(`{"events":[{"event":"transcript_created","at":"2026-03-14T14:00:00Z"}]}`),
		Counts:       map[string]int{"segments": 1, "notes": 0, "audit_events": 1},
		AudioKey:     fx.fkey,
		AudioExt:     ext,
	}
	if fx.audio != nil {
		in.Audio, in.AudioSHA256 = bytes.NewReader(fx.audio), fx.audioSum
	}
	return in
}

// mustWrite writes the package of in and returns its bytes and manifest.
func (fx *fixture) mustWrite(tb testing.TB, in export.Input) ([]byte, *export.Manifest) {
	tb.Helper()
	var buf bytes.Buffer
	m, err := export.Write(&buf, in, fx.key)
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), m
}

// trusted returns options that trust the fixture's key and hold its
// newsroom key.
func (fx *fixture) trusted() export.VerifyOptions {
	return export.VerifyOptions{AllowedSigners: []byte(fx.key.AllowedSigners() + "\n"), Keys: []*fernet.Key{fx.fkey}}
}

func verifyBytes(b []byte, opts export.VerifyOptions) (*export.Report, error) {
	return export.Verify(bytes.NewReader(b), int64(len(b)), opts)
}

// entries reads every entry of a ZIP into memory, in order.
func entries(tb testing.TB, b []byte) ([]string, map[string][]byte) {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	data := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			tb.Fatal(err)
		}
		d, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, f.Name)
		data[f.Name] = d
	}
	return names, data
}

// entry is one entry of a rebuilt ZIP.
type entry struct {
	name   string
	data   []byte
	method uint16
}

// rebuild writes entries into a new ZIP as Write does (fixed time, right
// CRC), so a change shows in the hashes and not in the ZIP checksums.
func rebuild(tb testing.TB, es []entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range es {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// asEntries returns a package's entries for rebuild, in order.
func asEntries(tb testing.TB, b []byte) []entry {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	names, data := entries(tb, b)
	es := make([]entry, len(names))
	for i, n := range names {
		es[i] = entry{n, data[n], zr.File[i].Method}
	}
	return es
}

func mustManifest(tb testing.TB, b []byte) export.Manifest {
	tb.Helper()
	_, data := entries(tb, b)
	var m export.Manifest
	if err := json.Unmarshal(data[export.NameManifest], &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s not found: install it (apt-get install -y openssh-client unzip coreutils)", name)
	}
	return p
}
