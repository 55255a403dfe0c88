package handlers_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// The fragmentation tree on real redis-server states, built the way
// production gets there: each branch is decided by the INFO component that
// really carries the excess, and what a finding promises (MEMORY PURGE
// returns N bytes, or nothing) is checked against the server.

// fragServer starts a server for one test; SHUTDOWN NOSAVE at the end also
// ends a save child still running, which a kill of the parent would leave
// writing into the test's directory.
func fragServer(t *testing.T, args ...string) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.StartT(t, args...)
	c := srv.Client()
	t.Cleanup(func() {
		_ = c.ShutdownNoSave(context.Background()).Err()
		_ = c.Close()
	})
	return srv, c
}

// probeFrag probes the server as redisbot does and walks the tree.
func probeFrag(t *testing.T, srv *redistest.Server, prev *handlers.Snapshot) (*handlers.Snapshot, handlers.FragAnalysis) {
	t.Helper()
	p := probe.New(5*time.Second, nil)
	defer p.Close()
	snap, err := p.Probe(context.Background(), handlers.Instance{Name: "frag-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return snap, handlers.FragTree(handlers.Input{Cur: snap, Prev: prev, T: handlers.DefaultThresholds()})
}

func fragFinding(a handlers.FragAnalysis, id string) (handlers.Finding, bool) {
	for _, f := range a.Findings {
		if f.ID == id {
			return f, true
		}
	}
	return handlers.Finding{}, false
}

func infoInt(t *testing.T, s *handlers.Snapshot, key string) int64 {
	t.Helper()
	n, ok := s.Int(key)
	if !ok {
		t.Fatalf("INFO has no %s", key)
	}
	return n
}

func logTree(t *testing.T, a handlers.FragAnalysis) {
	t.Helper()
	for _, s := range a.Steps {
		t.Logf("%s -> %s", s.Question, s.Answer)
	}
	for _, f := range a.Findings {
		t.Logf("%s %s: %s", f.Severity, f.ID, f.Summary)
	}
}

// settle waits until lazy freeing is done and the server's cron has sampled
// the allocator again (INFO's allocator_* and RSS are refreshed by cron).
func settle(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "lazyfree_pending_objects:0\r\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lazy free did not finish within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
}

// mixedFill writes n values of six sizes between 40 and 600 bytes, so that
// they spread over several jemalloc size classes, and returns their keys.
func mixedFill(t *testing.T, c *redis.Client, prefix string, n int, rng *rand.Rand) []string {
	t.Helper()
	ctx := context.Background()
	sizes := []int{40, 90, 150, 230, 350, 600}
	values := make([]string, len(sizes))
	for i, s := range sizes {
		values[i] = strings.Repeat("v", s)
	}
	keys := make([]string, n)
	for start := 0; start < n; start += 10000 {
		p := c.Pipeline()
		for i := start; i < min(start+10000, n); i++ {
			keys[i] = prefix + strconv.Itoa(i)
			p.Set(ctx, keys[i], values[rng.IntN(len(values))], 0)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
	return keys
}

// deleteShare deletes each key with probability share, at random: the
// survivors pin the pages the deleted values shared with them.
func deleteShare(t *testing.T, c *redis.Client, keys []string, share float64, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	p := c.Pipeline()
	for i, k := range keys {
		if rng.Float64() < share {
			p.Del(ctx, k)
		}
		if i%10000 == 9999 || i == len(keys)-1 {
			if _, err := p.Exec(ctx); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
}

// Free pages retained: a fill then FLUSHALL ASYNC with jemalloc's background
// thread off leaves the freed pages with the allocator (allocator_rss). The
// finding names MEMORY PURGE and how much it returns; the purge then really
// returns most of it.
func TestFragFreePagesRetainedRealServer(t *testing.T) {
	srv, c := fragServer(t)
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "jemalloc-bg-thread", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.Fill(ctx, c, "page:", 100_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.FlushAllAsync(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	settle(t, c)

	snap, a := probeFrag(t, srv, nil)
	logTree(t, a)
	post, ok := fragFinding(a, "frag-post-peak")
	if !ok || post.Severity != handlers.SeverityWarning {
		t.Fatalf("frag-post-peak = %+v (fired %v), want a warning", post, ok)
	}
	if !strings.Contains(post.Summary, "MEMORY PURGE returns up to") || !containsAction(post.Actions, handlers.ActionMemoryPurge) {
		t.Errorf("frag-post-peak does not name MEMORY PURGE as the action: %s %v", post.Summary, post.Actions)
	}
	promised := evidenceBytes(t, post, "purgeable_bytes")
	if promised < 50<<20 {
		t.Fatalf("purgeable_bytes = %d, want the flushed pages (about 100 MiB)", promised)
	}
	if high, ok := fragFinding(a, "frag-high"); ok && high.Severity != handlers.SeverityInfo {
		t.Errorf("frag-high = %s, want info: a purge cures it (%s)", high.Severity, high.Summary)
	}
	if _, ok := fragFinding(a, "frag-rss-overhead"); ok {
		t.Error("frag-rss-overhead fired: the excess is free pages inside the allocator, not RSS overhead")
	}
	if _, ok := fragFinding(a, "frag-noise"); ok {
		t.Error("frag-noise fired on a server holding about 100 MiB of free pages")
	}

	if err := c.Do(ctx, "MEMORY", "PURGE").Err(); err != nil {
		t.Fatal(err)
	}
	settle(t, c)
	after, a2 := probeFrag(t, srv, snap)
	dropped := infoInt(t, snap, "used_memory_rss") - infoInt(t, after, "used_memory_rss")
	t.Logf("promised %d bytes, RSS dropped by %d (%.0f%%)", promised, dropped, 100*float64(dropped)/float64(promised))
	if float64(dropped) < 0.8*float64(promised) {
		t.Errorf("MEMORY PURGE returned %d bytes of the %d promised", dropped, promised)
	}
	if f, ok := fragFinding(a2, "frag-post-peak"); ok {
		t.Errorf("frag-post-peak still fires after the purge: %s", f.Summary)
	}
}

// Holes: values of mixed sizes with two thirds deleted at random leave
// pages that each keep a few live values (allocator_frag). The peak is then
// well over twice today's data, and frag-high still keeps its level: a purge
// does not help, and the server confirms it.
func TestFragHolesRealServer(t *testing.T) {
	srv, c := fragServer(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	keys := mixedFill(t, c, "hole:", 300_000, rng)
	deleteShare(t, c, keys, 2.0/3, rng)
	settle(t, c)

	snap, a := probeFrag(t, srv, nil)
	logTree(t, a)
	used, peak := infoInt(t, snap, "used_memory"), infoInt(t, snap, "used_memory_peak")
	if peak < 2*used {
		t.Fatalf("peak %d is not 2x used_memory %d: the state does not test the post-peak branch", peak, used)
	}
	high, ok := fragFinding(a, "frag-high")
	if !ok || high.Severity < handlers.SeverityWarning {
		t.Fatalf("frag-high = %+v (fired %v), want warning or critical under a 2x peak", high, ok)
	}
	ratio, _ := snap.Float("mem_fragmentation_ratio")
	if want := map[bool]handlers.Severity{true: handlers.SeverityCritical, false: handlers.SeverityWarning}[ratio >= 2]; high.Severity != want {
		t.Errorf("frag-high = %s at ratio %.2f, want %s", high.Severity, ratio, want)
	}
	if !strings.Contains(high.Summary, "holes in pages still in use") || !strings.Contains(high.Summary, "MEMORY PURGE will not return them") {
		t.Errorf("frag-high does not say holes carry it and a purge will not help: %s", high.Summary)
	}
	if f, ok := fragFinding(a, "frag-post-peak"); ok {
		t.Errorf("frag-post-peak fired on holes: %s", f.Summary)
	}

	if err := c.Do(ctx, "MEMORY", "PURGE").Err(); err != nil {
		t.Fatal(err)
	}
	settle(t, c)
	after, _ := probeFrag(t, srv, snap)
	excess := infoInt(t, snap, "mem_fragmentation_bytes")
	dropped := infoInt(t, snap, "used_memory_rss") - infoInt(t, after, "used_memory_rss")
	t.Logf("excess %d bytes, MEMORY PURGE returned %d (%.1f%%)", excess, dropped, 100*float64(dropped)/float64(excess))
	if float64(dropped) > 0.2*float64(excess) {
		t.Errorf("MEMORY PURGE returned %d of %d bytes: the excess was not holes", dropped, excess)
	}
}

// A fork on a state already fragmented (the previous sample was taken
// before it) hides nothing: frag-high keeps its level. On a clean state,
// what rose since the sample before the fork is held back until it ends.
func TestFragForkRealServer(t *testing.T) {
	ctx := context.Background()
	startSave := func(t *testing.T, c *redis.Client) {
		t.Helper()
		// 1 ms per key: the child takes minutes, far longer than the test.
		if err := c.ConfigSet(ctx, "rdb-key-save-delay", "1000").Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.BgSave(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	inFork := func(t *testing.T, s *handlers.Snapshot) {
		t.Helper()
		if n, _ := s.Int("rdb_bgsave_in_progress"); n != 1 {
			t.Fatal("no BGSAVE in progress at the probe")
		}
	}

	t.Run("already fragmented", func(t *testing.T) {
		srv, c := fragServer(t)
		rng := rand.New(rand.NewPCG(3, 4))
		keys := mixedFill(t, c, "hole:", 200_000, rng)
		deleteShare(t, c, keys, 2.0/3, rng)
		settle(t, c)
		prev, before := probeFrag(t, srv, nil)
		was, ok := fragFinding(before, "frag-high")
		if !ok || was.Severity < handlers.SeverityWarning {
			t.Fatalf("before the fork frag-high = %+v (fired %v)", was, ok)
		}

		startSave(t, c)
		cur, a := probeFrag(t, srv, prev)
		inFork(t, cur)
		logTree(t, a)
		high, ok := fragFinding(a, "frag-high")
		if !ok || high.Severity != was.Severity {
			t.Errorf("frag-high during the fork = %s, was %s before it: a fork must not hide it (%s)", high.Severity, was.Severity, high.Summary)
		}
		tr, ok := fragFinding(a, "frag-fork-transient")
		if !ok || !strings.Contains(tr.Summary, "kept: frag-high") {
			t.Errorf("frag-fork-transient = %+v (fired %v), want it to say frag-high is kept", tr, ok)
		}
	})

	t.Run("clean before the fork", func(t *testing.T) {
		srv, c := fragServer(t)
		rng := rand.New(rand.NewPCG(5, 6))
		keys := mixedFill(t, c, "hole:", 200_000, rng)
		settle(t, c)
		prev, before := probeFrag(t, srv, nil)
		if f, ok := fragFinding(before, "frag-high"); ok {
			t.Fatalf("frag-high before the fork on a clean state: %s", f.Summary)
		}

		startSave(t, c)
		// What the instance does while the child runs: here, a wave of
		// deletes that leaves holes the previous sample did not have.
		deleteShare(t, c, keys, 2.0/3, rng)
		settle(t, c)
		cur, a := probeFrag(t, srv, prev)
		inFork(t, cur)
		logTree(t, a)
		high, ok := fragFinding(a, "frag-high")
		if !ok || high.Severity != handlers.SeverityInfo || !strings.Contains(high.Summary, "Held at info while the BGSAVE runs") {
			t.Errorf("frag-high during the fork = %+v (fired %v), want held at info", high, ok)
		}
		// The same sample without the comparison is a real frag-high: what
		// is held back is only held until the fork ends.
		if undamped, _ := fragFinding(handlers.FragTree(handlers.Input{Cur: cur, T: handlers.DefaultThresholds()}), "frag-high"); undamped.Severity < handlers.SeverityWarning {
			t.Errorf("without a previous sample frag-high = %s, want it at its level", undamped.Severity)
		}
		tr, ok := fragFinding(a, "frag-fork-transient")
		if !ok || !strings.Contains(tr.Summary, "held until it ends: frag-high") {
			t.Errorf("frag-fork-transient = %+v (fired %v), want it to name frag-high as held", tr, ok)
		}
	})
}

// Noise is a small absolute excess, not a small data set.
func TestFragNoiseRealServer(t *testing.T) {
	ctx := context.Background()
	t.Run("tiny data set, big ratio, a few MiB", func(t *testing.T) {
		srv, c := fragServer(t)
		if err := redistest.Fill(ctx, c, "tiny:", 1000, 100, 0); err != nil {
			t.Fatal(err)
		}
		settle(t, c)
		snap, a := probeFrag(t, srv, nil)
		logTree(t, a)
		ratio, _ := snap.Float("mem_fragmentation_ratio")
		if ratio < handlers.DefaultThresholds().FragWarning {
			t.Fatalf("ratio %.2f: the state does not have the big ratio this test needs", ratio)
		}
		if f, ok := fragFinding(a, "frag-noise"); !ok || f.Severity != handlers.SeverityInfo {
			t.Errorf("frag-noise = %+v (fired %v), want info", f, ok)
		}
		if f, ok := fragFinding(a, "frag-high"); ok {
			t.Errorf("frag-high fired on noise: %s", f.Summary)
		}
		if r, ok := handlers.EffectiveFragRatio(snap, handlers.DefaultThresholds()); ok {
			t.Errorf("EffectiveFragRatio = %.2f, want none on noise", r)
		}
	})
	t.Run("small data set, hundreds of MiB beyond it", func(t *testing.T) {
		srv, c := fragServer(t)
		if err := c.ConfigSet(ctx, "jemalloc-bg-thread", "no").Err(); err != nil {
			t.Fatal(err)
		}
		if err := redistest.Fill(ctx, c, "big:", 200_000, 1000, 0); err != nil {
			t.Fatal(err)
		}
		// Keep one key in 40: about 5 MiB of data.
		p := c.Pipeline()
		for i := range 200_000 {
			if i%40 != 0 {
				p.Del(ctx, "big:"+strconv.Itoa(i))
			}
			if i%10000 == 9999 {
				if _, err := p.Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		settle(t, c)
		snap, a := probeFrag(t, srv, nil)
		logTree(t, a)
		used, excess := infoInt(t, snap, "used_memory"), infoInt(t, snap, "mem_fragmentation_bytes")
		if used > 50<<20 || excess < 100<<20 {
			t.Fatalf("used_memory %d, excess %d: not a small data set under a big excess", used, excess)
		}
		if f, ok := fragFinding(a, "frag-noise"); ok {
			t.Errorf("frag-noise fired with %d bytes beyond %d of data: %s", excess, used, f.Summary)
		}
		if handlers.Worst(a.Findings) < handlers.SeverityWarning {
			t.Errorf("nothing above info with %d bytes beyond %d of data", excess, used)
		}
		if _, ok := handlers.EffectiveFragRatio(snap, handlers.DefaultThresholds()); !ok {
			t.Error("EffectiveFragRatio reports no ratio for hundreds of MiB beyond the data")
		}
	})
}

func containsAction(as []handlers.Action, a handlers.Action) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func evidenceBytes(t *testing.T, f handlers.Finding, name string) int64 {
	t.Helper()
	fact, ok := f.Evidence.Get(name)
	if !ok {
		t.Fatalf("%s has no evidence %s", f.ID, name)
	}
	n, ok := fact.Value.(int64)
	if !ok {
		t.Fatalf("%s evidence %s = %#v", f.ID, name, fact.Value)
	}
	return n
}
