package store

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBlockRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cols := range []int{numCols, numCols + 3} {
		blk := block{cols: cols}
		tm := int64(1_700_000_000)
		for range 200 {
			row := make([]int64, cols)
			tm += int64(rng.IntN(120)) + 1 // irregular intervals
			row[colTime] = tm
			for j := 1; j < cols; j++ {
				switch rng.IntN(4) {
				case 0: // unchanged
					if n := len(blk.rows); n > 0 {
						row[j] = blk.rows[n-1][j]
					}
				case 1: // extremes survive wrapping arithmetic
					row[j] = []int64{math.MinInt64, math.MaxInt64, -1, 0}[rng.IntN(4)]
				default:
					row[j] = rng.Int64N(1<<40) - 1<<39
				}
			}
			blk.rows = append(blk.rows, row)
		}
		got, err := decodeBlock(blk.encode())
		if err != nil {
			t.Fatalf("%d columns: %v", cols, err)
		}
		if got.cols != cols || !slices.EqualFunc(got.rows, blk.rows, slices.Equal) {
			t.Fatalf("%d columns: round trip changed the block", cols)
		}
	}
}

// TestBlockTruncated: a cut block never decodes into wrong values. A cut
// at a sample boundary is a valid shorter block, which is why appends are
// atomic read-modify-writes that replace the whole block.
func TestBlockTruncated(t *testing.T) {
	var blk block
	blk.cols = numCols
	for _, x := range series(time.Unix(1_700_000_000, 0), 30) {
		blk.insert(sampleRow(x))
	}
	full := blk.encode()
	for n := range len(full) {
		got, err := decodeBlock(full[:n])
		if err != nil {
			if !errors.Is(err, errBlockCorrupt) {
				t.Errorf("cut at %d: %v", n, err)
			}
			continue
		}
		if len(got.rows) >= len(blk.rows) || !slices.EqualFunc(got.rows, blk.rows[:len(got.rows)], slices.Equal) {
			t.Errorf("cut at %d decoded into rows that were not written", n)
		}
	}
	if _, err := decodeBlock([]byte{9, 10}); !errors.Is(err, errBlockVersion) {
		t.Errorf("version 9: %v, want errBlockVersion", err)
	}
	for _, bad := range [][]byte{nil, {1}, {1, 0}, {1, 65}, {1, 1, 2, 0x02, 1}} {
		if _, err := decodeBlock(bad); !errors.Is(err, errBlockCorrupt) {
			t.Errorf("decodeBlock(%v) = %v, want errBlockCorrupt", bad, err)
		}
	}
}

func TestPrecision(t *testing.T) {
	for _, tc := range []struct{ in, want int64 }{
		{0, 0}, {511, 0}, {512, 1}, {1023, 1}, {1024, 1}, {1535, 1}, {1536, 2},
		{-511, 0}, {-512, -1}, {math.MaxInt64, math.MaxInt64/1024 + 1},
	} {
		if got := toKiB(tc.in); got != tc.want {
			t.Errorf("toKiB(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   float64
		want int64
	}{{1.004, 100}, {1.006, 101}, {1.4249, 142}, {0, 0}, {math.NaN(), 0}, {math.Inf(1), 0}} {
		if got := toHundredths(tc.in); got != tc.want {
			t.Errorf("toHundredths(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func FuzzDecodeBlock(f *testing.F) {
	var blk block
	blk.cols = numCols
	for _, x := range series(time.Unix(1_700_000_000, 0), 5) {
		blk.insert(sampleRow(x))
	}
	f.Add(blk.encode())
	f.Add([]byte{1, 1, 0})
	f.Add([]byte{1, 64, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeBlock(b)
		if err != nil {
			return
		}
		again, err := decodeBlock(got.encode())
		if err != nil || !slices.EqualFunc(again.rows, got.rows, slices.Equal) {
			t.Fatalf("re-encoding a decoded block changed it: %v", err)
		}
	})
}
