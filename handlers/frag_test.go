package handlers

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// versionFixture is a snapshot of what a real build of one release answered
// on the same fragmented data set (testdata/versions/README.md): INFO
// everything, and MEMORY STATS flattened as the probe flattens it.
func versionFixture(t *testing.T, dir string) *Snapshot {
	t.Helper()
	info, err := os.ReadFile(filepath.Join("testdata", "versions", dir, "info-everything.txt"))
	if err != nil {
		t.Fatal(err)
	}
	stats, err := os.ReadFile(filepath.Join("testdata", "versions", dir, "memory-stats.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return &Snapshot{Instance: "cache-1", ProbedAt: time.Unix(1_800_000_000, 0), Info: ParseInfo(string(info)),
		Config: map[string]string{"activedefrag": "no", "save": ""}, MemoryStats: parseMemoryStats(t, string(stats))}
}

// parseMemoryStats reads MEMORY STATS as redis-cli prints it, one reply
// element a line. A "db.N" name is followed by its own name/value pairs
// (overhead.hashtable.*), which get the "db.N." prefix.
func parseMemoryStats(t *testing.T, text string) map[string]float64 {
	t.Helper()
	lines := strings.Fields(text)
	out := map[string]float64{}
	prefix := ""
	for i := 0; i < len(lines); i++ {
		name := lines[i]
		if n, ok := strings.CutPrefix(name, "db."); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			prefix = name + "."
			continue
		}
		if !strings.HasPrefix(name, "overhead.hashtable.") {
			prefix = ""
		}
		if i+1 >= len(lines) {
			t.Fatalf("MEMORY STATS: %s has no value", name)
		}
		f, err := strconv.ParseFloat(lines[i+1], 64)
		if err != nil {
			t.Fatalf("MEMORY STATS: %s = %q: %v", name, lines[i+1], err)
		}
		out[prefix+name] = f
		i++
	}
	return out
}

func findingsByID(fs []Finding) map[string]Finding {
	m := map[string]Finding{}
	for _, f := range fs {
		m[f.ID] = f
	}
	return m
}

func evidenceInt(t *testing.T, f Finding, name string) int64 {
	t.Helper()
	fact, ok := f.Evidence.Get(name)
	if !ok {
		t.Fatalf("%s has no evidence %s: %+v", f.ID, name, f.Evidence)
	}
	n, ok := fact.Value.(int64)
	if !ok {
		t.Fatalf("%s evidence %s = %#v, not bytes", f.ID, name, fact.Value)
	}
	return n
}

func stepAnswer(a FragAnalysis, question string) (string, bool) {
	for _, s := range a.Steps {
		if strings.HasPrefix(s.Question, question) {
			return s.Answer, true
		}
	}
	return "", false
}

