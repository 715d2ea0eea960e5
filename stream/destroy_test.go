package stream_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"tyst/store"
	"tyst/store/fstream"
	"tyst/stream"
	"tyst/stream/dump"
	"tyst/stream/proto"
)

// destroyCanary is in every PCM byte the destroy tests send (canaryPCM).
const destroyCanary = "PCM-CANARY"

var fernetToken = regexp.MustCompile(`gAAAAA[A-Za-z0-9_=-]{40,}`)

// canaryHits counts the places under the data directory where the canary
// is readable: in a file's bytes, in what the stream format (store/fstream)
// decrypts of it, or in the plaintext of any Fernet token (every spool line
// is one) that the newsroom keys open — what someone with the disk and,
// later, the key could read.
func (e *env) canaryHits(tb testing.TB) []string {
	tb.Helper()
	var hits []string
	keys := e.keys.All()
	filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		rel := strings.TrimPrefix(p, e.dir)
		if bytes.Contains(b, []byte(destroyCanary)) {
			hits = append(hits, rel)
		}
		// The stream format (blobs, the debug dump): what it decrypts of
		// the file, up to a torn or unfinished end.
		if plain, _ := io.ReadAll(fstream.NewReader(bytes.NewReader(b), keys)); bytes.Contains(plain, []byte(destroyCanary)) {
			hits = append(hits, rel+" (stream format, newsroom key)")
		}
		for _, tok := range fernetToken.FindAll(b, -1) {
			if plain := fernet.VerifyAndDecrypt(tok, 0, keys); bytes.Contains(plain, []byte(destroyCanary)) {
				hits = append(hits, rel+" (under the newsroom key)")
				break
			}
		}
		return nil
	})
	return hits
}

