package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets besides one per kind: leases, and their token counters, which
// outlive the leases so a new holder always gets a larger token.
const (
	bucketLeases      = "leases"
	bucketLeaseTokens = "lease_tokens"
)

// boltBackend keeps each kind in its own bucket of one bbolt file. Every
// value is wrapped in an expiry envelope: one tag byte, then for tagExpiry
// the expiry as 8 bytes of big-endian Unix nanoseconds, then the payload.
// Expiry follows the injected clock; expired entries read as missing until
// sweep deletes them.
type boltBackend struct {
	db  *bolt.DB
	now func() time.Time
}

// appendKinds are the kinds whose new keys land at the end of a key range
// (an instance's next hour, the next audit instant). Their buckets split
// pages at 90% instead of bbolt's 50%: the left page of a split would never
// be filled again, and history pages then hold about 40% more.
var appendKinds = map[string]bool{kindHistory: true, kindAudit: true}

const (
	tagPlain  byte = 0
	tagExpiry byte = 1
)

// openBolt opens (or creates) the file. noSync is for tests that measure
// size, never for the bot: without fsync a power cut can lose committed
// approvals.
func openBolt(ctx context.Context, path string, now func() time.Time, noSync bool) (*boltBackend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The timeout bounds the wait for the file lock: a second bot on the
	// same file fails to start instead of hanging.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: noSync})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range slices.Concat(kinds, []string{bucketLeases, bucketLeaseTokens}) {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: create buckets: %w", path, err)
	}
	return &boltBackend{db: db, now: now}, nil
}

func (b *boltBackend) name() string { return "bbolt" }

func (b *boltBackend) close() error { return b.db.Close() }

// wrap puts a value in its envelope.
func (b *boltBackend) wrap(val []byte, ttl time.Duration) []byte {
	if ttl <= 0 {
		return append([]byte{tagPlain}, val...)
	}
	out := make([]byte, 9, 9+len(val))
	out[0] = tagExpiry
	binary.BigEndian.PutUint64(out[1:], uint64(b.now().Add(ttl).UnixNano()))
	return append(out, val...)
}

// unwrap returns the payload, or live=false when it has expired. The
// payload aliases bbolt's memory: copy it before the transaction ends.
func (b *boltBackend) unwrap(v []byte, now time.Time) (payload []byte, live bool, err error) {
	if len(v) == 0 {
		return nil, false, errors.New("empty value")
	}
	switch v[0] {
	case tagPlain:
		return v[1:], true, nil
	case tagExpiry:
		if len(v) < 9 {
			return nil, false, errors.New("truncated expiry")
		}
		exp := int64(binary.BigEndian.Uint64(v[1:9]))
		return v[9:], now.UnixNano() < exp, nil
	default:
		return nil, false, fmt.Errorf("unknown envelope tag %d", v[0])
	}
}

func bucket(tx *bolt.Tx, kind string) (*bolt.Bucket, error) {
	bk := tx.Bucket([]byte(kind))
	if bk == nil {
		return nil, fmt.Errorf("store: bbolt: no bucket %q", kind)
	}
	if appendKinds[kind] {
		bk.FillPercent = 0.9
	}
	return bk, nil
}

func (b *boltBackend) get(ctx context.Context, kind, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		bk, err := bucket(tx, kind)
		if err != nil {
			return err
		}
		v := bk.Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		payload, live, err := b.unwrap(v, b.now())
		if err != nil {
			return fmt.Errorf("store: %s %q: %w", kind, printable(key), err)
		}
		if !live {
			return ErrNotFound
		}
		out = bytes.Clone(payload)
		return nil
	})
	return out, err
}

func (b *boltBackend) put(ctx context.Context, kind, key string, val []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		if err := b.checkFence(ctx, tx); err != nil {
			return err
		}
		return b.apply(tx, updateOp{kind: kind, key: key, ttl: ttl, val: val})
	})
}

func (b *boltBackend) putIfAbsent(ctx context.Context, kind, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	wrote := false
	err := b.db.Update(func(tx *bolt.Tx) error {
		if err := b.checkFence(ctx, tx); err != nil {
			return err
		}
		bk, err := bucket(tx, kind)
		if err != nil {
			return err
		}
		if v := bk.Get([]byte(key)); v != nil {
			// A corrupt envelope counts as present: overwriting it could
			// hide a record we failed to read.
			if _, live, err := b.unwrap(v, b.now()); err != nil || live {
				return nil
			}
		}
		wrote = true
		return bk.Put([]byte(key), b.wrap(val, ttl))
	})
	return wrote, err
}

