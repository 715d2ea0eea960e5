package stream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream/proto"
)

// conn is one WebSocket connection. Its reader runs on the goroutine that
// called ServeStream; a writer goroutine sends acks and pings once the
// stream is ready. Every read and write has a deadline.
type conn struct {
	srv      *Server
	nc       net.Conn
	br       *bufio.Reader
	p        *store.Principal
	recordID uint64
	// check tells whether the credential still allows streaming (see
	// ServeStream); nil checks nothing.
	check func(context.Context) error
	// claim counts the connection as not yet streaming; released at ready.
	claim *unstartedClaim

	// Reader state, used by the reader goroutine only. The buffers are
	// fields so that reading a frame allocates nothing.
	st       *stream
	received int64 // offset of the next byte this connection sends
	hdr      [ws.MaxHeaderSize]byte
	ctl      [125]byte
	text     []byte    // a text message being read, at most proto.MaxTextBytes
	frag     ws.OpCode // the opcode of a fragmented message in progress, 0 when none
	lastDL   time.Time // when the read deadline was last moved
	now      time.Time // when the frame being read began
	flushAt  time.Time // when this connection next asks for a sync

	wmu     sync.Mutex
	fw      proto.FrameWriter
	wclosed bool

	ackWake    chan struct{}
	quit       chan struct{} // stops the writer
	quitOnce   sync.Once
	writing    bool // the writer runs (reader goroutine only)
	writerDone chan struct{}
	done       chan struct{} // closed when the reader has ended and detached
	lastAck    int64         // writer only
	abuf       [48]byte      // writer only

	// killed is set when the server ends the connection (another connection
	// resumed the stream, or shutdown): the stream is not abandoned by its
	// client then.
	killed atomic.Bool
	// revoked is set when the credential ended (credentialEnded): the
	// client was told, the stream detached.
	revoked atomic.Bool
}

func newConn(s *Server, nc net.Conn, br *bufio.Reader, p *store.Principal, recordID uint64) *conn {
	c := &conn{
		srv: s, nc: nc, br: br, p: p, recordID: recordID,
		ackWake: make(chan struct{}, 1), quit: make(chan struct{}),
		writerDone: make(chan struct{}), done: make(chan struct{}),
	}
	c.fw.W = nc
	if tc, ok := nc.(*net.TCPConn); ok {
		// A small send buffer: a client that stops reading fills it soon,
		// its writes time out, and it is closed (acks never queue here).
		tc.SetWriteBuffer(64 << 10)
	}
	return c
}

// wsError ends a connection with an error message and a close code.
type wsError struct {
	code    string // proto or store code, sent as the error's code
	message string // sent to the client: names no value it sent
	offset  *int64 // unknown_stream of a stored stream: the bytes stored
}

func (e *wsError) Error() string { return "stream: " + e.code + ": " + e.message }

func policy(code store.Code, msg string) error { return &wsError{code: string(code), message: msg} }

func protocolError(msg string) error { return &wsError{code: proto.CodeProtocol, message: msg} }

func tooBig(msg string) error { return &wsError{code: string(store.CodeTooLarge), message: msg} }

// closeCode is the one mapping of error codes to close codes (DESIGN §8).
func closeCode(code string) int {
	switch code {
	case string(store.CodeTooLarge):
		return proto.CloseTooBig
	case string(store.CodeInternal), string(store.CodeDiskFull), string(store.CodeUnavailable):
		return proto.CloseInternal
	case proto.CodeProtocol:
		return proto.CloseProtocol
	}
	return proto.ClosePolicy
}

// asWSError turns a store error into what the client is told; internal
// causes are logged, never sent.
func (c *conn) asWSError(err error) error {
	var we *wsError
	if errors.As(err, &we) {
		return we
	}
	code := store.ErrorCode(err)
	msg := store.ErrorMessage(err)
	if code == store.CodeInternal {
		msg = "internal error"
	}
	return &wsError{code: string(code), message: msg}
}

var (
	errPeerClosed = errors.New("stream: client closed the connection")
	errStored     = errors.New("stream: stored")
	errRevoked    = errors.New("stream: the credential no longer allows streaming")
)

