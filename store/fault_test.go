package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"tyst/retention"
	"tyst/store"
)

// updateFigures rewrites docs/reliability/failpoints.json, the figures
// docs/RELIABILITY.md quotes.
var updateFigures = flag.Bool("update", false, "rewrite docs/reliability/failpoints.json")

// errInjected is the failure the fault hook injects.
var errInjected = errors.New("injected fault")

// faultOp is one write path walked by TestFaultWalk.
type faultOp struct {
	name string
	// keys, when set, opens the fixture for the operation (a rotation);
	// the fixture's own keyring otherwise.
	keys func(env *testEnv) *store.Keyring
	// setup builds the fixture once; every step of the walk starts from a
	// copy of it.
	setup func(t *testing.T, db *store.DB, env *testEnv)
	// run is the operation under the fault.
	run func(db *store.DB, env *testEnv) error
	// state describes what a user can see of what the operation touches;
	// after a fault it must be the state before or the state after.
	state func(t *testing.T, db *store.DB, env *testEnv) string
	// rerun marks a best-effort operation (purge, rekey) that goes on past
	// a failure and is run again to finish: after a fault, running it
	// again without one must reach the state of a complete run.
	rerun bool
	// invisible marks an operation that changes nothing a user sees
	// (compaction): every run must leave the state before.
	invisible bool
}

// walkFigures is what a walk found, for docs/RELIABILITY.md.
type walkFigures struct {
	Op     string   `json:"op"`
	Steps  []string `json:"steps"`  // the fault points of a complete run, in order
	Faults int      `json:"faults"` // injected faults (each checked twice: live and as a crash image)
}

// TestFaultWalk walks an injected fault through every step of each write
// path, SQLite-style: the first run fails at the first fault point the
// operation reaches, the next at the second, and so on until the
// operation completes without reaching the fault. After each run it
// checks two stores:
//
//   - the live one, where the operation returned the fault as an error
//     (a failing disk at that step);
//   - a copy of the data directory taken at the fault point, before the
//     operation went on (a process killed there).
//
// Both are reopened (as a restart does) and must verify clean — bbolt's
// check, every record key, every blob decrypting to its SHA-256, no orphan
// or temp file, no export package without its row, the audit chain — and
// show either the state before the operation or the state after it,
// never a mix; the state after it when the operation reported success.
func TestFaultWalk(t *testing.T) {
	wav := mustReadFile(t, wavFile)
	sum := sha256.Sum256(wav)
	want := hex.EncodeToString(sum[:])
	var figures []walkFigures
	for _, op := range faultOps(wav, want) {
		t.Run(op.name, func(t *testing.T) {
			fig := walkFault(t, op)
			figures = append(figures, fig)
			t.Logf("%d steps: %s", len(fig.Steps), strings.Join(fig.Steps, " → "))
		})
	}
	if *updateFigures && !t.Failed() {
		writeFigures(t, "failpoints.json", figures)
	}
}

// walkFault runs op with the fault at step 1, 2, … until it completes.
func walkFault(t *testing.T, op faultOp) walkFigures {
	base := newEnv(t)
	db := mustOpenRaw(t, base.dir, testOptions(t, base))
	op.setup(t, db, base)
	db.Close()
	keys := base.keys
	if op.keys != nil {
		keys = op.keys(base)
	}
	fig := walkFigures{Op: op.name}
	before := ""
	var states []string // what each faulted run left, live and crashed
	var acked []bool    // whether the operation reported success
	for step := 1; ; step++ {
		if step > 100 {
			t.Fatal("the operation did not complete within 100 fault points")
		}
		env := *base
		env.dir, env.keys = t.TempDir(), keys
		copyDir(t, base.dir, env.dir)
		image := t.TempDir()
		var seen []string
		armed := false
		opts := testOptions(t, &env)
		opts.Fault = func(point string) error {
			if !armed {
				return nil
			}
			seen = append(seen, point)
			if len(seen) != step {
				return nil
			}
			copyDir(t, env.dir, image) // the disk as a crash here leaves it
			return fmt.Errorf("%s: %w", point, errInjected)
		}
		db := mustOpenRaw(t, env.dir, opts)
		if before == "" {
			before = op.state(t, db, &env)
		}
		armed = true
		err := op.run(db, &env)
		armed = false
		if err != nil && !errors.Is(err, errInjected) {
			t.Fatalf("step %d: %v", step, err)
		}
		db.Close()
		if len(seen) < step { // no fault reached: the operation completed
			if err != nil {
				t.Fatalf("completed run: %v", err)
			}
			fig.Steps = seen
			after := checkRestart(t, env.dir, &env, op, false, "complete run")
			if op.invisible != (after == before) {
				t.Fatalf("the complete run left:\n%s\nbefore it:\n%s", after, before)
			}
			for i, s := range states {
				what := fmt.Sprintf("fault at %s (%s)", fig.Steps[i/2], [2]string{"live", "crash"}[i%2])
				switch {
				case op.rerun && s != after:
					t.Fatalf("%s, then a second run, left:\n%s\nnot the state of a complete run:\n%s", what, s, after)
				case s != before && s != after:
					t.Fatalf("%s left a mixed state:\n%s\nbefore:\n%s\nafter:\n%s", what, s, before, after)
				case acked[i] && s != after:
					t.Fatalf("%s: the operation reported success, but the state is the old one:\n%s", what, s)
				}
			}
			return fig
		}
		fig.Faults++
		point := seen[step-1]
		live := checkRestart(t, env.dir, &env, op, op.rerun, fmt.Sprintf("live, fault at %s", point))
		crash := checkRestart(t, image, &env, op, op.rerun, fmt.Sprintf("crash at %s", point))
		states = append(states, live, crash)
		acked = append(acked, err == nil, false)
	}
}

