package proto

import (
	"bytes"
	"io"

	"github.com/gobwas/ws"
)

// FrameWriter writes whole WebSocket frames, header and payload in one
// Write, from a buffer it reuses: no allocation per frame once the buffer
// has grown. Clients set Mask (RFC 6455 §5.3: every client frame is
// masked). Not safe for concurrent use.
type FrameWriter struct {
	W    io.Writer
	Mask bool
	buf  bytes.Buffer
	hdr  [ws.MaxHeaderSize]byte
}

// WriteFrame writes one final frame of op carrying p; p is not modified.
func (fw *FrameWriter) WriteFrame(op ws.OpCode, p []byte) error {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(p))}
	if fw.Mask {
		h.Masked = true
		h.Mask = ws.NewMask()
	}
	fw.buf.Reset()
	if err := ws.WriteHeaderBuffer(&fw.buf, h, fw.hdr[:]); err != nil {
		return err
	}
	start := fw.buf.Len()
	fw.buf.Write(p)
	if fw.Mask {
		ws.Cipher(fw.buf.Bytes()[start:], h.Mask, 0)
	}
	_, err := fw.W.Write(fw.buf.Bytes())
	return err
}

// CloseBody returns the payload of a close frame: code and a short reason.
func CloseBody(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return ws.NewCloseFrameBody(ws.StatusCode(code), reason)
}
