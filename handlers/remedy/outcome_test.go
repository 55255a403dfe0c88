package remedy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
)

func progressAt(elapsed time.Duration, rss, fragBytes int64, ratio float64) remedy.Progress {
	return remedy.Progress{At: time.Unix(1_800_000_000, 0).Add(elapsed), Elapsed: elapsed, RSS: rss, Used: 200 << 20,
		AllocFragBytes: fragBytes, AllocFragRatio: ratio, FragRatio: float64(rss) / (200 << 20)}
}

func TestWatchOutcome(t *testing.T) {
	first := progressAt(0, 440<<20, 206<<20, 1.92)
	cases := []struct {
		name         string
		res          remedy.WatchResult
		ok, noEffect bool
		summary      []string
		afterRSS     string
	}{
		{name: "reclaimed, read after the settle",
			res: remedy.WatchResult{Reason: remedy.WatchTarget, Why: "allocator fragmentation fell to 1.03, at or under the target 1.10", TurnedOff: true,
				First: first, Last: progressAt(15*time.Second, 330<<20, 6<<20, 1.03), Final: progressAt(30*time.Second, 240<<20, 6<<20, 1.03)},
			ok: true, afterRSS: "240.0 MiB",
			summary: []string{"Active defrag stopped after 15s: allocator fragmentation fell to 1.03", "RSS 440.0 MiB → 240.0 MiB (-200.0 MiB)",
				"allocator fragmentation 1.92 → 1.03 (206.0 MiB → 6.0 MiB in partly used pages)", "mem_fragmentation_ratio 2.20 → 1.20", "Defrag is off."}},
		{name: "nothing moved: no effect",
			res: remedy.WatchResult{Reason: remedy.WatchStalled, Why: "no progress for 3 checks in a row", TurnedOff: true,
				First: first, Last: progressAt(90*time.Second, 440<<20, 206<<20, 1.92), Final: progressAt(105*time.Second, 440<<20, 206<<20, 1.92)},
			ok: true, noEffect: true, afterRSS: "440.0 MiB", summary: []string{"RSS 440.0 MiB → 440.0 MiB (+0 B)"}},
		{name: "RSS grew: failed, with what to do",
			res: remedy.WatchResult{Reason: remedy.WatchRSSGrowth, Why: "RSS beyond the data grew by 100.0 MiB while defrag ran", TurnedOff: true,
				First: first, Last: progressAt(60*time.Second, 540<<20, 200<<20, 1.90)},
			afterRSS: "540.0 MiB",
			summary:  []string{"(+100.0 MiB)", "Plan a restart or a failover to rebuild the memory", "(read as defrag stopped"}},
		{name: "could not turn it off",
			res: remedy.WatchResult{Reason: remedy.WatchTarget, Why: "allocator fragmentation fell to 1.05", Err: errors.New("turning active defrag off: NOPERM"),
				First: first, Last: progressAt(15*time.Second, 330<<20, 6<<20, 1.05)},
			afterRSS: "330.0 MiB",
			summary:  []string{"Turning activedefrag off FAILED", "Turn it off by hand", "Error: turning active defrag off: NOPERM."}},
		{name: "no sample at all",
			res: remedy.WatchResult{Reason: remedy.WatchError, Why: "the bot could not read the instance 3 times in a row", TurnedOff: true,
				Err: errors.New("3 samples in a row failed, the last: connection refused")},
			ok: true, summary: []string{"its effect is unknown", "connection refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.res.Outcome()
			if o.OK != tc.ok || o.NoEffect != tc.noEffect || o.Details["stopped"] != tc.res.Reason {
				t.Errorf("OK %v, no effect %v, stopped %q", o.OK, o.NoEffect, o.Details["stopped"])
			}
			for _, want := range tc.summary {
				if !strings.Contains(o.Message, want) {
					t.Errorf("message lacks %q:\n%s", want, o.Message)
				}
			}
			if after, ok := handlers.Evidence(o.After).Get("used_memory_rss"); tc.afterRSS != "" && (!ok || after.Text != tc.afterRSS) {
				t.Errorf("after RSS %q, want %q", after.Text, tc.afterRSS)
			}
		})
	}
}