// mustOpenRaw opens dir without the cleanup check of mustOpenEnv (the
// walk closes and copies the store itself).
func mustOpenRaw(tb testing.TB, dir string, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// checkRestart opens dir as a restarted server would, checks that it
// verifies clean and holds no leftover, and returns op's state; with
// rerun, after running op once more.
func checkRestart(t *testing.T, dir string, env *testEnv, op faultOp, rerun bool, what string) string {
	t.Helper()
	e := *env
	e.dir = dir
	env = &e
	db, err := store.Open(dir, testOptions(t, env))
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	defer db.Close()
	rep, err := db.Verify(ctx, store.VerifyOptions{})
	if err != nil {
		t.Fatalf("%s: verify: %v", what, err)
	}
	if !rep.OK {
		t.Fatalf("%s: verify after restart: %+v", what, rep.Problems)
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Fatalf("%s: leftovers after restart: %v", what, left)
	}
	if rerun {
		if err := op.run(db, env); err != nil {
			t.Fatalf("%s: run again: %v", what, err)
		}
	}
	return op.state(t, db, env)
}

// leftovers lists what a restart must have cleaned: temp files, an
// unfinished or replaced database file, export files without a row.
func leftovers(t *testing.T, dir string) []string {
	var out []string
	for _, sub := range []string{"blobs/tmp", "exports/tmp"} {
		es, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range es {
			out = append(out, sub+"/"+e.Name())
		}
	}
	for _, f := range []string{"tyst.db.compact", "tyst.db.old"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			out = append(out, f)
		}
	}
	return out
}

// exportFiles lists the package ids of the export files in dir.
func exportFiles(dir string) []string {
	var ids []string
	es, _ := os.ReadDir(filepath.Join(dir, "exports"))
	for _, e := range es {
		if id, ok := strings.CutPrefix(e.Name(), "export-"); ok {
			ids = append(ids, strings.TrimSuffix(id, ".zip.enc"))
		}
	}
	sort.Strings(ids)
	return ids
}

// exportState describes every export package: each must open and
// decrypt to its end.
func exportState(t *testing.T, db *store.DB, env *testEnv) string {
	var sb strings.Builder
	for _, id := range exportFiles(env.dir) {
		er, err := db.OpenExport(ctx, id)
		if err != nil {
			t.Fatalf("export package on disk does not open: %v", err)
		}
		n, err := io.Copy(io.Discard, er)
		er.Close()
		if err != nil || n != er.Size {
			t.Fatalf("export package reads %d of %d bytes: %v", n, er.Size, err)
		}
		sb.WriteString("export\n")
	}
	return sb.String()
}

