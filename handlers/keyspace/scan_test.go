package keyspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/topology/topotest"
)

const testTimeout = 2 * time.Second

// binaryKey is a key name no chat message or CSV may take as it is.
const binaryKey = "\x00\xff<!channel>\n"

// fillers are the small strings that make SCAN take several pages.
const fillers = 500

// loadMixedSmall writes the dataset of the tests: one key of each type,
// strings of several sizes, two TTLs, a binary name and the fillers. It
// returns the number of keys.
// mixedServer starts a real server holding loadMixedSmall's keys and
// returns a client (closed with the test) and the number of keys.
func mixedServer(t *testing.T) (*redistest.Server, *redis.Client, int64) {
	t.Helper()
	srv := redistest.StartT(t)
	c := srv.Client()
	t.Cleanup(func() { c.Close() })
	return srv, c, loadMixedSmall(t, c)
}

func loadMixedSmall(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"SET", "s:empty", ""},
		{"SET", "s:small", "x"},
		{"SET", "s:medium", strings.Repeat("m", 100)},
		{"SET", "s:big", strings.Repeat("b", 100_000)},
		{"SET", "s:ttl", "t", "EX", "1000"},
		{"SET", binaryKey, "bin"},
		{"HSET", "h", "f0", "v", "f1", "v", "f2", "v", "f3", "v", "f4", "v", "f5", "v", "f6", "v", "f7", "v", "f8", "v", "f9", "v"},
		{"PEXPIRE", "h", "500000"},
		{"RPUSH", "l", "a", "b", "c", "d", "e"},
		{"SADD", "set", "1", "2", "3", "4", "5", "6", "7"},
		{"ZADD", "z", "1", "a", "2", "b", "3", "c"},
		{"XADD", "x", "*", "f", "v"},
		{"XADD", "x", "*", "f", "v"},
	} {
		if err := c.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	if err := redistest.Fill(ctx, c, "f:", fillers, 20, 0); err != nil {
		t.Fatal(err)
	}
	return c.DBSize(ctx).Val()
}

func standalone(addr string) []handlers.Instance {
	return []handlers.Instance{{Name: "cache-1", Addr: addr}}
}

func options() handlers.KeyScanOptions {
	return handlers.KeyScanOptions{Thresholds: handlers.DefaultThresholds(), Budget: 1_000_000}
}

func keyByName(scan *handlers.KeyScan, name string) (handlers.Key, bool) {
	for _, k := range scan.Top {
		if k.Name == name {
			return k, true
		}
	}
	return handlers.Key{}, false
}

