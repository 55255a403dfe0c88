package handlers

import (
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// reportOf evaluates every rule on the captured Redis 7.0 reply with the
// fields and CONFIG answers given, as the service does.
func reportOf(t *testing.T, fields, config map[string]string, limit int64) *Report {
	t.Helper()
	snap := fixture(t, "redis-7.0.txt", withLimitConfig(fields, config), config)
	r := &Report{Verb: "diagnose", Instance: "cache-1", Snapshot: snap, MemoryLimit: limit}
	r.Findings = Evaluate(Input{Cur: snap, MemoryLimit: limit, T: DefaultThresholds()})
	r.Severity = Worst(r.Findings)
	return r
}

func TestChooseFirstAction(t *testing.T) {
	healthy := map[string]string{"used_memory_rss": mb(64), "mem_fragmentation_ratio": "1.10", "allocator_frag_ratio": "1.02",
		"allocator_frag_bytes": mb(1), "allocator_rss_bytes": mb(1)}
	for _, tc := range []struct {
		name    string
		fields  map[string]string
		config  map[string]string
		limit   int64
		id      string
		finding string
		text    string // a substring of the text
		command string
		gain    int64
	}{
		{name: "a healthy cache: nothing to do",
			fields: healthy, config: map[string]string{"maxmemory": mb(256), "maxmemory-policy": "allkeys-lru"},
			id: "nothing", text: "Nothing to do now"},
		{name: "an allkeys-lru cache at its limit: nothing to do",
			fields: merge(healthy, map[string]string{"evicted_keys": "5000"}), config: map[string]string{"maxmemory": mb(58), "maxmemory-policy": "allkeys-lru"},
			id: "nothing", text: "findings are for information only"},
		{name: "noeviction over its limit, with room under memory_limit",
			fields: healthy, config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"}, limit: 512 * MB,
			id: "raise-maxmemory", finding: "oom-rejecting", text: "Raise maxmemory from 50.0 MiB to 409.0 MiB (+359.0 MiB)",
			command: "/redis set cache-1 maxmemory 409mb", gain: 359 * MB},
		{name: "noeviction over its limit, no memory_limit configured",
			fields: healthy, config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"},
			id: "free-memory", finding: "oom-rejecting", text: "Free at least 8.1 MiB"},
		{name: "noeviction over its limit because of client buffers",
			fields: merge(healthy, map[string]string{"mem_clients_normal": mb(20), "connected_clients": "3"}), config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"}, limit: 512 * MB,
			id: "find-buffer-clients", finding: "oom-rejecting", text: "20.0 MiB of buffers", gain: 20 * MB},
		{name: "allkeys-lru failing writes: the memory is not keys",
			fields: merge(healthy, map[string]string{"errorstat_OOM": "count=5", "used_memory_overhead": mb(40)}),
			config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "volatile-lru"},
			id:     "free-memory", finding: "oom-rejecting"},
		{name: "a primary without maxmemory under a memory limit",
			fields: healthy, limit: 1024 * MB,
			id: "set-maxmemory", finding: "maxmemory-unset", text: "Set maxmemory to 819.0 MiB", command: "/redis set cache-1 maxmemory 819mb"},
		{name: "RSS near the limit with free pages to return",
			fields: map[string]string{"used_memory_rss": mb(120), "allocator_rss_bytes": mb(40), "mem_fragmentation_ratio": "2.08"},
			config: map[string]string{"maxmemory": mb(64), "maxmemory-policy": "allkeys-lru"}, limit: 130 * MB,
			id: "memory-purge", finding: "rss-near-limit", command: "/redis purge cache-1", gain: 40 * MB},
		{name: "a replica with noeviction above its maxmemory",
			fields: merge(healthy, map[string]string{"role": "slave"}), config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"},
			id: "match-replica-maxmemory", finding: "replica-over-maxmemory", text: "Before any failover"},
		{name: "volatile-lru without TTLs below the limit",
			fields: healthy, config: map[string]string{"maxmemory": mb(256), "maxmemory-policy": "volatile-lru"},
			id: "find-keys-without-ttl", finding: "volatile-no-ttl", text: "`redisbot keys cache-1`"},
		{name: "rejected writes come before fragmentation",
			config: map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"}, limit: 1024 * MB,
			id: "raise-maxmemory", finding: "oom-rejecting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := reportOf(t, tc.fields, tc.config, tc.limit)
			a := ChooseFirstAction(r)
			if a.ID != tc.id || a.Finding != tc.finding || !strings.Contains(a.Text, tc.text) || (tc.command != "" && a.Command != tc.command) || (tc.gain != 0 && a.GainBytes != tc.gain) {
				t.Errorf("first action = %+v\nwant id %s for %q, text with %q, command %q, gain %s; findings %v",
					a, tc.id, tc.finding, tc.text, tc.command, HumanBytes(tc.gain), findingIDs(r))
			}
			if a.Text == "" || !strings.HasSuffix(a.Text, ".") {
				t.Errorf("text %q is not a sentence", a.Text)
			}
			if a.Remedy != "" && !hasAction(r, a) {
				t.Errorf("remedy %s is not one the finding %s offers", a.Remedy, a.Finding)
			}
			sameWhenCompact(t, r)
		})
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// sameWhenCompact: a compact report (the fleet view's) gets the same first
// action and the same action options as the whole report; a hint reading a
// field hintInfo lacks would differ here.
func sameWhenCompact(t *testing.T, r *Report) {
	t.Helper()
	c := *r
	c.Compact()
	if got, want := ChooseFirstAction(&c), ChooseFirstAction(r); got != want {
		t.Errorf("compact report: first action %+v, whole report: %+v", got, want)
	}
	for _, f := range r.Findings {
		if got, want := ActionOptions(&c, f), ActionOptions(r, f); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: compact report's options %+v, whole report's %+v", f.ID, got, want)
		}
	}
}

