package store_test

import (
	"slices"
	"sync"
	"testing"

	"tyst/store"
)

// goneLog records the OnRecordGone calls and what the store answered
// inside each (a callback may call the store: no lock is held).
type goneLog struct {
	mu    sync.Mutex
	ids   []uint64
	state []string
}

func watchGone(tb testing.TB, db *store.DB) *goneLog {
	tb.Helper()
	g := &goneLog{}
	db.OnRecordGone(func(id uint64) {
		gone, err := db.RecordGone(id)
		_, rerr := db.Record(ctx, id)
		st := "committed"
		if err != nil || !gone || store.ErrorCode(rerr) != store.CodeNotFound {
			st = "not committed"
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		g.ids = append(g.ids, id)
		g.state = append(g.state, st)
	})
	return g
}

func (g *goneLog) calls() ([]uint64, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.ids), slices.Clone(g.state)
}

// TestDB_OnRecordGone: the callbacks hear of every destroyed and purged
// record once, after the deletion committed, and of nothing else (a dry
// run, a refused destroy, a repeat, a record not expired).
func TestDB_OnRecordGone(t *testing.T) {
	t.Run("Destroy", func(t *testing.T) {
		db, _ := mustOpenDB(t)
		g := watchGone(t, db)
		rec := mustCreate(t, db, "t")
		other := mustCreate(t, db, "other")
		if gone, err := db.RecordGone(rec.ID); err != nil || gone {
			t.Fatalf("RecordGone of a live record = %v, %v", gone, err)
		}
		if _, err := db.Destroy(ctx, rec.ID, store.DestroyRequest{DryRun: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Destroy(ctx, rec.ID, store.DestroyRequest{Reason: "no confirm"}); store.ErrorCode(err) != store.CodeValidation {
			t.Fatalf("err=%v", err)
		}
		if ids, _ := g.calls(); len(ids) != 0 {
			t.Fatalf("called for %v before any destroy", ids)
		}
		for range 2 { // the repeat answers already_deleted and calls nothing
			if _, err := db.Destroy(ctx, rec.ID, store.DestroyRequest{Confirm: true, Reason: "source asked"}); err != nil {
				t.Fatal(err)
			}
		}
		ids, states := g.calls()
		if !slices.Equal(ids, []uint64{rec.ID}) || !slices.Equal(states, []string{"committed"}) {
			t.Fatalf("calls %v %v, want [%d] [committed]", ids, states, rec.ID)
		}
		if gone, err := db.RecordGone(rec.ID); err != nil || !gone {
			t.Fatalf("RecordGone of a destroyed record = %v, %v", gone, err)
		}
		if gone, _ := db.RecordGone(other.ID); gone {
			t.Fatal("another record is reported gone")
		}
	})
	t.Run("Purge", func(t *testing.T) {
		db, env := mustOpenDB(t)
		g := watchGone(t, db)
		old1, old2 := mustCreate(t, db, "a"), mustCreate(t, db, "b")
		env.now = env.now.Add(20 * 24 * 3600e9)
		fresh := mustCreate(t, db, "c")
		out, err := db.PurgeRecords(ctx, []uint64{old1.ID, fresh.ID, old2.ID}, env.now, store.DefaultRetention)
		if err != nil {
			t.Fatal(err)
		}
		if store.ErrorCode(out[1].Err) != store.CodeConflict {
			t.Fatalf("fresh record: %v", out[1].Err)
		}
		ids, states := g.calls()
		if !slices.Equal(ids, []uint64{old1.ID, old2.ID}) || !slices.Equal(states, []string{"committed", "committed"}) {
			t.Fatalf("calls %v %v, want [%d %d] committed", ids, states, old1.ID, old2.ID)
		}
	})
}
