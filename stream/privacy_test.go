package stream_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
// and every byte under the data directory: none may appear.
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
	c.sendPCM(pcm[:40000], 640)
	expect[proto.Ack](c)
	c.nc.Close()
	c = e.dial(t, id)
	r := c.resume(ready.StreamID)
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
	}

	needles := []string{"TITLE-CANARY", "src-canary", "PCM-CANARY", e.token, e.dir}
	for _, n := range needles {
		if strings.Contains(e.log.String(), n) {
			t.Errorf("the log holds %q", n)
		}
	}
	searchTree(t, e.dir, needles[:4]...)

	// The dump is there, encrypted, and holds the first stream's PCM.
	names, _ := filepath.Glob(filepath.Join(e.dir, dump.DirName, ready.StreamID+"_src-canary_*.pcm"))
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

// TestStream_PlaintextDump: with plaintext asked for, the dump is raw PCM
// (and that is the only plaintext under the data directory).
func TestStream_PlaintextDump(t *testing.T) {
	e := mustEnv(t)
	d, err := dump.New(dump.Config{Dir: filepath.Join(e.dir, dump.DirName), Plaintext: true, Logger: e.logger()})
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
	names, _ := filepath.Glob(filepath.Join(e.dir, dump.DirName, ready.StreamID+"_mic_*.pcm"))
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
			return dump.Config{Dir: filepath.Join(e.dir, dump.DirName), Plaintext: true,
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