func TestScanMixed(t *testing.T) {
	t.Parallel()
	srv, c, want := mixedServer(t)
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "active-defrag-max-scan-fields", "500").Err(); err != nil {
		t.Fatal(err)
	}

	var results []*handlers.KeyScan
	for _, fast := range []bool{false, true} {
		opts := options()
		opts.Fast = fast
		var progress []handlers.KeyScanProgress
		opts.Progress = func(p handlers.KeyScanProgress) { progress = append(progress, p) }
		scan, err := New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
		if err != nil {
			t.Fatalf("fast=%v: %v", fast, err)
		}
		results = append(results, scan)
		if !scan.Complete || scan.Stopped != "" || scan.Scanned != want || scan.Total.Keys != want || scan.Vanished != 0 ||
			scan.Estimate != want {
			t.Errorf("fast=%v: complete %v, stopped %q, scanned %d, total %d, vanished %d, estimate %d; want %d keys, complete",
				fast, scan.Complete, scan.Stopped, scan.Scanned, scan.Total.Keys, scan.Vanished, scan.Estimate, want)
		}
		if !slices.Equal(scan.Nodes, []string{"cache-1"}) || scan.DefragMaxScanFields != 500 || scan.Throttle.Fast != fast {
			t.Errorf("fast=%v: nodes %q, defrag fields %d, throttle %+v", fast, scan.Nodes, scan.DefragMaxScanFields, scan.Throttle)
		}
		// One SCAN per page, three commands per key and the length of
		// each of the five collections; none for a string.
		if scan.Throttle.Commands < 3*want+5+1 || scan.Throttle.Commands >= 4*want {
			t.Errorf("fast=%v: %d commands for %d keys", fast, scan.Throttle.Commands, want)
		}
		if len(progress) == 0 || !progress[len(progress)-1].Done || progress[len(progress)-1].Scanned != want {
			t.Errorf("fast=%v: progress %+v, want a last report with Done and %d keys", fast, progress, want)
		}

		for _, w := range []struct {
			name     string
			typ      string
			elements int64
			ttl      bool
		}{
			// A string has no count: its size is its MEMORY USAGE.
			{"s:empty", "string", -1, false}, {"s:small", "string", -1, false}, {"s:medium", "string", -1, false},
			{"s:big", "string", -1, false}, {"s:ttl", "string", -1, true}, {binaryKey, "string", -1, false},
			{"h", "hash", 10, true}, {"l", "list", 5, false}, {"set", "set", 7, false}, {"z", "zset", 3, false},
			{"x", "stream", 2, false},
		} {
			k, ok := keyByName(scan, w.name)
			if !ok {
				t.Errorf("fast=%v: key %q not in the result", fast, w.name)
				continue
			}
			bytes, _ := c.MemoryUsage(ctx, w.name).Result()
			if k.Type != w.typ || k.Elements != w.elements || k.HasTTL() != w.ttl || k.Bytes != bytes || k.Node != "" {
				t.Errorf("fast=%v: %q = %+v, want type %s, %d elements, TTL %v, %d bytes", fast, w.name, k, w.typ, w.elements, w.ttl, bytes)
			}
		}
		if k, _ := keyByName(scan, "s:ttl"); k.TTL <= 990*time.Second || k.TTL > 1000*time.Second {
			t.Errorf("fast=%v: TTL of s:ttl %s, want about 1000s", fast, k.TTL)
		}
		if k, _ := keyByName(scan, "h"); k.TTL <= 490*time.Second || k.TTL > 500*time.Second {
			t.Errorf("fast=%v: TTL of h %s, want about 500s", fast, k.TTL)
		}
		if k, _ := keyByName(scan, "l"); k.TTL != handlers.NoTTL {
			t.Errorf("fast=%v: TTL of l %s, want NoTTL", fast, k.TTL)
		}
		types := map[string]handlers.TypeStats{}
		for _, ts := range scan.Types {
			types[ts.Type] = ts
		}
		if types["string"].Keys != 6+fillers || types["hash"].Elements != 10 || types["stream"].Elements != 2 {
			t.Errorf("fast=%v: types %+v", fast, scan.Types)
		}
		if scan.WithTTL.Keys != 2 || scan.NoTTL.Keys != want-2 {
			t.Errorf("fast=%v: with TTL %+v, without %+v", fast, scan.WithTTL, scan.NoTTL)
		}
	}
	// Throttled or not, the same keys come back.
	if a, b := withoutTTLs(results[0].Top), withoutTTLs(results[1].Top); !slices.Equal(a, b) {
		t.Errorf("throttled and fast scans differ: %d and %d keys", len(a), len(b))
	}
	if results[0].Throttle.Budget != 1_000_000 || results[1].Throttle.Budget != 0 || results[1].Throttle.Paused != 0 {
		t.Errorf("throttle reports: %+v, %+v", results[0].Throttle, results[1].Throttle)
	}
}

// withoutTTLs returns keys with their TTLs reduced to whether they have
// one: two scans a moment apart see TTLs a few milliseconds apart.
func withoutTTLs(keys []handlers.Key) []handlers.Key {
	out := slices.Clone(keys)
	for i := range out {
		out[i].TTL = min(out[i].TTL, 0)
	}
	return out
}

