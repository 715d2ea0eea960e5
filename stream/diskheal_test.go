package stream_test

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tyst/store"
	"tyst/stream"
	"tyst/stream/proto"
)

// fullDisk is a spool disk that is full while full is set: appends and
// syncs fail with ENOSPC. Opening a spool still works (reading back needs
// no room), so a reopened spool fails at its first sync.
type fullDisk struct {
	mu   sync.Mutex
	full bool
}

func (d *fullDisk) set(full bool) {
	d.mu.Lock()
	d.full = full
	d.mu.Unlock()
}

func (d *fullDisk) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full {
		return &os.PathError{Op: "write", Path: "/secret/spool", Err: syscall.ENOSPC}
	}
	return nil
}

func (d *fullDisk) wrap(f stream.SpoolFile) stream.SpoolFile { return &fullDiskFile{f, d} }

type fullDiskFile struct {
	stream.SpoolFile
	d *fullDisk
}

func (f *fullDiskFile) Append(p []byte) error {
	if err := f.d.err(); err != nil {
		return err
	}
	return f.SpoolFile.Append(p)
}

func (f *fullDiskFile) Sync() error {
	if err := f.d.err(); err != nil {
		return err
	}
	return f.SpoolFile.Sync()
}

// TestStream_AbandonedAfterDiskFull is the review's M2: a stream's spool
// meets a full disk, its client gives up, and the disk has room again
// later. The abandoned stream is stored, with exactly its durable bytes,
// without a restart; while the disk stays full, the tries back off (15 s,
// then 30 s, ...) and each is logged once, not every janitor tick.
func TestStream_AbandonedAfterDiskFull(t *testing.T) {
	var disk fullDisk
	clk := &fakeClock{}
	e := mustEnv(t, func(c *stream.Config) {
		c.WrapSpool = disk.wrap
		c.Now = clk.now
		c.EmptyWindow = 200 * time.Millisecond // the janitor looks every 10 ms
	})
	id := e.mustRecord(t, "disk fills")
	pcm := soxPCM(t, 16000, 1, 3)
	c := e.dial(t, id)
	c.start(16000, 1)
	c.sendPCM(pcm[:32000], 640)
	for a := int64(0); a < 32000; {
		a = expect[proto.Ack](c).Offset
	}
	disk.set(true)
	c.sendPCM(pcm[32000:64000], 640)
	c.expectClose(proto.CloseInternal, string(store.CodeDiskFull))
	c.nc.Close() // the client gives up
	waitFor(t, 5*time.Second, func() bool { return e.streams.Live() == 0 })

	const retrying = "could not be stored; retrying later"
	tries := func() int { return strings.Count(e.log.String(), retrying) }
	// The window ends on a full disk: one try, logged once, then quiet for
	// many janitor ticks.
	clk.advance(stream.DefaultResumeWindow + time.Second)
	waitFor(t, 5*time.Second, func() bool { return tries() == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := tries(); n != 1 {
		t.Fatalf("%d tries logged within one retry delay, want 1", n)
	}
	// 15 s later the second try; the third waits 30 s.
	clk.advance(16 * time.Second)
	waitFor(t, 5*time.Second, func() bool { return tries() == 2 })
	clk.advance(16 * time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := tries(); n != 2 {
		t.Fatalf("%d tries logged, want 2: the delay does not grow", n)
	}

	// Room again: the next try stores the durable bytes.
	disk.set(false)
	clk.advance(16 * time.Second)
	waitFor(t, 5*time.Second, func() bool { return e.streams.Streams() == 0 })
	if got := e.storedAudio(t, id); !bytes.Equal(got, wavOf(pcm[:32000], 16000, 1)) {
		t.Fatalf("stored %d bytes, want the WAV of the %d durable ones", len(got), 32000)
	}
	if n := spoolFiles(t, e.dir); n != 0 {
		t.Fatalf("%d spool files left", n)
	}
	if n := tries(); n != 2 {
		t.Fatalf("%q logged %d times, want 2", retrying, n)
	}
	if strings.Contains(e.log.String(), "/secret/spool") {
		t.Fatal("a path was logged")
	}
}