func (b *boltBackend) update(ctx context.Context, kind, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// One read-write transaction: bbolt allows a single writer at a time,
	// so concurrent updates in this process are serialised and each fn
	// sees the previous one's result.
	return b.db.Update(func(tx *bolt.Tx) error {
		if err := b.checkFence(ctx, tx); err != nil {
			return err
		}
		return b.apply(tx, updateOp{kind: kind, key: key, ttl: ttl, fn: fn})
	})
}

// updateMany runs every op in one read-write transaction, so a batch
// costs one fsync however many ops it holds. A failing op is skipped
// without aborting the transaction: its fn ran before any write, and
// bbolt's Put refuses before it changes anything.
func (b *boltBackend) updateMany(ctx context.Context, ops []updateOp) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	failed := make([]error, len(ops))
	err := b.db.Update(func(tx *bolt.Tx) error {
		if err := b.checkFence(ctx, tx); err != nil {
			return err
		}
		for i, op := range ops {
			if err := ctx.Err(); err != nil {
				return err
			}
			failed[i] = b.apply(tx, op)
		}
		return nil
	})
	if err != nil {
		// Rolled back or not committed: nothing was written.
		return nil, err
	}
	return failed, nil
}

// apply writes one op in tx. A later op on the same key in the same tx
// reads what an earlier one put.
func (b *boltBackend) apply(tx *bolt.Tx, op updateOp) error {
	bk, err := bucket(tx, op.kind)
	if err != nil {
		return err
	}
	val := op.val
	if op.fn != nil {
		var old []byte
		if v := bk.Get([]byte(op.key)); v != nil {
			payload, live, err := b.unwrap(v, b.now())
			if err != nil {
				return fmt.Errorf("store: %s %q: %w", op.kind, printable(op.key), err)
			}
			if live {
				old = bytes.Clone(payload)
			}
		}
		if val, err = op.fn(old); err != nil {
			return err
		}
	}
	return bk.Put([]byte(op.key), b.wrap(val, op.ttl))
}

