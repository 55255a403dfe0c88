package handlers

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fill returns what s fills into an empty KeyScan.
func fill(s *KeyStats) KeyScan {
	var scan KeyScan
	s.Fill(&scan)
	return scan
}

func TestKeyStatsFill(t *testing.T) {
	th := Thresholds{BigString: 1000, BigCollection: 5000, BigCollectionElements: 100}
	s := NewKeyStats(th, 50)
	keys := []Key{
		{Name: "user:1:profile", Type: "hash", Bytes: 800, Elements: 10, TTL: NoTTL},
		{Name: "user:2:profile", Type: "hash", Bytes: 6000, Elements: 20, TTL: NoTTL},                                              // big by bytes
		{Name: "user:3:profile", Type: "hash", Bytes: 300, Elements: 200, TTL: NoTTL},                                              // big by elements, defrag skip
		{Name: "session:8f14e45f-ceea-467f-a0e6-0123456789ab", Type: "string", Bytes: 1500, Elements: 1400, TTL: 30 * time.Minute}, // big string
		{Name: "session:0b5c3e1a-1111-4222-8333-444455556666", Type: "string", Bytes: 100, Elements: 90, TTL: 500 * time.Millisecond},
		{Name: "queue:jobs", Type: "list", Bytes: 40, Elements: 60, TTL: NoTTL},                // one quicklist node: no defrag skip
		{Name: "stream:events", Type: "stream", Bytes: 2000, Elements: 51, TTL: 2 * time.Hour}, // one radix tree node: no defrag skip
		{Name: "mod:1", Type: "ReJSON-RL", Bytes: 700, Elements: -1, TTL: NoTTL},               // module type: no count
		{Name: "counter", Type: "string", Bytes: 50, Elements: 2, TTL: NoTTL},
		{Name: "big:blob", Type: "string", Bytes: 999, Elements: 990, TTL: NoTTL}, // just under BigString
	}
	for _, k := range keys {
		s.Add(k)
	}
	scan := KeyScan{Match: "*", Scanned: 42}
	s.Fill(&scan)

	if scan.Match != "*" || scan.Scanned != 42 {
		t.Errorf("Fill changed fields it does not own: Match %q, Scanned %d", scan.Match, scan.Scanned)
	}
	if want := (KeyGroup{10, 12489}); scan.Total != want {
		t.Errorf("Total = %+v, want %+v", scan.Total, want)
	}
	if want := (KeyGroup{3, 3600}); scan.WithTTL != want {
		t.Errorf("WithTTL = %+v, want %+v", scan.WithTTL, want)
	}
	if want := (KeyGroup{7, 8889}); scan.NoTTL != want {
		t.Errorf("NoTTL = %+v, want %+v", scan.NoTTL, want)
	}
	if got := names(scan.Top); got != "user:2:profile stream:events session:8f14e45f-ceea-467f-a0e6-0123456789ab big:blob user:1:profile mod:1 user:3:profile session:0b5c3e1a-1111-4222-8333-444455556666 counter queue:jobs" {
		t.Errorf("Top = %s", got)
	}

	wantTypes := []TypeStats{
		{Type: "hash", KeyGroup: KeyGroup{3, 7100}, Elements: 230, Biggest: keys[1]},
		{Type: "string", KeyGroup: KeyGroup{4, 2649}, Elements: 2482, Biggest: keys[3]},
		{Type: "stream", KeyGroup: KeyGroup{1, 2000}, Elements: 51, Biggest: keys[6]},
		{Type: "ReJSON-RL", KeyGroup: KeyGroup{1, 700}, Elements: 0, Biggest: keys[7]},
		{Type: "list", KeyGroup: KeyGroup{1, 40}, Elements: 60, Biggest: keys[5]},
	}
	if !reflect.DeepEqual(scan.Types, wantTypes) {
		t.Errorf("Types =\n%+v\nwant\n%+v", scan.Types, wantTypes)
	}

	wantPrefixes := []PrefixStats{
		{Pattern: "user:{id}:profile", KeyGroup: KeyGroup{3, 7100}, NoTTL: KeyGroup{3, 7100}, Example: "user:1:profile"},
		{Pattern: "stream:events", KeyGroup: KeyGroup{1, 2000}, WithTTL: KeyGroup{1, 2000}, Example: "stream:events"},
		{Pattern: "session:{id}", KeyGroup: KeyGroup{2, 1600}, WithTTL: KeyGroup{2, 1600}, Example: keys[3].Name},
		{Pattern: "big:blob", KeyGroup: KeyGroup{1, 999}, NoTTL: KeyGroup{1, 999}, Example: "big:blob"},
		{Pattern: "mod:{id}", KeyGroup: KeyGroup{1, 700}, NoTTL: KeyGroup{1, 700}, Example: "mod:1"},
		{Pattern: "counter", KeyGroup: KeyGroup{1, 50}, NoTTL: KeyGroup{1, 50}, Example: "counter"},
		{Pattern: "queue:jobs", KeyGroup: KeyGroup{1, 40}, NoTTL: KeyGroup{1, 40}, Example: "queue:jobs"},
	}
	if !reflect.DeepEqual(scan.Prefixes, wantPrefixes) {
		t.Errorf("Prefixes =\n%+v\nwant\n%+v", scan.Prefixes, wantPrefixes)
	}

	if scan.DefragMaxScanFields != 50 {
		t.Errorf("DefragMaxScanFields = %d, want 50", scan.DefragMaxScanFields)
	}
	if want := (KeyGroup{1, 300}); scan.DefragSkip != want {
		t.Errorf("DefragSkip = %+v, want %+v", scan.DefragSkip, want)
	}
	if got := names(scan.DefragSkipKeys); got != "user:3:profile" {
		t.Errorf("DefragSkipKeys = %s", got)
	}
	if want := (KeyGroup{1, 1500}); scan.BigStrings != want {
		t.Errorf("BigStrings = %+v, want %+v", scan.BigStrings, want)
	}
	if want := (KeyGroup{2, 6300}); scan.BigCollections != want {
		t.Errorf("BigCollections = %+v, want %+v", scan.BigCollections, want)
	}
	if got := names(scan.Big); got != "user:2:profile session:8f14e45f-ceea-467f-a0e6-0123456789ab user:3:profile" {
		t.Errorf("Big = %s", got)
	}

	wantSizes := []SizeClass{{64, 128, KeyGroup{1, 100}}, {1024, 2048, KeyGroup{2, 3500}}}
	if !reflect.DeepEqual(scan.TTLSizes, wantSizes) {
		t.Errorf("TTLSizes = %+v, want %+v", scan.TTLSizes, wantSizes)
	}
	wantTTLs := []SizeClass{{0, 1, KeyGroup{1, 100}}, {1024, 2048, KeyGroup{1, 1500}}, {4096, 8192, KeyGroup{1, 2000}}}
	if !reflect.DeepEqual(scan.TTLs, wantTTLs) {
		t.Errorf("TTLs = %+v, want %+v", scan.TTLs, wantTTLs)
	}
	if got := SizeQuantile(scan.TTLSizes, 0.5); got != 1280 {
		t.Errorf("median of TTLSizes = %d, want 1280", got)
	}

	// Fill shares nothing with s: counting more changes no earlier result.
	s.Add(Key{Name: "late", Type: "string", Bytes: 1 << 20, TTL: time.Second})
	if len(scan.Top) != len(keys) || scan.Top[0].Name != "user:2:profile" || scan.Total.Keys != 10 {
		t.Errorf("a later Add changed an earlier Fill: %d keys on top, first %q", len(scan.Top), scan.Top[0].Name)
	}
}

