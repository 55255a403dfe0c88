package handlers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// versionsDir holds what real builds of each supported server answered
// (INFO everything, MEMORY STATS) after the same load: 500,000 SETRANGE
// calls, then every second key deleted. They replace the INFO replies
// that were written by hand from each version's source.
const versionsDir = "testdata/versions"

// versionCaptures is one row per directory of versionsDir.
var versionCaptures = []struct {
	dir     string
	version string // what Snapshot.Version reports
	server  string
	// atLeast must hold for VersionAtLeast, notAtLeast must not.
	atLeast, notAtLeast [3]int
	usedMemory, rss     int64
	fragRatio           float64
}{
	{dir: "6.2.16", version: "6.2.16", server: "redis", atLeast: [3]int{6, 2, 16}, notAtLeast: [3]int{6, 2, 17},
		usedMemory: 59030760, rss: 120705024, fragRatio: 2.05},
	{dir: "7.2.6", version: "7.2.6", server: "redis", atLeast: [3]int{7, 2, 6}, notAtLeast: [3]int{7, 2, 7},
		usedMemory: 59161248, rss: 122494976, fragRatio: 2.07},
	{dir: "7.4.1", version: "7.4.1", server: "redis", atLeast: [3]int{7, 4, 1}, notAtLeast: [3]int{7, 4, 2},
		usedMemory: 59241088, rss: 123125760, fragRatio: 2.08},
	// A build of the 8.0 branch before its release reports 7.9.224: version
	// checks must not take it for 8.0.
	{dir: "redis-8.0-branch", version: "7.9.224", server: "redis", atLeast: [3]int{7, 9, 0}, notAtLeast: [3]int{8, 0, 0},
		usedMemory: 59240536, rss: 124776448, fragRatio: 2.11},
	// Valkey freezes redis_version at 7.2.4; its own is valkey_version.
	{dir: "valkey-7.2.7", version: "7.2.7", server: "valkey", atLeast: [3]int{7, 2, 7}, notAtLeast: [3]int{7, 2, 8},
		usedMemory: 59174264, rss: 122585088, fragRatio: 2.07},
	{dir: "valkey-8.0.1", version: "8.0.1", server: "valkey", atLeast: [3]int{8, 0, 1}, notAtLeast: [3]int{8, 0, 2},
		usedMemory: 57225232, rss: 119095296, fragRatio: 2.08},
}

// versionSnapshot parses one real capture, with the CONFIG answers given.
func versionSnapshot(t *testing.T, dir string, config map[string]string) *Snapshot {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(versionsDir, dir, "info-everything.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{"activedefrag": "no", "save": "", "appendonly": "no", "replica-ignore-maxmemory": "yes"}
	for k, v := range config {
		cfg[k] = v
	}
	return &Snapshot{Instance: "cache-1", ProbedAt: time.Unix(1_800_000_000, 0), Info: ParseInfo(string(b)), Config: cfg}
}

func TestVersionCapturesAllListed(t *testing.T) {
	entries, err := os.ReadDir(versionsDir)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, c := range versionCaptures {
		listed[c.dir] = true
	}
	for _, e := range entries {
		if e.IsDir() && !listed[e.Name()] {
			t.Errorf("%s/%s has no row in versionCaptures", versionsDir, e.Name())
		}
	}
}

func TestParseInfoRealVersions(t *testing.T) {
	for _, c := range versionCaptures {
		t.Run(c.dir, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(versionsDir, c.dir, "info-everything.txt"))
			if err != nil {
				t.Fatal(err)
			}
			s := versionSnapshot(t, c.dir, nil)
			if got := s.Version(); got != c.version {
				t.Errorf("Version() = %q, want %q", got, c.version)
			}
			if got := s.ServerName(); got != c.server {
				t.Errorf("ServerName() = %q, want %q", got, c.server)
			}
			if !s.VersionAtLeast(c.atLeast[0], c.atLeast[1], c.atLeast[2]) || s.VersionAtLeast(c.notAtLeast[0], c.notAtLeast[1], c.notAtLeast[2]) {
				t.Errorf("VersionAtLeast: %q is not at least %v and below %v", s.Version(), c.atLeast, c.notAtLeast)
			}
			if s.Role() != "master" || s.IsReplica() {
				t.Errorf("Role() = %q", s.Role())
			}
			if je, known := s.Jemalloc(); !je || !known {
				t.Errorf("Jemalloc() = %v, %v", je, known)
			}
			if v, ok := s.Maxmemory(); !ok || v != 0 {
				t.Errorf("Maxmemory() from INFO = %d, %v; want 0", v, ok)
			}
			if p, ok := s.Policy(); !ok || p != "noeviction" {
				t.Errorf("Policy() from INFO = %q, %v", p, ok)
			}
			// 7.4 and later add subexpiry= to the keyspace line.
			if keys, expires := s.Keys(); keys != 250000 || expires != 0 {
				t.Errorf("Keys() = %d, %d; want 250000, 0", keys, expires)
			}
			if v, _ := s.Int("used_memory"); v != c.usedMemory {
				t.Errorf("used_memory = %d, want %d", v, c.usedMemory)
			}
			if v, _ := s.Int("used_memory_rss"); v != c.rss {
				t.Errorf("used_memory_rss = %d, want %d", v, c.rss)
			}
			if v, _ := s.Float("mem_fragmentation_ratio"); v != c.fragRatio {
				t.Errorf("mem_fragmentation_ratio = %v, want %v", v, c.fragRatio)
			}
			// Every "field:value" line reaches the map, sections do not.
			lines := 0
			for line := range strings.SplitSeq(string(raw), "\r\n") {
				if line != "" && !strings.HasPrefix(line, "#") {
					lines++
				}
			}
			if len(s.Info) != lines {
				t.Errorf("ParseInfo kept %d fields, the capture has %d lines", len(s.Info), lines)
			}
		})
	}
}

