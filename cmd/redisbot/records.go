package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redisbot/redisbot/bot/records"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
)

// localRecords is the state store as the terminal's store-backed verbs
// (audit, approvals, silences, trend) read it. It opens on first use, so
// no other verb touches the store, and read-only: a bbolt file held by a
// running serve is refused within a second instead of waited for.
type localRecords struct {
	cfg    config.Store
	once   sync.Once
	st     *store.Store
	reader records.Reader
	err    error
}

var _ handlers.Records = (*localRecords)(nil)

func (l *localRecords) open(ctx context.Context) (records.Reader, error) {
	l.once.Do(func() {
		if l.cfg.Path == "" && l.cfg.RedisURL == "" {
			l.err = errors.New("no state store is configured (store.path or store.redis_url)")
			return
		}
		l.st, l.err = store.Open(ctx, store.Options{Path: l.cfg.Path, RedisURL: l.cfg.RedisURL, ReadOnly: true})
		switch {
		case errors.Is(l.err, store.ErrInUse):
			l.err = fmt.Errorf("state store %s: the store is in use by a running serve; use Slack or the redis store (store.redis_url)", l.cfg.Path)
		case errors.Is(l.err, store.ErrNotFound):
			l.err = fmt.Errorf("no state store at %s yet: serve creates it when it first runs (store.path)", l.cfg.Path)
		case l.err != nil:
			// Open's errors never carry the Redis password.
			l.err = fmt.Errorf("state store %s: %w", l.cfg.String(), l.err)
		default:
			l.reader = records.New(l.st)
		}
	})
	return l.reader, l.err
}

func (l *localRecords) close() {
	if l.st != nil {
		_ = l.st.Close()
	}
}

func (l *localRecords) AuditLog(ctx context.Context, instance string, limit int) ([]handlers.AuditEntry, error) {
	r, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return r.AuditLog(ctx, instance, limit)
}

func (l *localRecords) PendingApprovals(ctx context.Context) ([]handlers.PendingApproval, error) {
	r, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return r.PendingApprovals(ctx)
}

func (l *localRecords) Silences(ctx context.Context) ([]handlers.SilenceEntry, error) {
	r, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return r.Silences(ctx)
}

func (l *localRecords) Window(ctx context.Context, instance string, from, to time.Time) ([]handlers.Point, error) {
	r, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	return r.Window(ctx, instance, from, to)
}
