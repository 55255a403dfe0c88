// Package store is redisbot's durable state: approvals, the audit trail,
// alerts and silences, notices of alerts from outside (Alertmanager),
// metric history, the last snapshot and learned facts of each instance,
// "execute once" markers and leases.
//
// One concrete type, Store, has two backends. The default is an embedded
// bbolt file: nothing to run, fine for a single bot. When Options.RedisURL
// is set the state lives in a Redis server the team runs for the bot, so
// several bot replicas share it: approvals clicked on one replica are seen
// by the others, Slack envelopes are deduplicated across replicas, and
// leases elect one replica for cron work. Both backends sit behind a small
// key-value interface so the encoding and the rules (revisions, ordering,
// retention, schema tolerance) are written once.
//
// Records are JSON and carry "schema". A reader accepts records without it
// (schema 0, written before versioning) and records of any newer schema,
// ignoring fields it does not know, so replicas of different versions can
// share one Redis during a rolling upgrade.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

var (
	// ErrNotFound means the record does not exist (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a record that must be new already exists: an approval
	// id reused, an audit record written twice.
	ErrExists = errors.New("store: already exists")
)

// SchemaVersion is written into every record. Bump it when the meaning of
// a field changes, not when a field is added: readers already ignore
// fields they do not know.
const SchemaVersion = 1

// Defaults for Options left zero; Options documents them.
const (
	defaultPath           = "redisbot.db"
	defaultKeyPrefix      = "redisbot:"
	defaultRetention      = 14 * 24 * time.Hour
	defaultAuditRetention = 90 * 24 * time.Hour
	defaultPersistEvery   = 15 * time.Minute
)

// Options says where the state lives and how long history is kept.
type Options struct {
	// Path is the bbolt file (config store.path), used when RedisURL is
	// empty. Default "redisbot.db".
	Path string
	// RedisURL is redis://[user:pass@]host:port/db or rediss://... When
	// set, the Redis backend is used and Path is ignored.
	RedisURL string
	// KeyPrefix starts every Redis key, so the bot can share a server (or
	// a database) with other tenants. Default "redisbot:".
	KeyPrefix string
	// Retention bounds metric history. Default 14 days.
	Retention time.Duration
	// AuditRetention bounds the audit trail. Default 90 days: long enough
	// to answer "who flushed cache-3 last month".
	AuditRetention time.Duration
	// PersistEvery is how often a sweep writes an instance's last snapshot
	// and the history samples since its last write, while its server runs
	// on (see latest.go). Default 15 minutes.
	PersistEvery time.Duration
	// ReadOnly opens an existing bbolt file for reading only, failing with
	// ErrInUse within a second when a running bot holds it; the CLI's
	// verbs read the store this way. The Redis backend ignores it.
	ReadOnly bool
	// Now is the clock; tests inject one. Default time.Now.
	Now func() time.Time
	// OnError, when set, hears every failed backend operation, named like
	// "update_approvals", for the store-errors metric.
	OnError func(op string)
	// OnFenced, when set, hears every write refused with ErrFenced (a
	// stale leader's), named like "put_alerts", and every failed
	// CheckFence ("check"), for the fenced-work metric.
	OnFenced func(op string)
}

// Store is redisbot's durable state. It is safe for concurrent use, and on
// the Redis backend several Store values (one per replica) may share one
// server.
type Store struct {
	b              backend
	raw            backend // b without its wrappers, for tests that look inside
	now            func() time.Time
	retention      time.Duration
	auditRetention time.Duration
	ids            idSource
	onFenced       func(op string)
	persistEvery   time.Duration
	latest         latestCache
}

// Open opens the bbolt file, or connects to Redis when o.RedisURL is set
// and checks the server answers. Errors never contain the Redis password.
func Open(ctx context.Context, o Options) (*Store, error) {
	o = o.withDefaults()
	var (
		b   backend
		err error
	)
	switch {
	case o.RedisURL != "":
		b, err = openRedis(ctx, o.RedisURL, o.KeyPrefix)
	case o.ReadOnly:
		b, err = openBoltReadOnly(ctx, o.Path, o.Now)
	default:
		b, err = openBolt(ctx, o.Path, o.Now, false)
	}
	if err != nil {
		return nil, err
	}
	return newStore(b, o), nil
}

