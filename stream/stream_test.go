package stream_test

import (
	"testing"
	"time"

	"tyst/stream/proto"
)

// TestStream_RoundTrip streams real PCM and checks that the record holds a
// WAV whose PCM is every byte sent, in order, with header, sha256 and
// duration right.
func TestStream_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name           string
		rate, channels int
		frame          int
	}{
		{"16kHzMono20ms", 16000, 1, 640},
		{"48kHzStereo", 48000, 2, 7680},
		{"44.1kHzMonoOddFrames", 44100, 1, 882},
		{"8kHzMaxFrame", 8000, 1, proto.MaxFrameBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t)
			id := e.mustRecord(t, "round trip")
			pcm := soxPCM(t, tc.rate, tc.channels, 3)
			c := e.dial(t, id)
			ready := c.start(tc.rate, tc.channels)
			if ready.Offset != 0 || !proto.ValidStreamID(ready.StreamID) {
				t.Fatalf("ready = %+v", ready)
			}
			if err := c.sendPCM(pcm, tc.frame); err != nil {
				t.Fatal(err)
			}
			// Acks come for what is durable, up to everything sent.
			deadline := time.Now().Add(10 * time.Second)
			for last := int64(0); last < int64(len(pcm)); {
				a := expect[proto.Ack](c)
				if a.Offset < last || a.Offset > int64(len(pcm)) {
					t.Fatalf("ack %d after %d, sent %d", a.Offset, last, len(pcm))
				}
				last = a.Offset
				if time.Now().After(deadline) {
					t.Fatalf("acks reached %d of %d", last, len(pcm))
				}
			}
			c.send(`{"type":"stop"}`)
			st := expect[proto.Stored](c)
			e.mustStored(t, id, st, pcm, tc.rate, tc.channels)
			c.expectClose(proto.CloseNormal, "")
			if n := e.streams.Streams(); n != 0 {
				t.Fatalf("%d streams held after stored", n)
			}
		})
	}
}
