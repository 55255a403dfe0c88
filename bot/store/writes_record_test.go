package store_test

import (
	"context"

	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
)

// benchRecord and recordSweep are what a sweep records of one snapshot and
// how it hands a sweep's records to the store. They are apart from the
// benchmark so scripts/bench-store-writes.sh can run the same benchmark on
// the code before the change with that code's own versions.
func benchRecord(s *handlers.Snapshot) store.SweepRecord {
	return store.SweepRecord{Instance: s.Instance, Snapshot: s, Point: handlers.PointOf(s)}
}

func recordSweep(st *store.Store, records []store.SweepRecord) error {
	return st.RecordSweep(context.Background(), records)
}
