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
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/hiddeco/sshsig"

	"tyst/store/fstream"
	"tyst/store/signing"
)

// ErrInvalid is returned (wrapped, with the first problem) by Verify for a
// package that is not a whole, unchanged tyst package: a hostile or damaged
// ZIP, a missing or extra entry, a bad signature or a hash that differs.
var ErrInvalid = errors.New("export: package does not verify")

// ErrUnchecked is returned (wrapped) by Verify for a package that is intact
// but whose signer was not checked: its signature matches the key inside it
// and every hash matches its manifest, and VerifyOptions named no trust
// anchor (AllowedSigners or Fingerprint). Whoever made the package held that
// key; nothing says it is the newsroom's, and a forger can re-sign a changed
// package with a key of his own and ship that key inside.
var ErrUnchecked = errors.New("export: package intact, but its signer was not checked")

// Size bounds of the entries Verify reads. Entries it holds in memory are
// small; the others are hashed as a stream, and their bound caps the work a
// deflate bomb can cause. The audio entry is stored, so the file's own size
// bounds it.
const (
	maxManifestBytes       = 1 << 20
	maxSignatureBytes      = 16 << 10
	maxAllowedSignersBytes = 16 << 10
	maxTextBytes           = 1 << 20   // README.txt, VERIFY.txt
	maxDocumentBytes       = 256 << 20 // transcript.json, audit.json
)

// VerifyOptions are what the checker trusts. A package is trusted when its
// signing key is the newsroom's by a trust anchor the receiver got out of
// band: AllowedSigners, Fingerprint, or both (then both must hold). With
// neither, Verify checks the signature against the key inside the package,
// which proves only that nothing changed since whoever holds that key
// signed it, and returns ErrUnchecked for an intact package.
type VerifyOptions struct {
	// AllowedSigners is the newsroom's published allowed_signers file: a
	// line of it must admit the signing key.
	AllowedSigners []byte
	// Fingerprint is the newsroom signing key's published fingerprint,
	// "SHA256:" and 43 base64 characters, as ssh-keygen and `tyst
	// signing-key` print it: the signing key must have it.
	Fingerprint string
	// Keys are newsroom keys for decrypting audio.bin and checking it
	// against audio_sha256; without them that one check is left out and the
	// report says so.
	Keys []*fernet.Key
}

// Report is what Verify found, for people and scripts (encoding/json). It
// names only the fixed entry names of the format, never anything a hostile
// package chose.
type Report struct {
	// OK is true when the package is intact and trusted: every check made
	// passed, against a trust anchor the caller gave.
	OK bool `json:"ok"`
	// Intact is true when the signature matches the key inside the package
	// and every entry its hash in the manifest: nothing was changed, added
	// or removed since whoever holds that key signed it.
	Intact bool `json:"intact"`
	// Trusted is true when the signing key is the one the trust anchor
	// names (as Signature.Trusted).
	Trusted   bool            `json:"trusted"`
	PackageID string          `json:"package_id,omitempty"`
	CreatedAt string          `json:"created_at,omitempty"`
	AudioMode string          `json:"audio_mode,omitempty"`
	Signature SignatureReport `json:"signature"`
	Entries   []EntryReport   `json:"entries"`
	Audio     AudioReport     `json:"audio"`
	Problems  []string        `json:"problems"` // empty when OK
	Notes     []string        `json:"notes"`    // what was not or could not be checked
}

// SignatureReport is the check of manifest.json.sig.
type SignatureReport struct {
	OK bool `json:"ok"`
	// OK is true when the signature matches manifest.json and the key
	// inside the package (allowed_signers). Trusted is true when that key
	// is the one the trust anchor of VerifyOptions names: without one, or
	// for another key, it is false.
	Trusted     bool   `json:"trusted"`
	Fingerprint string `json:"fingerprint,omitempty"` // of the signing key
}

// EntryReport is the check of one entry against manifest.json.
type EntryReport struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"` // as computed; empty when unreadable
	OK     bool   `json:"ok"`
}

// AudioReport is the check of the audio against audio_sha256.
type AudioReport struct {
	Present bool   `json:"present"`
	Entry   string `json:"entry,omitempty"`
	// Checked is true when the original audio's SHA-256 was computed (from
	// audio.bin decrypted in memory, or from audio.<ext>) and compared with
	// audio_sha256; OK says whether it matched.
	Checked bool `json:"checked"`
	OK      bool `json:"ok"`
}

