package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fernet/fernet-go"
	"golang.org/x/sys/unix"

	"tyst/store"
	"tyst/stream/client"
)

const streamSynopsis = `stream --server URL --token T [--record ID | --title TEXT] [--rate 16000] [--channels 1] [--spool-key-file F] < PCM

Streams 16-bit little-endian PCM from stdin into a record, live:
  arecord -f S16_LE -r 16000 -c 1 | tyst stream --server https://tyst.example --token "$TOKEN" --title "Interview"
Without --record it creates a record first. Audio the server has not
acknowledged waits in an encrypted buffer on disk; the client reconnects and
resumes, so a flaky link loses nothing. At the end of stdin (or on Ctrl-C) it
stores the stream and prints the stored audio as JSON on stdout`

func runStream(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("stream", streamSynopsis, stderr)
	server := fs.String("server", envOr("TYST_SERVER", ""), "the tyst server, e.g. https://tyst.example (TYST_SERVER)")
	token := fs.String("token", envOr("TYST_TOKEN", ""), "API token, a stream-scoped one suffices; prefer TYST_TOKEN, which ps does not show (TYST_TOKEN)")
	record := fs.Uint64("record", 0, "stream into this record; it must have no audio")
	title := fs.String("title", "", "create a record with this title first (when --record is not given)")
	rate := fs.Int("rate", 16000, "sample rate of the input in Hz, 8000 to 48000")
	channels := fs.Int("channels", 1, "channels of the input, 1 or 2")
	source := fs.String("source", "mic", "a name for the input, a-z 0-9 _ - (shows in debug dumps)")
	keyFile := fs.String("spool-key-file", envOr("TYST_STREAM_SPOOL_KEY_FILE", ""), "keep the buffer's key in this file (created 0600 when missing); by default the key lives only in memory (TYST_STREAM_SPOOL_KEY_FILE)")
	spoolDir := fs.String("spool-dir", envOr("TYST_STREAM_SPOOL_DIR", defaultSpoolDir()), "where the encrypted buffer lives (TYST_STREAM_SPOOL_DIR)")
	bufferMB := fs.Int64("buffer-mb", 64, "most unacknowledged audio kept, in MiB (64 MiB is 35 minutes at 16 kHz mono); when full, the oldest goes")
	finish := fs.Duration("finish-timeout", 10*time.Minute, "after stdin ends, how long to keep trying to deliver the rest")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *server == "":
		return &usageError{"--server is required"}
	case *token == "":
		return &usageError{"--token (or TYST_TOKEN) is required"}
	case *record == 0 && strings.TrimSpace(*title) == "":
		return &usageError{"give --record ID or --title TEXT"}
	case *record != 0 && *title != "":
		return &usageError{"--record and --title do not go together"}
	case *bufferMB < 1:
		return &usageError{"--buffer-mb must be at least 1"}
	}
	key, err := streamKey(*keyFile)
	if err != nil {
		return err
	}
	var id [8]byte
	rand.Read(id[:])
	dir := filepath.Join(*spoolDir, "run-"+hex.EncodeToString(id[:]))

	term := isTerminal(stderr)
	warn := func(msg string) {
		if term {
			fmt.Fprint(stderr, "\r\033[K")
		}
		fmt.Fprintln(stderr, "tyst stream:", msg)
	}
	cfg := client.Config{
		Server: *server, Token: *token, RecordID: *record, Title: *title,
		Rate: *rate, Channels: *channels, Source: *source,
		BufferDir: dir, BufferKey: key, BufferBytes: *bufferMB << 20, ShredBuffer: *keyFile != "",
		Input: stdin, Warn: warn, FinishTimeout: *finish,
	}
	if term {
		cfg.Progress = stderr
	}
	res, err := client.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if res.Dropped > 0 {
		warn(fmt.Sprintf("WARNING: %d bytes of audio were dropped while the buffer was full", res.Dropped))
	}
	out, _ := json.Marshal(struct {
		RecordID   uint64   `json:"record_id"`
		FileID     uint64   `json:"file_id"`
		SHA256     string   `json:"sha256"`
		SizeBytes  int64    `json:"size_bytes"`
		MIMEType   string   `json:"mime_type"`
		DurationMS int64    `json:"duration_ms"`
		Reconnects int      `json:"reconnects"`
		Dropped    int64    `json:"dropped_bytes"`
		Records    []uint64 `json:"records"`
	}{res.RecordID, res.Stored.FileID, res.Stored.SHA256, res.Stored.SizeBytes, res.Stored.MIMEType,
		res.Stored.DurationMS, res.Reconnects, res.Dropped, res.Records})
	_, err = fmt.Fprintln(stdout, string(out))
	return err
}

// defaultSpoolDir is the user's cache directory, else the temp directory.
func defaultSpoolDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "tyst-stream")
	}
	return filepath.Join(os.TempDir(), "tyst-stream")
}

// streamKey returns the buffer's key: from path (created 0600 with a new
// key when missing), or a new one that lives only in memory.
func streamKey(path string) (*fernet.Key, error) {
	if path == "" {
		var k fernet.Key
		return &k, k.Generate()
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		s := store.GenerateKey()
		if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
			return nil, errors.New("--spool-key-file cannot be written")
		}
		b = []byte(s)
	} else if err != nil {
		return nil, errors.New("--spool-key-file cannot be read")
	}
	k, err := fernet.DecodeKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, errors.New("--spool-key-file does not hold a Fernet key")
	}
	return k, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
