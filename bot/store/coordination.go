package store

import (
	"context"
	"fmt"
	"time"
)

// Once records key and reports whether this call was the first within ttl.
// Every replica receives the same Slack envelope on retry, and a click
// may arrive twice: the first caller wins and the others drop it, which
// is also how "execute once" is kept.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("store: once: empty key")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("store: once %q: ttl must be positive", key)
	}
	first, err := s.b.putIfAbsent(ctx, kindOnce, key, []byte(s.now().UTC().Format(time.RFC3339Nano)), ttl)
	if err != nil {
		return false, fmt.Errorf("store: once %q: %w", key, err)
	}
	return first, nil
}

// Lease is a named, expiring lock. Token is a fencing token: it grows with
// every new holder, so work done under an old lease can be refused.
type Lease struct {
	Name    string
	Holder  string
	Token   int64
	Expires time.Time
}

// AcquireLease takes the lease if it is free or expired (Token increments:
// a new holder always gets a larger token than any before), or renews it
// if holder already holds it (same Token, new Expires). ok=false with the
// current lease when someone else holds it. It is atomic on both backends
// (Redis: a Lua script). On Redis, expiry follows the server's clock.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, ok bool, err error) {
	if err := checkLeaseArgs(name, holder); err != nil {
		return Lease{}, false, err
	}
	if ttl <= 0 {
		return Lease{}, false, fmt.Errorf("store: lease %q: ttl must be positive", name)
	}
	return s.b.acquireLease(ctx, name, holder, ttl)
}

// ReleaseLease frees the lease if holder holds it, so the next holder need
// not wait for expiry. Anyone else's release is a no-op: a replica that
// lost its lease while paused must not free its successor's.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := checkLeaseArgs(name, holder); err != nil {
		return err
	}
	return s.b.releaseLease(ctx, name, holder)
}

// CheckLease is the fencing check: true only if the lease is unexpired and
// still has this token. A leader that was paused (GC, network) calls it
// before each side effect and stops when it turns false.
func (s *Store) CheckLease(ctx context.Context, name string, token int64) (bool, error) {
	if err := checkLeaseArgs(name, "-"); err != nil {
		return false, err
	}
	return s.b.checkLease(ctx, name, token)
}

func checkLeaseArgs(name, holder string) error {
	if name == "" || holder == "" {
		return fmt.Errorf("store: lease: empty name or holder")
	}
	return nil
}
