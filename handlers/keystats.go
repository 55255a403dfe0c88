package handlers

import (
	"cmp"
	"container/heap"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// MaxKeyPatterns caps the distinct patterns a KeyStats keeps; keys of
	// patterns past the cap are counted under OtherKeyPattern.
	MaxKeyPatterns = 10_000
	// OtherKeyPattern is the pattern that counts the keys of patterns past
	// MaxKeyPatterns.
	OtherKeyPattern = "(other)"
	// maxExampleBytes cuts PrefixStats.Example: the first key of a pattern
	// may be a 1 MB name, and 10,000 of them must not stay in memory.
	maxExampleBytes = 512
	// sizeClasses is the number of power-of-two classes that hold any
	// non-negative int64: [0,1), [1,2), [2,4) ... [2^62, MaxInt64].
	sizeClasses = 64
)

// KeyStats accumulates measured keys. Not safe for concurrent use: a
// scanner keeps one per node and merges them.
//
// Its memory is bounded whatever the number of keys: the KeepKeys biggest
// keys, KeepListed keys for each short list, one entry per type, at most
// MaxKeyPatterns patterns and two fixed histograms.
type KeyStats struct {
	thresholds          Thresholds
	defragMaxScanFields int64

	total           KeyGroup
	withTTL, noTTL  KeyGroup
	defragSkip      KeyGroup
	bigStrings      KeyGroup
	bigCollections  KeyGroup
	top             keyHeap
	defragSkipKeys  keyHeap
	big             keyHeap
	types           map[string]*TypeStats
	prefixes        map[string]*PrefixStats
	ttlSizes, ttls  [sizeClasses]KeyGroup
	patternBuf      []byte
	patternsCounted int // entries of prefixes other than OtherKeyPattern
}

// NewKeyStats returns an empty KeyStats that classifies big keys by t and
// the collections active defrag defers by defragMaxScanFields (the server's
// active-defrag-max-scan-fields; <= 0 means DefaultDefragMaxScanFields; see
// defragFields for what is compared with it).
func NewKeyStats(t Thresholds, defragMaxScanFields int64) *KeyStats {
	if defragMaxScanFields <= 0 {
		defragMaxScanFields = DefaultDefragMaxScanFields
	}
	return &KeyStats{
		thresholds:          t,
		defragMaxScanFields: defragMaxScanFields,
		top:                 keyHeap{max: KeepKeys},
		defragSkipKeys:      keyHeap{max: KeepListed},
		big:                 keyHeap{max: KeepListed},
		types:               make(map[string]*TypeStats),
		prefixes:            make(map[string]*PrefixStats),
		patternBuf:          make([]byte, 0, maxPatternOutput+2*len(patternCut)),
	}
}

// isCollection reports whether a type is one of the five collection types
// that the big-key thresholds and active defrag's scan limit apply to.
func isCollection(typ string) bool {
	switch typ {
	case "hash", "list", "set", "zset", "stream":
		return true
	}
	return false
}

// Defaults of the server settings that shape lists and streams, which a
// scan does not read.
const (
	// listNodeBytes is the listpack size of one quicklist node under
	// list-max-listpack-size -2 (8 KiB).
	listNodeBytes = 8 << 10
	// streamNodeEntries is stream-node-max-entries: entries per radix
	// tree node.
	streamNodeEntries = 100
)

// defragFields estimates what active defrag compares with
// active-defrag-max-scan-fields before it defers a collection to a later,
// time-bounded pass (defrag.c): the number of elements of a hash, set or
// zset, but the number of quicklist nodes of a list and of radix tree nodes
// of a stream. Nodes are not measured, so they are estimated from below:
// a list has at least one node per 8 KiB (and no more nodes than elements),
// a stream at least one node per 100 entries.
func defragFields(k Key) int64 {
	switch k.Type {
	case "list":
		nodes := (max(k.Bytes, 0) + listNodeBytes - 1) / listNodeBytes
		if k.Elements >= 0 {
			nodes = min(nodes, k.Elements)
		}
		return nodes
	case "stream":
		return (max(k.Elements, 0) + streamNodeEntries - 1) / streamNodeEntries
	}
	return k.Elements
}

// maxKeptName bounds the key names the lists keep: a thousand keys with
// names of a megabyte would otherwise hold a gigabyte. A cut name ends in
// "…" so nobody mistakes it for the whole name.
const maxKeptName = 1024

