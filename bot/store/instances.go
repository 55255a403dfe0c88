package store

import (
	"context"
	"fmt"
	"maps"
	"time"
)

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