// Every real build has an Errorstats section, empty when nothing failed:
// no OOM error is a count of 0, shown as 0, never as "unknown".
func TestOOMErrorsAbsentMeansZeroOnRealVersions(t *testing.T) {
	for _, c := range versionCaptures {
		t.Run(c.dir, func(t *testing.T) {
			s := versionSnapshot(t, c.dir, nil)
			if _, ok := s.Info.ErrorCount("OOM"); ok {
				t.Fatal("the capture has an errorstat_OOM line; this test needs one without")
			}
			if n, ok := OOMErrors(s); n != 0 || !ok {
				t.Errorf("OOMErrors = %d, %v; want 0, true", n, ok)
			}
			if m, ok := keyMetrics(s, 0).Get("errorstat_OOM"); !ok || m.Text != "0" {
				t.Errorf("metric errorstat_OOM = %+v, %v; want 0", m, ok)
			}
			near := fixtureEval(t, s, map[string]string{"maxmemory": mb(64), "maxmemory-policy": "noeviction"}, 0)
			f, ok := near["maxmemory-near"]
			if !ok {
				t.Fatalf("maxmemory-near did not fire at %s of 64 MiB", HumanBytes(c.usedMemory))
			}
			if e, _ := f.Evidence.Get("errorstat_OOM"); e.Text != "0" {
				t.Errorf("maxmemory-near evidence errorstat_OOM = %q, want 0", e.Text)
			}
		})
	}
	// A reply without Errorstats (before Redis 6.2) does not know.
	s := versionSnapshot(t, "6.2.16", nil)
	delete(s.Info, "total_error_replies")
	if _, ok := OOMErrors(s); ok {
		t.Error("OOMErrors without an Errorstats section must be unknown")
	}
	if _, ok := keyMetrics(s, 0).Get("errorstat_OOM"); ok {
		t.Error("an unknown OOM count must not be shown as a number")
	}
}

// fixtureEval runs every rule on s with CONFIG answers replaced (maxmemory
// and the policy also in INFO, as a server reports them) and returns the
// findings by id.
func fixtureEval(t *testing.T, s *Snapshot, config map[string]string, limit int64) map[string]Finding {
	t.Helper()
	c := *s
	c.Info = Info{}
	for k, v := range s.Info {
		c.Info[k] = v
	}
	c.Config = map[string]string{}
	for k, v := range s.Config {
		c.Config[k] = v
	}
	for k, v := range config {
		c.Config[k] = v
		if k == "maxmemory" || k == "maxmemory-policy" {
			c.Info[strings.ReplaceAll(k, "-", "_")] = v
		}
	}
	got := map[string]Finding{}
	for _, f := range Evaluate(Input{Cur: &c, MemoryLimit: limit, T: DefaultThresholds()}) {
		got[f.ID] = f
	}
	return got
}

