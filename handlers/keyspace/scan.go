// Package keyspace scans the key space of Redis servers for /redis keys: it
// walks every key with SCAN and measures each one (TYPE, MEMORY USAGE, PTTL
// and the length of its value), paced by a command budget and by the
// server's own latency, so that a scan of millions of keys on a busy
// primary does not show in its clients' latency. It is the I/O side of
// handlers.KeyScanner; handlers.KeyStats sums what it measures.
package keyspace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redact"
)

// Defaults of the scanner's pacing. See docs/benchmarks.md ("Key scan") for
// the measurements they come from.
const (
	// DefaultBudget is the throttle's commands per second on each server.
	// A key costs three commands (TYPE, MEMORY USAGE, PTTL), a
	// collection a fourth (its length), and a SCAN as many as its COUNT
	// (see scanCost), so this is about 4,000 to 5,000 keys a second: a
	// million keys in about 4 minutes, with about 2% of the server's time.
	DefaultBudget = 20_000
	// DefaultCount is SCAN's COUNT when throttled: a batch is then about
	// 300 small commands, which Redis answers in a fraction of a
	// millisecond, so another client waits at most that long behind one.
	DefaultCount = 100
	// FastCount is SCAN's COUNT with --fast: fewer, bigger round trips.
	FastCount = 1000
)

// Commands are what a scan sends to each server once connected (besides
// probe.ConnectCommands): INFO keyspace and CONFIG GET of one setting
// (settings), SCAN, then TYPE, MEMORY USAGE and PTTL of each key (first)
// and the length command of each collection's type (length); a string
// needs none, MEMORY USAGE is its size.
// check-config tests them for the diagnosis user, which /redis keys scans
// as.
var Commands = []handlers.RedisCommand{
	{ACL: "info", Args: 1},
	{ACL: "config|get", Args: 1},
	{ACL: "scan", Args: 1},
	{ACL: "type", Args: 1},
	{ACL: "memory|usage", Args: 1},
	{ACL: "pttl", Args: 1},
	{ACL: "llen", Args: 1},
	{ACL: "hlen", Args: 1},
	{ACL: "scard", Args: 1},
	{ACL: "zcard", Args: 1},
	{ACL: "xlen", Args: 1},
}

// Scanner implements handlers.KeyScanner against real servers.
type Scanner struct {
	// Budget is the throttle of a scan that does not set its own
	// (KeyScanOptions.Budget): commands per second on each server.
	Budget int
	// MaxDuration, when positive, ends a scan that runs longer with what it
	// saw so far (Stopped "deadline"), whichever transport asked for it
	// (keys.max_duration).
	MaxDuration time.Duration
	timeout     time.Duration
	now         func() time.Time
	// between, when set (tests), is called between a node's round trips:
	// with "scanned" and a SCAN page before its keys are measured, with
	// "measured" and the keys found before their lengths are asked for.
	between func(step string, keys []string)
}

var _ handlers.KeyScanner = (*Scanner)(nil)

// New returns a Scanner. timeout bounds each round trip: the connection,
// each SCAN and each pipeline of per-key commands.
func New(timeout time.Duration) *Scanner {
	return &Scanner{timeout: timeout, now: time.Now, Budget: DefaultBudget}
}

