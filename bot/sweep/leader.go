// Package sweep runs the scheduled work of the bot: fleet sweeps that probe
// every instance, record history, move each (instance, finding) through the
// alert lifecycle and post alerts; and the leader lease that makes sure only
// one of several bot replicas does it.
package sweep

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
)

// Leader holds the lease for scheduled work. With several replicas on one
// shared store, one holds it and renews it every ttl/3; when it dies, another
// takes it within ttl. Its fencing token lets a paused old leader find out,
// before each post, that it is no longer the leader.
type Leader struct {
	st     *store.Store
	name   string
	holder string
	ttl    time.Duration
	log    *slog.Logger
	m      *metrics.Metrics

	mu    sync.Mutex
	token int64
}

// NewLeader returns a Leader for the lease name, held as holder. m counts
// panics while renewing; nil counts nothing.
func NewLeader(st *store.Store, name, holder string, ttl time.Duration, log *slog.Logger, m *metrics.Metrics) *Leader {
	return &Leader{st: st, name: name, holder: holder, ttl: ttl, log: log, m: m}
}

// Run acquires and renews the lease until ctx ends, then releases it so a
// replica that stays up takes over at once.
func (l *Leader) Run(ctx context.Context) {
	l.renewSafely(ctx)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = l.st.ReleaseLease(rctx, l.name, l.holder)
			cancel()
			return
		case <-t.C:
			l.renewSafely(ctx)
		}
	}
}

// renewSafely is renew where a panic (in the store, say) cannot end the
// renewals: this replica stops acting as leader, as when the store is
// unreachable, and tries again at the next tick. A leader whose renewals
// had died would keep its token and act on a lease another replica holds.
func (l *Leader) renewSafely(ctx context.Context) {
	pe, ok := handlers.AsPanic(handlers.Safely(func() error { l.renew(ctx); return nil }))
	if !ok {
		return
	}
	l.mu.Lock()
	l.token = 0
	l.mu.Unlock()
	l.m.Panicked(ctx, l.log, "leader", pe)
}

func (l *Leader) renew(ctx context.Context) {
	lease, ok, err := l.st.AcquireLease(ctx, l.name, l.holder, l.ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.token
	switch {
	case err != nil:
		// Without the store we cannot know: stop acting as leader.
		l.token = 0
		l.log.Warn("leader lease unavailable", "error", err)
	case ok:
		l.token = lease.Token
	default:
		l.token = 0
	}
	if was == 0 && l.token != 0 {
		l.log.Info("became leader for scheduled work", "lease", l.name, "token", l.token)
	} else if was != 0 && l.token == 0 {
		l.log.Warn("lost leadership", "lease", l.name, "holder", lease.Holder)
	}
}

// Token returns the fencing token while this replica leads.
func (l *Leader) Token() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token, l.token != 0
}

// Still checks with the store that token is still the current lease: a
// leader that was paused (GC, a stopped VM) past its lease must not post.
func (l *Leader) Still(ctx context.Context, token int64) bool {
	ok, err := l.st.CheckLease(ctx, l.name, token)
	return err == nil && ok
}
