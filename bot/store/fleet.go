package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// fleetSweepKey holds the last fleet sweep in the facts kind. The stars
// keep it apart from instance names, as "*digest*" does.
const fleetSweepKey = "*sweep*"

// FleetSweep is the last sweep of the fleet by whichever replica led:
// sweep freshness belongs to the shared state, so every replica reports
// the same age, a follower included.
type FleetSweep struct {
	At time.Time
	// By is the lease holder that swept.
	By string
}

// RecordFleetSweep stamps the end of a sweep. Like every write of the
// leader's work it is refused (ErrFenced) when ctx's fence is stale.
func (s *Store) RecordFleetSweep(ctx context.Context, at time.Time, by string) error {
	rec := factsRecord{Schema: SchemaVersion, UpdatedAt: s.now(),
		Facts: map[string]string{"at": at.UTC().Format(time.RFC3339Nano), "by": by}}
	if err := s.putJSON(ctx, kindFacts, fleetSweepKey, rec); err != nil {
		return fmt.Errorf("store: record fleet sweep: %w", err)
	}
	return nil
}

// LastFleetSweep returns the last fleet sweep; a zero At when none was
// recorded (a new or emptied store).
func (s *Store) LastFleetSweep(ctx context.Context) (FleetSweep, error) {
	var rec factsRecord
	err := s.getJSON(ctx, kindFacts, fleetSweepKey, &rec)
	if errors.Is(err, ErrNotFound) {
		return FleetSweep{}, nil
	}
	if err != nil {
		return FleetSweep{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, rec.Facts["at"])
	if err != nil {
		return FleetSweep{}, fmt.Errorf("store: last fleet sweep: %w", err)
	}
	return FleetSweep{At: at, By: rec.Facts["by"]}, nil
}
