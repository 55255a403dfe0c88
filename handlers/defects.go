package handlers

import (
	"fmt"
	"strings"
)

// DefectEffect says what a known active-defrag defect does to a defrag-on
// request.
type DefectEffect int

const (
	// DefectWarns: defrag-on may run; the approver is told, and the defrag
	// watch guards against what the defect does (RSS that grows, defrag
	// that stops making progress).
	DefectWarns DefectEffect = iota
	// DefectBlocks: defrag-on is refused. Used for defects that can crash
	// the server or corrupt its memory while defrag runs.
	DefectBlocks
)

func (e DefectEffect) String() string {
	if e == DefectBlocks {
		return "blocks"
	}
	return "warns"
}

// DefectScope narrows a defect to the servers it can happen on.
type DefectScope int

const (
	// ScopeAny: standalone, cluster nodes and replicas alike.
	ScopeAny DefectScope = iota
	// ScopeCluster: only with cluster_enabled:1.
	ScopeCluster
	// ScopeReplica: only on a replica (role:slave).
	ScopeReplica
)

// VersionRange is the releases [From, Before). A zero Before means no
// release with the fix is confirmed: every later release of the line counts
// as affected until one is.
type VersionRange struct {
	From, Before [3]int
}

func (r VersionRange) contains(v [3]int) bool {
	return !versionLess(v, r.From) && (r.Before == [3]int{} || versionLess(v, r.Before))
}

// DefragDefect is a server version range with a known active-defrag defect,
// and where that is written down. Every entry cites the release notes or
// GitHub threads it comes from; a defect without a source has no entry.
type DefragDefect struct {
	// ID names the entry in tests and logs.
	ID string
	// Server is "redis" or "valkey", as Snapshot.ServerName says.
	Server   string
	Versions []VersionRange
	Scope    DefectScope
	Effect   DefectEffect
	// Trigger, when set, reports whether what the defect needs is on this
	// server now, and what INFO showed. A blocking defect whose trigger is
	// absent only warns: the server has nothing the defect could trip on,
	// though that may change while defrag runs.
	Trigger func(*Snapshot) (present bool, seen string)
	// Note says what goes wrong, for an on-call engineer.
	Note string
	// Ref says where it is fixed ("fixed in Redis 7.2.6, redis/redis#13315").
	Ref string
	// Sources are the release notes, issues and pull requests behind the
	// entry.
	Sources []string
}