func TestScanMatchAndLimit(t *testing.T) {
	t.Parallel()
	srv, _, _ := mixedServer(t)
	ctx := context.Background()

	opts := options()
	opts.Match = "f:1*" // f:1, f:10..f:19, f:100..f:199
	var last handlers.KeyScanProgress
	opts.Progress = func(p handlers.KeyScanProgress) { last = p }
	scan, err := New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Progress is what SCAN walked (every key), with the match rate.
	if share, _ := last.Share(); !last.Done || !last.Match || last.Scanned != 111 || last.Walked != scan.Estimate || share != 1 ||
		last.Text() != fmt.Sprintf("walked %d of ~%d keys, 22%% match (111)", scan.Estimate, scan.Estimate) {
		t.Errorf("last progress %+v (%q), want all %d keys walked and 111 matches", last, last.Text(), scan.Estimate)
	}
	if scan.Scanned != 111 || scan.Total.Keys != 111 || !scan.Complete || scan.Match != "f:1*" {
		t.Errorf("match f:1*: scanned %d, total %d, complete %v, match %q; want 111 keys", scan.Scanned, scan.Total.Keys, scan.Complete, scan.Match)
	}
	for _, k := range scan.Top {
		if !strings.HasPrefix(k.Name, "f:1") {
			t.Errorf("key %q does not match f:1*", k.Name)
		}
	}

	for _, fast := range []bool{false, true} {
		opts := options()
		opts.Limit, opts.Fast, opts.Count = 50, fast, 20
		scan, err := New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
		if err != nil {
			t.Fatal(err)
		}
		if scan.Complete || scan.Stopped != "limit" || scan.Scanned != 50 || scan.Total.Keys != 50 {
			t.Errorf("fast=%v, limit 50: complete %v, stopped %q, scanned %d, total %d", fast, scan.Complete, scan.Stopped, scan.Scanned, scan.Total.Keys)
		}
	}
}

// TestScanShare: the share of the table a cursor has covered grows with
// every SCAN of a real server, from 0 to 1, and what it estimates stays
// near what was walked.
func TestScanShare(t *testing.T) {
	t.Parallel()
	srv, c, keys := mixedServer(t)
	ctx := context.Background()
	var cursor uint64
	prev, returned := 0.0, 0
	for {
		page, next, err := c.Scan(ctx, cursor, "", 10).Result()
		if err != nil {
			t.Fatal(err)
		}
		returned += len(page)
		cursor = next
		if cursor == 0 {
			break
		}
		share := scanShare(cursor)
		if share <= prev || share >= 1 {
			t.Fatalf("cursor %d: share %.4f after %.4f", cursor, share, prev)
		}
		// Buckets hold keys unevenly: a loose bound.
		if est := share * float64(keys); est < float64(returned)/2-20 || est > float64(returned)*2+20 {
			t.Errorf("cursor %d: share %.3f estimates %.0f keys walked, SCAN returned %d", cursor, share, est, returned)
		}
		prev = share
	}
	_ = srv
}

// Keys deleted, replaced or emptied between SCAN and the measurements are
// skipped without an error.
func TestScanVanishingKeys(t *testing.T) {
	t.Parallel()
	srv, c, want := mixedServer(t)
	ctx := context.Background()

	s := New(testTimeout)
	var deleted, replaced []string
	s.between = func(step string, keys []string) {
		switch step {
		case "scanned":
			if len(deleted) == 0 { // the first page: delete 10 of its keys
				for _, k := range keys {
					if len(deleted) < 10 && k != "l" && k != "set" {
						deleted = append(deleted, k)
					}
				}
				if err := c.Del(ctx, deleted...).Err(); err != nil {
					t.Error(err)
				}
			}
		case "measured":
			// Measured, then gone or changed before its length is read:
			// the list is deleted (LLEN 0), the set becomes a string
			// (WRONGTYPE on SCARD).
			for _, k := range keys {
				switch {
				case k == "l":
					c.Del(ctx, "l")
					deleted = append(deleted, k)
				case k == "set":
					c.Del(ctx, k)
					c.Set(ctx, k, "v", 0)
					replaced = append(replaced, k)
				}
			}
		}
	}
	scan, err := s.Scan(ctx, standalone(srv.Addr), options())
	if err != nil {
		t.Fatal(err)
	}
	if scan.Scanned != want || scan.Vanished != int64(len(deleted)) || scan.Total.Keys != want-int64(len(deleted)) || !scan.Complete {
		t.Errorf("scanned %d, vanished %d, total %d, complete %v; want %d scanned, %d vanished (%q)",
			scan.Scanned, scan.Vanished, scan.Total.Keys, scan.Complete, want, len(deleted), deleted)
	}
	for _, k := range deleted {
		if _, ok := keyByName(scan, k); ok {
			t.Errorf("deleted key %q reported", k)
		}
	}
	if k, ok := keyByName(scan, "set"); len(replaced) != 1 || !ok || k.Type != "set" || k.Elements != -1 {
		t.Errorf("set, replaced by a string after TYPE: %+v (replaced %q), want a set without a length", k, replaced)
	}

	// Deleted concurrently by another client, at random moments.
	t.Run("concurrent", func(t *testing.T) {
		if err := redistest.Fill(ctx, c, "d:", 3000, 10, 0); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			d := srv.Client()
			defer d.Close()
			for i := 0; i < 3000; i++ {
				select {
				case <-done:
					return
				default:
				}
				d.Del(ctx, "d:"+strconv.Itoa(i))
			}
		})
		scan, err := New(testTimeout).Scan(ctx, standalone(srv.Addr), options())
		close(done)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if !scan.Complete || scan.Total.Keys+scan.Vanished != scan.Scanned {
			t.Errorf("complete %v, scanned %d = total %d + vanished %d?", scan.Complete, scan.Scanned, scan.Total.Keys, scan.Vanished)
		}
		t.Logf("%d keys vanished during the scan", scan.Vanished)
	})
}

