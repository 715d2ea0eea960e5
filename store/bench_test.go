package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"tyst/retention"
	"tyst/store"
	"tyst/store/fstream"
)

// benchCount reads a fixture size from the environment, so `make bench`
// stays short while the full figures are one command away, e.g.
// TYST_BENCH_RECORDS=10000 go test -run '^$' -bench 'Purge|Rekey' ./store.
func benchCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchFixture makes a data directory with n records (each with a small
// WAV when audio is set), created 30 days before now, written without
// fsync (only the fixture: the measured part runs with the real options).
func benchFixture(b *testing.B, n int, audio bool) (dir, key string, t0 time.Time) {
	b.Helper()
	dir, key = b.TempDir(), store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	t0 = time.Now().Add(-30 * 24 * time.Hour)
	db, err := store.Open(dir, store.Options{Keys: kr, Now: func() time.Time { return t0 }, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	wav := wavOfSize(4096, 1)
	for i := range n {
		rec, err := db.CreateRecord(context.Background(), store.NewRecord{Title: "bench " + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		if audio {
			if _, err := db.AttachAudio(context.Background(), rec.ID, store.NewAudio{Body: bytes.NewReader(wav)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	db.Close()
	return dir, key, t0
}

func benchOpen(b *testing.B, dir, key string, retention time.Duration) *store.DB {
	b.Helper()
	kr, _ := store.NewKeyring(key)
	db, err := store.Open(dir, store.Options{Keys: kr, Retention: retention})
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkPurge purges N expired records with blobs (default 1,000; set
// TYST_BENCH_RECORDS=10000 for the figure the README quotes) and reports
// records per second, compaction included.
func BenchmarkPurge(b *testing.B) {
	n := benchCount("TYST_BENCH_RECORDS", 1000)
	for b.Loop() {
		b.StopTimer()
		dir, key, _ := benchFixture(b, n, true)
		db := benchOpen(b, dir, key, 14*24*time.Hour)
		b.StartTimer()
		start := time.Now()
		st, err := retention.Run(context.Background(), db, retention.Options{Retention: 14 * 24 * time.Hour, Now: time.Now()})
		elapsed := time.Since(start)
		if err != nil || st.PurgedCount != n || st.FilesDeleted != n || st.Errors != 0 {
			b.Fatalf("purge: %+v %v", st, err)
		}
		b.StopTimer()
		db.Close()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(n), "records")
		b.StartTimer()
	}
}

// BenchmarkRekey re-seals N records (default 1,000; TYST_BENCH_RECORDS)
// after a rotation and reports the seconds it took and items per second.
func BenchmarkRekey(b *testing.B) {
	n := benchCount("TYST_BENCH_RECORDS", 1000)
	for b.Loop() {
		b.StopTimer()
		dir, key, _ := benchFixture(b, n, false)
		kr, _ := store.NewKeyring(store.GenerateKey(), key)
		db, err := store.Open(dir, store.Options{Keys: kr})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		st, err := db.Rekey(context.Background(), store.RekeyOptions{})
		elapsed := time.Since(start)
		if err != nil || st.Skipped != 0 {
			b.Fatalf("rekey: %+v %v", st, err)
		}
		b.StopTimer()
		db.Close()
		b.ReportMetric(elapsed.Seconds(), "s")
		b.ReportMetric(float64(n), "records")
		b.ReportMetric(float64(st.Resealed)/elapsed.Seconds(), "items/s")
		b.StartTimer()
	}
}

// BenchmarkVerify reads back TYST_BENCH_VERIFY_MB of blobs (default 200;
// 1000 for the README's 1 GB figure) and reports MB/s against the
// in-process limit measured in the same run: the stream format's
// decryption and SHA-256 of one file in one goroutine.
func BenchmarkVerify(b *testing.B) {
	total := int64(benchCount("TYST_BENCH_VERIFY_MB", 200)) << 20
	const each = 100 << 20
	dir, key := b.TempDir(), store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	db, err := store.Open(dir, store.Options{Keys: kr})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for left := total; left > 0; left -= each {
		rec, _ := db.CreateRecord(context.Background(), store.NewRecord{Title: "bench"})
		if _, err := db.AttachAudio(context.Background(), rec.ID, store.NewAudio{Body: benchWAV(min(left, each)), MaxBytes: each}); err != nil {
			b.Fatal(err)
		}
	}
	// The limit: one file of the stream format, decrypted and hashed.
	limitFile := filepath.Join(b.TempDir(), "limit.fst")
	f, _ := os.Create(limitFile)
	fw, _ := fstream.NewWriter(f, kr.Primary())
	io.Copy(fw, benchWAV(each))
	fw.Close()
	f.Close()
	b.SetBytes(total)
	var verifyDur, limitDur time.Duration
	for b.Loop() {
		start := time.Now()
		rep, err := db.Verify(context.Background(), store.VerifyOptions{})
		verifyDur += time.Since(start)
		if err != nil || !rep.OK || rep.BytesChecked != total {
			b.Fatalf("verify: %+v %v", rep, err)
		}
		start = time.Now()
		in, _ := os.Open(limitFile)
		h := sha256.New()
		if _, err := io.Copy(h, fstream.NewReader(in, kr.All())); err != nil {
			b.Fatal(err)
		}
		in.Close()
		limitDur += time.Since(start) * time.Duration(total) / each
	}
	verify := float64(total) / 1e6 / (verifyDur.Seconds() / float64(b.N))
	limit := float64(total) / 1e6 / (limitDur.Seconds() / float64(b.N))
	b.ReportMetric(verify, "verify_MB/s")
	b.ReportMetric(limit, "limit_MB/s")
	b.ReportMetric(verify/limit, "ratio")
}

// benchWAV is a reader of a 16 kHz mono WAV of n bytes with pseudo-random
// samples.
func benchWAV(n int64) io.Reader {
	h := wavOfSize(44, 0)
	binary.LittleEndian.PutUint32(h[4:], uint32(n-8))
	binary.LittleEndian.PutUint32(h[40:], uint32(n-44))
	return io.MultiReader(bytes.NewReader(h), io.LimitReader(rand.NewChaCha8([32]byte{1}), n-44))
}

// BenchmarkProjects measures, with TYST_BENCH_PROJECT_RECORDS records in 100
// projects (default 10,000; 100000 for the README figure), what must stay
// within a few milliseconds however many records there are: a create in a
// named project, a project's first page of records, and the project list.
func BenchmarkProjects(b *testing.B) {
	n := benchCount("TYST_BENCH_PROJECT_RECORDS", 10000)
	dir, key := b.TempDir(), store.GenerateKey()
	kr, _ := store.NewKeyring(key)
	db, err := store.Open(dir, store.Options{Keys: kr, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	var pids []uint64
	for i := range 100 {
		p, err := db.CreateProject(context.Background(), store.NewProject{Name: fmt.Sprintf("project %d", i)})
		if err != nil {
			b.Fatal(err)
		}
		pids = append(pids, p.ID)
	}
	for i := range n {
		if _, err := db.CreateRecord(context.Background(), store.NewRecord{ProjectID: pids[i%len(pids)], Title: "r"}); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	db = benchOpen(b, dir, key, 0)
	defer db.Close()
	viewer := store.WithPrincipal(context.Background(), &store.Principal{UserID: 77, Role: store.RoleEditor})
	b.Run("CreateInProject", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.CreateRecord(viewer, store.NewRecord{ProjectID: pids[7], Title: "r"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ProjectPage", func(b *testing.B) {
		for b.Loop() {
			recs, _, err := db.Records(viewer, store.RecordFilter{ProjectID: pids[3], Limit: 50})
			if err != nil || len(recs) != min(50, n/100) {
				b.Fatalf("%d records, %v", len(recs), err)
			}
		}
	})
	b.Run("ProjectList", func(b *testing.B) {
		for b.Loop() {
			ps, err := db.Projects(viewer)
			if err != nil || len(ps) < 100 {
				b.Fatalf("%d projects, %v", len(ps), err)
			}
		}
	})
}
