package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"tyst/adminsock"
	"tyst/store"
	"tyst/stream/dump"
)

// maintFlags are the flags every maintenance command shares.
type maintFlags struct {
	dataDir string
	keyFile string
	// retention is the server's retention when the command opens the
	// database itself (purge's --retention-days overrides it).
	retentionDays int64
}

func (m *maintFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.dataDir, "data", envOr("TYST_DATA_DIR", "./tyst-data"), "data directory (TYST_DATA_DIR)")
	fs.StringVar(&m.keyFile, "key-file", envOr("TYST_KEY_FILE", ""), "file holding the newsroom key (TYST_KEY_FILE), when no server runs; else PROJECT_FILES_KEY; else <data>/files.key")
}

// runMaint runs a long operation: through the admin socket of a running
// server, else on the database opened here. It prints the result as JSON
// on stdout, and progress on stderr when stderr is a terminal.
func runMaint(ctx context.Context, f maintFlags, req adminsock.Request, stdout, stderr io.Writer,
	local func(ctx context.Context, m *maintainer, progress func(done, total int)) (any, error)) (json.RawMessage, error) {
	progress := progressPrinter(req.Op, stderr)
	resp, err := adminsock.CallProgress(f.dataDir, req, progress)
	var result json.RawMessage
	switch {
	case errors.Is(err, adminsock.ErrNoServer):
		ret := time.Duration(f.retentionDays) * 24 * time.Hour
		db, keys, err := openOfflineWith(f.dataDir, f.keyFile, false, stderr, ret)
		if err != nil {
			return nil, err
		}
		out, err := local(ctx, newMaintainer(db, keys, f.dataDir, ret, nil), progress)
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("database cannot be closed: %w", cerr)
		}
		if err != nil {
			return nil, err
		}
		if result, err = json.Marshal(out); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		result = resp.Result
	}
	if progress != nil {
		fmt.Fprintln(stderr)
	}
	var pretty any
	if err := json.Unmarshal(result, &pretty); err != nil {
		return nil, errors.New("the result is not JSON")
	}
	out, _ := json.MarshalIndent(pretty, "", "  ")
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return result, err
}

// decodeResult decodes what runMaint returns (the server's answer or the
// local run's) into the operation's result type.
func decodeResult[T any](raw json.RawMessage, err error) (T, error) {
	var v T
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("the result cannot be read: %w", err)
	}
	return v, nil
}

// progressPrinter returns a progress callback that redraws one line on
// stderr when stderr is a terminal, or nil (quiet under cron).
func progressPrinter(op string, stderr io.Writer) func(done, total int) {
	f, ok := stderr.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	last := time.Time{}
	return func(done, total int) {
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || done == total {
			last = now
			fmt.Fprintf(stderr, "\r%s: %d of %d", op, done, total)
		}
	}
}

// openOffline opens the data directory's database in this process,
// because no server answered on the admin socket. create says whether a
// missing data directory may be created (only user add may set one up).
func openOffline(dataDir, keyFile string, create bool, stderr io.Writer) (*store.DB, error) {
	db, _, err := openOfflineWith(dataDir, keyFile, create, stderr, 0)
	return db, err
}

// openOfflineWith is openOffline with the retention the records are
// judged by (store.DefaultRetention when zero).
func openOfflineWith(dataDir, keyFile string, create bool, stderr io.Writer, retention time.Duration) (*store.DB, *store.Keyring, error) {
	if st, err := os.Stat(dataDir); !create && (err != nil || !st.IsDir()) {
		return nil, nil, errors.New("data directory (--data / TYST_DATA_DIR) does not exist or is not a directory")
	}
	// The keys before a new directory: a malformed key leaves none behind.
	keys, src, err := loadKeys(keyFile, dataDir, false) // a key made here would not be the server's
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, errors.New("data directory (--data / TYST_DATA_DIR) cannot be created: permission denied or not a directory")
	}
	if src == store.KeyFromDataDir {
		fmt.Fprintln(stderr, "warning: no newsroom key given (PROJECT_FILES_KEY or --key-file): using the generated files.key in the data directory, as `tyst serve` does")
	}
	db, err := store.Open(dataDir, store.Options{Keys: keys, LockTimeout: offlineLockTimeout, Retention: retention})
	if errors.Is(err, store.ErrLocked) {
		return nil, nil, errors.New("the database is held by another tyst process, but no server answered on its admin socket (admin.sock in the data directory): if a server is starting or stopping, try again")
	}
	if err != nil {
		return nil, nil, err
	}
	// An offline purge takes the records' debug dumps with them, as a
	// server does (no stream runs while this process holds the database).
	db.OnRecordGone(func(id uint64) {
		if _, err := dump.EraseRecords(filepath.Join(dataDir, dump.DirName), keys.All(), []uint64{id}, nil); err != nil {
			fmt.Fprintln(stderr, "warning: debug dumps of a purged record not erased; the next start erases them:", err)
		}
	})
	return db, keys, nil
}
