package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redisbot/redisbot/handlers"
)

// SweepRecord is what a sweep keeps of one instance.
type SweepRecord struct {
	// Instance is the history Sample goes to, as AppendSample's instance.
	Instance string
	// Snapshot, when not nil, becomes the last snapshot of its own
	// Snapshot.Instance, as with PutSnapshot.
	Snapshot *handlers.Snapshot
	Sample   Sample
}

// keptSnapshot is a snapshot RecordSweep keeps, and its write, or -1.
type keptSnapshot struct {
	snap  *handlers.Snapshot
	rec   []byte
	write int
}

// RecordSweep keeps every record's snapshot as its instance's last (Last
// answers with it; it is persisted when due, see snapshots.go) and appends
// every sample, with the effect of AppendSample for each record in order:
// the same records, TTLs and retention (a sample older than Retention is
// dropped), and a zero Sample.At is Now() (one Now for the sweep). A
// record with a nil Snapshot only appends its sample.
//
// It exists because a sweep of 1,000 instances is 1,000 writes and more:
// on bbolt they are one read-write transaction, so one fsync for the
// sweep; on Redis they share round trips (see redisBackend.updateMany).
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
	var (
		writes []pendingWrite
		owner  []int // the record of each write
		// kept are the snapshots to keep once the writes are made, and
		// whether each is among them.
		kept []keptSnapshot
	)
	recordErrs := make([][]error, len(records))
	for i, r := range records {
		if r.Snapshot != nil {
			switch w, rec, due, err := s.planSnapshot(r.Snapshot, now); {
			case err != nil:
				recordErrs[i] = append(recordErrs[i], err)
			case due:
				kept = append(kept, keptSnapshot{snap: r.Snapshot, rec: rec, write: len(writes)})
				writes, owner = append(writes, w), append(owner, i)
			default:
				kept = append(kept, keptSnapshot{snap: r.Snapshot, rec: rec, write: -1})
			}
		}
		w, keep, err := s.sampleWrite(r.Instance, r.Sample, now)
		switch {
		case err != nil:
			recordErrs[i] = append(recordErrs[i], err)
		case keep:
			writes, owner = append(writes, w), append(owner, i)
		}
	}

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
	} else if len(kept) > 0 {
		// Nothing written: the fence is checked all the same, so a
		// stale leader's sweep leaves no snapshot behind in memory.
		batchErr = CheckFence(ctx)
	}
	if batchErr == nil {
		for _, k := range kept {
			s.keepSnapshot(k.snap, k.rec, k.write >= 0 && failed[k.write] == nil, now)
		}
	}

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
