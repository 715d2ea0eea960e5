package main

import (
	"context"
	"flag"
	"log/slog"
	"path/filepath"
	"time"

	"tyst/api"
	"tyst/store"
	"tyst/stream"
	"tyst/stream/dump"
)

// streamFlags registers the settings of live streams and the debug audio
// dump (DESIGN §9: the ECHOPANEL_ names are the seed's).
func streamFlags(fs *flag.FlagSet, cfg *serveConfig) error {
	window, err := time.ParseDuration(envOr("TYST_STREAM_RESUME_WINDOW", stream.DefaultResumeWindow.String()))
	if err != nil {
		return &usageError{"TYST_STREAM_RESUME_WINDOW must be a duration such as 10m"}
	}
	age, err := envInt("ECHOPANEL_DEBUG_AUDIO_DUMP_MAX_AGE_HOURS", int64(dump.DefaultMaxAge/time.Hour))
	if err != nil {
		return err
	}
	files, err := envInt("ECHOPANEL_DEBUG_AUDIO_DUMP_MAX_FILES", dump.DefaultMaxFiles)
	if err != nil {
		return err
	}
	mb, err := envInt("ECHOPANEL_DEBUG_AUDIO_DUMP_MAX_MB", dump.DefaultMaxBytes>>20)
	if err != nil {
		return err
	}
	perUser, err := envInt("TYST_MAX_STREAMS_PER_USER", stream.DefaultMaxStreamsPerUser)
	if err != nil {
		return err
	}
	perToken, err := envInt("TYST_MAX_STREAMS_PER_TOKEN", stream.DefaultMaxStreamsPerToken)
	if err != nil {
		return err
	}
	fs.DurationVar(&cfg.resumeWindow, "stream-resume-window", window, "how long a dropped live stream stays resumable before what it holds is stored (TYST_STREAM_RESUME_WINDOW)")
	fs.IntVar(&cfg.streamsPerUser, "max-streams-per-user", int(perUser), "live streams an account holds at once, live and resumable, all its tokens and sessions together; more starts are refused with too_many_streams (TYST_MAX_STREAMS_PER_USER)")
	fs.IntVar(&cfg.streamsPerToken, "max-streams-per-token", int(perToken), "live streams one API token holds at once, live and resumable; more starts are refused with too_many_streams (TYST_MAX_STREAMS_PER_TOKEN)")
	fs.BoolVar(&cfg.dumpOn, "debug-audio-dump", envOr("ECHOPANEL_DEBUG_AUDIO_DUMP", "") == "1", "also write every stream's audio to <data>/debug-audio, encrypted, for troubleshooting (ECHOPANEL_DEBUG_AUDIO_DUMP=1)")
	fs.BoolVar(&cfg.dumpPlaintext, "debug-audio-dump-plaintext", envOr("ECHOPANEL_DEBUG_AUDIO_DUMP_PLAINTEXT", "") == "1", "write the debug dump unencrypted: raw PCM on disk (ECHOPANEL_DEBUG_AUDIO_DUMP_PLAINTEXT=1)")
	fs.Int64Var(&cfg.dumpMaxAgeHours, "debug-audio-dump-max-age-hours", age, "remove debug dumps older than this (ECHOPANEL_DEBUG_AUDIO_DUMP_MAX_AGE_HOURS)")
	fs.Int64Var(&cfg.dumpMaxFiles, "debug-audio-dump-max-files", files, "keep at most this many debug dumps (ECHOPANEL_DEBUG_AUDIO_DUMP_MAX_FILES)")
	fs.Int64Var(&cfg.dumpMaxMB, "debug-audio-dump-max-mb", mb, "keep at most this many MiB of debug dumps (ECHOPANEL_DEBUG_AUDIO_DUMP_MAX_MB)")
	return nil
}

// openStreams opens the live-stream server, told of every record the
// store destroys or purges, with the debug dump when asked
// for (nil otherwise), whose cleanup the caller schedules.
func openStreams(cfg *serveConfig, db *store.DB, keys *store.Keyring, log *slog.Logger) (*stream.Server, *dump.Dumper, error) {
	var dumper *dump.Dumper
	if cfg.dumpOn {
		var err error
		dumper, err = dump.New(dump.Config{
			Dir: filepath.Join(cfg.dataDir, dump.DirName), Plaintext: cfg.dumpPlaintext, Key: keys.Primary(),
			Logger: log.With("component", "dump"), MaxAge: time.Duration(cfg.dumpMaxAgeHours) * time.Hour,
			MaxFiles: int(cfg.dumpMaxFiles), MaxBytes: cfg.dumpMaxMB << 20,
		})
		if err != nil {
			return nil, nil, err
		}
		msg := "DEBUG AUDIO DUMP IS ON: every stream's audio is also written, encrypted, to debug-audio in the data directory"
		if cfg.dumpPlaintext {
			msg = "DEBUG AUDIO DUMP IS ON, UNENCRYPTED: every stream's audio is also written as plain PCM to debug-audio in the data directory"
		}
		log.Warn(msg)
	}
	// A crash between a destroy and the erasure of its record's dumps
	// leaves them: they go before any stream starts.
	if n, err := dump.EraseGone(filepath.Join(cfg.dataDir, dump.DirName), keys.All(), db.ForEachGone); err != nil {
		log.Warn("debug dumps of destroyed records not erased", "erased", n, "err", err.Error())
	} else if n > 0 {
		log.Info("debug dumps of destroyed records found at start and erased", "erased", n)
	}
	srv, err := stream.Open(stream.Config{
		Store: db, Keys: keys, DataDir: cfg.dataDir, Logger: log.With("component", "stream"),
		Dumper: dumper, ResumeWindow: cfg.resumeWindow,
		MaxStreamsPerUser: cfg.streamsPerUser, MaxStreamsPerToken: cfg.streamsPerToken,
	})
	if err != nil {
		return nil, nil, err
	}
	// A destroy or purge ends the record's stream and erases its spool
	// and dumps; a removal of audio erases the record's dumps.
	db.OnRecordGone(srv.RecordGone)
	db.OnAudioRemoved(srv.AudioRemoved)
	return srv, dumper, nil
}

// dumpCleanup is the scheduled cleanup of the debug dump (every 10 min).
func dumpCleanup(d *dump.Dumper, log *slog.Logger) func(ctx context.Context) {
	return func(ctx context.Context) {
		if _, err := d.Cleanup(time.Now()); err != nil {
			log.Warn("debug dump cleanup incomplete", "err", err.Error())
		}
	}
}

// dumpStatus reads the debug dump's state for GET /status.
func dumpStatus(d *dump.Dumper, plaintext bool) func() api.DumpStatus {
	return func() api.DumpStatus {
		if d == nil {
			return api.DumpStatus{}
		}
		on, files, bytes := d.Status()
		return api.DumpStatus{Enabled: on, Plaintext: on && plaintext, Files: files, Bytes: bytes}
	}
}