// Compact keeps of a snapshot only what the hints read: the fields of
// hintInfo, the keyspace lines and hintConfig; every captured version's
// findings get the same hints from it.
func TestCompact(t *testing.T) {
	files, err := filepath.Glob("testdata/info/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	healthy := map[string]string{"used_memory_rss": mb(64), "mem_fragmentation_ratio": "1.10", "allocator_frag_ratio": "1.02",
		"allocator_frag_bytes": mb(1), "allocator_rss_bytes": mb(1)}
	// States whose first action reads each field of hintInfo.
	states := []struct{ fields, config map[string]string }{
		{nil, map[string]string{"maxmemory": mb(64), "maxmemory-policy": "volatile-lru"}},
		{map[string]string{"role": "slave", "connected_slaves": "1"}, map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"}},
		{merge(healthy, map[string]string{"errorstat_OOM": "count=5", "used_memory_overhead": mb(40), "mem_not_counted_for_evict": mb(3)}),
			map[string]string{"maxmemory": mb(50), "maxmemory-policy": "allkeys-lru"}},
		{merge(healthy, map[string]string{"errorstat_OOM": "count=5", "mem_not_counted_for_evict": mb(3)}),
			map[string]string{"maxmemory": mb(50), "maxmemory-policy": "volatile-lru"}},
		{merge(healthy, map[string]string{"mem_clients_slaves": mb(300), "connected_slaves": "2"}), map[string]string{"maxmemory": mb(512), "maxmemory-policy": "allkeys-lru"}},
		{merge(healthy, map[string]string{"mem_clients_normal": mb(20)}), map[string]string{"maxmemory": mb(50), "maxmemory-policy": "noeviction"}},
		{map[string]string{"allocator_frag_bytes": mb(53), "allocator_rss_bytes": mb(5)}, map[string]string{"active-defrag-ignore-bytes": mb(10)}},
		// CONFIG denied: maxmemory and the policy come from INFO.
		{merge(healthy, map[string]string{"maxmemory": mb(50), "maxmemory_policy": "noeviction"}), map[string]string{"maxmemory": absent, "maxmemory-policy": absent}},
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			for _, state := range states {
				for _, limit := range []int64{0, 256 * MB, 8 << 30} {
					snap := fixture(t, filepath.Base(file), state.fields, state.config)
					// A minute ago, one OOM error: writes fail now.
					prev := fixture(t, filepath.Base(file), merge(state.fields, map[string]string{"errorstat_OOM": "count=1"}), state.config)
					prev.ProbedAt = snap.ProbedAt.Add(-time.Minute)
					snap.MemoryStats = map[string]float64{"overhead.total": 1 << 20}
					snap.Doctor = "Sam, I have a few reports for you."
					r := &Report{Instance: "cache-1", Snapshot: snap, MemoryLimit: limit, Can: Capabilities{RestartMethod: "command", FailoverMethod: "failover"}}
					r.Findings = Evaluate(Input{Cur: snap, Prev: prev, MemoryLimit: limit, T: DefaultThresholds()})
					sameWhenCompact(t, r)

					r.Compact()
					c := r.Snapshot
					if c == snap || c.MemoryStats != nil || c.Doctor != "" {
						t.Errorf("compact snapshot keeps MEMORY STATS %v or the doctor's text %q", c.MemoryStats, c.Doctor)
					}
					for key := range c.Config {
						if !slices.Contains(hintConfig, key) {
							t.Errorf("compact snapshot keeps CONFIG %s", key)
						}
					}
					for field := range c.Info {
						if !slices.Contains(hintInfo, field) && !isKeyspaceField(field) {
							t.Errorf("compact snapshot keeps %s", field)
						}
					}
					if keys, _ := c.Keys(); keys != func() int64 { k, _ := snap.Keys(); return k }() {
						t.Errorf("compact snapshot has %d keys", keys)
					}
				}
			}
		})
	}
	var none Report
	none.Compact() // a failed probe's report has no snapshot
	if none.Snapshot != nil {
		t.Errorf("compact of no snapshot: %+v", none.Snapshot)
	}
}