// Every release answered the same data set (500,000 151-byte strings, every
// second one deleted) with about 52 MiB of holes under 60 MiB of excess:
// each verdict must name holes as the carrier, keep frag-high at its level
// and say a purge will not help, whatever the version calls its fields.
func TestFragTreeOnVersions(t *testing.T) {
	cases := []struct {
		dir, version, server string
		smallBins            bool // Redis 7.4+ counts small-bin holes only
		muzzy                bool // allocator_muzzy reported
	}{
		{"6.2.16", "6.2.16", "redis", false, false},
		{"7.2.6", "7.2.6", "redis", false, false},
		{"7.4.1", "7.4.1", "redis", true, true},
		{"redis-8.0-branch", "7.9.224", "redis", true, true},
		{"valkey-7.2.7", "7.2.7", "valkey", false, false},
		{"valkey-8.0.1", "8.0.1", "valkey", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			s := versionFixture(t, tc.dir)
			if s.Version() != tc.version || s.ServerName() != tc.server {
				t.Fatalf("read as %s %s, want %s %s", s.ServerName(), s.Version(), tc.server, tc.version)
			}
			if smallBinHoles(s) != tc.smallBins || luaOutsideAllocator(s) == tc.smallBins {
				t.Errorf("smallBinHoles = %v, luaOutsideAllocator = %v; want small bins %v", smallBinHoles(s), luaOutsideAllocator(s), tc.smallBins)
			}
			if _, ok := s.Int("allocator_muzzy"); ok != tc.muzzy {
				t.Errorf("allocator_muzzy reported = %v, want %v", ok, tc.muzzy)
			}
			a := FragTree(Input{Cur: s, T: DefaultThresholds()})
			got := findingsByID(a.Findings)
			checkFindings(t, got, map[string]Severity{
				"frag-high": SeverityCritical, "frag-post-peak": SeverityNone, "frag-rss-overhead": SeverityNone,
				"frag-noise": SeverityNone, "frag-fork-transient": SeverityNone,
				// 52 MiB of holes is below alloc_frag_min_bytes (and below
				// active-defrag-ignore-bytes: defrag would not even start).
				"frag-allocator": SeverityNone, "defrag-disabled": SeverityNone,
			}, map[string]string{"frag-high": "holes in pages still in use"})
			high := got["frag-high"]
			if !strings.Contains(high.Summary, "MEMORY PURGE will not return them") {
				t.Errorf("frag-high does not say a purge will not help: %s", high.Summary)
			}

			// The split reads the same numbers MEMORY STATS gives, and the
			// three parts add up to the excess within 2%.
			for field, stat := range map[string]string{
				"allocator_frag_bytes": "allocator-fragmentation.bytes", "allocator_rss_bytes": "allocator-rss.bytes",
				"rss_overhead_bytes": "rss-overhead.bytes", "mem_fragmentation_bytes": "fragmentation.bytes",
			} {
				if got, want := evidenceInt(t, high, field), int64(s.MemoryStats[stat]); got != want {
					t.Errorf("%s = %d, MEMORY STATS %s = %d", field, got, stat, want)
				}
			}
			parts := evidenceInt(t, high, "allocator_frag_bytes") + evidenceInt(t, high, "allocator_rss_bytes") + evidenceInt(t, high, "rss_overhead_bytes")
			if excess := evidenceInt(t, high, "mem_fragmentation_bytes"); math.Abs(float64(parts-excess)) > 0.02*float64(excess) {
				t.Errorf("parts add up to %d, excess is %d", parts, excess)
			}
			split, _ := stepAnswer(a, "Where does the excess sit?")
			holes := HumanBytes(int64(s.MemoryStats["allocator-fragmentation.bytes"]))
			if !strings.Contains(split, "holes in used pages "+holes) || !strings.HasSuffix(split, "most of it is holes in pages still in use") {
				t.Errorf("split step = %q, want holes %s as the carrier", split, holes)
			}
			// The peak (1.9x) is below post_peak_factor: no peak step.
			if ans, ok := stepAnswer(a, "Is used_memory_peak"); ok {
				t.Errorf("peak step answered %q on a 1.9x peak", ans)
			}

			// With a lower bar frag-allocator fires, and says how this
			// version counts holes.
			th := DefaultThresholds()
			th.AllocFragMinBytes = 40 << 20
			alloc := findingsByID(FragTree(Input{Cur: s, T: th}).Findings)["frag-allocator"]
			if alloc.Severity != SeverityWarning {
				t.Fatalf("frag-allocator = %s with a 40 MiB bar", alloc.Severity)
			}
			if strings.Contains(alloc.Summary, "7.4+") != tc.smallBins {
				t.Errorf("frag-allocator summary %q: 7.4 note wanted = %v", alloc.Summary, tc.smallBins)
			}

			// A BGSAVE on this already fragmented state holds nothing back.
			forked := *s
			forked.Info = Info{}
			for k, v := range s.Info {
				forked.Info[k] = v
			}
			forked.Info["rdb_bgsave_in_progress"] = "1"
			fork := findingsByID(FragTree(Input{Cur: &forked, Prev: s, T: DefaultThresholds()}).Findings)
			checkFindings(t, fork, map[string]Severity{"frag-high": SeverityCritical, "frag-fork-transient": SeverityInfo},
				map[string]string{"frag-fork-transient": "kept: frag-high"})
		})
	}
}

