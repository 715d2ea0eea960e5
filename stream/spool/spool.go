// Package spool writes and reads spool files: encrypted, append-only files
// that hold a live stream's audio until it is stored (DESIGN §3, §8), and
// the field client's buffer of unacknowledged audio.
//
// A spool is the sequential variant of tyst's Fernet stream format
// (store/fstream): one Fernet token per line ("\n"), each token's plaintext
// a 26-byte header followed by the chunk's data, with the header layout of
// the stream format:
//
//	version (1 byte, 1) | flags (1 byte) | index (8 bytes, big-endian) | file id (16 bytes)
//
// and the Unix epoch as every token's timestamp. It differs in three ways:
//
//   - Data chunks may be short, anywhere in the file: a writer appends one
//     chunk per flush (at most MaxChunk bytes), so what it acknowledged is on
//     disk without waiting for a full chunk. A spool is therefore read only
//     front to back, never by seeking.
//   - Flags bit 2 (FlagMeta) marks a metadata chunk: its data is a record
//     of the stream (JSON, the caller's), not audio. Chunk 0 is always one;
//     later ones replace it (the last wins). Bit 0 (last) and bit 1 (padding)
//     are never set: a spool is removed when its stream is stored, not
//     finished.
//   - From its first data chunk on, the file grows in steps of Grow bytes
//     (1 MiB for server spools), written with zeros ahead of the data, so
//     its size tells the stream's length only to within a step. A spool
//     that holds no data yet is only its metadata lines (under a KiB): it
//     tells that no audio came, and a start that never sends any costs no
//     more. After the last token the file holds zeros. The end
//     of a spool is the first line that is not the next valid token of the
//     same file: a write torn by a crash ends it there, and Open zeroes
//     everything after it before appending, so a stale token left behind a
//     torn one can never be read as data later.
//
// Any Fernet library can still decrypt a spool line by line (drop the 26
// header bytes, skip chunks with bit 2, stop at the first line that does not
// verify).
package spool

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/fernet/fernet-go"
	"golang.org/x/sys/unix"

	"tyst/internal/dirsync"
)

const (
	// Version is the format version in every chunk header.
	Version = 1
	// HeaderSize is the length of the header before each chunk's data.
	HeaderSize = 26
	// FileIDSize is the length of the random file id in each header.
	FileIDSize = 16
	// MaxChunk is the most data one chunk carries.
	MaxChunk = 64 << 10
	// FlagMeta marks a metadata chunk.
	FlagMeta = 1 << 2
	// Grow1MiB is the allocation step of server spools.
	Grow1MiB = 1 << 20
)

// MaxLine is the longest line a spool holds.
var MaxLine = lineLen(MaxChunk)

// ErrCorrupt is returned when a file does not start with a metadata chunk
// under the given keys: it is not a spool, or not one of these keys.
var ErrCorrupt = errors.New("spool: not a spool under the configured keys")

// ErrShort is returned by a DataReader when the spool holds less data than
// asked for.
var ErrShort = errors.New("spool: holds less data than expected")

// File is a spool open for appending. Its methods are not safe for
// concurrent use, except Sync, which may run beside Append.
type File struct {
	f      *os.File
	rc     syscall.RawConn
	syncMu sync.Mutex // one sync at a time; guards serr
	syncFn func(fd uintptr)
	serr   error
	codec  *Codec
	fileID [FileIDSize]byte
	index  uint64
	end    int64 // bytes of valid tokens
	size   int64 // file size: end, rounded up to grow once grown
	grow   int64
	grown  bool // a data chunk was written: the file grows in steps of grow
	header [HeaderSize]byte
}