// hasAction: the first action's remedy is one its finding offers, so the
// Request buttons and the first line never disagree.
func hasAction(r *Report, a FirstAction) bool {
	f, ok := r.Finding(a.Finding)
	if !ok {
		return false
	}
	for _, act := range f.Actions {
		if act == a.Remedy {
			return true
		}
	}
	return false
}

func findingIDs(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID+"="+f.Severity.String())
	}
	return out
}

func TestFirstActionOfAFailedProbe(t *testing.T) {
	for class, id := range map[ErrorClass]string{
		ClassRefused: "check-process", ClassTimeout: "check-blocked", ClassAuth: "fix-credentials",
		ClassNoPerm: "grant-acl", ClassLoading: "wait-loading", ClassBusy: "check-busy-script", ClassDNS: "check-reachability",
	} {
		e := &ReportError{Class: class, Message: "probe failed"}
		r := &Report{Instance: "cache-1", Error: e, Findings: []Finding{unreachableFinding(Instance{Name: "cache-1", Addr: "10.0.0.1:6379"}, e)}}
		if a := ChooseFirstAction(r); a.ID != id || a.Finding != "unreachable" {
			t.Errorf("%s: first action %+v, want %s", class, a, id)
		}
	}
}

// Every finding of warning or worse gets an action with a sentence, and an
// action's remedy is one its finding offers.
func TestEveryFindingHasAFirstAction(t *testing.T) {
	snap := fixture(t, "redis-7.0.txt", nil, nil)
	for _, spec := range Catalogue {
		for _, sev := range []Severity{SeverityWarning, SeverityCritical} {
			f := newFinding(spec.ID, sev, "summary", factInt("n", 1))
			r := &Report{Instance: "cache-1", Snapshot: snap, MemoryLimit: 1 << 30, Findings: []Finding{f}}
			a := ChooseFirstAction(r)
			if a.Nothing() || a.Text == "" || a.Finding != spec.ID {
				t.Errorf("%s (%s): first action %+v", spec.ID, sev, a)
			}
			if a.Remedy != "" && !hasAction(r, a) {
				t.Errorf("%s: remedy %s not among %v", spec.ID, a.Remedy, spec.Actions)
			}
			sameWhenCompact(t, r)
		}
	}
	if a := ChooseFirstAction(nil); !a.Nothing() {
		t.Errorf("nil report: %+v", a)
	}
}

