package store

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/fernet/fernet-go"
	bolt "go.etcd.io/bbolt"

	"tyst/store/blob"
	"tyst/store/fstream"
	"tyst/store/media"
)

// DefaultMaxUpload is the largest audio file accepted unless configured.
const DefaultMaxUpload = 200 << 20

// Audio describes a record's stored audio.
type Audio struct {
	FileID     uint64
	SHA256     string // hex, of the original bytes
	SizeBytes  int64
	MIMEType   string
	DurationMS int64 // 0 when unknown
	CreatedAt  time.Time
}

// assetRow is a stored audio file. Only its id and its blob's name stand
// in the clear. Each asset has its own random key, stored only wrapped by
// the record key, so forgetting it erases this audio while the record lives
// on (DESIGN §4); size, type, duration and SHA-256 are sealed under it.
type assetRow struct {
	ID         uint64 `json:"id"`
	Blob       string `json:"blob"`        // HMAC-SHA256(asset key, audio): says nothing without the key
	WrappedKey token  `json:"wrapped_key"` // the asset key, sealed under the record key
	Sealed     token  `json:"sealed"`      // assetSecrets under the asset key
}

// assetSecrets is the plaintext of assetRow.Sealed.
type assetSecrets struct {
	AssetID    uint64    `json:"asset_id"`  // binds the seal to its row
	RecordID   uint64    `json:"record_id"` // and to its record
	SizeBytes  int64     `json:"size_bytes"`
	MIMEType   string    `json:"mime_type"`
	DurationMS int64     `json:"duration_ms,omitempty"`
	SHA256     []byte    `json:"sha256"`
	CreatedAt  time.Time `json:"created_at"`
}

// asset is an asset row opened with its record's key.
type asset struct {
	row assetRow
	sec assetSecrets
	key *fernet.Key
}

func (a asset) audio() *Audio {
	return &Audio{
		FileID: a.row.ID, SHA256: hex.EncodeToString(a.sec.SHA256), SizeBytes: a.sec.SizeBytes,
		MIMEType: a.sec.MIMEType, DurationMS: a.sec.DurationMS, CreatedAt: a.sec.CreatedAt,
	}
}

// loadAsset reads and opens the asset of record l.
func (db *DB) loadAsset(tx *bolt.Tx, l loaded) (asset, error) {
	var a asset
	ok, err := getJSON(tx.Bucket(bucketAssets), itob(l.acc.AssetID), &a.row)
	if err != nil {
		return a, err
	}
	if !ok {
		return a, fmt.Errorf("record %d: asset missing: %w", l.row.ID, ErrCorrupt)
	}
	raw, err := openWith(a.row.WrappedKey, l.key)
	if err != nil || len(raw) != len(fernet.Key{}) {
		return a, fmt.Errorf("record %d: asset key: %w", l.row.ID, ErrCorrupt)
	}
	a.key = new(fernet.Key)
	copy(a.key[:], raw)
	if err := openJSON(a.key, a.row.Sealed, &a.sec); err != nil {
		return a, fmt.Errorf("record %d: asset: %w", l.row.ID, err)
	}
	if a.sec.AssetID != a.row.ID || a.sec.RecordID != l.row.ID {
		return a, fmt.Errorf("record %d: asset of another row: %w", l.row.ID, ErrCorrupt)
	}
	return a, nil
}

// NewAudio is an upload for AttachAudio.
type NewAudio struct {
	DeclaredType string    // the Content-Type the client declared, may be empty
	Body         io.Reader // the file's bytes; read once, front to back
	MaxBytes     int64     // DefaultMaxUpload when zero
	// Exclusive, when set, is called once the record is held for this
	// upload (Uploading reports it from then on); its error refuses the
	// upload. The API refuses an upload into a record that a live stream
	// holds with it.
	Exclusive func() error
}