// Add counts one measured key.
func (s *KeyStats) Add(k Key) {
	if len(k.Name) > maxKeptName {
		k.Name = k.Name[:maxKeptName] + "…"
	}
	s.total.Add(k.Bytes)
	s.top.offer(k)

	t := s.types[k.Type]
	if t == nil {
		t = &TypeStats{Type: strings.Clone(k.Type), Biggest: k}
		s.types[t.Type] = t
	} else if biggerKey(k, t.Biggest) {
		t.Biggest = k
	}
	t.KeyGroup.Add(k.Bytes)
	if k.Elements >= 0 {
		t.Elements += k.Elements
	}

	s.patternBuf = appendKeyPattern(s.patternBuf[:0], k.Name)
	p := s.prefixes[string(s.patternBuf)] // no allocation for a known pattern
	if p == nil {
		p = s.newPrefix(string(s.patternBuf), k.Name)
	}
	p.KeyGroup.Add(k.Bytes)
	if k.HasTTL() {
		p.WithTTL.Add(k.Bytes)
		s.withTTL.Add(k.Bytes)
		s.ttlSizes[sizeClass(k.Bytes)].Add(k.Bytes)
		s.ttls[sizeClass(int64(k.TTL/time.Second))].Add(k.Bytes)
	} else {
		p.NoTTL.Add(k.Bytes)
		s.noTTL.Add(k.Bytes)
	}

	collection := isCollection(k.Type)
	if collection && defragFields(k) > s.defragMaxScanFields {
		s.defragSkip.Add(k.Bytes)
		s.defragSkipKeys.offer(k)
	}
	big := false
	switch {
	case k.Type == "string":
		if s.thresholds.BigString > 0 && k.Bytes >= s.thresholds.BigString {
			s.bigStrings.Add(k.Bytes)
			big = true
		}
	case collection:
		if s.thresholds.BigCollection > 0 && k.Bytes >= s.thresholds.BigCollection ||
			s.thresholds.BigCollectionElements > 0 && k.Elements >= s.thresholds.BigCollectionElements {
			s.bigCollections.Add(k.Bytes)
			big = true
		}
	}
	if big {
		s.big.offer(k)
	}
}

// newPrefix adds the entry of a pattern not seen yet, or returns the
// overflow entry when the cap is reached. pattern may share memory with a
// long key name or a buffer, so it is copied.
func (s *KeyStats) newPrefix(pattern, example string) *PrefixStats {
	if pattern != OtherKeyPattern && s.patternsCounted >= MaxKeyPatterns {
		pattern = OtherKeyPattern
		if p := s.prefixes[pattern]; p != nil {
			return p
		}
	}
	p := &PrefixStats{Pattern: strings.Clone(pattern), Example: cutExample(example)}
	s.prefixes[p.Pattern] = p
	if pattern != OtherKeyPattern {
		s.patternsCounted++
	}
	return p
}

// cutExample copies a key name for PrefixStats.Example, cut to
// maxExampleBytes on a rune boundary.
func cutExample(name string) string {
	if len(name) > maxExampleBytes {
		n := maxExampleBytes
		for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(name[n]); i++ {
			n--
		}
		name = name[:n]
	}
	return strings.Clone(name)
}

// Merge adds everything o counted to s; o is left unchanged and must not be
// s. Both should have been made with the same thresholds: o's keys are not
// classified again. When the pattern cap is reached, o's patterns are taken
// biggest first and the rest go under OtherKeyPattern.
func (s *KeyStats) Merge(o *KeyStats) {
	s.total.merge(o.total)
	s.withTTL.merge(o.withTTL)
	s.noTTL.merge(o.noTTL)
	s.defragSkip.merge(o.defragSkip)
	s.bigStrings.merge(o.bigStrings)
	s.bigCollections.merge(o.bigCollections)
	for _, k := range o.top.keys {
		s.top.offer(k)
	}
	for _, k := range o.defragSkipKeys.keys {
		s.defragSkipKeys.offer(k)
	}
	for _, k := range o.big.keys {
		s.big.offer(k)
	}
	for typ, ot := range o.types {
		t := s.types[typ]
		if t == nil {
			c := *ot
			s.types[typ] = &c
			continue
		}
		t.KeyGroup.merge(ot.KeyGroup)
		t.Elements += ot.Elements
		if biggerKey(ot.Biggest, t.Biggest) {
			t.Biggest = ot.Biggest
		}
	}
	for _, op := range sortedPrefixes(o.prefixes) {
		p := s.prefixes[op.Pattern]
		if p == nil {
			p = s.newPrefix(op.Pattern, op.Example)
		}
		p.KeyGroup.merge(op.KeyGroup)
		p.WithTTL.merge(op.WithTTL)
		p.NoTTL.merge(op.NoTTL)
	}
	for i := range s.ttlSizes {
		s.ttlSizes[i].merge(o.ttlSizes[i])
		s.ttls[i].merge(o.ttls[i])
	}
}

