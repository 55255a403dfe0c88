package store

import (
	"context"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// Window returns an instance's samples between from and to as the points
// trend rules read; with it the Store is a handlers.WindowHistory.
func (s *Store) Window(ctx context.Context, instance string, from, to time.Time) ([]handlers.Point, error) {
	samples, err := s.Samples(ctx, instance, from, to)
	if err != nil {
		return nil, err
	}
	points := make([]handlers.Point, len(samples))
	for i, x := range samples {
		points[i] = handlers.Point{At: x.At, UsedMemory: x.UsedMemory, RSS: x.RSS, Peak: x.Peak, Maxmemory: x.Maxmemory,
			FragRatio: x.FragRatio, AllocFragRatio: x.AllocFragRatio, EvictedKeys: x.EvictedKeys, OOMErrors: x.OOMErrors, Keys: x.Keys}
	}
	return points, nil
}

var _ handlers.WindowHistory = (*Store)(nil)
