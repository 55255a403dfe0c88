package handlers

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// garbageBase is the real Redis 7.0 capture made interesting for every rule
// family: 64 MiB maxmemory nearly full under noeviction, OOM errors, a peak,
// persistence on. Each case below then breaks one field of it.
func garbageBase(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(infoCapturesDir, "redis-7.0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := setInfoLine(string(b), "maxmemory", "67108864")
	text = setInfoLine(text, "maxmemory_policy", "noeviction")
	text = setInfoLine(text, "allocator_frag_bytes", "125829120")
	text = setInfoLine(text, "latest_fork_usec", "900000")
	return text + "errorstat_OOM:count=17\r\n"
}

// setInfoLine replaces (or appends) one "field:value" line of raw INFO text.
func setInfoLine(text, field, value string) string {
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(field) + `:.*$`)
	if line.MatchString(text) {
		return line.ReplaceAllLiteralString(text, field+":"+value+"\r")
	}
	return text + field + ":" + value + "\r\n"
}

// garbageSnapshot parses raw INFO text as the probe does, CONFIG answering
// only what does not come from INFO, and validates it.
func garbageSnapshot(text string, config map[string]string) *Snapshot {
	cfg := map[string]string{"activedefrag": "no", "save": "3600 1", "appendonly": "no"}
	for k, v := range config {
		cfg[k] = v
	}
	s := &Snapshot{Instance: "cache-1", ProbedAt: time.Unix(1_800_000_000, 0), Info: ParseInfo(text), Config: cfg,
		MemoryStats: map[string]float64{"total.allocated": 60883424, "fragmentation": 2.08}}
	s.Validate()
	return s
}

var (
	// negativeBytes is a byte figure below zero as HumanBytes prints it.
	negativeBytes = regexp.MustCompile(`-\d+(\.\d+)? (B|KiB|MiB|GiB|TiB|PiB|EiB)\b`)
	// absurdBytes: no figure in these cases comes near a pebibyte.
	absurdBytes = regexp.MustCompile(`\d (PiB|EiB)\b`)
)

// signedFacts are the byte differences Redis prints signed: a negative one
// is a fact, not garbage.
var signedFacts = map[string]bool{"allocator_frag_bytes": true, "allocator_rss_bytes": true, "rss_overhead_bytes": true, "mem_fragmentation_bytes": true}

// findingText is everything a finding shows, one string to scan.
func findingText(f Finding) string {
	parts := []string{f.Summary}
	for _, e := range f.Evidence {
		parts = append(parts, e.Name+"="+e.Text)
	}
	return strings.Join(parts, " | ")
}

// checkNoNonsense fails when a finding shows a negative size for something
// that cannot be negative, a non-finite number, or evidence that cannot be
// encoded (a NaN).
func checkNoNonsense(t testing.TB, fs []Finding) {
	t.Helper()
	for _, f := range fs {
		for _, e := range f.Evidence {
			if n, ok := e.Value.(int64); ok && n < 0 && strings.HasSuffix(e.Text, "B") && !signedFacts[e.Name] {
				t.Errorf("%s: evidence %s = %s, a negative size", f.ID, e.Name, e.Text)
			}
		}
		for _, bad := range []string{"NaN", "+Inf", "-Inf"} {
			if strings.Contains(findingText(f), bad) {
				t.Errorf("%s shows %s: %s", f.ID, bad, findingText(f))
			}
		}
		if m := negativeBytes.FindString(f.Summary); m != "" {
			t.Errorf("%s summary shows a negative size %q: %s", f.ID, m, f.Summary)
		}
		if _, err := json.Marshal(f.Evidence); err != nil {
			t.Errorf("%s evidence does not encode: %v", f.ID, err)
		}
	}
}