// Scan walks the key space of nodes (one standalone instance, or every
// primary of a cluster, scanned concurrently) and returns what it measured.
// Cancelling ctx, or MaxDuration passing, ends the scan with the partial
// result and a nil error; so does a server whose SCAN makes no progress
// (see stuck), with the reason in Stopped. A node that fails is listed in
// NodeErrors and the others' results stand; when every node fails, Scan
// returns a *handlers.ProbeError.
func (s *Scanner) Scan(ctx context.Context, nodes []handlers.Instance, opts handlers.KeyScanOptions) (*handlers.KeyScan, error) {
	if len(nodes) == 0 {
		return nil, errors.New("key scan: no server to scan")
	}
	if s.MaxDuration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.MaxDuration)
		defer cancel()
	}
	opts = withDefaults(opts, s.Budget)
	r := &run{opts: opts, seed: maphash.MakeSeed(), many: len(nodes) > 1, now: s.now, start: s.now()}
	scans := make([]*nodeScan, len(nodes))
	var wg sync.WaitGroup
	for i, inst := range nodes {
		scans[i] = &nodeScan{inst: inst, run: r, timeout: s.timeout, between: s.between,
			throttle: newThrottle(opts, s.now)}
		wg.Go(func() {
			// A panic (a client library choking on a hostile reply) fails
			// this node's scan, not the process.
			err := handlers.Safely(func() error { scans[i].scan(ctx); return nil })
			if pe, ok := handlers.AsPanic(err); ok {
				scans[i].fail(handlers.ClassInternal, scanPanic(pe))
			}
		})
	}
	wg.Wait()
	scan, err := assemble(ctx, r, scans, s.now().Sub(r.start))
	scanned := r.claimed.Load()
	if scan != nil {
		scanned = scan.Scanned // without the keys of nodes that failed
	}
	r.progress(scanned, true)
	return scan, err
}

func withDefaults(opts handlers.KeyScanOptions, budget int) handlers.KeyScanOptions {
	if opts.Limit <= 0 {
		opts.Limit = handlers.DefaultKeyLimit
	}
	if opts.Budget <= 0 {
		opts.Budget = cmp.Or(budget, DefaultBudget)
	}
	if opts.Count <= 0 {
		opts.Count = DefaultCount
		if opts.Fast {
			opts.Count = FastCount
		}
	}
	return opts
}

// assemble merges the nodes' results into one KeyScan.
func assemble(ctx context.Context, r *run, scans []*nodeScan, took time.Duration) (*handlers.KeyScan, error) {
	out := &handlers.KeyScan{Match: r.opts.Match, Start: r.start, Duration: took, Complete: true,
		Throttle: handlers.Throttle{Fast: r.opts.Fast}}
	if !r.opts.Fast {
		out.Throttle.Budget = r.opts.Budget
	}
	var (
		total   *handlers.KeyStats
		failed  []*nodeScan
		limit   bool
		stalled []string
	)
	for _, n := range scans {
		out.Nodes = append(out.Nodes, n.inst.Name)
		mergeThrottle(&out.Throttle, n.throttle.report)
		if n.err != nil {
			failed = append(failed, n)
			out.NodeErrors = append(out.NodeErrors, handlers.NodeError{Node: n.inst.Name, Class: n.class,
				Error: redact.Secrets(n.err.Error(), n.inst.Password)})
			out.Complete = false
			continue
		}
		out.Complete = out.Complete && n.complete
		limit = limit || n.limited
		if n.stalled != "" {
			if len(scans) > 1 {
				stalled = append(stalled, n.inst.Name+": "+n.stalled)
			} else {
				stalled = append(stalled, n.stalled)
			}
		}
		out.Estimate += n.estimate
		out.Scanned += n.scanned
		out.Vanished += n.vanished
		if n.stats == nil {
			continue // cancelled before it could read its settings
		}
		if total == nil {
			total = n.stats
		} else {
			total.Merge(n.stats)
		}
	}
	if len(failed) == len(scans) && ended(ctx) == nil {
		// Nothing was scanned: the caller reports the first node as it
		// reports an unreachable instance.
		n := failed[0]
		return nil, &handlers.ProbeError{Instance: n.inst.Name, Class: n.class,
			Err: redacted{msg: redact.Secrets(n.err.Error(), n.inst.Password), err: n.err}}
	}
	switch err := ended(ctx); {
	case len(stalled) > 0:
		// Said first: a server that cannot be scanned matters more than
		// the deadline or cancel that may have come after it.
		out.Complete, out.Stopped = false, strings.Join(stalled, "; ")
	case errors.Is(err, context.DeadlineExceeded):
		out.Complete, out.Stopped = false, "deadline"
	case err != nil:
		out.Complete, out.Stopped = false, "cancelled"
	case limit:
		out.Complete, out.Stopped = false, "limit"
	}
	if total == nil {
		total = handlers.NewKeyStats(r.opts.Thresholds, handlers.DefaultDefragMaxScanFields)
	}
	total.Fill(out)
	return out, nil
}

