package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrInUse means a read-only open of the bbolt file timed out: another
// process (a running serve) holds it, and bbolt lets one writer or several
// readers have it, never both.
var ErrInUse = errors.New("store: the file is in use by another process")

// readOnlyWait bounds the wait for the file lock: the terminal's verbs
// answer at once rather than wait for a serve that never lets go.
const readOnlyWait = time.Second

// openBoltReadOnly opens an existing file for reading, as the CLI's
// store-backed verbs do: it creates nothing, and writes fail.
func openBoltReadOnly(ctx context.Context, path string, now func() time.Time) (*boltBackend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: readOnlyWait})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("store: open %s: %w", path, ErrInUse)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("store: open %s: %w", path, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &boltBackend{db: db, now: now}, nil
}
