// Package dump writes the debug audio dump (DESIGN §9): when an operator
// turns it on (ECHOPANEL_DEBUG_AUDIO_DUMP=1), every stream's PCM is also
// written to <data>/debug-audio/<stream_id>_<tag>_<record tag>_<UTC time>.pcm,
// encrypted under the newsroom key in the Fernet stream format
// (store/fstream; `tyst decrypt` reads it) unless plaintext was asked for.
//
// The tag stands for the stream's source, which the client chose (a field
// operator may name a source after a person), so the source itself is
// never in a file name: the tag is the first 8 hex digits of
// HMAC-SHA256(K, source), K = HMAC-SHA256(newsroom key, "tyst debug-audio
// source tag v1"), plaintext dumps included. One source always gets the
// same tag under one key; without the key a tag cannot be tested against
// a guessed name. SourceTag computes it (an operator maps tags to the
// sources they use with the Python line in the README). The record tag,
// the first 16 hex digits of HMAC-SHA256(R, decimal record id), R =
// HMAC-SHA256(newsroom key, "tyst debug-audio record tag v1"), lets a
// destroy, a purge or a removal of audio find the record's dumps
// (EraseRecords), and a start find those of records destroyed while a
// crash interrupted their erasure (EraseGone), without the record id on
// disk.
//
// Promises:
//   - The directory is 0700, files 0600; a dump never follows a symlink,
//     and cleanup removes only regular files whose name has tyst's own
//     pattern, oldest (by modification time) first, until none is older
//     than MaxAge and there are at most MaxFiles of at most MaxBytes
//     together. Cleanup runs when a dump opens and when the retention cron
//     calls Cleanup; a file it cannot remove is logged and the rest are
//     still cleaned. Dumps being written are never removed.
//   - A dump that cannot be opened (no directory, no room) is an error for
//     that stream only: the caller logs it and streams on. A write error is
//     returned for the caller to log; the stream goes on. One dump stops at
//     MaxBytes (ErrFull).
//   - Nothing is logged but counts and path-free errors: file names hold
//     stream ids and source tags, which stay out of logs.
//   - Cleanup and Rekey also take the names of earlier releases, which
//     held the source itself in place of the tag.
//
// An encrypted dump holds one chunk (1 MiB) in memory until it is written,
// so at most MaxOpen dumps are open at once. A dump that was not closed (a
// crash) lacks its last chunk: `tyst decrypt` prints every whole chunk and
// then reports the file incomplete.
package dump

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"

	"tyst/internal/pathfree"
)

// Defaults of Config (DESIGN §9).
const (
	DefaultMaxAge   = 24 * time.Hour
	DefaultMaxFiles = 200
	DefaultMaxBytes = 512 << 20
	DefaultMaxOpen  = 16
	// DirName is the dump directory's name under the data directory.
	DirName = "debug-audio"
)

// namePattern matches the dump files tyst writes, and only those: with a
// source tag and a record tag, or (earlier releases) a source tag or a
// source alone.
var namePattern = regexp.MustCompile(`^[0-9a-f]{32}_(?:[0-9a-f]{8}_[0-9a-f]{16}|[a-z0-9_-]{1,16})_[0-9]{8}T[0-9]{6}Z\.pcm$`)

// recordTagPattern finds the record tag in a dump's name.
var recordTagPattern = regexp.MustCompile(`^[0-9a-f]{32}_[0-9a-f]{8}_([0-9a-f]{16})_[0-9]{8}T[0-9]{6}Z\.pcm$`)

var (
	idPattern     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sourcePattern = regexp.MustCompile(`^[a-z0-9_-]{1,16}$`)
)

// ErrFull is returned by Write once a dump has reached MaxBytes.
var ErrFull = errors.New("dump: file reached its size limit")

// ErrBusy is returned by Open when MaxOpen dumps are open.
var ErrBusy = errors.New("dump: too many dumps open")

// Config configures a Dumper.
type Config struct {
	Dir       string // the dump directory, <data>/debug-audio
	Plaintext bool   // write raw PCM (ECHOPANEL_DEBUG_AUDIO_DUMP_PLAINTEXT=1)
	// Key is the newsroom's primary key, required: it encrypts the dumps
	// (unless Plaintext) and keys the source tags of their names (always).
	Key    *fernet.Key
	Logger *slog.Logger // discards when nil
	// Limits; zero takes the default.
	MaxAge   time.Duration
	MaxFiles int
	MaxBytes int64
	MaxOpen  int
	// Now is the clock of file names; time.Now when nil.
	Now func() time.Time
	// WrapWriter, when set, wraps each dump file as it is written. Tests
	// inject a failing disk with it; production leaves it nil.
	WrapWriter func(io.Writer) io.Writer
}