// SCAN returns some keys twice when the server's table shrinks between two
// calls; each is counted once.
func TestScanDuplicates(t *testing.T) {
	t.Parallel()
	srv := redistest.StartT(t, "--hz", "100", "--enable-debug-command", "local")
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	// Whether SCAN repeats keys depends on where its cursor stands when
	// the table shrinks: most attempts make duplicates, a few do not. The
	// layout of the table follows from the key names (and the server's
	// hash seed): each attempt names its keys differently.
	for attempt := 1; ; attempt++ {
		returned, distinct := shrinkDuringScan(t, c, "a"+strconv.Itoa(attempt)+":")
		if returned > distinct {
			break
		}
		if attempt == 5 {
			t.Fatalf("SCAN returned %d keys, all distinct, %d times: the test does not make duplicates", returned, attempt)
		}
	}

	// The key space grows while SCAN walks it (the table rehashes to
	// bigger sizes): never more keys than ever existed.
	t.Run("growing", func(t *testing.T) {
		c.FlushAll(ctx)
		if err := redistest.Fill(ctx, c, "g:", 2000, 1, 0); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		var written atomic.Int64
		written.Store(2000)
		wg.Go(func() {
			d := srv.Client()
			defer d.Close()
			for i := 2000; i < 40_000; i += 500 {
				select {
				case <-done:
					return
				default:
				}
				if err := redistest.Fill(ctx, d, "g:"+strconv.Itoa(i)+":", 500, 1, 0); err != nil {
					return
				}
				written.Add(500)
			}
		})
		opts := options()
		opts.Count = 50
		scan, err := New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
		close(done)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if scan.Scanned < 2000 || scan.Scanned > written.Load() || scan.Total.Keys+scan.Vanished != scan.Scanned {
			t.Errorf("scanned %d (total %d, vanished %d): want from 2000 to the %d keys written", scan.Scanned, scan.Total.Keys, scan.Vanished, written.Load())
		}
	})
}