// sourceError marks an error of the upload body, as opposed to the disk.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read upload: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// AttachAudio stores n as record id's audio: it sniffs the type, then
// streams the body through SHA-256, a keyed hash (the blob's name) and the
// Fernet stream format into a temp file, syncs and renames it, and only then
// references it in one transaction (audit audio_uploaded, size and type only).
// Memory does not grow with the file.
//
// Returns not_found (no record), conflict (record has audio), validation_error
// (empty file, incomplete body), payload_too_large, unsupported_media_type,
// insufficient_storage (disk full). An error an *Error in the body already
// carries (the caller's own limit) is returned as it is.
func (db *DB) AttachAudio(ctx context.Context, id uint64, n NewAudio) (audio *Audio, err error) {
	defer func() { err = boundary("attach audio", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if n.MaxBytes <= 0 {
		n.MaxBytes = DefaultMaxUpload
	}
	// One upload per record at a time. Check (so a record the caller may
	// not see is 404 before anything else), claim, check again.
	check := func() (l loaded, err error) {
		err = db.view(func(tx *bolt.Tx) error {
			l, err = db.loadRecord(ctx, tx, id)
			if err == nil && l.acc.AssetID != 0 {
				err = errorf(CodeConflict, "record already has audio")
			}
			return err
		})
		return l, err
	}
	if _, err := check(); err != nil {
		return nil, err
	}
	if !db.claimUpload(id) {
		return nil, errorf(CodeConflict, "an upload for this record is in progress")
	}
	defer db.releaseUpload(id)
	if n.Exclusive != nil {
		if err := n.Exclusive(); err != nil {
			return nil, err
		}
	}
	l, err := check()
	if err != nil {
		return nil, err
	}
	var key fernet.Key
	if err := key.Generate(); err != nil {
		return nil, err
	}
	wrappedKey, err := sealWith(l.key, key[:])
	if err != nil {
		return nil, err
	}

	body := bufio.NewReaderSize(sourceReader{n.Body}, 64<<10)
	head, err := body.Peek(media.HeadSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, sourceErr(err)
	}
	if len(head) == 0 {
		return nil, errorf(CodeValidation, "file is empty")
	}
	mimeType, err := media.Resolve(n.DeclaredType, head)
	switch {
	case errors.Is(err, media.ErrMismatch):
		return nil, &Error{Code: CodeUnsupported, Message: "file content does not match its declared type"}
	case err != nil:
		return nil, &Error{Code: CodeUnsupported, Message: "file type not accepted: send WAV, MP3, M4A/MP4/MOV/3GP, AAC, OGG or WebM"}
	}

	w, err := db.writeBlob(&key, body, n.MaxBytes)
	if err != nil {
		return nil, err
	}
	defer w.w.Abort() // a no-op once committed
	if err := db.faultAt(FaultUploadWritten); err != nil {
		return nil, err
	}
	if err := w.w.Commit(w.name); err != nil {
		return nil, err
	}
	// From here the blob exists: every way out without the transaction
	// removes it (a crash leaves it to the orphan sweep).
	duration, err := db.blobDuration(w.name, &key, mimeType)
	if err == nil {
		err = db.faultAt(FaultUploadRenamed)
	}
	if err != nil {
		db.removeBlob(w.name)
		return nil, err
	}
	a := asset{
		row: assetRow{Blob: w.name, WrappedKey: wrappedKey},
		sec: assetSecrets{RecordID: id, SizeBytes: w.size, MIMEType: mimeType, DurationMS: duration, SHA256: w.sum, CreatedAt: db.now().UTC()},
	}
	err = db.update(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		if l.acc.AssetID != 0 {
			return errorf(CodeConflict, "record already has audio")
		}
		assets := tx.Bucket(bucketAssets)
		if a.row.ID, err = assets.NextSequence(); err != nil {
			return err
		}
		a.sec.AssetID = a.row.ID
		if a.row.Sealed, err = sealJSON(&key, a.sec); err != nil {
			return err
		}
		if err := putJSON(assets, itob(a.row.ID), a.row); err != nil {
			return err
		}
		l.acc.AssetID = a.row.ID
		if err := db.putRecord(tx, &l); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, AuditEvent{
			Action: ActionAudioUploaded, RecordID: id, ProjectID: l.acc.ProjectID,
			Meta: map[string]any{"mib": MiB(a.sec.SizeBytes), "mime_type": a.sec.MIMEType},
		})
	})
	if err != nil {
		// Nothing references the blob: remove it now rather than at the
		// next start.
		if rerr := db.removeBlob(w.name); rerr != nil {
			db.log.Warn("unreferenced blob not removed", "err", stripPaths(rerr))
		}
		return nil, err
	}
	if err := db.faultAt(FaultUploadCommitted); err != nil {
		return nil, err
	}
	return a.audio(), nil
}

