package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers/resplimit"
)

// redisBackend keeps a record under <prefix><kind>:<key> and, for kinds
// that are listed, the key in a sorted set <prefix>index:<kind> with score
// 0, so ZRANGEBYLEX lists a kind by key range without SCAN. Writes change
// the key and the index in one MULTI, so the index never misses a live
// key; an index entry whose key expired (TTL) is dropped when a listing
// meets it. Expiry uses the server's clock, which all replicas share.
type redisBackend struct {
	c      *redis.Client
	prefix string
}

// Timeouts for the store's server: a slow store must not stall a Slack ack
// for long, and the team runs this server close to the bot.
const (
	redisDialTimeout = 5 * time.Second
	redisIOTimeout   = 3 * time.Second
	// updateAttempts bounds WATCH retries: each conflict means another
	// writer succeeded, so 50 racing replicas need at most 50 rounds.
	updateAttempts = 100
	// listPage is how many index entries one round trip reads.
	listPage = 512
)

// storeLimits bound the replies of the store's server, well above the
// largest the store reads:
//   - a bulk string: one record. The largest is an instance's last
//     snapshot, JSON of about 1.1 times the INFO text the probe read
//     (10 KB for a real INFO, 100 KB for a busy server's INFO everything),
//     which the probe's own limits cap at 1 MiB: 64 MiB leaves room;
//   - an aggregate: an MGET or ZRANGEBYLEX page of listPage (512) keys, or
//     an EXEC of a batchGroup (256 SETs and a ZADD per kind);
//   - nesting: two levels at most (EXEC of replies, a script's array);
//   - a reply and its allocation: one snapshot, or a page of 512 records
//     of a few KB (approvals, audit records, history blocks of an hour);
//     the batch: a WATCH, MGET, MULTI/EXEC round.
var storeLimits = resplimit.Limits{
	Bulk:      64 << 20,
	Aggregate: 64 << 10,
	Depth:     8,
	Reply:     128 << 20,
	Alloc:     128 << 20,
	Batch:     256 << 20,
}

func openRedis(ctx context.Context, rawURL, prefix string) (*redisBackend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse errors quote the whole URL, password included.
		return nil, errors.New("store: invalid redis URL (not shown: it may hold the password)")
	}
	shown := u.Redacted()
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		// Past url.Parse, ParseURL's errors quote only the scheme, path
		// and query options.
		return nil, fmt.Errorf("store: invalid redis URL %s: %w", shown, err)
	}
	opts.Protocol = 2 // like the prober: RESP2 works on every server and proxy.
	opts.DialTimeout = redisDialTimeout
	opts.ReadTimeout = redisIOTimeout
	opts.WriteTimeout = redisIOTimeout
	opts.PoolTimeout = redisIOTimeout
	opts.ContextTimeoutEnabled = true
	// No blind retries: a retried SET NX that had succeeded would report
	// ErrExists for our own approval. Callers see the error and retry at
	// their level.
	opts.MaxRetries = -1
	// CLIENT SETINFO costs a round trip per connection and is unknown to
	// servers before 7.2.
	opts.DisableIdentity = true
	// Every reply is checked against storeLimits before go-redis reads
	// it, as the prober's are: a mistyped URL (another team's server, or
	// not Redis at all) must not crash the bot with one declared length.
	opts.Dialer = resplimit.Dialer(redisDialTimeout, opts.TLSConfig, storeLimits)
	c := redis.NewClient(opts)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("store: redis %s: %w", shown, err)
	}
	return &redisBackend{c: c, prefix: prefix}, nil
}

func (r *redisBackend) name() string { return "redis" }

func (r *redisBackend) close() error { return r.c.Close() }

func (r *redisBackend) key(kind, key string) string { return r.prefix + kind + ":" + key }

func (r *redisBackend) index(kind string) string { return r.prefix + "index:" + kind }

// indexed says whether a kind is ever listed; Once markers never are, and
// an index entry per Slack envelope would only be garbage.
func indexed(kind string) bool { return kind != kindOnce }

