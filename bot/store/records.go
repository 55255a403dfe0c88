package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// putJSON, getJSON, listJSON and deleteOne are the plumbing the typed
// methods share.
func (s *Store) putJSON(ctx context.Context, kind, key string, v any) error {
	w, err := putJSONWrite(kind, key, v)
	if err != nil {
		return err
	}
	return s.write(ctx, w)
}

// pendingWrite is a typed method's write, ready for the backend alone or
// in a batch, with what its errors say it was.
type pendingWrite struct {
	op   updateOp
	what string // for errors: put snapshots "cache-1"
}

func (w pendingWrite) fail(err error) error { return fmt.Errorf("store: %s: %w", w.what, err) }

// write runs one pendingWrite.
func (s *Store) write(ctx context.Context, w pendingWrite) error {
	if err := runOp(ctx, s.b, w.op); err != nil {
		return w.fail(err)
	}
	return nil
}

// writeBatch makes writes as one batch (updateMany): their errors, each
// named by its write, and the batch's own failure (then any write may or
// may not have been made).
func (s *Store) writeBatch(ctx context.Context, writes []pendingWrite) ([]error, error) {
	ops := make([]updateOp, len(writes))
	for i, w := range writes {
		ops[i] = w.op
	}
	failed, err := s.updateMany(ctx, ops)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, err := range failed {
		if err != nil {
			errs = append(errs, writes[i].fail(err))
		}
	}
	return errs, nil
}

// putJSONWrite encodes v as the record under key.
func putJSONWrite(kind, key string, v any) (pendingWrite, error) {
	val, err := json.Marshal(v)
	if err != nil {
		return pendingWrite{}, fmt.Errorf("store: %s %q: encode: %w", kind, printable(key), err)
	}
	return pendingWrite{
		op:   updateOp{kind: kind, key: key, val: val},
		what: fmt.Sprintf("put %s %q", kind, printable(key)),
	}, nil
}

func (s *Store) getJSON(ctx context.Context, kind, key string, v any) error {
	b, err := s.b.get(ctx, kind, key)
	if err != nil {
		return fmt.Errorf("store: %s %q: %w", kind, printable(key), err)
	}
	return decodeRecord(kind, key, b, v)
}

func listJSON[T any](ctx context.Context, s *Store, kind string, r span) ([]T, error) {
	var (
		out    []T
		decErr error
	)
	err := s.b.list(ctx, kind, r, func(key string, val []byte) bool {
		var v T
		if decErr = decodeRecord(kind, key, val, &v); decErr != nil {
			return false
		}
		out = append(out, v)
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", kind, err)
	}
	return out, nil
}

func (s *Store) deleteOne(ctx context.Context, kind, key string) error {
	n, err := s.b.delete(ctx, kind, key)
	if err != nil {
		return fmt.Errorf("store: delete %s %q: %w", kind, printable(key), err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s %q: %w", kind, printable(key), ErrNotFound)
	}
	return nil
}

// isNotFound keeps callers inside the package terse.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