// purgeExecutor is an executor whose purge settles for settle.
func purgeExecutor(t *testing.T, settle time.Duration) *remedy.Executor {
	e, _ := executor(t)
	e.PurgeSettle = settle
	return e
}

func TestPurgeWithNothingToPurgeIsNeutral(t *testing.T) {
	srv := redistest.StartT(t)
	inst := handlers.Instance{Name: "empty-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	e := purgeExecutor(t, 500*time.Millisecond)
	plan := remedy.Plan{Instance: inst.Name, Action: handlers.ActionMemoryPurge, Commands: []string{"MEMORY PURGE"}}
	o := e.Execute(context.Background(), plan, inst)
	if !o.OK || !o.NoEffect || !strings.Contains(o.Message, "nothing to give back") {
		t.Errorf("purge of an empty server: OK %v, no effect %v, %q", o.OK, o.NoEffect, o.Message)
	}
}

// Free pages jemalloc retains: keys written, then all deleted with the
// background purge thread off, so nothing hands the pages back but MEMORY
// PURGE. What it returned is measured after the settle.
func TestPurgeReturnsRetainedPages(t *testing.T) {
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "jemalloc-bg-thread", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.Fill(ctx, c, "purge:", 300_000, 400, 0); err != nil {
		t.Fatal(err)
	}
	// One script deletes them all in well under a second: jemalloc's decay
	// (10 s) gives back little on its own meanwhile, as it would during a
	// slow client-side delete.
	del := "for i = 0, tonumber(ARGV[1]) - 1 do redis.call('DEL', 'purge:' .. i) end return 1"
	if err := c.Eval(ctx, del, nil, 300_000).Err(); err != nil {
		t.Fatal(err)
	}
	inst := handlers.Instance{Name: "retained-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	e, p := executor(t)
	plan := planFor(t, p, inst, remedy.Request{Action: handlers.ActionMemoryPurge})
	if b := blocked(plan); b != "" {
		t.Fatalf("purge blocked: %s", b)
	}
	o := e.Execute(ctx, plan, inst)
	before, _ := handlers.Evidence(o.Before).Get("used_memory_rss")
	after, _ := handlers.Evidence(o.After).Get("used_memory_rss")
	returned := before.Value.(int64) - after.Value.(int64)
	if !o.OK || o.NoEffect || returned < 50<<20 || o.Details["rss_returned"] != handlers.HumanBytes(returned) {
		t.Errorf("OK %v, no effect %v, RSS %s → %s, details %v: %s", o.OK, o.NoEffect, before.Text, after.Text, o.Details, o.Message)
	}
	t.Logf("MEMORY PURGE returned %s (RSS %s → %s), measured %s after", handlers.HumanBytes(returned), before.Text, after.Text, e.PurgeSettle)
}

// A config-set to the value the server already has ran and changed
// nothing: neutral, saying so. A real change is a plain success.
func TestConfigSetToTheSameValueIsNeutral(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory-policy", "allkeys-lru")
	inst := handlers.Instance{Name: "cache-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	e, p := executor(t)
	for _, tc := range []struct {
		policy   string
		noEffect bool
	}{{"allkeys-lru", true}, {"allkeys-lfu", false}} {
		plan := planFor(t, p, inst, remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": "maxmemory-policy", "value": tc.policy}})
		o := e.Execute(context.Background(), plan, inst)
		if !o.OK || o.NoEffect != tc.noEffect {
			t.Errorf("set policy %s: OK %v, no effect %v, %q", tc.policy, o.OK, o.NoEffect, o.Message)
		}
		if tc.noEffect && o.Message != "maxmemory-policy was already allkeys-lru: nothing changed" {
			t.Errorf("message %q", o.Message)
		}
	}
}
