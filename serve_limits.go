package main

import (
	"flag"
	"net"
	"time"

	"tyst/api"
)

// transferLimits are the settings that bound what one client can hold.
type transferLimits struct {
	writeIdle                         time.Duration
	uploadMinRate                     int64
	uploadGrace                       time.Duration
	maxDownloads, maxDownloadsPerUser int
	maxUploads, maxUploadsPerUser     int
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
	}
	for _, f := range ints {
		v, err := envInt(f.env, f.def)
		if err != nil {
			return err
		}
		fs.IntVar(f.p, f.flag, int(v), f.usage)
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
