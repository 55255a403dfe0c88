package handlers

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

const absent = "<absent>"

// fixture builds a snapshot from a captured INFO text with some fields
// replaced (absent deletes a field), so each case states only what differs.
func fixture(t *testing.T, file string, fields, config map[string]string) *Snapshot {
	t.Helper()
	b, err := os.ReadFile("testdata/info/" + file)
	if err != nil {
		t.Fatal(err)
	}
	info := ParseInfo(string(b))
	for k, v := range fields {
		if v == absent {
			delete(info, k)
		} else {
			info[k] = v
		}
	}
	cfg := map[string]string{"activedefrag": "no", "save": "", "appendonly": "no", "replica-ignore-maxmemory": "yes"}
	for k, v := range config {
		if v == absent {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	return &Snapshot{Instance: "cache-1", ProbedAt: time.Unix(1_800_000_000, 0), Info: info, Config: cfg}
}

const MB = 1 << 20

func mb(n int) string { return strconv.Itoa(n * MB) }

func TestRules(t *testing.T) {
	type want map[string]Severity // id -> severity; SeverityNone means must not fire
	cases := []struct {
		name    string
		fields  map[string]string
		config  map[string]string
		prev    map[string]string // fields of a previous snapshot 10s earlier
		limit   int64
		tweak   func(*Thresholds)
		doctor  string
		want    want
		summary map[string]string // id -> substring of its summary
	}{
		{name: "captured fragmentation: ratio 2.08 on 58 MiB",
			want: want{"frag-high": SeverityCritical, "maxmemory-unset": SeverityWarning,
				"frag-allocator": SeverityNone, "frag-post-peak": SeverityNone, "frag-noise": SeverityNone, "frag-rss-overhead": SeverityNone}},
		{name: "ratio between warning and critical",
			fields: map[string]string{"mem_fragmentation_ratio": "1.6"},
			want:   want{"frag-high": SeverityWarning}},
		{name: "ratio above restart threshold recommends failover",
			fields:  map[string]string{"mem_fragmentation_ratio": "2.7"},
			want:    want{"frag-high": SeverityCritical},
			summary: map[string]string{"frag-high": "failover or a restart"}},
		{name: "a few MiB beyond the data: noise, whatever the ratio",
			fields: map[string]string{"used_memory": mb(2), "used_memory_rss": mb(9), "mem_fragmentation_ratio": "4.5", "mem_fragmentation_bytes": mb(7)},
			want:   want{"frag-noise": SeverityInfo, "frag-high": SeverityNone, "frag-allocator": SeverityNone}},
		{name: "small and healthy",
			fields: map[string]string{"used_memory": mb(10), "mem_fragmentation_ratio": "1.2"},
			want:   want{"frag-noise": SeverityNone, "frag-high": SeverityNone}},
		{name: "ratio below 1 on a big instance: swapping",
			fields: map[string]string{"used_memory": mb(200), "mem_fragmentation_ratio": "0.7"},
			want:   want{"frag-swap": SeverityCritical, "frag-high": SeverityNone}},
		{name: "ratio below 1 below the swap floor",
			fields: map[string]string{"used_memory": mb(60), "mem_fragmentation_ratio": "0.7"},
			want:   want{"frag-swap": SeverityNone}},
		{name: "free pages left by a peak lower frag-high to info",
			fields: map[string]string{"used_memory_peak": mb(150), "allocator_rss_ratio": "1.8", "allocator_rss_bytes": mb(50), "allocator_frag_ratio": "1.14", "allocator_frag_bytes": mb(8)},
			want:   want{"frag-post-peak": SeverityWarning, "frag-high": SeverityInfo}},
		{name: "holes under a past peak keep frag-high at its level",
			fields:  map[string]string{"used_memory_peak": mb(150)},
			want:    want{"frag-post-peak": SeverityNone, "frag-high": SeverityCritical},
			summary: map[string]string{"frag-high": "MEMORY PURGE will not return them"}},
		{name: "allocator fragmentation over 100 MiB with defrag off",
			fields: map[string]string{"allocator_frag_bytes": mb(150)},
			want:   want{"frag-allocator": SeverityWarning, "defrag-disabled": SeverityWarning}},
		{name: "allocator fragmentation critical",
			fields: map[string]string{"allocator_frag_bytes": mb(150), "allocator_frag_ratio": "4.5"},
			want:   want{"frag-allocator": SeverityCritical}},
		{name: "activedefrag unknown: no defrag-disabled",
			fields: map[string]string{"allocator_frag_bytes": mb(150)},
			config: map[string]string{"activedefrag": absent},
			want:   want{"frag-allocator": SeverityWarning, "defrag-disabled": SeverityNone}},
		{name: "high ratio carried outside the allocator: RSS overhead",
			fields: map[string]string{"allocator_frag_ratio": "1.02", "allocator_frag_bytes": mb(1), "allocator_rss_bytes": mb(3), "rss_overhead_ratio": "1.9", "rss_overhead_bytes": mb(58)},
			want:   want{"frag-rss-overhead": SeverityWarning, "frag-allocator": SeverityNone, "frag-post-peak": SeverityNone}},
		{name: "free pages the allocator retains are not RSS overhead",
			fields: map[string]string{"allocator_frag_ratio": "1.02", "allocator_frag_bytes": mb(1), "allocator_rss_ratio": "1.9", "allocator_rss_bytes": mb(58)},
			want:   want{"frag-rss-overhead": SeverityNone, "frag-post-peak": SeverityWarning, "frag-high": SeverityInfo}},
		{name: "libc allocator",
			fields: map[string]string{"mem_allocator": "libc", "allocator_frag_bytes": mb(500)},
			want:   want{"allocator-not-jemalloc": SeverityWarning, "frag-allocator": SeverityNone, "frag-high": SeverityCritical}},
		{name: "fork in progress: what rose since the previous sample is transient",
			fields: map[string]string{"rdb_bgsave_in_progress": "1", "allocator_frag_bytes": mb(150)},
			prev: map[string]string{"rdb_bgsave_in_progress": "0", "mem_fragmentation_ratio": "1.1", "mem_fragmentation_bytes": mb(6),
				"allocator_frag_ratio": "1.03", "allocator_frag_bytes": mb(2)},
			want: want{"frag-fork-transient": SeverityInfo, "frag-high": SeverityInfo, "frag-allocator": SeverityInfo}},
		{name: "fork in progress on an already fragmented instance hides nothing",
			fields: map[string]string{"rdb_bgsave_in_progress": "1", "allocator_frag_bytes": mb(150)},
			prev:   map[string]string{"rdb_bgsave_in_progress": "0"},
			want:   want{"frag-fork-transient": SeverityInfo, "frag-high": SeverityCritical, "frag-allocator": SeverityWarning}},
		{name: "defrag running with few hits",
			fields: map[string]string{"active_defrag_running": "25", "active_defrag_hits": "100", "active_defrag_misses": "900"},
			config: map[string]string{"activedefrag": "yes"},
			want:   want{"defrag-ineffective": SeverityWarning}},
		{name: "defrag running and effective",
			fields: map[string]string{"active_defrag_running": "25", "active_defrag_hits": "900", "active_defrag_misses": "100"},
			config: map[string]string{"activedefrag": "yes"},
			want:   want{"defrag-ineffective": SeverityNone}},
		{name: "defrag effectiveness judged since the last sample",
			fields: map[string]string{"active_defrag_running": "25", "active_defrag_hits": "1100", "active_defrag_misses": "900"},
			prev:   map[string]string{"active_defrag_hits": "1000", "active_defrag_misses": "0"},
			config: map[string]string{"activedefrag": "yes"},
			want:   want{"defrag-ineffective": SeverityWarning}},
		{name: "defrag on 7.2.4 in cluster mode",
			fields:  map[string]string{"redis_version": "7.2.4", "cluster_enabled": "1"},
			config:  map[string]string{"activedefrag": "yes"},
			want:    want{"defrag-version-risk": SeverityWarning},
			summary: map[string]string{"defrag-version-risk": "cluster"}},
		{name: "defrag on 8.0.1",
			fields: map[string]string{"redis_version": "8.0.1"},
			config: map[string]string{"activedefrag": "yes"},
			want:   want{"defrag-version-risk": SeverityWarning}},
		{name: "defrag recommended on 7.2.5: info",
			fields: map[string]string{"redis_version": "7.2.5", "allocator_frag_bytes": mb(150)},
			want:   want{"defrag-version-risk": SeverityInfo}},
		{name: "defrag on 7.4.6: no known defect",
			fields: map[string]string{"redis_version": "7.4.6"},
			config: map[string]string{"activedefrag": "yes"},
			want:   want{"defrag-version-risk": SeverityNone}},
		{name: "valkey 8.1.4: no known defect (its redis_version 7.2.4 does not count)",
			fields: map[string]string{"server_name": "valkey", "valkey_version": "8.1.4", "redis_version": "7.2.4"},
			config: map[string]string{"activedefrag": "yes"},
			want:   want{"defrag-version-risk": SeverityNone}},
		{name: "OOM errors counted, none possible now",
			fields:  map[string]string{"errorstat_OOM": "count=12"},
			want:    want{"oom-rejecting": SeverityInfo},
			summary: map[string]string{"oom-rejecting": "12 since start, none now"}},
		{name: "OOM errors in the past, none since the last sample",
			fields: map[string]string{"errorstat_OOM": "count=12"},
			prev:   map[string]string{"errorstat_OOM": "count=12"},
			want:   want{"oom-rejecting": SeverityInfo}},
		{name: "OOM errors growing",
			fields:  map[string]string{"errorstat_OOM": "count=12"},
			prev:    map[string]string{"errorstat_OOM": "count=10"},
			want:    want{"oom-rejecting": SeverityCritical},
			summary: map[string]string{"oom-rejecting": "2 writes failed"}},
		{name: "noeviction at the limit",
			fields: map[string]string{"maxmemory": mb(50), "maxmemory_policy": "noeviction"},
			config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"},
			want:   want{"oom-rejecting": SeverityCritical, "noeviction-trap": SeverityInfo, "maxmemory-near": SeverityNone, "maxmemory-unset": SeverityNone}},
		{name: "replica output buffers are not counted against maxmemory",
			fields: map[string]string{"used_memory": mb(60), "mem_not_counted_for_evict": mb(10)},
			config: map[string]string{"maxmemory": mb(70), "maxmemory-policy": "allkeys-lru"},
			want:   want{"maxmemory-near": SeverityNone}},
		{name: "usage 86% of maxmemory with noeviction",
			fields: map[string]string{"used_memory": mb(60)},
			config: map[string]string{"maxmemory": mb(70), "maxmemory-policy": "noeviction"},
			want:   want{"maxmemory-near": SeverityCritical, "noeviction-trap": SeverityInfo, "oom-rejecting": SeverityNone}},
		{name: "usage 80% of maxmemory with noeviction",
			fields: map[string]string{"used_memory": mb(80)},
			config: map[string]string{"maxmemory": mb(100), "maxmemory-policy": "noeviction"},
			want:   want{"maxmemory-near": SeverityWarning, "noeviction-trap": SeverityInfo}},
		{name: "an allkeys-lru cache at 86% of maxmemory runs as designed",
			fields: map[string]string{"used_memory": mb(60)},
			config: map[string]string{"maxmemory": mb(70), "maxmemory-policy": "allkeys-lru"},
			want:   want{"maxmemory-near": SeverityInfo, "noeviction-trap": SeverityNone}},
		{name: "volatile-lru without TTLs",
			fields: map[string]string{"db0": "keys=250000,expires=100,avg_ttl=0"},
			config: map[string]string{"maxmemory": mb(100), "maxmemory-policy": "volatile-lru"},
			want:   want{"volatile-no-ttl": SeverityWarning}},
		{name: "volatile-lru without TTLs at the limit",
			fields: map[string]string{"db0": "keys=250000,expires=100,avg_ttl=0"},
			config: map[string]string{"maxmemory": mb(60), "maxmemory-policy": "volatile-lru"},
			want:   want{"volatile-no-ttl": SeverityCritical}},
		{name: "volatile-lru with enough TTLs",
			fields: map[string]string{"db0": "keys=250000,expires=50000,avg_ttl=0"},
			config: map[string]string{"maxmemory": mb(100), "maxmemory-policy": "volatile-lru"},
			want:   want{"volatile-no-ttl": SeverityNone}},
		{name: "volatile policy without maxmemory does nothing",
			fields: map[string]string{"db0": "keys=250000,expires=0,avg_ttl=0"},
			config: map[string]string{"maxmemory": "0", "maxmemory-policy": "volatile-lru"},
			want:   want{"volatile-no-ttl": SeverityNone}},
		{name: "evictions since start",
			fields: map[string]string{"evicted_keys": "500"},
			want:   want{"evicting": SeverityInfo}},
		{name: "eviction rate from history",
			fields:  map[string]string{"evicted_keys": "500"},
			prev:    map[string]string{"evicted_keys": "400"},
			want:    want{"evicting": SeverityInfo},
			summary: map[string]string{"evicting": "10.0/s"}},
		{name: "no evictions since the last sample",
			fields: map[string]string{"evicted_keys": "500"},
			prev:   map[string]string{"evicted_keys": "500"},
			want:   want{"evicting": SeverityNone}},
		{name: "RSS at 86% of the memory limit",
			limit: 140 * MB,
			want:  want{"rss-near-limit": SeverityCritical}},
		{name: "RSS at 80% of the memory limit",
			limit: 150 * MB,
			want:  want{"rss-near-limit": SeverityWarning}},
		{name: "no memory limit: compared with a big host",
			want: want{"rss-near-limit": SeverityNone}},
		{name: "no memory limit: small host, with the cgroup note",
			fields:  map[string]string{"total_system_memory": mb(130)},
			want:    want{"rss-near-limit": SeverityCritical},
			summary: map[string]string{"rss-near-limit": "ignores container and cgroup limits"}},
		{name: "maxmemory 90% of the limit",
			fields: map[string]string{"mem_fragmentation_ratio": "1.0"},
			config: map[string]string{"maxmemory": mb(900)},
			limit:  1024 * MB,
			want:   want{"maxmemory-headroom": SeverityWarning}},
		{name: "maxmemory times fragmentation over the limit",
			config: map[string]string{"maxmemory": mb(600)},
			limit:  1024 * MB,
			want:   want{"maxmemory-headroom": SeverityWarning}},
		{name: "maxmemory above the limit",
			config: map[string]string{"maxmemory": mb(1100)},
			limit:  1024 * MB,
			want:   want{"maxmemory-headroom": SeverityCritical}},
		{name: "persistent instance fits with its copy-on-write margin",
			fields: map[string]string{"aof_enabled": "1", "mem_fragmentation_ratio": "1.2"},
			config: map[string]string{"maxmemory": mb(600)},
			limit:  1024 * MB,
			want:   want{"maxmemory-headroom": SeverityNone}},
		{name: "persistent instance short of copy-on-write margin",
			fields: map[string]string{"aof_enabled": "1", "mem_fragmentation_ratio": "1.3"},
			config: map[string]string{"maxmemory": mb(600)},
			limit:  1024 * MB,
			want:   want{"maxmemory-headroom": SeverityWarning}},
		{name: "fork of 15 ms", fields: map[string]string{"latest_fork_usec": "15000"}, want: want{"fork-slow": SeverityInfo}},
		{name: "fork of 150 ms", fields: map[string]string{"latest_fork_usec": "150000"}, want: want{"fork-slow": SeverityWarning}},
		{name: "AOF on with data over half the limit",
			fields: map[string]string{"aof_enabled": "1"},
			limit:  100 * MB,
			want:   want{"cow-headroom": SeverityWarning}},
		{name: "persistence off",
			limit: 100 * MB,
			want:  want{"cow-headroom": SeverityNone}},
		{name: "persistence unknown without CONFIG",
			config: map[string]string{"save": absent},
			limit:  100 * MB,
			want:   want{"cow-headroom": SeverityNone}},
		{name: "RDB snapshots on",
			config: map[string]string{"save": "3600 1 300 100"},
			limit:  100 * MB,
			want:   want{"cow-headroom": SeverityWarning}},
		{name: "big client buffers on average",
			fields: map[string]string{"mem_clients_normal": mb(50), "connected_clients": "11", "connected_slaves": "1"},
			want:   want{"client-buffers": SeverityWarning}},
		{name: "big client buffers in total",
			fields: map[string]string{"mem_clients_normal": mb(600), "connected_clients": "10000"},
			want:   want{"client-buffers": SeverityWarning}},
		{name: "replica buffers", fields: map[string]string{"mem_clients_slaves": mb(20)}, want: want{"replica-buffers": SeverityWarning}},
		{name: "many scripts", fields: map[string]string{"number_of_cached_scripts": "1500"}, want: want{"many-scripts": SeverityWarning}},
		{name: "lazyfree backlog in one sample", fields: map[string]string{"lazyfree_pending_objects": "200000"}, want: want{"lazyfree-backlog": SeverityInfo}},
		{name: "small lazyfree backlog", fields: map[string]string{"lazyfree_pending_objects": "50000"}, want: want{"lazyfree-backlog": SeverityNone}},
		{name: "lazyfree backlog growing",
			fields: map[string]string{"lazyfree_pending_objects": "200"}, prev: map[string]string{"lazyfree_pending_objects": "100"},
			want: want{"lazyfree-backlog": SeverityWarning}},
		{name: "lazyfree backlog draining",
			fields: map[string]string{"lazyfree_pending_objects": "200"}, prev: map[string]string{"lazyfree_pending_objects": "300"},
			want: want{"lazyfree-backlog": SeverityNone}},
		{name: "replica with noeviction above its maxmemory",
			fields: map[string]string{"role": "slave"},
			config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"},
			want:   want{"replica-over-maxmemory": SeverityWarning, "maxmemory-near": SeverityNone, "noeviction-trap": SeverityNone, "oom-rejecting": SeverityNone}},
		{name: "replica with allkeys-lru above its maxmemory",
			fields: map[string]string{"role": "slave"},
			config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "allkeys-lru"},
			want:   want{"replica-over-maxmemory": SeverityInfo}},
		{name: "replica without maxmemory is fine",
			fields: map[string]string{"role": "slave"},
			want:   want{"maxmemory-unset": SeverityNone, "replica-over-maxmemory": SeverityNone}},
		{name: "MEMORY DOCTOR issues are quoted",
			doctor:  "Sam, I detected a few issues in this Redis instance memory implants:\n\n * Peak memory: In the past...\n\n * High allocator fragmentation: This instance...\n\nI'm here to keep you safe, Sam.",
			want:    want{"memory-doctor": SeverityInfo},
			summary: map[string]string{"memory-doctor": "Peak memory; High allocator fragmentation"}},
		{name: "MEMORY DOCTOR without issues",
			doctor: "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.",
			want:   want{"memory-doctor": SeverityNone}},
		{name: "threshold overrides apply",
			tweak: func(th *Thresholds) { th.FragWarning, th.FragCritical = 2.5, 3.0 },
			want:  want{"frag-high": SeverityNone}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Cur: fixture(t, "redis-7.0.txt", tc.fields, tc.config), MemoryLimit: tc.limit, T: DefaultThresholds()}
			in.Cur.Doctor = tc.doctor
			if tc.prev != nil {
				prevFields := map[string]string{}
				for k, v := range tc.fields {
					prevFields[k] = v
				}
				for k, v := range tc.prev {
					prevFields[k] = v
				}
				in.Prev = fixture(t, "redis-7.0.txt", prevFields, tc.config)
				in.Prev.ProbedAt = in.Cur.ProbedAt.Add(-10 * time.Second)
			}
			if tc.tweak != nil {
				tc.tweak(&in.T)
			}
			got := map[string]Finding{}
			for _, f := range Evaluate(in) {
				if _, dup := got[f.ID]; dup {
					t.Errorf("finding %s reported twice", f.ID)
				}
				got[f.ID] = f
			}
			checkFindings(t, got, tc.want, tc.summary)
			for _, f := range got {
				if len(f.Evidence) == 0 || f.Summary == "" || f.Title == "" || f.Runbook != f.ID {
					t.Errorf("%s incomplete: %+v", f.ID, f)
				}
			}
		})
	}
}