// audioState describes every record: its id, and its audio's SHA-256
// read back through decryption, or "none".
func audioState(t *testing.T, db *store.DB) string {
	recs, _, err := db.Records(ctx, store.RecordFilter{Limit: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&sb, "record %d: ", r.ID)
		ar, err := db.OpenAudio(ctx, r.ID)
		if store.ErrorCode(err) == store.CodeNotFound {
			sb.WriteString("no audio\n")
			continue
		}
		if err != nil {
			t.Fatalf("record %d: audio does not open: %v", r.ID, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, ar)
		ar.Close()
		if err != nil {
			t.Fatalf("record %d: audio does not read: %v", r.ID, err)
		}
		fmt.Fprintf(&sb, "audio %x\n", h.Sum(nil))
	}
	return sb.String()
}

func faultOps(wav []byte, want string) []faultOp {
	attach := func(t *testing.T, db *store.DB) uint64 {
		rec := mustCreate(t, db, "with audio")
		mustAttach(t, db, rec.ID, "audio/wav", wav)
		return rec.ID
	}
	withExport := func(t *testing.T, db *store.DB) {
		id := attach(t, db)
		if _, err := db.Export(ctx, id, store.ExportRequest{Confirm: true, Reason: "editor"}); err != nil {
			t.Fatal(err)
		}
	}
	both := func(t *testing.T, db *store.DB, env *testEnv) string {
		return audioState(t, db) + exportState(t, db, env)
	}
	return []faultOp{
		{
			name:  "Upload",
			setup: func(t *testing.T, db *store.DB, _ *testEnv) { mustCreate(t, db, "empty") },
			run: func(db *store.DB, _ *testEnv) error {
				a, err := db.AttachAudio(ctx, 1, store.NewAudio{DeclaredType: "audio/wav", Body: bytes.NewReader(wav)})
				if err == nil && a.SHA256 != want {
					return fmt.Errorf("acknowledged sha256 %s, want %s", a.SHA256, want)
				}
				return err
			},
			state: func(t *testing.T, db *store.DB, _ *testEnv) string { return audioState(t, db) },
		},
		{
			name:  "Export",
			setup: func(t *testing.T, db *store.DB, _ *testEnv) { attach(t, db) },
			run: func(db *store.DB, _ *testEnv) error {
				_, err := db.Export(ctx, 1, store.ExportRequest{Confirm: true, Reason: "for the editor"})
				return err
			},
			state: both,
		},
		{
			name: "Destroy",
			setup: func(t *testing.T, db *store.DB, _ *testEnv) {
				withExport(t, db)
				attach(t, db) // a second record, untouched
			},
			run: func(db *store.DB, _ *testEnv) error {
				_, err := db.Destroy(ctx, 1, store.DestroyRequest{Confirm: true, Reason: "source asked"})
				return err
			},
			state: func(t *testing.T, db *store.DB, env *testEnv) string {
				s := both(t, db, env)
				res, err := db.Destroy(ctx, 1, store.DestroyRequest{DryRun: true})
				switch {
				case err == nil && res.Status == store.DestroyAlreadyDeleted && res.Receipt != nil:
					s += "record 1 destroyed, with its receipt\n"
				case err == nil && res.Status == store.DestroyDryRun:
				default:
					t.Fatalf("destroy dry run: %+v, %v", res, err)
				}
				return s + blobCount(t, env.dir)
			},
		},
		{
			name: "RemoveAudio",
			setup: func(t *testing.T, db *store.DB, _ *testEnv) {
				withExport(t, db) // its package goes with the audio
				withExport(t, db) // a second record, untouched
			},
			run: func(db *store.DB, _ *testEnv) error {
				_, err := db.RemoveAudio(ctx, 1, true, "wrong file")
				return err
			},
			state: func(t *testing.T, db *store.DB, env *testEnv) string {
				return both(t, db, env) + blobCount(t, env.dir)
			},
		},
		{
			name: "Purge",
			setup: func(t *testing.T, db *store.DB, env *testEnv) {
				withExport(t, db) // expires, with its audio and export
				mustCreate(t, db, "expires without audio")
				held := attach(t, db) // on hold: stays
				if _, err := db.UpdateRecord(ctx, held, store.RecordUpdate{Hold: ptr(true)}); err != nil {
					t.Fatal(err)
				}
			},
			run: func(db *store.DB, env *testEnv) error {
				st, err := retention.Run(ctx, db, retention.Options{Now: env.now.Add(30 * 24 * time.Hour)})
				if err == nil && st.Errors > 0 {
					return fmt.Errorf("purge counted %d errors: %w", st.Errors, errInjected)
				}
				return err
			},
			state: func(t *testing.T, db *store.DB, env *testEnv) string {
				return both(t, db, env) + blobCount(t, env.dir)
			},
			rerun: true,
		},
		{
			name: "Compact",
			setup: func(t *testing.T, db *store.DB, _ *testEnv) {
				withExport(t, db)
				attach(t, db)
				if _, err := db.Destroy(ctx, 2, store.DestroyRequest{Confirm: true, Reason: "gone"}); err != nil {
					t.Fatal(err)
				}
			},
			run: func(db *store.DB, _ *testEnv) error {
				_, err := db.Compact(ctx)
				return err
			},
			state:     both,
			invisible: true,
		},
		{
			name: "Rekey",
			keys: func(env *testEnv) *store.Keyring {
				kr, err := store.NewKeyring(rekeyNewKey, env.key)
				if err != nil {
					panic(err)
				}
				return kr
			},
			setup: func(t *testing.T, db *store.DB, _ *testEnv) {
				withExport(t, db)
				for range 300 { // more items than one batch seals
					mustCreate(t, db, "filler")
				}
			},
			run: func(db *store.DB, _ *testEnv) error {
				_, err := db.Rekey(ctx, store.RekeyOptions{})
				return err
			},
			// A rekey stopped part way may leave items under either key;
			// what a user sees must not change, and a second run must
			// finish the job.
			state: func(t *testing.T, db *store.DB, env *testEnv) string {
				s := both(t, db, env)
				usage, err := db.KeyUsage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				old, _ := store.KeyID(env.key)
				if usage[old] == 0 {
					s += "all under the new key\n"
				}
				return s
			},
			rerun: true,
		},
	}
}

// rekeyNewKey is the key the Rekey walk rotates to.
var rekeyNewKey = store.GenerateKey()

// blobCount counts the blob files under dir.
func blobCount(t *testing.T, dir string) string {
	return fmt.Sprintf("blobs %d\n", len(blobFiles(t, dir))-tmpCount(dir))
}

func tmpCount(dir string) int {
	es, _ := os.ReadDir(filepath.Join(dir, "blobs", "tmp"))
	return len(es)
}

// writeFigures writes v as JSON to docs/reliability/name.
func writeFigures(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "docs", "reliability", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
