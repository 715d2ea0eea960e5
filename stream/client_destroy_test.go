package stream_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"tyst/internal/testproxy"
	"tyst/store"
	"tyst/stream/client"
)

// TestClient_RecordDestroyed: `tyst stream`'s client stops when its
// record is destroyed, live or while its connection is down: Run fails
// with ErrRecordDestroyed (no stored audio, nothing claimed stored) and
// the rest of the audio goes nowhere, not into a continuation record.
func TestClient_RecordDestroyed(t *testing.T) {
	for _, down := range []bool{false, true} {
		name := map[bool]string{false: "Live", true: "WhileDisconnected"}[down]
		t.Run(name, func(t *testing.T) {
			e := mustEnv(t)
			proxy, err := testproxy.Start(strings.TrimPrefix(e.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			pcm := canaryPCM(16000 * 2 * 4)
			pr, pw := io.Pipe()
			defer pw.Close()
			var w warnings
			cfg := clientConfig(t, e, "http://"+proxy.Addr(), pr, &w)
			type result struct {
				res *client.Result
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := client.Run(t.Context(), cfg)
				done <- result{res, err}
			}()
			pw.Write(pcm[:64000])
			waitFor(t, 10*time.Second, func() bool { return e.streams.Streams() == 1 })
			recs, _, err := e.db.Records(e.principal(t), store.RecordFilter{Limit: 10})
			if err != nil || len(recs) != 1 {
				t.Fatalf("records %v %v", recs, err)
			}
			id := recs[0].ID
			if down {
				proxy.SetDown(true)
				proxy.Cut()
				waitFor(t, 10*time.Second, func() bool { return e.streams.Live() == 0 })
			}
			e.destroyHTTP(t, id)
			go func() {
				pw.Write(pcm[64000:])
				if down {
					proxy.SetDown(false)
				}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the client did not stop")
			}
			if !errors.Is(r.err, client.ErrRecordDestroyed) {
				t.Fatalf("Run: %v, want ErrRecordDestroyed\n%s", r.err, &w)
			}
			if !strings.Contains(r.err.Error(), "none of its audio is stored") || r.res.Stored.SizeBytes != 0 {
				t.Fatalf("claims stored audio: %v %+v", r.err, r.res.Stored)
			}
			if len(r.res.Records) != 1 {
				t.Fatalf("records %v: the audio went on into another record", r.res.Records)
			}
			if recs, _, _ := e.db.Records(e.principal(t), store.RecordFilter{Limit: 10}); len(recs) != 0 {
				t.Fatalf("%d records on the server after the destroy", len(recs))
			}
		})
	}
}
