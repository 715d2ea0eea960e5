package main

import (
	"path/filepath"
	"strings"
	"testing"

	"tyst/store"
	"tyst/stream/proto"
)

// TestServe_RefusesBadStreamSettings: a per-principal stream cap out of
// range, by flag or environment, stops serve with a message that names the
// setting and not its value.
func TestServe_RefusesBadStreamSettings(t *testing.T) {
	clearKeyEnv(t)
	for name, c := range map[string]struct {
		env     map[string]string
		args    []string
		mention string
	}{
		"PerUserZero":       {nil, []string{"--max-streams-per-user", "0"}, "--max-streams-per-user"},
		"PerTokenNegative":  {nil, []string{"--max-streams-per-token", "-7731"}, "--max-streams-per-token"},
		"PerTokenNotNumber": {map[string]string{"TYST_MAX_STREAMS_PER_TOKEN": "lots-7731"}, nil, "TYST_MAX_STREAMS_PER_TOKEN"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TYST_MAX_STREAMS_PER_USER", "")
			t.Setenv("TYST_MAX_STREAMS_PER_TOKEN", "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append([]string{"serve", "--data", filepath.Join(t.TempDir(), "d"), "--listen", "127.0.0.1:0"}, c.args...)
			_, errOut, code := runCmd(t, nil, args...)
			if code == 0 || !strings.Contains(errOut, c.mention) {
				t.Fatalf("exit %d, stderr %q: want a failure naming %s", code, errOut, c.mention)
			}
			if strings.Contains(errOut, "7731") {
				t.Fatalf("stderr shows the value: %q", errOut)
			}
		})
	}
}

// TestServe_StreamCap: the real binary with TYST_MAX_STREAMS_PER_TOKEN=1
// refuses a token's second stream with too_many_streams (close 1008) while
// its first is held, dropped and resumable included.
func TestServe_StreamCap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	clearKeyEnv(t)
	bin, err := buildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, key := t.TempDir(), store.GenerateKey()
	token := offlineToken(t, bin, data, key)
	srv := startServer(t, bin, data, key, "TYST_MAX_STREAMS_PER_TOKEN=1", "TYST_MAX_STREAMS_PER_USER=")
	client := authClient(token)
	first := dialStream(t, srv.base, token, loadCreate(t, client, srv.base))
	first.text(start16kMono)
	if m, code := first.next(); m == nil {
		t.Fatalf("first start: closed %d", code)
	}
	first.conn.Close() // dropped: still held, resumable
	second := dialStream(t, srv.base, token, loadCreate(t, client, srv.base))
	second.text(start16kMono)
	m, code := second.next()
	if e, ok := m.(proto.Error); !ok || e.Code != proto.CodeTooManyStreams {
		t.Fatalf("second start answered %#v, want error too_many_streams", m)
	}
	if _, code = second.next(); code != proto.ClosePolicy {
		t.Fatalf("second start closed %d, want %d", code, proto.ClosePolicy)
	}
}

const start16kMono = `{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"mic"}`