func names(keys []Key) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k.Name)
	}
	return b.String()
}

func TestKeyStatsEmpty(t *testing.T) {
	scan := fill(NewKeyStats(Thresholds{}, 0))
	if scan.Total != (KeyGroup{}) || len(scan.Top) != 0 || len(scan.Types) != 0 || len(scan.Prefixes) != 0 ||
		len(scan.TTLSizes) != 0 || len(scan.TTLs) != 0 || len(scan.Big) != 0 || len(scan.DefragSkipKeys) != 0 {
		t.Errorf("an empty KeyStats filled %+v", scan)
	}
	if scan.DefragMaxScanFields != DefaultDefragMaxScanFields {
		t.Errorf("DefragMaxScanFields = %d, want the default %d", scan.DefragMaxScanFields, DefaultDefragMaxScanFields)
	}
	if scan.Top == nil || scan.Types == nil || scan.Prefixes == nil || scan.TTLs == nil {
		t.Error("an empty KeyStats filled nil slices; JSON wants []")
	}
}

func TestKeyStatsThresholds(t *testing.T) {
	keys := []Key{
		{Name: "s", Type: "string", Bytes: 1 << 30, Elements: 1 << 30, TTL: NoTTL},
		{Name: "h", Type: "hash", Bytes: 1 << 30, Elements: 1 << 20, TTL: NoTTL},
		{Name: "z", Type: "zset", Bytes: 100, Elements: 5000, TTL: NoTTL},
		{Name: "m", Type: "MBbloom--", Bytes: 1 << 30, Elements: -1, TTL: NoTTL},
	}
	tests := []struct {
		name               string
		th                 Thresholds
		defragMax          int64
		strings, colls     KeyGroup
		big, skip          string
		defragSkipKeysWant KeyGroup
	}{
		{"all disabled", Thresholds{}, 0, KeyGroup{}, KeyGroup{}, "", "h z", KeyGroup{2, 1<<30 + 100}},
		{"bytes only", Thresholds{BigString: 1 << 20, BigCollection: 1 << 20}, 1 << 20, KeyGroup{1, 1 << 30}, KeyGroup{1, 1 << 30}, "h s", "", KeyGroup{}},
		{"elements only", Thresholds{BigCollectionElements: 5000}, 4999, KeyGroup{}, KeyGroup{2, 1<<30 + 100}, "h z", "h z", KeyGroup{2, 1<<30 + 100}},
		{"scan fields at the limit", Thresholds{}, 5000, KeyGroup{}, KeyGroup{}, "", "h", KeyGroup{1, 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewKeyStats(tt.th, tt.defragMax)
			for _, k := range keys {
				s.Add(k)
			}
			scan := fill(s)
			if scan.BigStrings != tt.strings || scan.BigCollections != tt.colls {
				t.Errorf("BigStrings %+v, BigCollections %+v; want %+v, %+v", scan.BigStrings, scan.BigCollections, tt.strings, tt.colls)
			}
			if got := names(scan.Big); got != tt.big {
				t.Errorf("Big = %q, want %q", got, tt.big)
			}
			if got := names(scan.DefragSkipKeys); got != tt.skip || scan.DefragSkip != tt.defragSkipKeysWant {
				t.Errorf("DefragSkipKeys = %q (%+v), want %q (%+v)", got, scan.DefragSkip, tt.skip, tt.defragSkipKeysWant)
			}
		})
	}
}

