package store

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// What a sweep records of an instance, its snapshot and a history sample,
// changes every minute, and written each time it was most of the store's
// disk writes: an 8-10 KB snapshot and a history block rewritten in its
// own bbolt page (an instance's blocks are one key range, so with a few
// hours of history no two instances share the page of their current
// block), 9-10 MB a sweep per 1,000 instances and more as history grows.
//
// So the store keeps each instance's newest snapshot (encoded) and the
// samples since its last write in memory, and Last and Samples answer
// from both. It writes an instance's state when it changed meaningfully:
// the first time it sees the instance, when the server is another process
// (its run_id changed or its uptime went back: a restart must be seen
// after the bot restarts too), and otherwise once every PersistEvery,
// spread over that period by instance so the writes do not all come in
// one sweep. Close writes what is left.
//
// What another replica reads (a follower on the Redis backend answering a
// diagnose), or this process after a crash, is therefore up to
// PersistEvery old: rules comparing with the previous snapshot compare
// over a longer span and say how long ("in the last 12m"), and a crash
// loses at most PersistEvery of history.

// snapshotRecord wraps a snapshot rather than embedding it, so a field
// added to handlers.Snapshot can never clash with "schema".
//
// The snapshot is written deflated: 7.6 KB of JSON for a Redis 7.0 probe
// is 2.9 KB deflated, and bbolt keeps at least two values to a leaf, so a
// plain one costs four pages each time it is written and a deflated one
// two. A record of an older version (Snapshot) still reads; an older
// version reads a deflated one as no previous snapshot, the safe
// degradation.
type snapshotRecord struct {
	Schema   int                `json:"schema"`
	Snapshot *handlers.Snapshot `json:"snapshot,omitempty"`
	// Deflated is the snapshot's JSON, compressed with DEFLATE.
	Deflated []byte `json:"snapshot_deflate,omitempty"`
	// ProbedAt is the snapshot's, outside it: a write that must not
	// replace a newer snapshot (persistWrite) reads it without inflating
	// the snapshot. Zero in records of older versions.
	ProbedAt time.Time `json:"probed_at,omitzero"`
}

// maxSnapshotJSON bounds what a deflated snapshot may inflate to: a probe
// keeps 1 MiB of any reply (see probe's bulk limit), and a corrupt record
// must not take the bot's memory.
const maxSnapshotJSON = 8 << 20

// deflaters are reused: a flate.Writer allocates about 1 MB of tables
// whatever it compresses, and a new one per snapshot made a sweep of
// 1,000 instances allocate 1.25 GB and spend most of its save stage
// zeroing memory (BenchmarkRecordSweep1000).
var deflaters = sync.Pool{New: func() any {
	zw, err := flate.NewWriter(nil, flate.BestSpeed)
	if err != nil {
		panic(err) // only for an invalid level
	}
	return zw
}}

func encodeSnapshot(snap *handlers.Snapshot) ([]byte, error) {
	js, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(js); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return json.Marshal(snapshotRecord{Schema: SchemaVersion, Deflated: buf.Bytes(), ProbedAt: snap.ProbedAt})
}

// recordProbedAt is when the snapshot of a record was probed, read from
// its envelope when it says, else from the snapshot.
func recordProbedAt(key string, b []byte) (time.Time, error) {
	var env struct {
		ProbedAt time.Time `json:"probed_at"`
	}
	if err := decodeRecord(kindSnapshots, key, b, &env); err == nil && !env.ProbedAt.IsZero() {
		return env.ProbedAt, nil
	}
	snap, err := decodeSnapshot(key, b)
	if err != nil {
		return time.Time{}, err
	}
	return snap.ProbedAt, nil
}

// decodeSnapshot reads a snapshot record of any version.
func decodeSnapshot(key string, b []byte) (*handlers.Snapshot, error) {
	var r snapshotRecord
	if err := decodeRecord(kindSnapshots, key, b, &r); err != nil {
		return nil, err
	}
	if r.Deflated == nil {
		if r.Snapshot == nil {
			return nil, fmt.Errorf("store: %s %q: no snapshot", kindSnapshots, printable(key))
		}
		return r.Snapshot, nil
	}
	js, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(r.Deflated)), maxSnapshotJSON+1))
	if err == nil && len(js) > maxSnapshotJSON {
		err = fmt.Errorf("more than %d bytes", maxSnapshotJSON)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %s %q: inflate: %w", kindSnapshots, printable(key), err)
	}
	var snap handlers.Snapshot
	if err := decodeRecord(kindSnapshots, key, js, &snap); err != nil {
		return nil, err
	}
	return &snap, nil
}

