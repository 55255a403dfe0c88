package store

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// fullSnapshot has every field of handlers.Snapshot set, from a real
// Redis 7.0 INFO.
func fullSnapshot(t testing.TB) *handlers.Snapshot {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "handlers", "testdata", "info", "redis-7.0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return &handlers.Snapshot{
		Instance: "cache-1", ProbedAt: time.Unix(1_800_000_000, 123456789), RoundTrip: 3 * time.Millisecond, Connect: time.Millisecond,
		Info:        handlers.ParseInfo(string(raw)),
		Config:      map[string]string{"maxmemory": "104857600", "maxmemory-policy": "allkeys-lru", "empty": ""},
		MemoryStats: map[string]float64{"peak.allocated": 1 << 30, "fragmentation": 1.13, "negative": -0.5},
		Doctor:      "Sam, I detected a few issues in this Redis instance memory implants:\n\n * High total RSS",
		Missing:     []string{"CONFIG GET: noperm", ""},
	}
}

// A field added to handlers.Snapshot must be packed, or Last would lose
// it for every instance between two writes.
func TestPackedSnapshotHasEveryField(t *testing.T) {
	want := fullSnapshot(t)
	typ := reflect.TypeOf(*want)
	v := reflect.ValueOf(*want)
	for i := range typ.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fullSnapshot leaves handlers.Snapshot.%s zero: set it, and pack it in packSnapshot", typ.Field(i).Name)
		}
	}
	got, err := unpackSnapshot(packSnapshot(want))
	if err != nil {
		t.Fatal(err)
	}
	if !got.ProbedAt.Equal(want.ProbedAt) {
		t.Errorf("ProbedAt = %v, want %v", got.ProbedAt, want.ProbedAt)
	}
	got.ProbedAt = want.ProbedAt
	if !reflect.DeepEqual(got, want) {
		for i := range typ.NumField() {
			if g, w := reflect.ValueOf(*got).Field(i).Interface(), v.Field(i).Interface(); !reflect.DeepEqual(g, w) {
				t.Errorf("%s = %#v after packing, want %#v", typ.Field(i).Name, g, w)
			}
		}
	}
}

// Nil and empty collections read back as they were: a rule may tell "the
// server gave no CONFIG" (nil) from "it gave none of the keys asked".
func TestPackedSnapshotKeepsNilApartFromEmpty(t *testing.T) {
	for _, snap := range []*handlers.Snapshot{
		{Instance: "a"},
		{Instance: "b", Info: handlers.Info{}, Config: map[string]string{}, MemoryStats: map[string]float64{}, Missing: []string{}},
	} {
		got, err := unpackSnapshot(packSnapshot(snap))
		if err != nil {
			t.Fatal(err)
		}
		got.ProbedAt = snap.ProbedAt
		if !reflect.DeepEqual(got, snap) {
			t.Errorf("%s: got %#v, want %#v", snap.Instance, got, snap)
		}
	}
}

// A packed snapshot never leaves the process, but a bug that truncates or
// garbles one must read as "no snapshot", never panic or allocate by a
// length it read.
func TestUnpackRefusesCorruptBuffers(t *testing.T) {
	p := packSnapshot(fullSnapshot(t))
	for n := range len(p) {
		if _, err := unpackSnapshot(p[:n]); err == nil {
			t.Fatalf("a packed snapshot cut at %d of %d bytes unpacked without error", n, len(p))
		}
	}
	if _, err := unpackSnapshot(append(p, 0)); err == nil {
		t.Error("a packed snapshot with a trailing byte unpacked without error")
	}
	huge := []byte{0}                                                   // an empty instance name
	huge = append(huge, 0, 0, 0)                                        // times
	huge = append(huge, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f) // an Info of 2^56 entries
	if _, err := unpackSnapshot(huge); err == nil {
		t.Error("a count larger than the buffer unpacked without error")
	}
}

// BenchmarkSnapshotMemoryForm compares what a sweep pays per instance to
// keep its snapshot in memory and what a probe pays to read it back (Last):
// the record written to the store (JSON, deflated) against the packed form.
func BenchmarkSnapshotMemoryForm(b *testing.B) {
	snap := fullSnapshot(b)
	rec, err := encodeSnapshot(snap)
	if err != nil {
		b.Fatal(err)
	}
	packed := packSnapshot(snap)
	b.Run("record/keep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeSnapshot(snap); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(rec)), "bytes")
	})
	b.Run("record/read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeSnapshot("cache-1", rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("packed/keep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			packSnapshot(snap)
		}
		b.ReportMetric(float64(len(packed)), "bytes")
	})
	b.Run("packed/read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unpackSnapshot(packed); err != nil {
				b.Fatal(err)
			}
		}
	})
}
