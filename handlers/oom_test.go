package handlers

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The OOM and limit rules judge what happens now. Each case is the
// captured Redis 7.0 reply (58.1 MiB in use, 250,000 keys without a TTL)
// with the fields that make the state, and a previous sample where the
// state has a history.
func TestLimitRulesJudgeThePresent(t *testing.T) {
	const runID = "16e48c63c6ad40207b68deb1329e6be2bdf2df30" // the capture's
	noeviction := map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"}
	lru := map[string]string{"maxmemory": mb(58), "maxmemory-policy": "allkeys-lru"}
	for _, tc := range []struct {
		name    string
		fields  map[string]string
		config  map[string]string
		prev    map[string]string // nil: no previous sample
		prevAgo time.Duration     // default 1 minute
		limit   int64
		want    map[string]Severity
		summary map[string]string
	}{
		{name: "noeviction over the limit, rejections since the last sample",
			fields: map[string]string{"errorstat_OOM": "count=1523"}, config: noeviction,
			prev:    map[string]string{"errorstat_OOM": "count=1400"},
			want:    map[string]Severity{"oom-rejecting": SeverityCritical, "maxmemory-near": SeverityNone, "noeviction-trap": SeverityInfo},
			summary: map[string]string{"oom-rejecting": "123 writes failed with \"OOM command not allowed when used memory > 'maxmemory'\" in the last 1m (1523 since start)"}},
		{name: "noeviction at 86%: capacity is maxmemory-near's, the policy noeviction-trap's",
			config: map[string]string{"maxmemory": mb(68), "maxmemory-policy": "noeviction"},
			want:   map[string]Severity{"maxmemory-near": SeverityCritical, "noeviction-trap": SeverityInfo, "oom-rejecting": SeverityNone},
			summary: map[string]string{"maxmemory-near": "85% of maxmemory (58.1 MiB of 68.0 MiB) in use, 9.9 MiB left, and policy noeviction evicts nothing: at the limit, writes fail.",
				"noeviction-trap": "9.9 MiB left"}},
		{name: "noeviction over the limit, no write tried since the last sample",
			fields: map[string]string{"errorstat_OOM": "count=1523"}, config: noeviction,
			prev:    map[string]string{"errorstat_OOM": "count=1523"},
			want:    map[string]Severity{"oom-rejecting": SeverityCritical},
			summary: map[string]string{"oom-rejecting": "Every write that needs memory fails now"}},
		{name: "noeviction over the limit before any write failed",
			config:  noeviction,
			want:    map[string]Severity{"oom-rejecting": SeverityCritical},
			summary: map[string]string{"oom-rejecting": "0 rejected since start"}},
		{name: "after the incident: usage 2% of maxmemory, the count stays",
			fields: map[string]string{"errorstat_OOM": "count=1523"}, config: map[string]string{"maxmemory": mb(3000), "maxmemory-policy": "noeviction"},
			prev:    map[string]string{"errorstat_OOM": "count=1523"},
			want:    map[string]Severity{"oom-rejecting": SeverityInfo, "maxmemory-near": SeverityNone, "noeviction-trap": SeverityNone},
			summary: map[string]string{"oom-rejecting": "1523 since start, none now (none in the last 1m): 2% of maxmemory (58.1 MiB of 2.9 GiB) in use"}},
		{name: "after the incident, diagnosed without history",
			fields: map[string]string{"errorstat_OOM": "count=1523"}, config: map[string]string{"maxmemory": mb(3000), "maxmemory-policy": "noeviction"},
			want:    map[string]Severity{"oom-rejecting": SeverityInfo},
			summary: map[string]string{"oom-rejecting": "1523 since start, none now"}},
		{name: "restarted since the last sample: the lower count is since the restart",
			fields: map[string]string{"errorstat_OOM": "count=3"}, config: map[string]string{"maxmemory": mb(3000), "maxmemory-policy": "noeviction"},
			prev:    map[string]string{"errorstat_OOM": "count=1600", "run_id": "0000000000000000000000000000000000000000"},
			want:    map[string]Severity{"oom-rejecting": SeverityInfo, "restarted": SeverityWarning},
			summary: map[string]string{"oom-rejecting": "3 since start (restarted since the last sample), none now"}},
		{name: "restarted with a higher count is not compared across runs",
			fields: map[string]string{"errorstat_OOM": "count=1700"}, config: map[string]string{"maxmemory": mb(3000), "maxmemory-policy": "noeviction"},
			prev: map[string]string{"errorstat_OOM": "count=1600", "run_id": "0000000000000000000000000000000000000000"},
			want: map[string]Severity{"oom-rejecting": SeverityInfo}},
		{name: "CONFIG RESETSTAT since the last sample",
			fields: map[string]string{"errorstat_OOM": "count=2"}, config: map[string]string{"maxmemory": mb(3000), "maxmemory-policy": "noeviction"},
			prev:    map[string]string{"errorstat_OOM": "count=1600"},
			want:    map[string]Severity{"oom-rejecting": SeverityInfo},
			summary: map[string]string{"oom-rejecting": "counters reset since the last sample"}},
		{name: "rejections since a sample hours old, none possible now",
			fields: map[string]string{"errorstat_OOM": "count=1523"}, config: map[string]string{"maxmemory": mb(3000), "maxmemory-policy": "noeviction"},
			prev: map[string]string{"errorstat_OOM": "count=1000"}, prevAgo: 3 * time.Hour,
			want:    map[string]Severity{"oom-rejecting": SeverityWarning},
			summary: map[string]string{"oom-rejecting": "523 writes failed with OOM errors at some time in the 3h since the last sample"}},
		{name: "an allkeys-lru cache at its limit, evicting, no OOM errors",
			fields: map[string]string{"evicted_keys": "9000", "keyspace_hits": "9000", "keyspace_misses": "1000"}, config: lru,
			prev:    map[string]string{"evicted_keys": "3000", "keyspace_hits": "1000", "keyspace_misses": "500"},
			want:    map[string]Severity{"maxmemory-near": SeverityInfo, "evicting": SeverityInfo, "oom-rejecting": SeverityNone, "noeviction-trap": SeverityNone},
			summary: map[string]string{"maxmemory-near": "hit rate 94% in the last 1m", "evicting": "6000 keys evicted in the last 1m (100.0/s) by policy allkeys-lru, at 100% of maxmemory (58.1 MiB of 58.0 MiB)"}},
		{name: "an allkeys-lru cache whose eviction does not keep up",
			fields: map[string]string{"errorstat_OOM": "count=40", "evicted_keys": "9000"}, config: lru,
			prev:    map[string]string{"errorstat_OOM": "count=10", "evicted_keys": "3000"},
			want:    map[string]Severity{"oom-rejecting": SeverityCritical, "maxmemory-near": SeverityNone, "evicting": SeverityInfo},
			summary: map[string]string{"oom-rejecting": "evicts, but not enough"}},
		{name: "an allkeys-lru cache with past errors, diagnosed without history",
			fields: map[string]string{"errorstat_OOM": "count=40", "evicted_keys": "9000"}, config: lru,
			want:    map[string]Severity{"oom-rejecting": SeverityInfo, "maxmemory-near": SeverityInfo},
			summary: map[string]string{"oom-rejecting": "policy allkeys-lru evicts to make room"}},
		{name: "volatile-lru with enough TTLs near the limit",
			fields: map[string]string{"db0": "keys=250000,expires=100000,avg_ttl=0"}, config: map[string]string{"maxmemory": mb(66), "maxmemory-policy": "volatile-lru"},
			want:    map[string]Severity{"maxmemory-near": SeverityWarning, "volatile-no-ttl": SeverityNone, "oom-rejecting": SeverityNone},
			summary: map[string]string{"maxmemory-near": "Only the 100000 of 250000 keys with a TTL can be evicted"}},
		{name: "volatile-lru without TTLs over the limit cannot evict",
			config:  map[string]string{"maxmemory": mb(50), "maxmemory-policy": "volatile-lru"},
			want:    map[string]Severity{"oom-rejecting": SeverityCritical, "volatile-no-ttl": SeverityCritical, "maxmemory-near": SeverityNone},
			summary: map[string]string{"oom-rejecting": "policy volatile-lru evicts only keys with a TTL, and 0 of 250000 keys (0%) have one"}},
		{name: "a replica that ignores maxmemory is never rejecting",
			fields: map[string]string{"role": "slave", "errorstat_OOM": "count=5"}, config: noeviction,
			want: map[string]Severity{"oom-rejecting": SeverityInfo, "replica-over-maxmemory": SeverityWarning, "maxmemory-near": SeverityNone}},
		{name: "a safe maxmemory is offered when memory_limit holds one",
			config: noeviction, limit: 512 * MB,
			want:    map[string]Severity{"oom-rejecting": SeverityCritical},
			summary: map[string]string{"oom-rejecting": "Every write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Cur: fixture(t, "redis-7.0.txt", withLimitConfig(tc.fields, tc.config), tc.config), MemoryLimit: tc.limit, T: DefaultThresholds()}
			if tc.prev != nil {
				prevFields := map[string]string{}
				for k, v := range withLimitConfig(tc.fields, tc.config) {
					prevFields[k] = v
				}
				for k, v := range tc.prev {
					prevFields[k] = v
				}
				if _, ok := prevFields["run_id"]; !ok {
					prevFields["run_id"] = runID
				}
				in.Prev = fixture(t, "redis-7.0.txt", prevFields, tc.config)
				ago := tc.prevAgo
				if ago == 0 {
					ago = time.Minute
				}
				in.Prev.ProbedAt = in.Cur.ProbedAt.Add(-ago)
			}
			got := map[string]Finding{}
			for _, f := range Evaluate(in) {
				got[f.ID] = f
			}
			checkFindings(t, got, tc.want, tc.summary)
			checkRatiosHaveBytes(t, got)
		})
	}
}