// Uploading reports whether an upload into record id is running. A live
// stream checks it after it holds the record, as uploads check for
// streams (NewAudio.Exclusive).
func (db *DB) Uploading(id uint64) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.uploading[id]
}

func (db *DB) claimUpload(id uint64) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.uploading[id] {
		return false
	}
	db.uploading[id] = true
	return true
}

func (db *DB) releaseUpload(id uint64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	delete(db.uploading, id)
}

func sourceErr(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e // the caller's classification, e.g. its body limit
	}
	return &Error{Code: CodeValidation, Message: "upload is incomplete", Err: err}
}

// blobWrite is a blob written, not yet committed.
type blobWrite struct {
	w    blob.Writer
	name string // the keyed hash of the audio: the blob's name
	size int64
	sum  []byte
}

// writeBlob streams src (at most max bytes) into a new blob in the stream
// format under key, hashing the plaintext on the way. The caller commits
// the write under its name, or aborts it.
func (db *DB) writeBlob(key *fernet.Key, src io.Reader, max int64) (*blobWrite, error) {
	bw, err := db.blobs.Create()
	if err != nil {
		return nil, err
	}
	w := &blobWrite{w: bw}
	disk := newAsyncWriter(bw)
	fw, err := fstream.NewWriter(disk, key)
	if err != nil {
		disk.Close()
		bw.Abort()
		return nil, err
	}
	sum := sha256.New()
	name := blobNamer(key)
	n, err := copyHashed(fw, src, max, sum, name)
	if err == nil {
		err = fw.Close()
	}
	if cerr := disk.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		bw.Abort()
		var se *sourceError
		if errors.As(err, &se) {
			return nil, sourceErr(se.err)
		}
		return nil, err
	case n > max:
		bw.Abort()
		return nil, errorf(CodeTooLarge, fmt.Sprintf("file is larger than %d MiB", max>>20))
	case n == 0:
		bw.Abort()
		return nil, errorf(CodeValidation, "file is empty")
	}
	w.size = n
	w.sum = sum.Sum(nil)
	w.name = hex.EncodeToString(name.Sum(nil))
	return w, nil
}

// blobDuration reads the playing time of the audio in blob name, through
// its encryption: only the chunks the container needs are decrypted. 0
// when the file gives no way to know.
func (db *DB) blobDuration(name string, key *fernet.Key, mimeType string) (int64, error) {
	o, err := db.blobs.Open(name)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	rs, err := fstream.NewReadSeeker(o, o.Size(), []*fernet.Key{key})
	if err != nil {
		return 0, fmt.Errorf("read back the written blob: %w", err)
	}
	ms, ok, err := media.Duration(media.SeekReaderAt(rs), rs.Size(), mimeType)
	if err != nil {
		return 0, fmt.Errorf("read back the written blob: %w", err)
	}
	if !ok {
		return 0, nil
	}
	return ms, nil
}

