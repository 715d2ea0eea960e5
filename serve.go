package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"tyst/api"
	"tyst/store"
)

type serveConfig struct {
	listen        string
	dataDir       string
	keyFile       string
	maxUploadMB   int64
	retentionDays int
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg serveConfig
	fs := newFlagSet("serve", "serve [--listen ADDR] [--data DIR] [--key-file F]", stderr)
	fs.StringVar(&cfg.listen, "listen", envOr("TYST_LISTEN", "127.0.0.1:8080"), "address to listen on (TYST_LISTEN)")
	fs.StringVar(&cfg.dataDir, "data", envOr("TYST_DATA_DIR", "./tyst-data"), "data directory (TYST_DATA_DIR)")
	fs.StringVar(&cfg.keyFile, "key-file", envOr("TYST_KEY_FILE", ""), "file holding the newsroom key (TYST_KEY_FILE); else PROJECT_FILES_KEY; else <data>/files.key is generated")
	maxMB, err := envInt("TYST_MAX_UPLOAD_MB", store.DefaultMaxUpload>>20)
	if err != nil {
		return err
	}
	retention, err := envInt("RECORDER_RETENTION_DAYS", int64(store.DefaultRetention/(24*time.Hour)))
	if err != nil {
		return err
	}
	fs.Int64Var(&cfg.maxUploadMB, "max-upload-mb", maxMB, "largest audio upload in MiB (TYST_MAX_UPLOAD_MB)")
	fs.IntVar(&cfg.retentionDays, "retention-days", int(retention), "days a record is kept (RECORDER_RETENTION_DAYS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.maxUploadMB < 1 {
		return &usageError{"--max-upload-mb must be at least 1"}
	}
	if cfg.retentionDays < 1 {
		return &usageError{"--retention-days must be at least 1"}
	}
	// Plaintext audio passes through memory; a core dump would put it on disk.
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return fmt.Errorf("cannot disable core dumps: %w", err)
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return errors.New("data directory (--data / TYST_DATA_DIR) cannot be created: permission denied or not a directory")
	}
	keys, src, err := store.LoadKeyring(store.KeyConfig{
		Env: os.Getenv("PROJECT_FILES_KEY"), File: cfg.keyFile,
		OldKeys: os.Getenv("PROJECT_FILES_OLD_KEYS"), DataDir: cfg.dataDir,
	})
	if err != nil {
		return err
	}
	if src == store.KeyFromDataDir {
		log.Warn("NO NEWSROOM KEY GIVEN: using a generated key stored beside the data (files.key in the data directory). " +
			"Anyone who copies the data directory can read everything. Set PROJECT_FILES_KEY or --key-file for production; see the README.")
	}
	db, err := store.Open(cfg.dataDir, store.Options{
		Keys:      keys,
		Logger:    log.With("component", "store"),
		Retention: time.Duration(cfg.retentionDays) * 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	defer db.Close()
	usage, err := db.KeyUsage(ctx)
	if err != nil {
		return err
	}
	for id, n := range usage {
		if !keys.Known(id) && n > 0 {
			log.Warn("stored items are wrapped by a newsroom key that is not configured: add it to PROJECT_FILES_OLD_KEYS", "key_id", id, "items", n)
		}
	}

	srv := &http.Server{
		Handler: api.New(api.Config{
			Records: db, Logger: log.With("component", "api"), Version: version,
			MaxUploadBytes: cfg.maxUploadMB << 20,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on --listen address: %w", errors.Unwrap(err))
	}
	log.Info("tyst serving", "addr", ln.Addr().String(), "version", version, "key_source", string(src), "key_id", keys.PrimaryID())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// envInt reads a whole number from the environment variable name.
func envInt(name string, def int64) (int64, error) {
	v := envOr(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, &usageError{name + " must be a whole number"}
	}
	return n, nil
}
