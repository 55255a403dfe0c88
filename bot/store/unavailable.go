package store

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable marks a failure of the store itself (the Redis server down
// or restarting, a timeout, a bbolt I/O error), as opposed to an answer
// (ErrNotFound, ErrExists, ErrFenced, a refusal of the caller's own update
// function). Callers branch on it to tell users "the state store is
// unavailable, try again in a moment" instead of a wrong reason ("this
// approval no longer exists") or an error that names the server's address.
var ErrUnavailable = errors.New("state store unavailable")

// unavailableError is a backend failure marked as ErrUnavailable. Its text
// is the failure's own, for the log; what users see comes from the mark.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// markUnavailable marks err as a failure of the store unless it is an
// answer. A cancelled context is the caller's doing, not the store's.
func markUnavailable(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrFenced),
		errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled):
		return err
	}
	return &unavailableError{err}
}

// classified is the outermost backend: it marks the failures of the one
// inside as ErrUnavailable and reports each write refused by a fence.
// Errors of the caller's update functions pass unchanged, as the backend
// interface promises.
type classified struct {
	backend
	onFenced func(op string)
}

func (c classified) wrote(op string, err error) error {
	if errors.Is(err, ErrFenced) && c.onFenced != nil {
		c.onFenced(op)
	}
	return markUnavailable(err)
}

func (c classified) get(ctx context.Context, kind, key string) ([]byte, error) {
	b, err := c.backend.get(ctx, kind, key)
	return b, markUnavailable(err)
}

func (c classified) put(ctx context.Context, kind, key string, val []byte, ttl time.Duration) error {
	return c.wrote("put_"+kind, c.backend.put(ctx, kind, key, val, ttl))
}

func (c classified) putIfAbsent(ctx context.Context, kind, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := c.backend.putIfAbsent(ctx, kind, key, val, ttl)
	return ok, c.wrote("put_"+kind, err)
}

func (c classified) update(ctx context.Context, kind, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	var fnErr error
	err := c.backend.update(ctx, kind, key, ttl, func(old []byte) ([]byte, error) {
		v, err := fn(old)
		fnErr = err
		return v, err
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return err
	}
	return c.wrote("update_"+kind, err)
}

func (c classified) delete(ctx context.Context, kind string, keys ...string) (int, error) {
	n, err := c.backend.delete(ctx, kind, keys...)
	return n, c.wrote("delete_"+kind, err)
}

func (c classified) list(ctx context.Context, kind string, r span, fn func(key string, val []byte) bool) error {
	return markUnavailable(c.backend.list(ctx, kind, r, fn))
}

func (c classified) acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	l, ok, err := c.backend.acquireLease(ctx, name, holder, ttl)
	return l, ok, markUnavailable(err)
}

func (c classified) releaseLease(ctx context.Context, name, holder string) error {
	return markUnavailable(c.backend.releaseLease(ctx, name, holder))
}

func (c classified) checkLease(ctx context.Context, name string, token int64) (bool, error) {
	ok, err := c.backend.checkLease(ctx, name, token)
	return ok, markUnavailable(err)
}

func (c classified) sweep(ctx context.Context) error {
	return markUnavailable(c.backend.sweep(ctx))
}

// updateMany keeps the inner backend's batch. Only the batch's own failure
// is marked; each op's error (its fn's refusal, a record it cannot read)
// is an answer about that op.
func (c classified) updateMany(ctx context.Context, ops []updateOp) ([]error, error) {
	var (
		failed []error
		err    error
	)
	if bu, ok := c.backend.(batchUpdater); ok {
		failed, err = bu.updateMany(ctx, ops)
	} else {
		failed, err = updateEach(ctx, c.backend, ops)
	}
	return failed, c.wrote("batch", err)
}
