package handlers

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// numberKind is what a number a server reports means, and so which values
// it can take. A value outside them is not believed: a negative RSS, a
// ratio with 300 digits or a size that overflows int64 says the server (or
// whatever answers on its port) is broken or hostile, not that memory is.
type numberKind int

const (
	kindSize       numberKind = iota + 1 // bytes: 0 to maxSize
	kindSignedSize                       // a difference of byte counts: -maxSize to maxSize
	kindCount                            // a counter or gauge: 0 to maxCount
	kindRatio                            // 0 to maxRatio
	kindPercent                          // 0 to 100
	kindFlag                             // 0 or 1
	kindTimestamp                        // unix seconds: 0 to maxTimestamp
)

var kindNames = map[numberKind]string{
	kindSize: "size", kindSignedSize: "size", kindCount: "count", kindRatio: "ratio",
	kindPercent: "percentage", kindFlag: "flag", kindTimestamp: "timestamp",
}

func (k numberKind) String() string { return kindNames[k] }

const (
	// maxSize is 1 EiB. No machine Redis runs on has that much memory, and
	// sums and products of two sizes still fit an int64 below it.
	maxSize = 1 << 60
	// maxCount bounds counters the same way: a billion events a second for
	// 36 years stays below it.
	maxCount = 1 << 60
	// maxRatio is far above any real fragmentation ratio (a just-started
	// instance with almost no data shows tens, a swapped-out one near 0).
	maxRatio = 1e6
	// maxTimestamp is the last second of the year 9999.
	maxTimestamp = 253402300799
	// maxNumberText: Redis prints at most 20 characters for a number; a
	// longer value is not one it wrote.
	maxNumberText = 32
	// noteValue bounds the value quoted in a note.
	noteValue = 32
	// unknownValue replaces a keyspace line or an error count that cannot
	// be true: Info.Keyspace skips it, Info.ErrorCount reports it unknown.
	unknownValue = "unknown"
)

// infoKinds are the INFO fields that rules, report metrics, remediation
// plans and history read as numbers. The Redis sources print the *_bytes
// differences with %zd (allocator_rss_bytes, rss_overhead_bytes,
// mem_fragmentation_bytes): RSS below the allocator's resident memory makes
// them negative. allocator_frag_bytes was %zu before 7.4 (an underflow then
// prints a number above int64, which is rejected) and is signed in Valkey.
var infoKinds = map[string]numberKind{
	"used_memory":               kindSize,
	"used_memory_rss":           kindSize,
	"used_memory_peak":          kindSize,
	"used_memory_scripts":       kindSize,
	"maxmemory":                 kindSize,
	"total_system_memory":       kindSize,
	"allocator_allocated":       kindSize,
	"allocator_active":          kindSize,
	"allocator_resident":        kindSize,
	"mem_not_counted_for_evict": kindSize,
	"mem_clients_normal":        kindSize,
	"mem_clients_slaves":        kindSize,
	"rdb_last_cow_size":         kindSize,

	"allocator_frag_bytes":    kindSignedSize,
	"allocator_rss_bytes":     kindSignedSize,
	"rss_overhead_bytes":      kindSignedSize,
	"mem_fragmentation_bytes": kindSignedSize,

	"mem_fragmentation_ratio": kindRatio,
	"allocator_frag_ratio":    kindRatio,
	"allocator_rss_ratio":     kindRatio,
	"rss_overhead_ratio":      kindRatio,

	"evicted_keys":                kindCount,
	"connected_clients":           kindCount,
	"connected_slaves":            kindCount,
	"number_of_cached_scripts":    kindCount,
	"lazyfree_pending_objects":    kindCount,
	"active_defrag_hits":          kindCount,
	"active_defrag_misses":        kindCount,
	"instantaneous_ops_per_sec":   kindCount,
	"rdb_changes_since_last_save": kindCount,
	"latest_fork_usec":            kindCount,
	"uptime_in_seconds":           kindCount,

	// Share of a CPU the defrag cycle uses (0 or 1 before Redis 5).
	"active_defrag_running": kindPercent,

	"loading":                 kindFlag,
	"rdb_bgsave_in_progress":  kindFlag,
	"aof_rewrite_in_progress": kindFlag,
	"aof_enabled":             kindFlag,
	"cluster_enabled":         kindFlag,
	"master_sync_in_progress": kindFlag,

	"rdb_last_save_time": kindTimestamp,
	"loading_start_time": kindTimestamp,
}

