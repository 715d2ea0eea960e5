// Package transcript reads the transcript formats tyst accepts — its own
// JSON segments, WebVTT (text/vtt) and SubRip (application/x-subrip) — into
// one list of segments, and checks that list.
//
// It promises: no parser panics or loops on any input; every error message
// is safe to show to a client (it names a line number or a segment index,
// never the text); a list that passes Check is sorted, has no negative,
// empty or overlapping times, and stays within MaxSegments and the length
// limits. Nothing here does I/O beyond reading the given bytes.
package transcript

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits.
const (
	MaxSegments     = 20_000
	MaxTextRunes    = 10_000 // one segment's text
	MaxSpeakerRunes = 100
	MaxTimeMS       = 100 * 3600 * 1000 // 100 hours
)

// Segment is one stretch of speech.
type Segment struct {
	StartMS int64  `json:"start_ms"`
	EndMS   int64  `json:"end_ms"`
	Speaker string `json:"speaker"`
	Text    string `json:"text"`
}

// Error is a malformed or refused transcript; its message is safe to show.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func errf(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

// Check validates segs in place: trims speakers and text, and refuses
// negative, empty or overlapping times, segments out of order, too many
// segments, text that is not UTF-8 or holds control or bidirectional
// control characters, and text or speakers over the limits.
func Check(segs []Segment) error {
	if len(segs) > MaxSegments {
		return errf("transcript has %d segments; at most %d are accepted", len(segs), MaxSegments)
	}
	var prevEnd int64
	for i := range segs {
		s := &segs[i]
		switch {
		case s.StartMS < 0 || s.EndMS < 0:
			return errf("segment %d has a negative time", i+1)
		case s.EndMS <= s.StartMS:
			return errf("segment %d ends before it starts", i+1)
		case s.EndMS > MaxTimeMS:
			return errf("segment %d ends after %d hours", i+1, MaxTimeMS/3600000)
		case s.StartMS < prevEnd:
			return errf("segment %d overlaps the one before it or is out of order", i+1)
		}
		prevEnd = s.EndMS
		var err error
		if s.Speaker, err = cleanField(s.Speaker, MaxSpeakerRunes, false); err != nil {
			return errf("segment %d: speaker %v", i+1, err)
		}
		if s.Text, err = cleanField(s.Text, MaxTextRunes, true); err != nil {
			return errf("segment %d: text %v", i+1, err)
		}
	}
	return nil
}

func cleanField(s string, max int, multiline bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("is not UTF-8")
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		return "", fmt.Errorf("is longer than %d characters", max)
	}
	for _, r := range s {
		switch {
		case (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') || r == '\u200E' || r == '\u200F' || r == '\u061C':
			return "", errors.New("holds bidirectional control characters")
		case r == '\n' || r == '\t':
			if !multiline {
				return "", errors.New("holds control characters")
			}
		case unicode.IsControl(r):
			return "", errors.New("holds control characters")
		}
	}
	return s, nil
}