// serve runs the connection until it ends.
func (c *conn) serve() {
	defer close(c.done)
	// The start deadline. Until a stream is ready readFrame leaves it
	// alone: pings and pongs do not extend it.
	c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.StartTimeout))
	err := c.readLoop()
	c.stopWriter()
	if c.st != nil {
		c.st.detach(c, !c.killed.Load())
	}
	if c.revoked.Load() {
		err = errRevoked
	}
	c.finish(err)
}

// finish tells the client why the connection ends (unless a close was sent
// already), lingers, then closes.
func (c *conn) finish(err error) {
	var we *wsError
	switch {
	case c.killed.Load():
		c.nc.Close()
		return
	case errors.Is(err, errRevoked):
		// The client was told (credentialEnded).
	case errors.Is(err, errStored):
		c.writeClose(proto.CloseNormal, nil)
	case errors.Is(err, errPeerClosed):
		c.writeClose(proto.CloseNormal, nil)
	case errors.As(err, &we):
		if closeCode(we.code) == proto.CloseInternal && we.code != string(store.CodeDiskFull) {
			c.srv.log.Error("stream failed", keyStreamID, c.streamID(), keyRecordID, c.recordID, keyCode, we.code)
		}
		c.writeClose(closeCode(we.code), &proto.Error{Code: we.code, Message: we.message, Offset: we.offset})
	case isTimeout(err) && c.st == nil:
		c.writeClose(proto.ClosePolicy, &proto.Error{Code: proto.CodeTimeout, Message: "no start or resume within " + c.srv.cfg.StartTimeout.String() + " of connecting"})
	case isTimeout(err):
		c.writeClose(proto.ClosePolicy, &proto.Error{Code: proto.CodeTimeout, Message: "no frame within the idle timeout"})
	default:
		c.nc.Close() // the client is gone
		return
	}
	c.linger()
}

func (c *conn) streamID() string {
	if c.st != nil {
		return c.st.id
	}
	return ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// writeClose sends an error message (when e is not nil) and a close frame,
// and shuts the connection for writing. Nothing is written after it.
func (c *conn) writeClose(code int, e *proto.Error) {
	var msg []byte
	reason := ""
	if e != nil {
		msg, _ = proto.Marshal(*e)
		reason = e.Message
	}
	// One hold of wmu for both: no ack goes out between the error and the
	// close.
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	if msg != nil {
		if err := c.fw.WriteFrame(ws.OpText, msg); err != nil {
			c.wclosed = true
			c.nc.Close()
			return
		}
	}
	c.fw.WriteFrame(ws.OpClose, proto.CloseBody(code, reason))
	c.wclosed = true
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// linger reads and drops what the client still sends, for at most a
// second, so that it reads the close before the connection goes (closing
// with unread input would reset it and could lose the close). Reader
// goroutine only.
func (c *conn) linger() {
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, c.br, 1<<20)
	c.nc.Close()
}

// writeFrame writes one frame with the write deadline. A write that fails
// or times out closes the connection: nothing waits or queues for a client
// that does not read.
func (c *conn) writeFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return net.ErrClosed
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	err := c.fw.WriteFrame(op, p)
	if err != nil {
		c.wclosed = true
		c.nc.Close()
	}
	return err
}

// abort ends the connection from another goroutine with an error (the
// group commit's failed sync): the reader wakes within a second.
func (c *conn) abort(err error) {
	we := c.asWSError(diskErr(err)).(*wsError)
	c.writeClose(closeCode(we.code), &proto.Error{Code: we.code, Message: we.message})
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
}

// credentialErr checks the connection's credential again: nil while it
// allows streaming, else what the client is told (unauthorized or
// forbidden). A failure of the check itself (the store could not be read)
// is logged and passes: the next check decides.
func (c *conn) credentialErr() *wsError {
	if c.check == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := c.check(ctx)
	if err == nil {
		return nil
	}
	switch code := store.ErrorCode(err); code {
	case store.CodeUnauthorized, store.CodeForbidden:
		return &wsError{code: string(code), message: store.ErrorMessage(err)}
	default:
		c.srv.log.Warn("stream credential could not be checked; it is checked again later", keyStreamID, c.streamID(), keyRecordID, c.recordID, keyCode, string(code))
		return nil
	}
}