// process tells one run of a server from the next.
type process struct {
	runID  string
	uptime int64
}

func processOf(s *handlers.Snapshot) process {
	runID, _ := s.Info.String("run_id")
	uptime, _ := s.Int("uptime_in_seconds")
	return process{runID: runID, uptime: uptime}
}

// restartedSince reports whether cur is another process than p.
func (p process) restartedSince(cur process) bool {
	if p.runID != "" && cur.runID != "" {
		return p.runID != cur.runID
	}
	return cur.uptime < p.uptime
}

// latest is what the store holds in memory of one instance.
type latest struct {
	// packed is the newest snapshot recorded (packSnapshot), probed at
	// at; nil when only the persisted one is known.
	packed []byte
	at     time.Time
	// persisted is the process of the snapshot in the backend, probed at
	// persistedAt (zero: unknown).
	persisted   process
	persistedAt time.Time
	// pending are the samples not written yet, in the order recorded.
	pending []handlers.Point
	// due is when the instance is written next; zero: at once.
	due time.Time
}

// latestCache holds the latest of every instance a sweep recorded.
type latestCache struct {
	mu sync.Mutex
	m  map[string]*latest
}

func (c *latestCache) entry(instance string) *latest {
	l, ok := c.m[instance]
	if !ok {
		l = &latest{}
		c.m[instance] = l
	}
	return l
}

// PutSnapshot writes snap as the last snapshot of its instance, unless
// the store holds a newer one.
func (s *Store) PutSnapshot(ctx context.Context, snap *handlers.Snapshot) error {
	w, err := snapshotWrite(snap)
	if err != nil {
		return err
	}
	if err := s.write(ctx, w); err != nil {
		return err
	}
	s.latest.mu.Lock()
	defer s.latest.mu.Unlock()
	l := s.latest.entry(snap.Instance)
	if !snap.ProbedAt.Before(l.at) {
		l.packed, l.at = packSnapshot(snap), snap.ProbedAt
	}
	l.markPersisted(snap)
	return nil
}

// snapshotKey is the store's key of snap, or why it has none.
func snapshotKey(snap *handlers.Snapshot) (string, error) {
	if snap == nil {
		return "", fmt.Errorf("store: put snapshot: nil snapshot")
	}
	return joinKey("snapshot", snap.Instance)
}

// snapshotWrite is the write of one snapshot.
func snapshotWrite(snap *handlers.Snapshot) (pendingWrite, error) {
	key, err := snapshotKey(snap)
	if err != nil {
		return pendingWrite{}, err
	}
	rec, err := encodeSnapshot(snap)
	if err != nil {
		return pendingWrite{}, fmt.Errorf("store: %s %q: encode: %w", kindSnapshots, printable(key), err)
	}
	return persistWrite(key, rec, snap.ProbedAt), nil
}

// persistWrite is a read-modify-write that keeps the stored snapshot when
// it is newer, so a replica that lost the lead, or a late Close, never
// replaces a newer one.
func persistWrite(key string, rec []byte, at time.Time) pendingWrite {
	return pendingWrite{
		op: updateOp{kind: kindSnapshots, key: key, fn: func(old []byte) ([]byte, error) {
			if old != nil {
				if stored, err := recordProbedAt(key, old); err == nil && stored.After(at) {
					return old, nil
				}
			}
			return rec, nil
		}},
		what: fmt.Sprintf("put %s %q", kindSnapshots, printable(key)),
	}
}

func (l *latest) markPersisted(snap *handlers.Snapshot) {
	if !snap.ProbedAt.Before(l.persistedAt) {
		l.persisted, l.persistedAt = processOf(snap), snap.ProbedAt
	}
}

// isDue reports whether an instance is written in this sweep, whose
// snapshot of it is snap (nil: none).
func (l *latest) isDue(snap *handlers.Snapshot, now time.Time) bool {
	return l.due.IsZero() || !now.Before(l.due) ||
		(snap != nil && !l.persistedAt.IsZero() && l.persisted.restartedSince(processOf(snap)))
}

