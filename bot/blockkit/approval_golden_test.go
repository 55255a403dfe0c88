package blockkit

import (
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// planSnapshot is a fragmented Redis as INFO and CONFIG GET describe it:
// 1.9 GiB of RSS for 1.0 GiB of data, 900 MiB of it in partly used pages.
func planSnapshot(version string, extra ...string) *handlers.Snapshot {
	info := handlers.Info{
		"redis_version": version, "role": "master", "loading": "0", "cluster_enabled": "0",
		"mem_allocator": "jemalloc-5.3.0", "used_memory": "1073741824", "used_memory_rss": "2040109465",
		"mem_fragmentation_ratio": "1.90", "allocator_frag_ratio": "1.85", "allocator_frag_bytes": "943718400",
		"allocator_rss_bytes": "20971520", "instantaneous_ops_per_sec": "1200", "connected_slaves": "0",
		"pubsub_channels": "0", "number_of_cached_scripts": "0", "rdb_bgsave_in_progress": "0", "aof_rewrite_in_progress": "0",
		"rdb_last_bgsave_status": "ok", "rdb_changes_since_last_save": "120",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		info[extra[i]] = extra[i+1]
	}
	return &handlers.Snapshot{Instance: "cache-1", Info: info,
		Config: map[string]string{"activedefrag": "no", "save": "3600 1", "maxmemory": "0", "maxmemory-policy": "noeviction"}}
}

func planView(state string, p remedy.Plan) ApprovalView {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	v := ApprovalView{Instance: "cache-1", State: state, RequestedBy: "U0OPERATOR", RequestedAt: now,
		ExpiresAt: now.Add(15 * time.Minute), Required: 1, Plan: p}
	if state != StateRefused {
		v.ID = "0123456789ab"
	}
	return v
}

// TestApprovalGolden pins the plan text an approver reads: passing checks
// say what was found in their own words, failed ones say what failed and,
// under them, what to do; a refused request has no approval id, no empty
// blocks, and offers only alternatives that would run here.
func TestApprovalGolden(t *testing.T) {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	inst := handlers.Instance{Name: "cache-1", Thresholds: handlers.DefaultThresholds()}
	restartable := inst
	restartable.Remediation.RestartMethod = "shutdown"
	pol := remedy.DefaultPolicy()
	defragOn := remedy.Request{Instance: "cache-1", Action: handlers.ActionDefragOn}

	cases := []struct {
		name string
		view ApprovalView
		// text must (not) appear in the rendered message.
		want, notWant []string
	}{
		{name: "approval-defrag-pending",
			// 7.2.6: the crash fixes are in, the RSS defect warns.
			view: planView("pending", remedy.MakePlan(defragOn, inst, planSnapshot("7.2.6"), remedy.Facts{handlers.FactDefragSupported: "yes"}, pol)),
			want: []string{":white_check_mark: this build supports active defrag — the server accepted activedefrag yes before",
				":white_check_mark: no known active-defrag crash in this version — redis 7.2.6: none known",
				":warning: no other known active-defrag defect — redis 7.2.6:", "↳ defrag may still help"},
			notWant: []string{"built without defrag support", "Consider instead"}},
		{name: "approval-defrag-refused",
			view: planView(StateRefused, remedy.MakePlan(defragOn, restartable, planSnapshot("7.2.4"), remedy.Facts{handlers.FactDefragSupported: "no"}, pol)),
			want: []string{"defrag-on on cache-1 · REFUSED", ":x: this build supports active defrag — the server refused",
				"↳ rebuild the memory with failover or restart instead", ":x: no known active-defrag crash in this version — redis 7.2.4:",
				"*Would have run*", "*Consider instead*, its preconditions hold now: `restart` (`/redis restart cache-1`)"},
			notWant: []string{"approval ``", "`failover`"}},
		{name: "approval-restart-refused",
			view:    planView(StateRefused, remedy.MakePlan(remedy.Request{Instance: "cache-1", Action: handlers.ActionRestart}, inst, planSnapshot("7.4.6"), nil, pol)),
			want:    []string{":x: a restart method is configured — no restart method for this instance", "↳ set remediation.restart_method"},
			notWant: []string{"approval ``", "*Commands*", "*Would have run*", "```\n\n```", "Consider instead"}},
	}
	purge := planView("done", remedy.MakePlan(remedy.Request{Instance: "cache-1", Action: handlers.ActionMemoryPurge}, inst, planSnapshot("7.4.6"), nil, pol))
	purge.Approvers = []string{"U0LEAD"}
	purge.Outcome = &remedy.Outcome{OK: true, NoEffect: true, Duration: 2*time.Second + 40*time.Millisecond,
		Message: "MEMORY PURGE found nothing to give back: RSS 1.9 GiB before, 1.9 GiB after",
		Before:  []handlers.Fact{{Name: "used_memory_rss", Text: "1.9 GiB"}}, After: []handlers.Fact{{Name: "used_memory_rss", Text: "1.9 GiB"}},
		Details: map[string]string{"rss_returned": "0 B"}}
	cases = append(cases, struct {
		name          string
		view          ApprovalView
		want, notWant []string
	}{name: "approval-purge-no-effect", view: purge,
		want:    []string{"memory-purge on cache-1 · NO EFFECT", ":white_circle: *No effect*: MEMORY PURGE found nothing to give back"},
		notWant: []string{":large_green_circle:", "DONE"}})

	// defrag-on's outcome comes from the watch: before and after numbers
	// from its first and settled samples (the recorded 7.4.1 10M-key run).
	sample := func(elapsed time.Duration, rss, fragBytes int64, ratio, memRatio float64) remedy.Progress {
		return remedy.Progress{At: now.Add(elapsed), Elapsed: elapsed, RSS: rss, Used: 1215512371, AllocFragBytes: fragBytes, AllocFragRatio: ratio, FragRatio: memRatio}
	}
	watched := remedy.WatchResult{Reason: remedy.WatchStalled, TurnedOff: true,
		Why:   "no progress for 3 checks in a row (45s): 132.3 MiB fragmented, defrag idle (active_defrag_running 1%)",
		First: sample(0, 2332665446, 1080242995, 1.89, 1.92), Last: sample(105*time.Second, 1391564390, 138726604, 1.11, 1.14),
		Final: sample(120*time.Second, 1391564390, 138726604, 1.11, 1.14)}
	outcome := watched.Outcome()
	defragDone := planView("done", remedy.MakePlan(defragOn, inst, planSnapshot("7.4.6"), remedy.Facts{handlers.FactDefragSupported: "yes"}, pol))
	defragDone.Approvers, defragDone.Outcome = []string{"U0LEAD"}, &outcome
	cases = append(cases, struct {
		name          string
		view          ApprovalView
		want, notWant []string
	}{name: "approval-defrag-watched", view: defragDone,
		want: []string{"defrag-on on cache-1 · DONE", ":large_green_circle: *Done*: Active defrag stopped after 1m45s: no progress for 3 checks",
			"• used_memory_rss: 2.2 GiB → 1.3 GiB", "• allocator_frag_bytes: 1.0 GiB → 132.3 MiB", "• allocator_frag_ratio: 1.89 → 1.11", "• stopped: stalled"}})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := RenderApproval(tc.view, now)
			r := Reply{Messages: []Message{m}}
			checkReply(t, r, map[string]bool{"<@U0OPERATOR>": true, "<@U0LEAD>": true})
			text := messageText(m)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(text, w) {
					t.Errorf("has %q:\n%s", w, text)
				}
			}
			if tc.view.State != "pending" && countButtons(m) != 0 {
				t.Errorf("%s approval has buttons", tc.view.State)
			}
			checkGolden(t, tc.name, r)
		})
	}
}