// Holes in used pages: active defrag when it can start, else a rebuild of
// the memory (a failover when there is a replica to take over). The
// command is there only when the instance has the method configured: the
// advice stands, but a command the bot would refuse is not offered.
func TestFirstActionForAllocatorFragmentation(t *testing.T) {
	methods := Capabilities{RestartMethod: "shutdown", FailoverMethod: "failover"}
	for _, tc := range []struct {
		name    string
		fields  map[string]string
		can     Capabilities
		id      string
		command string
	}{
		{"above active-defrag-ignore-bytes", map[string]string{"allocator_frag_bytes": mb(300), "allocator_rss_bytes": mb(5)}, Capabilities{}, "defrag-on", "/redis defrag cache-1 on"},
		{"above it, a build without defrag", map[string]string{"allocator_frag_bytes": mb(300), "allocator_rss_bytes": mb(5)},
			Capabilities{Learned: map[string]string{FactDefragSupported: "no"}}, "defrag-on", ""},
		{"below it, no replica", map[string]string{"allocator_frag_bytes": mb(53), "allocator_rss_bytes": mb(5), "connected_slaves": "0"}, methods, "restart", "/redis restart cache-1"},
		{"below it, with a replica", map[string]string{"allocator_frag_bytes": mb(53), "allocator_rss_bytes": mb(5), "connected_slaves": "1"}, methods, "failover", "/redis failover cache-1"},
		{"below it, with a replica, no method", map[string]string{"allocator_frag_bytes": mb(53), "allocator_rss_bytes": mb(5), "connected_slaves": "1"}, Capabilities{}, "failover", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := fixture(t, "redis-7.0.txt", tc.fields, nil)
			r := &Report{Instance: "cache-1", Snapshot: snap, Can: tc.can, Findings: []Finding{newFinding("frag-high", SeverityCritical, "summary", factInt("n", 1))}}
			a := ChooseFirstAction(r)
			holes, _ := snap.Int("allocator_frag_bytes")
			if a.ID != tc.id || a.Command != tc.command || a.GainBytes != holes {
				t.Errorf("first action %+v, want %s (%q) freeing allocator_frag_bytes", a, tc.id, tc.command)
			}
			if (a.Remedy == "") != (tc.command == "") {
				t.Errorf("remedy %q with command %q", a.Remedy, a.Command)
			}
			sameWhenCompact(t, r)
		})
	}
}

