package stream_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store/fstream"
	"tyst/stream"
	"tyst/stream/dump"
	"tyst/stream/proto"
)

// canaryPCM is PCM that spells canaries: a plaintext byte of it on disk or
// in a log is found by search.
func canaryPCM(n int) []byte {
	return bytes.Repeat([]byte("PCM-CANARY-0123"), n/15+1)[:n/2*2]
}

// searchTree fails if any file under dir holds any of needles.
func searchTree(tb testing.TB, dir string, needles ...string) {
	tb.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				tb.Errorf("%q found in %s", n, strings.TrimPrefix(p, dir))
			}
		}
		return nil
	})
}

// TestStream_Canaries streams with canaries in the title, the source, the
// token and the audio (dump on, encrypted), then searches every log line
// and every byte and file name under the data directory: none may appear.
// Nor may any exact size or offset of the audio in a log line (stored,
// resumed, found after a restart): logs name 1 MiB buckets, as the padding
// of blobs on disk does.
func TestStream_Canaries(t *testing.T) {
	var d *dump.Dumper
	e := mustEnv(t, func(c *stream.Config) {})
	var err error
	d, err = dump.New(dump.Config{Dir: filepath.Join(e.dir, dump.DirName), Key: e.keys.Primary(), Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Dumper = d
	e.restart(t)

	id := e.mustRecord(t, "TITLE-CANARY interview")
	pcm := canaryPCM(96000)
	c := e.dial(t, id)
	c.send(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"src-canary"}`)
	ready := expect[proto.Ready](c)
	sizes := map[int64]bool{int64(len(pcm)): true, int64(len(pcm)) + 44: true, 40000: true}
	c.sendPCM(pcm[:40000], 640)
	sizes[expect[proto.Ack](c).Offset] = true
	c.nc.Close()
	c = e.dial(t, id)
	r := c.resume(ready.StreamID)
	sizes[r.Offset] = true
	c.sendPCM(pcm[r.Offset:], 640)
	c.send(`{"type":"stop"}`)
	e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
	c.expectClose(proto.CloseNormal, "")

	// Also a spool left mid-stream, and a dump still open.
	id2 := e.mustRecord(t, "TITLE-CANARY two")
	c2 := e.dial(t, id2)
	c2.send(`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"src-canary"}`)
	expect[proto.Ready](c2)
	c2.sendPCM(pcm, 640)
	for a := int64(0); a < int64(len(pcm)); {
		a = expect[proto.Ack](c2).Offset
		sizes[a] = true
	}
	// Dropped, found again after a restart.
	c2.nc.Close()
	waitFor(t, 5*time.Second, func() bool { return e.streams.Live() == 0 })
	e.restart(t)
	if !strings.Contains(e.log.String(), "stream found after restart") {
		t.Fatal("the restart did not log the spool it found")
	}
	logNamesNoSize(t, e.log.String(), sizes)

	needles := []string{"TITLE-CANARY", "src-canary", "PCM-CANARY", e.token, e.dir}
	for _, n := range needles {
		if strings.Contains(e.log.String(), n) {
			t.Errorf("the log holds %q", n)
		}
	}
	searchTree(t, e.dir, needles[:4]...)
	searchNames(t, e.dir, needles[:4]...)

	// The dump is there, encrypted, and holds the first stream's PCM.
	names, _ := filepath.Glob(filepath.Join(e.dir, dump.DirName, ready.StreamID+"_"+d.SourceTag("src-canary")+"_*.pcm"))
	if len(names) != 1 {
		t.Fatalf("dump files of the first stream: %v", names)
	}
	f, _ := os.Open(names[0])
	defer f.Close()
	got, err := io.ReadAll(fstream.NewReader(f, []*fernet.Key{e.keys.Primary()}))
	if err != nil || !bytes.Equal(got, pcm) {
		t.Fatalf("the dump decrypts to %d bytes (%v), want the %d streamed", len(got), err, len(pcm))
	}
}

// searchNames fails if the name of any file or directory under dir holds
// any of needles.
func searchNames(tb testing.TB, dir string, needles ...string) {
	tb.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, n := range needles {
			if strings.Contains(d.Name(), n) {
				tb.Errorf("%q found in the name %s", n, strings.TrimPrefix(p, dir))
			}
		}
		return nil
	})
}

// logNamesNoSize fails if a log line (its time aside) holds any of sizes:
// as a number, or as a run of digits in a string.
func logNamesNoSize(tb testing.TB, log string, sizes map[int64]bool) {
	tb.Helper()
	digits := regexp.MustCompile(`[0-9]+`)
	var walk func(v any) []int64
	walk = func(v any) (found []int64) {
		switch v := v.(type) {
		case float64:
			if sizes[int64(v)] && v == float64(int64(v)) {
				found = append(found, int64(v))
			}
		case string:
			for _, d := range digits.FindAllString(v, -1) {
				if n, err := strconv.ParseInt(d, 10, 64); err == nil && sizes[n] {
					found = append(found, n)
				}
			}
		case map[string]any:
			for k, x := range v {
				if k != "time" {
					found = append(found, walk(x)...)
				}
			}
		case []any:
			for _, x := range v {
				found = append(found, walk(x)...)
			}
		}
		return found
	}
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line is not JSON: %q", line)
		}
		lines++
		if found := walk(m); len(found) > 0 {
			tb.Errorf("a log line names the audio size or offset %v: %s", found, line)
		}
	}
	if lines == 0 {
		tb.Fatal("nothing was logged")
	}
}

// TestStream_PlaintextDump: with plaintext asked for, the dump is raw PCM
// (and that is the only plaintext under the data directory); its name
// holds the source's tag, as an encrypted dump's does.
func TestStream_PlaintextDump(t *testing.T) {
	e := mustEnv(t)
	d, err := dump.New(dump.Config{Dir: filepath.Join(e.dir, dump.DirName), Plaintext: true, Key: e.keys.Primary(), Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Dumper = d
	e.restart(t)
	id := e.mustRecord(t, "plain")
	pcm := canaryPCM(32000)
	c := e.dial(t, id)
	ready := c.start(16000, 1)
	c.sendPCM(pcm, 640)
	c.send(`{"type":"stop"}`)
	expect[proto.Stored](c)
	names, _ := filepath.Glob(filepath.Join(e.dir, dump.DirName, ready.StreamID+"_"+d.SourceTag("mic")+"_*.pcm"))
	if len(names) != 1 {
		t.Fatalf("dump files: %v", names)
	}
	if b, _ := os.ReadFile(names[0]); !bytes.Equal(b, pcm) {
		t.Fatalf("plaintext dump holds %d bytes, want the %d streamed", len(b), len(pcm))
	}
	os.RemoveAll(filepath.Join(e.dir, dump.DirName))
	searchTree(t, e.dir, "PCM-CANARY")
}

// TestStream_DumpFailuresDoNotStopTheStream: a dump directory that cannot
// be created, and a dump disk that fails every write, leave the stream
// whole; both are logged.
func TestStream_DumpFailuresDoNotStopTheStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(e *env) dump.Config
		log  string
	}{
		{"DirectoryNotCreatable", func(e *env) dump.Config {
			blocker := filepath.Join(e.dir, "blocker")
			os.WriteFile(blocker, nil, 0o600)
			return dump.Config{Dir: filepath.Join(blocker, dump.DirName), Key: e.keys.Primary()}
		}, "debug dump disabled for this stream"},
		{"WritesFail", func(e *env) dump.Config {
			return dump.Config{Dir: filepath.Join(e.dir, dump.DirName), Plaintext: true, Key: e.keys.Primary(),
				WrapWriter: func(io.Writer) io.Writer { return enospcWriter{} }}
		}, "debug dump write failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t)
			cfg := tc.cfg(e)
			cfg.Logger = e.logger()
			d, err := dump.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			e.cfg.Dumper = d
			e.restart(t)
			id := e.mustRecord(t, "dump fails")
			pcm := soxPCM(t, 16000, 1, 2)
			c := e.dial(t, id)
			c.start(16000, 1)
			c.sendPCM(pcm, 640)
			c.send(`{"type":"stop"}`)
			e.mustStored(t, id, expect[proto.Stored](c), pcm, 16000, 1)
			if got := strings.Count(e.log.String(), tc.log); got != 1 {
				t.Fatalf("%q logged %d times, want once:\n%s", tc.log, got, e.log)
			}
		})
	}
}

type enospcWriter struct{}

func (enospcWriter) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/d", Err: syscall.ENOSPC}
}
