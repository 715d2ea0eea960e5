package transcript

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWebVTT(t *testing.T) {
	segs, err := ParseWebVTT(mustRead(t, "testdata/interview.vtt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Segment{
		{0, 2500, "Reporter", "Good morning. Where were you on the night?"},
		{2600, 6000, "Source", "At the harbour, near gate 4 & the cranes."},
		{6000, 9250, "", "No speaker here.\nTwo lines."},
	}
	if len(segs) != len(want) {
		t.Fatalf("got %d segments, want %d: %+v", len(segs), len(want), segs)
	}
	for i := range want {
		if segs[i] != want[i] {
			t.Errorf("segment %d = %+v, want %+v", i, segs[i], want[i])
		}
	}
	if err := Check(segs); err != nil {
		t.Fatal(err)
	}
}

func TestParseSubRip(t *testing.T) {
	segs, err := ParseSubRip(mustRead(t, "testdata/interview.srt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[1] != (Segment{2600, 6000, "", "At the harbour."}) || segs[0].EndMS != 2500 {
		t.Fatalf("segments=%+v", segs)
	}
}

func TestParse_Bad(t *testing.T) {
	canary := "CANARY-source-words"
	for name, c := range map[string]struct {
		vtt bool
		in  string
	}{
		"VTTNoHeader":       {true, "00:00.000 --> 00:01.000\n" + canary},
		"VTTNoTiming":       {true, "WEBVTT\n\nid\n" + canary},
		"VTTBadStamp":       {true, "WEBVTT\n\n00:00 --> 00:01.000\n" + canary},
		"VTTMinutes60":      {true, "WEBVTT\n\n00:60.000 --> 01:01.000\n" + canary},
		"VTTNotUTF8":        {true, "WEBVTT\n\n00:00.000 --> 00:01.000\n\xff" + canary},
		"VTTEmpty":          {true, ""},
		"SRTNoCounter":      {false, "00:00:00,000 --> 00:00:01,000\n" + canary},
		"SRTDotFraction":    {false, "1\n00:00:00.000 --> 00:00:01.000\n" + canary},
		"SRTNoArrow":        {false, "1\n00:00:00,000 00:00:01,000\n" + canary},
		"SRTHugeLine":       {false, "1\n00:00:00,000 --> 00:00:01,000\n" + strings.Repeat("x", 70_000)},
		"SRTMissingEndTime": {false, "1\n00:00:00,000 -->\n" + canary},
	} {
		parse := ParseSubRip
		if c.vtt {
			parse = ParseWebVTT
		}
		_, err := parse([]byte(c.in))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: err=%v, want *Error", name, err)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: the message quotes the text: %v", name, err)
		}
	}
}

func TestCheck(t *testing.T) {
	ok := func() []Segment { return []Segment{{0, 1000, "A", "one"}, {1000, 2000, "B", "two"}} }
	if err := Check(ok()); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func([]Segment) []Segment{
		"Negative":    func(s []Segment) []Segment { s[0].StartMS = -1; return s },
		"EndsBefore":  func(s []Segment) []Segment { s[0].EndMS = 0; return s },
		"Overlap":     func(s []Segment) []Segment { s[1].StartMS = 999; return s },
		"OutOfOrder":  func(s []Segment) []Segment { s[0], s[1] = s[1], s[0]; return s },
		"LongText":    func(s []Segment) []Segment { s[0].Text = strings.Repeat("x", MaxTextRunes+1); return s },
		"LongSpeaker": func(s []Segment) []Segment { s[0].Speaker = strings.Repeat("x", MaxSpeakerRunes+1); return s },
		"Bidi":        func(s []Segment) []Segment { s[0].Text = "a\u202Eb"; return s },
		"Control":     func(s []Segment) []Segment { s[0].Text = "a\x00b"; return s },
		"SpeakerLine": func(s []Segment) []Segment { s[0].Speaker = "a\nb"; return s },
		"NotUTF8":     func(s []Segment) []Segment { s[0].Text = "a\xffb"; return s },
		"TooLate":     func(s []Segment) []Segment { s[1].EndMS = MaxTimeMS + 1; return s },
		"TooMany": func(s []Segment) []Segment {
			many := make([]Segment, MaxSegments+1)
			for i := range many {
				many[i] = Segment{int64(i) * 10, int64(i)*10 + 5, "", "x"}
			}
			return many
		},
	} {
		if err := Check(edit(ok())); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseWebVTT(f *testing.F) {
	f.Add(mustReadF(f, "testdata/interview.vtt"))
	f.Add([]byte("WEBVTT\n\n<v>\n00:00.000 --> 00:01.000\n<v a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		segs, err := ParseWebVTT(b)
		if err == nil {
			Check(segs)
		}
	})
}

func FuzzParseSubRip(f *testing.F) {
	f.Add(mustReadF(f, "testdata/interview.srt"))
	f.Add([]byte("1\n00:00:00,000 --> 00:00:01,000\n<i"))
	f.Fuzz(func(t *testing.T, b []byte) {
		segs, err := ParseSubRip(b)
		if err == nil {
			Check(segs)
		}
	})
}

func mustReadF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