// Fill writes the totals, lists and histograms into scan: Total, Top, Types,
// Prefixes, WithTTL, NoTTL, DefragMaxScanFields, DefragSkip, DefragSkipKeys,
// BigStrings, BigCollections, Big, TTLSizes and TTLs. It leaves every other
// field alone and shares no memory with s, which may go on counting.
func (s *KeyStats) Fill(scan *KeyScan) {
	scan.Total = s.total
	scan.Top = s.top.sorted()
	scan.Types = make([]TypeStats, 0, len(s.types))
	for _, t := range s.types {
		scan.Types = append(scan.Types, *t)
	}
	slices.SortFunc(scan.Types, func(a, b TypeStats) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), strings.Compare(a.Type, b.Type))
	})
	ps := sortedPrefixes(s.prefixes)
	scan.Prefixes = make([]PrefixStats, len(ps))
	for i, p := range ps {
		scan.Prefixes[i] = *p
	}
	scan.WithTTL = s.withTTL
	scan.NoTTL = s.noTTL
	scan.DefragMaxScanFields = s.defragMaxScanFields
	scan.DefragSkip = s.defragSkip
	scan.DefragSkipKeys = s.defragSkipKeys.sorted()
	scan.BigStrings = s.bigStrings
	scan.BigCollections = s.bigCollections
	scan.Big = s.big.sorted()
	scan.TTLSizes = histogram(&s.ttlSizes)
	scan.TTLs = histogram(&s.ttls)
}

// sortedPrefixes returns the entries most bytes first, then by pattern.
func sortedPrefixes(m map[string]*PrefixStats) []*PrefixStats {
	ps := make([]*PrefixStats, 0, len(m))
	for _, p := range m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *PrefixStats) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), strings.Compare(a.Pattern, b.Pattern))
	})
	return ps
}

func (g *KeyGroup) merge(o KeyGroup) { g.Keys += o.Keys; g.Bytes += o.Bytes }

// sizeClass returns the index of the power-of-two class of n: 0 for
// [0,1) (and anything negative), i for [2^(i-1), 2^i).
func sizeClass(n int64) int {
	if n <= 0 {
		return 0
	}
	return bits.Len64(uint64(n))
}

// histogram returns the non-empty classes, ascending.
func histogram(classes *[sizeClasses]KeyGroup) []SizeClass {
	var out []SizeClass
	for i, g := range classes {
		if g.Keys == 0 {
			continue
		}
		c := SizeClass{KeyGroup: g}
		switch {
		case i == 0:
			c.Min, c.Max = 0, 1
		case i == sizeClasses-1:
			c.Min, c.Max = 1<<(i-1), math.MaxInt64
		default:
			c.Min, c.Max = 1<<(i-1), 1<<i
		}
		out = append(out, c)
	}
	if out == nil {
		out = []SizeClass{}
	}
	return out
}

// SizeQuantile returns the q-quantile (0..1) of the keys counted in a
// histogram whose classes are ascending, interpolated linearly inside the
// class it falls in; 0 for an empty histogram. q outside 0..1 is clamped.
func SizeQuantile(classes []SizeClass, q float64) int64 {
	var total int64
	for _, c := range classes {
		total += c.Keys
	}
	if total <= 0 {
		return 0
	}
	q = min(max(q, 0), 1) // NaN becomes 0 too
	rank := q * float64(total)
	var below int64
	for _, c := range classes {
		if c.Keys <= 0 {
			continue
		}
		if float64(below+c.Keys) >= rank {
			f := (rank - float64(below)) / float64(c.Keys)
			return c.Min + int64(f*float64(c.Max-c.Min))
		}
		below += c.Keys
	}
	return classes[len(classes)-1].Max
}

// biggerKey orders keys biggest first; the other fields break ties so that
// the lists do not depend on the order keys arrive in.
func biggerKey(a, b Key) bool { return compareKeys(a, b) < 0 }

func compareKeys(a, b Key) int {
	return cmp.Or(
		cmp.Compare(b.Bytes, a.Bytes),
		strings.Compare(a.Name, b.Name),
		strings.Compare(a.Node, b.Node),
		strings.Compare(a.Type, b.Type),
		cmp.Compare(b.Elements, a.Elements),
		cmp.Compare(a.TTL, b.TTL),
	)
}

// keyHeap keeps the max biggest keys offered to it. It is a min-heap: the
// smallest kept key is at the root, ready to be replaced.
type keyHeap struct {
	keys []Key
	max  int
}

func (h *keyHeap) Len() int           { return len(h.keys) }
func (h *keyHeap) Less(i, j int) bool { return biggerKey(h.keys[j], h.keys[i]) }
func (h *keyHeap) Swap(i, j int)      { h.keys[i], h.keys[j] = h.keys[j], h.keys[i] }
func (h *keyHeap) Push(x any)         { h.keys = append(h.keys, x.(Key)) }
func (h *keyHeap) Pop() any {
	k := h.keys[len(h.keys)-1]
	h.keys = h.keys[:len(h.keys)-1]
	return k
}

// offer keeps k if it is among the max biggest keys offered so far.
func (h *keyHeap) offer(k Key) {
	if len(h.keys) < h.max {
		heap.Push(h, k)
		return
	}
	if h.max <= 0 || !biggerKey(k, h.keys[0]) {
		return
	}
	h.keys[0] = k
	heap.Fix(h, 0)
}

// sorted returns a copy of the kept keys, biggest first.
func (h *keyHeap) sorted() []Key {
	out := slices.Clone(h.keys)
	if out == nil {
		out = []Key{}
	}
	slices.SortFunc(out, compareKeys)
	return out
}
