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
// shared store, one holds it and renews it every ttl/3; when it dies,
// another takes it within ttl + ttl/3 (the lease runs out ttl after the
// last renewal, and a follower tries every ttl/3).
//
// Its fencing token fences everything the leader's work does: Fence puts
// it in a context, and with that context every store write is refused
// once a newer token exists (atomically, in the store) and every Slack
// attempt checks the lease first (see store.WithFence). Token itself
// refuses a lease this process has not renewed for ttl by its own clock,
// which keeps running while the process is stopped: a leader resumed
// after a pause does not start work on the lease it remembers.
type Leader struct {
	st     *store.Store
	name   string
	holder string
	ttl    time.Duration
	log    *slog.Logger
	m      *metrics.Metrics
	// now is the local clock of renewals. time.Now's monotonic reading
	// counts the time a stopped process did not run.
	now func() time.Time

	mu      sync.Mutex
	token   int64
	renewed time.Time
}

// NewLeader returns a Leader for the lease name, held as holder. m counts
// panics while renewing and exports leadership and the fleet's last sweep;
// nil counts nothing.
func NewLeader(st *store.Store, name, holder string, ttl time.Duration, log *slog.Logger, m *metrics.Metrics) *Leader {
	return &Leader{st: st, name: name, holder: holder, ttl: ttl, log: log, m: m, now: time.Now}
}

// Holder is this replica's name in the lease.
func (l *Leader) Holder() string { return l.holder }

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
			l.mu.Lock()
			l.token = 0
			l.mu.Unlock()
			l.m.Leading(false)
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
	l.m.Leading(false)
	l.m.Panicked(ctx, l.log, "leader", pe)
}

func (l *Leader) renew(ctx context.Context) {
	start := l.now()
	lease, ok, err := l.st.AcquireLease(ctx, l.name, l.holder, l.ttl)
	l.mu.Lock()
	was := l.token
	switch {
	case err != nil:
		// Without the store we cannot know: stop acting as leader.
		l.token = 0
		l.log.Warn("leader lease unavailable", "error", err)
	case ok:
		l.token, l.renewed = lease.Token, start
	default:
		l.token = 0
	}
	now := l.token
	l.mu.Unlock()
	switch {
	case was == 0 && now != 0:
		l.log.Info("became leader for scheduled work", "lease", l.name, "token", now)
	case was != 0 && now == 0:
		l.log.Warn("lost leadership", "lease", l.name, "holder", lease.Holder)
	case was != now:
		// The lease was gone when we renewed it: it expired (this
		// process was paused) or the store restarted empty. Work under
		// the old token is fenced from here on.
		l.log.Warn("leader lease taken again with a new token", "lease", l.name, "old_token", was, "token", now)
	}
	l.m.Leading(now != 0)
	// Every replica runs this loop, so it is where a follower too learns
	// how fresh the fleet's sweeps are.
	if last, err := l.st.LastFleetSweep(ctx); err == nil {
		l.m.FleetSweep(last.At)
	}
}

// Token returns the fencing token while this replica leads: it holds the
// lease and renewed it less than a ttl ago by its own clock.
func (l *Leader) Token() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == 0 || l.now().Sub(l.renewed) >= l.ttl {
		return 0, false
	}
	return l.token, true
}

// Still checks with the store that token is still the current lease: a
// leader that was paused (GC, a stopped VM) past its lease must not post.
func (l *Leader) Still(ctx context.Context, token int64) bool {
	ok, err := l.st.CheckLease(ctx, l.name, token)
	return err == nil && ok
}

// Fence returns ctx fenced by this replica's lease, when it leads and the
// store confirms it: every store write made with the returned context,
// and every Slack attempt, is refused once another replica took the lease.
// ok is false when this replica does not lead (or cannot tell).
func (l *Leader) Fence(ctx context.Context) (fenced context.Context, token int64, ok bool) {
	token, ok = l.Token()
	if !ok || !l.Still(ctx, token) {
		return ctx, 0, false
	}
	return l.st.WithFence(ctx, store.Fence{Lease: l.name, Token: token}), token, true
}
