package store

import (
	"context"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// Window is Samples under the name trend rules read it by; with it the
// Store is a handlers.WindowHistory.
func (s *Store) Window(ctx context.Context, instance string, from, to time.Time) ([]handlers.Point, error) {
	return s.Samples(ctx, instance, from, to)
}

var _ handlers.WindowHistory = (*Store)(nil)
