// Package export writes and verifies tyst's export packages (DESIGN §7): a
// ZIP file holding a record's transcript, audit events and audio, with a
// manifest of SHA-256 hashes signed by the newsroom's signing key, so an
// editor or lawyer can check the package offline with ssh-keygen and
// sha256sum, and decrypt its audio with the newsroom key.
//
// Write is a stream: it reads the audio once and writes the ZIP front to back
// into any io.Writer, so memory stays flat in the audio size and the store
// can pipe a package straight into an encrypted file. Verify reads a package
// through an io.ReaderAt without extracting anything and refuses hostile
// ZIPs (unexpected, duplicate or traversing names, sizes beyond bounds,
// truncation, bytes or local headers the central directory does not account
// for) before reading an entry.
//
// The package holds no file name and no path: the record's metadata (title
// and the like) is in transcript.json by design, and nothing else names
// anything. Every entry carries the same fixed modification time, so a
// package shows no timeline; the real time is created_at in the manifest.
//
// This package does not import tyst/store: the store imports it.
package export

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
	"tyst/store/signing"
)

// Audio modes of a package (export_audio_mode of the API).
const (
	// ModeEncrypted puts the audio into audio.bin in tyst's stream format
	// under the newsroom key: only the key's holder can listen.
	ModeEncrypted = "encrypted"
	// ModeDecrypted puts the original audio bytes into audio.<ext>.
	ModeDecrypted = "decrypted"
)

// Format names the package format in the manifest. A later, different
// format gets a new name, and Verify refuses names it does not know.
const Format = "tyst-export-v1"

// Names of the entries of a package. The decrypted audio is "audio." and its
// extension.
const (
	NameTranscript     = "transcript.json"
	NameAudit          = "audit.json"
	NameAudioEncrypted = "audio.bin"
	NameManifest       = "manifest.json"
	NameSignature      = "manifest.json.sig"
	NameAllowedSigners = "allowed_signers"
	NameReadme         = "README.txt"
	NameVerify         = "VERIFY.txt"
)

// modTime is the modification time of every entry: the earliest a ZIP can
// hold (DOS time starts in 1980), the same in every package.
var modTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// ErrAudioMismatch is returned by Write when the audio it read does not have
// the SHA-256 given in Input.AudioSHA256: the stored audio is damaged.
var ErrAudioMismatch = errors.New("export: audio does not match its SHA-256")

// Input is what the store gives Write: documents it built and the audio.
type Input struct {
	PackageID    string    // 1 to 64 of A-Z a-z 0-9 _ -
	CreatedAt    time.Time // written in UTC, to the second
	AudioMode    string    // ModeEncrypted or ModeDecrypted
	TranscriptID uint64    // the record's id, t_id in the manifest; not 0
	Transcript   []byte    // JSON: record metadata, segments, notes
	Audit        []byte    // JSON: the record's audit events
	Counts       map[string]int

	// Audio is the plaintext audio, read once to its end; nil when the
	// record has none, and then the package has no audio entry and empty
	// audio hashes.
	Audio io.Reader
	// AudioSHA256 is the hex SHA-256 of the original audio. Write fails
	// with ErrAudioMismatch when Audio differs; required with Audio.
	AudioSHA256 string
	// AudioExt names the entry in ModeDecrypted: audio.<AudioExt>, 1 to 8
	// of a-z 0-9, not "bin".
	AudioExt string
	// AudioKey is the newsroom key that seals audio.bin in ModeEncrypted.
	AudioKey *fernet.Key
}

// Manifest is manifest.json: what the signature covers.
type Manifest struct {
	Format          string         `json:"format"` // Format
	PackageID       string         `json:"package_id"`
	CreatedAt       time.Time      `json:"created_at"`
	AudioMode       string         `json:"audio_mode"`
	Counts          map[string]int `json:"counts"`
	IntegrityHashes Hashes         `json:"integrity_hashes"`
	// Files holds the hex SHA-256 of every entry but manifest.json and its
	// signature, by name, so a change to any of them (README.txt and
	// allowed_signers included) breaks the signed manifest.
	Files map[string]string `json:"files"`
}

// Hashes are the manifest's integrity_hashes (DESIGN §7). All are hex
// SHA-256; the audio ones are empty when the package has no audio.
type Hashes struct {
	TranscriptID    uint64 `json:"t_id"`
	AudioSHA256     string `json:"audio_sha256"`      // of the original audio
	TranscriptHash  string `json:"t_hash"`            // of transcript.json as in the ZIP
	AuditHash       string `json:"audit_hash"`        // of audit.json as in the ZIP
	AudioFileSHA256 string `json:"audio_file_sha256"` // of the audio entry as in the ZIP
}

// AudioName returns the name of the audio entry for mode and ext.
func AudioName(mode, ext string) string {
	if mode == ModeDecrypted {
		return "audio." + ext
	}
	return NameAudioEncrypted
}