// DefragDefects is the defect table behind the defrag-version-risk finding
// and the defrag-on plan. runbooks/defrag-version-risk.md shows the same
// table with its sources; keep the two in step.
var DefragDefects = []DefragDefect{
	{
		ID: "redis-7.2-cluster-flush-crash", Server: "redis",
		Versions: []VersionRange{{From: [3]int{7, 2, 0}, Before: [3]int{7, 2, 6}}},
		Scope:    ScopeCluster, Effect: DefectBlocks,
		Note: "in cluster mode, active defrag crashes in slotToKeyReplaceEntry after an asynchronous flush (FLUSHALL ASYNC, lazyfree-lazy-user-flush, " +
			"or a replica emptying its data for a full sync)",
		Ref: "fixed in Redis 7.2.6 (redis/redis#13315)",
		Sources: []string{
			"https://github.com/redis/redis/issues/13205",
			"https://github.com/redis/redis/issues/12677",
			"https://github.com/redis/redis/pull/13315",
			"https://github.com/redis/redis/pull/13582 (7.2.6 release notes)",
		},
	},
	{
		ID: "redis-7.2-reenable-crash", Server: "redis",
		Versions: []VersionRange{{From: [3]int{7, 2, 0}, Before: [3]int{7, 2, 6}}},
		Effect:   DefectBlocks,
		Note: "turning activedefrag on again after it was turned off in the middle of a cycle crashes the server (expires_cursor was not reset); " +
			"the defrag watch itself turns defrag off, so a second defrag-on is exactly that",
		Ref: "fixed in Redis 7.2.6 (redis/redis#13315)",
		Sources: []string{
			"https://github.com/redis/redis/issues/13307",
			"https://github.com/redis/redis/pull/13315",
			"https://github.com/redis/redis/pull/13582 (7.2.6 release notes: \"Fixed crashes in cluster mode (#13315)\")",
		},
	},
	{
		ID: "redis-7.2-expires-crawl", Server: "redis",
		// The 7.2 backport (#14270, August 2025) is merged; the 7.2 patch
		// release that carries it is not confirmed, so the whole line warns.
		Versions: []VersionRange{{From: [3]int{7, 2, 0}, Before: [3]int{7, 4, 0}}},
		Effect:   DefectWarns,
		Note: "a defrag cycle leaves as soon as the keys are done, so the expires dictionary advances one step per cycle: with many keys with a TTL " +
			"defrag crawls and RSS can stay high or keep growing while activedefrag is on; a planned restart or failover rebuilds the memory",
		Ref: "fixed in Redis 7.4 (redis/redis#13058); backported to the 7.2 branch by redis/redis#14270, release not confirmed",
		Sources: []string{
			"https://github.com/redis/redis/issues/13612",
			"https://github.com/redis/redis/pull/14270",
			"https://github.com/redis/redis/pull/13058",
		},
	},
	{
		ID: "redis-lua-pubsub-defrag-crash", Server: "redis",
		Versions: []VersionRange{
			{From: [3]int{7, 4, 0}, Before: [3]int{7, 4, 6}},
			// No 8.0 release note lists the fixes.
			{From: [3]int{8, 0, 0}, Before: [3]int{8, 1, 0}},
			{From: [3]int{8, 2, 0}, Before: [3]int{8, 2, 2}},
		},
		Effect:  DefectBlocks,
		Trigger: pubSubOrScripts,
		Note: "active defrag can crash the server when it moves a Lua script during a long-running script, and can use freed memory after " +
			"moving a pub/sub channel",
		Ref: "fixed in Redis 7.4.6 and 8.2.2 (redis/redis#14319, #14330); not confirmed for the 8.0 line",
		Sources: []string{
			"https://github.com/redis/redis/pull/14319",
			"https://github.com/redis/redis/pull/14330",
			"https://raw.githubusercontent.com/redis/redis/7.4/00-RELEASENOTES (7.4.6)",
			"https://github.com/redis/redis/releases/tag/8.2.2",
		},
	},
	{
		ID: "redis-8.2-stream-hfe-defrag-crash", Server: "redis",
		Versions: []VersionRange{{From: [3]int{8, 2, 0}, Before: [3]int{8, 2, 2}}},
		Effect:   DefectBlocks,
		Note:     "active defrag can crash the server on streams and on hashes with field expiration",
		Ref:      "fixed in Redis 8.2.2 (redis/redis#14323)",
		Sources:  []string{"https://github.com/redis/redis/releases/tag/8.2.2"},
	},
	{
		ID: "redis-8-replica-flush-crash", Server: "redis",
		Versions: []VersionRange{{From: [3]int{8, 0, 0}, Before: [3]int{8, 2, 1}}},
		Scope:    ScopeReplica, Effect: DefectBlocks,
		Note: "a replica crashes when active defrag runs while it empties its data for a full sync, and again on every restart that syncs",
		Ref:  "fixed in Redis 8.2.1 (redis/redis#14274); not confirmed for the 8.0 line",
		Sources: []string{
			"https://github.com/redis/redis/issues/14267",
			"https://github.com/redis/redis/pull/14274",
			"https://github.com/redis/redis/pull/14283 (8.2.1 release notes)",
		},
	},
	{
		ID: "redis-8.0-cron-twice", Server: "redis",
		Versions: []VersionRange{{From: [3]int{8, 0, 0}, Before: [3]int{8, 0, 2}}},
		Effect:   DefectWarns,
		Note:     "while activedefrag is on, every periodic job of serverCron runs twice as often and some memory statistics stop updating",
		Ref:      "fixed in Redis 8.0.2 (redis/redis#14081)",
		Sources: []string{
			"https://github.com/redis/redis/pull/14081",
			"https://github.com/redis/redis/releases/tag/8.0.2",
		},
	},
	{
		ID: "redis-8.0-expires-skipped", Server: "redis",
		Versions: []VersionRange{{From: [3]int{8, 0, 0}, Before: [3]int{8, 0, 3}}},
		Effect:   DefectWarns,
		Note:     "the expires dictionary is never defragmented, so fragmentation there stays",
		Ref:      "fixed in Redis 8.0.3 (redis/redis#14092)",
		Sources: []string{
			"https://github.com/redis/redis/pull/14092",
			"https://github.com/redis/redis/pull/14158 (8.0.3 release notes)",
		},
	},
	{
		ID: "valkey-7.2-cluster-flush-crash", Server: "valkey",
		// 7.2.9 fixed one path; the same crash was reported on 7.2.11.
		Versions: []VersionRange{{From: [3]int{7, 2, 0}, Before: [3]int{7, 3, 0}}},
		Scope:    ScopeCluster, Effect: DefectBlocks,
		Note: "in cluster mode, active defrag crashes after FLUSHDB ASYNC; a fix shipped in 7.2.9 but the crash was reported again on 7.2.11",
		Ref:  "no fixed Valkey 7.2 release confirmed (valkey-io/valkey#1872, #1873)",
		Sources: []string{
			"https://github.com/valkey-io/valkey/issues/1872",
			"https://github.com/valkey-io/valkey/pull/1973 (7.2.9 release notes)",
		},
	},
	{
		ID: "valkey-large-alloc-assert", Server: "valkey",
		Versions: []VersionRange{
			{From: [3]int{7, 2, 0}, Before: [3]int{7, 2, 11}},
			{From: [3]int{8, 0, 0}, Before: [3]int{8, 0, 6}},
			{From: [3]int{8, 1, 0}, Before: [3]int{8, 1, 4}},
		},
		Effect: DefectBlocks,
		Note:   "active defrag can stop the server on an assertion while it handles large allocations",
		Ref:    "fixed in Valkey 7.2.11, 8.0.6 and 8.1.4 (valkey-io/valkey#2353)",
		Sources: []string{
			"https://github.com/valkey-io/valkey/issues/2348",
			"https://newreleases.io/project/github/valkey-io/valkey/release/8.1.4",
			"https://github.com/valkey-io/valkey/pull/2667 (7.2.11 backports)",
		},
	},
	{
		ID: "valkey-8.0.0-script-evict-crash", Server: "valkey",
		Versions: []VersionRange{{From: [3]int{8, 0, 0}, Before: [3]int{8, 0, 2}}},
		Effect:   DefectBlocks,
		Note:     "the server can crash when scripts are evicted from the script cache during active defrag, and memory can be corrupted when a database is emptied while defrag runs",
		Ref:      "fixed in Valkey 8.0.2 (valkey-io/valkey#1310)",
		Sources:  []string{"https://raw.githubusercontent.com/valkey-io/valkey/8.0/00-RELEASENOTES (8.0.2)"},
	},
	{
		ID: "valkey-sparse-pages", Server: "valkey",
		Versions: []VersionRange{
			{From: [3]int{8, 0, 0}, Before: [3]int{8, 0, 6}},
			{From: [3]int{8, 1, 0}, Before: [3]int{8, 1, 4}},
		},
		Effect:  DefectWarns,
		Note:    "active defrag may be unable to defrag sparsely filled pages, so fragmentation stops falling early",
		Ref:     "fixed in Valkey 8.0.6 and 8.1.4 (valkey-io/valkey#2656)",
		Sources: []string{"https://newreleases.io/project/github/valkey-io/valkey/release/8.1.4"},
	},
}

