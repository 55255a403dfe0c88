package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// sweepSnapshot is a small snapshot of instance; n tells sweeps apart.
func sweepSnapshot(instance string, at time.Time, n int) *handlers.Snapshot {
	return &handlers.Snapshot{
		Instance:    instance,
		ProbedAt:    at,
		RoundTrip:   time.Duration(n+1) * time.Millisecond,
		Info:        handlers.Info{"used_memory": fmt.Sprint(1<<20 + n), "mem_fragmentation_ratio": "1.42"},
		Config:      map[string]string{"maxmemory": "104857600"},
		MemoryStats: map[string]float64{"overhead.total": float64(4096 + n)},
	}
}

// expiresIn is how long the backend keeps a key (0: for ever): bbolt's
// envelope read against the injected clock, or Redis's PTTL.
func expiresIn(t *testing.T, f *fixture, kind, key string) time.Duration {
	t.Helper()
	switch b := f.s.raw.(type) {
	case *boltBackend:
		var d time.Duration
		err := b.db.View(func(tx *bolt.Tx) error {
			v := tx.Bucket([]byte(kind)).Get([]byte(key))
			if len(v) == 0 {
				return fmt.Errorf("%s %q: missing", kind, printable(key))
			}
			if v[0] == tagExpiry {
				d = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).Sub(f.clock.Now())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	case *redisBackend:
		d, err := b.c.PTTL(context.Background(), b.key(kind, key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return max(d, 0) // -1: no expiry
	default:
		t.Fatalf("backend %T", b)
		return 0
	}
}

// TestRecordSweep writes the same sweeps through RecordSweep and through
// PutSnapshot+AppendSample, under different names, and reads back the
// same records, bytes and TTLs, the snapshots once they are flushed (they
// are persisted only when due: TestSnapshotsPersistedWhenDue). 130
// instances make 260 writes a sweep, more than one Redis group.
func TestRecordSweep(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const instances = 130
		name := func(how string, i int) string { return fmt.Sprintf("%s-%03d", how, i) }
		// Two minutes before an hour: the four sweeps span two blocks.
		start := f.clock.Now().Truncate(time.Hour).Add(-2*time.Minute + 250*time.Millisecond)
		xs := series(start, 4)
		began := time.Now()
		for n, x := range xs {
			records := make([]SweepRecord, instances)
			for i := range instances {
				snap := sweepSnapshot(name("sweep", i), x.At, n)
				records[i] = SweepRecord{Instance: snap.Instance, Snapshot: snap, Point: x}
				each := sweepSnapshot(name("each", i), x.At, n)
				if err := f.s.PutSnapshot(ctx, each); err != nil {
					t.Fatal(err)
				}
				if err := f.s.AppendSample(ctx, each.Instance, x); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.s.RecordSweep(ctx, records); err != nil {
				t.Fatalf("sweep %d: %v", n, err)
			}
		}

		if err := f.s.flushLatest(ctx); err != nil {
			t.Fatal(err)
		}
		// Redis counts TTLs down on its own clock: a block may have lost
		// up to the real time since the test's first write.
		expires := func(t *testing.T, key string, hour time.Time) {
			t.Helper()
			want := hour.Add(time.Hour + defaultRetention).Sub(f.clock.Now())
			if got := expiresIn(t, f, kindHistory, key); got > want || got < want-time.Since(began)-time.Second {
				t.Errorf("%s: block expires in %v, want %v", printable(key), got, want)
			}
		}
		hours := []time.Time{start.UTC().Truncate(time.Hour), start.UTC().Truncate(time.Hour).Add(time.Hour)}
		for i := range instances {
			swept, each := name("sweep", i), name("each", i)
			got, ok := f.s.Last(ctx, swept)
			if !ok {
				t.Fatalf("Last(%s): no snapshot", swept)
			}
			sameJSON(t, got, sweepSnapshot(swept, xs[3].At, 3))
			sv, err := f.s.b.get(ctx, kindSnapshots, swept)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := f.s.b.get(ctx, kindSnapshots, each)
			if err != nil {
				t.Fatal(err)
			}
			sweptSnap, err := decodeSnapshot(swept, sv)
			if err != nil {
				t.Fatal(err)
			}
			eachSnap, err := decodeSnapshot(each, ev)
			if err != nil {
				t.Fatal(err)
			}
			eachSnap.Instance = swept
			sameJSON(t, sweptSnap, eachSnap)
			if st, et := expiresIn(t, f, kindSnapshots, swept), expiresIn(t, f, kindSnapshots, each); st != 0 || et != 0 {
				t.Errorf("%s: snapshot expires in %v, PutSnapshot's in %v; want neither", swept, st, et)
			}

			ss, err := f.s.Samples(ctx, swept, start, start.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			es, err := f.s.Samples(ctx, each, start, start.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != len(xs) {
				t.Fatalf("%s: %d samples, want %d", swept, len(ss), len(xs))
			}
			for j := range xs {
				closeEnough(t, j, ss[j], xs[j])
			}
			sameJSON(t, ss, es)
			for _, h := range hours {
				sb, err := f.s.b.get(ctx, kindHistory, historyKey(swept, h))
				if err != nil {
					t.Fatal(err)
				}
				eb, err := f.s.b.get(ctx, kindHistory, historyKey(each, h))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sb, eb) {
					t.Errorf("%s %v: block %x, AppendSample's %x", swept, h, sb, eb)
				}
				expires(t, historyKey(swept, h), h)
				expires(t, historyKey(each, h), h)
			}
		}
	})
}

// TestSnapshotsPersistedWhenDue: a sweep's snapshot is what Last answers at
// once, but the backend gets it only the first time, when the server
// restarted, once every PersistEvery, and at Close; what another replica
// (or this process after a restart) reads is the persisted one.
func TestSnapshotsPersistedWhenDue(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const instance = "cache-1"
		n := 0
		sweep := func(runID string) *handlers.Snapshot {
			t.Helper()
			n++
			snap := sweepSnapshot(instance, f.clock.Now(), n)
			snap.Info["run_id"] = runID
			snap.Info["uptime_in_seconds"] = fmt.Sprint(60 * n)
			if err := f.s.RecordSweep(ctx, []SweepRecord{{Instance: instance, Snapshot: snap}}); err != nil {
				t.Fatal(err)
			}
			if got, ok := f.s.Last(ctx, instance); !ok || !got.ProbedAt.Equal(snap.ProbedAt) {
				t.Fatalf("sweep %d: Last = %v, want the sweep's snapshot", n, got)
			}
			f.clock.Advance(time.Minute)
			return snap
		}
		persisted := func(want *handlers.Snapshot) {
			t.Helper()
			b, err := f.s.b.get(ctx, kindSnapshots, instance)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeSnapshot(instance, b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ProbedAt.Equal(want.ProbedAt) {
				t.Fatalf("after sweep %d: persisted snapshot from %s, want %s", n, got.ProbedAt, want.ProbedAt)
			}
		}

		first := sweep("aaa")
		persisted(first)
		// Within the spread of the first period, nothing more is written.
		for range 3 {
			sweep("aaa")
		}
		persisted(first)
		// Another process: at once.
		restarted := sweep("bbb")
		persisted(restarted)
		for range int(defaultPersistEvery/time.Minute) - 1 {
			sweep("bbb")
		}
		persisted(restarted)
		due := sweep("bbb")
		persisted(due)
		last := sweep("bbb")
		persisted(due)
		if err := f.s.Close(); err != nil {
			t.Fatal(err)
		}
		if f.replica == nil {
			return // bbolt: one process owns the file
		}
		other := f.replica(t)
		if got, ok := other.Last(ctx, instance); !ok || !got.ProbedAt.Equal(last.ProbedAt) {
			t.Fatalf("after Close another store reads %v, want the last sweep's", got)
		}
	})
}

// TestSamplesHeldUntilDue: a sweep's samples are in Samples at once, but
// the backend gets an instance's samples only when the instance is due
// (the first time, then every PersistEvery) or at Close.
func TestSamplesHeldUntilDue(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const instance = "cache-1"
		start := f.clock.Now()
		stored := func() int {
			t.Helper()
			n := 0
			err := f.s.b.list(ctx, kindHistory, prefixSpan(instance+sep), func(_ string, val []byte) bool {
				blk, err := decodeBlock(val)
				if err != nil {
					t.Fatal(err)
				}
				n += len(blk.rows)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		sweeps := 0
		sweep := func() {
			t.Helper()
			sweeps++
			if err := f.s.RecordSweep(ctx, []SweepRecord{{Instance: instance, Point: handlers.Point{At: f.clock.Now(), Keys: int64(sweeps)}}}); err != nil {
				t.Fatal(err)
			}
			xs, err := f.s.Samples(ctx, instance, start, f.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(xs) != sweeps || xs[len(xs)-1].Keys != int64(sweeps) {
				t.Fatalf("after sweep %d: Samples = %+v", sweeps, xs)
			}
			f.clock.Advance(time.Minute)
		}
		sweep()
		if n := stored(); n != 1 {
			t.Fatalf("the first sweep stored %d samples, want 1", n)
		}
		first := spread(instance, defaultPersistEvery)
		for f.clock.Now().Before(start.Add(first)) {
			sweep()
		}
		if n := stored(); n != 1 {
			t.Fatalf("before %s stored %d samples, want 1", first, n)
		}
		sweep()
		if n := stored(); n != sweeps {
			t.Fatalf("when due stored %d samples, want %d", n, sweeps)
		}
		sweep()
		sweep()
		if err := f.s.flushLatest(ctx); err != nil {
			t.Fatal(err)
		}
		if n := stored(); n != sweeps {
			t.Fatalf("after the flush stored %d samples, want %d", n, sweeps)
		}
	})
}

// TestRecordSweepPartial: records that cannot be written are skipped and
// named, each with the error the single method would give, and the rest
// of the sweep is written, the other half of a failing record included.
func TestRecordSweepPartial(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if err := f.s.RecordSweep(ctx, nil); err != nil {
			t.Errorf("RecordSweep(nil) = %v", err)
		}
		if err := f.s.RecordSweep(ctx, []SweepRecord{}); err != nil {
			t.Errorf("RecordSweep(empty) = %v", err)
		}

		now := f.clock.Now()
		hour := now.UTC().Truncate(time.Hour)
		// cache-4's block of this hour was written by a newer, incompatible
		// version: appending to it fails.
		if err := f.s.b.put(ctx, kindHistory, historyKey("cache-4", hour), []byte{2, 1, 0}, time.Hour); err != nil {
			t.Fatal(err)
		}
		unencodable := sweepSnapshot("cache-3", now, 0)
		unencodable.MemoryStats["bad"] = math.NaN()
		snap := func(instance string) *handlers.Snapshot { return sweepSnapshot(instance, now, 0) }
		records := []SweepRecord{
			{Instance: "cache-0", Snapshot: snap("cache-0"), Point: handlers.Point{At: now, Keys: 1}},
			{Instance: "cache-1", Point: handlers.Point{At: now, Keys: 2}},
			{Instance: "bad\x00name", Snapshot: snap("bad\x00name"), Point: handlers.Point{At: now}},
			{Instance: "cache-3", Snapshot: unencodable, Point: handlers.Point{At: now, Keys: 4}},
			{Instance: "cache-4", Snapshot: snap("cache-4"), Point: handlers.Point{At: now, Keys: 5}},
			{Instance: "cache-5", Snapshot: snap("cache-5"), Point: handlers.Point{At: now.Add(-defaultRetention - 2*time.Hour)}},
			{Instance: "", Point: handlers.Point{At: now}},
			// The same block as record 0's, in the same sweep.
			{Instance: "cache-0", Point: handlers.Point{At: now.Add(time.Second), Keys: 8}},
			// At left zero: the sweep's Now.
			{Instance: "cache-8", Point: handlers.Point{Keys: 9}},
		}
		err := f.s.RecordSweep(ctx, records)
		if err == nil {
			t.Fatal("RecordSweep with invalid records: no error")
		}
		msg := err.Error()
		for _, bad := range []int{2, 3, 4, 6} {
			if !strings.Contains(msg, fmt.Sprintf("record %d (instance %q)", bad, records[bad].Instance)) {
				t.Errorf("the error does not name record %d:\n%s", bad, msg)
			}
		}
		for _, good := range []int{0, 1, 5, 7, 8} {
			if strings.Contains(msg, fmt.Sprintf("record %d ", good)) {
				t.Errorf("the error names record %d, which was written:\n%s", good, msg)
			}
		}
		// The single methods' errors, word for word. They write nothing.
		for _, single := range []error{
			f.s.PutSnapshot(ctx, snap("bad\x00name")),
			f.s.AppendSample(ctx, "bad\x00name", handlers.Point{At: now}),
			f.s.PutSnapshot(ctx, unencodable),
			f.s.AppendSample(ctx, "cache-4", handlers.Point{At: now, Keys: 5}),
			f.s.AppendSample(ctx, "", handlers.Point{At: now}),
		} {
			if single == nil || !strings.Contains(msg, single.Error()) {
				t.Errorf("the error lacks %q:\n%s", single, msg)
			}
		}

		samples := func(instance string) []int64 {
			t.Helper()
			xs, err := f.s.Samples(ctx, instance, now.Add(-defaultRetention-3*time.Hour), now.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var keys []int64
			for _, x := range xs {
				keys = append(keys, x.Keys)
			}
			return keys
		}
		for _, tc := range []struct {
			instance string
			snapshot bool
			keys     string
		}{
			{"cache-0", true, "[1 8]"},
			{"cache-1", false, "[2]"},
			{"cache-3", false, "[4]"}, // the snapshot failed, the sample is kept
			{"cache-4", true, "[]"},   // the sample failed, the snapshot is kept
			{"cache-5", true, "[]"},   // the sample was too old to keep
			{"cache-8", false, "[9]"},
		} {
			if _, ok := f.s.Last(ctx, tc.instance); ok != tc.snapshot {
				t.Errorf("%s: snapshot written = %v, want %v", tc.instance, ok, tc.snapshot)
			}
			if got := fmt.Sprint(samples(tc.instance)); got != tc.keys {
				t.Errorf("%s: samples with keys %s, want %s", tc.instance, got, tc.keys)
			}
		}
		if xs, _ := f.s.Samples(ctx, "cache-8", now, now); len(xs) != 1 {
			t.Errorf("a zero At was not the sweep's Now: %+v", xs)
		}
	})
}

// TestRecordSweepRace: sweeps and single appends (on Redis from another
// replica) to the same blocks at once lose no sample.
func TestRecordSweepRace(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		other := f.s
		if f.replica != nil {
			other = f.replica(t)
		}
		const instances, rounds = 8, 15
		base := f.clock.Now().Truncate(time.Minute)
		at := func(round, parity int) time.Time { return base.Add(time.Duration(2*round+parity) * time.Second) }
		var wg sync.WaitGroup
		wg.Go(func() {
			for r := range rounds {
				records := make([]SweepRecord, instances)
				for i := range records {
					inst := fmt.Sprintf("cache-%d", i)
					records[i] = SweepRecord{Instance: inst, Snapshot: sweepSnapshot(inst, at(r, 0), r), Point: handlers.Point{At: at(r, 0), Keys: 1}}
				}
				if err := f.s.RecordSweep(ctx, records); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for r := range rounds {
				for i := range instances {
					if err := other.AppendSample(ctx, fmt.Sprintf("cache-%d", i), handlers.Point{At: at(r, 1), Keys: 2}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
		wg.Wait()
		for i := range instances {
			xs, err := f.s.Samples(ctx, fmt.Sprintf("cache-%d", i), base, at(rounds, 0))
			if err != nil {
				t.Fatal(err)
			}
			if len(xs) != 2*rounds {
				t.Errorf("cache-%d: %d samples, want %d", i, len(xs), 2*rounds)
			}
		}
	})
}

// TestRedisBatchConflict: a group whose watched key another replica
// writes between the read and EXEC is redone, and keeps both writes.
func TestRedisBatchConflict(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartT(t)
	open := func() *redisBackend {
		b, err := openRedis(ctx, "redis://"+srv.Addr+"/0", defaultKeyPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.close() })
		return b
	}
	ours, theirs := open(), open()
	runs := 0
	ops := []updateOp{
		{kind: kindSnapshots, key: "cache-1", val: []byte("snapshot")},
		{kind: kindHistory, key: "block", ttl: time.Hour, fn: func(old []byte) ([]byte, error) {
			runs++
			// Not a pure fn, on purpose: the first run is raced.
			if runs == 1 {
				if err := theirs.put(ctx, kindHistory, "block", []byte("theirs"), time.Hour); err != nil {
					return nil, err
				}
			}
			return append(old, "+ours"...), nil
		}},
	}
	failed, err := ours.updateMany(ctx, ops)
	if err != nil || failed[0] != nil || failed[1] != nil {
		t.Fatalf("updateMany = %v, %v", failed, err)
	}
	if runs != 2 {
		t.Errorf("fn ran %d times, want 2 (the raced run and the redo)", runs)
	}
	for key, want := range map[[2]string]string{{kindHistory, "block"}: "theirs+ours", {kindSnapshots, "cache-1"}: "snapshot"} {
		if got, err := ours.get(ctx, key[0], key[1]); err != nil || string(got) != want {
			t.Errorf("%s %s = %q, %v; want %q", key[0], key[1], got, err, want)
		}
	}
}

// BenchmarkRecordSweep1000 stores what a sweep of 1,000 instances keeps,
// a snapshot with the captured Redis 7.0 INFO and a sample each, side by
// side as 1,000 PutSnapshot+AppendSample calls and as one RecordSweep. On
// bbolt (fsync on, as in the bot) it is 2,000 transactions against one;
// Redis, on a loopback server, is there for scale. Each iteration is the
// next minute's sweep, appending to the same hour blocks.
func BenchmarkRecordSweep1000(b *testing.B) {
	const fleet = 1000
	raw, err := os.ReadFile(filepath.Join("..", "..", "handlers", "testdata", "info", "redis-7.0.txt"))
	if err != nil {
		b.Fatal(err)
	}
	info := handlers.ParseInfo(string(raw))
	sweepAt := func(at time.Time) []SweepRecord {
		records := make([]SweepRecord, fleet)
		for i := range records {
			snap := &handlers.Snapshot{Instance: fmt.Sprintf("cache-%04d", i), ProbedAt: at, RoundTrip: time.Millisecond,
				Info: info, Config: map[string]string{"maxmemory": "104857600", "maxmemory-policy": "allkeys-lru"}}
			records[i] = SweepRecord{Instance: snap.Instance, Snapshot: snap, Point: handlers.Point{At: at,
				UsedMemory: int64(1<<30 + i<<10), RSS: 1<<30 + 1<<27, Peak: 3 << 29, Maxmemory: 2 << 30, Keys: int64(i), FragRatio: 1.13}}
		}
		return records
	}
	variants := []struct {
		name  string
		write func(ctx context.Context, s *Store, records []SweepRecord) error
	}{
		{"PutSnapshot+AppendSample", func(ctx context.Context, s *Store, records []SweepRecord) error {
			for _, r := range records {
				if err := s.PutSnapshot(ctx, r.Snapshot); err != nil {
					return err
				}
				if err := s.AppendSample(ctx, r.Instance, r.Point); err != nil {
					return err
				}
			}
			return nil
		}},
		{"RecordSweep", func(ctx context.Context, s *Store, records []SweepRecord) error {
			return s.RecordSweep(ctx, records)
		}},
	}
	backendsFor := []struct {
		name string
		open func(b *testing.B, now func() time.Time) *Store
	}{
		{"bbolt", func(b *testing.B, now func() time.Time) *Store {
			s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "redisbot.db"), Now: now})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"redis", func(b *testing.B, now func() time.Time) *Store {
			srv := redistest.StartT(b)
			s, err := Open(context.Background(), Options{RedisURL: "redis://" + srv.Addr + "/0", Now: now})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, be := range backendsFor {
		for _, v := range variants {
			b.Run(be.name+"/"+v.name, func(b *testing.B) {
				ctx := context.Background()
				clk := newClock()
				s := be.open(b, clk.Now)
				defer s.Close()
				for b.Loop() {
					b.StopTimer()
					clk.Advance(time.Minute)
					records := sweepAt(clk.Now())
					b.StartTimer()
					if err := v.write(ctx, s, records); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/sweep")
			})
		}
	}
}