// measured holds INFO numbers read from a real redis-server 7.0.15 (the
// packaged build) in the states the integration tests reproduce; each case
// lays them over the real redis-7.0.txt capture.
var measured = map[string]map[string]string{
	// 200,000 SETs of 1,000 bytes, then FLUSHALL ASYNC with
	// jemalloc-bg-thread no: free pages retained.
	"flushed": {
		"used_memory": "1038304", "used_memory_rss": "233676800", "used_memory_peak": "219910768",
		"allocator_allocated": "1532992", "allocator_active": "3207168", "allocator_resident": "230285312",
		"allocator_frag_ratio": "2.09", "allocator_frag_bytes": "1674176", "allocator_rss_ratio": "71.80", "allocator_rss_bytes": "227078144",
		"rss_overhead_ratio": "1.01", "rss_overhead_bytes": "3391488", "mem_fragmentation_ratio": "233.68", "mem_fragmentation_bytes": "232676800",
	},
	// 300,000 values of 40 to 600 bytes, two thirds deleted at random:
	// holes, under a peak 5.8 times today's data.
	"holes": {
		"used_memory": "37616920", "used_memory_rss": "116580352", "used_memory_peak": "219910768",
		"allocator_allocated": "38177488", "allocator_active": "103485440", "allocator_resident": "113078272",
		"allocator_frag_ratio": "2.71", "allocator_frag_bytes": "65307952", "allocator_rss_ratio": "1.09", "allocator_rss_bytes": "9592832",
		"rss_overhead_ratio": "1.03", "rss_overhead_bytes": "3502080", "mem_fragmentation_ratio": "3.10", "mem_fragmentation_bytes": "79001736",
	},
	// A server just started: 6 MiB of RSS beyond 900 KiB of data.
	"fresh": {
		"used_memory": "914864", "used_memory_rss": "6791168", "used_memory_peak": "914864",
		"allocator_allocated": "1690848", "allocator_active": "1826816", "allocator_resident": "4497408",
		"allocator_frag_ratio": "1.08", "allocator_frag_bytes": "135968", "allocator_rss_ratio": "2.46", "allocator_rss_bytes": "2670592",
		"rss_overhead_ratio": "1.51", "rss_overhead_bytes": "2293760", "mem_fragmentation_ratio": "7.75", "mem_fragmentation_bytes": "5914632",
		"db0": absent,
	},
}

// ratioBytes pairs each fragmentation ratio with its absolute bytes.
var ratioBytes = map[string]string{
	"mem_fragmentation_ratio": "mem_fragmentation_bytes", "allocator_frag_ratio": "allocator_frag_bytes",
	"allocator_rss_ratio": "allocator_rss_bytes", "rss_overhead_ratio": "rss_overhead_bytes",
}