// Dumper opens dump files and cleans the dump directory. A nil *Dumper is
// a dump that is off. Safe for concurrent use.
type Dumper struct {
	cfg    Config
	log    *slog.Logger
	tagKey []byte                                 // K of the source tags (package doc)
	remove func(root *os.Root, name string) error // tests inject failures

	mu   sync.Mutex
	open map[string]bool // names of the dumps being written
}

// New returns a Dumper; it touches no file until a dump opens.
func New(cfg Config) (*Dumper, error) {
	if cfg.Dir == "" {
		return nil, errors.New("dump: no directory")
	}
	if cfg.Key == nil {
		return nil, errors.New("dump: the newsroom key is required (it keys the source tags, and encrypts)")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxOpen <= 0 {
		cfg.MaxOpen = DefaultMaxOpen
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dumper{cfg: cfg, log: cfg.Logger, open: map[string]bool{}, tagKey: tagKey(cfg.Key),
		remove: func(root *os.Root, name string) error { return root.Remove(name) }}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// tagLabel separates the source-tag key from every other use of the
// newsroom key.
const tagLabel = "tyst debug-audio source tag v1"

// tagKey derives K of the source tags from the newsroom key.
func tagKey(key *fernet.Key) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(tagLabel))
	return m.Sum(nil)
}

// SourceTag returns the tag that stands for source in the names of the
// dumps (8 hex digits): the first 4 bytes of HMAC-SHA256(K, source).
func (d *Dumper) SourceTag(source string) string {
	m := hmac.New(sha256.New, d.tagKey)
	m.Write([]byte(source))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

// recordTagLabel separates the record-tag key from every other use of
// the newsroom key.
const recordTagLabel = "tyst debug-audio record tag v1"

// RecordTag returns the tag that stands for record id in the names of the
// dumps under key (16 hex digits).
func RecordTag(key *fernet.Key, id uint64) string {
	k := hmac.New(sha256.New, key[:])
	k.Write([]byte(recordTagLabel))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(strconv.FormatUint(id, 10)))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Writing reports whether the dump file name is being written.
func (d *Dumper) Writing(name string) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open[name]
}

// Plaintext reports whether dumps are written unencrypted.
func (d *Dumper) Plaintext() bool { return d != nil && d.cfg.Plaintext }

// File is one dump being written. Not safe for concurrent use.
type File struct {
	d       *Dumper
	name    string
	f       *os.File
	w       io.Writer
	enc     *fstream.Writer // nil for plaintext
	written int64
	closed  bool
}

// Open creates the dump file of a stream's source into record recordID,
// after cleaning the directory; its name holds the source's tag and the
// record's, never the source or the record id. The directory is created
// (0700) when missing. Errors name no path; on any error the caller
// streams on without a dump.
func (d *Dumper) Open(streamID, source string, recordID uint64) (*File, error) {
	if !idPattern.MatchString(streamID) || !sourcePattern.MatchString(source) {
		return nil, errors.New("dump: stream id or source is not a machine word")
	}
	if err := d.ensureDir(); err != nil {
		return nil, err
	}
	if _, err := d.Cleanup(d.cfg.Now()); err != nil {
		d.log.Warn("debug dump cleanup incomplete", "err", err.Error())
	}
	name := fmt.Sprintf("%s_%s_%s_%s.pcm", streamID, d.SourceTag(source), RecordTag(d.cfg.Key, recordID),
		d.cfg.Now().UTC().Format("20060102T150405Z"))
	d.mu.Lock()
	if len(d.open) >= d.cfg.MaxOpen {
		d.mu.Unlock()
		return nil, ErrBusy
	}
	d.open[name] = true
	d.mu.Unlock()
	f, err := d.create(name)
	if err != nil {
		d.release(name)
		return nil, err
	}
	df := &File{d: d, name: name, f: f, w: f}
	if d.cfg.WrapWriter != nil {
		df.w = d.cfg.WrapWriter(f)
	}
	if !d.cfg.Plaintext {
		enc, err := fstream.NewWriter(df.w, d.cfg.Key)
		if err != nil {
			f.Close()
			d.release(name)
			return nil, err
		}
		df.enc, df.w = enc, enc
	}
	d.log.Info("debug dump opened", "plaintext", d.cfg.Plaintext)
	return df, nil
}

// ensureDir creates the directory, and refuses one that is a symlink or
// not a directory.
func (d *Dumper) ensureDir() error {
	if err := os.MkdirAll(d.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("dump: directory cannot be created: %w", pathFree(err))
	}
	fi, err := os.Lstat(d.cfg.Dir)
	if err != nil {
		return fmt.Errorf("dump: directory: %w", pathFree(err))
	}
	if !fi.IsDir() {
		return errors.New("dump: directory is a symlink or not a directory")
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(d.cfg.Dir, 0o700); err != nil {
			return fmt.Errorf("dump: directory cannot be restricted to 0700: %w", pathFree(err))
		}
	}
	return nil
}

// create makes name in the directory, never through a symlink.
func (d *Dumper) create(name string) (*os.File, error) {
	root, err := os.OpenRoot(d.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("dump: directory: %w", pathFree(err))
	}
	defer root.Close()
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dump: file cannot be created: %w", pathFree(err))
	}
	return f, nil
}