func TestValidateGarbageNumbers(t *testing.T) {
	base := garbageBase(t)
	digits300 := "1" + strings.Repeat("0", 299) + ".5"
	cases := []struct {
		name, field, value string
		config             map[string]string
		note               string // the note in Missing (a prefix is enough)
		// derived: the rules may still know the value from a believable
		// source (the ratio from RSS and used_memory, maxmemory from
		// INFO when CONFIG's is garbage), so its evidence need not read
		// unknown; it must never quote the garbage.
		derived bool
	}{
		{"negative RSS", "used_memory_rss", "-9223372036854775808", nil,
			"INFO used_memory_rss: -9223372036854775808 is not a valid size (negative)", false},
		{"negative used memory", "used_memory", "-1", nil,
			"INFO used_memory: -1 is not a valid size (negative)", false},
		{"300-digit ratio", "mem_fragmentation_ratio", digits300, nil,
			"INFO mem_fragmentation_ratio: 1000000000000000000000000000000… is not a valid ratio (too long for a number)", true},
		{"ratio above the sane bound", "allocator_frag_ratio", "123456789.5", nil,
			"INFO allocator_frag_ratio: 123456789.5 is not a valid ratio (above 1000000)", false},
		{"int64 overflow", "used_memory", "9223372036854775808", nil,
			"INFO used_memory: 9223372036854775808 is not a valid size (overflows a 64-bit integer)", false},
		{"unsigned underflow printed with %zu", "allocator_frag_bytes", "18446744073709551000", nil,
			"INFO allocator_frag_bytes: 18446744073709551000 is not a valid size (overflows a 64-bit integer)", false},
		{"NaN ratio", "mem_fragmentation_ratio", "nan", nil,
			"INFO mem_fragmentation_ratio: nan is not a valid ratio (not finite)", true},
		{"infinite ratio", "allocator_frag_ratio", "+Inf", nil,
			"INFO allocator_frag_ratio: +Inf is not a valid ratio (not finite)", false},
		{"ratio overflowing a float", "mem_fragmentation_ratio", "1e400", nil,
			"INFO mem_fragmentation_ratio: 1e400 is not a valid ratio (not finite)", true},
		{"non-numeric size", "used_memory_peak", "lots", nil,
			"INFO used_memory_peak: lots is not a valid size (not a number)", false},
		{"escape sequence in a size", "used_memory_rss", "12\x1b[2J", nil,
			`INFO used_memory_rss: 12\x1b[2J is not a valid size (not a number)`, false},
		{"empty size", "used_memory_rss", "", nil,
			`INFO used_memory_rss: "" is not a valid size (empty)`, false},
		{"huge size", "used_memory", "2000000000000000000", nil,
			"INFO used_memory: 2000000000000000000 is not a valid size (above 1 EiB)", false},
		{"huge maxmemory in INFO", "maxmemory", "9000000000000000000", nil,
			"INFO maxmemory: 9000000000000000000 is not a valid size (above 1 EiB)", false},
		{"negative maxmemory from CONFIG", "maxmemory", "67108864", map[string]string{"maxmemory": "-1"},
			"CONFIG maxmemory: -1 is not a valid size (negative)", true},
		{"float maxmemory from CONFIG", "maxmemory", "67108864", map[string]string{"maxmemory": "6.4e7"},
			"CONFIG maxmemory: 6.4e7 is not a valid size (not an integer)", true},
		{"huge host memory", "total_system_memory", "1e30", nil,
			"INFO total_system_memory: 1e30 is not a valid size (above 1 EiB)", false},
		{"negative counter", "evicted_keys", "-5", nil,
			"INFO evicted_keys: -5 is not a valid count (negative)", false},
		{"negative fork time", "latest_fork_usec", "-900000", nil,
			"INFO latest_fork_usec: -900000 is not a valid count (negative)", false},
		{"flag that is not 0 or 1", "rdb_bgsave_in_progress", "2", nil,
			"INFO rdb_bgsave_in_progress: 2 is not a valid flag (not 0 or 1)", false},
		{"percentage above 100", "active_defrag_running", "250", nil,
			"INFO active_defrag_running: 250 is not a valid percentage (above 100)", false},
		{"timestamp after 9999", "rdb_last_save_time", "99999999999999", nil,
			"INFO rdb_last_save_time: 99999999999999 is not a valid timestamp (after the year 9999)", false},
		{"negative keys", "db0", "keys=-250000,expires=0,avg_ttl=0", nil,
			"INFO db0: keys=-250000,expires=0,avg_ttl=0 is not a valid keyspace line (keys negative)", false},
		{"more TTLs than keys", "db0", "keys=10,expires=11,avg_ttl=0", nil,
			"INFO db0: keys=10,expires=11,avg_ttl=0 is not a valid keyspace line (more keys with a TTL than keys)", false},
		{"negative OOM count", "errorstat_OOM", "count=-17", nil,
			"INFO errorstat_OOM: count=-17 is not a valid error count (negative)", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := garbageSnapshot(setInfoLine(base, c.field, c.value), c.config)
			// The field is gone, or marked: every accessor reports it
			// unknown.
			_, fromConfig := c.config[c.field]
			switch {
			case fromConfig:
				if _, ok := s.Config[c.field]; ok {
					t.Errorf("CONFIG %s still present", c.field)
				}
			case isKeyspaceField(c.field):
				if s.Info[c.field] != unknownValue || s.KeysKnown() {
					t.Errorf("INFO %s = %q, KeysKnown %v; want it marked unknown", c.field, s.Info[c.field], s.KeysKnown())
				}
			case strings.HasPrefix(c.field, "errorstat_"):
				if n, ok := s.Info.ErrorCount(strings.TrimPrefix(c.field, "errorstat_")); ok {
					t.Errorf("ErrorCount = %d, known; want unknown", n)
				}
			case s.Info.Has(c.field):
				t.Errorf("INFO %s still present: %q", c.field, s.Info[c.field])
			}
			if len(s.Missing) != 1 || !strings.HasPrefix(s.Missing[0], c.note) {
				t.Fatalf("Missing = %q, want one note starting %q", s.Missing, c.note)
			}
			if strings.ContainsAny(s.Missing[0], "\x1b\r\n") || len(s.Missing[0]) > 200 {
				t.Errorf("note is not cut and printable: %q", s.Missing[0])
			}

			in := Input{Cur: s, Prev: s, MemoryLimit: 128 << 20, T: DefaultThresholds()}
			fs := Evaluate(in)
			checkNoNonsense(t, fs)
			for _, f := range append(fs, FragTree(in).Findings...) {
				text := findingText(f)
				if m := absurdBytes.FindString(text); m != "" {
					t.Errorf("%s shows an absurd size %q: %s", f.ID, m, text)
				}
				if len(c.value) >= 4 && strings.Contains(text, c.value) {
					t.Errorf("%s quotes the garbage %q: %s", f.ID, c.value, text)
				}
				// Nothing is computed from the field: where it is
				// evidence, it is shown as unknown.
				for _, e := range f.Evidence {
					if (e.Name == c.field || e.Name == "previous_"+c.field) && !c.derived && !strings.HasPrefix(e.Text, "unknown") {
						t.Errorf("%s: evidence %s = %q, want unknown", f.ID, e.Name, e.Text)
					}
				}
			}
		})
	}
}