// written notes that an instance was written at now: the next write is
// due PersistEvery later, or, for the first one, somewhere in the period
// so a new fleet's writes spread.
func (s *Store) written(l *latest, instance string, now time.Time) {
	if l.due.IsZero() {
		l.due = now.Add(spread(instance, s.persistEvery))
		return
	}
	l.due = now.Add(s.persistEvery)
}

// spread is where in a period an instance is written: the same for an
// instance every time, and even across a fleet.
func spread(instance string, every time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(instance))
	return time.Duration(h.Sum64() % uint64(max(every, 1)))
}

// Last returns the last snapshot of an instance; it implements
// handlers.History. Any failure reads as "no previous snapshot": rules
// that compare with it then skip, which is the safe degradation, and the
// store's errors surface on writes.
//
// A snapshot this process recorded less than PersistEvery ago is the
// newest there is while this replica sweeps; an older one may have been
// overtaken by another replica's, so the backend is read then too.
func (s *Store) Last(ctx context.Context, instance string) (*handlers.Snapshot, bool) {
	s.latest.mu.Lock()
	var (
		packed []byte
		at     time.Time
	)
	if l, ok := s.latest.m[instance]; ok {
		packed, at = l.packed, l.at
	}
	s.latest.mu.Unlock()
	cached := func() (*handlers.Snapshot, bool) {
		snap, err := unpackSnapshot(packed)
		return snap, err == nil
	}
	if packed != nil && s.now().Sub(at) < s.persistEvery {
		return cached()
	}
	var stored *handlers.Snapshot
	b, err := s.b.get(ctx, kindSnapshots, instance)
	if err == nil {
		stored, err = decodeSnapshot(instance, b)
	}
	if err != nil {
		if packed != nil {
			return cached()
		}
		return nil, false
	}
	if packed != nil && at.After(stored.ProbedAt) {
		return cached()
	}
	s.latest.mu.Lock()
	l := s.latest.entry(instance)
	l.markPersisted(stored)
	if l.due.IsZero() {
		// Written before this process started: due a period after it
		// was, which keeps the fleet's writes spread across restarts.
		l.due = stored.ProbedAt.Add(s.persistEvery)
	}
	s.latest.mu.Unlock()
	return stored, true
}

var _ handlers.History = (*Store)(nil)

// pendingSamples adds the samples of instance not written yet with
// from <= At <= to (to the second) to xs, which is in time order, as
// Samples would have read them.
func (s *Store) pendingSamples(instance string, xs []handlers.Point, lo, hi int64) []handlers.Point {
	s.latest.mu.Lock()
	var pending []handlers.Point
	if l, ok := s.latest.m[instance]; ok {
		pending = slices.Clone(l.pending)
	}
	s.latest.mu.Unlock()
	for _, x := range pending {
		row := sampleRow(x)
		if t := row[colTime]; t < lo || t > hi {
			continue
		}
		x = rowSample(row)
		i, found := slices.BinarySearchFunc(xs, x.At, func(y handlers.Point, t time.Time) int { return y.At.Compare(t) })
		if found {
			xs[i] = x
		} else {
			xs = slices.Insert(xs, i, x)
		}
	}
	return xs
}

// flushLatest writes every snapshot newer than the backend's and every
// pending sample, in one batch; Close runs it so a clean stop loses none.
func (s *Store) flushLatest(ctx context.Context) error {
	now := s.now()
	s.latest.mu.Lock()
	var (
		writes []pendingWrite
		errs   []error
	)
	for instance, l := range s.latest.m {
		if l.packed != nil && l.at.After(l.persistedAt) {
			snap, err := unpackSnapshot(l.packed)
			if err == nil {
				var w pendingWrite
				if w, err = snapshotWrite(snap); err == nil {
					writes = append(writes, w)
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("snapshot of %q: %w", instance, err))
			}
		}
		for _, x := range l.pending {
			if w, keep, err := s.sampleWrite(instance, x, now); err == nil && keep {
				writes = append(writes, w)
			}
		}
		l.pending = nil
	}
	s.latest.mu.Unlock()
	if len(writes) > 0 {
		failed, err := s.writeBatch(ctx, writes)
		if err != nil {
			return fmt.Errorf("store: write %d snapshots and samples kept in memory: %w", len(writes), err)
		}
		errs = append(errs, failed...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("store: write what was kept in memory: %w", errors.Join(errs...))
	}
	return nil
}