func ids(m map[string]Finding) []string {
	var out []string
	for id, f := range m {
		out = append(out, id+"="+f.Severity.String())
	}
	return out
}

func TestFragTreeWithoutRatio(t *testing.T) {
	a := FragTree(Input{Cur: fixture(t, "redis-7.0.txt", map[string]string{"mem_fragmentation_ratio": absent, "used_memory_rss": absent}, nil), T: DefaultThresholds()})
	if len(a.Findings) != 0 || len(a.Steps) != 1 {
		t.Errorf("analysis = %+v, want one step and no findings", a)
	}
}

func TestEveryCatalogueIDCanFire(t *testing.T) {
	// Each id is produced by some case above or by the service (unreachable);
	// a new id without a rule is caught here.
	produced := map[string]bool{"unreachable": true}
	var src []byte
	for _, file := range []string{"rules_test.go", "history_test.go", "keyrules_test.go", "slowserver_test.go"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	for _, s := range Catalogue {
		if produced[s.ID] {
			continue
		}
		if !strings.Contains(string(src), `"`+s.ID+`": Severity`) {
			t.Errorf("no rule test asserts that %s fires", s.ID)
		}
	}
}

// BenchmarkEvaluate is the rules alone on a captured snapshot, no I/O.
func BenchmarkEvaluate(b *testing.B) {
	raw, err := os.ReadFile("testdata/info/redis-7.0.txt")
	if err != nil {
		b.Fatal(err)
	}
	cur := &Snapshot{Info: ParseInfo(string(raw)), Config: map[string]string{"activedefrag": "no", "save": ""}}
	in := Input{Cur: cur, Prev: cur, MemoryLimit: 1 << 30, T: DefaultThresholds()}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(in)
	}
}