// withLimitConfig puts maxmemory and the policy in INFO too, as a server
// reports them.
func withLimitConfig(fields, config map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range fields {
		out[k] = v
	}
	for k, v := range config {
		if k == "maxmemory" || k == "maxmemory-policy" {
			out[strings.ReplaceAll(k, "-", "_")] = v
		}
	}
	return out
}

var (
	percentRE = regexp.MustCompile(`\d+%`)
	bytesRE   = regexp.MustCompile(`\d B\b|\d(\.\d)? [KMGTPE]iB`)
)

// checkRatiosHaveBytes: a limit finding that states a share also states
// the bytes it is a share of.
func checkRatiosHaveBytes(t *testing.T, got map[string]Finding) {
	t.Helper()
	for id, f := range got {
		spec, _ := SpecFor(id)
		if spec.Area != AreaOOM || !percentRE.MatchString(f.Summary) {
			continue
		}
		if !bytesRE.MatchString(f.Summary) {
			t.Errorf("%s states a share without bytes: %s", id, f.Summary)
		}
	}
}

// A finding that offers maxmemory advice computes it from memory_limit
// with fragmentation and fork headroom: safe_maxmemory.
func TestSafeMaxmemory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]string
		config map[string]string
		limit  int64
		want   int64 // 0: none offered
	}{
		{name: "no memory_limit: no advice from the host's memory", want: 0},
		{name: "80% of the limit caps it", fields: map[string]string{"mem_fragmentation_ratio": "1.1"}, limit: 1000 * MB, want: 800 * MB},
		{name: "fragmentation shrinks it", fields: map[string]string{"mem_fragmentation_ratio": "2.0"}, limit: 1000 * MB, want: 500 * MB},
		{name: "a fork's copy-on-write shrinks it", fields: map[string]string{"mem_fragmentation_ratio": "1.0", "aof_enabled": "1"}, limit: 900 * MB, want: 600 * MB},
		{name: "a ratio over a few MiB beyond the data is noise",
			fields: map[string]string{"used_memory": mb(2), "used_memory_rss": mb(12), "mem_fragmentation_ratio": "6.0", "mem_fragmentation_bytes": mb(10)}, limit: 1000 * MB, want: 800 * MB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Cur: fixture(t, "redis-7.0.txt", tc.fields, tc.config), MemoryLimit: tc.limit, T: DefaultThresholds()}
			got, ok := maxmemoryRoom(in)
			if tc.want == 0 {
				if ok {
					t.Errorf("maxmemoryRoom = %d, want none", got)
				}
				return
			}
			if !ok || got != tc.want {
				t.Errorf("maxmemoryRoom = %s, %v; want %s", HumanBytes(got), ok, HumanBytes(tc.want))
			}
		})
	}
}