// What the rules make of an unknown: the finding that does not need the
// field still fires, and says "unknown" where the field would be.
func TestRulesTreatGarbageAsUnknown(t *testing.T) {
	base := garbageBase(t)
	run := func(field, value string, config map[string]string) map[string]Finding {
		s := garbageSnapshot(setInfoLine(base, field, value), config)
		got := map[string]Finding{}
		for _, f := range Evaluate(Input{Cur: s, MemoryLimit: 128 << 20, T: DefaultThresholds()}) {
			got[f.ID] = f
		}
		return got
	}

	// RSS unknown: the reported ratio still says "fragmented" (and
	// mem_fragmentation_bytes how much), but RSS reads unknown.
	got := run("used_memory_rss", "-9223372036854775808", nil)
	checkFindings(t, got, map[string]Severity{"frag-high": SeverityCritical, "rss-near-limit": SeverityNone},
		map[string]string{"frag-high": "RSS is unknown for 58.1 MiB of data (ratio 2.08)"})

	// used_memory unknown: no share of maxmemory, no noise filter, no
	// fragmentation verdict.
	got = run("used_memory", "9223372036854775808", nil)
	checkFindings(t, got, map[string]Severity{"maxmemory-near": SeverityNone, "noeviction-trap": SeverityNone,
		"frag-high": SeverityNone, "frag-noise": SeverityNone, "cow-headroom": SeverityNone, "fork-slow": SeverityWarning},
		map[string]string{"fork-slow": "(unknown of data)"})

	// The ratio garbage: computed from the sizes instead...
	got = run("mem_fragmentation_ratio", "nan", nil)
	checkFindings(t, got, map[string]Severity{"frag-high": SeverityCritical}, map[string]string{"frag-high": "(ratio 2.08)"})
	// ...but not from garbage sizes: then there is no ratio at all.
	s := garbageSnapshot(setInfoLine(setInfoLine(base, "mem_fragmentation_ratio", "nan"), "used_memory_rss", "-1"), nil)
	if a := FragTree(Input{Cur: s, T: DefaultThresholds()}); len(a.Findings) != 0 {
		t.Errorf("FragTree found %v without a ratio", a.Findings)
	}

	// maxmemory unknown in both CONFIG and INFO: no usage at all.
	got = run("maxmemory", "-67108864", map[string]string{"maxmemory": "banana"})
	checkFindings(t, got, map[string]Severity{"maxmemory-near": SeverityNone, "maxmemory-unset": SeverityNone, "noeviction-trap": SeverityNone}, nil)
	if _, ok := got["oom-rejecting"]; !ok {
		t.Error("oom-rejecting (17 OOM errors) needs no maxmemory, and did not fire")
	}
	for _, e := range got["oom-rejecting"].Evidence {
		if e.Name == "usage" || e.Name == "maxmemory" {
			t.Errorf("oom-rejecting shows %s = %s from an unknown maxmemory", e.Name, e.Text)
		}
	}

	// A garbage keyspace line: the totals are a floor, so neither "no keys
	// to evict" nor "few keys with a TTL" (which the valid line, 250,000
	// keys without a TTL under volatile-lru, would rightly say).
	volatile := setInfoLine(base, "maxmemory_policy", "volatile-lru")
	got = run("maxmemory_policy", "volatile-lru", nil)
	checkFindings(t, got, map[string]Severity{"volatile-no-ttl": SeverityCritical}, nil)
	s = garbageSnapshot(setInfoLine(volatile, "db0", "keys=-1,expires=0,avg_ttl=0"), nil)
	for _, f := range Evaluate(Input{Cur: s, MemoryLimit: 128 << 20, T: DefaultThresholds()}) {
		if f.ID == "volatile-no-ttl" || strings.Contains(f.Summary, "no keys") {
			t.Errorf("%s concluded from an unknown keyspace: %s", f.ID, f.Summary)
		}
	}

	// A garbage CONFIG maxmemory falls back to what INFO says.
	s = garbageSnapshot(base, map[string]string{"maxmemory": "-1"})
	if n, ok := s.Maxmemory(); !ok || n != 67108864 {
		t.Errorf("Maxmemory() = %d, %v; want INFO's 67108864", n, ok)
	}
}