// configKinds are the numeric CONFIG GET answers. CONFIG prints integers
// only, and Snapshot.Maxmemory reads them as such.
var configKinds = map[string]numberKind{
	"maxmemory":                     kindSize,
	"active-defrag-ignore-bytes":    kindSize,
	"active-defrag-threshold-lower": kindCount,
	"active-defrag-threshold-upper": kindCount,
	"active-defrag-cycle-min":       kindPercent,
	"active-defrag-cycle-max":       kindPercent,
	"active-defrag-max-scan-fields": kindCount,
}

// Sorted once so that notes come out in the same order on every probe.
var (
	infoFields   = slices.Sorted(maps.Keys(infoKinds))
	configFields = slices.Sorted(maps.Keys(configKinds))
)

// unbelievable is one value Validate removes.
type unbelievable struct {
	part   string // "INFO", "CONFIG", "MEMORY STATS"
	field  string
	value  string
	kind   string // "size", "keyspace line", ...
	reason string
}

func (u unbelievable) note() string {
	v := Printable(u.value, noteValue)
	if v == "" {
		v = `""`
	}
	return fmt.Sprintf("%s %s: %s is not a valid %s (%s)", u.part, u.field, v, u.kind, u.reason)
}

// Validate removes from the snapshot every number a rule reads that cannot
// be true, so that rules see it as unknown (Info.Int and Info.Float report
// false, Maxmemory falls back to INFO or reports false), and records in
// Missing which field it was, its value (cut and made printable) and why.
// Validating twice adds nothing the second time. The probe calls it on every
// snapshot it builds, before any rule can see it.
func (s *Snapshot) Validate() {
	if s == nil {
		return
	}
	for _, u := range s.unbelievable() {
		switch {
		case u.part == "INFO" && (isKeyspaceField(u.field) || strings.HasPrefix(u.field, "errorstat_")):
			// Absent, these read as zero (no keys in that database, no
			// such error): the line stays, marked, so it reads as unknown.
			s.Info[u.field] = unknownValue
		case u.part == "INFO":
			delete(s.Info, u.field)
		case u.part == "CONFIG":
			delete(s.Config, u.field)
		case u.part == "MEMORY STATS":
			delete(s.MemoryStats, u.field)
		}
		s.Missing = append(s.Missing, u.note())
	}
}

// Validated returns s itself when every number in it is believable, and
// otherwise a validated copy. s is never modified, so a snapshot that other
// goroutines may hold (a shared probe, a history's cache) stays as it was.
func (s *Snapshot) Validated() *Snapshot {
	if s == nil || len(s.unbelievable()) == 0 {
		return s
	}
	c := *s
	c.Info = maps.Clone(s.Info)
	c.Config = maps.Clone(s.Config)
	c.MemoryStats = maps.Clone(s.MemoryStats)
	c.Missing = slices.Clone(s.Missing)
	c.Validate()
	return &c
}

// unbelievable lists the values Validate removes, in a stable order: INFO
// fields, keyspace lines, error counts, CONFIG, then MEMORY STATS.
func (s *Snapshot) unbelievable() []unbelievable {
	var out []unbelievable
	for _, field := range infoFields {
		if v, ok := s.Info[field]; ok {
			if why := checkNumber(infoKinds[field], v); why != "" {
				out = append(out, unbelievable{"INFO", field, v, infoKinds[field].String(), why})
			}
		}
	}
	// Keyspace lines and error counts are found by walking the map; only
	// the unbelievable ones are sorted (the probe validates every
	// snapshot: sorting every name of every one cost a sweep of 10,000
	// instances a tenth of a second).
	var keyspace, errorstats []unbelievable
	for field, v := range s.Info {
		switch {
		case v == unknownValue:
		case isKeyspaceField(field):
			if why := checkKeyspace(s.Info.Sub(field)); why != "" {
				keyspace = append(keyspace, unbelievable{"INFO", field, v, "keyspace line", why})
			}
		case strings.HasPrefix(field, "errorstat_"):
			if why := checkCount(s.Info.Sub(field)["count"]); why != "" {
				errorstats = append(errorstats, unbelievable{"INFO", field, v, "error count", why})
			}
		}
	}
	byField := func(a, b unbelievable) int { return strings.Compare(a.field, b.field) }
	slices.SortFunc(keyspace, byField)
	slices.SortFunc(errorstats, byField)
	out = append(append(out, keyspace...), errorstats...)
	for _, field := range configFields {
		if v, ok := s.Config[field]; ok {
			if why := checkConfigNumber(configKinds[field], v); why != "" {
				out = append(out, unbelievable{"CONFIG", field, v, configKinds[field].String(), why})
			}
		}
	}
	var stats []unbelievable
	for field, v := range s.MemoryStats {
		k := statKind(field)
		if why := checkRange(k, v); why != "" {
			stats = append(stats, unbelievable{"MEMORY STATS", field, strconv.FormatFloat(v, 'g', -1, 64), k.String(), why})
		}
	}
	slices.SortFunc(stats, byField)
	return append(out, stats...)
}

