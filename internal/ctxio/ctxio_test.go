package ctxio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"tyst/internal/ctxio"
)

// TestReaderWriter: both pass data through while the context lives and
// return its error, having moved nothing more, once it is done.
func TestReaderWriter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	r, w := ctxio.Reader(ctx, strings.NewReader("first second")), ctxio.Writer(ctx, &out)
	buf := make([]byte, 6)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "first " {
		t.Fatalf("read %q %v", buf[:n], err)
	}
	if _, err := w.Write(buf[:n]); err != nil || out.String() != "first " {
		t.Fatalf("write %q %v", out.String(), err)
	}
	cancel()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %d %v", n, err)
	}
	if n, err := w.Write([]byte("more")); n != 0 || !errors.Is(err, context.Canceled) || out.String() != "first " {
		t.Fatalf("write after cancel: %d %v %q", n, err, out.String())
	}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("copy after cancel: %v", err)
	}
}