// The largest sizes and ratios validation lets through still multiply to a
// figure: maxmemory-headroom must not print an overflowed product.
func TestHeadroomProductDoesNotOverflow(t *testing.T) {
	text := setInfoLine(garbageBase(t), "maxmemory", "1152921504606846976") // 1 EiB
	text = setInfoLine(text, "mem_fragmentation_ratio", "999999")
	text = setInfoLine(text, "used_memory", "1152921504606846976")
	s := garbageSnapshot(text, nil)
	if len(s.Missing) != 0 {
		t.Fatalf("valid extremes were rejected: %q", s.Missing)
	}
	fs := Evaluate(Input{Cur: s, MemoryLimit: 1 << 40, T: DefaultThresholds()})
	checkNoNonsense(t, fs)
	found := false
	for _, f := range fs {
		found = found || f.ID == "maxmemory-headroom"
	}
	if !found {
		t.Errorf("maxmemory-headroom did not fire; got %v", fs)
	}
}

func TestValidateKeepsBelievableValues(t *testing.T) {
	text := setInfoLine(garbageBase(t), "allocator_frag_bytes", "-1048576") // signed since 7.4 and in Valkey
	text = setInfoLine(text, "rss_overhead_bytes", "-4096")
	text = setInfoLine(text, "active_defrag_running", "25")
	text = setInfoLine(text, "aof_enabled", "1.00") // some versions print counters as floats
	s := garbageSnapshot(text, nil)
	if len(s.Missing) != 0 {
		t.Fatalf("believable values rejected: %q", s.Missing)
	}
	if n, ok := s.Int("allocator_frag_bytes"); !ok || n != -1048576 {
		t.Errorf("allocator_frag_bytes = %d, %v", n, ok)
	}
	if got := HumanBytes(-1048576); got != "-1.0 MiB" {
		t.Errorf("HumanBytes(-1 MiB) = %q: a signed quantity keeps its sign", got)
	}
}

// Every real and constructed capture is believable as it is: validation
// must not add noise to a healthy report.
func TestValidateCapturesClean(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(infoCapturesDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if filepath.Base(file) == "garbage.txt" {
			continue
		}
		s := garbageSnapshot(readInfoCapture(t, filepath.Base(file)), map[string]string{"maxmemory": "0", "active-defrag-cycle-min": "1",
			"active-defrag-cycle-max": "25", "active-defrag-ignore-bytes": "104857600", "active-defrag-threshold-upper": "100"})
		if len(s.Missing) != 0 {
			t.Errorf("%s: %q", filepath.Base(file), s.Missing)
		}
	}
}

