package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Fenced writes on Redis: a write made with a context that carries a Fence
// WATCHes the lease's token counter, reads it, and refuses with ErrFenced
// unless it still holds the fence's token; the write's MULTI/EXEC then
// fails if the counter changed in between (a new holder took the lease),
// and the retry finds the new token and refuses. The counter changes only
// when a new holder takes the lease, not at renewals, so a leader's own
// renewals never make its writes retry.

// tokenKey is the lease's token counter.
func (r *redisBackend) tokenKey(lease string) string { return r.leaseKeys(lease)[1] }

// fenceWatch returns keys, plus the token counter of ctx's fence, if any:
// what a transaction must WATCH.
func (r *redisBackend) fenceWatch(ctx context.Context, keys ...string) []string {
	f, ok := FenceOf(ctx)
	if !ok {
		return keys
	}
	return append(append([]string(nil), keys...), r.tokenKey(f.Lease))
}

// checkFence is the check of ctx's fence inside a WATCH transaction (tx
// must watch fenceWatch's keys); nil when ctx carries none.
func (r *redisBackend) checkFence(ctx context.Context, tx *redis.Tx) error {
	f, ok := FenceOf(ctx)
	if !ok {
		return nil
	}
	v, err := tx.Get(ctx, r.tokenKey(f.Lease)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		// No token was ever issued here: the store restarted empty, and
		// this token belongs to its previous life.
		return fmt.Errorf("lease %q token %d: the store has no token for it (it restarted empty): %w", f.Lease, f.Token, ErrFenced)
	case err != nil:
		return err
	case v != strconv.FormatInt(f.Token, 10):
		return fmt.Errorf("lease %q token %d: token %s was issued since: %w", f.Lease, f.Token, v, ErrFenced)
	}
	return nil
}

// txPipelined runs write in one MULTI/EXEC, fenced when ctx carries a
// fence.
func (r *redisBackend) txPipelined(ctx context.Context, write func(redis.Pipeliner) error) error {
	if _, ok := FenceOf(ctx); !ok {
		_, err := r.c.TxPipelined(ctx, write)
		return err
	}
	for attempt := 1; ; attempt++ {
		err := r.c.Watch(ctx, func(tx *redis.Tx) error {
			if err := r.checkFence(ctx, tx); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, write)
			return err
		}, r.fenceWatch(ctx)...)
		// The counter changed under the check: check again, which now
		// refuses (or, if the lease came back to us, writes).
		if !errors.Is(err, redis.TxFailedErr) || attempt == updateAttempts {
			return err
		}
	}
}
