package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"tyst/store"
)

// TestAudit_NoExactSizes: the audit log, which outlives a removed audio
// and is under the newsroom key, keeps the sizes of an upload and of an
// export in whole MiB only, so a later holder of the key cannot confirm a
// known recording by its exact length.
func TestAudit_NoExactSizes(t *testing.T) {
	db, _ := mustOpenDB(t)
	ctx := t.Context()
	const size = 1<<20 + 234_567 // an odd size, in the second MiB
	rec, err := db.CreateRecord(ctx, store.NewRecord{Title: "sizes"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AttachAudio(ctx, rec.ID, store.NewAudio{Body: bytes.NewReader(wavOfSize(size, 3))}); err != nil {
		t.Fatal(err)
	}
	res, err := db.Export(ctx, rec.ID, store.ExportRequest{Confirm: true, Reason: "for the desk", Mode: store.ExportDecrypted})
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := db.OpenExport(ctx, res.PackageID)
	if err != nil {
		t.Fatal(err)
	}
	pkgSize := pkg.Size
	pkg.Close()
	events, _, err := db.AuditEvents(ctx, store.AuditFilter{RecordID: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, ev := range events {
		raw, _ := json.Marshal(ev)
		for _, exact := range []int64{size, pkgSize} {
			if strings.Contains(string(raw), fmt.Sprint(exact)) {
				t.Fatalf("%s holds the exact size %d: %s", ev.Action, exact, raw)
			}
		}
		if m, ok := ev.Meta["mib"]; ok {
			got[ev.Action] = m
		}
	}
	if fmt.Sprint(got[store.ActionAudioUploaded]) != "2" || fmt.Sprint(got[store.ActionExportCreated]) != fmt.Sprint((pkgSize+1<<20-1)>>20) {
		t.Fatalf("sizes in MiB: %v (package %d bytes)", got, pkgSize)
	}
}