// spoolFiles lists the files in the spool directory.
func (e *env) spoolFiles(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(e.dir, "spool"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, d := range entries {
		names = append(names, d.Name())
	}
	return names
}

// destroyHTTP destroys record id through the API, as a user would.
func (e *env) destroyHTTP(tb testing.TB, id uint64) {
	tb.Helper()
	e.eraseHTTP(tb, "POST", fmt.Sprintf("/api/v1/record/%d/destroy", id), `{"dry_run":false,"confirm":true,"reason":"the source asked"}`)
}

// removeAudioHTTP removes record id's audio through the API.
func (e *env) removeAudioHTTP(tb testing.TB, id uint64) {
	tb.Helper()
	e.eraseHTTP(tb, "DELETE", fmt.Sprintf("/api/v1/record/%d/audio", id), `{"confirm":true,"reason":"the source asked"}`)
}

// eraseHTTP sends a destroy or a removal and wants 200.
func (e *env) eraseHTTP(tb testing.TB, method, path, body string) {
	tb.Helper()
	req, _ := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
}

// streamCanary starts a stream into a new record, sends canary PCM and
// waits for its ack: the audio is in the spool, under the newsroom key.
func (e *env) streamCanary(tb testing.TB) (uint64, *tclient, proto.Ready) {
	tb.Helper()
	id := e.mustRecord(tb, "destroy")
	c := e.dial(tb, id)
	ready := c.start(16000, 1)
	pcm := canaryPCM(64000)
	if err := c.sendPCM(pcm, 3200); err != nil {
		tb.Fatal(err)
	}
	for expect[proto.Ack](c).Offset < int64(len(pcm)) {
	}
	if hits := e.canaryHits(tb); len(hits) == 0 {
		tb.Fatal("the canary is not found in the live spool: the search proves nothing")
	}
	return id, c, ready
}

// mustErased checks what a user relies on once a record with a stream is
// destroyed: no spool (nor a file being erased), no stream held, its id
// not resumable, the slot free (a start succeeds under a cap of 1), and
// no byte of the audio readable under the data directory, with the
// newsroom key either.
func (e *env) mustErased(tb testing.TB, id uint64, streamID string) {
	tb.Helper()
	if names := e.spoolFiles(tb); len(names) != 0 {
		tb.Fatalf("spool directory holds %v after the destroy", names)
	}
	if n := e.streams.Streams(); n != 0 {
		tb.Fatalf("%d streams held after the destroy", n)
	}
	c := e.dial(tb, id)
	c.send(`{"type":"resume","stream_id":"` + streamID + `"}`)
	c.expectClose(proto.ClosePolicy, proto.CodeUnknownStream)
	other := e.mustRecord(tb, "next interview")
	c = e.dial(tb, other)
	c.start(16000, 1)
	c.send(`{"type":"stop"}`)
	c.expectClose(proto.ClosePolicy, "validation_error") // nothing sent: nothing stored
	if hits := e.canaryHits(tb); len(hits) != 0 {
		tb.Fatalf("the destroyed stream's audio is readable: %v", hits)
	}
}

// canaryLeftDown streams canary audio into a new record, drops the
// connection and stops the server (as a shutdown does): the spool stays on
// disk, resumable at the next start.
func (e *env) canaryLeftDown(tb testing.TB) (uint64, proto.Ready) {
	tb.Helper()
	id, c, ready := e.streamCanary(tb)
	c.nc.Close()
	waitFor(tb, 10*time.Second, func() bool { return e.streams.Live() == 0 })
	if err := e.streams.Close(); err != nil {
		tb.Fatal(err)
	}
	e.Server.Close()
	return id, ready
}

// dumpOn restarts the stream server with the debug dump on.
func (e *env) dumpOn(tb testing.TB) {
	tb.Helper()
	d, err := dump.New(dump.Config{Dir: filepath.Join(e.dir, dump.DirName), Key: e.keys.Primary(), Logger: e.logger()})
	if err != nil {
		tb.Fatal(err)
	}
	e.cfg.Dumper = d
	e.restart(tb)
}

// capOne is a stream server where the account holds one stream at most.
func capOne(c *stream.Config) { c.MaxStreamsPerUser, c.MaxStreamsPerToken = 1, 1 }

// TestStream_DestroyLive is the review's F1: a record destroyed while its
// stream is live. The client is told record_destroyed and closed (1008),
// with no ack after it though it keeps sending; the spool is gone, the
// slot free, a resume unknown, no byte of the audio readable anywhere.
func TestStream_DestroyLive(t *testing.T) {
	e := mustEnv(t, capOne)
	id, c, ready := e.streamCanary(t)

	// The client keeps sending while the destroy runs, as a field box does.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { // on a failure too
		close(stop)
		c.nc.Close()
		wg.Wait()
	}()
	wg.Go(func() {
		pcm := canaryPCM(3200)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if c.sendPCM(pcm, 3200) != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	time.Sleep(100 * time.Millisecond)
	e.destroyHTTP(t, id)
	var gotErr *proto.Error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no close 5 s after the destroy: the stream goes on")
		}
		m, cl := c.next()
		if cl != nil {
			if cl.err != nil || cl.code != proto.ClosePolicy {
				t.Fatalf("closed %+v, want 1008", *cl)
			}
			break
		}
		switch m := m.(type) {
		case proto.Ack:
			if gotErr != nil {
				t.Fatalf("ack %d after the error", m.Offset)
			}
		case proto.Error:
			gotErr = &m
		default:
			t.Fatalf("got %#v", m)
		}
	}
	if gotErr == nil || gotErr.Code != proto.CodeRecordDestroyed {
		t.Fatalf("error %+v, want record_destroyed", gotErr)
	}
	e.mustErased(t, id, ready.StreamID)
	if strings.Contains(e.log.String(), "refused by the store") {
		t.Fatal("the server tried to store the destroyed stream")
	}
}

// TestStream_DestroyResumable: a dropped stream, resumable, goes with its
// record at once, not when its window ends.
func TestStream_DestroyResumable(t *testing.T) {
	e := mustEnv(t, capOne)
	id, c, ready := e.streamCanary(t)
	c.nc.Close()
	waitFor(t, 10*time.Second, func() bool { return e.streams.Live() == 0 })
	if e.streams.Streams() != 1 {
		t.Fatal("the dropped stream is not held")
	}
	e.destroyHTTP(t, id)
	e.mustErased(t, id, ready.StreamID)
}

// TestStream_DestroyWhileDown: a spool on disk whose record was destroyed
// while the server was down (or before the server heard of it) is erased
// at start, never resumed or stored.
func TestStream_DestroyWhileDown(t *testing.T) {
	e := mustEnv(t, capOne)
	id, ready := e.canaryLeftDown(t)
	if _, err := e.db.Destroy(e.principal(t), id, store.DestroyRequest{Confirm: true, Reason: "offline"}); err != nil {
		t.Fatal(err)
	}
	if names := e.spoolFiles(t); len(names) != 1 {
		t.Fatalf("spools %v: the test needs the spool left while the server is down", names)
	}
	e.startStreams(t)
	e.mustErased(t, id, ready.StreamID)
	if !strings.Contains(e.log.String(), "spool of a destroyed record found after restart and erased") {
		t.Fatal("the erasure at start is not logged")
	}
}

