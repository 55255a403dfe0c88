package keyspace

import (
	"context"
	"fmt"

	"github.com/redisbot/redisbot/handlers"
)

// A scan ends only when SCAN's cursor comes back to 0, so a server or proxy
// that implements SCAN wrongly could keep one going for ever. These bound
// what a scan accepts before it gives up on a node with a partial report.
// Redis itself stays far inside them: its cursor never repeats within one
// iteration (it counts up in reversed-bit order, across resizes too), and
// it returns a key more than once only for the buckets a shrinking table
// folds together, a page or two of them.
const (
	// stalePages is how many non-empty pages in a row may return only keys
	// returned before: a server that re-serves the same keys whatever the
	// cursor. Pages with no key at all do not count: SCAN MATCH on a
	// sparse pattern returns many of those, legitimately.
	stalePages = 100
	// walkFactor and walkSlack bound the keys SCAN may return, duplicates
	// included, against the key count the server reports (INFO keyspace):
	// more than walkFactor times that count plus walkSlack, asked again
	// in case the key space grew, is a SCAN that does not walk a key space.
	walkFactor = 10
	walkSlack  = 10_000
)

// stuck reports whether SCAN is making no progress on this node, after a
// page whose next cursor is cursor (not 0), and records why in n.stalled.
// It runs on the goroutine that calls SCAN.
func (n *nodeScan) stuck(ctx context.Context, cursor uint64) bool {
	switch {
	case n.cycle.repeats(cursor):
		n.stalled = fmt.Sprintf("SCAN cursor repeated after %s pages; the server or proxy does not implement SCAN correctly", handlers.Thousands(n.pages))
	case n.stale >= stalePages:
		n.stalled = fmt.Sprintf("SCAN returned only keys it had already returned, %d pages in a row; the server or proxy does not implement SCAN correctly", n.stale)
	case n.walked > n.walkBound():
		// The key space may have grown since the scan began: ask again
		// before giving up on it.
		if err := n.recount(ctx); err != nil && ended(ctx) != nil {
			return false // the caller sees ctx and stops
		}
		if n.walked > n.walkBound() {
			n.stalled = fmt.Sprintf("SCAN returned %s keys, more than %d times the %s keys the server reports; the server or proxy does not implement SCAN correctly",
				handlers.Thousands(n.walked), walkFactor, handlers.Thousands(n.reported))
		}
	}
	return n.stalled != ""
}

func (n *nodeScan) walkBound() int64 { return walkFactor*n.reported + walkSlack }

// recount reads the node's key count again; it only ever raises the count
// the walk is bounded by.
func (n *nodeScan) recount(ctx context.Context) error {
	text, err := n.client.Info(ctx, "keyspace").Result()
	if err != nil {
		return fmt.Errorf("INFO keyspace: %w", err)
	}
	n.reported = max(n.reported, n.keyCount(text))
	return nil
}

// keyCount is the node's database's keys= in an INFO keyspace text.
func (n *nodeScan) keyCount(info string) int64 {
	for _, db := range handlers.ParseInfo(info).Keyspace() {
		if db.DB == n.inst.DB {
			return db.Keys
		}
	}
	return 0
}

// cursorCycle detects a SCAN cursor that comes back, with Brent's
// algorithm: it keeps one cursor and two counters whatever the length of
// the scan, and finds a cycle of λ cursors entered after μ pages within
// 2·max(μ, λ) + λ pages.
type cursorCycle struct {
	saved   uint64
	power   int64 // pages between two saved cursors, a power of two
	lam     int64 // pages since the cursor was saved
	started bool
}

// repeats takes the next cursor and reports whether the sequence has
// cycled.
func (c *cursorCycle) repeats(cursor uint64) bool {
	if !c.started {
		c.saved, c.power, c.started = cursor, 1, true
		return false
	}
	if cursor == c.saved {
		return true
	}
	c.lam++
	if c.lam == c.power {
		c.saved, c.power, c.lam = cursor, 2*c.power, 0
	}
	return false
}

// scanPanic is a recovered panic as a node's error: its text is the
// panic's summary, safe to show (no bytes a server sent), and the
// *handlers.PanicError with the stack stays in its chain for the service
// to log.
func scanPanic(pe *handlers.PanicError) error {
	return fmt.Errorf("internal error while scanning: %w", pe)
}