// blobNamer is the keyed hash that names a record's blob (DESIGN §4): the
// same audio in two records gets unrelated names, and a known recording
// cannot be confirmed from the disk.
func blobNamer(key *fernet.Key) hash.Hash {
	return hmac.New(sha256.New, append([]byte(recordKeyContext), key[:]...))
}

// AudioReader is a record's decrypted audio with random access. Close it.
type AudioReader struct {
	Audio
	io.ReadSeeker
	file io.Closer // the blob object
}

// Close releases the blob file.
func (a *AudioReader) Close() error { return a.file.Close() }

// OpenAudio opens record id's audio for reading and audits the access
// (audio_accessed, at most one event per principal and record within
// accessWindow). Returns not_found when the record or its audio does not
// exist; reads return an internal error wrapping ErrCorrupt when the blob
// was altered.
func (db *DB) OpenAudio(ctx context.Context, id uint64) (ar *AudioReader, err error) {
	defer func() { err = boundary("open audio", err) }()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	var a asset
	var projectID uint64
	err = db.view(func(tx *bolt.Tx) error {
		l, err := db.loadRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		if l.acc.AssetID == 0 {
			return errorf(CodeNotFound, "record has no audio")
		}
		projectID = l.acc.ProjectID
		a, err = db.loadAsset(tx, l)
		return err
	})
	if err != nil {
		return nil, err
	}
	f, err := db.openBlob(a.row.Blob)
	if err != nil {
		return nil, fmt.Errorf("blob of record %d: %w", id, err)
	}
	rs, err := fstream.NewReadSeeker(f, f.Size(), []*fernet.Key{a.key})
	if err == nil && rs.Size() != a.sec.SizeBytes {
		err = ErrCorrupt
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob of record %d: %w", id, err)
	}
	if err := db.auditAccess(ctx, id, projectID); err != nil {
		f.Close()
		return nil, err
	}
	return &AudioReader{Audio: *a.audio(), ReadSeeker: &checkedReader{rs: rs, want: a.sec.SHA256, h: sha256.New(), size: rs.Size()}, file: f}, nil
}

// auditAccess writes audio_accessed for ctx's principal and record id
// unless one was written within accessWindow.
func (db *DB) auditAccess(ctx context.Context, id, projectID uint64) error {
	var who string
	if p := PrincipalFrom(ctx); p != nil {
		who = fmt.Sprintf("%d/%d", p.UserID, p.TokenID)
	}
	key := fmt.Sprintf("%s:%d", who, id)
	if !db.accesses.due(key, db.now()) {
		return nil
	}
	err := db.update(func(tx *bolt.Tx) error {
		return db.appendAudit(ctx, tx, AuditEvent{Action: ActionAudioAccessed, RecordID: id, ProjectID: projectID})
	})
	if err != nil {
		db.accesses.forget(key)
	}
	return err
}

// checkedReader checks the SHA-256 of the whole file when one pass reads it
// from the start to the end; the read that reaches the end fails with
// ErrCorrupt instead of delivering its bytes when the hash is wrong.
type checkedReader struct {
	rs     io.ReadSeeker
	want   []byte
	h      hash.Hash
	hashed int64 // bytes hashed so far, from the start; -1 after a jump
	pos    int64
	size   int64
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.rs.Read(p)
	if c.hashed >= 0 && c.hashed == c.pos {
		c.h.Write(p[:n])
		c.hashed += int64(n)
		if c.hashed == c.size && subtle.ConstantTimeCompare(c.h.Sum(nil), c.want) != 1 {
			return 0, fmt.Errorf("audio sha256: %w", ErrCorrupt)
		}
	}
	c.pos += int64(n)
	return n, err
}

func (c *checkedReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := c.rs.Seek(offset, whence)
	if err != nil {
		return pos, err
	}
	c.pos = pos
	if pos == 0 {
		c.h.Reset()
		c.hashed = 0
	} else if pos != c.hashed {
		c.hashed = -1
	}
	return pos, nil
}