// TestStream_PurgeResumable: purge of an expired record ends its
// resumable stream as a destroy does.
func TestStream_PurgeResumable(t *testing.T) {
	e := mustEnv(t, capOne)
	id, c, ready := e.streamCanary(t)
	c.nc.Close()
	waitFor(t, 10*time.Second, func() bool { return e.streams.Live() == 0 })
	out, err := e.db.PurgeRecords(t.Context(), []uint64{id}, time.Now().Add(30*24*time.Hour), store.DefaultRetention)
	if err != nil || len(out) != 1 || out[0].Err != nil {
		t.Fatalf("purge: %+v %v", out, err)
	}
	e.mustErased(t, id, ready.StreamID)
}

// TestStream_SpoolOverwritten: a spool's bytes are overwritten before it
// is removed, so the blocks a file system frees hold nothing the newsroom
// key opens. A second name of the spool (a hard link) reads the file's
// last bytes after the removal.
func TestStream_SpoolOverwritten(t *testing.T) {
	for _, end := range []string{"destroy", "stop"} {
		t.Run(end, func(t *testing.T) {
			e := mustEnv(t)
			id, c, ready := e.streamCanary(t)
			spool := filepath.Join(e.dir, "spool", ready.StreamID+".spool")
			link := filepath.Join(e.dir, "held-by-a-second-name")
			if err := os.Link(spool, link); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(spool)
			if end == "destroy" {
				e.destroyHTTP(t, id)
				c.expectClose(proto.ClosePolicy, proto.CodeRecordDestroyed)
			} else {
				c.send(`{"type":"stop"}`)
				expect[proto.Stored](c)
				// The overwrite runs once stored is answered; Close waits
				// for it.
				e.streams.Close()
			}
			if names := e.spoolFiles(t); len(names) != 0 {
				t.Fatalf("spool directory holds %v", names)
			}
			after, err := os.ReadFile(link)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) || len(after) < 64000 {
				t.Fatalf("size %d, before %d", len(after), len(before))
			}
			if fernetToken.Match(after) || bytes.Equal(after[:4096], make([]byte, 4096)) {
				t.Fatal("the spool's bytes were not overwritten with random bytes before removal")
			}
			os.Remove(link)
			if end == "destroy" {
				if hits := e.canaryHits(t); len(hits) != 0 {
					t.Fatalf("audio readable: %v", hits)
				}
			}
		})
	}
}

// TestStream_ErasingSpoolSwept: a crash in the middle of an erasure
// leaves the spool under its erasing name, maybe half overwritten. The
// next start finishes the erasure: the file is overwritten and removed,
// never taken for a damaged stream to resume or store.
func TestStream_ErasingSpoolSwept(t *testing.T) {
	e := mustEnv(t)
	id, ready := e.canaryLeftDown(t)
	// As the crash left it: renamed, its first half overwritten.
	dir := filepath.Join(e.dir, "spool")
	marked := filepath.Join(dir, ready.StreamID+".erasing")
	if err := os.Rename(filepath.Join(dir, ready.StreamID+".spool"), marked); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(marked)
	copy(b, make([]byte, len(b)/2))
	if err := os.WriteFile(marked, b, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(e.dir, "held-by-a-second-name")
	if err := os.Link(marked, link); err != nil {
		t.Fatal(err)
	}
	e.startStreams(t)
	if names := e.spoolFiles(t); len(names) != 0 {
		t.Fatalf("spool directory holds %v after the start", names)
	}
	if after, _ := os.ReadFile(link); fernetToken.Match(after) {
		t.Fatal("the erasing spool was removed without its overwrite being finished")
	}
	os.Remove(link)
	if n := e.streams.Streams(); n != 0 {
		t.Fatalf("%d streams held: the erasing spool was taken for a stream", n)
	}
	c := e.dial(t, id)
	c.send(`{"type":"resume","stream_id":"` + ready.StreamID + `"}`)
	c.expectClose(proto.ClosePolicy, proto.CodeUnknownStream)
	if rec, err := e.db.Record(e.principal(t), id); err != nil || rec.Audio != nil {
		t.Fatalf("record %+v %v: the erasing spool was stored", rec, err)
	}
}

// TestStream_DestroyRacesStop: a destroy racing a stream's stop leaves
// the stored-then-destroyed state or the destroyed one — never a blob,
// a spool or a file being erased — and the client is never told the
// audio is stored once the destroy answered before the store did.
func TestStream_DestroyRacesStop(t *testing.T) {
	e := mustEnv(t)
	for i := range 8 {
		id := e.mustRecord(t, "race")
		c := e.dial(t, id)
		c.start(16000, 1)
		pcm := canaryPCM(320000 + i*64000)
		if err := c.sendPCM(pcm, 32000); err != nil {
			t.Fatal(err)
		}
		for expect[proto.Ack](c).Offset < int64(len(pcm)) {
		}
		c.send(`{"type":"stop"}`)
		time.Sleep(time.Duration(i) * 3 * time.Millisecond)
		e.destroyHTTP(t, id)
		var final string
		for {
			m, cl := c.next()
			if cl != nil {
				break
			}
			switch m := m.(type) {
			case proto.Stored:
				final = "stored"
			case proto.Error:
				final = m.Code
			}
		}
		if final != "stored" && final != proto.CodeRecordDestroyed {
			t.Fatalf("round %d: the client was told %q", i, final)
		}
		waitFor(t, 10*time.Second, func() bool { return len(e.spoolFiles(t)) == 0 && e.streams.Streams() == 0 })
		if blobs := blobFiles(t, e.dir); len(blobs) != 0 {
			t.Fatalf("round %d (%s): blobs left: %v", i, final, blobs)
		}
	}
	if hits := e.canaryHits(t); len(hits) != 0 {
		t.Fatalf("audio readable: %v", hits)
	}
}

// blobFiles lists the files under the blob directory but its temp dir
// (cleaned at start).
func blobFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	return out
}