func (r *redisBackend) get(ctx context.Context, kind, key string) ([]byte, error) {
	b, err := r.c.Get(ctx, r.key(kind, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: redis GET %s: %w", kind, err)
	}
	return b, nil
}

func (r *redisBackend) put(ctx context.Context, kind, key string, val []byte, ttl time.Duration) error {
	err := r.txPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.key(kind, key), val, max(ttl, 0))
		if indexed(kind) {
			p.ZAdd(ctx, r.index(kind), redis.Z{Member: key})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: redis SET %s: %w", kind, err)
	}
	return nil
}

func (r *redisBackend) putIfAbsent(ctx context.Context, kind, key string, val []byte, ttl time.Duration) (bool, error) {
	var set *redis.BoolCmd
	err := r.txPipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetNX(ctx, r.key(kind, key), val, max(ttl, 0))
		if indexed(kind) {
			// Harmless when the key existed: its entry is already there.
			p.ZAdd(ctx, r.index(kind), redis.Z{Member: key})
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: redis SET NX %s: %w", kind, err)
	}
	return set.Val(), nil
}

func (r *redisBackend) update(ctx context.Context, kind, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	k := r.key(kind, key)
	for attempt := 1; ; attempt++ {
		var fnErr error
		err := r.c.Watch(ctx, func(tx *redis.Tx) error {
			if err := r.checkFence(ctx, tx); err != nil {
				return err
			}
			old, err := tx.Get(ctx, k).Bytes()
			if errors.Is(err, redis.Nil) {
				old, err = nil, nil
			}
			if err != nil {
				return err
			}
			val, err := fn(old)
			if err != nil {
				fnErr = err
				return err
			}
			// EXEC fails with TxFailedErr if anyone wrote k since WATCH.
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, k, val, max(ttl, 0))
				if indexed(kind) {
					p.ZAdd(ctx, r.index(kind), redis.Z{Member: key})
				}
				return nil
			})
			return err
		}, r.fenceWatch(ctx, k)...)
		switch {
		case fnErr != nil:
			return fnErr
		case err == nil:
			return nil
		case !errors.Is(err, redis.TxFailedErr):
			return fmt.Errorf("store: redis update %s: %w", kind, err)
		case attempt == updateAttempts:
			return fmt.Errorf("store: redis update %s %q: still conflicting after %d attempts", kind, printable(key), attempt)
		}
		// Jitter spreads the losers of a race so the next round has fewer
		// contenders.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 10))))):
		}
	}
}

// batchGroup is how many ops of a batch share one WATCH, MGET and
// MULTI/EXEC: enough to amortise the round trips, few enough that a MULTI
// of snapshots stays around a megabyte and a conflict redoes little.
const batchGroup = 256

// updateMany writes ops a group at a time, with update's optimistic
// concurrency over the whole group: WATCH every key the group reads, MGET
// them, run the fns, then SET the results and their index entries in one
// MULTI/EXEC, which fails if anyone wrote a watched key meanwhile. A
// group that lost such a race is redone one op at a time through update,
// which retries each key on its own: under contention a large group
// would keep losing.
func (r *redisBackend) updateMany(ctx context.Context, ops []updateOp) ([]error, error) {
	failed := make([]error, len(ops))
	for start := 0; start < len(ops); start += batchGroup {
		group := ops[start:min(start+batchGroup, len(ops))]
		groupFailed := failed[start : start+len(group)]
		err := r.updateGroup(ctx, group, groupFailed)
		if errors.Is(err, redis.TxFailedErr) {
			var again []error
			again, err = updateEach(ctx, r, group)
			clear(groupFailed)
			copy(groupFailed, again)
		}
		if err != nil {
			return failed, fmt.Errorf("store: redis batch: %w", err)
		}
	}
	return failed, nil
}

// batchKey is one key of a group: its value as the group's ops leave it.
type batchKey struct {
	kind, key string
	val       []byte
	ttl       time.Duration
	// written is set once an op succeeded: only then is val SET.
	written bool
}

