package store

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// The store keeps every instance's newest snapshot in memory (latest.go).
// It used to keep it as the record it writes, JSON deflated, and that
// cost a sweep of 10,000 instances about 2 s of CPU to encode, and its
// probes as much again to decode each previous snapshot (Last), on a
// 2-core machine: most of the sweep. A packed snapshot is laid out for
// memory instead: lengths and bytes, no key sorting, no compression, and
// unpacking slices every string out of one copy of the buffer. It is
// about twice the size of the deflated record (6-8 KB for a Redis 7.0
// probe against 3-4), and never leaves the process: what is written is
// still the record (snapshotWrite), made only when an instance is due.
//
// A field added to handlers.Snapshot must be packed too:
// TestPackedSnapshotHasEveryField fails until it is.

// packSnapshot lays snap out for memory.
func packSnapshot(snap *handlers.Snapshot) []byte {
	size := 64 + len(snap.Instance) + len(snap.Doctor)
	for k, v := range snap.Info {
		size += len(k) + len(v) + 4
	}
	for k, v := range snap.Config {
		size += len(k) + len(v) + 4
	}
	size += len(snap.MemoryStats) * 32
	for _, m := range snap.Missing {
		size += len(m) + 2
	}
	b := make([]byte, 0, size)
	b = appendString(b, snap.Instance)
	b = binary.AppendVarint(b, snap.ProbedAt.UnixNano())
	b = binary.AppendVarint(b, int64(snap.RoundTrip))
	b = binary.AppendVarint(b, int64(snap.Connect))
	b = appendStrings(b, snap.Info)
	b = appendStrings(b, snap.Config)
	b = appendCount(b, snap.MemoryStats == nil, len(snap.MemoryStats))
	for k, v := range snap.MemoryStats {
		b = appendString(b, k)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = appendString(b, snap.Doctor)
	b = appendCount(b, snap.Missing == nil, len(snap.Missing))
	for _, m := range snap.Missing {
		b = appendString(b, m)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendCount writes n, or that the collection is nil: a nil map and an
// empty one read back as they were.
func appendCount(b []byte, isNil bool, n int) []byte {
	if isNil {
		return binary.AppendUvarint(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

func appendStrings[M ~map[string]string](b []byte, m M) []byte {
	b = appendCount(b, m == nil, len(m))
	for k, v := range m {
		b = appendString(appendString(b, k), v)
	}
	return b
}

var errPacked = errors.New("store: packed snapshot is corrupt")

// unpackSnapshot reads what packSnapshot laid out.
func unpackSnapshot(p []byte) (*handlers.Snapshot, error) {
	r := unpacker{s: string(p)}
	snap := &handlers.Snapshot{Instance: r.string()}
	snap.ProbedAt = time.Unix(0, r.varint())
	snap.RoundTrip = time.Duration(r.varint())
	snap.Connect = time.Duration(r.varint())
	if n, ok := r.count(); ok {
		snap.Info = make(handlers.Info, n)
		for range n {
			k := r.string()
			snap.Info[k] = r.string()
		}
	}
	if n, ok := r.count(); ok {
		snap.Config = make(map[string]string, n)
		for range n {
			k := r.string()
			snap.Config[k] = r.string()
		}
	}
	if n, ok := r.count(); ok {
		snap.MemoryStats = make(map[string]float64, n)
		for range n {
			k := r.string()
			snap.MemoryStats[k] = math.Float64frombits(r.uint64())
		}
	}
	snap.Doctor = r.string()
	if n, ok := r.count(); ok {
		snap.Missing = make([]string, 0, n)
		for range n {
			snap.Missing = append(snap.Missing, r.string())
		}
	}
	if r.bad || r.i != len(r.s) {
		return nil, errPacked
	}
	return snap, nil
}

// unpacker reads a packed snapshot from one string, so the snapshot's
// strings share its memory. A read past the end marks it bad and reads
// zeros.
type unpacker struct {
	s   string
	i   int
	bad bool
}

func (r *unpacker) uvarint() uint64 {
	var x uint64
	for shift := 0; shift < 64 && r.i < len(r.s); shift += 7 {
		c := r.s[r.i]
		r.i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.bad = true
	return 0
}

func (r *unpacker) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *unpacker) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)-r.i) {
		r.bad = true
		return ""
	}
	s := r.s[r.i : r.i+int(n)]
	r.i += int(n)
	return s
}

func (r *unpacker) uint64() uint64 {
	if r.bad || len(r.s)-r.i < 8 {
		r.bad = true
		return 0
	}
	var x uint64
	for k := range 8 {
		x |= uint64(r.s[r.i+k]) << (8 * k)
	}
	r.i += 8
	return x
}

// count reads a collection's size; false: it was nil, or the buffer is
// corrupt. A size larger than the bytes left cannot be true.
func (r *unpacker) count() (int, bool) {
	n := r.uvarint()
	if r.bad || n == 0 {
		return 0, false
	}
	if n-1 > uint64(len(r.s)-r.i) {
		r.bad = true
		return 0, false
	}
	return int(n - 1), true
}