// Where the runbooks print the OOM count they read the finding's evidence,
// which knows that no errorstat_OOM line on a 6.2+ server means 0.
func TestOOMCountInEvidence(t *testing.T) {
	cfg := map[string]string{"maxmemory": mb(70), "maxmemory-policy": "noeviction"}
	got := map[string]Finding{}
	for _, f := range Evaluate(Input{Cur: fixture(t, "redis-7.0.txt", withLimitConfig(nil, cfg), cfg), T: DefaultThresholds()}) {
		got[f.ID] = f
	}
	for _, id := range []string{"maxmemory-near", "noeviction-trap"} {
		if e, ok := got[id].Evidence.Get("errorstat_OOM"); !ok || e.Text != "0" {
			t.Errorf("%s: errorstat_OOM = %+v, want 0", id, e)
		}
	}
	pre62 := fixture(t, "redis-7.0.txt", withLimitConfig(map[string]string{"total_error_replies": absent, "errorstat_ERR": absent}, cfg), cfg)
	for _, f := range Evaluate(Input{Cur: pre62, T: DefaultThresholds()}) {
		if e, ok := f.Evidence.Get("errorstat_OOM"); ok && !strings.HasPrefix(e.Text, "unknown") {
			t.Errorf("%s: errorstat_OOM without errorstats = %q, want unknown", f.ID, e.Text)
		}
	}
}

