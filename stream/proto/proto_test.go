package proto_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"tyst/stream/proto"
)

func TestParseClient(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want proto.ClientMessage
		err  string // part of the error, "" for none
	}{
		{`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1}`, proto.Start{Format: "pcm_s16le", SampleRate: 16000, Channels: 1, Source: "mic"}, ""},
		{`{"type":"start","format":"pcm_s16le","sample_rate":44100,"channels":2,"source":"desk_2"}`, proto.Start{Format: "pcm_s16le", SampleRate: 44100, Channels: 2, Source: "desk_2"}, ""},
		{`{"type":"resume","stream_id":"0123456789abcdef0123456789abcdef"}`, proto.Resume{StreamID: "0123456789abcdef0123456789abcdef"}, ""},
		{`{"type":"stop"}`, proto.Stop{}, ""},
		{`{"type":"start","format":"pcm_s16le","sample_rate":16000}`, nil, "needs"},
		{`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":0}`, nil, "channels"},
		{`{"type":"start","format":"pcm_s16le","sample_rate":48001,"channels":1}`, nil, "sample_rate"},
		{`{"type":"start","format":"PCM","sample_rate":16000,"channels":1}`, nil, "format"},
		{`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":""}`, nil, "source"},
		{`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"canary-SOURCE-x"}`, nil, "source"},
		{`{"type":"resume","stream_id":"../../etc/passwd"}`, nil, "stream_id"},
		{`{"type":"resume","stream_id":"0123456789ABCDEF0123456789ABCDEF"}`, nil, "stream_id"},
		{`{"type":"stop","stream_id":"0123456789abcdef0123456789abcdef"}`, nil, "does not belong"},
		{`{"type":"stop"} {"type":"stop"}`, nil, "after"},
		{`{"type":"pause"}`, nil, "type must be"},
		{`{"format":"pcm_s16le"}`, nil, "no type"},
		{`{"type":"stop","x":1}`, nil, "known fields"},
		{`[]`, nil, "JSON object"},
		{strings.Repeat(" ", proto.MaxTextBytes+1), nil, "longer"},
	} {
		got, err := proto.ParseClient([]byte(tc.in))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one about %q", tc.in, err, tc.err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%s: %#v, want %#v", tc.in, got, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "canary") {
			t.Errorf("%s: the error echoes the value: %v", tc.in, err)
		}
	}
}

func TestMarshalParseServer(t *testing.T) {
	for _, m := range []proto.ServerMessage{
		proto.Ready{StreamID: "0123456789abcdef0123456789abcdef", Offset: 640},
		proto.Ack{Offset: 1 << 40},
		proto.Stored{FileID: 3, SHA256: "ab", SizeBytes: 44, MIMEType: "audio/wav", DurationMS: 0},
		proto.Error{Code: proto.CodeUnknownStream, Message: "no such stream"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := proto.ParseServer(b)
		if err != nil || got != m {
			t.Errorf("%s: parsed %#v, %v", b, got, err)
		}
	}
	n := int64(640)
	b, _ := proto.Marshal(proto.Error{Code: proto.CodeUnknownStream, Offset: &n})
	if got, err := proto.ParseServer(b); err != nil || *got.(proto.Error).Offset != 640 {
		t.Errorf("%s: parsed %#v, %v", b, got, err)
	}
	for _, m := range []proto.ClientMessage{
		proto.Start{Format: proto.FormatPCM16, SampleRate: 8000, Channels: 2, Source: "mic"},
		proto.Resume{StreamID: "0123456789abcdef0123456789abcdef"},
		proto.Stop{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := proto.ParseClient(b); err != nil || got != m {
			t.Errorf("%s: parsed %#v, %v", b, got, err)
		}
	}
}

func TestAppendAck_NoAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(1000, func() { buf = proto.AppendAck(buf[:0], 123456789) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
	if string(buf) != `{"type":"ack","offset":123456789}` {
		t.Fatalf("%s", buf)
	}
}

// FuzzParseClient: any input is a message or an error, never a panic; an
// accepted message is valid and survives a round trip; errors are short
// UTF-8 and never echo the input.
func FuzzParseClient(f *testing.F) {
	for _, s := range []string{
		`{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"mic"}`,
		`{"type":"resume","stream_id":"0123456789abcdef0123456789abcdef"}`,
		`{"type":"stop"}`, `{"type":1}`, `{"type":"start","sample_rate":1e309}`, `null`, `{"type":"stop"}x`,
		"{\"type\":\"start\",\"source\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := proto.ParseClient(in)
		if err != nil {
			if m != nil {
				t.Fatal("message with error")
			}
			if !utf8.ValidString(err.Error()) || len(err.Error()) > 200 {
				t.Fatalf("error %q", err)
			}
			if len(in) > 8 && strings.Contains(err.Error(), string(in)) {
				t.Fatalf("error echoes the input: %q", err)
			}
			return
		}
		if s, ok := m.(proto.Start); ok && s.Validate() != nil {
			t.Fatalf("accepted an invalid start %#v", s)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := proto.ParseClient(b); err != nil || again != m {
			t.Fatalf("round trip of %#v: %#v, %v", m, again, err)
		}
	})
}