// A passing check never carries its failure wording or a hint.
func TestPassingChecksReadAsPassing(t *testing.T) {
	inst := handlers.Instance{Name: "cache-1", Thresholds: handlers.DefaultThresholds(), Remediation: handlers.Remediation{FailoverMethod: "failover"}}
	snap := planSnapshot("7.4.6", "connected_slaves", "1", "slave0", "ip=10.0.0.2,port=6379,state=online,offset=100,lag=0")
	for _, a := range []handlers.Action{handlers.ActionMemoryPurge, handlers.ActionDefragOn, handlers.ActionFailover, handlers.ActionBGSave} {
		p := remedy.MakePlan(remedy.Request{Instance: "cache-1", Action: a}, inst, snap, remedy.Facts{handlers.FactDefragSupported: "yes"}, remedy.DefaultPolicy())
		for _, c := range p.Checks {
			if !c.OK {
				continue
			}
			for _, failure := range []string{"no replica", "without defrag support", "refused", "use failover", "must not"} {
				if strings.Contains(c.Detail, failure) {
					t.Errorf("%s: passing check %q reads %q", a, c.Name, c.Detail)
				}
			}
			if c.Hint != "" {
				t.Errorf("%s: passing check %q has hint %q", a, c.Name, c.Hint)
			}
		}
		text := messageText(RenderApproval(planView("pending", p), time.Now()))
		if strings.Contains(text, "↳") && a != handlers.ActionDefragOn {
			t.Errorf("%s: a hint under a passing plan:\n%s", a, text)
		}
	}
}

