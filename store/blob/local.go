package blob

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tyst/internal/shred"
)

// LocalOptions configure a Local store.
type LocalOptions struct {
	// Names is the pattern every name must match, on top of the rules of
	// every store (see Store); required. Files whose names do not match are
	// not the store's: List skips them and nothing removes them.
	Names *regexp.Regexp
	// FanOut puts each object in a subdirectory named after the first two
	// characters of its name (blobs/ab/<name>.bin) so no directory grows
	// too large; without it objects lie in the root (exports/<name>.zip.enc).
	FanOut bool
	// Ext is appended to a name to make its file name, e.g. ".bin" or
	// ".zip.enc"; required.
	Ext string
	// WrapWriter, if set, wraps the temp file of every write; tests inject
	// a failing disk with it.
	WrapWriter func(io.Writer) io.Writer
}

// Local is a Store in a directory of the local disk:
//
//	<root>/tmp/up-<random>.tmp   writes in progress (0600)
//	<root>/ab/<name><ext>        objects, with FanOut (0600, directories 0700)
//	<root>/<name><ext>           objects, without
//
// A write goes to a temp file, which Commit syncs, closes and renames into
// place before it syncs the directories, so a commit survives a power cut
// and a crash leaves at most a temp file, which CleanTemp removes. Nothing
// below the root is reached through a symlink.
type Local struct {
	root string // absolute
	opts LocalOptions
}

var _ Store = (*Local)(nil)

const tmpDir = "tmp"

var (
	extPattern = regexp.MustCompile(`^(\.[0-9a-z]+)+$`)
	// tempName matches the temp files of this package and of the blob
	// directory before it, so CleanTemp removes the leftovers of both.
	tempName = regexp.MustCompile(`^up-[0-9]+\.tmp$`)
)

// NewLocal opens the store in directory root, creating root and its temp
// directory (0700) when absent, and proves it writable with a probe file.
// An error names the setting at fault, never a path.
func NewLocal(root string, opts LocalOptions) (*Local, error) {
	switch {
	case opts.Names == nil:
		return nil, errors.New("blob: LocalOptions.Names is required")
	case !extPattern.MatchString(opts.Ext):
		return nil, errors.New("blob: LocalOptions.Ext must be like .bin or .zip.enc")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob: root directory: %w", stripPath(err))
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("blob: root directory is not usable: %w", stripPath(err))
	}
	l := &Local{root: abs, opts: opts}
	// Prove writability now, not at the first upload; this also makes the
	// temp directory and refuses one that is a symlink.
	w, err := l.Create()
	if err != nil {
		return nil, fmt.Errorf("blob: root directory is not usable: %w", err)
	}
	if err := w.Abort(); err != nil {
		return nil, fmt.Errorf("blob: root directory is not usable: %w", err)
	}
	return l, nil
}

// fileName returns the directory (relative to the root, "" for the root
// itself) and the file name of object name.
func (l *Local) fileName(name string) (dir, file string) {
	if l.opts.FanOut {
		return name[:2], name + l.opts.Ext
	}
	return "", name + l.opts.Ext
}

// checkName is checkName with this store's pattern; fan-out names need two
// characters for their directory.
func (l *Local) checkName(name string) error {
	if l.opts.FanOut && len(name) < 2 {
		return ErrBadName
	}
	return checkName(l.opts.Names, name)
}

// openObjectDir opens the root and the directory of object name. Close
// both (they may be one descriptor: closeDirs does it right).
func (l *Local) openObjectDir(name string, create bool) (root, dir int, err error) {
	root, err = openRoot(l.root)
	if err != nil {
		return -1, -1, err
	}
	sub, _ := l.fileName(name)
	if sub == "" {
		return root, root, nil
	}
	dir, err = openDirAt(root, sub, create)
	if err != nil {
		unix.Close(root)
		return -1, -1, err
	}
	return root, dir, nil
}

func closeDirs(root, dir int) {
	if dir != root {
		unix.Close(dir)
	}
	unix.Close(root)
}

// Create implements Store.
func (l *Local) Create() (Writer, error) {
	root, err := openRoot(l.root)
	if err != nil {
		return nil, fmt.Errorf("blob: create: %w", err)
	}
	defer unix.Close(root)
	tmp, err := openDirAt(root, tmpDir, true)
	if err != nil {
		return nil, fmt.Errorf("blob: create: temp directory: %w", err)
	}
	for range 100 {
		name := randomTempName()
		fd, err := retry(func() (int, error) {
			return unix.Openat(tmp, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		})
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			unix.Close(tmp)
			return nil, fmt.Errorf("blob: create: %w", err)
		}
		w := &localWriter{l: l, tmp: tmp, name: name, f: os.NewFile(uintptr(fd), "temp")}
		w.w = w.f
		if l.opts.WrapWriter != nil {
			w.w = l.opts.WrapWriter(w.f)
		}
		return w, nil
	}
	unix.Close(tmp)
	return nil, errors.New("blob: create: no free temp name")
}