// mergeThrottle adds one node's pacing to the scan's. Nodes are scanned at
// the same time, so the time paused is the longest of theirs, not the sum.
func mergeThrottle(dst *handlers.Throttle, n handlers.Throttle) {
	dst.Commands += n.Commands
	dst.Backoffs += n.Backoffs
	dst.Paused = max(dst.Paused, n.Paused)
	if n.BaselineRTT > 0 && (dst.BaselineRTT == 0 || n.BaselineRTT < dst.BaselineRTT) {
		dst.BaselineRTT = n.BaselineRTT
	}
	dst.MaxRTT = max(dst.MaxRTT, n.MaxRTT)
}

// redacted is an error whose text had a password removed; errors.Is and
// errors.As still see the original.
type redacted struct {
	msg string
	err error
}

func (e redacted) Error() string { return e.msg }
func (e redacted) Unwrap() error { return e.err }

// run is the state the nodes of one scan share: the limit, the progress.
type run struct {
	opts  handlers.KeyScanOptions
	seed  maphash.Seed
	many  bool // several nodes: keys carry their node's name
	now   func() time.Time
	start time.Time

	claimed  atomic.Int64 // distinct keys over every node
	walked   atomic.Int64 // keys SCAN went past over every node (nodeScan.walk)
	estimate atomic.Int64 // INFO keyspace's keys=, summed as nodes report

	mu   sync.Mutex
	last time.Time // of the last progress report
}

// claim reserves up to n keys under the limit and returns how many it got.
// Nodes claim before measuring, so a cluster stops at exactly Limit keys.
func (r *run) claim(n int64) int64 {
	for {
		cur := r.claimed.Load()
		got := min(n, r.opts.Limit-cur)
		if got <= 0 {
			return 0
		}
		if r.claimed.CompareAndSwap(cur, cur+got) {
			return got
		}
	}
}

// report calls opts.Progress, at most about once a second.
func (r *run) report() { r.progress(r.claimed.Load(), false) }

func (r *run) progress(scanned int64, done bool) {
	if r.opts.Progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !done && now.Sub(r.last) < time.Second {
		return
	}
	r.last = now
	p := handlers.KeyScanProgress{Scanned: scanned, Walked: r.walked.Load(), Estimate: r.estimate.Load(),
		Match: r.opts.Match != "", Elapsed: now.Sub(r.start), Done: done}
	if !p.Match {
		// Without a pattern every key walked is measured, up to Limit.
		p.Estimate, p.Walked = min(p.Estimate, r.opts.Limit), scanned
	}
	if share, ok := p.Share(); ok && share > 0 && share < 1 && !done {
		p.ETA = time.Duration(float64(p.Elapsed) * (1 - share) / share)
	}
	r.opts.Progress(p)
}

// nodeScan is the scan of one server.
type nodeScan struct {
	inst     handlers.Instance
	run      *run
	timeout  time.Duration
	between  func(step string, keys []string)
	throttle *throttle
	client   *redis.Client

	// mu guards what a --fast scan's workers update: stats, scanned,
	// vanished.
	mu    sync.Mutex
	stats *handlers.KeyStats
	// seen holds a 64-bit hash of every key SCAN returned, not the key:
	// SCAN may return a key twice while the server rehashes, and a
	// million keys cost 16 MiB this way instead of their names.
	seen     *keySet
	scanned  int64
	vanished int64
	estimate int64
	complete bool // the cursor came back to 0
	limited  bool // stopped at the limit

	// What stuck reads to tell a SCAN that makes no progress: pages and
	// keys returned (duplicates included), non-empty pages in a row with
	// no new key, the cursors, and the key count the server reports.
	pages  int64
	walked int64
	stale  int
	// walkedShown is what this node has added to run.walked.
	walkedShown int64
	cycle       cursorCycle
	reported    int64
	// stalled is why SCAN was given up on, for the report; "" otherwise.
	stalled string

	err   error
	class handlers.ErrorClass
}

