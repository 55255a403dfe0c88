package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// Metric history is kept compact because it is the bulk of the state: a
// probe a minute for 1,000 instances over 14 days is 20 million samples.
//
// # Block format (version 1)
//
// One block holds one instance's samples for one UTC hour, under the key
// instance NUL "2006-01-02T15" (so an instance's blocks are one key range,
// in time order). A block is:
//
//	uvarint  version, 1
//	uvarint  columns per sample, 10 in version 1
//	varint   each column of the first sample, absolute
//	then, for each further sample, oldest first:
//	uvarint  mask: bit j set when column j's residual is not zero
//	varint   the residual of each column whose bit is set, in column order
//
// varint is zigzag (encoding/binary.AppendVarint), so small negative
// deltas are as short as small positive ones. The residual of the time
// column is the change of the interval since the previous one (a delta of
// deltas): a steady probe interval costs nothing. For every other column
// it is the delta from the previous sample. Columns are ordered by how
// often they change, so the mask is one byte in the usual case:
//
//	0 time, Unix seconds (kept to the second, truncated)
//	1 used_memory, KiB   2 RSS, KiB   3 keys   4 peak, KiB
//	5 mem_fragmentation_ratio ×100   6 allocator_frag_ratio ×100
//	7 evicted_keys   8 maxmemory, KiB   9 OOM errors
//
// Byte counters are rounded to the nearest KiB and ratios to 0.01: plenty
// for trends, and it keeps a minute's drift of a large instance within two
// bytes. Counts are exact.
//
// A newer writer may add columns at the end. Older readers ignore them,
// and when they append they carry the last values forward, which costs
// nothing (a zero residual has no bytes). The version changes only for an
// incompatible format: readers skip blocks of a version they do not know
// and refuse to append to them.
//
// A minute series with drifting memory takes about 8 bytes a sample (see
// BenchmarkSampleBytes). Appending rewrites the block in one atomic
// read-modify-write on both backends, so a crash leaves the old block or
// the new one, never a torn one.

const blockVersion = 1

// Columns of a block, in the order they are encoded.
const (
	colTime = iota
	colUsed
	colRSS
	colKeys
	colPeak
	colFrag
	colAllocFrag
	colEvicted
	colMaxmemory
	colOOM
	numCols
)

// maxCols bounds the columns a reader accepts: the mask is a uint64.
const maxCols = 64

var (
	errBlockVersion = errors.New("unknown history block version")
	errBlockCorrupt = errors.New("corrupt history block")
)

// block is a decoded block: rows sorted by time, each with cols columns
// (cols > numCols when a newer writer added some).
type block struct {
	cols int
	rows [][]int64
}

func decodeBlock(b []byte) (block, error) {
	ver, n := binary.Uvarint(b)
	if n <= 0 {
		return block{}, errBlockCorrupt
	}
	if ver != blockVersion {
		return block{}, fmt.Errorf("%w %d", errBlockVersion, ver)
	}
	b = b[n:]
	cols, n := binary.Uvarint(b)
	if n <= 0 || cols == 0 || cols > maxCols {
		return block{}, errBlockCorrupt
	}
	b = b[n:]
	blk := block{cols: max(int(cols), numCols)}
	first := make([]int64, blk.cols)
	for j := range int(cols) {
		if first[j], n = binary.Varint(b); n <= 0 {
			return block{}, errBlockCorrupt
		}
		b = b[n:]
	}
	blk.rows = append(blk.rows, first)
	var interval int64
	for len(b) > 0 {
		mask, n := binary.Uvarint(b)
		if n <= 0 || (cols < 64 && mask>>cols != 0) {
			return block{}, errBlockCorrupt
		}
		b = b[n:]
		prev := blk.rows[len(blk.rows)-1]
		row := slices.Clone(prev)
		for j := range int(cols) {
			var r int64
			if mask&(1<<j) != 0 {
				if r, n = binary.Varint(b); n <= 0 {
					return block{}, errBlockCorrupt
				}
				b = b[n:]
			}
			if j == colTime {
				interval += r
				row[j] = prev[j] + interval
			} else {
				row[j] = prev[j] + r
			}
		}
		blk.rows = append(blk.rows, row)
	}
	return blk, nil
}

func (blk block) encode() []byte {
	// About 8 bytes a row; one allocation in the usual case.
	buf := make([]byte, 0, 16+8*blk.cols+10*len(blk.rows))
	buf = binary.AppendUvarint(buf, blockVersion)
	buf = binary.AppendUvarint(buf, uint64(blk.cols))
	for _, v := range blk.rows[0] {
		buf = binary.AppendVarint(buf, v)
	}
	resid := make([]int64, blk.cols)
	var interval int64
	for i := 1; i < len(blk.rows); i++ {
		prev, row := blk.rows[i-1], blk.rows[i]
		var mask uint64
		for j := range blk.cols {
			resid[j] = row[j] - prev[j]
			if j == colTime {
				resid[j], interval = resid[j]-interval, resid[j]
			}
			if resid[j] != 0 {
				mask |= 1 << j
			}
		}
		buf = binary.AppendUvarint(buf, mask)
		for _, r := range resid {
			if r != 0 {
				buf = binary.AppendVarint(buf, r)
			}
		}
	}
	return buf
}

// insert adds a row in time order. A row for a second already present
// replaces it, so a retried append does not duplicate. Columns this
// version does not know are carried from the neighbouring row.
func (blk *block) insert(row []int64) {
	i, found := slices.BinarySearchFunc(blk.rows, row[colTime], func(r []int64, t int64) int {
		return cmp.Compare(r[colTime], t)
	})
	full := make([]int64, blk.cols)
	switch {
	case found:
		copy(full, blk.rows[i])
	case i > 0:
		copy(full, blk.rows[i-1])
	case len(blk.rows) > 0:
		copy(full, blk.rows[0])
	}
	copy(full, row)
	if found {
		blk.rows[i] = full
		return
	}
	blk.rows = slices.Insert(blk.rows, i, full)
}

