package store

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// The last snapshot of each instance is what rules compare a probe with
// (handlers.History). A sweep replaces every instance's each minute, and
// at 8-10 KB a snapshot that was most of what the store wrote: about 9 MB
// a sweep per 1,000 instances on bbolt, most of them pages rewritten for
// numbers nobody reads again once the next sweep has come.
//
// So the newest snapshot of each instance a sweep recorded is kept in
// memory, encoded, and Last answers from it; the store persists it only
// when it changed meaningfully: the first time, when the server is
// another process (its run_id changed or its uptime went back: a restart
// must be seen after the bot restarts too), and otherwise once every
// SnapshotEvery, spread over that period by instance so the writes do not
// come all in one sweep. Close persists what is newer than the store's.
//
// What another replica reads (a follower on the Redis backend answering a
// diagnose) or this one after a restart is therefore up to SnapshotEvery
// old: rules that compare with the previous snapshot then compare over a
// longer span, and they say how long ("in the last 12m").

// snapshotRecord wraps a snapshot rather than embedding it, so a field
// added to handlers.Snapshot can never clash with "schema".
type snapshotRecord struct {
	Schema   int                `json:"schema"`
	Snapshot *handlers.Snapshot `json:"snapshot"`
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

// latest is what the store knows of one instance's last snapshots.
type latest struct {
	// rec is the newest snapshot recorded, encoded, probed at at; nil
	// when only the persisted one is known.
	rec []byte
	at  time.Time
	// persisted is the process of the snapshot in the backend, probed at
	// persistedAt (zero: unknown); due is when the next one is written.
	persisted   process
	persistedAt time.Time
	due         time.Time
}

// snapshotCache holds the latest of every instance a sweep recorded.
type snapshotCache struct {
	mu sync.Mutex
	m  map[string]*latest
}

// PutSnapshot writes snap as the last snapshot of its instance, unless
// the store holds a newer one.
func (s *Store) PutSnapshot(ctx context.Context, snap *handlers.Snapshot) error {
	w, rec, err := snapshotWrite(snap)
	if err != nil {
		return err
	}
	if err := s.write(ctx, w); err != nil {
		return err
	}
	s.snapshots.mu.Lock()
	defer s.snapshots.mu.Unlock()
	l := s.snapshots.entry(snap.Instance)
	if !snap.ProbedAt.Before(l.at) {
		l.rec, l.at = rec, snap.ProbedAt
	}
	l.markPersisted(snap, s.now().Add(s.snapshotEvery))
	return nil
}

// snapshotWrite is the write of one snapshot: a read-modify-write that
// keeps the stored snapshot when it is newer, so a replica that lost the
// lead, or a late Close, never replaces a newer one.
func snapshotWrite(snap *handlers.Snapshot) (pendingWrite, []byte, error) {
	if snap == nil {
		return pendingWrite{}, nil, fmt.Errorf("store: put snapshot: nil snapshot")
	}
	key, err := joinKey("snapshot", snap.Instance)
	if err != nil {
		return pendingWrite{}, nil, err
	}
	rec, err := json.Marshal(snapshotRecord{Schema: SchemaVersion, Snapshot: snap})
	if err != nil {
		return pendingWrite{}, nil, fmt.Errorf("store: %s %q: encode: %w", kindSnapshots, printable(key), err)
	}
	return persistWrite(key, rec, snap.ProbedAt), rec, nil
}

func persistWrite(key string, rec []byte, at time.Time) pendingWrite {
	return pendingWrite{
		op: updateOp{kind: kindSnapshots, key: key, fn: func(old []byte) ([]byte, error) {
			var stored struct {
				Snapshot struct {
					ProbedAt time.Time `json:"probed_at"`
				} `json:"snapshot"`
			}
			if old != nil && json.Unmarshal(old, &stored) == nil && stored.Snapshot.ProbedAt.After(at) {
				return old, nil
			}
			return rec, nil
		}},
		what: fmt.Sprintf("put %s %q", kindSnapshots, printable(key)),
	}
}

// planSnapshot returns the write of snap and whether it is due (see
// above); keepSnapshot makes it the newest once the sweep's writes are
// made, so a sweep the store refused (a stale leader's) leaves nothing.
func (s *Store) planSnapshot(snap *handlers.Snapshot, now time.Time) (w pendingWrite, rec []byte, due bool, err error) {
	w, rec, err = snapshotWrite(snap)
	if err != nil {
		return pendingWrite{}, nil, false, err
	}
	s.snapshots.mu.Lock()
	defer s.snapshots.mu.Unlock()
	l, ok := s.snapshots.m[snap.Instance]
	due = !ok || l.persistedAt.IsZero() || l.persisted.restartedSince(processOf(snap)) || !now.Before(l.due)
	return w, rec, due, nil
}

// keepSnapshot makes snap, encoded as rec, its instance's newest unless a
// newer one is there; persisted says it is in the backend now.
func (s *Store) keepSnapshot(snap *handlers.Snapshot, rec []byte, persisted bool, now time.Time) {
	s.snapshots.mu.Lock()
	defer s.snapshots.mu.Unlock()
	l := s.snapshots.entry(snap.Instance)
	if !snap.ProbedAt.Before(l.at) {
		l.rec, l.at = rec, snap.ProbedAt
	}
	if !persisted {
		return
	}
	next := now.Add(s.snapshotEvery)
	if l.persistedAt.IsZero() {
		// The first of a new fleet: spread the next ones over the period.
		next = now.Add(spread(snap.Instance, s.snapshotEvery))
	}
	l.markPersisted(snap, next)
}

func (l *latest) markPersisted(snap *handlers.Snapshot, due time.Time) {
	if snap.ProbedAt.Before(l.persistedAt) {
		return
	}
	l.persisted, l.persistedAt, l.due = processOf(snap), snap.ProbedAt, due
}

// spread is where in a period an instance's snapshot is written: the same
// for an instance every time, and even across a fleet.
func spread(instance string, every time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(instance))
	return time.Duration(h.Sum64() % uint64(max(every, 1)))
}