// What real builds of six releases answered (testdata/versions): INFO and
// MEMORY STATS are believable as they are.
func TestValidateRealReplies(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "versions", "*", "info-everything.txt"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no replies in testdata/versions (%v)", err)
	}
	for _, file := range dirs {
		dir := filepath.Dir(file)
		info, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := os.ReadFile(filepath.Join(dir, "memory-stats.txt"))
		if err != nil {
			t.Fatal(err)
		}
		// redis-cli prints MEMORY STATS one element a line: name, value,
		// and "db.N" followed by its own pairs.
		s := &Snapshot{Info: ParseInfo(string(info)), MemoryStats: map[string]float64{}}
		fields := strings.Fields(string(stats))
		for i := 0; i+1 < len(fields); i += 2 {
			if strings.HasPrefix(fields[i], "db.") && !strings.Contains(fields[i][3:], ".") {
				i-- // a database's name has no value of its own
				continue
			}
			f, err := strconv.ParseFloat(fields[i+1], 64)
			if err != nil {
				t.Fatalf("%s: MEMORY STATS %s = %q", dir, fields[i], fields[i+1])
			}
			s.MemoryStats[fields[i]] = f
		}
		if len(s.MemoryStats) < 20 {
			t.Fatalf("%s: only %d MEMORY STATS entries read", dir, len(s.MemoryStats))
		}
		s.Validate()
		if len(s.Missing) != 0 {
			t.Errorf("%s: %q", filepath.Base(dir), s.Missing)
		}
	}
}

func TestValidateTwiceAndCopy(t *testing.T) {
	text := setInfoLine(garbageBase(t), "used_memory_rss", "-5")
	shared := &Snapshot{Info: ParseInfo(text), Config: map[string]string{"maxmemory": "x"},
		MemoryStats: map[string]float64{"fragmentation": math.NaN(), "peak.allocated": -3, "fragmentation.bytes": -4096, "total.allocated": 1 << 20}}

	c := shared.Validated()
	if c == shared {
		t.Fatal("Validated returned the snapshot it should not modify")
	}
	if !shared.Info.Has("used_memory_rss") || shared.Config["maxmemory"] != "x" || len(shared.Missing) != 0 || len(shared.MemoryStats) != 4 {
		t.Error("Validated modified its input")
	}
	want := []string{
		"INFO used_memory_rss: -5 is not a valid size (negative)",
		"CONFIG maxmemory: x is not a valid size (not a number)",
		"MEMORY STATS fragmentation: NaN is not a valid ratio (not finite)",
		"MEMORY STATS peak.allocated: -3 is not a valid size (negative)",
	}
	if strings.Join(c.Missing, "\n") != strings.Join(want, "\n") {
		t.Errorf("Missing =\n%s\nwant\n%s", strings.Join(c.Missing, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := c.MemoryStats["fragmentation.bytes"]; !ok {
		t.Error("a negative fragmentation.bytes (signed) was removed")
	}
	if _, err := json.Marshal(c); err != nil {
		t.Errorf("a validated snapshot does not encode: %v", err)
	}
	if again := c.Validated(); again != c {
		t.Error("Validated copied a snapshot that is already valid")
	}
	c.Validate()
	if len(c.Missing) != len(want) {
		t.Errorf("validating twice added notes: %q", c.Missing)
	}
	var none *Snapshot
	none.Validate()
	if none.Validated() != nil {
		t.Error("Validated(nil) is not nil")
	}
}

// FuzzEvaluateValidated: whatever INFO text arrives, once validated no rule
// shows a negative size for a quantity that cannot be negative, a NaN or an
// infinity, and the evidence always encodes.
func FuzzEvaluateValidated(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(infoCapturesDir, "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), string(b))
	}
	base := garbageBase(f)
	for _, seed := range [][2]string{
		{"used_memory_rss", "-9223372036854775808"},
		{"used_memory", "-1"},
		{"mem_fragmentation_ratio", "1" + strings.Repeat("0", 299)},
		{"maxmemory", "1152921504606846976"},
		{"mem_fragmentation_ratio", "999999"},
		{"db0", "keys=9223372036854775807,expires=0"},
		{"mem_not_counted_for_evict", "1152921504606846976"},
	} {
		text := setInfoLine(base, seed[0], seed[1])
		f.Add(text, setInfoLine(text, "run_id", "other"))
	}
	f.Fuzz(func(t *testing.T, cur, prev string) {
		c := &Snapshot{Instance: "x", ProbedAt: time.Unix(1_800_000_600, 0), Info: ParseInfo(cur), Config: map[string]string{"save": "1 1"}}
		p := &Snapshot{Instance: "x", ProbedAt: time.Unix(1_800_000_000, 0), Info: ParseInfo(prev)}
		c.Validate()
		p.Validate()
		in := Input{Cur: c, Prev: p, MemoryLimit: 1 << 30, T: DefaultThresholds(),
			Window: []Point{PointOf(p), {At: p.ProbedAt.Add(2 * time.Minute), UsedMemory: 1 << 20, RSS: 2 << 20}}}
		checkNoNonsense(t, Evaluate(in))
		checkNoNonsense(t, FragTree(in).Findings)
	})
}