// updateGroup writes one group and records its ops' failures. It returns
// redis.TxFailedErr, having written nothing, when a watched key changed.
func (r *redisBackend) updateGroup(ctx context.Context, ops []updateOp, failed []error) error {
	keys := make(map[string]*batchKey, len(ops))
	var (
		order []*batchKey
		watch []string
	)
	for _, op := range ops {
		k := r.key(op.kind, op.key)
		if keys[k] != nil {
			continue
		}
		keys[k] = &batchKey{kind: op.kind, key: op.key}
		order = append(order, keys[k])
		// A key whose first op is a put needs no reading: later ops of
		// the group see the put, whatever the server holds.
		if op.fn != nil {
			watch = append(watch, k)
		}
	}
	// apply runs the ops over the values read; a key's ops follow one
	// another as separate updates would.
	apply := func(read map[string][]byte) {
		for _, bk := range order {
			bk.val = read[r.key(bk.kind, bk.key)]
		}
		for i, op := range ops {
			bk := keys[r.key(op.kind, op.key)]
			val := op.val
			if op.fn != nil {
				var err error
				if val, err = op.fn(bk.val); err != nil {
					failed[i] = err
					continue
				}
			}
			bk.val, bk.ttl, bk.written = val, op.ttl, true
		}
	}
	// writeAll SETs what the ops left and adds the keys to their indexes,
	// one ZADD per kind.
	writeAll := func(p redis.Pipeliner) error {
		index := map[string][]redis.Z{}
		var indexKinds []string
		for _, bk := range order {
			if !bk.written {
				continue
			}
			p.Set(ctx, r.key(bk.kind, bk.key), bk.val, max(bk.ttl, 0))
			if indexed(bk.kind) {
				if index[bk.kind] == nil {
					indexKinds = append(indexKinds, bk.kind)
				}
				index[bk.kind] = append(index[bk.kind], redis.Z{Member: bk.key})
			}
		}
		for _, kind := range indexKinds {
			p.ZAdd(ctx, r.index(kind), index[kind]...)
		}
		return nil
	}
	nothing := func() bool { return !slices.ContainsFunc(order, func(bk *batchKey) bool { return bk.written }) }
	if len(watch) == 0 {
		apply(nil)
		if nothing() {
			return nil
		}
		return r.txPipelined(ctx, writeAll)
	}
	return r.c.Watch(ctx, func(tx *redis.Tx) error {
		if err := r.checkFence(ctx, tx); err != nil {
			return err
		}
		vals, err := tx.MGet(ctx, watch...).Result()
		if err != nil {
			return err
		}
		read := make(map[string][]byte, len(watch))
		for i, v := range vals {
			if s, ok := v.(string); ok {
				read[watch[i]] = []byte(s)
			}
		}
		apply(read)
		if nothing() {
			return nil
		}
		// EXEC fails with TxFailedErr if anyone wrote a watched key.
		_, err = tx.TxPipelined(ctx, writeAll)
		return err
	}, r.fenceWatch(ctx, watch...)...)
}

func (r *redisBackend) delete(ctx context.Context, kind string, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	full := make([]string, len(keys))
	members := make([]any, len(keys))
	for i, k := range keys {
		full[i] = r.key(kind, k)
		members[i] = k
	}
	var del *redis.IntCmd
	err := r.txPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, full...)
		if indexed(kind) {
			p.ZRem(ctx, r.index(kind), members...)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: redis DEL %s: %w", kind, err)
	}
	return int(del.Val()), nil
}

// dropStale removes index entries whose keys have expired. It checks
// EXISTS on the server, atomically, because between our MGET and the
// ZREM another replica may have written the key again.
var dropStale = redis.NewScript(`
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return n
`)

