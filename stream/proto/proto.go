// Package proto holds the control messages of tyst's live-audio WebSocket
// (DESIGN §8), shared by the server (package stream) and the field client
// (package stream/client), and the WebSocket close codes they use.
//
// The client sends text frames start, resume and stop, and binary frames of
// raw PCM (16-bit little-endian, whole samples, at most MaxFrameBytes each).
// The server answers with text frames ready, ack, stored and error:
//
//	→ {"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"mic"}
//	   or {"type":"resume","stream_id":"…"}
//	← {"type":"ready","stream_id":"…","offset":N}          the client sends from byte N
//	→ binary PCM frames
//	← {"type":"ack","offset":N}                            bytes [0,N) are durable
//	→ {"type":"stop"}
//	← {"type":"stored","file_id":…,"sha256":"…","size_bytes":…,"mime_type":"audio/wav","duration_ms":…}
//	← {"type":"error","code":"…","message":"…"}           then a close frame
//
// Parsing is strict: unknown types and fields, and values out of range, are
// errors that say which field is wrong, never echoing its value.
package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Limits of the protocol.
const (
	// MaxFrameBytes is the largest payload of a binary frame.
	MaxFrameBytes = 64 << 10
	// MaxTextBytes is the largest control message (a text message, all
	// fragments together).
	MaxTextBytes = 1 << 10
	// MinSampleRate and MaxSampleRate bound start's sample_rate in Hz.
	MinSampleRate = 8000
	MaxSampleRate = 48000
	// FormatPCM16 is the one accepted format: signed 16-bit little-endian PCM.
	FormatPCM16 = "pcm_s16le"
	// DefaultSource is the source of a start that names none.
	DefaultSource = "mic"
	// StreamIDLen is the length of a stream id: 32 lowercase hex digits.
	StreamIDLen = 32
)

// Message types.
const (
	TypeStart  = "start"
	TypeResume = "resume"
	TypeStop   = "stop"
	TypeReady  = "ready"
	TypeAck    = "ack"
	TypeStored = "stored"
	TypeError  = "error"
)

// Error codes sent in error messages that are not store codes (the store's
// codes, e.g. conflict or insufficient_storage, are sent as they are; so
// are unauthorized and forbidden, which end a stream whose credential
// ended: logged out, expired, revoked, disabled, or a role that may no
// longer stream. Close code 1008; the stream stays resumable with a valid
// credential of the same account).
const (
	// CodeUnknownStream answers a resume the server cannot honour: the
	// stream is unknown, finished, or not the caller's. Start a new stream.
	CodeUnknownStream = "unknown_stream"
	// CodeProtocol is a WebSocket protocol violation (unmasked frame,
	// fragmented control frame, reserved bits or opcodes).
	CodeProtocol = "protocol_error"
	// CodeTimeout is an idle connection, a peer that does not read, or one
	// that sent no start or resume within the start deadline (10 s).
	CodeTimeout = "timeout"
	// CodeTooManyStreams refuses a start whose API token or account holds
	// as many streams (live and resumable) as it may; it is answered
	// before any spool is made. Try again once one is stopped or stored.
	CodeTooManyStreams = "too_many_streams"
	// CodeRecordDestroyed ends a stream whose record was destroyed or
	// purged while it was live or resumable: the server erased the stream
	// (its spool is overwritten and removed) and stores nothing of it. It
	// is final: do not resume, retry or send the audio elsewhere. Close
	// code 1008.
	CodeRecordDestroyed = "record_destroyed"
)

// Close codes (RFC 6455 §7.4.1) as DESIGN §8 uses them.
const (
	CloseNormal    = 1000 // stored
	CloseGoingAway = 1001 // server shutting down: resume later
	CloseProtocol  = 1002 // RFC protocol violation
	ClosePolicy    = 1008 // refused: bad message, wrong format, conflict, unknown stream, credential ended, timeout
	CloseTooBig    = 1009 // frame or message over its limit
	CloseInternal  = 1011 // the server failed: resume later
)