// credentialEnded ends a live stream whose credential ended: the client is
// told why (nothing is written after that, so no ack), the stream is
// detached as if the client had dropped (what it holds stays resumable by
// the same account and is stored when the window ends), and the reader is
// woken. Writer goroutine, or the reader once the writer stopped.
func (c *conn) credentialEnded(we *wsError) {
	if c.revoked.Swap(true) {
		return
	}
	c.writeClose(closeCode(we.code), &proto.Error{Code: we.code,
		Message: we.message + ": the stream is kept, resumable with a valid credential of this account"})
	c.st.detach(c, true)
	c.nc.SetReadDeadline(time.Now())
	c.srv.log.Info("stream ended: its credential no longer allows streaming", keyStreamID, c.st.id, keyRecordID, c.recordID, keyCode, we.code)
}

// kill ends the connection from the server side: another connection resumed
// its stream.
func (c *conn) kill() {
	c.killed.Store(true)
	c.nc.Close()
}

// shutdown tells the client the server goes away (it resumes later), then
// ends the connection.
func (c *conn) shutdown() {
	c.killed.Store(true)
	c.wmu.Lock()
	if !c.wclosed {
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.fw.WriteFrame(ws.OpClose, proto.CloseBody(proto.CloseGoingAway, "server shutting down: resume later"))
	}
	c.wclosed = true
	c.wmu.Unlock()
	c.nc.Close()
}

// stopWriter stops the writer goroutine and waits for it: nothing but the
// reader writes afterwards. Reader goroutine only.
func (c *conn) stopWriter() {
	c.quitOnce.Do(func() { close(c.quit) })
	if c.writing {
		<-c.writerDone
		c.writing = false
	}
}

// wakeAck tells the writer that the stream's durable offset moved.
func (c *conn) wakeAck() {
	select {
	case c.ackWake <- struct{}{}:
	default:
	}
}

// writeLoop sends an ack whenever the durable offset moves (the latest
// only: acks never queue) and a ping every PingInterval, and checks the
// credential every CredentialInterval.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	t := time.NewTicker(c.srv.cfg.PingInterval)
	defer t.Stop()
	ct := time.NewTicker(c.srv.cfg.CredentialInterval)
	defer ct.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-ct.C:
			if we := c.credentialErr(); we != nil {
				c.credentialEnded(we)
				return
			}
		case <-c.ackWake:
			off := c.st.durable.Load()
			if off <= c.lastAck {
				continue
			}
			if err := c.writeFrame(ws.OpText, proto.AppendAck(c.abuf[:0], off)); err != nil {
				return
			}
			c.lastAck = off
		case <-t.C:
			if err := c.writeFrame(ws.OpPing, nil); err != nil {
				return
			}
		}
	}
}

// readLoop reads frames until the connection ends; it returns why.
func (c *conn) readLoop() error {
	for {
		if err := c.readFrame(); err != nil {
			return err
		}
	}
}

// readFrame reads and handles one frame. In steady state (binary frames
// into a live stream) it allocates nothing.
func (c *conn) readFrame() error {
	// Moving the deadline on every frame would cost a timer update each; a
	// deadline at most a second stale is as good.
	c.now = time.Now()
	if c.st != nil && c.now.Sub(c.lastDL) > time.Second {
		c.nc.SetReadDeadline(c.now.Add(c.srv.cfg.IdleTimeout))
		c.lastDL = c.now
		// Checked after the move: credentialEnded sets revoked before it
		// sets its deadline, so its wake-up is never lost.
		if c.revoked.Load() {
			return errRevoked
		}
	}
	h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:])
	if err != nil {
		if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
			return protocolError("malformed frame header")
		}
		return err
	}
	return c.frame(h)
}