// statKind tells what a MEMORY STATS entry holds from its name: the
// fragmentation and RSS differences are signed, ratios and percentages are
// named so, and everything else is a byte count or a count.
func statKind(name string) numberKind {
	switch {
	case name == "fragmentation" || strings.HasSuffix(name, ".ratio") || strings.HasSuffix(name, "-ratio"):
		return kindRatio
	case strings.HasSuffix(name, ".percentage"):
		return kindPercent
	case name == "fragmentation.bytes" || strings.HasSuffix(name, "fragmentation.bytes") ||
		name == "allocator.rss-bytes" || name == "rss-overhead.bytes":
		return kindSignedSize
	}
	return kindSize
}

// isKeyspaceField matches the "dbN" fields Info.Keyspace reads.
func isKeyspaceField(field string) bool {
	n, ok := strings.CutPrefix(field, "db")
	return ok && n != "" && strings.Trim(n, "0123456789") == "" && (len(n) == 1 || n[0] != '0')
}

// checkNumber returns why an INFO value cannot be a number of kind k, or ""
// when it can. It accepts what Info.Int and Info.Float accept (integers, and
// floats such as "1.00" that some versions print for counters).
func checkNumber(k numberKind, text string) string {
	switch {
	case text == "":
		return "empty"
	case len(text) > maxNumberText:
		return "too long for a number"
	}
	// Integers first: "-9223372036854775808" is a valid int64 that a float
	// would round, and one more is an overflow rather than "not a number".
	n, err := strconv.ParseInt(text, 10, 64)
	if err == nil {
		return checkRange(k, float64(n))
	}
	if isDigits(strings.TrimPrefix(text, "-")) {
		return "overflows a 64-bit integer"
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !math.IsInf(f, 0) {
		return "not a number"
	}
	return checkRange(k, f)
}

// checkConfigNumber is checkNumber for CONFIG answers, which are integers.
func checkConfigNumber(k numberKind, text string) string {
	if why := checkNumber(k, text); why != "" {
		return why
	}
	if _, err := strconv.ParseInt(text, 10, 64); err != nil {
		return "not an integer"
	}
	return ""
}

// checkRange returns why f cannot be a number of kind k, or "".
func checkRange(k numberKind, f float64) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return "not finite"
	case f < 0 && k == kindSignedSize:
		if f < -maxSize {
			return "below -1 EiB"
		}
		return ""
	case f < 0:
		return "negative"
	}
	switch k {
	case kindSize, kindSignedSize:
		if f > maxSize {
			return "above 1 EiB"
		}
	case kindCount:
		if f > maxCount {
			return "above 2^60"
		}
	case kindRatio:
		if f > maxRatio {
			return "above 1000000"
		}
	case kindPercent:
		if f > 100 {
			return "above 100"
		}
	case kindFlag:
		if f != 0 && f != 1 {
			return "not 0 or 1"
		}
	case kindTimestamp:
		if f > maxTimestamp {
			return "after the year 9999"
		}
	}
	return ""
}

// checkCount returns why the integer count inside a k=v field (a keyspace
// line, an error count) cannot be true, or "".
func checkCount(text string) string {
	n, err := strconv.ParseInt(text, 10, 64)
	switch {
	case err == nil:
		return checkRange(kindCount, float64(n))
	case isDigits(strings.TrimPrefix(text, "-")):
		return "overflows a 64-bit integer"
	}
	return "not an integer"
}

// checkKeyspace returns why a "keys=N,expires=M" line cannot be true, or "".
// Keys with a TTL are a subset of the keys: more of them is impossible.
func checkKeyspace(sub map[string]string) string {
	for _, name := range []string{"keys", "expires"} {
		if why := checkCount(sub[name]); why != "" {
			return name + " " + why
		}
	}
	keys, _ := strconv.ParseInt(sub["keys"], 10, 64)
	expires, _ := strconv.ParseInt(sub["expires"], 10, 64)
	if expires > keys {
		return "more keys with a TTL than keys"
	}
	return ""
}

// saneRatio reports whether a ratio computed from two sizes is one a real
// instance can have (see maxRatio).
func saneRatio(f float64) bool {
	return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 && f <= maxRatio
}
