package keyspace

// keySet is a set of 64-bit key hashes: open addressing with linear probing
// in one slice, at most three quarters full. A scan remembers every key it
// saw to count SCAN's duplicates once, and Go's map[uint64]struct{} spends
// 16 bytes a slot on it (35 MiB for a million keys, measured with Go
// 1.26); this spends 8 (16 MiB for a million).
type keySet struct {
	slots []uint64 // 0 marks an empty slot
	n     int
}

// newKeySet returns a set sized for about hint hashes.
func newKeySet(hint int64) *keySet {
	size := 64
	for int64(size)*3 < hint*4 {
		size *= 2
	}
	return &keySet{slots: make([]uint64, size)}
}

// add adds h and reports whether it was not in the set yet.
func (s *keySet) add(h uint64) bool {
	if h == 0 {
		h = 1 // 0 marks an empty slot; 1 and 0 are the same key now, at odds of 2^-64
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

func (s *keySet) grow() {
	old := s.slots
	s.slots, s.n = make([]uint64, 2*len(old)), 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}