func (n *nodeScan) fail(class handlers.ErrorClass, err error) {
	n.err, n.class = err, class
	switch _, panicked := handlers.AsPanic(err); {
	case panicked:
		n.class = handlers.ClassInternal
	case class == "":
		n.class = probe.Classify(err)
	}
}

func (n *nodeScan) scan(ctx context.Context) {
	// go-redis dials localhost:6379 for an empty address: a cluster or
	// Sentinel entry that could not be expanded must not scan whatever
	// listens there.
	if n.inst.Addr == "" {
		n.fail(handlers.ClassRefused, errors.New("no address (a cluster or Sentinel entry that could not be expanded)"))
		return
	}
	pool := 1
	if n.run.opts.Fast {
		pool = 1 + fastWorkers
	}
	c, err := dial(n.inst, n.timeout, pool)
	if err != nil {
		n.fail(handlers.ClassTLS, err)
		return
	}
	defer c.Close()
	n.client = c
	if err := n.settings(ctx); err != nil {
		n.stop(ctx, err)
		return
	}
	if err := n.loop(ctx); err != nil {
		n.stop(ctx, err)
	}
}

// stop records why the node's scan ended early: a failure of the node, or
// the caller's cancellation, which is not the node's fault.
func (n *nodeScan) stop(ctx context.Context, err error) {
	if ended(ctx) != nil {
		return
	}
	n.fail("", err)
}

// ended is ctx.Err, or DeadlineExceeded once ctx's deadline has passed.
// go-redis sets a connection's read deadline to the context's, so a round
// trip cut by the deadline can fail with an i/o timeout a moment before
// the context's own timer marks it done; that timeout is the deadline,
// not a failure of the node. Deadlines are wall-clock times, hence
// time.Now rather than the scanner's clock.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// settings reads the node's key count for the estimate and the setting the
// defrag findings compare collection lengths with.
func (n *nodeScan) settings(ctx context.Context) error {
	text, err := n.client.Info(ctx, "keyspace").Result()
	if err != nil {
		return fmt.Errorf("INFO keyspace: %w", err)
	}
	n.estimate = n.keyCount(text)
	n.reported = n.estimate
	n.run.estimate.Add(n.estimate)

	// Denied, renamed or unknown (a managed service, a proxy), the
	// setting is most likely Redis' default.
	fields := int64(handlers.DefaultDefragMaxScanFields)
	m, err := n.client.ConfigGet(ctx, "active-defrag-max-scan-fields").Result()
	if err != nil && !isServerError(err) {
		return fmt.Errorf("CONFIG GET: %w", err)
	}
	if v, perr := strconv.ParseInt(m["active-defrag-max-scan-fields"], 10, 64); err == nil && perr == nil && v > 0 {
		fields = v
	}
	n.stats = handlers.NewKeyStats(n.run.opts.Thresholds, fields)
	// Sized for the key count up front, the set does not rehash its way
	// up while the scan runs. With MATCH the count says little.
	size := int64(0)
	if n.run.opts.Match == "" {
		size = min(n.estimate, n.run.opts.Limit)
	}
	n.seen = newKeySet(size)
	return nil
}

// fastWorkers is how many pages a --fast scan measures at once, each on a
// connection of its own. One connection leaves the server idle while the
// client reads a batch's answers and writes the next; with two the server
// always has a pipeline to work on.
const fastWorkers = 2

