package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"tyst/adminsock"
	"tyst/api"
	"tyst/retention"
	"tyst/store"
	"tyst/web"
)

type serveConfig struct {
	listen         string
	dataDir        string
	keyFile        string
	maxUploadMB    int64
	retentionDays  int
	tlsCert        string
	tlsKey         string
	allowPlainHTTP bool
	secureCookies  bool
	clientIPHeader string
	publicHosts    string
	transfers      transferLimits
	purge          retentionSettings
	// Live streams and the debug audio dump (DESIGN §8, §9).
	resumeWindow    time.Duration
	streamsPerUser  int
	streamsPerToken int
	dumpOn          bool
	dumpPlaintext   bool
	dumpMaxAgeHours int64
	dumpMaxFiles    int64
	dumpMaxMB       int64
}

// validate checks the settings that need no I/O; errors name the setting,
// never its value.
func (c *serveConfig) validate() error {
	switch {
	case c.maxUploadMB < 1:
		return &usageError{"--max-upload-mb must be at least 1"}
	case c.retentionDays < 1:
		return &usageError{"--retention-days must be at least 1"}
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return &usageError{"--tls-cert and --tls-key go together"}
	case c.resumeWindow < time.Second:
		return &usageError{"--stream-resume-window must be at least 1s"}
	case c.streamsPerUser < 1 || c.streamsPerToken < 1:
		return &usageError{"--max-streams-per-user and --max-streams-per-token must be at least 1"}
	case c.dumpMaxAgeHours < 1 || c.dumpMaxFiles < 1 || c.dumpMaxMB < 1:
		return &usageError{"the --debug-audio-dump-max-* limits must be at least 1"}
	}
	if err := c.transfers.validate(); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(c.listen)
	if err != nil {
		return &usageError{"--listen must be host:port, e.g. 127.0.0.1:8080"}
	}
	if !isLoopback(host) && c.tlsCert == "" && !c.allowPlainHTTP {
		return &usageError{"--listen is not a loopback address: passwords and audio would cross the network in the clear. " +
			"Give --tls-cert and --tls-key, or --allow-plain-http when a TLS proxy in front of tyst terminates TLS"}
	}
	return nil
}