func (b *boltBackend) delete(ctx context.Context, kind string, keys ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := b.db.Update(func(tx *bolt.Tx) error {
		if err := b.checkFence(ctx, tx); err != nil {
			return err
		}
		bk, err := bucket(tx, kind)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if v := bk.Get([]byte(k)); v != nil {
				if _, live, err := b.unwrap(v, b.now()); err != nil || live {
					n++
				}
			}
			if err := bk.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

func (b *boltBackend) list(ctx context.Context, kind string, r span, fn func(key string, val []byte) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *bolt.Tx) error {
		bk, err := bucket(tx, kind)
		if err != nil {
			return err
		}
		now := b.now()
		c := bk.Cursor()
		from, to := []byte(r.from), []byte(r.to)
		var k, v []byte
		if r.reverse {
			if r.to == "" {
				k, v = c.Last()
			} else if k, v = c.Seek(to); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Seek(from)
		}
		for ; k != nil; k, v = step(c, r.reverse) {
			if r.reverse && bytes.Compare(k, from) < 0 {
				return nil
			}
			if !r.reverse && r.to != "" && bytes.Compare(k, to) >= 0 {
				return nil
			}
			payload, live, err := b.unwrap(v, now)
			if err != nil {
				return fmt.Errorf("store: %s %q: %w", kind, printable(string(k)), err)
			}
			if !live {
				continue
			}
			if r.keysOnly {
				payload = nil
			}
			if !fn(string(k), bytes.Clone(payload)) {
				return nil
			}
		}
		return nil
	})
}

func step(c *bolt.Cursor, reverse bool) ([]byte, []byte) {
	if reverse {
		return c.Prev()
	}
	return c.Next()
}

// sweep deletes expired envelopes in every kind and expired leases. Keys
// are collected first: deleting under a moving cursor skips entries.
func (b *boltBackend) sweep(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := b.now()
	return b.db.Update(func(tx *bolt.Tx) error {
		for _, kind := range kinds {
			bk, err := bucket(tx, kind)
			if err != nil {
				return err
			}
			var dead [][]byte
			err = bk.ForEach(func(k, v []byte) error {
				if len(v) > 0 && v[0] == tagExpiry {
					if _, live, err := b.unwrap(v, now); err == nil && !live {
						dead = append(dead, bytes.Clone(k))
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range dead {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
		}
		leases, err := bucket(tx, bucketLeases)
		if err != nil {
			return err
		}
		var dead [][]byte
		err = leases.ForEach(func(k, v []byte) error {
			var rec leaseRecord
			if json.Unmarshal(v, &rec) == nil && !now.Before(rec.Expires) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := leases.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// leaseRecord is a lease as bbolt stores it.
type leaseRecord struct {
	Schema  int       `json:"schema"`
	Holder  string    `json:"holder"`
	Token   int64     `json:"token"`
	Expires time.Time `json:"expires"`
}

func (b *boltBackend) acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, false, err
	}
	var (
		out Lease
		ok  bool
	)
	err := b.db.Update(func(tx *bolt.Tx) error {
		leases, err := bucket(tx, bucketLeases)
		if err != nil {
			return err
		}
		tokens, err := bucket(tx, bucketLeaseTokens)
		if err != nil {
			return err
		}
		now := b.now()
		var cur leaseRecord
		held := false
		if v := leases.Get([]byte(name)); v != nil {
			if err := json.Unmarshal(v, &cur); err != nil {
				return fmt.Errorf("store: lease %q: decode: %w", name, err)
			}
			held = now.Before(cur.Expires)
		}
		if held && cur.Holder != holder {
			out = Lease{Name: name, Holder: cur.Holder, Token: cur.Token, Expires: cur.Expires}
			return nil
		}
		if !held {
			var last int64
			if v := tokens.Get([]byte(name)); len(v) == 8 {
				last = int64(binary.BigEndian.Uint64(v))
			} else {
				// A new counter starts at the clock in microseconds, as
				// on Redis (see acquireScript): tokens grow across a
				// store that was replaced by an empty one.
				last = now.UnixMicro()
			}
			// The lease record's token is a second witness in case the
			// counter was lost: never hand out a token twice.
			cur = leaseRecord{Holder: holder, Token: max(last, cur.Token) + 1}
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], uint64(cur.Token))
			if err := tokens.Put([]byte(name), buf[:]); err != nil {
				return err
			}
		}
		cur.Schema = SchemaVersion
		cur.Expires = now.Add(ttl)
		v, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		if err := leases.Put([]byte(name), v); err != nil {
			return err
		}
		out, ok = Lease{Name: name, Holder: holder, Token: cur.Token, Expires: cur.Expires}, true
		return nil
	})
	return out, ok, err
}

func (b *boltBackend) releaseLease(ctx context.Context, name, holder string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		leases, err := bucket(tx, bucketLeases)
		if err != nil {
			return err
		}
		var cur leaseRecord
		v := leases.Get([]byte(name))
		if v == nil || json.Unmarshal(v, &cur) != nil || cur.Holder != holder {
			return nil
		}
		return leases.Delete([]byte(name))
	})
}

func (b *boltBackend) checkLease(ctx context.Context, name string, token int64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ok := false
	err := b.db.View(func(tx *bolt.Tx) error {
		leases, err := bucket(tx, bucketLeases)
		if err != nil {
			return err
		}
		var cur leaseRecord
		v := leases.Get([]byte(name))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &cur); err != nil {
			return fmt.Errorf("store: lease %q: decode: %w", name, err)
		}
		ok = cur.Token == token && b.now().Before(cur.Expires)
		return nil
	})
	return ok, err
}

// checkFence refuses, inside the write's own transaction, a write whose
// context carries a fence that is no longer the lease's newest token.
func (b *boltBackend) checkFence(ctx context.Context, tx *bolt.Tx) error {
	f, ok := FenceOf(ctx)
	if !ok {
		return nil
	}
	tokens, err := bucket(tx, bucketLeaseTokens)
	if err != nil {
		return err
	}
	v := tokens.Get([]byte(f.Lease))
	if len(v) != 8 {
		return fmt.Errorf("lease %q token %d: the store has no token for it: %w", f.Lease, f.Token, ErrFenced)
	}
	if cur := int64(binary.BigEndian.Uint64(v)); cur != f.Token {
		return fmt.Errorf("lease %q token %d: token %d was issued since: %w", f.Lease, f.Token, cur, ErrFenced)
	}
	return nil
}
