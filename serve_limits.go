package main

import (
	"flag"
	"net"
	"time"

	"tyst/api"
	"tyst/store"
)

// transferLimits are the settings that bound what one client can hold.
type transferLimits struct {
	writeIdle                         time.Duration
	uploadMinRate                     int64
	uploadGrace                       time.Duration
	maxDownloads, maxDownloadsPerUser int
	maxUploads, maxUploadsPerUser     int
	// Exports at once, an account's packages on the server, the free
	// space an export leaves (adversarial review M1).
	maxExports, maxExportsPerUser int
	exportQuotaMB                 int64
	exportReserveMB               int64
	exportReservePercent          int
}

// exportLimits are the store's limits of export packages.
func (t *transferLimits) exportLimits() *store.ExportLimits {
	return &store.ExportLimits{PerUser: t.exportQuotaMB << 20, ReserveBytes: t.exportReserveMB << 20, ReservePercent: t.exportReservePercent}
}

// validate names the first setting out of range, never its value.
func (t *transferLimits) validate() error {
	switch {
	case t.writeIdle <= 0, t.uploadGrace <= 0:
		return &usageError{"--write-idle-timeout and --upload-grace must be positive durations, e.g. 30s"}
	case t.uploadMinRate < 1:
		return &usageError{"--upload-min-rate must be at least 1 (bytes a second)"}
	case t.maxDownloads < 1, t.maxDownloadsPerUser < 1, t.maxUploads < 1, t.maxUploadsPerUser < 1:
		return &usageError{"--max-downloads, --max-downloads-per-user, --max-uploads and --max-uploads-per-user must be at least 1"}
	case t.maxExports < 1, t.maxExportsPerUser < 1:
		return &usageError{"--max-exports and --max-exports-per-user must be at least 1"}
	case t.exportQuotaMB < 1:
		return &usageError{"--export-quota-mb must be at least 1"}
	case t.exportReserveMB < 0:
		return &usageError{"--export-reserve-mb must be 0 or more"}
	case t.exportReservePercent < 0 || t.exportReservePercent > 50:
		return &usageError{"--export-reserve-percent must be from 0 to 50"}
	}
	return nil
}

// transferFlags registers the flags that bound what one client can hold
// (downloads it does not read, uploads it trickles, transfers at once).
func transferFlags(fs *flag.FlagSet, t *transferLimits) error {
	ints := []struct {
		p         *int
		flag, env string
		def       int64
		usage     string
	}{
		{&t.maxDownloads, "max-downloads", "TYST_MAX_DOWNLOADS", api.DefaultMaxDownloads, "audio downloads in progress in all; more answer 503 (TYST_MAX_DOWNLOADS)"},
		{&t.maxDownloadsPerUser, "max-downloads-per-user", "TYST_MAX_DOWNLOADS_PER_USER", api.DefaultMaxDownloadsPerUser, "audio downloads in progress per account; more answer 429 (TYST_MAX_DOWNLOADS_PER_USER)"},
		{&t.maxUploads, "max-uploads", "TYST_MAX_UPLOADS", api.DefaultMaxUploads, "audio uploads in progress in all; more answer 503 (TYST_MAX_UPLOADS)"},
		{&t.maxUploadsPerUser, "max-uploads-per-user", "TYST_MAX_UPLOADS_PER_USER", api.DefaultMaxUploadsPerUser, "audio uploads in progress per account; more answer 429 (TYST_MAX_UPLOADS_PER_USER)"},
		{&t.maxExports, "max-exports", "TYST_MAX_EXPORTS", api.DefaultMaxExports, "export packages being built in all; more answer 503 (TYST_MAX_EXPORTS)"},
		{&t.maxExportsPerUser, "max-exports-per-user", "TYST_MAX_EXPORTS_PER_USER", api.DefaultMaxExportsPerUser, "export packages being built per account; more answer 429 (TYST_MAX_EXPORTS_PER_USER)"},
		{&t.exportReservePercent, "export-reserve-percent", "TYST_EXPORT_RESERVE_PERCENT", store.DefaultExportReservePercent, "an export must leave this % of the data directory's file system free, and --export-reserve-mb; else 507 (TYST_EXPORT_RESERVE_PERCENT)"},
	}
	for _, f := range ints {
		v, err := envInt(f.env, f.def)
		if err != nil {
			return err
		}
		fs.IntVar(f.p, f.flag, int(v), f.usage)
	}
	for _, f := range []struct {
		p         *int64
		flag, env string
		def       int64
		usage     string
	}{
		{&t.exportQuotaMB, "export-quota-mb", "TYST_EXPORT_QUOTA_MB", store.DefaultExportQuota >> 20, "MiB of export packages one account may hold on the server; more answer 507 quota_exceeded (TYST_EXPORT_QUOTA_MB)"},
		{&t.exportReserveMB, "export-reserve-mb", "TYST_EXPORT_RESERVE_MB", store.DefaultExportReserve >> 20, "MiB an export must leave free on the data directory's file system, for uploads and live streams; else 507 (TYST_EXPORT_RESERVE_MB)"},
	} {
		v, err := envInt(f.env, f.def)
		if err != nil {
			return err
		}
		fs.Int64Var(f.p, f.flag, v, f.usage)
	}
	rate, err := envInt("TYST_UPLOAD_MIN_RATE", api.DefaultUploadMinRate)
	if err != nil {
		return err
	}
	fs.Int64Var(&t.uploadMinRate, "upload-min-rate", rate, "least average upload rate in bytes a second once --upload-grace has passed; slower uploads end with 400 (TYST_UPLOAD_MIN_RATE)")
	grace, err := envDuration("TYST_UPLOAD_GRACE", api.DefaultUploadGrace)
	if err != nil {
		return err
	}
	fs.DurationVar(&t.uploadGrace, "upload-grace", grace, "how long an upload may run before --upload-min-rate applies (TYST_UPLOAD_GRACE)")
	idle, err := envDuration("TYST_WRITE_IDLE_TIMEOUT", api.DefaultWriteIdleTimeout)
	if err != nil {
		return err
	}
	fs.DurationVar(&t.writeIdle, "write-idle-timeout", idle, "cut off a response, such as a download, that the client does not read for this long (TYST_WRITE_IDLE_TIMEOUT)")
	return nil
}

// listenHost is the host part of a --listen address, for the Host check.
func listenHost(listen string) string {
	host, _, _ := net.SplitHostPort(listen)
	return host
}

// envDuration reads a duration such as 30s or 2m from the environment
// variable name.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := envOr(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, &usageError{name + " must be a duration such as 30s or 2m"}
	}
	return d, nil
}