// Verify checks the package of size bytes in r: its ZIP structure, the
// signature of manifest.json, every entry's SHA-256 against the manifest,
// and, with keys, the decrypted audio against audio_sha256. It extracts
// nothing and holds at most a small entry or one audio chunk in memory.
//
// The report is never nil. The error is nil only when every check made
// passed against a trust anchor; it wraps ErrInvalid for a package that
// fails one (a signing key other than the anchor's included), wraps
// ErrUnchecked for an intact package when opts holds no trust anchor, or
// is the reader's error.
func Verify(r io.ReaderAt, size int64, opts VerifyOptions) (*Report, error) {
	rep := &Report{Entries: []EntryReport{}, Problems: []string{}, Notes: []string{}}
	v := &verifier{rep: rep, opts: opts, buf: make([]byte, 256<<10)}
	err := v.run(r, size)
	stopped := err != nil // by a finding that leaves the rest unchecked, or by the reader
	var pe *problemError
	switch {
	case errors.As(err, &pe):
		rep.Problems = append(rep.Problems, pe.msg)
		err = fmt.Errorf("%w: %s", ErrInvalid, pe.msg)
	case err != nil: // the reader's, not the package's
		rep.Problems = append(rep.Problems, "the package cannot be read")
		if pathErr := (*fs.PathError)(nil); errors.As(err, &pathErr) {
			err = pathErr.Err // no path in the error
		}
		err = fmt.Errorf("export: read package: %w", err)
	case len(rep.Problems) > 0:
		err = fmt.Errorf("%w: %s", ErrInvalid, rep.Problems[0])
	}
	others := len(rep.Problems) // problems that say the package was changed or is damaged
	if v.distrusted {
		others--
	}
	rep.Intact = !stopped && rep.Signature.OK && others == 0
	rep.Trusted = rep.Signature.Trusted
	if err == nil && !rep.Trusted {
		err = ErrUnchecked
	}
	rep.OK = err == nil
	return rep, err
}

// problemError is a finding that stops Verify: the rest cannot be checked.
type problemError struct{ msg string }

func (e *problemError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &problemError{fmt.Sprintf(format, args...)}
}

type verifier struct {
	rep        *Report
	opts       VerifyOptions
	distrusted bool // the one problem that leaves the package intact: a signer not the anchor's
	buf        []byte
	size       int64
	files      map[string]*zip.File
	audio      string // name of the audio entry, "" for none
}

func (v *verifier) problem(format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, fmt.Sprintf(format, args...))
}

func (v *verifier) run(r io.ReaderAt, size int64) error {
	v.size = size
	dir, err := checkDirectory(r, size)
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are checked below
		return invalid("not a readable ZIP file")
	}
	if err := v.index(zr.File); err != nil {
		return err
	}
	if err := checkLayout(r, dir, zr.File); err != nil {
		return err
	}

	manifest, err := v.readSmall(NameManifest, maxManifestBytes)
	if err != nil {
		return err
	}
	sig, err := v.readSmall(NameSignature, maxSignatureBytes)
	if err != nil {
		return err
	}
	own, err := v.readSmall(NameAllowedSigners, maxAllowedSignersBytes)
	if err != nil {
		return err
	}
	v.checkSignature(manifest, sig, own)

	m, err := parseManifest(manifest)
	if err != nil {
		return err
	}
	v.rep.PackageID, v.rep.AudioMode = m.PackageID, m.AudioMode
	v.rep.CreatedAt = m.CreatedAt.UTC().Format(time.RFC3339)
	v.checkManifest(m)
	for _, f := range zr.File {
		if f.Name != NameManifest && f.Name != NameSignature {
			v.checkEntry(f, m)
		}
	}
	return nil
}