func with(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// Each branch is decided by the component that carries the excess.
func TestFragTreeByComponent(t *testing.T) {
	cases := []struct {
		name    string
		file    string // under testdata/info; version: a directory of testdata/versions instead
		version string
		fields  map[string]string
		config  map[string]string
		want    map[string]Severity
		summary map[string]string
		path    map[string]string // step question prefix -> answer substring
	}{
		{name: "free pages retained after a flush: the purge is the fix",
			fields: measured["flushed"], config: map[string]string{"jemalloc-bg-thread": "no"},
			want: map[string]Severity{"frag-high": SeverityInfo, "frag-post-peak": SeverityWarning, "frag-noise": SeverityNone,
				"frag-allocator": SeverityNone, "frag-rss-overhead": SeverityNone},
			summary: map[string]string{"frag-high": "MEMORY PURGE returns them", "frag-post-peak": "MEMORY PURGE returns up to 216.6 MiB"},
			path: map[string]string{"Where does the excess sit?": "most of it is free pages the allocator retains",
				"Is used_memory_peak": "yes (peak 211.8x): a post-peak artifact"}},
		{name: "holes under a big peak: frag-high keeps its level",
			fields: measured["holes"],
			want: map[string]Severity{"frag-high": SeverityCritical, "frag-post-peak": SeverityNone, "frag-rss-overhead": SeverityNone,
				"frag-allocator": SeverityNone},
			summary: map[string]string{"frag-high": "MEMORY PURGE will not return them"},
			path: map[string]string{"Where does the excess sit?": "most of it is holes in pages still in use",
				"Is used_memory_peak": "no: peak 5.8x, but most of the excess is holes"}},
		{name: "holes and retained pages both big: purge named for its part, frag-high kept",
			fields: with(measured["holes"], map[string]string{"allocator_rss_bytes": mb(40), "allocator_rss_ratio": "1.40",
				"used_memory_rss": strconv.Itoa(116580352 + 40*MB - 9592832), "mem_fragmentation_bytes": strconv.Itoa(79001736 + 40*MB - 9592832), "mem_fragmentation_ratio": "3.91"}),
			want:    map[string]Severity{"frag-high": SeverityCritical, "frag-post-peak": SeverityInfo},
			summary: map[string]string{"frag-post-peak": "MEMORY PURGE returns up to 40.0 MiB", "frag-high": "holes in pages still in use"}},
		{name: "Lua outside the allocator on 7.0",
			fields: map[string]string{"used_memory": mb(200), "used_memory_rss": mb(520), "mem_fragmentation_ratio": "2.60", "mem_fragmentation_bytes": mb(320),
				"allocator_frag_ratio": "1.02", "allocator_frag_bytes": mb(4), "allocator_rss_ratio": "1.02", "allocator_rss_bytes": mb(4),
				"rss_overhead_ratio": "2.42", "rss_overhead_bytes": mb(305), "used_memory_vm_eval": mb(290)},
			want:    map[string]Severity{"frag-high": SeverityCritical, "frag-rss-overhead": SeverityWarning, "frag-post-peak": SeverityNone, "frag-allocator": SeverityNone},
			summary: map[string]string{"frag-rss-overhead": "the Lua VM holds 290.0 MiB", "frag-high": "outside the allocator"}},
		{name: "muzzy pages on 7.4: the outside part a purge returns",
			version: "7.4.1",
			fields: map[string]string{"used_memory": mb(400), "used_memory_rss": mb(700), "mem_fragmentation_ratio": "1.75", "mem_fragmentation_bytes": mb(300),
				"allocator_frag_ratio": "1.02", "allocator_frag_bytes": mb(8), "allocator_rss_ratio": "1.01", "allocator_rss_bytes": mb(4),
				"rss_overhead_ratio": "1.68", "rss_overhead_bytes": mb(285), "allocator_muzzy": mb(250)},
			want:    map[string]Severity{"frag-high": SeverityWarning, "frag-rss-overhead": SeverityWarning},
			summary: map[string]string{"frag-rss-overhead": "250.0 MiB are muzzy pages"}},
		{name: "a few MiB beyond a tiny data set: noise, whatever the ratio",
			fields: measured["fresh"],
			want:   map[string]Severity{"frag-noise": SeverityInfo, "frag-high": SeverityNone, "frag-post-peak": SeverityNone},
			path:   map[string]string{"Is the RSS beyond the data": "no (5.6 MiB): ratio 7.75 is noise"}},
		{name: "libc: no split, no purge, no defrag",
			file:   "redis-7.4-libc.txt",
			fields: map[string]string{"used_memory": mb(300), "used_memory_rss": mb(600), "mem_fragmentation_ratio": "2.00", "mem_fragmentation_bytes": mb(300)},
			want:   map[string]Severity{"allocator-not-jemalloc": SeverityWarning, "frag-high": SeverityCritical, "frag-allocator": SeverityNone, "frag-post-peak": SeverityNone},
			path:   map[string]string{"Where does the excess sit?": "unknown: libc does not report it"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "redis-7.0.txt"
			}
			cur := fixture(t, file, tc.fields, tc.config)
			if tc.version != "" {
				cur = versionFixture(t, tc.version)
				for k, v := range tc.fields {
					cur.Info[k] = v
				}
			}
			a := FragTree(Input{Cur: cur, T: DefaultThresholds()})
			got := findingsByID(a.Findings)
			checkFindings(t, got, tc.want, tc.summary)
			if f, ok := got["frag-post-peak"]; ok {
				if _, ok := f.Evidence.Get("purgeable_bytes"); !ok {
					t.Errorf("frag-post-peak has no purgeable_bytes: %+v", f.Evidence)
				}
			}
			for q, want := range tc.path {
				if ans, ok := stepAnswer(a, q); !ok || !strings.Contains(ans, want) {
					t.Errorf("step %q answered %q (asked: %v), want %q", q, ans, ok, want)
				}
			}
			// Every ratio in the evidence has its bytes next to it.
			for _, f := range a.Findings {
				for ratio, bytes := range ratioBytes {
					if _, ok := f.Evidence.Get(ratio); ok {
						if _, ok := f.Evidence.Get(bytes); !ok {
							t.Errorf("%s: %s without %s", f.ID, ratio, bytes)
						}
					}
				}
			}
		})
	}
}