// Create creates the spool at path (mode 0600; it must not exist), writes
// meta as chunk 0, and syncs the file and its directory. grow is the
// allocation step in bytes (0: none); the file takes it from its first
// data chunk on.
func Create(path string, c *Codec, meta []byte, grow int64) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	sf := &File{f: f, codec: c, grow: grow}
	if _, err := io.ReadFull(rand.Reader, sf.fileID[:]); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	err = sf.AppendMeta(meta)
	if err == nil {
		err = sf.Sync()
	}
	if err == nil {
		err = dirsync.Sync(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return sf, nil
}

// Scan is what Open found in a spool.
type Scan struct {
	Meta      []byte // the last metadata chunk
	DataBytes int64  // data in all data chunks
	Chunks    int64  // chunks, metadata included
}

// Open opens the spool at path for appending after its last valid token:
// it reads it front to back with keys, zeroes whatever follows the last
// valid token (a torn write), syncs, and returns what it found. New chunks
// are sealed by c, whose key may differ from the one that sealed the old
// ones. Returns ErrCorrupt when chunk 0 is not a metadata chunk under keys.
func Open(path string, c *Codec, keys []*fernet.Key, grow int64) (*File, *Scan, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	sf, scan, err := open(f, c, keys, grow)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return sf, scan, nil
}

func open(f *os.File, c *Codec, keys []*fernet.Key, grow int64) (*File, *Scan, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	r := NewReader(f, keys)
	scan := &Scan{}
	for {
		ch, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		scan.Chunks++
		if ch.Meta {
			scan.Meta = append(scan.Meta[:0], ch.Data...)
		} else {
			scan.DataBytes += int64(len(ch.Data))
		}
	}
	if scan.Chunks == 0 {
		return nil, nil, ErrCorrupt
	}
	sf := &File{f: f, codec: c, fileID: r.fileID, index: r.index, end: r.Offset(), size: fi.Size(), grow: grow}
	sf.grown = scan.DataBytes > 0 || sf.size > sf.end
	if err := sf.zeroTail(); err != nil {
		return nil, nil, err
	}
	if err := sf.Sync(); err != nil {
		return nil, nil, err
	}
	return sf, scan, nil
}

// zeroTail overwrites everything after the last valid token with zeros.
func (sf *File) zeroTail() error {
	var zeros [64 << 10]byte
	for off := sf.end; off < sf.size; {
		n := min(int64(len(zeros)), sf.size-off)
		if _, err := sf.f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// Append writes data (at most MaxChunk bytes) as one data chunk. It is
// written, not synced: call Sync before relying on it.
func (sf *File) Append(data []byte) error { return sf.append(0, data) }

// AppendMeta writes meta (at most MaxChunk bytes) as a metadata chunk,
// replacing the earlier ones for readers.
func (sf *File) AppendMeta(meta []byte) error { return sf.append(FlagMeta, meta) }

func (sf *File) append(flags byte, data []byte) error {
	if len(data) > MaxChunk {
		return fmt.Errorf("spool: chunk of %d bytes is over %d", len(data), MaxChunk)
	}
	h := sf.header[:]
	h[0] = Version
	h[1] = flags
	binary.BigEndian.PutUint64(h[2:10], sf.index)
	copy(h[10:], sf.fileID[:])
	s := sf.codec.get()
	defer sf.codec.put(s)
	line, err := s.seal(sf.codec.block, h, data)
	if err != nil {
		return err
	}
	if flags&FlagMeta == 0 {
		sf.grown = true
	}
	if sf.grown {
		if err := sf.reserve(sf.end + int64(len(line))); err != nil {
			return err
		}
	}
	// One write at a known offset: a crash tears at most this line, which
	// then ends the spool for Open.
	if _, err := sf.f.WriteAt(line, sf.end); err != nil {
		return err
	}
	sf.end += int64(len(line))
	sf.size = max(sf.size, sf.end)
	sf.index++
	return nil
}

// zeros is written to grow a file; never modified.
var zeros [64 << 10]byte

// reserve grows the file in steps of grow so that it holds n bytes. The new
// space is written with zeros rather than fallocated: fallocate leaves
// unwritten extents, and every append into one would then cost a journal
// commit at the next sync; zeroed blocks are overwritten in place, and a
// sync of an append is only its data. (Either way the file's block count
// tells no more than its size.)
func (sf *File) reserve(n int64) error {
	if sf.grow <= 0 || n <= sf.size {
		return nil
	}
	newSize := (n + sf.grow - 1) / sf.grow * sf.grow
	for off := sf.size; off < newSize; {
		k := min(int64(len(zeros)), newSize-off)
		if _, err := sf.f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off += k
	}
	sf.size = newSize
	return nil
}

// Sync makes everything appended so far durable (fdatasync: the data and
// the size that reads it back).
//
// Sync may run beside Append and Close: the descriptor stays valid while it
// runs.
func (sf *File) Sync() error {
	sf.syncMu.Lock()
	defer sf.syncMu.Unlock()
	if sf.rc == nil {
		rc, err := sf.f.SyscallConn()
		if err != nil {
			return err
		}
		sf.rc = rc
		sf.syncFn = func(fd uintptr) {
			for {
				sf.serr = unix.Fdatasync(int(fd))
				if sf.serr != unix.EINTR {
					return
				}
			}
		}
	}
	// Control keeps the descriptor open while it runs; the function is
	// made once, so a sync allocates nothing.
	err := sf.rc.Control(sf.syncFn)
	if err == nil {
		err = sf.serr
	}
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: sf.f.Name(), Err: err}
	}
	return nil
}

// Size returns the file's size on disk: the bytes written, rounded up to
// the allocation step once a data chunk was written.
func (sf *File) Size() int64 { return max(sf.size, sf.end) }

// End returns the bytes of the tokens written: where the next line goes.
func (sf *File) End() int64 { return sf.end }

// FileID returns the random id in every chunk's header.
func (sf *File) FileID() [FileIDSize]byte { return sf.fileID }

// ReadAt reads the file's bytes at off, for readers of what was written.
func (sf *File) ReadAt(p []byte, off int64) (int, error) { return sf.f.ReadAt(p, off) }

// Chunks returns the number of chunks written, metadata included.
func (sf *File) Chunks() uint64 { return sf.index }

// Close closes the file.
func (sf *File) Close() error { return sf.f.Close() }

// Name returns the file's path.
func (sf *File) Name() string { return sf.f.Name() }