func (d *Dumper) release(name string) {
	d.mu.Lock()
	delete(d.open, name)
	d.mu.Unlock()
}

// Write appends PCM to the dump. After MaxBytes it returns ErrFull.
func (f *File) Write(p []byte) error {
	if f.closed {
		return errors.New("dump: write after close")
	}
	if f.written+int64(len(p)) > f.d.cfg.MaxBytes {
		return ErrFull
	}
	n, err := f.w.Write(p)
	f.written += int64(n)
	if err != nil {
		return fmt.Errorf("dump: write: %w", pathFree(err))
	}
	return nil
}

// Close finishes the dump (an encrypted one gets its last chunk) and closes
// it.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	defer f.d.release(f.name)
	var err error
	if f.enc != nil {
		err = f.enc.Close()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dump: close: %w", pathFree(err))
	}
	return nil
}

// entry is a dump file found in the directory.
type entry struct {
	name  string
	size  int64
	mtime time.Time
}

// list returns the regular files of tyst's name pattern, oldest first, and
// the directory as a root to remove them through. A missing directory is
// an empty list.
func (d *Dumper) list() ([]entry, *os.Root, error) { return listDir(d.cfg.Dir) }

// listDir is list of directory dir.
func listDir(dir string) ([]entry, *os.Root, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dump: directory: %w", pathFree(err))
	}
	if !fi.IsDir() {
		return nil, nil, errors.New("dump: directory is a symlink or not a directory")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("dump: directory: %w", pathFree(err))
	}
	d, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, nil, fmt.Errorf("dump: directory: %w", pathFree(err))
	}
	des, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		root.Close()
		return nil, nil, fmt.Errorf("dump: directory cannot be read: %w", pathFree(err))
	}
	var out []entry
	for _, de := range des {
		if !namePattern.MatchString(de.Name()) {
			continue
		}
		info, err := root.Lstat(de.Name())
		if err != nil || !info.Mode().IsRegular() {
			continue // gone meanwhile, or a symlink: never followed, never removed
		}
		out = append(out, entry{name: de.Name(), size: info.Size(), mtime: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].mtime.Equal(out[j].mtime) {
			return out[i].mtime.Before(out[j].mtime)
		}
		return out[i].name < out[j].name
	})
	return out, root, nil
}

// Cleanup removes dump files, oldest first, until none is older than
// MaxAge at now and at most MaxFiles remain, of at most MaxBytes together.
// Dumps being written are counted but not removed. A file that cannot be
// removed is logged and skipped; err then says how many. The retention
// cron calls it every 10 minutes.
func (d *Dumper) Cleanup(now time.Time) (removed int, err error) {
	if d == nil {
		return 0, nil
	}
	files, root, err := d.list()
	if err != nil || root == nil {
		return 0, err
	}
	defer root.Close()
	d.mu.Lock()
	open := make(map[string]bool, len(d.open))
	for n := range d.open {
		open[n] = true
	}
	d.mu.Unlock()
	var total int64
	for _, f := range files {
		total += f.size
	}
	count, failed := len(files), 0
	for _, f := range files {
		old := now.Sub(f.mtime) > d.cfg.MaxAge
		over := count > d.cfg.MaxFiles || total > d.cfg.MaxBytes
		if !old && !over {
			break // the rest are newer
		}
		if open[f.name] {
			continue
		}
		if err := d.remove(root, f.name); err != nil {
			failed++
			d.log.Warn("debug dump file not removed", "err", pathFree(err).Error())
			continue
		}
		removed++
		count--
		total -= f.size
	}
	if removed > 0 {
		d.log.Info("debug dump files removed", "removed", removed)
	}
	if failed > 0 {
		return removed, fmt.Errorf("dump: %d files could not be removed", failed)
	}
	return removed, nil
}

// Status reports whether dumping is on and the files and bytes in the dump
// directory, for GET /status.
func (d *Dumper) Status() (enabled bool, files int, bytes int64) {
	if d == nil {
		return false, 0, 0
	}
	list, root, err := d.list()
	if root != nil {
		root.Close()
	}
	if err != nil {
		return true, 0, 0
	}
	for _, f := range list {
		bytes += f.size
	}
	return true, len(list), bytes
}

// pathFree drops the path of err's path error (package pathfree).
func pathFree(err error) error { return pathfree.Strip(err) }
