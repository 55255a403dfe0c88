package keyspace

import (
	"hash/maphash"
	"strconv"
	"testing"
)

func TestKeySet(t *testing.T) {
	seed := maphash.MakeSeed()
	s := newKeySet(0)
	for round := range 2 {
		for i := range 10_000 {
			h := maphash.String(seed, "k:"+strconv.Itoa(i))
			if added := s.add(h); added != (round == 0) {
				t.Fatalf("round %d: add(k:%d) = %v", round, i, added)
			}
		}
	}
	if s.n != 10_000 || s.n*4 > len(s.slots)*3 {
		t.Errorf("%d hashes in %d slots", s.n, len(s.slots))
	}
	// 0 marks an empty slot: the hash 0 is still a member.
	if !s.add(0) || s.add(0) {
		t.Error("hash 0 not kept")
	}
	// A million keys fit in 16 MiB when the set is sized for them.
	if n := len(newKeySet(1_000_000).slots); n*8 > 16<<20 {
		t.Errorf("a set for 1,000,000 hashes takes %d slots", n)
	}
}