func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = defaultPath
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = defaultKeyPrefix
	}
	if o.Retention <= 0 {
		o.Retention = defaultRetention
	}
	if o.AuditRetention <= 0 {
		o.AuditRetention = defaultAuditRetention
	}
	if o.PersistEvery <= 0 {
		o.PersistEvery = defaultPersistEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func newStore(b backend, o Options) *Store {
	o = o.withDefaults()
	raw := b
	if o.OnError != nil {
		b = observed{b, o.OnError}
	}
	// Outermost, so the observer above counts the backend's own errors.
	b = classified{backend: b, onFenced: o.OnFenced}
	return &Store{b: b, raw: raw, now: o.Now, retention: o.Retention, auditRetention: o.AuditRetention, onFenced: o.OnFenced,
		persistEvery: o.PersistEvery, latest: latestCache{m: map[string]*latest{}}}
}

// fenced reports a refused piece of stale work to OnFenced.
func (s *Store) fenced(op string) {
	if s.onFenced != nil {
		s.onFenced(op)
	}
}

// Close writes the snapshots and samples only kept in memory (see
// latest.go), then releases the file or the Redis connections.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	defer cancel()
	return errors.Join(s.flushLatest(ctx), s.b.close())
}

// closeFlushTimeout bounds Close's last write: a store that does not answer
// must not hold up the bot's exit.
const closeFlushTimeout = 5 * time.Second

// Backend names the backend in use, "bbolt" or "redis", for logs and
// diagnostics.
func (s *Store) Backend() string { return s.b.name() }

// Prune drops history older than Retention and audit records older than
// AuditRetention, on both backends and by the injected clock, so a
// shortened retention takes effect at once. On bbolt it also drops expired
// Once markers and expired leases; Redis expires those itself (TTLs).
func (s *Store) Prune(ctx context.Context) error {
	now := s.now()
	if err := s.pruneHistory(ctx, now.Add(-s.retention)); err != nil {
		return err
	}
	if err := s.pruneAudit(ctx, now.Add(-s.auditRetention)); err != nil {
		return err
	}
	if err := s.b.sweep(ctx); err != nil {
		return fmt.Errorf("store: prune: %w", err)
	}
	return nil
}

// deleteBatch is how many keys one prune transaction deletes: small enough
// that a bbolt transaction or a Redis command stays short.
const deleteBatch = 500

func (s *Store) deleteKeys(ctx context.Context, kind string, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), deleteBatch)
		if _, err := s.b.delete(ctx, kind, keys[:n]...); err != nil {
			return fmt.Errorf("store: prune %s: %w", kind, err)
		}
		keys = keys[n:]
	}
	return nil
}

// Kinds of record. Each is a bbolt bucket and a Redis key namespace.
const (
	kindApprovals = "approvals"
	kindAudit     = "audit"
	kindAlerts    = "alerts"
	kindSilences  = "silences"
	kindAcks      = "acks"
	kindHistory   = "history"
	kindSnapshots = "snapshots"
	kindFacts     = "facts"
	kindOnce      = "once"
	kindNotices   = "notices"
)

// kinds are every kind the typed methods use; backends create or index them.
var kinds = []string{kindApprovals, kindAudit, kindAlerts, kindSilences, kindAcks, kindHistory, kindSnapshots, kindFacts, kindOnce, kindNotices}

// backend is the storage a Store runs on. Keys are ordered bytewise within
// a kind. Values are opaque: encoding is the Store's business, so both
// backends store identical bytes.
type backend interface {
	name() string
	// get returns ErrNotFound for a missing or expired key.
	get(ctx context.Context, kind, key string) ([]byte, error)
	// put writes the value; ttl > 0 makes it expire.
	put(ctx context.Context, kind, key string, val []byte, ttl time.Duration) error
	// putIfAbsent writes the value only when the key is missing or
	// expired, and reports whether it did.
	putIfAbsent(ctx context.Context, kind, key string, val []byte, ttl time.Duration) (bool, error)
	// update is an atomic read-modify-write: fn gets the current value
	// (nil when missing) and returns the new one; an error from fn aborts
	// and is returned unchanged. fn may run more than once (Redis retries
	// on conflict), so it must not have side effects beyond its result.
	update(ctx context.Context, kind, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error
	// delete removes keys and reports how many existed.
	delete(ctx context.Context, kind string, keys ...string) (int, error)
	// list calls fn for the live keys in r, in key order (or reverse),
	// until fn returns false. fn must not call the backend.
	list(ctx context.Context, kind string, r span, fn func(key string, val []byte) bool) error
	// The lease operations are atomic on the backend (bbolt: one
	// transaction; Redis: Lua scripts) because their check-and-set spans
	// the lease and its token counter.
	acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error)
	releaseLease(ctx context.Context, name, holder string) error
	checkLease(ctx context.Context, name string, token int64) (bool, error)
	// sweep drops expired entries the backend does not expire itself.
	sweep(ctx context.Context) error
	close() error
}