// loop scans until SCAN is back at cursor 0 (or the limit is reached) and
// every key it returned is measured.
func (n *nodeScan) loop(ctx context.Context) error {
	if n.run.opts.Fast {
		return n.fastLoop(ctx)
	}
	// Throttled, one round trip at a time: the SCAN alone, whose round
	// trip is the latency signal the adaptive pause reads, then the
	// measurements of its page, each followed by the pause the budget
	// asks for.
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := n.run.now()
		page, next, err := n.scanPage(ctx, cursor)
		if err != nil {
			return err
		}
		n.throttle.observe(n.run.now().Sub(start))
		n.throttle.wait(ctx, start, 1, n.scanCost())
		keys, more := n.take(page, next)
		cursor = next
		more = more && !n.stuck(ctx, next)
		if len(keys) > 0 {
			if err := n.measure(ctx, keys); err != nil {
				return err
			}
		}
		n.run.report()
		if !more {
			return nil
		}
	}
}

// fastLoop runs SCAN on one connection and measures its pages on
// fastWorkers others, without pauses.
func (n *nodeScan) fastLoop(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once     sync.Once
		firstErr error
		fail     = func(err error) { once.Do(func() { firstErr = err; cancel() }) }
		pages    = make(chan []string, fastWorkers)
		wg       sync.WaitGroup
	)
	for range fastWorkers {
		wg.Go(func() {
			err := handlers.Safely(func() error {
				for keys := range pages {
					if ctx.Err() != nil {
						continue // drain: the scan is over
					}
					if err := n.measure(ctx, keys); err != nil {
						fail(err)
					}
					n.run.report()
				}
				return nil
			})
			if pe, ok := handlers.AsPanic(err); ok {
				fail(scanPanic(pe))
			}
		})
	}
	// Deferred, so that a panic below still ends the workers before it
	// reaches Scan's recover.
	defer func() {
		close(pages)
		wg.Wait()
		if err == nil {
			err = firstErr
		}
	}()
	var cursor uint64
	for more := true; more; {
		if err := ctx.Err(); err != nil {
			fail(err)
			return nil
		}
		start := n.run.now()
		page, next, err := n.scanPage(ctx, cursor)
		if err != nil {
			fail(err)
			return nil
		}
		n.throttle.observe(n.run.now().Sub(start))
		n.throttle.wait(ctx, start, 1, n.scanCost())
		var keys []string
		keys, more = n.take(page, next)
		cursor = next
		more = more && !n.stuck(ctx, next)
		if len(keys) > 0 {
			select {
			case pages <- keys:
			case <-ctx.Done():
			}
		}
	}
	return nil
}

// scanCost is what one SCAN takes from the budget. SCAN visits about COUNT
// buckets of the key space and matches each key against MATCH: measured
// on Redis 7.0, a SCAN COUNT 100 costs the server 90 to 120 µs, as much as
// 90 to 120 pipelined per-key commands (docs/benchmarks.md). Counted as one
// command, a --match that finds few keys would walk the key space as fast
// as the round trips allow.
func (n *nodeScan) scanCost() int64 { return int64(n.run.opts.Count) }

// scanPage is one SCAN round trip.
func (n *nodeScan) scanPage(ctx context.Context, cursor uint64) ([]string, uint64, error) {
	page, next, err := n.client.Scan(ctx, cursor, n.run.opts.Match, int64(n.run.opts.Count)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("SCAN: %w", err)
	}
	return page, next, nil
}

// walk adds to the run's count of keys walked what SCAN has gone past on
// this node since the last page: without a pattern the keys it returned,
// with one the node's key count times the share of its hash table the
// cursor has covered (scanShare), all of it once the cursor is back at 0.
func (n *nodeScan) walk(cursor uint64) {
	w := n.walked
	if n.run.opts.Match != "" {
		w = int64(scanShare(cursor) * float64(n.reported))
		if cursor == 0 {
			w = n.reported
		}
	}
	if w > n.walkedShown {
		n.run.walked.Add(w - n.walkedShown)
		n.walkedShown = w
	}
}