// The OOM and limit rules read the same fields on every supported build:
// the same state gives the same verdicts.
func TestLimitRulesOnRealVersions(t *testing.T) {
	for _, c := range versionCaptures {
		t.Run(c.dir, func(t *testing.T) {
			s := versionSnapshot(t, c.dir, nil)
			// About 57 MiB in use against a 40 MiB limit.
			full := fixtureEval(t, s, map[string]string{"maxmemory": mb(40), "maxmemory-policy": "noeviction"}, 0)
			checkFindings(t, full, map[string]Severity{"oom-rejecting": SeverityCritical, "maxmemory-near": SeverityNone, "noeviction-trap": SeverityInfo},
				map[string]string{"oom-rejecting": "Every write that needs memory fails now"})

			cache := fixtureEval(t, s, map[string]string{"maxmemory": mb(40), "maxmemory-policy": "allkeys-lru"}, 0)
			checkFindings(t, cache, map[string]Severity{"oom-rejecting": SeverityNone, "maxmemory-near": SeverityInfo, "noeviction-trap": SeverityNone}, nil)

			// Every key lacks a TTL: volatile-lru cannot evict any.
			volatile := fixtureEval(t, s, map[string]string{"maxmemory": mb(40), "maxmemory-policy": "volatile-lru"}, 0)
			checkFindings(t, volatile, map[string]Severity{"oom-rejecting": SeverityCritical, "volatile-no-ttl": SeverityCritical, "maxmemory-near": SeverityNone}, nil)

			unset := fixtureEval(t, s, nil, 256*MB)
			checkFindings(t, unset, map[string]Severity{"maxmemory-unset": SeverityWarning, "oom-rejecting": SeverityNone}, nil)
			if room, ok := evidenceBytes(unset["maxmemory-unset"], "safe_maxmemory"); !ok || room <= 0 || room > 256*MB {
				t.Errorf("safe_maxmemory = %d, %v", room, ok)
			}
		})
	}
}

// The hand-written scenarios in testdata/info (states no real capture
// shows) keep the field set of the real reply of their version, apart from
// what the scenario itself adds: a rule tested on them reads the fields a
// real server sends.
func TestScenarioCapturesHaveRealFieldSets(t *testing.T) {
	for _, tc := range []struct {
		file, real string
		extra      []string // fields the scenario adds to the real set
	}{
		{file: "redis-6.2-replica.txt", real: "6.2.16", extra: []string{"master_host", "master_port", "master_link_status", "master_last_io_seconds_ago",
			"master_sync_in_progress", "slave_repl_offset", "slave_priority", "slave_read_only", "replica_announced"}},
		{file: "redis-7.2-oom.txt", real: "7.2.6"},
		{file: "redis-7.4-libc.txt", real: "7.4.1"},
		{file: "valkey-8.1.txt", real: "valkey-8.0.1", extra: []string{"valkey_release_stage", "clients_hz", "paused_reason", "paused_actions", "paused_timeout_milliseconds"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			scenario := fieldSet(ParseInfo(readInfoCapture(t, tc.file)))
			real := fieldSet(versionSnapshot(t, tc.real, nil).Info)
			for _, f := range tc.extra {
				if !scenario[f] {
					t.Errorf("%s lacks %s, which it is said to add", tc.file, f)
				}
				delete(scenario, f)
			}
			for f := range scenario {
				if !real[f] {
					t.Errorf("%s has %s, which real %s does not send", tc.file, f, tc.real)
				}
			}
			for f := range real {
				if !scenario[f] {
					t.Errorf("%s lacks %s, which real %s sends", tc.file, f, tc.real)
				}
			}
		})
	}
}

// fieldSet is the names of an INFO reply's fields, without the lines that
// vary with the load rather than the version: per-command and per-error
// statistics, databases and connected replicas.
func fieldSet(info Info) map[string]bool {
	out := map[string]bool{}
	for k := range info {
		switch {
		case strings.HasPrefix(k, "cmdstat_"), strings.HasPrefix(k, "latency_percentiles_usec_"), strings.HasPrefix(k, "errorstat_"):
		case len(k) > 2 && k[:2] == "db" && strings.Trim(k[2:], "0123456789") == "":
		case len(k) > 5 && k[:5] == "slave" && strings.Trim(k[5:], "0123456789") == "":
		default:
			out[k] = true
		}
	}
	return out
}