// TestFailoverPlanGolden pins what a failover's plan tells the approver on
// each topology: the old primary comes back as a replica
// (REDISBOT_REPLICAOF for restart_command, CONFIG REWRITE for shutdown),
// how long writes pause, the cluster's replica judgement, and a shutdown
// restart without a config file as a failed check with its hint.
func TestFailoverPlanGolden(t *testing.T) {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	replica := []string{"connected_slaves", "1", "slave0", "ip=10.0.0.2,port=6379,state=online,offset=100,lag=0"}
	withFile := append([]string{"config_file", "/etc/redis/cache-1.conf"}, replica...)
	failover := remedy.Request{Instance: "cache-1", Action: handlers.ActionFailover}
	pol := remedy.DefaultPolicy()
	inst := func(r handlers.Remediation) handlers.Instance {
		i := handlers.Instance{Name: "cache-1", Thresholds: handlers.DefaultThresholds(), Remediation: r}
		if r.FailoverMethod == remedy.FailoverSentinel {
			i.Sentinel = &handlers.Sentinel{Master: "mymaster", Addrs: []string{"10.0.0.9:26379"}}
		}
		return i
	}
	fragmented := remedy.Facts{remedy.FactSlotsMigrating: "no", remedy.FactReplica: "10.0.0.2:6379",
		remedy.FactReplicaMemory: "mem_fragmentation_ratio 1.88, RSS 1.9 GiB for 1.0 GiB of data", remedy.FactReplicaFragmented: "yes"}
	for _, tc := range []struct {
		name, state string
		plan        remedy.Plan
		want        []string
	}{
		{"approval-failover-command", "pending", remedy.MakePlan(failover,
			inst(handlers.Remediation{FailoverMethod: "failover", RestartMethod: "command", RestartCommand: []string{"/usr/local/bin/restart-redis"}, Failback: true}),
			planSnapshot("7.4.6", replica...), nil, pol),
			[]string{"REDISBOT_REPLICAOF=\"&lt;host&gt; &lt;port&gt;\" of the new primary", "FAILOVER gives up after 10 s",
				"get READONLY until the fail-back", ":white_check_mark: the old primary comes back as a replica — restart_command gets REDISBOT_REPLICAOF"}},
		{"approval-failover-shutdown-refused", StateRefused, remedy.MakePlan(failover,
			inst(handlers.Remediation{FailoverMethod: "failover", RestartMethod: "shutdown"}), planSnapshot("7.4.6", replica...), nil, pol),
			[]string{":x: the old primary comes back as a replica — no config file (config_file is empty)", "↳ start the server from a config file"}},
		{"approval-failover-sentinel", "pending", remedy.MakePlan(failover,
			inst(handlers.Remediation{FailoverMethod: remedy.FailoverSentinel, RestartMethod: "shutdown"}), planSnapshot("7.4.6", withFile...), nil, pol),
			[]string{"CLIENT PAUSE 30000 WRITE", "SENTINEL FAILOVER mymaster", "CONFIG REWRITE (its config file then names the new master",
				"at most 30s", ":white_check_mark: the old primary comes back as a replica — config file /etc/redis/cache-1.conf"}},
		{"approval-failover-cluster", "pending", remedy.MakePlan(failover,
			inst(handlers.Remediation{FailoverMethod: remedy.FailoverCluster, RestartMethod: "shutdown"}), planSnapshot("7.4.6", append([]string{"cluster_enabled", "1"}, replica...)...), fragmented, pol),
			[]string{"restart the fragmented replica 10.0.0.2:6379 first", "rejoins from its nodes.conf as a replica",
				":white_check_mark: the primary after the failover is compact — replica 10.0.0.2:6379 is fragmented"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := RenderApproval(planView(tc.state, tc.plan), now)
			r := Reply{Messages: []Message{m}}
			checkReply(t, r, map[string]bool{"<@U0OPERATOR>": true})
			text := messageText(m)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, text)
				}
			}
			checkGolden(t, tc.name, r)
		})
	}
}