// frame handles one frame whose header was read. Every limit is checked
// from the header, before a byte of payload is read.
func (c *conn) frame(h ws.Header) error {
	if h.Rsv != 0 {
		return protocolError("reserved bits are set: no extension was negotiated")
	}
	if !h.Masked {
		return protocolError("client frames must be masked")
	}
	switch h.OpCode {
	case ws.OpPing, ws.OpPong, ws.OpClose:
		if !h.Fin || h.Length > int64(len(c.ctl)) {
			return protocolError("control frames must be whole and at most 125 bytes")
		}
		p := c.ctl[:h.Length]
		if _, err := io.ReadFull(c.br, p); err != nil {
			return err
		}
		ws.Cipher(p, h.Mask, 0)
		switch h.OpCode {
		case ws.OpPing:
			return c.writeFrame(ws.OpPong, p)
		case ws.OpClose:
			// RFC 6455 §5.5.1, §7.4: no body, or a valid code and a
			// UTF-8 reason.
			if len(p) == 1 {
				return protocolError("a close frame's body is a 2-byte code and a reason")
			}
			if len(p) >= 2 {
				if code, reason := ws.ParseCloseFrameDataUnsafe(p); ws.CheckCloseFrameData(code, reason) != nil {
					return protocolError("the close frame's code or reason is not valid")
				}
			}
			return errPeerClosed
		}
		return nil
	case ws.OpText:
		if c.frag != 0 {
			return protocolError("a new message began inside a fragmented one")
		}
		return c.textFrame(h)
	case ws.OpBinary:
		if c.frag != 0 {
			return protocolError("a new message began inside a fragmented one")
		}
		return c.binaryFrame(h)
	case ws.OpContinuation:
		switch c.frag {
		case ws.OpText:
			return c.textFrame(h)
		case ws.OpBinary:
			return c.binaryFrame(h)
		}
		return protocolError("continuation frame without a message to continue")
	}
	return protocolError("reserved opcode")
}

func (c *conn) textFrame(h ws.Header) error {
	if h.Length > int64(proto.MaxTextBytes-len(c.text)) {
		return tooBig("control messages are at most 1 KiB")
	}
	if c.text == nil {
		c.text = make([]byte, 0, proto.MaxTextBytes)
	}
	n := len(c.text)
	c.text = c.text[:n+int(h.Length)]
	if _, err := io.ReadFull(c.br, c.text[n:]); err != nil {
		return err
	}
	ws.Cipher(c.text[n:], h.Mask, 0)
	if !h.Fin {
		c.frag = ws.OpText
		return nil
	}
	c.frag = 0
	msg := c.text
	c.text = c.text[:0]
	m, err := proto.ParseClient(msg)
	if err != nil {
		return policy(store.CodeValidation, err.Error())
	}
	return c.control(m)
}

// binaryFrame streams a frame's PCM from the read buffer into the stream,
// unmasking it on the way: no copy but the one into the stream's buffer.
func (c *conn) binaryFrame(h ws.Header) error {
	if h.Length > proto.MaxFrameBytes {
		return tooBig("binary frames carry at most 64 KiB")
	}
	st := c.st
	if st == nil {
		return policy(store.CodeValidation, "send start or resume before audio")
	}
	if h.Length%int64(st.blockAlign) != 0 {
		return policy(store.CodeValidation, "a frame must hold whole samples: a multiple of 2 bytes × channels")
	}
	if c.received+h.Length > c.srv.cfg.MaxStreamBytes {
		return tooBig("the stream is over its length limit: stop it and start another record")
	}
	if h.Fin {
		c.frag = 0
	} else {
		c.frag = ws.OpBinary
	}
	left, off := int(h.Length), 0
	for left > 0 {
		if c.br.Buffered() == 0 {
			if _, err := c.br.Peek(1); err != nil {
				return err
			}
		}
		k := min(left, c.br.Buffered())
		b, _ := c.br.Peek(k)
		ws.Cipher(b, h.Mask, off)
		if err := st.add(c, b); err != nil {
			return c.streamErr(err)
		}
		c.br.Discard(k)
		left -= k
		off += k
		c.received += int64(k)
	}
	if h.Fin && !c.now.Before(c.flushAt) {
		// The stream is due: sync it now, right after this frame, rather
		// than at the next tick (the ticker still serves a client that
		// pauses).
		c.flushAt = c.now.Add(c.srv.cfg.AckInterval)
		c.srv.requestSync(st)
	}
	return nil
}

