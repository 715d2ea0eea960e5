package main

import (
	"strings"
	"testing"

	"tyst/store"
)

func TestKeygen(t *testing.T) {
	out, _, code := runCmd(t, nil, "keygen")
	key := strings.TrimSpace(out)
	if code != 0 || len(key) != 44 {
		t.Fatalf("keygen: %q exit %d", out, code)
	}
	if _, err := store.NewKeyring(key); err != nil {
		t.Fatalf("keygen printed an unusable key: %v", err)
	}
	out2, _, _ := runCmd(t, nil, "keygen")
	if out2 == out {
		t.Fatal("keygen printed the same key twice")
	}
}