// TestStream_DestroyErasesDump: with the debug dump on, the stream's dump
// (under the newsroom key) goes with its record too.
func TestStream_DestroyErasesDump(t *testing.T) {
	e := mustEnv(t, capOne)
	e.dumpOn(t)
	id, c, ready := e.streamCanary(t)
	// More than a chunk of the stream format, so that the dump holds some
	// on disk.
	more := canaryPCM(3 << 20)
	if err := c.sendPCM(more, 32000); err != nil {
		t.Fatal(err)
	}
	for expect[proto.Ack](c).Offset < 64000+int64(len(more)) {
	}
	c.nc.Close()
	waitFor(t, 10*time.Second, func() bool { return e.streams.Live() == 0 })
	if hits := e.canaryHits(t); !strings.Contains(strings.Join(hits, " "), dump.DirName) {
		t.Fatalf("the canary is not found in the dump (%v): the test proves nothing", hits)
	}
	e.destroyHTTP(t, id)
	e.mustErased(t, id, ready.StreamID)
	if files, _ := filepath.Glob(filepath.Join(e.dir, dump.DirName, ready.StreamID+"_*")); len(files) != 0 {
		t.Fatalf("dumps left: %v", files)
	}
}

// TestStream_StoredThenErasedTakesDump: a stream stored with the debug
// dump on leaves its dump; when its record is destroyed, or its audio
// removed, later (after a restart with the dump off, too), the dump goes
// with the audio: nothing of it is readable under the data directory,
// with the newsroom key either.
func TestStream_StoredThenErasedTakesDump(t *testing.T) {
	for _, how := range []string{"destroy", "remove audio"} {
		t.Run(how, func(t *testing.T) {
			e := mustEnv(t)
			e.dumpOn(t)
			id, c, _ := e.streamCanary(t)
			c.send(`{"type":"stop"}`)
			expect[proto.Stored](c)
			// Another record's stored stream, whose dump stays.
			other, oc, _ := e.streamCanary(t)
			oc.send(`{"type":"stop"}`)
			expect[proto.Stored](oc)
			e.cfg.Dumper = nil // turned off since
			e.restart(t)
			dumps := func() int {
				names, _ := filepath.Glob(filepath.Join(e.dir, dump.DirName, "*.pcm"))
				return len(names)
			}
			if n := dumps(); n != 2 {
				t.Fatalf("%d dumps before, want the two streams'", n)
			}
			if how == "destroy" {
				e.destroyHTTP(t, id)
			} else {
				e.removeAudioHTTP(t, id)
			}
			if n := dumps(); n != 1 {
				t.Fatalf("%d dumps after the %s of one record, want the other record's", n, how)
			}
			// The other record goes too: now nothing of the canary is left.
			e.destroyHTTP(t, other)
			if hits := e.canaryHits(t); len(hits) != 0 {
				t.Fatalf("audio readable after the %s: %v", how, hits)
			}
		})
	}
}
