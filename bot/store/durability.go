package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Durability is what the store keeps across a restart of its server. A
// Redis store that keeps nothing loses pending approvals, alert records
// (whose messages the bot then finds again in Slack by their metadata)
// and the lease's token counter (which restarts from the clock, so
// fencing still holds): it works, but forgets.
type Durability struct {
	// Known is false when the server would not say (CONFIG GET denied by
	// an ACL, a proxy that does not forward it).
	Known bool
	// File is true for bbolt: every commit is fsynced to the file.
	File bool
	// AOF is appendonly yes; AppendFsync its fsync policy.
	AOF         bool
	AppendFsync string
	// Save is the RDB snapshot schedule ("3600 1 300 100"), "" when off.
	Save string
}

// Persistent says whether anything survives a restart of the server.
func (d Durability) Persistent() bool { return d.File || d.AOF || d.Save != "" }

// durable is a backend that can tell how it persists.
type durable interface {
	durability(ctx context.Context) (Durability, error)
}

// Durability reports how the store persists. Only the Redis backend asks
// its server; bbolt is a file.
func (s *Store) Durability(ctx context.Context) (Durability, error) {
	d, ok := s.raw.(durable)
	if !ok {
		return Durability{Known: true, File: true}, nil
	}
	return d.durability(ctx)
}

// durability reads appendonly, appendfsync and save. A refused CONFIG GET
// is Known=false, not an error: the bot does not need the permission.
func (r *redisBackend) durability(ctx context.Context) (Durability, error) {
	got, err := r.c.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		if isReplyError(err) {
			return Durability{}, nil
		}
		return Durability{}, markUnavailable(fmt.Errorf("store: redis CONFIG GET: %w", err))
	}
	more, err := r.c.ConfigGet(ctx, "save").Result()
	if err != nil && !isReplyError(err) {
		return Durability{}, markUnavailable(fmt.Errorf("store: redis CONFIG GET: %w", err))
	}
	fsync, _ := r.c.ConfigGet(ctx, "appendfsync").Result()
	aof, ok := got["appendonly"]
	if !ok {
		return Durability{}, nil
	}
	return Durability{Known: true, AOF: strings.EqualFold(aof, "yes"), AppendFsync: fsync["appendfsync"], Save: strings.TrimSpace(more["save"])}, nil
}

// isReplyError is an error the server answered (NOPERM, unknown command),
// as opposed to one on the way to it.
func isReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