func TestKeyStatsDefragFields(t *testing.T) {
	tests := []struct {
		key  Key
		want int64
	}{
		{Key{Type: "hash", Bytes: 1 << 20, Elements: 5000}, 5000},
		{Key{Type: "set", Bytes: 100, Elements: 3}, 3},
		{Key{Type: "zset", Bytes: 1 << 30, Elements: 2_000_000}, 2_000_000},
		// A list of small elements packs them in 8 KiB nodes.
		{Key{Type: "list", Bytes: 1 << 20, Elements: 20_000}, 128},
		{Key{Type: "list", Bytes: 1<<20 + 1, Elements: 20_000}, 129},
		{Key{Type: "list", Bytes: 100 << 20, Elements: 1_000_000}, 12_800},
		// Elements bigger than a node get one node each.
		{Key{Type: "list", Bytes: 100 << 20, Elements: 100}, 100},
		{Key{Type: "list", Bytes: 0, Elements: 0}, 0},
		{Key{Type: "stream", Bytes: 1 << 30, Elements: 150_001}, 1501},
		{Key{Type: "stream", Bytes: 500, Elements: 1}, 1},
	}
	for _, tt := range tests {
		if got := defragFields(tt.key); got != tt.want {
			t.Errorf("defragFields(%s of %d bytes, %d elements) = %d, want %d", tt.key.Type, tt.key.Bytes, tt.key.Elements, got, tt.want)
		}
	}
	s := NewKeyStats(Thresholds{}, 0)
	s.Add(Key{Name: "q:small", Type: "list", Bytes: 1 << 20, Elements: 20_000, TTL: NoTTL})
	s.Add(Key{Name: "q:big", Type: "list", Bytes: 64 << 20, Elements: 1_000_000, TTL: NoTTL})
	s.Add(Key{Name: "x:big", Type: "stream", Bytes: 64 << 20, Elements: 200_000, TTL: NoTTL})
	if got := names(fill(s).DefragSkipKeys); got != "q:big x:big" {
		t.Errorf("DefragSkipKeys = %q, want the long list and the long stream", got)
	}
}

func TestKeyStatsTopCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewKeyStats(Thresholds{}, 0)
	for _, i := range rng.Perm(5000) {
		s.Add(Key{Name: fmt.Sprintf("k:%d", i), Type: "string", Bytes: int64(i), TTL: NoTTL})
	}
	scan := fill(s)
	if len(scan.Top) != KeepKeys {
		t.Fatalf("Top has %d keys, want %d", len(scan.Top), KeepKeys)
	}
	for i, k := range scan.Top {
		if want := int64(4999 - i); k.Bytes != want {
			t.Fatalf("Top[%d] = %+v, want %d bytes", i, k, want)
		}
	}
	if scan.Total != (KeyGroup{5000, 4999 * 5000 / 2}) {
		t.Errorf("Total = %+v", scan.Total)
	}

	// Ties are broken by name, whatever the order keys come in.
	s = NewKeyStats(Thresholds{}, 0)
	for _, i := range rng.Perm(3000) {
		s.Add(Key{Name: fmt.Sprintf("t:%04d", i), Type: "string", Bytes: 7, TTL: NoTTL})
	}
	scan = fill(s)
	if len(scan.Top) != KeepKeys || scan.Top[0].Name != "t:0000" || scan.Top[KeepKeys-1].Name != "t:0999" {
		t.Errorf("ties: Top has %d keys from %q to %q, want t:0000 to t:0999", len(scan.Top), scan.Top[0].Name, scan.Top[len(scan.Top)-1].Name)
	}
}

// wordOf spells i in letters that are not hex digits, so that the pattern
// keeps it.
func wordOf(i int) string {
	const letters = "ghijklmnopqrstuvwxyz"
	b := []byte{'p'}
	for ; i > 0; i /= len(letters) {
		b = append(b, letters[i%len(letters)])
	}
	return string(b)
}

func TestKeyStatsPatternCap(t *testing.T) {
	s := NewKeyStats(Thresholds{}, 0)
	const n = MaxKeyPatterns + 50
	for i := range n {
		s.Add(Key{Name: wordOf(i) + ":1", Type: "string", Bytes: 10, TTL: NoTTL})
	}
	s.Add(Key{Name: wordOf(0) + ":2", Type: "string", Bytes: 10, TTL: time.Minute}) // a known pattern still counts
	s.Add(Key{Name: "(other)", Type: "string", Bytes: 10, TTL: NoTTL})              // a key named like the overflow
	scan := fill(s)
	if len(scan.Prefixes) != MaxKeyPatterns+1 {
		t.Fatalf("%d prefixes, want %d", len(scan.Prefixes), MaxKeyPatterns+1)
	}
	var other *PrefixStats
	var sum KeyGroup
	for i := range scan.Prefixes {
		p := &scan.Prefixes[i]
		sum.merge(p.KeyGroup)
		if p.Pattern == OtherKeyPattern {
			other = p
		}
	}
	if other == nil || other.Keys != 51 || other.Example != wordOf(MaxKeyPatterns)+":1" {
		t.Fatalf("(other) = %+v, want 51 keys and the first overflowing key as example", other)
	}
	if sum != scan.Total {
		t.Errorf("prefixes sum to %+v, total is %+v", sum, scan.Total)
	}
	if p := scan.Prefixes[0]; p.Pattern != OtherKeyPattern {
		t.Errorf("first prefix %q, want (other) with the most bytes", p.Pattern)
	}
	if p := scan.Prefixes[1]; p.Pattern != wordOf(0)+":{id}" || p.Keys != 2 || p.WithTTL.Keys != 1 {
		t.Errorf("second prefix %+v, want %s:{id} with 2 keys", p, wordOf(0))
	}

	// Merging two full KeyStats keeps the cap and loses no key.
	o := NewKeyStats(Thresholds{}, 0)
	for i := range n {
		o.Add(Key{Name: "q" + wordOf(i) + ":1", Type: "string", Bytes: int64(i), TTL: NoTTL})
	}
	s.Merge(o)
	scan = fill(s)
	sum = KeyGroup{}
	for _, p := range scan.Prefixes {
		sum.merge(p.KeyGroup)
	}
	if len(scan.Prefixes) != MaxKeyPatterns+1 || sum != scan.Total || scan.Total.Keys != 2*n+2 {
		t.Errorf("after Merge: %d prefixes summing to %+v, total %+v", len(scan.Prefixes), sum, scan.Total)
	}
}