// scanShare is the share of the hash table a SCAN cursor has covered.
// Redis walks the buckets in reverse binary order (dictScan): the cursor's
// bits reversed are a counter of buckets visited, in the high bits of a
// 64-bit word whatever the table's size, so reversed and read as a
// fraction of 2^64 they are the share covered. Rehashing and cluster
// cursors (a slot in the low bits, Redis 8) make it approximate, which is
// all a progress bar needs.
func scanShare(cursor uint64) float64 {
	return float64(bits.Reverse64(cursor)) / (1 << 64)
}

// take returns the keys of a SCAN page to measure: those not seen before on
// this node, as many as the limit allows. more is false when the scan of
// the node is over: the cursor is back at 0 or the limit is reached.
func (n *nodeScan) take(page []string, cursor uint64) (keys []string, more bool) {
	if n.between != nil {
		n.between("scanned", page)
	}
	keys = page[:0]
	for _, k := range page {
		if n.seen.add(maphash.String(n.run.seed, k)) {
			keys = append(keys, k)
		}
	}
	n.pages++
	n.walked += int64(len(page))
	n.walk(cursor)
	switch {
	case len(keys) > 0:
		n.stale = 0
	case len(page) > 0:
		n.stale++
	}
	got := n.run.claim(int64(len(keys)))
	n.mu.Lock()
	n.scanned += got
	n.mu.Unlock()
	switch {
	case got < int64(len(keys)), cursor != 0 && n.run.claimed.Load() >= n.run.opts.Limit:
		n.limited = true
		return keys[:got], false
	case cursor == 0:
		n.complete = true
		return keys, false
	}
	return keys, true
}

// measure measures keys in at most two round trips: TYPE, MEMORY USAGE and
// PTTL of each, then the length command of each collection.
func (n *nodeScan) measure(ctx context.Context, keys []string) error {
	start := n.run.now()
	found, vanished, commands, err := n.first(ctx, keys)
	if err != nil {
		return err
	}
	n.throttle.wait(ctx, start, commands, commands)
	if n.between != nil {
		names := make([]string, len(found))
		for i, k := range found {
			names[i] = k.Name
		}
		n.between("measured", names)
	}
	start = n.run.now()
	found, gone, commands, err := n.lengths(ctx, found)
	if err != nil {
		return err
	}
	n.throttle.wait(ctx, start, commands, commands)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.vanished += vanished + gone
	for _, k := range found {
		n.stats.Add(k)
	}
	return nil
}

// first sends TYPE, MEMORY USAGE and PTTL for each key and returns the keys
// that still exist, their Elements not known yet.
func (n *nodeScan) first(ctx context.Context, keys []string) (found []handlers.Key, vanished, commands int64, err error) {
	pipe := n.client.Pipeline()
	types := make([]*redis.StatusCmd, len(keys))
	sizes := make([]*redis.IntCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		types[i] = pipe.Type(ctx, k)
		sizes[i] = pipe.MemoryUsage(ctx, k)
		ttls[i] = pipe.PTTL(ctx, k)
	}
	commands = int64(pipe.Len())
	if err := execPipe(ctx, pipe); err != nil {
		return nil, 0, commands, fmt.Errorf("TYPE, MEMORY USAGE, PTTL: %w", err)
	}
	found = make([]handlers.Key, 0, len(keys))
	for i, name := range keys {
		k, ok, err := measured(name, types[i], sizes[i], ttls[i])
		if err != nil {
			return nil, 0, commands, err
		}
		if !ok {
			vanished++
			continue
		}
		if n.run.many {
			k.Node = n.inst.Name
		}
		found = append(found, k)
	}
	return found, vanished, commands, nil
}