// The report's JSON carries the first action next to the findings it was
// chosen from.
func TestReportJSONHasFirstAction(t *testing.T) {
	cfg := map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"}
	snap := fixture(t, "redis-7.0.txt", withLimitConfig(map[string]string{"errorstat_OOM": "count=9"}, cfg), cfg)
	r := &Report{Verb: "diagnose", Instance: "cache-1", Snapshot: snap, MemoryLimit: 512 * MB}
	r.Findings = Evaluate(Input{Cur: snap, MemoryLimit: r.MemoryLimit, T: DefaultThresholds()})
	r.Severity = Worst(r.Findings)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Instance    string            `json:"instance"`
		Severity    string            `json:"severity"`
		Findings    []json.RawMessage `json:"findings"`
		FirstAction FirstAction       `json:"first_action"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := ChooseFirstAction(r)
	if got.FirstAction != want || got.FirstAction.ID != "raise-maxmemory" || got.Instance != "cache-1" || got.Severity != "critical" || len(got.Findings) != len(r.Findings) {
		t.Errorf("JSON first_action = %+v (instance %q, %d findings), want %+v", got.FirstAction, got.Instance, len(got.Findings), want)
	}
	// A Report value marshals the same as a pointer to it.
	v, err := json.Marshal(*r)
	if err != nil || string(v) != string(b) {
		t.Errorf("value and pointer JSON differ (%v)", err)
	}
}

// The fork's summary reads "A BGSAVE" and "An AOF rewrite".
func TestForkSummaryArticle(t *testing.T) {
	for field, want := range map[string]string{"rdb_bgsave_in_progress": "A BGSAVE is in progress", "aof_rewrite_in_progress": "An AOF rewrite is in progress"} {
		in := Input{Cur: fixture(t, "redis-7.0.txt", map[string]string{field: "1"}, nil), T: DefaultThresholds()}
		var got string
		for _, f := range FragTree(in).Findings {
			if f.ID == "frag-fork-transient" {
				got = f.Summary
			}
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: frag-fork-transient %q, want it to start with %q", field, got, want)
		}
	}
}
