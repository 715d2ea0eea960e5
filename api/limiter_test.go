package api

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiter_FullTableAdmitsNewKeys: a table full of locked-out keys (a
// flood of made-up usernames or addresses) does not lock out a key that has
// not failed: the oldest entry is evicted, the table stays at its bound,
// and the newer locked-out keys stay locked.
func TestLimiter_FullTableAdmitsNewKeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now }, 15*time.Minute, 5)
	if got, want := l.maxKeys, maxLimiterKeys; got != want {
		t.Fatalf("bound %d, want %d", got, want)
	}
	const bound = 5000 // smaller than the real one, so the test runs fast
	l.maxKeys = bound
	for i := range bound {
		for range 5 {
			if !l.take(fmt.Sprint("k", i)) {
				t.Fatalf("key %d refused before its fifth attempt", i)
			}
		}
		now = now.Add(time.Millisecond) // under the window in all: nothing expires
	}
	if got, want := l.len(), bound; got != want {
		t.Fatalf("table holds %d, want %d", got, want)
	}
	for i := range 1000 {
		if !l.take(fmt.Sprint("new", i)) {
			t.Fatalf("new key %d refused by a full table", i)
		}
	}
	if got, want := l.len(), bound; got != want {
		t.Fatalf("table holds %d after the flood, want %d (its bound)", got, want)
	}
	if l.take(fmt.Sprint("k", bound-1)) {
		t.Fatal("the newest locked-out key was evicted instead of the oldest")
	}
	if !l.take("k0") {
		t.Fatal("the oldest key is still counted: it was not the one evicted")
	}
}

// TestLimiter_Window: a key is locked for its window, then free again;
// expired entries leave the table; refunds and resets remove entries, even
// from the middle of the eviction order.
func TestLimiter_Window(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(func() time.Time { return now }, 15*time.Minute, 5)
	for range 5 {
		l.take("x")
	}
	if l.take("x") {
		t.Fatal("a sixth attempt in the window went ahead")
	}
	now = now.Add(10 * time.Minute)
	l.take("a")
	l.take("b")
	l.take("c")
	l.refund("b") // the middle of the order
	if got, want := l.len(), 3; got != want {
		t.Fatalf("table holds %d, want %d", got, want)
	}
	now = now.Add(5 * time.Minute) // x's window has passed, a's and c's not
	if !l.take("x") {
		t.Fatal("x still locked after its window")
	}
	if got, want := l.len(), 3; got != want { // a, c and a fresh x
		t.Fatalf("table holds %d after x expired, want %d", got, want)
	}
	l.reset("c")
	l.refund("a")
	l.refund("x")
	if got := l.len(); got != 0 {
		t.Fatalf("table holds %d after refunds and a reset, want 0", got)
	}
	if l.front != nil || l.back != nil {
		t.Fatal("the eviction order still holds entries")
	}
}