// isLoopback reports whether host names only this machine. An empty host
// listens on every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
	retentionDays, err := envInt("RECORDER_RETENTION_DAYS", int64(store.DefaultRetention/(24*time.Hour)))
	if err != nil {
		return err
	}
	fs.Int64Var(&cfg.maxUploadMB, "max-upload-mb", maxMB, "largest audio upload in MiB (TYST_MAX_UPLOAD_MB)")
	fs.IntVar(&cfg.retentionDays, "retention-days", int(retentionDays), "days a record is kept (RECORDER_RETENTION_DAYS)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", envOr("TYST_TLS_CERT", ""), "TLS certificate file, PEM (TYST_TLS_CERT)")
	fs.StringVar(&cfg.tlsKey, "tls-key", envOr("TYST_TLS_KEY", ""), "TLS private key file, PEM (TYST_TLS_KEY)")
	fs.BoolVar(&cfg.allowPlainHTTP, "allow-plain-http", envOr("TYST_ALLOW_PLAIN_HTTP", "") == "1", "allow a non-loopback --listen without TLS, behind a TLS proxy (TYST_ALLOW_PLAIN_HTTP=1)")
	fs.BoolVar(&cfg.secureCookies, "secure-cookies", envOr("TYST_SECURE_COOKIES", "") == "1", "mark the session cookie Secure; on by itself with --tls-cert; set it behind a TLS proxy (TYST_SECURE_COOKIES=1)")
	fs.StringVar(&cfg.clientIPHeader, "client-ip-header", envOr("TYST_CLIENT_IP_HEADER", ""), "header in which a trusted proxy passes the client address, for login limits only, e.g. X-Forwarded-For (TYST_CLIENT_IP_HEADER)")
	fs.StringVar(&cfg.publicHosts, "public-host", envOr("TYST_PUBLIC_HOST", ""), "host names the server answers to besides loopback, IP addresses and the --listen host, comma separated, e.g. the name a proxy forwards (TYST_PUBLIC_HOST)")
	if err := transferFlags(fs, &cfg.transfers); err != nil {
		return err
	}
	if err := retentionFlags(fs, &cfg.purge); err != nil {
		return err
	}
	if err := streamFlags(fs, &cfg); err != nil {
		return err
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := cfg.purge.validate(); err != nil {
		return err
	}
	// Plaintext audio passes through memory: no core dump may hold it, no
	// other process of this user may read it.
	if err := noDump(); err != nil {
		return err
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil))
	// The keys before the data directory: a malformed key leaves none behind.
	keys, src, err := loadKeys(cfg.keyFile, cfg.dataDir, true)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return errors.New("data directory (--data / TYST_DATA_DIR) cannot be created: permission denied or not a directory")
	}
	ret := time.Duration(cfg.retentionDays) * 24 * time.Hour
	db, err := store.Open(cfg.dataDir, store.Options{
		Keys:         keys,
		Logger:       log.With("component", "store"),
		Retention:    ret,
		ExportLimits: cfg.transfers.exportLimits(),
	})
	if err != nil {
		return err
	}
	defer db.Close()
	maint := newMaintainer(db, keys, cfg.dataDir, ret, log.With("component", "retention"))
	sched := retention.NewScheduler(log.With("component", "cron"))
	if err := schedulePurge(sched, cfg.purge, maint, log.With("component", "retention")); err != nil {
		return err
	}
	sched.Start()
	// Deferred after db.Close, so it runs before it.
	defer sched.Stop(context.Background())
	adminLn, err := adminsock.Listen(cfg.dataDir)
	if err != nil {
		return err
	}
	adminCtx, stopAdmin := context.WithCancel(ctx)
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		if err := adminsock.Serve(adminCtx, adminLn, db, maint, log.With("component", "admin")); err != nil {
			log.Error("admin socket stopped", "err", err)
		}
	}()
	// Deferred after db.Close, so it runs before it: admin requests in flight
	// finish and the socket file is removed, then the database closes.
	defer func() { stopAdmin(); <-adminDone }()
	if err := warnKeys(ctx, log, db, keys, src, cfg.dataDir); err != nil {
		return err
	}

	streams, dumper, err := openStreams(&cfg, db, keys, log)
	if err != nil {
		return err
	}
	if dumper != nil {
		if err := sched.Add("dump-cleanup", retention.DumpCleanupSchedule, dumpCleanup(dumper, log.With("component", "dump"))); err != nil {
			return err
		}
	}
	// Deferred after db.Close, so it runs before it: live streams end (they
	// resume after a restart) before the database closes.
	defer streams.Close()

	srv := &http.Server{
		Handler: api.New(api.Config{
			Records: db, Accounts: db, Streams: streams, Logger: log.With("component", "api"), Version: version,
			MaxUploadBytes: cfg.maxUploadMB << 20, SecureCookies: cfg.tlsCert != "" || cfg.secureCookies,
			ClientIPHeader: cfg.clientIPHeader, HSTS: cfg.tlsCert != "",
			Hosts:            append(strings.Split(cfg.publicHosts, ","), listenHost(cfg.listen)),
			WriteIdleTimeout: cfg.transfers.writeIdle, UploadMinRate: cfg.transfers.uploadMinRate, UploadGrace: cfg.transfers.uploadGrace,
			MaxDownloads: cfg.transfers.maxDownloads, MaxDownloadsPerUser: cfg.transfers.maxDownloadsPerUser,
			MaxUploads: cfg.transfers.maxUploads, MaxUploadsPerUser: cfg.transfers.maxUploadsPerUser,
			MaxExports: cfg.transfers.maxExports, MaxExportsPerUser: cfg.transfers.maxExportsPerUser,
			Status: statusFunc(cfg.purge, ret, sched, maint, keys, src, cfg.dataDir, dumpStatus(dumper, cfg.dumpPlaintext)),
			UI:     web.Handler(web.Config{MaxUploadBytes: cfg.maxUploadMB << 20}),
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          stdlog.New(httpErrorLog{log.With("component", "http")}, "", 0),
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on --listen address: %w", errors.Unwrap(err))
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	log.Info("tyst serving", "addr", ln.Addr().String(), "scheme", scheme, "version", version, "key_source", string(src), "key_id", keys.PrimaryID())
	if err := announceSetup(ctx, db, scheme+"://"+ln.Addr().String(), stderr); err != nil {
		ln.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.tlsCert != "" {
			errc <- srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
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

// announceSetup prints the one-time setup token while no account exists.
// It goes to stderr as plain text, not into the structured log: it is a
// secret, valid until the first admin is created.
func announceSetup(ctx context.Context, db *store.DB, base string, stderr io.Writer) error {
	has, err := db.HasUsers(ctx)
	if err != nil || has {
		return err
	}
	token, err := db.NewSetupToken(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\ntyst: no accounts yet. Create the first admin with this one-time setup token:\n"+
		"  in a browser: %s/#/setup/%s\n"+
		"  or: curl -H 'Content-Type: application/json' -d '{\"token\":\"%s\",\"username\":\"admin\",\"password\":\"…\"}' %s/api/v1/setup\n"+
		"  or offline: tyst user add --data DIR --username admin --role admin --password-stdin\n\n",
		base, token, token, base)
	return nil
}

// httpErrorLog takes net/http's own error lines, which name client
// addresses ("TLS handshake error from 203.0.113.5:40590: …"), and logs
// only what kind of error it was.
type httpErrorLog struct{ log *slog.Logger }

func (h httpErrorLog) Write(p []byte) (int, error) {
	kind := "http server error"
	switch {
	case bytes.Contains(p, []byte("TLS handshake error")):
		kind = "tls handshake failed"
	case bytes.Contains(p, []byte("panic")):
		kind = "http handler panic"
	}
	h.log.Warn(kind)
	return len(p), nil
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
