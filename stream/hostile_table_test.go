package stream_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"tyst/store"
	"tyst/stream/proto"
)

// TestHostileFrames is the WebSocket part of the hostile-input table
// (api's TestHostileTable holds the HTTP part): malformed upgrades,
// control messages and frames, each on its own connection. Each ends with
// its close code and error code, and none stores audio, writes a blob or
// an export, or adds an audit event; only a stream that was started
// before the bad frame keeps its spool (it stays resumable).
func TestHostileFrames(t *testing.T) {
	e := mustEnv(t)
	withAudio := e.mustRecord(t, "has audio")
	c := e.dial(t, withAudio)
	c.start(16000, 1)
	c.sendPCM(make([]byte, 3200), 3200)
	c.send(`{"type":"stop"}`)
	expect[proto.Stored](c)

	type frameCase struct {
		name      string
		record    uint64 // 0: a new record of its own
		started   bool   // send start first
		send      []byte // raw bytes, or
		text      string // one text message
		closeCode int
		errCode   string
	}
	pingBody := bytes.Repeat([]byte("p"), 125)
	cases := []frameCase{
		{name: "ResumeUnknownID", text: `{"type":"resume","stream_id":"0123456789abcdef0123456789abcdef"}`, closeCode: proto.ClosePolicy, errCode: proto.CodeUnknownStream},
		{name: "ResumeMalformedID", text: `{"type":"resume","stream_id":"../../spool/x"}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "ResumeNoID", text: `{"type":"resume"}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "ResumeIDNumber", text: `{"type":"resume","stream_id":7}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "TypeUnknown", text: `{"type":"pause"}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "TypeMissing", text: `{"format":"pcm_s16le"}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "JSONArray", text: `[{"type":"start"}]`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "JSONTrailing", text: start16k + `{}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "RateString", text: `{"type":"start","format":"pcm_s16le","sample_rate":"16000","channels":1}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "RateNegative", text: `{"type":"start","format":"pcm_s16le","sample_rate":-16000,"channels":1}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "ChannelsZero", text: `{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":0}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "SourceTraversal", text: `{"type":"start","format":"pcm_s16le","sample_rate":16000,"channels":1,"source":"../x"}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "ServerMessageFromClient", text: `{"type":"ack","offset":1000000}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "StopWithoutAudio", started: true, text: `{"type":"stop"}`, closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "StartOnRecordWithAudio", record: withAudio, text: start16k, closeCode: proto.ClosePolicy, errCode: "conflict"},
		{name: "InvalidUTF8Text", send: rawFrame(true, 0, ws.OpText, true, 4, []byte{'{', 0xff, 0xfe, '}'}), closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "StereoOddSamples", started: true, send: rawFrame(true, 0, ws.OpBinary, true, 3, []byte{1, 2, 3}), closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "PingMax", started: true, send: append(rawFrame(true, 0, ws.OpPing, true, 125, pingBody), rawFrame(true, 0, ws.OpText, true, 5, []byte("nope!"))...), closeCode: proto.ClosePolicy, errCode: "validation_error"},
		{name: "CloseCodeInvalid", send: rawFrame(true, 0, ws.OpClose, true, 2, []byte{0x03, 0xe7}), closeCode: proto.CloseProtocol, errCode: proto.CodeProtocol},
		{name: "CloseOneByte", send: rawFrame(true, 0, ws.OpClose, true, 1, []byte{0x03}), closeCode: proto.CloseProtocol, errCode: proto.CodeProtocol},
		{name: "CloseReasonNotUTF8", send: rawFrame(true, 0, ws.OpClose, true, 4, []byte{0x03, 0xe8, 0xff, 0xfe}), closeCode: proto.CloseProtocol, errCode: proto.CodeProtocol},
		{name: "StartOnUnknownRecord", record: 999999, text: start16k, closeCode: proto.ClosePolicy, errCode: "not_found"},
		{name: "TextBetweenFragments", started: true, send: append(rawFrame(false, 0, ws.OpBinary, true, 640, make([]byte, 640)),
			rawFrame(true, 0, ws.OpText, true, 15, []byte(`{"type":"stop"}`))...), closeCode: proto.CloseProtocol, errCode: proto.CodeProtocol},
		{name: "MaskedZeroLengthThenGarbage", send: append(rawFrame(true, 0, ws.OpBinary, true, 0, nil), 0xff, 0xff), closeCode: proto.ClosePolicy, errCode: "validation_error"},
	}
	before := hostileSnapshot(t, e)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.record
			if id == 0 {
				id = e.mustRecord(t, "hostile")
				before = hostileSnapshot(t, e)
			}
			spools := spoolCount(t, e)
			c := e.dial(t, id)
			if tc.started {
				c.start(16000, 1)
			}
			if tc.text != "" {
				c.send(tc.text)
			} else {
				c.nc.Write(tc.send)
			}
			c.expectClose(tc.closeCode, tc.errCode)
			if after := hostileSnapshot(t, e); after != before {
				t.Fatalf("a hostile frame changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			want := spools
			if tc.started {
				want++ // the stream stays resumable
			}
			if got := spoolCount(t, e); got != want {
				t.Fatalf("%d spool files, want %d", got, want)
			}
		})
	}

	// Refused before the upgrade: no connection, nothing changed.
	id := e.mustRecord(t, "upgrade")
	before = hostileSnapshot(t, e)
	upgrades := []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"NoToken", fmt.Sprintf("/api/v1/record/%d/stream", id), upgrade(""), 401},
		{"BadToken", fmt.Sprintf("/api/v1/record/%d/stream", id), upgrade("tyst_nope"), 401},
		{"BadID", "/api/v1/record/x/stream", upgrade(e.token), 400},
		{"NotAnUpgrade", fmt.Sprintf("/api/v1/record/%d/stream", id), http.Header{"Authorization": {"Bearer " + e.token}}, 400},
		{"WrongVersion", fmt.Sprintf("/api/v1/record/%d/stream", id), http.Header{"Authorization": {"Bearer " + e.token},
			"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}, 426},
	}
	for _, u := range upgrades {
		t.Run("Upgrade"+u.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.URL+u.path, nil)
			for k, v := range u.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != u.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, u.status)
			}
			if after := hostileSnapshot(t, e); after != before {
				t.Fatalf("a refused upgrade changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	if *updateFigures && !t.Failed() {
		b, _ := json.MarshalIndent(map[string]any{"cases": len(cases) + len(upgrades), "groups": map[string]int{
			"frames": len(cases), "upgrades": len(upgrades)}}, "", "  ")
		if err := os.WriteFile(filepath.Join("..", "docs", "reliability", "hostile-stream.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// upgrade is the header of a WebSocket upgrade with token, if any.
func upgrade(token string) http.Header {
	h := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// hostileSnapshot is what a refused frame must not change: each record's
// audio, the audit events, the blobs and export packages.
func hostileSnapshot(t *testing.T, e *env) string {
	t.Helper()
	recs, _, err := e.db.Records(t.Context(), store.RecordFilter{Limit: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&sb, "record %d audio %v\n", r.ID, r.Audio != nil)
	}
	events, _, err := e.db.AuditEvents(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&sb, "events %d\n", len(events))
	for _, dir := range []string{"blobs", "exports"} {
		filepath.WalkDir(filepath.Join(e.dir, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				fmt.Fprintf(&sb, "file %s\n", p)
			}
			return nil
		})
	}
	return sb.String()
}

func spoolCount(t *testing.T, e *env) int {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(e.dir, "spool", "*.spool"))
	return len(m)
}