// pubSubOrScripts is the trigger of the Lua and pub/sub defrag crashes: a
// server with no channels and no scripts has nothing for them to trip on.
// A field INFO does not give counts as present.
func pubSubOrScripts(s *Snapshot) (bool, string) {
	var seen []string
	present := false
	for _, k := range []string{"pubsub_channels", "pubsubshard_channels", "number_of_cached_scripts", "number_of_functions"} {
		n, ok := s.Int(k)
		switch {
		case !ok && (k == "pubsub_channels" || k == "number_of_cached_scripts"):
			present = true
			seen = append(seen, k+" unknown")
		case ok && n > 0:
			present = true
			seen = append(seen, fmt.Sprintf("%s %d", k, n))
		}
	}
	if !present {
		return false, "no pub/sub channels and no cached scripts or functions"
	}
	return true, strings.Join(seen, ", ")
}

// DefectMatch is a defect that applies to a snapshot.
type DefectMatch struct {
	Defect DefragDefect
	// Effect is the defect's effect on this server: a blocking defect
	// whose trigger is absent only warns.
	Effect DefectEffect
	// Seen is what INFO showed of the trigger, when the defect has one.
	Seen string
}

// MatchDefragDefects returns the defects of the table that apply to the
// server in s, blocking ones first, in table order. A version it cannot
// read matches nothing.
func MatchDefragDefects(s *Snapshot) []DefectMatch {
	v, ok := parseVersion(s.Version())
	if !ok {
		return nil
	}
	cluster, _ := s.Int("cluster_enabled")
	var blocks, warns []DefectMatch
	for _, d := range DefragDefects {
		if d.Server != s.ServerName() || !d.affects(v) {
			continue
		}
		if (d.Scope == ScopeCluster && cluster != 1) || (d.Scope == ScopeReplica && !s.IsReplica()) {
			continue
		}
		m := DefectMatch{Defect: d, Effect: d.Effect}
		if d.Trigger != nil {
			var present bool
			present, m.Seen = d.Trigger(s)
			if !present {
				m.Effect = DefectWarns
			}
		}
		if m.Effect == DefectBlocks {
			blocks = append(blocks, m)
		} else {
			warns = append(warns, m)
		}
	}
	return append(blocks, warns...)
}

func (d DefragDefect) affects(v [3]int) bool {
	for _, r := range d.Versions {
		if r.contains(v) {
			return true
		}
	}
	return false
}

// defragDefect is the most serious defect that applies to s, for the
// defrag-version-risk finding.
func defragDefect(s *Snapshot) (DefragDefect, bool) {
	ms := MatchDefragDefects(s)
	if len(ms) == 0 {
		return DefragDefect{}, false
	}
	return ms[0].Defect, true
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