// BenchmarkParseInfo is parsing one full INFO everything reply.
func BenchmarkParseInfo(b *testing.B) {
	raw, err := os.ReadFile("testdata/info/redis-7.0.txt")
	if err != nil {
		b.Fatal(err)
	}
	text := string(raw)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		ParseInfo(text)
	}
}

// Every captured server format goes through every rule without a panic, and
// the scenario captures produce their headline finding.
func TestRulesOnEveryCapture(t *testing.T) {
	headline := map[string]string{
		"redis-7.2-oom.txt":     "oom-rejecting",
		"redis-6.2-replica.txt": "replica-over-maxmemory",
		"redis-7.0.txt":         "frag-high",
	}
	entries, err := os.ReadDir("testdata/info")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".txt") {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			cur := fixture(t, e.Name(), nil, map[string]string{"activedefrag": absent, "save": absent})
			in := Input{Cur: cur, Prev: cur, MemoryLimit: 1 << 30, T: DefaultThresholds()}
			fs := Evaluate(in)
			FragTree(in)
			if id, ok := headline[e.Name()]; ok {
				found := false
				for _, f := range fs {
					found = found || f.ID == id
				}
				if !found {
					t.Errorf("%s: %s did not fire; got %d findings", e.Name(), id, len(fs))
				}
			}
		})
	}
}

// checkFindings compares the findings by id with the severities wanted
// (SeverityNone: must not fire) and the text each summary must contain.
func checkFindings(t *testing.T, got map[string]Finding, want map[string]Severity, summary map[string]string) {
	t.Helper()
	for id, sev := range want {
		f, ok := got[id]
		switch {
		case sev == SeverityNone && ok:
			t.Errorf("%s fired (%s: %s), want not", id, f.Severity, f.Summary)
		case sev != SeverityNone && !ok:
			t.Errorf("%s did not fire; got %v", id, ids(got))
		case ok && f.Severity != sev:
			t.Errorf("%s severity = %s, want %s (%s)", id, f.Severity, sev, f.Summary)
		}
	}
	for id, sub := range summary {
		if !strings.Contains(got[id].Summary, sub) {
			t.Errorf("%s summary %q does not contain %q", id, got[id].Summary, sub)
		}
	}
}
