package api

import (
	"regexp"
	"strconv"
	"testing"
)

var decimalID = regexp.MustCompile(`^[1-9][0-9]*$`)

// FuzzParseID: an id is accepted exactly when it is a decimal number from 1
// to 2^64-1 without sign, leading zero or anything else, and then it prints
// back as itself.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1", "0", "01", "+1", "-1", "1e3", " 1", "18446744073709551615", "18446744073709551616", "", "١٢"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseID(s)
		_, perr := strconv.ParseUint(s, 10, 64)
		want := decimalID.MatchString(s) && perr == nil
		if (err == nil) != want {
			t.Fatalf("parseID(%q) err=%v, want accepted=%v", s, err, want)
		}
		if err == nil && strconv.FormatUint(id, 10) != s {
			t.Fatalf("parseID(%q)=%d does not print back", s, id)
		}
	})
}