// The previous sample decides what a fork explains.
func TestFragTreeDuringFork(t *testing.T) {
	fragmented := map[string]string{"rdb_bgsave_in_progress": "1", "rdb_current_bgsave_time_sec": "12", "current_cow_size": mb(3), "allocator_frag_bytes": mb(150)}
	clean := map[string]string{"rdb_bgsave_in_progress": "0", "mem_fragmentation_ratio": "1.08", "used_memory_rss": strconv.Itoa(60881680 * 108 / 100),
		"mem_fragmentation_bytes": mb(5), "allocator_frag_ratio": "1.03", "allocator_frag_bytes": mb(2)}
	cases := []struct {
		name    string
		prev    map[string]string // nil: no previous sample
		want    map[string]Severity
		summary map[string]string
	}{
		{name: "rose since the sample before the fork: held at info",
			prev:    clean,
			want:    map[string]Severity{"frag-high": SeverityInfo, "frag-allocator": SeverityInfo, "frag-fork-transient": SeverityInfo},
			summary: map[string]string{"frag-fork-transient": "held until it ends: frag-high, frag-allocator", "frag-high": "Held at info while the BGSAVE runs"}},
		{name: "already as high before the fork: kept",
			prev:    map[string]string{"rdb_bgsave_in_progress": "0"},
			want:    map[string]Severity{"frag-high": SeverityCritical, "frag-allocator": SeverityWarning, "frag-fork-transient": SeverityInfo},
			summary: map[string]string{"frag-fork-transient": "kept: frag-high, frag-allocator"}},
		{name: "warning before, critical now: held at warning",
			prev: map[string]string{"rdb_bgsave_in_progress": "0", "mem_fragmentation_ratio": "1.70"},
			want: map[string]Severity{"frag-high": SeverityWarning, "frag-allocator": SeverityWarning}},
		{name: "no previous sample: nothing held back",
			want:    map[string]Severity{"frag-high": SeverityCritical, "frag-allocator": SeverityWarning, "frag-fork-transient": SeverityInfo},
			summary: map[string]string{"frag-fork-transient": "the child has 3.0 MiB of copy-on-write pages"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Cur: fixture(t, "redis-7.0.txt", fragmented, nil), T: DefaultThresholds()}
			if tc.prev != nil {
				in.Prev = fixture(t, "redis-7.0.txt", with(fragmented, tc.prev), nil)
			}
			checkFindings(t, findingsByID(FragTree(in).Findings), tc.want, tc.summary)
		})
	}
}

func TestEffectiveFragRatio(t *testing.T) {
	th := DefaultThresholds()
	cases := []struct {
		name   string
		fields map[string]string
		ratio  float64
		ok     bool
	}{
		{"fragmented", nil, 2.08, true},
		{"noise on a fresh server", measured["fresh"], 0, false},
		{"not reported", map[string]string{"mem_fragmentation_ratio": absent, "used_memory_rss": absent}, 0, false},
		{"hundreds of MiB beyond a small data set", measured["flushed"], 233.68, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := EffectiveFragRatio(fixture(t, "redis-7.0.txt", tc.fields, nil), th)
			if r != tc.ratio || ok != tc.ok {
				t.Errorf("EffectiveFragRatio = %v, %v; want %v, %v", r, ok, tc.ratio, tc.ok)
			}
		})
	}
	for _, tc := range []struct {
		ratio     float64
		used, rss int64
		want      float64
		ok        bool
	}{
		{9.33, 700 << 10, 6 << 20, 0, false}, // a few MiB: noise
		{2.0, 100 << 20, 200 << 20, 2.0, true},
		{2.0, 0, 0, 2.0, true}, // sizes unknown: the ratio as it is
		{0, 100 << 20, 200 << 20, 0, false},
		{math.NaN(), 0, 0, 0, false},
	} {
		if got, ok := FragRatioOf(tc.ratio, tc.used, tc.rss, th); got != tc.want || ok != tc.ok {
			t.Errorf("FragRatioOf(%v, %d, %d) = %v, %v; want %v, %v", tc.ratio, tc.used, tc.rss, got, ok, tc.want, tc.ok)
		}
	}
}

// The path reads in the runbook's order: allocator, swap, noise, where the
// excess sits, the ratio, the peak, each component, defrag, fork.
func TestFragTreePathOrder(t *testing.T) {
	a := FragTree(Input{Cur: fixture(t, "redis-7.0.txt", with(measured["holes"], map[string]string{"allocator_frag_bytes": mb(150)}), nil), T: DefaultThresholds()})
	var lines []string
	for _, s := range a.Steps {
		lines = append(lines, s.Question+" -> "+s.Answer)
	}
	path := strings.Join(lines, "\n")
	order := []string{"Which allocator?", "Is the RSS beyond the data", "Where does the excess sit?", "Is mem_fragmentation_ratio >=",
		"Is used_memory_peak", "Is allocator_frag_ratio", "Does the allocator retain", "Is there at least", "Is active defrag on?", "Is a fork"}
	last := -1
	for _, q := range order {
		i := strings.Index(path, q)
		if i < 0 || i < last {
			t.Fatalf("step %q missing or out of order in path:\n%s", q, path)
		}
		last = i
	}
	if a.Steps[len(a.Steps)-1].Answer != "no" {
		t.Errorf("last step = %+v", a.Steps[len(a.Steps)-1])
	}
}
