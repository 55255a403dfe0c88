package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrFenced refuses a write, or a Slack post, made under a lease token that
// is no longer the newest: another holder took the lease since. It is what
// a leader that was paused (a GC pause, a stopped VM, SIGSTOP) past its
// lease gets for everything it still tries to do.
var ErrFenced = errors.New("store: fenced: a newer lease holder exists, refusing the work of a stale one")

// Fence is the lease a piece of work is done under: the lease's name and
// the token its holder got when it acquired it.
type Fence struct {
	Lease string
	Token int64
}

// fenceKey is the context key of a fenceValue.
type fenceKey struct{}

// fenceValue is what WithFence puts in a context: the fence, and the store
// that issued its token, so whoever acts on the context (a Slack poster
// that knows nothing of leases) can check it.
type fenceValue struct {
	Fence
	s *Store
}

// WithFence returns ctx carrying f. Every write this store (or another
// Store on the same Redis) makes with the returned context is refused with
// ErrFenced, atomically with the write, once a token newer than f.Token
// has been issued for f.Lease; CheckFence lets non-store side effects (the
// Slack posts of a sweep) check it before each attempt.
//
// The write check is "no newer token was issued", not "the lease is still
// live": a holder whose lease merely expired, with nobody taking it yet,
// conflicts with no one. CheckFence is the stricter of the two.
func (s *Store) WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, fenceValue{Fence: f, s: s})
}

// FenceOf returns the fence ctx carries, if any.
func FenceOf(ctx context.Context) (Fence, bool) {
	v, ok := ctx.Value(fenceKey{}).(fenceValue)
	return v.Fence, ok
}

// CheckFence is the fencing check for side effects the store cannot make
// atomic with its own (a Slack post): nil when ctx carries no fence or its
// lease is live with its token; an error wrapping ErrFenced when it is not;
// the store's error when the store cannot tell, which also means "do not
// act": a leader that cannot reach the store cannot know it still leads.
func CheckFence(ctx context.Context) error {
	v, ok := ctx.Value(fenceKey{}).(fenceValue)
	if !ok {
		return nil
	}
	live, err := v.s.CheckLease(ctx, v.Lease, v.Token)
	if err != nil {
		return fmt.Errorf("store: check lease %q: %w", v.Lease, err)
	}
	if !live {
		v.s.fenced("check")
		return fmt.Errorf("lease %q token %d: %w", v.Lease, v.Token, ErrFenced)
	}
	return nil
}