// shrinkDuringScan fills 20,000 keys and scans them; after the third page
// it deletes every key SCAN has not returned yet, so that the table
// shrinks from 32,768 buckets to 1,024 and the cursor, now read in the
// small table, walks buckets whose keys it returned already. It checks that
// each key counts once and returns how many keys SCAN returned, and how
// many of them were distinct.
func shrinkDuringScan(t *testing.T, c *redis.Client, prefix string) (returned, distinct int) {
	t.Helper()
	ctx := context.Background()
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.Fill(ctx, c, prefix, 20_000, 1, 0); err != nil {
		t.Fatal(err)
	}
	s := New(testTimeout)
	pages := 0
	seen := map[string]bool{}
	s.between = func(step string, keys []string) {
		if step != "scanned" {
			return
		}
		pages++
		returned += len(keys)
		for _, k := range keys {
			seen[k] = true
		}
		if pages != 3 {
			return
		}
		var gone []string
		for i := range 20_000 {
			if k := prefix + strconv.Itoa(i); !seen[k] {
				gone = append(gone, k)
			}
		}
		// One DEL, so that serverCron does not resize the table half-way
		// to a size the rest would not shrink from.
		if err := c.Del(ctx, gone...).Err(); err != nil {
			t.Fatal(err)
		}
		// serverCron resizes the table (hz 100) and rehashes it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			stats, err := c.Do(ctx, "DEBUG", "HTSTATS", "0").Text()
			if err != nil {
				t.Fatal(err)
			}
			m := tableSize.FindStringSubmatch(stats)
			if size, _ := strconv.Atoi(m[1]); size <= 1024 && !strings.Contains(stats, "rehashing") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the table did not shrink:\n%s", stats)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	opts := options()
	opts.Count = 300
	scan, err := s.Scan(ctx, standalone(c.Options().Addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	kept := int64(c.DBSize(ctx).Val())
	if scan.Scanned != int64(len(seen)) || scan.Total.Keys != kept || scan.Vanished != scan.Scanned-kept || !scan.Complete {
		t.Errorf("scanned %d, total %d, vanished %d, complete %v; SCAN returned %d keys, %d distinct, %d kept",
			scan.Scanned, scan.Total.Keys, scan.Vanished, scan.Complete, returned, len(seen), kept)
	}
	return returned, len(seen)
}

var tableSize = regexp.MustCompile(`table size: (\d+)`)

func TestScanCancel(t *testing.T) {
	t.Parallel()
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	want := loadMixedSmall(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	s := New(testTimeout)
	s.between = func(step string, _ []string) {
		if step == "scanned" {
			cancel()
		}
	}
	opts := options()
	opts.Count = 10
	scan, err := s.Scan(ctx, standalone(srv.Addr), opts)
	if err != nil {
		t.Fatalf("cancelled scan: %v, want a partial result", err)
	}
	if scan.Complete || scan.Stopped != "cancelled" || scan.Scanned == 0 || scan.Scanned >= want || len(scan.NodeErrors) > 0 {
		t.Errorf("cancelled scan: complete %v, stopped %q, scanned %d of %d, node errors %v", scan.Complete, scan.Stopped, scan.Scanned, want, scan.NodeErrors)
	}

	// A deadline ends a slow scan the same way.
	ctx, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	opts = options()
	opts.Budget = 1000
	scan, err = New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
	if err != nil || scan.Stopped != "deadline" || scan.Complete || scan.Scanned == 0 {
		t.Errorf("scan past its deadline: %v, %v", scan, err)
	}
}

func TestScanThrottle(t *testing.T) {
	t.Parallel()
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, c, "k:", 1000, 10, 0); err != nil {
		t.Fatal(err)
	}
	opts := options()
	opts.Budget = 2000
	scan, err := New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The budget paces every round trip but the last (at most 300
	// commands), a SCAN as COUNT commands: a lower bound only, the machine
	// may be slower.
	least := time.Duration(scan.Throttle.Commands-300) * time.Second / 2000
	if scan.Duration < least || scan.Throttle.Paused <= 0 || scan.Throttle.Budget != 2000 || scan.Throttle.BaselineRTT <= 0 {
		t.Errorf("%d commands at 2000/s in %s, paused %s (want at least %s): %+v", scan.Throttle.Commands, scan.Duration,
			scan.Throttle.Paused, least, scan.Throttle)
	}

	// A MATCH that finds nothing still walks the key space at the
	// budget's pace: each SCAN counts as COUNT commands.
	opts.Match = "nothing:*"
	scan, err = New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	least = time.Duration(scan.Throttle.Commands-1) * DefaultCount * time.Second / 2000
	if scan.Total.Keys != 0 || scan.Throttle.Commands < 5 || scan.Duration < least {
		t.Errorf("%d SCANs finding %d keys in %s, want at least %s", scan.Throttle.Commands, scan.Total.Keys, scan.Duration, least)
	}

	opts.Match, opts.Fast = "", true
	scan, err = New(testTimeout).Scan(ctx, standalone(srv.Addr), opts)
	if err != nil {
		t.Fatal(err)
	}
	if scan.Throttle.Paused != 0 || scan.Throttle.Backoffs != 0 || !scan.Throttle.Fast || scan.Scanned != 1000 {
		t.Errorf("fast: %+v, scanned %d", scan.Throttle, scan.Scanned)
	}
}

// The adaptive pause, on a clock: it doubles while SCAN answers much slower
// than its best, and shrinks back once the server is fast again.
func TestThrottleBackoff(t *testing.T) {
	th := newThrottle(handlers.KeyScanOptions{Budget: 1_000_000}, time.Now)
	for _, step := range []struct {
		rtt   time.Duration
		pause time.Duration
	}{
		{100 * time.Microsecond, 0},
		{300 * time.Microsecond, 0},        // 3x, only 0.2 ms more: not busy
		{900 * time.Microsecond, 0},        // 9x but under a millisecond more
		{5 * time.Millisecond, firstPause}, // busy
		{8 * time.Millisecond, 2 * firstPause},
		{20 * time.Millisecond, 4 * firstPause},
		{600 * time.Microsecond, 4 * firstPause}, // between: hold
		{150 * time.Microsecond, 2 * firstPause}, // calm: halve
		{150 * time.Microsecond, firstPause},
		{150 * time.Microsecond, 0},
	} {
		th.observe(step.rtt)
		if th.pause != step.pause {
			t.Errorf("after a %s round trip: pause %s, want %s", step.rtt, th.pause, step.pause)
		}
	}
	for range 20 {
		th.observe(time.Second)
	}
	if th.pause != maxPause || th.report.Backoffs != 23 || th.report.MaxRTT != time.Second || th.report.BaselineRTT != 100*time.Microsecond {
		t.Errorf("pause %s, report %+v", th.pause, th.report)
	}
}

func TestScanCluster(t *testing.T) {
	t.Parallel()
	cl := topotest.StartClusterT(t, 3, 0)
	ctx := context.Background()
	var addrs []string
	for _, p := range cl.Primaries {
		addrs = append(addrs, p.Addr)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2})
	defer cc.Close()
	const n = 600
	for i := range n {
		if err := cc.Set(ctx, "user:"+strconv.Itoa(i), strings.Repeat("u", i%50), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var nodes []handlers.Instance
	perNode := map[string]int64{}
	for i, p := range cl.Primaries {
		name := "orders-" + strconv.Itoa(i+1)
		nodes = append(nodes, handlers.Instance{Name: name, Addr: p.Addr, Cluster: true})
		c := p.Client()
		perNode[name] = c.DBSize(ctx).Val()
		c.Close()
		if perNode[name] == 0 {
			t.Fatalf("%s holds no key", name)
		}
	}

	for _, fast := range []bool{false, true} {
		opts := options()
		opts.Fast = fast
		scan, err := New(testTimeout).Scan(ctx, nodes, opts)
		if err != nil {
			t.Fatal(err)
		}
		if scan.Scanned != n || scan.Total.Keys != n || scan.Estimate != n || !scan.Complete || len(scan.Nodes) != 3 {
			t.Errorf("fast=%v: scanned %d, total %d, estimate %d, complete %v, nodes %q; want %d", fast, scan.Scanned, scan.Total.Keys,
				scan.Estimate, scan.Complete, scan.Nodes, n)
		}
		counted := map[string]int64{}
		for _, k := range scan.Top {
			counted[k.Node]++
		}
		for name, want := range perNode {
			if counted[name] != want {
				t.Errorf("fast=%v: %d keys of %s in the result, DBSIZE %d", fast, counted[name], name, want)
			}
		}
	}

	t.Run("limit", func(t *testing.T) {
		opts := options()
		opts.Limit = 100
		scan, err := New(testTimeout).Scan(ctx, nodes, opts)
		if err != nil || scan.Scanned != 100 || scan.Total.Keys != 100 || scan.Stopped != "limit" {
			t.Errorf("limit 100 over 3 nodes: %+v, %v", scan, err)
		}
	})

	t.Run("a node down", func(t *testing.T) {
		cl.Primaries[2].Stop()
		scan, err := New(testTimeout).Scan(ctx, nodes, options())
		if err != nil {
			t.Fatal(err)
		}
		want := perNode["orders-1"] + perNode["orders-2"]
		if scan.Scanned != want || scan.Total.Keys != want || scan.Complete || len(scan.NodeErrors) != 1 ||
			scan.NodeErrors[0].Node != "orders-3" || scan.NodeErrors[0].Class != handlers.ClassRefused {
			t.Errorf("scanned %d (want %d), complete %v, node errors %+v", scan.Scanned, want, scan.Complete, scan.NodeErrors)
		}
	})

	t.Run("every node down", func(t *testing.T) {
		cl.Primaries[0].Stop()
		cl.Primaries[1].Stop()
		scan, err := New(testTimeout).Scan(ctx, nodes, options())
		var pe *handlers.ProbeError
		if scan != nil || !errors.As(err, &pe) || pe.Class != handlers.ClassRefused || pe.Instance != "orders-1" {
			t.Errorf("every node down: %v, %v; want a refused ProbeError", scan, err)
		}
	})
}

func TestScanErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wantClass := func(t *testing.T, nodes []handlers.Instance, class handlers.ErrorClass, text string) {
		t.Helper()
		start := time.Now()
		scan, err := New(testTimeout).Scan(ctx, nodes, options())
		var pe *handlers.ProbeError
		if scan != nil || !errors.As(err, &pe) || pe.Class != class || !strings.Contains(err.Error(), text) {
			t.Errorf("scan: %v, %v; want a %s ProbeError saying %q", scan, err, class, text)
		}
		if took := time.Since(start); took > 3*testTimeout {
			t.Errorf("the scan took %s", took)
		}
	}

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		srv := redistest.StartT(t)
		srv.Stop()
		wantClass(t, standalone(srv.Addr), handlers.ClassRefused, "refused")
	})
	t.Run("no address", func(t *testing.T) {
		t.Parallel()
		wantClass(t, standalone(""), handlers.ClassRefused, "no address")
	})
	t.Run("loading", func(t *testing.T) {
		t.Parallel()
		// A dump of 3,000 keys, loaded at 1 ms a key: the server answers
		// LOADING for about 3 s.
		src := redistest.StartT(t)
		c := src.Client()
		defer c.Close()
		if err := redistest.Fill(ctx, c, "k:", 3000, 10, 0); err != nil {
			t.Fatal(err)
		}
		if err := c.Save(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		dump := filepath.Join(t.TempDir(), "dump.rdb")
		copyFile(t, filepath.Join(src.Dir, "dump-"+port(src.Addr)+".rdb"), dump)
		srv := redistest.StartT(t, "--dir", filepath.Dir(dump), "--dbfilename", "dump.rdb",
			"--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024")
		wantClass(t, standalone(srv.Addr), handlers.ClassLoading, "LOADING")
	})
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestScanACL(t *testing.T) {
	t.Parallel()
	srv, root, _ := mixedServer(t)
	ctx := context.Background()
	const password = "keys-test-password"
	for _, rules := range redistest.ACLRules(t, "../../docs/redis-acl.md", "redisbot", password) {
		if err := root.ACLSetUser(ctx, "redisbot", rules...).Err(); err != nil {
			t.Fatalf("ACL SETUSER redisbot %s: %v", strings.Join(rules, " "), err)
		}
	}
	asDefault, err := New(testTimeout).Scan(ctx, standalone(srv.Addr), options())
	if err != nil {
		t.Fatal(err)
	}
	inst := handlers.Instance{Name: "cache-1", Addr: srv.Addr, Username: "redisbot", Password: password}
	for _, fast := range []bool{false, true} {
		opts := options()
		opts.Fast = fast
		asBot, err := New(testTimeout).Scan(ctx, []handlers.Instance{inst}, opts)
		if err != nil {
			t.Fatalf("fast=%v: scan as redisbot: %v", fast, err)
		}
		if !asBot.Complete || asBot.Scanned != asDefault.Scanned || asBot.DefragMaxScanFields != asDefault.DefragMaxScanFields ||
			!slices.Equal(withoutTTLs(asBot.Top), withoutTTLs(asDefault.Top)) {
			t.Errorf("fast=%v: as redisbot: complete %v, %d keys, defrag fields %d; as default: %d keys, %d",
				fast, asBot.Complete, asBot.Scanned, asBot.DefragMaxScanFields, asDefault.Scanned, asDefault.DefragMaxScanFields)
		}
	}
	// Nothing was refused, not even what the scanner works around.
	entries, err := root.ACLLog(ctx, 10).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("ACL LOG: %s was refused %s (%s)", e.Username, e.Object, e.Reason)
	}

	t.Run("without key permissions", func(t *testing.T) {
		// The documented rules without their key patterns: SCAN runs,
		// every per-key command is refused.
		for _, rules := range redistest.ACLRules(t, "../../docs/redis-acl.md", "redisbot", password) {
			rules = slices.DeleteFunc(rules, func(r string) bool { return strings.Contains(r, "~") })
			if err := root.ACLSetUser(ctx, "nokeys", rules...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		inst := inst
		inst.Username = "nokeys"
		scan, err := New(testTimeout).Scan(ctx, []handlers.Instance{inst}, options())
		var pe *handlers.ProbeError
		if scan != nil || !errors.As(err, &pe) || pe.Class != handlers.ClassNoPerm ||
			!strings.Contains(err.Error(), "NOPERM this user has no permissions to access one of the keys") ||
			strings.Contains(err.Error(), password) {
			t.Errorf("scan without key permissions: %v, %v; want a noperm ProbeError", scan, err)
		}
	})

	t.Run("CONFIG GET denied", func(t *testing.T) {
		if err := root.ConfigSet(ctx, "active-defrag-max-scan-fields", "77").Err(); err != nil {
			t.Fatal(err)
		}
		if err := root.ACLSetUser(ctx, "noconfig", append(redistest.ACLRules(t, "../../docs/redis-acl.md", "redisbot", password)[0], "-config|get")...).Err(); err != nil {
			t.Fatal(err)
		}
		for _, rules := range redistest.ACLRules(t, "../../docs/redis-acl.md", "redisbot", password)[1:] {
			root.ACLSetUser(ctx, "noconfig", rules...)
		}
		inst := inst
		inst.Username = "noconfig"
		scan, err := New(testTimeout).Scan(ctx, []handlers.Instance{inst}, options())
		if err != nil || scan.DefragMaxScanFields != handlers.DefaultDefragMaxScanFields || !scan.Complete {
			t.Errorf("scan without CONFIG GET: %v, %v; want a complete scan with the default defrag fields", scan, err)
		}
	})
}

// Progress is paced by the injected clock, and the ETA follows from the
// rate so far.
func TestProgress(t *testing.T) {
	start := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	now := start
	var got []handlers.KeyScanProgress
	r := &run{now: func() time.Time { return now }, start: start,
		opts: handlers.KeyScanOptions{Limit: 800, Progress: func(p handlers.KeyScanProgress) { got = append(got, p) }}}
	r.estimate.Store(1000) // capped by the limit: 800
	for _, step := range []struct {
		after   time.Duration
		scanned int64
	}{{0, 0}, {500 * time.Millisecond, 100}, {10 * time.Second, 200}, {10500 * time.Millisecond, 300}} {
		now = start.Add(step.after)
		r.claimed.Store(step.scanned)
		r.report()
	}
	now = start.Add(12 * time.Second)
	r.progress(800, true)
	want := []handlers.KeyScanProgress{
		{Scanned: 0, Estimate: 800},
		{Scanned: 200, Walked: 200, Estimate: 800, Elapsed: 10 * time.Second, ETA: 30 * time.Second},
		{Scanned: 800, Walked: 800, Estimate: 800, Elapsed: 12 * time.Second, Done: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("progress reports:\n%+v\nwant\n%+v", got, want)
	}
}

// A password that reaches an error message is not passed on.
func TestAssembleRedacts(t *testing.T) {
	const password = "s3cret-pass"
	r := &run{opts: withDefaults(handlers.KeyScanOptions{}, 0), now: time.Now, start: time.Now()}
	node := func(name string, err error) *nodeScan {
		n := &nodeScan{inst: handlers.Instance{Name: name, Password: password}, run: r, throttle: newThrottle(r.opts, time.Now)}
		if err != nil {
			n.fail(handlers.ClassAuth, err)
		} else {
			n.stats, n.complete = handlers.NewKeyStats(handlers.DefaultThresholds(), 0), true
		}
		return n
	}
	leak := errors.New("WRONGPASS for " + password)
	scan, err := assemble(context.Background(), r, []*nodeScan{node("a", nil), node("b", leak)}, time.Second)
	if err != nil || len(scan.NodeErrors) != 1 || strings.Contains(scan.NodeErrors[0].Error, password) ||
		scan.NodeErrors[0].Class != handlers.ClassAuth || scan.Complete {
		t.Errorf("one node failed: %+v, %v", scan, err)
	}
	_, err = assemble(context.Background(), r, []*nodeScan{node("b", leak)}, time.Second)
	if err == nil || strings.Contains(err.Error(), password) || !errors.Is(err, leak) || handlers.ClassOf(err) != handlers.ClassAuth {
		t.Errorf("every node failed: %v", err)
	}
}