// Write writes the package of in to w, signed with key, and returns its
// manifest. It reads in.Audio once, to its end, holding at most one chunk of
// it in memory. Bad input is an error before anything is written; an error
// later (ErrAudioMismatch, a failing w) leaves w holding no valid package,
// which the caller must discard. Write does not close w.
func Write(w io.Writer, in Input, key *signing.Key) (*Manifest, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("export: no signing key")
	}
	m := &Manifest{
		Format:    Format,
		PackageID: in.PackageID,
		CreatedAt: in.CreatedAt.UTC().Truncate(time.Second),
		AudioMode: in.AudioMode,
		Counts:    map[string]int{},
		Files:     map[string]string{},
	}
	for k, v := range in.Counts {
		m.Counts[k] = v
	}
	m.IntegrityHashes.TranscriptID = in.TranscriptID
	audioName := ""
	if in.Audio != nil {
		audioName = AudioName(in.AudioMode, in.AudioExt)
	}

	zw := zip.NewWriter(w)
	put := func(name string, body []byte) error {
		sum, err := putEntry(zw, name, body)
		m.Files[name] = sum
		return err
	}
	if err := put(NameReadme, readme(in.AudioMode, audioName)); err != nil {
		return nil, err
	}
	if err := put(NameVerify, verifyText(audioName)); err != nil {
		return nil, err
	}
	if err := put(NameAllowedSigners, []byte(key.AllowedSigners()+"\n")); err != nil {
		return nil, err
	}
	if err := put(NameTranscript, in.Transcript); err != nil {
		return nil, err
	}
	if err := put(NameAudit, in.Audit); err != nil {
		return nil, err
	}
	m.IntegrityHashes.TranscriptHash = m.Files[NameTranscript]
	m.IntegrityHashes.AuditHash = m.Files[NameAudit]
	if in.Audio != nil {
		fileSum, err := writeAudio(zw, audioName, in)
		if err != nil {
			return nil, err
		}
		m.Files[audioName] = fileSum
		m.IntegrityHashes.AudioSHA256 = in.AudioSHA256
		m.IntegrityHashes.AudioFileSHA256 = fileSum
	}

	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export: manifest: %w", err)
	}
	mb = append(mb, '\n')
	if _, err := putEntry(zw, NameManifest, mb); err != nil {
		return nil, err
	}
	sig, err := key.Sign(signing.NamespaceExport, bytes.NewReader(mb))
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if _, err := putEntry(zw, NameSignature, sig); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("export: write: %w", err)
	}
	return m, nil
}

// header returns the header of an entry: the fixed time, readable by the
// owner only once unzipped.
func header(name string, method uint16) *zip.FileHeader {
	h := &zip.FileHeader{Name: name, Method: method, Modified: modTime}
	h.SetMode(0o600)
	return h
}

// putEntry writes a small entry, deflated, and returns its hex SHA-256.
func putEntry(zw *zip.Writer, name string, body []byte) (string, error) {
	fw, err := zw.CreateHeader(header(name, zip.Deflate))
	if err != nil {
		return "", fmt.Errorf("export: write: %w", err)
	}
	if _, err := fw.Write(body); err != nil {
		return "", fmt.Errorf("export: write: %w", err)
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

// writeAudio copies in.Audio into the audio entry, stored (audio does not
// compress, and Verify then bounds the entry by the file's size), sealed in
// the stream format in ModeEncrypted. It returns the entry's hex SHA-256 and
// checks the original's against in.AudioSHA256.
func writeAudio(zw *zip.Writer, name string, in Input) (string, error) {
	fw, err := zw.CreateHeader(header(name, zip.Store))
	if err != nil {
		return "", fmt.Errorf("export: write: %w", err)
	}
	fileHash, origHash := sha256.New(), sha256.New()
	entry := newHashWriter(fw, fileHash)
	defer entry.Close()
	var sink io.Writer = entry
	var enc *fstream.Writer
	if in.AudioMode == ModeEncrypted {
		if enc, err = fstream.NewWriter(entry, in.AudioKey); err != nil {
			return "", fmt.Errorf("export: %w", err)
		}
		sink = enc
	}
	src := newHashWriter(sink, origHash)
	defer src.Close()
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(src, onlyReader{in.Audio}, buf); err != nil {
		return "", fmt.Errorf("export: audio: %w", err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return "", fmt.Errorf("export: audio: %w", err)
		}
	}
	src.Close()
	entry.Close()
	if hex.EncodeToString(origHash.Sum(nil)) != in.AudioSHA256 {
		return "", ErrAudioMismatch
	}
	return hex.EncodeToString(fileHash.Sum(nil)), nil
}

// onlyReader hides a WriterTo, so io.CopyBuffer uses the one buffer it is
// given rather than whatever the reader's WriteTo allocates.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// validate checks in; errors name the field, never its value.
func (in *Input) validate() error {
	switch {
	case !validID(in.PackageID):
		return errors.New("export: PackageID must be 1 to 64 of A-Z a-z 0-9 _ -")
	case in.CreatedAt.IsZero():
		return errors.New("export: CreatedAt is not set")
	case in.AudioMode != ModeEncrypted && in.AudioMode != ModeDecrypted:
		return errors.New("export: AudioMode must be encrypted or decrypted")
	case in.TranscriptID == 0:
		return errors.New("export: TranscriptID is not set")
	case !json.Valid(in.Transcript):
		return errors.New("export: Transcript is not a JSON document")
	case !json.Valid(in.Audit):
		return errors.New("export: Audit is not a JSON document")
	}
	if in.Audio == nil {
		if in.AudioSHA256 != "" {
			return errors.New("export: AudioSHA256 given without Audio")
		}
		return nil
	}
	switch {
	case !validHex(in.AudioSHA256):
		return errors.New("export: AudioSHA256 must be 64 lower-case hex digits")
	case in.AudioMode == ModeEncrypted && in.AudioKey == nil:
		return errors.New("export: AudioKey is required in encrypted mode")
	case in.AudioMode == ModeDecrypted && !validExt(in.AudioExt):
		return errors.New("export: AudioExt must be 1 to 8 of a-z 0-9, not bin")
	}
	return nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validExt(s string) bool {
	if len(s) == 0 || len(s) > 8 || s == "bin" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validHex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