// lengths sends the length command of each key's type (none for module
// types) and returns the keys with their Elements.
func (n *nodeScan) lengths(ctx context.Context, keys []handlers.Key) (found []handlers.Key, vanished, commands int64, err error) {
	pipe := n.client.Pipeline()
	counts := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		counts[i] = length(ctx, pipe, k)
	}
	commands = int64(pipe.Len())
	if commands == 0 {
		return keys, 0, 0, nil
	}
	if err := execPipe(ctx, pipe); err != nil {
		return nil, 0, commands, fmt.Errorf("lengths: %w", err)
	}
	found = keys[:0]
	for i, k := range keys {
		if counts[i] != nil {
			v, err := counts[i].Result()
			switch {
			case isRedirect(err):
				vanished++
				continue
			case isWrongType(err):
				// The key was replaced by one of another type since
				// TYPE. Its size stands; its length is unknown.
				k.Elements = -1
			case err != nil:
				return nil, 0, commands, fmt.Errorf("lengths: %w", err)
			case v == 0 && k.Type != "stream":
				// Redis deletes a list, hash, set or sorted set with its
				// last element: an empty one was deleted since TYPE.
				vanished++
				continue
			default:
				k.Elements = v
			}
		}
		found = append(found, k)
	}
	return found, vanished, commands, nil
}

// execPipe runs a pipeline. It fails when the connection failed or the
// server refuses the commands as such (NOPERM, LOADING, BUSY); errors that
// belong to single keys (WRONGTYPE, MOVED) are for the caller to read.
func execPipe(ctx context.Context, pipe redis.Pipeliner) error {
	_, err := pipe.Exec(ctx)
	if err != nil && (!isServerError(err) || probe.Classify(err) != handlers.ClassError) {
		return err
	}
	return nil
}

// measured reads the first answers about one key. ok is false when the key
// no longer exists: deleted, expired or migrated to another cluster node
// since SCAN returned it.
func measured(name string, typ *redis.StatusCmd, size *redis.IntCmd, ttl *redis.DurationCmd) (k handlers.Key, ok bool, err error) {
	t, terr := typ.Result()
	bytes, serr := size.Result()
	pttl, perr := ttl.Result()
	for _, err := range []error{terr, serr, perr} {
		switch {
		case err == nil, errors.Is(err, redis.Nil):
		case isRedirect(err):
			return k, false, nil
		default:
			return k, false, fmt.Errorf("TYPE, MEMORY USAGE, PTTL: %w", err)
		}
	}
	// MEMORY USAGE answers nil, TYPE none and PTTL -2 for a missing key.
	if t == "none" || errors.Is(serr, redis.Nil) || pttl == -2 {
		return k, false, nil
	}
	k = handlers.Key{Name: name, Type: t, Bytes: bytes, Elements: -1, TTL: pttl}
	if pttl == -1 {
		k.TTL = handlers.NoTTL
	}
	return k, true, nil
}

// length queues the command that counts k's elements, or returns nil for a
// type without one (module types) and for a string: MEMORY USAGE already
// gives its size, and STRLEN for each of them cost the server more than
// the rest of the scan of a cache's many small strings (docs/benchmarks.md).
func length(ctx context.Context, pipe redis.Pipeliner, k handlers.Key) *redis.IntCmd {
	switch k.Type {
	case "list":
		return pipe.LLen(ctx, k.Name)
	case "hash":
		return pipe.HLen(ctx, k.Name)
	case "set":
		return pipe.SCard(ctx, k.Name)
	case "zset":
		return pipe.ZCard(ctx, k.Name)
	case "stream":
		return pipe.XLen(ctx, k.Name)
	}
	return nil
}

// dial returns a client for in, configured like every other client
// (probe.ClientOptions), with poolSize connections: one when throttled, so
// its round trips never overlap; a --fast scan SCANs on one and measures on
// fastWorkers more.
func dial(in handlers.Instance, timeout time.Duration, poolSize int) (*redis.Client, error) {
	opts, err := probe.ClientOptions(in, timeout)
	if err != nil {
		return nil, err
	}
	opts.PoolSize = poolSize
	// Pipelines share the pool instead of a pool of their own.
	opts.PipelinePoolSize = -1
	return redis.NewClient(opts), nil
}

func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE ")
}

// isRedirect reports a cluster redirection: the key's slot moved to another
// node since SCAN returned it.
func isRedirect(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}