func (r *redisBackend) list(ctx context.Context, kind string, sp span, fn func(key string, val []byte) bool) error {
	lo, hi := "-", "+"
	if sp.from != "" {
		lo = "[" + sp.from
	}
	if sp.to != "" {
		hi = "(" + sp.to
	}
	idx := r.index(kind)
	for {
		// Paging by the last member seen, not by offset, so deletions
		// between pages do not skip entries.
		var page []string
		var err error
		if sp.reverse {
			page, err = r.c.ZRevRangeByLex(ctx, idx, &redis.ZRangeBy{Min: lo, Max: hi, Count: listPage}).Result()
		} else {
			page, err = r.c.ZRangeByLex(ctx, idx, &redis.ZRangeBy{Min: lo, Max: hi, Count: listPage}).Result()
		}
		if err != nil {
			return fmt.Errorf("store: redis list %s: %w", kind, err)
		}
		if len(page) == 0 {
			return nil
		}
		more, err := r.visit(ctx, kind, page, sp.keysOnly, fn)
		if err != nil || !more || len(page) < listPage {
			return err
		}
		if last := page[len(page)-1]; sp.reverse {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
	}
}

// visit reads the values of one page of keys and hands them to fn.
func (r *redisBackend) visit(ctx context.Context, kind string, page []string, keysOnly bool, fn func(string, []byte) bool) (bool, error) {
	if keysOnly {
		for _, k := range page {
			if !fn(k, nil) {
				return false, nil
			}
		}
		return true, nil
	}
	full := make([]string, len(page))
	for i, k := range page {
		full[i] = r.key(kind, k)
	}
	vals, err := r.c.MGet(ctx, full...).Result()
	if err != nil {
		return false, fmt.Errorf("store: redis MGET %s: %w", kind, err)
	}
	staleKeys := []string{r.index(kind)}
	var staleMembers []any
	more := true
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			staleKeys = append(staleKeys, full[i])
			staleMembers = append(staleMembers, page[i])
			continue
		}
		if more && !fn(page[i], []byte(s)) {
			more = false
		}
	}
	if len(staleMembers) > 0 {
		if err := dropStale.Run(ctx, r.c, staleKeys, staleMembers...).Err(); err != nil {
			return false, fmt.Errorf("store: redis drop stale %s index entries: %w", kind, err)
		}
	}
	return more, nil
}

// sweep has nothing to do: Once markers, leases, history blocks and audit
// records carry TTLs, and listings drop index entries of expired keys.
func (r *redisBackend) sweep(context.Context) error { return nil }

// Leases are a hash {holder, token} with a TTL, beside a counter that has
// none, so tokens keep growing across holders and expiries. The scripts
// read the server's clock: replicas with skewed clocks still agree on who
// holds a lease.
//
// A counter that does not exist starts at the server's clock in
// microseconds: a store that restarted empty (no persistence) would
// otherwise hand out token 1 again, which a stale leader may hold. Tokens
// of the lost incarnation were counted up from its own start, one per new
// holder, so they stay below the new start unless the store changed hands
// more than once a microsecond or its clock went back by more than that
// incarnation's lifetime.
var acquireScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local cur = redis.call('HMGET', KEYS[1], 'holder', 'token')
if cur[1] and cur[1] ~= ARGV[1] then
  return {0, cur[1], cur[2], now + redis.call('PTTL', KEYS[1])}
end
local token = cur[2]
if not cur[1] then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
  end
  -- %d: tostring would write a 16-digit count as 1.79e+15.
  token = string.format('%d', redis.call('INCR', KEYS[2]))
end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, ARGV[1], token, now + ttl}
`)

var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

func (r *redisBackend) leaseKeys(name string) []string {
	return []string{r.key("leases", name), r.key("lease_tokens", name)}
}

func (r *redisBackend) acquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	ms := max(ttl.Milliseconds(), 1)
	res, err := acquireScript.Run(ctx, r.c, r.leaseKeys(name), holder, ms).Slice()
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: redis acquire lease %q: %w", name, err)
	}
	if len(res) != 4 {
		return Lease{}, false, fmt.Errorf("store: redis acquire lease %q: unexpected reply %v", name, res)
	}
	ok, _ := res[0].(int64)
	h, _ := res[1].(string)
	tokenText, _ := res[2].(string)
	token, err := strconv.ParseInt(tokenText, 10, 64)
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: redis lease %q: token %q: %w", name, tokenText, err)
	}
	expires, _ := res[3].(int64)
	return Lease{Name: name, Holder: h, Token: token, Expires: time.UnixMilli(expires)}, ok == 1, nil
}

func (r *redisBackend) releaseLease(ctx context.Context, name, holder string) error {
	if err := releaseScript.Run(ctx, r.c, r.leaseKeys(name)[:1], holder).Err(); err != nil {
		return fmt.Errorf("store: redis release lease %q: %w", name, err)
	}
	return nil
}

// checkLease needs no script: one HGET is atomic, and an expired key reads
// as missing.
func (r *redisBackend) checkLease(ctx context.Context, name string, token int64) (bool, error) {
	v, err := r.c.HGet(ctx, r.leaseKeys(name)[0], "token").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: redis check lease %q: %w", name, err)
	}
	return v == strconv.FormatInt(token, 10), nil
}