// streamErr turns a failure of the stream into what ends the connection.
func (c *conn) streamErr(err error) error {
	if errors.Is(err, errDetached) || errors.Is(err, errGone) {
		return err // taken over (the connection is killed already), or erased
	}
	c.st.warn("spool write failed", err)
	return c.asWSError(diskErr(err))
}

// control handles a control message.
func (c *conn) control(m proto.ClientMessage) error {
	switch m := m.(type) {
	case proto.Start:
		if c.st != nil {
			return policy(store.CodeValidation, "start and resume come once, first")
		}
		if we := c.credentialErr(); we != nil {
			return we
		}
		st, err := c.srv.start(c, m)
		if err != nil {
			return c.asWSError(err)
		}
		return c.ready(st, 0)
	case proto.Resume:
		if c.st != nil {
			return policy(store.CodeValidation, "start and resume come once, first")
		}
		if we := c.credentialErr(); we != nil {
			return we
		}
		st, off, err := c.srv.resume(c, m.StreamID)
		if err != nil {
			return c.asWSError(err)
		}
		return c.ready(st, off)
	case proto.Stop:
		if c.st == nil {
			return policy(store.CodeValidation, "stop comes after start or resume")
		}
		return c.stop()
	}
	return policy(store.CodeValidation, "unknown message")
}

// ready attaches the connection to st and tells the client where to send
// from.
func (c *conn) ready(st *stream, off int64) error {
	b, err := proto.Marshal(proto.Ready{StreamID: st.id, Offset: off})
	if err != nil {
		return err
	}
	c.st, c.received, c.lastAck = st, off, off
	c.srv.releaseUnstarted(c.claim) // counted with the streams held now
	c.flushAt = time.Now().Add(c.srv.cfg.AckInterval)
	if err := c.writeFrame(ws.OpText, b); err != nil {
		return err
	}
	c.writing = true
	go c.writeLoop()
	return nil
}

// stop stores the stream and answers stored. Before storing it acks the
// end: a client whose connection drops while the store works then knows
// that the server held everything.
func (c *conn) stop() error {
	start := time.Now()
	c.stopWriter() // no ack after stored; the last one comes from here
	if c.revoked.Load() {
		return errRevoked // the writer found the credential ended
	}
	if we := c.credentialErr(); we != nil {
		c.credentialEnded(we)
		return errRevoked
	}
	if off, err := c.st.syncNow(c); err != nil {
		if errors.Is(err, errDetached) || errors.Is(err, errGone) {
			return err
		}
		return c.asWSError(diskErr(err))
	} else if err := c.writeFrame(ws.OpText, proto.AppendAck(c.abuf[:0], off)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	audio, err := c.st.finalise(ctx, c)
	if err != nil {
		var fe *finishError
		switch {
		case errors.Is(err, errDetached), errors.Is(err, errGone):
			return err
		case errors.Is(err, errBusy):
			return policy(store.CodeConflict, "the stream is being stored already")
		case errors.As(err, &fe) && fe.permanent:
			c.srv.log.Error("stream audio refused by the store and discarded", keyStreamID, c.st.id, keyRecordID, c.recordID, keyCode, string(store.ErrorCode(err)))
		}
		return c.asWSError(diskErr(errors.Unwrap(err)))
	}
	c.srv.log.Info("stream stored", keyStreamID, c.st.id, keyRecordID, c.recordID, keyMiB, mibBucket(audio.SizeBytes),
		keyDur, time.Since(start).Round(time.Millisecond).String())
	b, err := proto.Marshal(proto.Stored{FileID: audio.FileID, SHA256: audio.SHA256, SizeBytes: audio.SizeBytes,
		MIMEType: audio.MIMEType, DurationMS: audio.DurationMS})
	if err != nil {
		return err
	}
	if err := c.writeFrame(ws.OpText, b); err != nil {
		return err
	}
	return errStored
}