// updateOp is one write of a batch: a put of val when fn is nil, else the
// read-modify-write backend.update runs.
type updateOp struct {
	kind, key string
	ttl       time.Duration
	val       []byte
	fn        func(old []byte) ([]byte, error)
}

// batchUpdater is a backend that writes many ops for less than one
// transaction (bbolt: an fsync) or several round trips (Redis) each.
type batchUpdater interface {
	// updateMany runs ops in order, each as put or update would, so an op
	// sees what earlier ops of the batch wrote to its key. An op that
	// fails (its fn's error, returned unchanged, or a stored value that
	// cannot be read) is skipped with its error in failed[i], and the
	// others are still written. err is a failure of the batch itself (I/O,
	// the context): then any op may or may not have been written, as when
	// a single update fails.
	updateMany(ctx context.Context, ops []updateOp) (failed []error, err error)
}

// runOp writes one op.
func runOp(ctx context.Context, b backend, op updateOp) error {
	if op.fn == nil {
		return b.put(ctx, op.kind, op.key, op.val, op.ttl)
	}
	return b.update(ctx, op.kind, op.key, op.ttl, op.fn)
}

// updateEach is updateMany one op at a time, for a backend that has no
// batch or a batch that must be redone. It cannot tell an op's failure
// from the backend's, so it reports every error as the op's and goes on,
// unless the context is done.
func updateEach(ctx context.Context, b backend, ops []updateOp) ([]error, error) {
	failed := make([]error, len(ops))
	for i, op := range ops {
		if err := ctx.Err(); err != nil {
			return failed, err
		}
		failed[i] = runOp(ctx, b, op)
	}
	return failed, nil
}

// updateMany runs ops on the backend's batch when it has one.
func (s *Store) updateMany(ctx context.Context, ops []updateOp) ([]error, error) {
	if bu, ok := s.b.(batchUpdater); ok {
		return bu.updateMany(ctx, ops)
	}
	return updateEach(ctx, s.b, ops)
}

// span is a key range [from, to) within a kind; "" leaves that end open.
type span struct {
	from, to string
	reverse  bool
	// keysOnly spares reading values when only keys are needed (pruning).
	keysOnly bool
}

// prefixSpan covers every key starting with p.
func prefixSpan(p string) span { return span{from: p, to: prefixEnd(p)} }

// prefixEnd is the smallest key greater than every key starting with p,
// or "" (open) when there is none.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// sep joins the parts of composite keys (instance and finding, instance
// and hour). NUL sorts before every other byte, so "cache-1"+sep+... never
// interleaves with "cache-10"+sep+..., and unlike ":" or "/" it cannot
// appear in an instance name taken from config.
const sep = "\x00"

// joinKey builds a composite key, refusing empty parts and parts that
// contain the separator (they would collide with other keys).
func joinKey(what string, parts ...string) (string, error) {
	for _, p := range parts {
		if p == "" {
			return "", fmt.Errorf("store: %s: empty key", what)
		}
		if strings.Contains(p, sep) {
			return "", fmt.Errorf("store: %s: key %q contains NUL", what, p)
		}
	}
	return strings.Join(parts, sep), nil
}

// decodeRecord unmarshals a stored record. Unknown fields are ignored, so a
// record of a newer schema reads fine.
func decodeRecord(kind, key string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("store: %s %q: decode: %w", kind, printable(key), err)
	}
	return nil
}

// printable shows composite keys with "/" for error messages.
func printable(key string) string { return strings.ReplaceAll(key, sep, "/") }

// keepUnknown carries fields of old that v's type does not know into the
// encoding of v. A read-modify-write by an older replica then does not
// strip what a newer replica added to the record.
func keepUnknown(old []byte, v any) ([]byte, error) {
	nv, err := json.Marshal(v)
	if err != nil || old == nil {
		return nv, err
	}
	var oldFields map[string]json.RawMessage
	if json.Unmarshal(old, &oldFields) != nil {
		return nv, nil
	}
	known := jsonFields(reflect.TypeOf(v))
	extra := map[string]json.RawMessage{}
	for k, raw := range oldFields {
		if !known[k] {
			extra[k] = raw
		}
	}
	if len(extra) == 0 {
		return nv, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(nv, &fields); err != nil {
		return nil, err
	}
	for k, raw := range extra {
		fields[k] = raw
	}
	return json.Marshal(fields)
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(t reflect.Type) map[string]bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
		case "":
			names[f.Name] = true
		default:
			names[name] = true
		}
	}
	return names
}
