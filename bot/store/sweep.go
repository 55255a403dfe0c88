package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// SweepRecord is what a sweep keeps of one instance.
type SweepRecord struct {
	// Instance is the history handlers.Point goes to, as AppendSample's instance.
	Instance string
	// Snapshot, when not nil, becomes the last snapshot of its own
	// Snapshot.Instance, as with PutSnapshot.
	Snapshot *handlers.Snapshot
	Point    handlers.Point
}

// RecordSweep records every record's snapshot as its instance's last
// (Last answers with it) and appends every sample to its instance's
// history (Samples answers with it), with the effect of AppendSample for
// each record in order: the same records, TTLs and retention (a sample
// older than Retention is dropped), and a zero Point.At is Now() (one Now
// for the sweep). A record with a nil Snapshot only appends its sample.
//
// What it writes to the backend is only what is due (see latest.go); the
// rest stays in memory until its instance is due or Close. The writes
// of a sweep are one batch: on bbolt one read-write transaction, so one
// fsync for the sweep; on Redis they share round trips (see
// redisBackend.updateMany). A sweep the store refuses (a stale leader's,
// ErrFenced) keeps nothing, in the backend or in memory.
//
// A write that cannot be done (an instance name the store refuses, a
// snapshot that does not encode, a history block of a newer format) is
// skipped and named in the returned error, which joins one error per
// such record; the other writes are still made. An error of the backend
// itself (I/O) is returned too, and then the writes may or may not have
// been made, as with the single methods.
func (s *Store) RecordSweep(ctx context.Context, records []SweepRecord) error {
	if len(records) == 0 {
		return nil
	}
	now := s.now()
	prepared := s.prepareSnapshots(records, now)
	var (
		writes []pendingWrite
		owner  []int // the record of each write
		// kept are the snapshots to keep once the batch is made, and the
		// index of each one's write, or -1 when it is not written.
		kept []keptSnapshot
		// held are samples that stay in memory; taken, the pending samples
		// written in this batch, put back if it fails.
		held, taken []heldSample
		due         = map[string]bool{}
	)
	recordErrs := make([][]error, len(records))
	s.latest.mu.Lock()
	// isDue decides once per instance and sweep; a due instance's pending
	// samples are written with the sweep's.
	isDue := func(instance string, snap *handlers.Snapshot, i int) bool {
		if d, ok := due[instance]; ok {
			return d
		}
		l := s.latest.entry(instance)
		d := l.isDue(snap, now)
		due[instance] = d
		if d {
			for _, x := range l.pending {
				if w, keep, err := s.sampleWrite(instance, x, now); err == nil && keep {
					writes, owner = append(writes, w), append(owner, i)
				}
				taken = append(taken, heldSample{instance, x})
			}
			l.pending = nil
		}
		return d
	}
	for i, r := range records {
		if r.Snapshot != nil {
			// Only a due snapshot is encoded as the record written; every
			// one is packed for memory (packed.go).
			p := prepared[i]
			if _, err := snapshotKey(r.Snapshot); err != nil {
				recordErrs[i] = append(recordErrs[i], err)
			} else if p.packErr != nil {
				recordErrs[i] = append(recordErrs[i], p.packErr)
			} else if !isDue(r.Snapshot.Instance, r.Snapshot, i) {
				kept = append(kept, keptSnapshot{snap: r.Snapshot, packed: p.packed, write: -1})
			} else if w, err := p.snapshotWrite(r.Snapshot); err != nil {
				recordErrs[i] = append(recordErrs[i], err)
			} else {
				kept = append(kept, keptSnapshot{snap: r.Snapshot, packed: p.packed, write: len(writes)})
				writes, owner = append(writes, w), append(owner, i)
			}
		}
		x := r.Point
		if x.At.IsZero() {
			x.At = now
		}
		w, keep, err := s.sampleWrite(r.Instance, x, now)
		switch {
		case err != nil:
			recordErrs[i] = append(recordErrs[i], err)
		case !keep:
		case isDue(r.Instance, nil, i):
			writes, owner = append(writes, w), append(owner, i)
		default:
			held = append(held, heldSample{r.Instance, x})
		}
	}
	s.latest.mu.Unlock()

	var (
		batchErr error
		failed   []error
	)
	if len(writes) > 0 {
		ops := make([]updateOp, len(writes))
		for j, w := range writes {
			ops[j] = w.op
		}
		failed, batchErr = s.updateMany(ctx, ops)
		for j, err := range failed {
			if err != nil {
				recordErrs[owner[j]] = append(recordErrs[owner[j]], writes[j].fail(err))
			}
		}
	} else if len(kept) > 0 || len(held) > 0 {
		// Nothing written: the fence is checked all the same, so a stale
		// leader's sweep leaves nothing behind in memory either.
		batchErr = CheckFence(ctx)
	}

	s.latest.mu.Lock()
	if batchErr != nil {
		for _, h := range taken {
			l := s.latest.entry(h.instance)
			l.pending = append(l.pending, h.x)
		}
	} else {
		for _, k := range kept {
			l := s.latest.entry(k.snap.Instance)
			if !k.snap.ProbedAt.Before(l.at) {
				l.packed, l.at = k.packed, k.snap.ProbedAt
			}
			if k.write >= 0 && failed[k.write] == nil {
				l.markPersisted(k.snap)
			}
		}
		for instance, d := range due {
			if d {
				s.written(s.latest.entry(instance), instance, now)
			}
		}
		for _, h := range held {
			l := s.latest.entry(h.instance)
			l.pending = append(l.pending, h.x)
		}
	}
	s.latest.mu.Unlock()

	var errs []error
	if batchErr != nil {
		errs = append(errs, batchErr)
	}
	for i, rerrs := range recordErrs {
		if len(rerrs) > 0 {
			errs = append(errs, fmt.Errorf("record %d (instance %q): %w", i, records[i].Instance, errors.Join(rerrs...)))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("store: record sweep of %d records: %w", len(records), errors.Join(errs...))
}

// preparedSnapshot is a record's snapshot packed (or why it could not
// be), and, when it looked due, encoded as the record written.
type preparedSnapshot struct {
	packed  []byte
	packErr error
	encoded bool
	write   pendingWrite
	err     error // of the encoding
}

// snapshotWrite is the write of snap: the one prepared, else made now.
func (p preparedSnapshot) snapshotWrite(snap *handlers.Snapshot) (pendingWrite, error) {
	if p.encoded {
		return p.write, p.err
	}
	return snapshotWrite(snap)
}

// prepareSnapshots packs every record's snapshot, and encodes those that
// look due, on every core and outside the lock: when every instance is
// due (a sweep's first, or the first after a restart) encoding 10,000
// snapshots one after the other, about 180 us each, was most of the
// sweep's save. Whether a snapshot is due is only a guess here: isDue
// decides under the lock, as a PutSnapshot or a record's own sample may
// change it first, and a due snapshot not encoded here is encoded there.
// A panic packing or encoding one snapshot (a hostile server's reply the
// encoder chokes on) is that record's error: on these goroutines it would
// end the process.
func (s *Store) prepareSnapshots(records []SweepRecord, now time.Time) []preparedSnapshot {
	out := make([]preparedSnapshot, len(records))
	s.latest.mu.Lock()
	for i, r := range records {
		if r.Snapshot != nil {
			l, ok := s.latest.m[r.Snapshot.Instance]
			out[i].encoded = !ok || l.isDue(r.Snapshot, now)
		}
	}
	s.latest.mu.Unlock()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(records)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(records); i = int(next.Add(1)) - 1 {
				snap, p := records[i].Snapshot, &out[i]
				if snap == nil {
					continue
				}
				p.packErr = handlers.Safely(func() error {
					p.packed = packSnapshot(snap)
					return nil
				})
				if p.encoded {
					p.err = handlers.Safely(func() (err error) {
						p.write, err = snapshotWrite(snap)
						return err
					})
				}
			}
		})
	}
	wg.Wait()
	return out
}

// keptSnapshot is a snapshot RecordSweep keeps, packed, and its write,
// or -1.
type keptSnapshot struct {
	snap   *handlers.Snapshot
	packed []byte
	write  int
}

// heldSample is a sample kept in memory until its instance is written.
type heldSample struct {
	instance string
	x        handlers.Point
}
