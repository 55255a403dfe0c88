package store

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// snapshotRecord wraps a snapshot rather than embedding it, so a field
// added to handlers.Snapshot can never clash with "schema".
type snapshotRecord struct {
	Schema   int                `json:"schema"`
	Snapshot *handlers.Snapshot `json:"snapshot"`
}

// PutSnapshot keeps snap as the last snapshot of its instance, replacing
// the previous one: rules compare a probe only with the one before it.
func (s *Store) PutSnapshot(ctx context.Context, snap *handlers.Snapshot) error {
	w, err := snapshotWrite(snap)
	if err != nil {
		return err
	}
	return s.write(ctx, w)
}

// snapshotWrite is PutSnapshot's write; RecordSweep batches it.
func snapshotWrite(snap *handlers.Snapshot) (pendingWrite, error) {
	if snap == nil {
		return pendingWrite{}, fmt.Errorf("store: put snapshot: nil snapshot")
	}
	key, err := joinKey("snapshot", snap.Instance)
	if err != nil {
		return pendingWrite{}, err
	}
	return putJSONWrite(kindSnapshots, key, snapshotRecord{Schema: SchemaVersion, Snapshot: snap})
}

// Last returns the last snapshot of an instance; it implements
// handlers.History. Any failure reads as "no previous snapshot": rules
// that compare with it then skip, which is the safe degradation, and the
// store's errors surface on writes.
func (s *Store) Last(ctx context.Context, instance string) (*handlers.Snapshot, bool) {
	var rec snapshotRecord
	if err := s.getJSON(ctx, kindSnapshots, instance, &rec); err != nil || rec.Snapshot == nil {
		return nil, false
	}
	return rec.Snapshot, true
}

var _ handlers.History = (*Store)(nil)

// factsRecord holds everything learned about one instance in one record,
// so reading them is one get and setting one is one atomic update.
type factsRecord struct {
	Schema    int               `json:"schema"`
	Facts     map[string]string `json:"facts"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// SetFact records something the bot learned about an instance, such as
// "defrag_supported" = "no", so it stops offering what cannot work there.
func (s *Store) SetFact(ctx context.Context, instance, key, value string) error {
	k, err := joinKey("fact", instance)
	if err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("store: fact for %q: empty key", instance)
	}
	err = s.b.update(ctx, kindFacts, k, 0, func(old []byte) ([]byte, error) {
		var rec factsRecord
		if old != nil {
			if err := decodeRecord(kindFacts, k, old, &rec); err != nil {
				return nil, err
			}
		}
		if rec.Facts == nil {
			rec.Facts = map[string]string{}
		}
		rec.Facts[key] = value
		rec.Schema, rec.UpdatedAt = SchemaVersion, s.now()
		return keepUnknown(old, rec)
	})
	if err != nil {
		return fmt.Errorf("store: set fact %s/%s: %w", instance, key, err)
	}
	return nil
}

// Facts returns what the bot learned about an instance; nothing learned
// yet is an empty map, not an error.
func (s *Store) Facts(ctx context.Context, instance string) (map[string]string, error) {
	var rec factsRecord
	err := s.getJSON(ctx, kindFacts, instance, &rec)
	if isNotFound(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.Facts == nil {
		return map[string]string{}, nil
	}
	return maps.Clone(rec.Facts), nil
}