func TestKeyStatsLongNames(t *testing.T) {
	s := NewKeyStats(Thresholds{}, 0)
	long := "blob:" + strings.Repeat("x", 1<<20)
	s.Add(Key{Name: long, Type: "string", Bytes: 1 << 21, TTL: NoTTL})
	scan := fill(s)
	p := scan.Prefixes[0]
	if len(p.Pattern) > maxPatternOutput+len(patternCut) || len(p.Example) > maxExampleBytes {
		t.Errorf("a 1 MB name made a %d-byte pattern and a %d-byte example", len(p.Pattern), len(p.Example))
	}
	// The lists keep a cut name, marked as cut: bounded memory whatever
	// the names.
	if got := scan.Top[0].Name; got != long[:maxKeptName]+"…" {
		t.Errorf("Top keeps a %d-byte name", len(got))
	}
}

func TestSizeQuantile(t *testing.T) {
	h := []SizeClass{
		{Min: 0, Max: 1, KeyGroup: KeyGroup{Keys: 10}},
		{Min: 64, Max: 128, KeyGroup: KeyGroup{Keys: 10}},
		{Min: 1024, Max: 2048, KeyGroup: KeyGroup{Keys: 20}},
	}
	tests := []struct {
		classes []SizeClass
		q       float64
		want    int64
	}{
		{nil, 0.5, 0},
		{[]SizeClass{}, 0.9, 0},
		{h, 0, 0},
		{h, 0.25, 1},
		{h, 0.375, 96},
		{h, 0.5, 128},
		{h, 0.75, 1536},
		{h, 1, 2048},
		{h, -1, 0},
		{h, 7, 2048},
		{[]SizeClass{{Min: 1 << 40, Max: 1 << 41, KeyGroup: KeyGroup{Keys: 1}}}, 0.5, 1<<40 + 1<<39},
	}
	for _, tt := range tests {
		if got := SizeQuantile(tt.classes, tt.q); got != tt.want {
			t.Errorf("SizeQuantile(%v, %v) = %d, want %d", tt.classes, tt.q, got, tt.want)
		}
	}
}

func TestKeyStatsHistogramEdges(t *testing.T) {
	s := NewKeyStats(Thresholds{}, 0)
	for _, b := range []int64{0, 1, 2, 3, 4, 1<<62 + 5, -3} {
		s.Add(Key{Name: "k", Type: "string", Bytes: b, TTL: 999 * time.Millisecond})
	}
	scan := fill(s)
	want := []SizeClass{
		{0, 1, KeyGroup{2, -3}}, {1, 2, KeyGroup{1, 1}}, {2, 4, KeyGroup{2, 5}}, {4, 8, KeyGroup{1, 4}},
		{1 << 62, 1<<63 - 1, KeyGroup{1, 1<<62 + 5}},
	}
	if !reflect.DeepEqual(scan.TTLSizes, want) {
		t.Errorf("TTLSizes = %+v, want %+v", scan.TTLSizes, want)
	}
	if len(scan.TTLs) != 1 || scan.TTLs[0].Min != 0 || scan.TTLs[0].Keys != 7 {
		t.Errorf("TTLs = %+v, want every key in [0,1)", scan.TTLs)
	}
}