// ParseWebVTT reads a WebVTT file: the "WEBVTT" header, optional header
// blocks (NOTE, STYLE, REGION), and cues of an optional identifier line,
// a timing line ("00:01.000 --> 00:04.000" plus settings) and text lines.
// A cue's text that starts with "<v Speaker>" gives the speaker. Tags such
// as <b> or <c.x> are removed.
func ParseWebVTT(b []byte) ([]Segment, error) {
	if !utf8.Valid(b) {
		return nil, errf("WebVTT file is not UTF-8")
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	blocks, err := splitBlocks(b)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 0 {
		return nil, errf("WebVTT file is empty")
	}
	head := blocks[0]
	if !(head.lines[0] == "WEBVTT" || strings.HasPrefix(head.lines[0], "WEBVTT ") || strings.HasPrefix(head.lines[0], "WEBVTT\t")) {
		return nil, errf("not a WebVTT file: the first line must be WEBVTT")
	}
	var segs []Segment
	for _, bl := range blocks[1:] {
		first := bl.lines[0]
		if first == "NOTE" || strings.HasPrefix(first, "NOTE ") || strings.HasPrefix(first, "NOTE\t") || first == "STYLE" || first == "REGION" {
			continue
		}
		timing, text := 0, 1
		if !strings.Contains(first, "-->") {
			timing, text = 1, 2 // an identifier line first
		}
		if timing >= len(bl.lines) || !strings.Contains(bl.lines[timing], "-->") {
			return nil, errf("WebVTT cue at line %d has no timing line", bl.line)
		}
		start, end, err := parseTiming(bl.lines[timing], '.', true)
		if err != nil {
			return nil, errf("WebVTT cue at line %d: %v", bl.line+timing, err)
		}
		if len(segs) == MaxSegments {
			return nil, errf("transcript has more than %d segments", MaxSegments)
		}
		speaker, body := vttVoice(strings.Join(bl.lines[min(text, len(bl.lines)):], "\n"))
		segs = append(segs, Segment{StartMS: start, EndMS: end, Speaker: speaker, Text: stripTags(body)})
	}
	return segs, nil
}

// ParseSubRip reads a SubRip (.srt) file: blocks of a counter line, a
// timing line ("00:00:01,000 --> 00:00:04,000") and text lines.
func ParseSubRip(b []byte) ([]Segment, error) {
	if !utf8.Valid(b) {
		return nil, errf("SubRip file is not UTF-8")
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	blocks, err := splitBlocks(b)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 0 {
		return nil, errf("SubRip file is empty")
	}
	var segs []Segment
	for _, bl := range blocks {
		if len(bl.lines) < 2 {
			return nil, errf("SubRip block at line %d has no timing line", bl.line)
		}
		if _, err := strconv.ParseUint(strings.TrimSpace(bl.lines[0]), 10, 32); err != nil {
			return nil, errf("SubRip block at line %d does not start with a number", bl.line)
		}
		start, end, err := parseTiming(bl.lines[1], ',', false)
		if err != nil {
			return nil, errf("SubRip block at line %d: %v", bl.line+1, err)
		}
		if len(segs) == MaxSegments {
			return nil, errf("transcript has more than %d segments", MaxSegments)
		}
		segs = append(segs, Segment{StartMS: start, EndMS: end, Text: stripTags(strings.Join(bl.lines[2:], "\n"))})
	}
	return segs, nil
}

type block struct {
	line  int // 1-based line number of the block's first line
	lines []string
}

// maxLineBytes bounds one line; a transcript body is bounded by its caller.
const maxLineBytes = 64 << 10

// splitBlocks cuts text into blocks separated by blank lines, accepting
// "\n", "\r\n" and "\r" line ends.
func splitBlocks(b []byte) ([]block, error) {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	var out []block
	var cur *block
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			cur = nil
			continue
		}
		if cur == nil {
			out = append(out, block{line: n})
			cur = &out[len(out)-1]
		}
		cur.lines = append(cur.lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, errf("line %d is longer than %d bytes", n+1, maxLineBytes)
	}
	return out, nil
}

// parseTiming reads "A --> B[ settings]" with timestamps whose fraction is
// set off by sep. WebVTT allows the hours to be left out (mm:ss.ttt).
func parseTiming(line string, sep byte, hoursOptional bool) (int64, int64, error) {
	a, rest, ok := strings.Cut(line, "-->")
	if !ok {
		return 0, 0, errors.New("no --> in the timing line")
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return 0, 0, errors.New("no end time")
	}
	start, err := parseStamp(strings.TrimSpace(a), sep, hoursOptional)
	if err != nil {
		return 0, 0, err
	}
	end, err := parseStamp(fields[0], sep, hoursOptional)
	if err != nil {
		return 0, 0, err
	}
	return start, end, nil
}

// parseStamp reads hh:mm:ss<sep>ttt (hh may have more digits; with
// hoursOptional, mm:ss<sep>ttt too) into milliseconds.
func parseStamp(s string, sep byte, hoursOptional bool) (int64, error) {
	bad := errors.New("a timestamp is not of the form hh:mm:ss" + string(sep) + "ttt")
	main, frac, ok := strings.Cut(s, string(sep))
	if !ok || len(frac) != 3 || !digits(frac) {
		return 0, bad
	}
	parts := strings.Split(main, ":")
	if len(parts) == 2 && hoursOptional {
		parts = append([]string{"0"}, parts...)
	}
	if len(parts) != 3 || len(parts[1]) != 2 || len(parts[2]) != 2 || len(parts[0]) == 0 || len(parts[0]) > 3 {
		return 0, bad
	}
	var v [3]int64
	for i, p := range parts {
		if !digits(p) {
			return 0, bad
		}
		v[i], _ = strconv.ParseInt(p, 10, 64)
	}
	if v[1] > 59 || v[2] > 59 {
		return 0, bad
	}
	ms, _ := strconv.ParseInt(frac, 10, 64)
	return ((v[0]*60+v[1])*60+v[2])*1000 + ms, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// vttVoice splits a leading "<v Speaker>" voice span off a cue's text.
func vttVoice(s string) (speaker, text string) {
	if !strings.HasPrefix(s, "<v") || len(s) < 3 || (s[2] != ' ' && s[2] != '.' && s[2] != '\t') {
		return "", s
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return "", s
	}
	tag := s[2:end]
	if i := strings.IndexAny(tag, " \t"); i >= 0 {
		speaker = strings.TrimSpace(tag[i+1:])
	}
	return speaker, strings.TrimSuffix(s[end+1:], "</v>")
}

// stripTags removes markup such as <b>, </i>, <c.loud> and <00:01.000>,
// and unescapes the entities WebVTT defines.
func stripTags(s string) string {
	var sb strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			sb.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			sb.WriteString(s)
			break
		}
		sb.WriteString(s[:i])
		s = s[i+j+1:]
	}
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&nbsp;", "\u00a0", "&lrm;", "", "&rlm;", "")
	return r.Replace(sb.String())
}