// index checks the entries before any is read: only the format's names,
// each once, at most one audio entry, each within its bound, stored or
// deflated, not encrypted.
func (v *verifier) index(files []*zip.File) error {
	if len(files) > maxEntries {
		return invalid("too many entries")
	}
	v.files = map[string]*zip.File{}
	for _, f := range files {
		limit, audio := entryLimit(f.Name)
		switch {
		case limit == 0:
			return invalid("an entry that is not part of a tyst package")
		case v.files[f.Name] != nil:
			return invalid("an entry appears twice")
		case audio && v.audio != "":
			return invalid("more than one audio entry")
		case f.Flags&0x1 != 0:
			return invalid("%s is encrypted by ZIP", f.Name)
		case f.Method != zip.Store && f.Method != zip.Deflate, audio && f.Method != zip.Store:
			return invalid("%s uses a compression tyst does not write", f.Name)
		case f.UncompressedSize64 > uint64(limit), f.CompressedSize64 > uint64(v.size),
			f.Method == zip.Store && f.CompressedSize64 != f.UncompressedSize64:
			return invalid("%s declares a size beyond the format's bounds", f.Name)
		}
		off, err := f.DataOffset()
		if err != nil || off < 0 || uint64(off)+f.CompressedSize64 > uint64(v.size) {
			return invalid("%s lies beyond the end of the file (truncated)", f.Name)
		}
		v.files[f.Name] = f
		if audio {
			v.audio = f.Name
		}
	}
	var missing []string
	for _, name := range []string{NameManifest, NameSignature, NameAllowedSigners, NameTranscript, NameAudit, NameReadme, NameVerify} {
		if v.files[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return invalid("missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// entryLimit returns the size bound of an entry name, 0 for a name that is
// not the format's, and whether it names the audio.
func entryLimit(name string) (int64, bool) {
	switch name {
	case NameManifest:
		return maxManifestBytes, false
	case NameSignature:
		return maxSignatureBytes, false
	case NameAllowedSigners:
		return maxAllowedSignersBytes, false
	case NameReadme, NameVerify:
		return maxTextBytes, false
	case NameTranscript, NameAudit:
		return maxDocumentBytes, false
	case NameAudioEncrypted:
		return 1<<63 - 1, true
	}
	if ext, ok := strings.CutPrefix(name, "audio."); ok && validExt(ext) {
		return 1<<63 - 1, true
	}
	return 0, false
}

// readSmall reads a small entry into memory; index checked its bound.
func (v *verifier) readSmall(name string, limit int64) ([]byte, error) {
	rc, err := v.files[name].Open()
	if err != nil {
		return nil, invalid("%s cannot be read", name)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil || int64(len(b)) > limit {
		return nil, invalid("%s cannot be read (damaged)", name)
	}
	return b, nil
}

// checkSignature checks the signature against the key inside the package
// (is it intact?), then that key against the trust anchors (is it the
// newsroom's?).
func (v *verifier) checkSignature(manifest, sig, own []byte) {
	fp, err := signing.Verify(own, signing.NamespaceExport, bytes.NewReader(manifest), sig)
	if err != nil {
		v.problem("manifest.json.sig: %s", strings.TrimPrefix(err.Error(), signing.ErrInvalid.Error()+": "))
		return
	}
	// Write's signature has exactly one form; any other byte is a change.
	if s, err := sshsig.Unarmor(sig); err != nil || !bytes.Equal(sshsig.Armor(s), sig) {
		v.problem("manifest.json.sig: not in the form tyst writes (changed)")
		return
	}
	v.rep.Signature.OK, v.rep.Signature.Fingerprint = true, fp
	anchors := v.opts.AllowedSigners != nil || v.opts.Fingerprint != ""
	switch {
	case !anchors:
		v.rep.Notes = append(v.rep.Notes, "the signature was checked against the key inside the package, which proves nothing alone: "+
			"compare its fingerprint with the one the newsroom publishes, or check it against the newsroom's allowed_signers file")
	case v.opts.AllowedSigners != nil && !v.admits(manifest, sig):
		v.distrust("manifest.json.sig: signed by a key that is not in the allowed_signers given (not the newsroom's key)")
	case v.opts.Fingerprint != "" && fp != v.opts.Fingerprint:
		v.distrust("manifest.json.sig: signed by a key whose fingerprint is not the one given (not the newsroom's key)")
	default:
		v.rep.Signature.Trusted = true
	}
}

// admits reports whether the trusted allowed_signers admit the signature.
func (v *verifier) admits(manifest, sig []byte) bool {
	_, err := signing.Verify(v.opts.AllowedSigners, signing.NamespaceExport, bytes.NewReader(manifest), sig)
	return err == nil
}

// distrust records a package signed by a key other than the trust anchor's:
// a problem, though the package may be intact.
func (v *verifier) distrust(msg string) {
	v.distrusted = true
	v.problem("%s", msg)
}

// parseManifest decodes manifest.json strictly: known fields only, one
// document, the format this package writes.
func parseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, invalid("manifest.json is not a tyst manifest")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("manifest.json has data after the manifest")
	}
	if m.Format != Format {
		return nil, invalid("manifest.json is of an unknown format")
	}
	return &m, nil
}

// checkManifest checks that the manifest is consistent with itself and
// lists exactly the package's entries.
func (v *verifier) checkManifest(m *Manifest) {
	if !validID(m.PackageID) {
		v.problem("manifest.json: bad package_id")
	}
	if m.AudioMode != ModeEncrypted && m.AudioMode != ModeDecrypted {
		v.problem("manifest.json: bad audio_mode")
	}
	for _, name := range slices.Sorted(maps.Keys(m.Files)) {
		sum := m.Files[name]
		if limit, _ := entryLimit(name); limit == 0 || name == NameManifest || name == NameSignature {
			v.problem("manifest.json lists a file that is not part of a tyst package")
		} else if v.files[name] == nil {
			v.problem("%s is listed in manifest.json but missing", name)
		} else if !validHex(sum) {
			v.problem("manifest.json: bad hash for %s", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(v.files)) {
		if _, ok := m.Files[name]; !ok && name != NameManifest && name != NameSignature {
			v.problem("%s is not listed in manifest.json (added)", name)
		}
	}
	h := m.IntegrityHashes
	if h.TranscriptHash != m.Files[NameTranscript] || h.AuditHash != m.Files[NameAudit] {
		v.problem("manifest.json: integrity_hashes disagree with files")
	}
	v.rep.Audio.Present, v.rep.Audio.Entry = v.audio != "", v.audio
	switch {
	case v.audio == "":
		if h.AudioSHA256 != "" || h.AudioFileSHA256 != "" {
			v.problem("manifest.json names audio hashes, but the package has no audio")
		}
	case (m.AudioMode == ModeEncrypted) != (v.audio == NameAudioEncrypted):
		v.problem("the audio entry does not match audio_mode")
	case h.AudioFileSHA256 != m.Files[v.audio] || !validHex(h.AudioSHA256):
		v.problem("manifest.json: audio hashes missing or disagreeing with files")
	case m.AudioMode == ModeDecrypted && h.AudioSHA256 != h.AudioFileSHA256:
		v.problem("manifest.json: decrypted audio whose audio_sha256 differs from its file hash")
	}
}

// checkEntry hashes one entry and compares it with the manifest; the
// encrypted audio is decrypted on the way when keys are given.
func (v *verifier) checkEntry(f *zip.File, m *Manifest) {
	rc, err := f.Open()
	if err != nil {
		v.problem("%s cannot be read", f.Name)
		v.rep.Entries = append(v.rep.Entries, EntryReport{Name: f.Name})
		return
	}
	defer rc.Close()
	fileHash := sha256.New()
	var readErr error
	switch {
	case f.Name == NameAudioEncrypted && len(v.opts.Keys) > 0:
		orig := sha256.New()
		_, decErr := io.CopyBuffer(orig, fstream.NewReader(io.TeeReader(rc, fileHash), v.opts.Keys), v.buf)
		_, readErr = io.CopyBuffer(fileHash, rc, v.buf) // what the decryption left unread
		if decErr != nil && !errors.Is(decErr, fstream.ErrCorrupt) {
			readErr = decErr
		}
		v.rep.Audio.Checked = decErr == nil
		switch {
		case decErr == nil:
			v.rep.Audio.OK = hex.EncodeToString(orig.Sum(nil)) == m.IntegrityHashes.AudioSHA256
			if !v.rep.Audio.OK {
				v.problem("the decrypted audio does not match audio_sha256")
			}
		case readErr == nil:
			v.problem("audio.bin does not decrypt under the given keys (another key, or changed)")
		}
	case f.Name == NameAudioEncrypted:
		_, readErr = io.CopyBuffer(fileHash, rc, v.buf)
		v.rep.Notes = append(v.rep.Notes, "no newsroom key given: audio.bin was not decrypted, so audio_sha256 was not checked")
	default:
		_, readErr = io.CopyBuffer(fileHash, rc, v.buf)
	}
	if readErr != nil {
		v.problem("%s cannot be read (damaged or truncated)", f.Name)
		v.rep.Entries = append(v.rep.Entries, EntryReport{Name: f.Name})
		return
	}
	sum := hex.EncodeToString(fileHash.Sum(nil))
	ok := sum == m.Files[f.Name]
	if !ok {
		v.problem("%s does not match its hash in manifest.json (changed)", f.Name)
	}
	if f.Name == v.audio && f.Name != NameAudioEncrypted {
		v.rep.Audio.Checked = true
		v.rep.Audio.OK = sum == m.IntegrityHashes.AudioSHA256
		if !v.rep.Audio.OK {
			v.problem("%s does not match audio_sha256", f.Name)
		}
	}
	v.rep.Entries = append(v.rep.Entries, EntryReport{Name: f.Name, SHA256: sum, OK: ok})
}