// randomKeys makes n keys of the shapes a real key space holds.
func randomKeys(rng *rand.Rand, n int) []Key {
	types := []string{"string", "string", "string", "hash", "list", "set", "zset", "stream", "ReJSON-RL"}
	keys := make([]Key, n)
	for i := range keys {
		var name string
		switch rng.IntN(8) {
		case 0:
			name = fmt.Sprintf("session:%08x-%04x-4%03x-a%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Int64N(1<<48))
		case 1:
			name = fmt.Sprintf("user:%d:profile", rng.IntN(100000))
		case 2:
			name = fmt.Sprintf("cache/v%d/item.%d", rng.IntN(3), rng.IntN(1000))
		case 3:
			name = fmt.Sprintf("{shard%d}:queue", rng.IntN(4))
		case 4:
			name = string([]byte{'b', ':', byte(rng.IntN(256)), byte(rng.IntN(256))})
		case 5:
			name = wordOf(rng.IntN(300)) + ":" + wordOf(rng.IntN(3))
		default:
			name = fmt.Sprintf("rate:%s:%d", wordOf(rng.IntN(20)), rng.IntN(1<<20))
		}
		k := Key{
			Name:     name,
			Type:     types[rng.IntN(len(types))],
			Bytes:    int64(rng.ExpFloat64() * 2000),
			Elements: rng.Int64N(3000),
			TTL:      NoTTL,
			Node:     fmt.Sprintf("node-%d", rng.IntN(3)),
		}
		if k.Type == "ReJSON-RL" {
			k.Elements = -1
		}
		if rng.IntN(2) == 0 {
			k.TTL = time.Duration(rng.Int64N(int64(48 * time.Hour)))
		}
		keys[i] = k
	}
	return keys
}

func TestKeyStatsMerge(t *testing.T) {
	th := Thresholds{BigString: 4000, BigCollection: 6000, BigCollectionElements: 2900}
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 99))
		keys := randomKeys(rng, 5000)
		parts := make([][]Key, 1+rng.IntN(4))
		for _, k := range keys {
			i := rng.IntN(len(parts))
			parts[i] = append(parts[i], k)
		}
		one := NewKeyStats(th, 2000)
		merged := NewKeyStats(th, 2000)
		for _, part := range parts {
			p := NewKeyStats(th, 2000)
			for _, k := range part {
				one.Add(k)
				p.Add(k)
			}
			merged.Merge(p)
		}
		want, got := fill(one), fill(merged)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("seed %d: merging %d parts differs from adding every key to one KeyStats", seed, len(parts))
			for _, f := range []string{"Total", "Top", "Types", "Prefixes", "DefragSkipKeys", "Big", "TTLSizes", "TTLs"} {
				if g, w := reflect.ValueOf(got).FieldByName(f).Interface(), reflect.ValueOf(want).FieldByName(f).Interface(); !reflect.DeepEqual(g, w) {
					t.Errorf("  %s differs", f)
				}
			}
		}
		if len(want.Top) != KeepKeys || len(want.Big) != KeepListed || len(want.DefragSkipKeys) != KeepListed {
			t.Errorf("seed %d: lists of %d, %d, %d keys: the test does not fill them", seed, len(want.Top), len(want.Big), len(want.DefragSkipKeys))
		}
	}
}

func BenchmarkKeyStatsAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	keys := randomKeys(rng, 1<<14)
	s := NewKeyStats(DefaultThresholds(), 0)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		s.Add(keys[i&(len(keys)-1)])
		i++
	}
}

func BenchmarkKeyPattern(b *testing.B) {
	names := []string{"session:8f14e45f-ceea-467f-a0e6-0123456789ab", "user:42:profile", "cache/v2/item.1234", "counter", "rate:api:1700000000"}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		_ = KeyPattern(names[i%len(names)])
		i++
	}
}
