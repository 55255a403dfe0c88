package store

import (
	"context"
	"errors"
	"time"
)

// observed is a backend that reports its failures (store_errors_total):
// a store that cannot write is a bot that forgets approvals and alerts,
// and should page someone before users notice. A missing key, a cancelled
// context, a stale leader's write refused by its fence and an error of the caller's own update function (a domain
// refusal such as "already decided") are not failures of the store.
type observed struct {
	backend
	onError func(op string)
}

func (o observed) fail(op, kind string, err error) {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrFenced) || errors.Is(err, context.Canceled) {
		return
	}
	if kind != "" {
		op += "_" + kind
	}
	o.onError(op)
}

func (o observed) get(ctx context.Context, kind, key string) ([]byte, error) {
	b, err := o.backend.get(ctx, kind, key)
	o.fail("get", kind, err)
	return b, err
}

func (o observed) put(ctx context.Context, kind, key string, val []byte, ttl time.Duration) error {
	err := o.backend.put(ctx, kind, key, val, ttl)
	o.fail("put", kind, err)
	return err
}

func (o observed) putIfAbsent(ctx context.Context, kind, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := o.backend.putIfAbsent(ctx, kind, key, val, ttl)
	o.fail("put", kind, err)
	return ok, err
}

func (o observed) update(ctx context.Context, kind, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	var fnErr error
	err := o.backend.update(ctx, kind, key, ttl, func(old []byte) ([]byte, error) {
		v, err := fn(old)
		fnErr = err
		return v, err
	})
	if fnErr == nil || !errors.Is(err, fnErr) {
		o.fail("update", kind, err)
	}
	return err
}

func (o observed) delete(ctx context.Context, kind string, keys ...string) (int, error) {
	n, err := o.backend.delete(ctx, kind, keys...)
	o.fail("delete", kind, err)
	return n, err
}

func (o observed) list(ctx context.Context, kind string, r span, fn func(key string, val []byte) bool) error {
	err := o.backend.list(ctx, kind, r, fn)
	o.fail("list", kind, err)
	return err
}

func (o observed) acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	l, ok, err := o.backend.acquireLease(ctx, name, holder, ttl)
	o.fail("lease", "", err)
	return l, ok, err
}

func (o observed) releaseLease(ctx context.Context, name, holder string) error {
	err := o.backend.releaseLease(ctx, name, holder)
	o.fail("lease", "", err)
	return err
}

func (o observed) checkLease(ctx context.Context, name string, token int64) (bool, error) {
	ok, err := o.backend.checkLease(ctx, name, token)
	o.fail("lease", "", err)
	return ok, err
}

func (o observed) sweep(ctx context.Context) error {
	err := o.backend.sweep(ctx)
	o.fail("sweep", "", err)
	return err
}

// updateMany keeps the inner backend's batch; only a failure of the batch
// itself counts, not its ops' own refusals.
func (o observed) updateMany(ctx context.Context, ops []updateOp) ([]error, error) {
	var (
		failed []error
		err    error
	)
	if bu, ok := o.backend.(batchUpdater); ok {
		failed, err = bu.updateMany(ctx, ops)
	} else {
		failed, err = updateEach(ctx, o.backend, ops)
	}
	o.fail("batch", "", err)
	return failed, err
}