func randomTempName() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return fmt.Sprintf("up-%d.tmp", n)
}

// Open implements Store. A symlink, directory or other non-regular file
// under the name is not the store's: ErrNotExist.
func (l *Local) Open(name string) (Object, error) {
	if err := l.checkName(name); err != nil {
		return nil, err
	}
	root, dir, err := l.openObjectDir(name, false)
	if notThere(err) {
		return nil, ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	defer closeDirs(root, dir)
	_, file := l.fileName(name)
	// O_NONBLOCK: a FIFO planted under the name must not hang the open.
	fd, err := retry(func() (int, error) {
		return unix.Openat(dir, file, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	})
	if notThere(err) {
		return nil, ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || !isRegular(&st) {
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("blob: open: %w", err)
		}
		return nil, ErrNotExist
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	return &localObject{f: os.NewFile(uintptr(fd), "object"), size: st.Size}, nil
}

// Stat implements Store.
func (l *Local) Stat(name string) (Info, error) {
	if err := l.checkName(name); err != nil {
		return Info{}, err
	}
	root, dir, err := l.openObjectDir(name, false)
	if notThere(err) {
		return Info{}, ErrNotExist
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat: %w", err)
	}
	defer closeDirs(root, dir)
	_, file := l.fileName(name)
	st, err := statAt(dir, file)
	if notThere(err) || err == nil && !isRegular(&st) {
		return Info{}, ErrNotExist
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat: %w", err)
	}
	return Info{Name: name, Size: st.Size, ModTime: modTime(&st)}, nil
}

// List implements Store. It reads the directories a batch of names at a
// time.
func (l *Local) List(fn func(Info) error) error {
	root, err := openRoot(l.root)
	if err != nil {
		return fmt.Errorf("blob: list: %w", err)
	}
	defer unix.Close(root)
	if !l.opts.FanOut {
		return l.listDir(root, "", fn)
	}
	return eachName(root, func(sub string) error {
		if len(sub) != 2 || !nameChars.MatchString(sub) {
			return nil // tmp, or not the store's
		}
		dir, err := openDirAt(root, sub, false)
		if notThere(err) {
			return nil // a symlink, a file, or gone meanwhile
		}
		if err != nil {
			return fmt.Errorf("blob: list: %w", err)
		}
		defer unix.Close(dir)
		return l.listDir(dir, sub, fn)
	})
}

// listDir calls fn for the objects in dir, whose names start with prefix.
func (l *Local) listDir(dir int, prefix string, fn func(Info) error) error {
	return eachName(dir, func(file string) error {
		name, ok := strings.CutSuffix(file, l.opts.Ext)
		if !ok || l.checkName(name) != nil || !strings.HasPrefix(name, prefix) {
			return nil
		}
		st, err := statAt(dir, file)
		if notThere(err) || err == nil && !isRegular(&st) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("blob: list: %w", err)
		}
		return fn(Info{Name: name, Size: st.Size, ModTime: modTime(&st)})
	})
}

// Delete implements Store: it overwrites the file with random bytes, syncs
// it, and removes it. Something under the name that is not a regular file
// is not the store's and is left alone.
func (l *Local) Delete(name string) error {
	if err := l.checkName(name); err != nil {
		return err
	}
	root, dir, err := l.openObjectDir(name, false)
	if notThere(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	defer closeDirs(root, dir)
	_, file := l.fileName(name)
	fd, err := retry(func() (int, error) {
		return unix.Openat(dir, file, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	})
	if notThere(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || !isRegular(&st) {
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("blob: delete: %w", err)
		}
		return nil
	}
	unix.SetNonblock(fd, false)
	f := os.NewFile(uintptr(fd), "object")
	// Best effort: the record key is gone by now anyway (crypto-erasure);
	// the overwrite only shrinks what a disk keeps of the ciphertext.
	shred.Data(f, st.Size)
	f.Sync()
	f.Close()
	if err := unix.Unlinkat(dir, file, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("blob: delete: %w", err)
	}
	if err := unix.Fsync(dir); err != nil {
		return fmt.Errorf("blob: delete: sync directory: %w", err)
	}
	return nil
}

// CleanTemp implements Store. It removes only regular files named like
// this package's temp files.
func (l *Local) CleanTemp(olderThan time.Time) (int, error) {
	root, err := openRoot(l.root)
	if err != nil {
		return 0, fmt.Errorf("blob: clean temp: %w", err)
	}
	defer unix.Close(root)
	tmp, err := openDirAt(root, tmpDir, false)
	if err != nil {
		return 0, fmt.Errorf("blob: clean temp: %w", err)
	}
	defer unix.Close(tmp)
	n := 0
	err = eachName(tmp, func(file string) error {
		if !tempName.MatchString(file) {
			return nil
		}
		st, err := statAt(tmp, file)
		if err != nil || !isRegular(&st) || !modTime(&st).Before(olderThan) {
			return nil
		}
		if err := unix.Unlinkat(tmp, file, 0); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("blob: clean temp: %w", err)
		}
		n++
		return nil
	})
	return n, err
}