func sampleRow(x handlers.Point) []int64 {
	row := make([]int64, numCols)
	row[colTime] = x.At.Unix()
	row[colUsed] = toKiB(x.UsedMemory)
	row[colRSS] = toKiB(x.RSS)
	row[colKeys] = x.Keys
	row[colPeak] = toKiB(x.Peak)
	row[colFrag] = toHundredths(x.FragRatio)
	row[colAllocFrag] = toHundredths(x.AllocFragRatio)
	row[colEvicted] = x.EvictedKeys
	row[colMaxmemory] = toKiB(x.Maxmemory)
	row[colOOM] = x.OOMErrors
	return row
}

func rowSample(row []int64) handlers.Point {
	return handlers.Point{
		At:             time.Unix(row[colTime], 0).UTC(),
		UsedMemory:     row[colUsed] << 10,
		RSS:            row[colRSS] << 10,
		Peak:           row[colPeak] << 10,
		Maxmemory:      row[colMaxmemory] << 10,
		EvictedKeys:    row[colEvicted],
		OOMErrors:      row[colOOM],
		Keys:           row[colKeys],
		FragRatio:      float64(row[colFrag]) / 100,
		AllocFragRatio: float64(row[colAllocFrag]) / 100,
	}
}

// toKiB rounds bytes to the nearest KiB, half away from zero.
func toKiB(v int64) int64 {
	q, r := v/1024, v%1024
	switch {
	case r >= 512:
		q++
	case r <= -512:
		q--
	}
	return q
}

// toHundredths keeps a ratio to two decimals; a ratio INFO did not give
// (NaN, ±Inf) is stored as 0, which no real ratio is.
func toHundredths(f float64) int64 {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return 0
	}
	return int64(math.Round(f * 100))
}

// hourLayout names a block's hour in its key: fixed width, so keys sort
// by time.
const hourLayout = "2006-01-02T15"

func historyKey(instance string, hour time.Time) string {
	return instance + sep + hour.UTC().Format(hourLayout)
}

// blockHour is the hour a history key names.
func blockHour(key string) (time.Time, bool) {
	i := strings.LastIndex(key, sep)
	if i < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(hourLayout, key[i+1:])
	return t, err == nil
}

// AppendSample adds a sample (At = Now() when zero) to its instance's
// history. A sample older than Retention is not kept, as if Prune had run.
func (s *Store) AppendSample(ctx context.Context, instance string, x handlers.Point) error {
	w, keep, err := s.sampleWrite(instance, x, s.now())
	if err != nil || !keep {
		return err
	}
	return s.write(ctx, w)
}

// sampleWrite is AppendSample's read-modify-write of the hour block;
// RecordSweep batches it. keep is false for a sample older than Retention.
func (s *Store) sampleWrite(instance string, x handlers.Point, now time.Time) (w pendingWrite, keep bool, err error) {
	if _, err := joinKey("history", instance); err != nil {
		return pendingWrite{}, false, err
	}
	if x.At.IsZero() {
		x.At = now
	}
	hour := x.At.UTC().Truncate(time.Hour)
	// The block lives until its last second is Retention old.
	ttl := hour.Add(time.Hour + s.retention).Sub(now)
	if ttl <= 0 {
		return pendingWrite{}, false, nil
	}
	row := sampleRow(x)
	op := updateOp{kind: kindHistory, key: historyKey(instance, hour), ttl: ttl, fn: func(old []byte) ([]byte, error) {
		blk := block{cols: numCols}
		if old != nil {
			var err error
			if blk, err = decodeBlock(old); err != nil {
				return nil, err
			}
		}
		blk.insert(row)
		return blk.encode(), nil
	}}
	return pendingWrite{op: op, what: fmt.Sprintf("append sample %s %s", instance, hour.Format(hourLayout))}, true, nil
}

// Samples returns an instance's samples with from <= At <= to (compared to
// the second, the precision history keeps), oldest first.
func (s *Store) Samples(ctx context.Context, instance string, from, to time.Time) ([]handlers.Point, error) {
	if _, err := joinKey("history", instance); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, nil
	}
	lo, hi := from.Unix(), to.Unix()
	r := span{
		from: historyKey(instance, from.UTC().Truncate(time.Hour)),
		to:   historyKey(instance, to.UTC().Truncate(time.Hour).Add(time.Hour)),
	}
	var (
		out    []handlers.Point
		decErr error
	)
	err := s.b.list(ctx, kindHistory, r, func(key string, val []byte) bool {
		blk, err := decodeBlock(val)
		if errors.Is(err, errBlockVersion) {
			return true // written by a newer, incompatible version
		}
		if err != nil {
			decErr = fmt.Errorf("history %q: %w", printable(key), err)
			return false
		}
		for _, row := range blk.rows {
			if t := row[colTime]; t >= lo && t <= hi {
				out = append(out, rowSample(row))
			}
		}
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return nil, fmt.Errorf("store: samples %s: %w", instance, err)
	}
	return s.pendingSamples(instance, out, lo, hi), nil
}

// pruneHistory drops blocks whose every sample is older than cutoff.
func (s *Store) pruneHistory(ctx context.Context, cutoff time.Time) error {
	var old []string
	err := s.b.list(ctx, kindHistory, span{keysOnly: true}, func(key string, _ []byte) bool {
		if hour, ok := blockHour(key); ok && !hour.Add(time.Hour).After(cutoff) {
			old = append(old, key)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("store: prune history: %w", err)
	}
	return s.deleteKeys(ctx, kindHistory, old)
}
