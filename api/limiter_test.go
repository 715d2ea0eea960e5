package api

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiter_Bounded: a flood of new keys cannot grow the table past its
// bound; once their window has passed, the sweep makes room again; refunds
// remove entries that fall to zero.
func TestLimiter_Bounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now }, 15*time.Minute, 5)
	for i := range maxLimiterKeys {
		if !l.take(fmt.Sprint("k", i)) {
			t.Fatalf("key %d refused before the table was full", i)
		}
	}
	if l.take("one more") {
		t.Fatal("a new key was let in past the bound")
	}
	if got := len(l.hits); got != maxLimiterKeys {
		t.Fatalf("table holds %d, want %d", got, maxLimiterKeys)
	}
	now = now.Add(15 * time.Minute)
	if !l.take("after the window") {
		t.Fatal("no room after the window passed")
	}
	if got := len(l.hits); got != 1 {
		t.Fatalf("sweep left %d entries, want 1", got)
	}
	l.refund("after the window")
	if got := len(l.hits); got != 0 {
		t.Fatalf("refund to zero left %d entries", got)
	}
	for range 5 {
		l.take("x")
	}
	if l.take("x") {
		t.Fatal("a sixth attempt in the window went ahead")
	}
}