func (c *snapshotCache) entry(instance string) *latest {
	l, ok := c.m[instance]
	if !ok {
		l = &latest{}
		c.m[instance] = l
	}
	return l
}

// Last returns the last snapshot of an instance; it implements
// handlers.History. Any failure reads as "no previous snapshot": rules
// that compare with it then skip, which is the safe degradation, and the
// store's errors surface on writes.
//
// A snapshot this process recorded less than SnapshotEvery ago is the
// newest there is while this replica sweeps; an older one may have been
// overtaken by another replica's, so the backend is read then too.
func (s *Store) Last(ctx context.Context, instance string) (*handlers.Snapshot, bool) {
	s.snapshots.mu.Lock()
	var (
		rec []byte
		at  time.Time
	)
	if l, ok := s.snapshots.m[instance]; ok {
		rec, at = l.rec, l.at
	}
	s.snapshots.mu.Unlock()
	if rec != nil && s.now().Sub(at) < s.snapshotEvery {
		return decodeSnapshot(instance, rec)
	}
	var stored snapshotRecord
	if err := s.getJSON(ctx, kindSnapshots, instance, &stored); err != nil || stored.Snapshot == nil {
		if rec != nil {
			return decodeSnapshot(instance, rec)
		}
		return nil, false
	}
	if rec != nil && at.After(stored.Snapshot.ProbedAt) {
		return decodeSnapshot(instance, rec)
	}
	s.snapshots.mu.Lock()
	l := s.snapshots.entry(instance)
	l.markPersisted(stored.Snapshot, stored.Snapshot.ProbedAt.Add(s.snapshotEvery))
	s.snapshots.mu.Unlock()
	return stored.Snapshot, true
}

func decodeSnapshot(instance string, rec []byte) (*handlers.Snapshot, bool) {
	var r snapshotRecord
	if decodeRecord(kindSnapshots, instance, rec, &r) != nil || r.Snapshot == nil {
		return nil, false
	}
	return r.Snapshot, true
}

var _ handlers.History = (*Store)(nil)

// flushSnapshots persists every snapshot newer than the backend's, in one
// batch; Close runs it so a clean stop loses none.
func (s *Store) flushSnapshots(ctx context.Context) error {
	s.snapshots.mu.Lock()
	var ops []updateOp
	for instance, l := range s.snapshots.m {
		if l.rec != nil && l.at.After(l.persistedAt) {
			ops = append(ops, persistWrite(instance, l.rec, l.at).op)
		}
	}
	s.snapshots.mu.Unlock()
	if len(ops) == 0 {
		return nil
	}
	failed, err := s.updateMany(ctx, ops)
	if err != nil {
		return fmt.Errorf("store: persist %d snapshots: %w", len(ops), err)
	}
	n := 0
	for _, err := range failed {
		if err != nil {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("store: persist snapshots: %d of %d failed", n, len(ops))
	}
	return nil
}