// A finding proposes remediations; the instance decides which of them get
// a button: configured, not known to be futile, labelled with their gain or
// the value the numbers imply.
func TestActionOptions(t *testing.T) {
	methods := Capabilities{RestartMethod: "command", FailoverMethod: "failover"}
	frag := func(ev ...Fact) Finding { return newFinding("frag-high", SeverityCritical, "summary", ev...) }
	for _, tc := range []struct {
		name    string
		fields  map[string]string
		config  map[string]string
		can     Capabilities
		finding Finding
		want    []string
	}{
		{"nothing purgeable, holes below ignore-bytes, no methods",
			map[string]string{"allocator_rss_bytes": mb(5), "allocator_frag_bytes": mb(53)}, nil, Capabilities{}, frag(), nil},
		{"the rules' purgeable bytes win over allocator_rss_bytes",
			map[string]string{"allocator_rss_bytes": mb(50), "allocator_frag_bytes": mb(53)}, nil, Capabilities{}, frag(factBytes("purgeable_bytes", 5*MB)), nil},
		{"free pages to give back",
			map[string]string{"allocator_rss_bytes": mb(120), "allocator_frag_bytes": mb(53)}, nil, Capabilities{}, frag(), []string{"Purge: about 120.0 MiB back"}},
		{"holes defrag can fill",
			map[string]string{"allocator_rss_bytes": mb(5), "allocator_frag_bytes": mb(300)}, nil, Capabilities{}, frag(), []string{"Defrag: up to 300.0 MiB back"}},
		{"a build that refused defrag",
			map[string]string{"allocator_rss_bytes": mb(5), "allocator_frag_bytes": mb(300)}, nil,
			Capabilities{Learned: map[string]string{FactDefragSupported: "no"}}, frag(), nil},
		{"defrag already on",
			map[string]string{"allocator_rss_bytes": mb(5), "allocator_frag_bytes": mb(300)}, map[string]string{"activedefrag": "yes"}, Capabilities{}, frag(), nil},
		{"not jemalloc",
			map[string]string{"allocator_rss_bytes": mb(120), "allocator_frag_bytes": mb(300), "mem_allocator": "libc"}, nil, Capabilities{}, frag(), nil},
		{"methods configured, a replica",
			map[string]string{"allocator_rss_bytes": mb(5), "allocator_frag_bytes": mb(53), "connected_slaves": "1", "used_memory": mb(60), "used_memory_rss": mb(180)},
			nil, methods, frag(), []string{"Failover: about 120.0 MiB back", "Restart: about 120.0 MiB back"}},
		{"methods configured, no replica to fail over to",
			map[string]string{"allocator_rss_bytes": mb(5), "allocator_frag_bytes": mb(53), "connected_slaves": "0", "used_memory": mb(60), "used_memory_rss": mb(180)},
			nil, methods, frag(), []string{"Restart: about 120.0 MiB back"}},
		{"a replica does not fail over",
			map[string]string{"allocator_rss_bytes": mb(5), "allocator_frag_bytes": mb(53), "role": "slave", "connected_slaves": "1"},
			nil, Capabilities{FailoverMethod: "failover"}, frag(), nil},
		{"noeviction near the limit",
			nil, map[string]string{"maxmemory-policy": "noeviction"}, Capabilities{}, newFinding("noeviction-trap", SeverityWarning, "summary"), []string{"Set policy allkeys-lru"}},
		{"volatile-lfu without TTLs",
			nil, map[string]string{"maxmemory-policy": "volatile-lfu"}, Capabilities{}, newFinding("volatile-no-ttl", SeverityWarning, "summary"), []string{"Set policy allkeys-lfu"}},
		{"room under the memory limit",
			map[string]string{"used_memory": mb(60)}, map[string]string{"maxmemory": mb(100), "maxmemory-policy": "allkeys-lru"}, Capabilities{},
			newFinding("maxmemory-near", SeverityCritical, "summary", factBytes("safe_maxmemory", 163*MB+12345)), []string{"Set maxmemory 163.0 MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := fixture(t, "redis-7.0.txt", tc.fields, tc.config)
			r := &Report{Instance: "cache-1", Snapshot: snap, Can: tc.can, Findings: []Finding{tc.finding}}
			var got []string
			for _, o := range ActionOptions(r, tc.finding) {
				got = append(got, o.Label)
				if o.Action == ActionConfigSet && (o.Set.Name == "" || o.Set.Value == "") {
					t.Errorf("%s without its setting: %+v", o.Label, o.Set)
				}
				if o.Set.Name == "maxmemory" && o.Set.Value != mb(163) {
					t.Errorf("maxmemory %s, want whole MiB %s", o.Set.Value, mb(163))
				}
			}
			if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
				t.Errorf("options %q, want %q", got, tc.want)
			}
			sameWhenCompact(t, r)
		})
	}
	failed := &Report{Instance: "cache-1", Error: &ReportError{Class: ClassRefused}, Can: methods}
	if got := ActionOptions(failed, frag()); got != nil {
		t.Errorf("a failed probe offers %v", got)
	}
}