var (
	sourcePattern   = regexp.MustCompile(`^[a-z0-9_-]{1,16}$`)
	streamIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// ValidSource reports whether s is an acceptable source name: a machine
// word of 1 to 16 characters a-z, 0-9, "_" or "-".
func ValidSource(s string) bool { return sourcePattern.MatchString(s) }

// ValidStreamID reports whether s has the form of a stream id.
func ValidStreamID(s string) bool { return streamIDPattern.MatchString(s) }

// Start opens a new stream.
type Start struct {
	Format     string // FormatPCM16
	SampleRate int    // Hz, MinSampleRate..MaxSampleRate
	Channels   int    // 1 or 2
	Source     string // DefaultSource when empty in the message
}

// BlockAlign returns the bytes of one sample frame: 2 × channels. Every
// binary frame is a whole number of them.
func (s Start) BlockAlign() int { return 2 * s.Channels }

// BytesPerSecond returns the PCM data rate.
func (s Start) BytesPerSecond() int { return s.SampleRate * s.BlockAlign() }

// Validate checks the fields; the error names the field, never its value.
func (s Start) Validate() error {
	switch {
	case s.Format != FormatPCM16:
		return errors.New(`format must be "pcm_s16le"`)
	case s.SampleRate < MinSampleRate || s.SampleRate > MaxSampleRate:
		return fmt.Errorf("sample_rate must be %d to %d", MinSampleRate, MaxSampleRate)
	case s.Channels != 1 && s.Channels != 2:
		return errors.New("channels must be 1 or 2")
	case !ValidSource(s.Source):
		return errors.New("source must be 1 to 16 characters a-z, 0-9, _ or -")
	}
	return nil
}

// Resume reattaches to a stream after a dropped connection.
type Resume struct{ StreamID string }

// Stop ends the stream: the server stores what it holds as the record's
// audio.
type Stop struct{}

// ClientMessage is a Start, Resume or Stop.
type ClientMessage interface{ clientMessage() }

func (Start) clientMessage()  {}
func (Resume) clientMessage() {}
func (Stop) clientMessage()   {}

// wire is every field of every message; pointers tell absent from zero.
type wire struct {
	Type       *string `json:"type"`
	Format     *string `json:"format"`
	SampleRate *int    `json:"sample_rate"`
	Channels   *int    `json:"channels"`
	Source     *string `json:"source"`
	StreamID   *string `json:"stream_id"`
	Offset     *int64  `json:"offset"`
	FileID     *uint64 `json:"file_id"`
	SHA256     *string `json:"sha256"`
	SizeBytes  *int64  `json:"size_bytes"`
	MIMEType   *string `json:"mime_type"`
	DurationMS *int64  `json:"duration_ms"`
	Code       *string `json:"code"`
	Message    *string `json:"message"`
}

// decode parses one JSON object with no unknown fields and nothing after it.
func decode(b []byte) (*wire, error) {
	if len(b) > MaxTextBytes {
		return nil, fmt.Errorf("message is longer than %d bytes", MaxTextBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wire
	if err := dec.Decode(&w); err != nil {
		return nil, errors.New("message is not a JSON object of known fields")
	}
	if dec.More() {
		return nil, errors.New("message has data after its JSON object")
	}
	if w.Type == nil {
		return nil, errors.New("message has no type")
	}
	return &w, nil
}

// only checks that no field but type and allowed is set.
func (w *wire) only(allowed ...string) error {
	set := map[string]bool{
		"format": w.Format != nil, "sample_rate": w.SampleRate != nil, "channels": w.Channels != nil,
		"source": w.Source != nil, "stream_id": w.StreamID != nil, "offset": w.Offset != nil,
		"file_id": w.FileID != nil, "sha256": w.SHA256 != nil, "size_bytes": w.SizeBytes != nil,
		"mime_type": w.MIMEType != nil, "duration_ms": w.DurationMS != nil, "code": w.Code != nil,
		"message": w.Message != nil,
	}
	for _, a := range allowed {
		delete(set, a)
	}
	for name, ok := range set {
		if ok {
			return fmt.Errorf("field %s does not belong in a %s message", name, *w.Type)
		}
	}
	return nil
}

// ParseClient parses a control message from a client. The error is safe to
// send back: it names fields, never values.
func ParseClient(b []byte) (ClientMessage, error) {
	w, err := decode(b)
	if err != nil {
		return nil, err
	}
	switch *w.Type {
	case TypeStart:
		if err := w.only("format", "sample_rate", "channels", "source"); err != nil {
			return nil, err
		}
		s := Start{Source: DefaultSource}
		if w.Format == nil || w.SampleRate == nil || w.Channels == nil {
			return nil, errors.New("start needs format, sample_rate and channels")
		}
		s.Format, s.SampleRate, s.Channels = *w.Format, *w.SampleRate, *w.Channels
		if w.Source != nil {
			s.Source = *w.Source
		}
		if err := s.Validate(); err != nil {
			return nil, err
		}
		return s, nil
	case TypeResume:
		if err := w.only("stream_id"); err != nil {
			return nil, err
		}
		if w.StreamID == nil || !ValidStreamID(*w.StreamID) {
			return nil, errors.New("resume needs a stream_id of 32 hex digits")
		}
		return Resume{StreamID: *w.StreamID}, nil
	case TypeStop:
		if err := w.only(); err != nil {
			return nil, err
		}
		return Stop{}, nil
	}
	return nil, errors.New("type must be start, resume or stop")
}

// Ready answers start and resume: the stream's id and the bytes the server
// holds; the client sends from Offset on.
type Ready struct {
	StreamID string
	Offset   int64
}

// Ack names the bytes [0, Offset) as durable: encrypted, written and synced.
type Ack struct{ Offset int64 }

// Stored answers stop: the record's audio as stored.
type Stored struct {
	FileID     uint64
	SHA256     string
	SizeBytes  int64
	MIMEType   string
	DurationMS int64
}

// Error is a refusal or failure; a close frame follows.
type Error struct {
	Code, Message string
	// Offset, on unknown_stream for a stream of the caller's that the
	// server finished (its resume window ended, or stop), is the bytes it
	// stored: a client with more audio continues from there elsewhere.
	Offset *int64
}

// ServerMessage is a Ready, Ack, Stored or Error.
type ServerMessage interface{ serverMessage() }

func (Ready) serverMessage()  {}
func (Ack) serverMessage()    {}
func (Stored) serverMessage() {}
func (Error) serverMessage()  {}

// ParseServer parses a control message from the server.
func ParseServer(b []byte) (ServerMessage, error) {
	w, err := decode(b)
	if err != nil {
		return nil, err
	}
	switch *w.Type {
	case TypeReady:
		if w.StreamID == nil || w.Offset == nil || !ValidStreamID(*w.StreamID) || *w.Offset < 0 {
			return nil, errors.New("ready needs a stream_id and an offset")
		}
		return Ready{StreamID: *w.StreamID, Offset: *w.Offset}, nil
	case TypeAck:
		if w.Offset == nil || *w.Offset < 0 {
			return nil, errors.New("ack needs an offset")
		}
		return Ack{Offset: *w.Offset}, nil
	case TypeStored:
		if w.FileID == nil || w.SHA256 == nil || w.SizeBytes == nil || w.MIMEType == nil || w.DurationMS == nil {
			return nil, errors.New("stored needs file_id, sha256, size_bytes, mime_type and duration_ms")
		}
		return Stored{FileID: *w.FileID, SHA256: *w.SHA256, SizeBytes: *w.SizeBytes, MIMEType: *w.MIMEType, DurationMS: *w.DurationMS}, nil
	case TypeError:
		if w.Code == nil {
			return nil, errors.New("error needs a code")
		}
		e := Error{Code: *w.Code, Offset: w.Offset}
		if w.Message != nil {
			e.Message = *w.Message
		}
		if e.Offset != nil && *e.Offset < 0 {
			return nil, errors.New("error offset must not be negative")
		}
		return e, nil
	}
	return nil, errors.New("type must be ready, ack, stored or error")
}

// AppendAck appends the ack message for offset to dst; it allocates
// nothing when dst has room.
func AppendAck(dst []byte, offset int64) []byte {
	dst = append(dst, `{"type":"ack","offset":`...)
	dst = strconv.AppendInt(dst, offset, 10)
	return append(dst, '}')
}

// Marshal returns the JSON form of a client or server message.
func Marshal(m any) ([]byte, error) {
	type start struct {
		Type       string `json:"type"`
		Format     string `json:"format"`
		SampleRate int    `json:"sample_rate"`
		Channels   int    `json:"channels"`
		Source     string `json:"source"`
	}
	type withID struct {
		Type     string `json:"type"`
		StreamID string `json:"stream_id"`
	}
	type ready struct {
		Type     string `json:"type"`
		StreamID string `json:"stream_id"`
		Offset   int64  `json:"offset"`
	}
	type stored struct {
		Type       string `json:"type"`
		FileID     uint64 `json:"file_id"`
		SHA256     string `json:"sha256"`
		SizeBytes  int64  `json:"size_bytes"`
		MIMEType   string `json:"mime_type"`
		DurationMS int64  `json:"duration_ms"`
	}
	type errMsg struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Offset  *int64 `json:"offset,omitempty"`
	}
	switch m := m.(type) {
	case Start:
		return json.Marshal(start{TypeStart, m.Format, m.SampleRate, m.Channels, m.Source})
	case Resume:
		return json.Marshal(withID{TypeResume, m.StreamID})
	case Stop:
		return []byte(`{"type":"stop"}`), nil
	case Ready:
		return json.Marshal(ready{TypeReady, m.StreamID, m.Offset})
	case Ack:
		return AppendAck(nil, m.Offset), nil
	case Stored:
		return json.Marshal(stored{TypeStored, m.FileID, m.SHA256, m.SizeBytes, m.MIMEType, m.DurationMS})
	case Error:
		return json.Marshal(errMsg{TypeError, m.Code, m.Message, m.Offset})
	}
	return nil, fmt.Errorf("proto: cannot marshal %T", m)
}
