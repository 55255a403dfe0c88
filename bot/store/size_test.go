package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	bolt "go.etcd.io/bbolt"
)

// realisticSeries is one instance probed every minute: used memory that
// follows a daily cycle plus noise (about 1 MiB a minute), RSS tracking it
// through a slowly drifting fragmentation ratio, keys proportional to
// memory, evictions in occasional bursts, a rare OOM error, and a probe
// that now and then runs a second late.
func realisticSeries(rng *rand.Rand, start time.Time, n int) []handlers.Point {
	const (
		gib       = 1 << 30
		maxmemory = 8 * gib
	)
	base := float64(4*gib) + rng.Float64()*gib
	frag, allocFrag := 1.15+rng.Float64()*0.1, 1.02
	var walk, peak, evicted, ooms float64
	out := make([]handlers.Point, n)
	for i := range out {
		day := 2 * math.Pi * float64(i) / (24 * 60)
		walk += rng.NormFloat64() * 512 * 1024
		used := base + 400*1024*1024*math.Sin(day) + walk
		peak = max(peak, used)
		frag = min(max(frag+rng.NormFloat64()*0.001, 1.05), 1.6)
		allocFrag = min(max(allocFrag+rng.NormFloat64()*0.0005, 1.0), 1.2)
		if rng.IntN(50) == 0 {
			evicted += float64(1 + rng.IntN(5000))
		}
		if rng.IntN(10000) == 0 {
			ooms++
		}
		at := start.Add(time.Duration(i) * time.Minute)
		if rng.IntN(10) == 0 {
			at = at.Add(time.Second + time.Duration(rng.IntN(1000))*time.Millisecond)
		}
		out[i] = handlers.Point{
			At:             at,
			UsedMemory:     int64(used),
			RSS:            int64(used*frag) + rng.Int64N(64*1024),
			Peak:           int64(peak),
			Maxmemory:      maxmemory,
			EvictedKeys:    int64(evicted),
			OOMErrors:      int64(ooms),
			Keys:           int64(used / 1100),
			FragRatio:      frag,
			AllocFragRatio: allocFrag,
		}
	}
	return out
}

// encodedSize is the bytes the series takes as hour blocks, values only.
func encodedSize(xs []handlers.Point) (bytes, blocks int) {
	blk := block{cols: numCols}
	var hour time.Time
	flush := func() {
		if len(blk.rows) > 0 {
			bytes += len(blk.encode())
			blocks++
		}
		blk.rows = blk.rows[:0]
	}
	for _, x := range xs {
		if h := x.At.UTC().Truncate(time.Hour); !h.Equal(hour) {
			flush()
			hour = h
		}
		blk.insert(sampleRow(x))
	}
	flush()
	return bytes, blocks
}

// BenchmarkSampleBytes encodes 14 days of minute samples of one instance
// and reports the encoded bytes per sample (block values, without keys).
func BenchmarkSampleBytes(b *testing.B) {
	xs := realisticSeries(rand.New(rand.NewPCG(7, 7)), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 14*24*60)
	var size int
	for b.Loop() {
		size, _ = encodedSize(xs)
	}
	b.ReportMetric(float64(size)/float64(len(xs)), "bytes/sample")
}

// TestSampleBytes holds the encoding to its target, so a change that
// bloats it fails here rather than in a benchmark nobody reads.
func TestSampleBytes(t *testing.T) {
	xs := realisticSeries(rand.New(rand.NewPCG(7, 7)), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 14*24*60)
	size, blocks := encodedSize(xs)
	per := float64(size) / float64(len(xs))
	t.Logf("14 days of minute samples: %d samples in %d blocks, %d bytes, %.2f bytes/sample", len(xs), blocks, size, per)
	if per >= 16 {
		t.Errorf("%.2f bytes/sample, want under 16", per)
	}
}

// TestHistoryFootprint writes one day of minute samples for 20 instances
// into a bbolt file, as the bot would (one atomic append per sample), and
// logs what the file costs per sample. fsync is off here only to keep
// the test fast: it does not change the file's layout.
func TestHistoryFootprint(t *testing.T) {
	t.Parallel()
	const (
		instances = 20
		minutes   = 24 * 60
	)
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: start.Add(24 * time.Hour)}
	path := filepath.Join(t.TempDir(), "history.db")
	b, err := openBolt(ctx, path, clk.Now, true)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(b, Options{Now: clk.Now})
	rng := rand.New(rand.NewPCG(1, 1))
	all := make([][]handlers.Point, instances)
	for i := range all {
		all[i] = realisticSeries(rng, start, minutes)
	}
	began := time.Now()
	for m := range minutes {
		for i := range all {
			if err := s.AppendSample(ctx, fmt.Sprintf("cache-%02d", i), all[i][m]); err != nil {
				t.Fatal(err)
			}
		}
	}
	took := time.Since(began)

	var keyBytes, valueBytes int
	var (
		stats bolt.BucketStats
		hwm   int64
	)
	err = b.db.View(func(tx *bolt.Tx) error {
		hwm = tx.Size()
		bk := tx.Bucket([]byte(kindHistory))
		stats = bk.Stats()
		return bk.ForEach(func(k, v []byte) error {
			keyBytes += len(k)
			valueBytes += len(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	n := float64(instances * minutes)
	per := func(bytes int64) string { return fmt.Sprintf("%d B = %.2f B/sample", bytes, float64(bytes)/n) }
	t.Logf("%d instances x 1 day = %.0f samples appended in %v (%v each)", instances, n, took.Round(time.Millisecond), (took / time.Duration(n)).Round(time.Microsecond))
	t.Logf("history keys and values: %s (%d blocks)", per(int64(keyBytes+valueBytes)), stats.KeyN)
	t.Logf("history pages allocated: %s (%d leaf pages)", per(int64(stats.LeafAlloc+stats.BranchAlloc)), stats.LeafPageN+stats.LeafOverflowN)
	t.Logf("file high-water mark: %s; file size: %s (bbolt grows the file ahead of use, in doubling steps up to 16 MiB, then by 16 MiB)", per(hwm), per(fi.Size()))
}
