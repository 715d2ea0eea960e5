package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// exactSizes names byte counts the log must not hold: the exact sizes of
// audio, export packages and their transfers. The data directory pads
// stored files to whole MiB so that a known recording cannot be confirmed
// by its length; a log shipped off the box must not give the length away.
type exactSizes map[string]int

// fetch GETs path (with a Range header when rng is set), checks that it
// answers with a body, and notes the body's size and, for a range, the
// whole file's size from Content-Range.
func (s exactSizes) fetch(tb testing.TB, ts *testServer, what, path, rng string, hdr []string) {
	tb.Helper()
	if rng != "" {
		hdr = append(append([]string(nil), hdr...), "Range", rng)
	}
	resp, body := ts.do(tb, "GET", path, "", nil, hdr...)
	want := http.StatusOK
	if rng != "" {
		want = http.StatusPartialContent
	}
	if resp.StatusCode != want {
		tb.Fatalf("GET %s (%s): status=%d, want %d", what, rng, resp.StatusCode, want)
	}
	s[what] = len(body)
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		_, total, _ := strings.Cut(cr, "/")
		n, err := strconv.Atoi(total)
		if err != nil {
			tb.Fatalf("GET %s: Content-Range %q", what, cr)
		}
		s[what+" (whole)"] = n
	}
}

// check fails tb for each size that stands in logs as a number, and checks
// that the access lines carry sizes in whole MiB: the audio's full GET logs
// its size rounded up.
func (s exactSizes) check(tb testing.TB, logs string) {
	tb.Helper()
	for what, n := range s {
		if n < 1000 { // small numbers stand in logs for other reasons (a status, a MiB count)
			tb.Fatalf("%s is %d bytes: too small to search the log for", what, n)
		}
		if regexp.MustCompile(`(^|[^0-9A-Za-z])` + strconv.Itoa(n) + `($|[^0-9A-Za-z])`).MatchString(logs) {
			tb.Errorf("the log holds the exact size of %s (%d bytes)", what, n)
		}
	}
	audio, ok := s["the audio"]
	if !ok {
		tb.Fatal("no audio download to check")
	}
	want := fmt.Sprintf(`"route":"/api/v1/record/:id/audio","status":200,"mib":%d,`, (audio+1<<20-1)>>20)
	if !strings.Contains(logs, want) {
		tb.Errorf("no access line of the audio download with its size in MiB (%s):\n%s", want, logs)
	}
}
