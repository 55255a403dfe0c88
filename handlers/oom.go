package handlers

import (
	"fmt"
	"strings"
	"time"
)

// oomRules are the rules of the OOM runbook, in its order: is there a limit,
// is it being hit, can eviction free memory, and will the process itself fit
// in the memory the kernel gives it.
var oomRules = []Rule{
	ruleOOMRejecting,
	ruleMaxmemoryUnset,
	ruleMaxmemoryNear,
	ruleNoevictionTrap,
	ruleVolatileNoTTL,
	ruleEvicting,
	ruleRSSNearLimit,
	ruleMaxmemoryHeadroom,
	ruleForkSlow,
	ruleCowHeadroom,
	ruleClientBuffers,
	ruleReplicaBuffers,
	ruleManyScripts,
	ruleLazyfreeBacklog,
	ruleReplicaOverMaxmemory,
}

// Usage is the share of maxmemory that counts against it: Redis subtracts
// replica output buffers and the AOF buffer (mem_not_counted_for_evict)
// before comparing used_memory with maxmemory (evict.c, getMaxmemoryState).
type Usage struct {
	Counted   int64
	Maxmemory int64
	Share     float64
}

// MaxmemoryUsage returns the usage and whether maxmemory is set and known.
func MaxmemoryUsage(s *Snapshot) (Usage, bool) {
	maxmem, ok := s.Maxmemory()
	if !ok || maxmem <= 0 {
		return Usage{}, false
	}
	used, ok := s.Int("used_memory")
	if !ok {
		return Usage{}, false // a share of an unknown is not 0%
	}
	notCounted, _ := s.Int("mem_not_counted_for_evict")
	counted := max(used-notCounted, 0)
	return Usage{Counted: counted, Maxmemory: maxmem, Share: float64(counted) / float64(maxmem)}, true
}

func usageFacts(u Usage) []Fact {
	return []Fact{factShare("usage", u.Share), factBytes("used_memory_counted", u.Counted), factBytes("maxmemory", u.Maxmemory)}
}

// evictionApplies is false on replicas that ignore maxmemory (the default):
// they never evict and follow their primary's deletes.
func evictionApplies(s *Snapshot) bool {
	if !s.IsReplica() {
		return true
	}
	return s.Config["replica-ignore-maxmemory"] == "no"
}

// oomMessage is what a client reads when Redis rejects a write at maxmemory.
const oomMessage = "OOM command not allowed when used memory > 'maxmemory'"

// staleSample: a previous sample older than this tells what happened in
// that time, not what happens now (the bot was down, or a diagnose reads
// the sample of a sweep long ago).
const staleSample = 15 * time.Minute

// limitState is what the OOM and limit rules agree on about the present:
// how full the instance is, whether its policy can make room, and whether
// writes fail now rather than at some time since start. Severities follow
// it, so that a count of past errors never keeps an outage open.
type limitState struct {
	usage   Usage
	limited bool // maxmemory is set and known
	// applies is false on a replica that ignores its maxmemory.
	applies bool
	policy  string
	// canEvict says the policy can make room at the limit; why says why
	// not, for summaries.
	canEvict bool
	why      string
	// full: at or over the limit with nothing to evict, so every write
	// that needs memory fails now.
	full bool

	oom      int64 // errorstat_OOM since start or CONFIG RESETSTAT
	oomKnown bool
	// compared: the previous sample is of the same process and its
	// counters were not reset, so newOOM counts the rejections since it.
	compared bool
	newOOM   int64
	since    time.Duration
	// reset says why the previous sample's counters do not compare.
	reset string
}

// judgeLimit reads the present state of the limit from the input.
func judgeLimit(in Input) limitState {
	s := in.Cur
	l := limitState{applies: evictionApplies(s)}
	l.usage, l.limited = MaxmemoryUsage(s)
	policy, ok := s.Policy()
	l.policy = orUnknown(policy, ok)
	l.canEvict, l.why = evictionCanFree(s, in.T)
	l.full = l.limited && l.applies && atLimit(l.usage) && !l.canEvict
	l.oom, l.oomKnown = OOMErrors(s)
	if in.Prev == nil || !l.oomKnown {
		return l
	}
	prev, ok := OOMErrors(in.Prev)
	switch {
	case !ok:
	case !sameProcess(s, in.Prev):
		l.reset = "restarted since the last sample"
	case l.oom < prev:
		l.reset = "counters reset since the last sample (CONFIG RESETSTAT)"
	default:
		l.compared, l.newOOM = true, l.oom-prev
		l.since = s.ProbedAt.Sub(in.Prev.ProbedAt)
	}
	return l
}

// atLimit: usage is at maxmemory or so close to it that the next writes
// reach it. Redis admits a write while usage is at or under the limit
// (getMaxmemoryState) and rejects the ones after it, so an instance left
// with less than 1% of maxmemory (at most 64 MiB) fails writes now; after a
// rejected pipeline its freed query buffer often leaves it just under.
func atLimit(u Usage) bool {
	return u.Maxmemory-u.Counted <= min(u.Maxmemory/100, 64<<20)
}

// rejectingNow: writes fail at this moment, or failed since a recent
// previous sample.
func (l limitState) rejectingNow() bool {
	return l.full || (l.compared && l.newOOM > 0 && l.since <= staleSample)
}

// usageText is "101% of maxmemory (1.0 GiB of 1.0 GiB)".
func (l limitState) usageText() string {
	return fmt.Sprintf("%s of maxmemory (%s of %s)", Percent(l.usage.Share), HumanBytes(l.usage.Counted), HumanBytes(l.usage.Maxmemory))
}

// OOMErrors returns errorstat_OOM and whether it is known. The Errorstats
// section (Redis 6.2 and later, every Valkey) lists only errors that
// happened, so on a server that has the section an absent errorstat_OOM is
// 0, not unknown. An empty section has no line of its own: Stats'
// total_error_replies, added in the same release (redis#8217), or any other
// errorstat_ line says the server has it.
func OOMErrors(s *Snapshot) (int64, bool) {
	if n, ok := s.Info.ErrorCount("OOM"); ok {
		return n, true
	}
	if s.Info.Has("errorstat_OOM") {
		return 0, false // present but not a count
	}
	if s.Info.Has("total_error_replies") {
		return 0, true
	}
	for k := range s.Info {
		if strings.HasPrefix(k, "errorstat_") {
			return 0, true
		}
	}
	return 0, false
}

// factOOM is errorstat_OOM as evidence, "unknown" before Redis 6.2.
func factOOM(n int64, known bool) Fact {
	if !known {
		return Fact{Name: "errorstat_OOM", Text: "unknown (no INFO errorstats before Redis 6.2)"}
	}
	return factInt("errorstat_OOM", n)
}

// evictionCanFree reports whether maxmemory-policy can make room at the
// limit, and if not, why: noeviction never evicts, a volatile-* policy
// only evicts keys with a TTL, and no policy can evict keys that are not
// there (then the memory is overhead: buffers, scripts, the backlog).
func evictionCanFree(s *Snapshot, t Thresholds) (bool, string) {
	policy, ok := s.Policy()
	keys, expires := s.Keys()
	switch {
	case !ok:
		return false, "maxmemory-policy is unknown"
	case policy == "noeviction":
		return false, "policy noeviction evicts nothing"
	case !s.KeysKnown():
		// A keyspace line was garbage (see Validate): "no keys" or "few
		// with a TTL" would be drawn from a number nobody knows.
		return true, ""
	case keys == 0:
		return false, fmt.Sprintf("policy %s has no keys left to evict", policy)
	case strings.HasPrefix(policy, "allkeys-"):
		return true, ""
	case strings.HasPrefix(policy, "volatile-"):
		if share := float64(expires) / float64(keys); share < t.VolatileMinTTLShare {
			return false, fmt.Sprintf("policy %s evicts only keys with a TTL, and %d of %d keys (%s) have one", policy, expires, keys, Percent(share))
		}
		return true, ""
	}
	return false, "policy " + policy + " is not one redisbot knows"
}

// sameProcess reports whether two samples come from one run of the server,
// so that their counters compare: run_id changes at every start.
func sameProcess(cur, prev *Snapshot) bool {
	id, ok1 := cur.Info.String("run_id")
	prevID, ok2 := prev.Info.String("run_id")
	if ok1 && ok2 && id != "" && prevID != "" {
		return id == prevID
	}
	up, ok1 := cur.Int("uptime_in_seconds")
	prevUp, ok2 := prev.Int("uptime_in_seconds")
	return !ok1 || !ok2 || up >= prevUp
}

// ruleOOMRejecting judges what happens now: rejections since a recent
// previous sample, or an instance at the limit that cannot evict. A count
// since start alone is history (the incident may be long over) and is
// info, so that neither an exit code nor an alert stays critical for good.
func ruleOOMRejecting(in Input) []Finding {
	l := judgeLimit(in)
	if l.oom == 0 && !l.full && !(l.compared && l.newOOM > 0) {
		return nil
	}
	ev := []Fact{factOOM(l.oom, l.oomKnown)}
	if l.compared {
		ev = append(ev, factInt("oom_errors_since_last_sample", l.newOOM), factDuration("since_last_sample_seconds", l.since))
	}
	ev = append(ev, factText("maxmemory_policy", l.policy))
	if l.limited {
		ev = append(ev, usageFacts(l.usage)...)
	}
	ev = append(ev, roomFacts(in)...)
	if s, ok := in.Cur.Int("current_eviction_exceeded_time"); ok && s > 0 {
		ev = append(ev, Fact{Name: "current_eviction_exceeded_time", Value: s, Text: fmt.Sprintf("%d ms", s)})
	}
	sinceStart := "since start"
	if l.reset != "" {
		sinceStart = "since start (" + l.reset + ")"
	}

	switch {
	case l.compared && l.newOOM > 0 && l.since <= staleSample:
		summary := fmt.Sprintf("%d writes failed with %q in the last %s (%d %s); ", l.newOOM, oomMessage, humanDuration(l.since), l.oom, sinceStart)
		switch {
		case !l.limited:
			summary += "maxmemory is unknown or unset now."
		case l.canEvict:
			summary += fmt.Sprintf("%s in use and policy %s evicts, but not enough: eviction cannot free what is not keys (client buffers, scripts, the backlog) or keep up with the writes.", l.usageText(), l.policy)
		default:
			summary += fmt.Sprintf("%s in use and %s.", l.usageText(), l.why)
		}
		return []Finding{newFinding("oom-rejecting", SeverityCritical, summary, ev...)}
	case l.full:
		summary := fmt.Sprintf("Every write that needs memory fails now with %q: %s in use and %s.", oomMessage, l.usageText(), l.why)
		if free := l.usage.Maxmemory - l.usage.Counted; free > 0 {
			summary = fmt.Sprintf("Writes that need memory fail now with %q: %s in use, %s left, and %s.", oomMessage, l.usageText(), HumanBytes(free), l.why)
		}
		if l.oomKnown {
			summary += fmt.Sprintf(" %d rejected %s", l.oom, sinceStart)
			if l.compared {
				summary += fmt.Sprintf(", none in the last %s: clients may have stopped writing", humanDuration(l.since))
			}
			summary += "."
		}
		return []Finding{newFinding("oom-rejecting", SeverityCritical, summary, ev...)}
	case l.compared && l.newOOM > 0:
		// Between two samples far apart: it happened, maybe not now.
		summary := fmt.Sprintf("%d writes failed with OOM errors at some time in the %s since the last sample; ", l.newOOM, humanDuration(l.since))
		summary += nowText(l) + "."
		return []Finding{newFinding("oom-rejecting", SeverityWarning, summary, ev...)}
	}
	// Since start, or since the last CONFIG RESETSTAT: Redis cannot tell.
	summary := fmt.Sprintf("OOM rejections: %d %s, none now: %s.", l.oom, sinceStart, nowText(l))
	if l.compared {
		summary = fmt.Sprintf("OOM rejections: %d %s, none now (none in the last %s): %s.", l.oom, sinceStart, humanDuration(l.since), nowText(l))
	}
	return []Finding{newFinding("oom-rejecting", SeverityInfo, summary, ev...)}
}

// nowText says why writes can succeed now.
func nowText(l limitState) string {
	switch {
	case !l.limited:
		return "maxmemory is unset now"
	case !l.applies:
		return "a replica that ignores maxmemory"
	case !atLimit(l.usage):
		return l.usageText() + " in use"
	}
	return fmt.Sprintf("%s in use and policy %s evicts to make room", l.usageText(), l.policy)
}

func ruleMaxmemoryUnset(in Input) []Finding {
	s := in.Cur
	maxmem, ok := s.Maxmemory()
	if !ok || maxmem != 0 || s.IsReplica() {
		return nil
	}
	used, usedOK := s.Int("used_memory")
	summary := fmt.Sprintf("maxmemory is 0 on a primary holding %s: nothing stops growth until the kernel's OOM killer ends the process.", knownBytes(used, usedOK))
	ev := []Fact{factBytes("maxmemory", 0), factKnownBytes("used_memory", used, usedOK)}
	if in.MemoryLimit > 0 {
		ev = append(ev, factBytes("memory_limit", in.MemoryLimit))
	}
	ev = append(ev, roomFacts(in)...)
	return []Finding{newFinding("maxmemory-unset", SeverityWarning, summary, ev...)}
}

// ruleMaxmemoryNear judges usage against maxmemory by what the policy does
// there. With nothing to evict the limit is where writes start failing, so
// usage is capacity to watch; an evicting cache at its limit runs as
// designed, and its hit rate says whether the limit is right. Once writes
// fail, the limit is not near but reached: oom-rejecting takes over.
func ruleMaxmemoryNear(in Input) []Finding {
	l := judgeLimit(in)
	if !l.limited || !l.applies {
		return nil
	}
	sev := level(l.usage.Share, in.T.MaxmemoryWarning, in.T.MaxmemoryCritical)
	if sev == SeverityNone {
		return nil
	}
	if l.rejectingNow() {
		// The limit is no longer near: writes fail, and oom-rejecting
		// says so. One finding, one alert, for one incident.
		return nil
	}
	ev := append(usageFacts(l.usage), factText("maxmemory_policy", l.policy), factOOM(l.oom, l.oomKnown))
	ev = append(ev, roomFacts(in)...)
	free := max(l.usage.Maxmemory-l.usage.Counted, 0)
	var summary string
	switch {
	case !l.canEvict:
		summary = fmt.Sprintf("%s in use, %s left, and %s: at the limit, writes fail.", l.usageText(), HumanBytes(free), l.why)
	default:
		sev = SeverityInfo
		summary = fmt.Sprintf("%s in use; policy %s evicts to make room, as a cache at its limit is meant to run", l.usageText(), l.policy)
		if e, ok := evictions(in); ok && e.compared && e.n > 0 {
			summary += fmt.Sprintf(" (%d keys evicted in the last %s)", e.n, humanDuration(e.since))
		}
		if h, ok := hitRate(in); ok {
			summary += fmt.Sprintf("; hit rate %s %s", Percent(h.rate), h.window)
			ev = append(ev, h.facts()...)
		}
		if strings.HasPrefix(l.policy, "volatile-") && l.usage.Share >= in.T.MaxmemoryCritical {
			// Only the keys with a TTL are candidates: when they are
			// gone, the policy cannot evict and writes fail.
			sev = SeverityWarning
			keys, expires := in.Cur.Keys()
			summary += fmt.Sprintf(". Only the %d of %d keys with a TTL can be evicted: when they are gone, writes fail", expires, keys)
		}
		summary += "."
	}
	return []Finding{newFinding("maxmemory-near", sev, summary, ev...)}
}

// evictionCount is evicted_keys since the previous sample of the same
// process (compared) or since start.
type evictionCount struct {
	n        int64
	total    int64
	compared bool
	since    time.Duration
}

func evictions(in Input) (evictionCount, bool) {
	total, ok := in.Cur.Int("evicted_keys")
	if !ok {
		return evictionCount{}, false
	}
	e := evictionCount{n: total, total: total}
	if in.Prev != nil && sameProcess(in.Cur, in.Prev) {
		if prev, ok := in.Prev.Int("evicted_keys"); ok && prev <= total {
			e.n, e.compared, e.since = total-prev, true, in.Cur.ProbedAt.Sub(in.Prev.ProbedAt)
		}
	}
	return e, true
}

// hits is the keyspace hit rate since the previous sample of the same
// process, or since start.
type hits struct {
	rate         float64
	hits, misses int64
	window       string // "since start", "in the last 1m"
}

func (h hits) facts() []Fact {
	return []Fact{factShare("hit_rate", h.rate), factInt("keyspace_hits_counted", h.hits), factInt("keyspace_misses_counted", h.misses)}
}

func hitRate(in Input) (hits, bool) {
	hit, ok1 := in.Cur.Int("keyspace_hits")
	miss, ok2 := in.Cur.Int("keyspace_misses")
	if !ok1 || !ok2 {
		return hits{}, false
	}
	h := hits{hits: hit, misses: miss, window: "since start"}
	if in.Prev != nil && sameProcess(in.Cur, in.Prev) {
		ph, ok1 := in.Prev.Int("keyspace_hits")
		pm, ok2 := in.Prev.Int("keyspace_misses")
		if ok1 && ok2 && ph <= hit && pm <= miss && hit+miss > ph+pm {
			h.hits, h.misses = hit-ph, miss-pm
			h.window = "in the last " + humanDuration(in.Cur.ProbedAt.Sub(in.Prev.ProbedAt))
		}
	}
	if h.hits+h.misses == 0 {
		return hits{}, false
	}
	h.rate = float64(h.hits) / float64(h.hits+h.misses)
	return h, true
}

// ruleNoevictionTrap explains the policy: under noeviction the limit is
// where writes fail instead of keys being evicted. It is information beside
// the findings that carry the severity of the moment: maxmemory-near for the
// capacity left, oom-rejecting once writes fail.
func ruleNoevictionTrap(in Input) []Finding {
	l := judgeLimit(in)
	if !l.limited || l.policy != "noeviction" || !l.applies || l.usage.Share < in.T.MaxmemoryWarning {
		return nil
	}
	free := max(l.usage.Maxmemory-l.usage.Counted, 0)
	ev := append([]Fact{factText("maxmemory_policy", l.policy)}, usageFacts(l.usage)...)
	ev = append(ev, factBytes("left_before_limit", free), factOOM(l.oom, l.oomKnown))
	ev = append(ev, roomFacts(in)...)
	summary := fmt.Sprintf("Policy noeviction at %s, %s left: at the limit every write that needs memory fails instead of evicting.", l.usageText(), HumanBytes(free))
	if l.full {
		summary = fmt.Sprintf("Policy noeviction at %s: the limit is reached and nothing may be evicted, so writes fail (oom-rejecting).", l.usageText())
	}
	return []Finding{newFinding("noeviction-trap", SeverityInfo, summary, ev...)}
}

func ruleVolatileNoTTL(in Input) []Finding {
	s := in.Cur
	l := judgeLimit(in)
	if !l.limited || !strings.HasPrefix(l.policy, "volatile-") || !l.applies {
		return nil
	}
	keys, expires := s.Keys()
	if keys == 0 || !s.KeysKnown() {
		return nil
	}
	share := float64(expires) / float64(keys)
	if share >= in.T.VolatileMinTTLShare {
		return nil
	}
	sev := SeverityWarning
	if l.usage.Share >= in.T.MaxmemoryCritical || l.rejectingNow() {
		sev = SeverityCritical
	}
	ev := []Fact{factText("maxmemory_policy", l.policy), factInt("keys", keys), factInt("expires", expires), factShare("ttl_share", share)}
	ev = append(ev, usageFacts(l.usage)...)
	return []Finding{newFinding("volatile-no-ttl", sev,
		fmt.Sprintf("Policy %s evicts only keys with a TTL, but only %d of %d keys (%s) have one: at the limit, eviction cannot free memory and writes fail. Now %s.",
			l.policy, expires, keys, Percent(share), l.usageText()),
		append(append(ev, factOOM(l.oom, l.oomKnown)), roomFacts(in)...)...)}
}

// ruleEvicting reports eviction as information: it is how an instance with
// an evicting policy stays under its limit. When eviction fails to make
// room, oom-rejecting and maxmemory-near say so.
func ruleEvicting(in Input) []Finding {
	e, ok := evictions(in)
	if !ok || e.n == 0 {
		return nil
	}
	l := judgeLimit(in)
	ev := []Fact{factInt("evicted_keys", e.total)}
	var summary string
	if e.compared {
		rate := 0.0
		if e.since > 0 {
			rate = float64(e.n) / e.since.Seconds()
		}
		ev = append(ev, factInt("evicted_since_last_sample", e.n), Fact{Name: "evictions_per_second", Value: round2(rate), Text: fmt.Sprintf("%.1f/s", rate)})
		summary = fmt.Sprintf("%d keys evicted in the last %s (%.1f/s) by policy %s", e.n, humanDuration(e.since), rate, l.policy)
	} else {
		summary = fmt.Sprintf("%d keys evicted since start by policy %s", e.n, l.policy)
	}
	ev = append(ev, factText("maxmemory_policy", l.policy))
	if l.limited {
		summary += ", at " + l.usageText()
		ev = append(ev, usageFacts(l.usage)...)
	}
	if h, ok := hitRate(in); ok {
		summary += fmt.Sprintf("; hit rate %s %s", Percent(h.rate), h.window)
		ev = append(ev, h.facts()...)
	}
	return []Finding{newFinding("evicting", SeverityInfo, summary+".", ev...)}
}

// memoryLimit returns the limit RSS is compared with: the configured
// memory_limit, else the host's total memory (which ignores cgroups).
func memoryLimit(in Input) (limit int64, source string) {
	if in.MemoryLimit > 0 {
		return in.MemoryLimit, "memory_limit"
	}
	if n, ok := in.Cur.Int("total_system_memory"); ok && n > 0 {
		return n, "total_system_memory"
	}
	return 0, ""
}

const cgroupNote = " (memory_limit is not configured: compared with the host's total_system_memory, which ignores container and cgroup limits)"

func ruleRSSNearLimit(in Input) []Finding {
	limit, source := memoryLimit(in)
	rss, ok := in.Cur.Int("used_memory_rss")
	if limit == 0 || !ok {
		return nil
	}
	share := float64(rss) / float64(limit)
	sev := level(share, in.T.RSSLimitWarning, in.T.RSSLimitCritical)
	if sev == SeverityNone {
		return nil
	}
	summary := fmt.Sprintf("RSS %s is %s of the %s limit: the kernel's OOM killer ends the process when it is reached.", HumanBytes(rss), Percent(share), HumanBytes(limit))
	if source != "memory_limit" {
		summary += cgroupNote
	}
	return []Finding{newFinding("rss-near-limit", sev, summary,
		factBytes("used_memory_rss", rss), factBytes(source, limit), factShare("rss_share", share))}
}

// maxmemoryRoom is the largest maxmemory the configured memory_limit holds
// at full use, in whole MiB: RSS runs above used memory by the
// fragmentation ratio, a fork of a persistent instance can copy CowMargin
// of it again, and MaxmemoryOfLimit caps the share. Without a configured
// memory_limit there is no safe answer: the host's total memory ignores
// container and cgroup limits.
func maxmemoryRoom(in Input) (int64, bool) {
	if in.MemoryLimit <= 0 {
		return 0, false
	}
	need := fragForHeadroom(in)
	if persistent, _ := in.Cur.Persistence(); persistent {
		need += in.T.CowMargin
	}
	limit := float64(in.MemoryLimit)
	room := min(limit/need, limit*in.T.MaxmemoryOfLimit)
	return int64(room) &^ (1<<20 - 1), true
}

// roomFacts is safe_maxmemory as evidence, when the memory limit gives it:
// what the first action proposes for maxmemory.
func roomFacts(in Input) []Fact {
	if room, ok := maxmemoryRoom(in); ok {
		return []Fact{factBytes("safe_maxmemory", room)}
	}
	return nil
}

// fragForHeadroom is the fragmentation ratio to size maxmemory with, at
// least 1. Where the ratio is noise (a few MiB beyond little data) it says
// nothing about RSS at full use, and counts as 1 (EffectiveFragRatio).
func fragForHeadroom(in Input) float64 {
	ratio, ok := EffectiveFragRatio(in.Cur, in.T)
	if !ok {
		return 1
	}
	return max(1, ratio)
}

func ruleMaxmemoryHeadroom(in Input) []Finding {
	s := in.Cur
	limit, source := memoryLimit(in)
	maxmem, ok := s.Maxmemory()
	if limit == 0 || !ok || maxmem <= 0 {
		return nil
	}
	frag := fragForHeadroom(in)
	need := float64(maxmem) * frag
	persistent, _ := s.Persistence()
	if persistent {
		need += float64(maxmem) * in.T.CowMargin
	}
	ofLimit := float64(maxmem) / float64(limit)
	if need <= float64(limit) && ofLimit <= in.T.MaxmemoryOfLimit {
		return nil
	}
	sev := SeverityWarning
	if maxmem >= limit {
		sev = SeverityCritical
	}
	summary := fmt.Sprintf("maxmemory %s is %s of the %s limit; at full use with fragmentation %s", HumanBytes(maxmem), Percent(ofLimit), HumanBytes(limit), Ratio(frag))
	if persistent {
		summary += fmt.Sprintf(" and a fork's copy-on-write margin (%s, %s)", Percent(in.T.CowMargin), HumanBytes(int64(float64(maxmem)*in.T.CowMargin)))
	}
	// A big ratio times a big maxmemory overflows an int64, which printed
	// as "needs about -8.0 EiB": beyond any machine, say so instead.
	needBytes, needOK := bytesOf(need)
	if needOK {
		summary += fmt.Sprintf(" the process needs about %s.", HumanBytes(needBytes))
	} else {
		summary += " the process needs more memory than any machine has."
	}
	ev := []Fact{factBytes("maxmemory", maxmem), factBytes(source, limit), factShare("maxmemory_of_limit", ofLimit),
		factRatio("mem_fragmentation_ratio", frag), factKnownBytes("projected_rss", needBytes, needOK)}
	if room, ok := maxmemoryRoom(in); ok {
		summary += fmt.Sprintf(" A maxmemory of %s fits.", HumanBytes(room))
		ev = append(ev, factBytes("safe_maxmemory", room))
	}
	if source != "memory_limit" {
		summary += cgroupNote
	}
	return []Finding{newFinding("maxmemory-headroom", sev, summary, ev...)}
}

func ruleForkSlow(in Input) []Finding {
	usec, ok := in.Cur.Int("latest_fork_usec")
	if !ok || usec <= in.T.ForkSlowUsec {
		return nil
	}
	// Forks of multi-GB datasets routinely take tens of milliseconds; ten
	// times the threshold blocks clients long enough to page someone.
	sev := SeverityInfo
	if usec > 10*in.T.ForkSlowUsec {
		sev = SeverityWarning
	}
	used, usedOK := in.Cur.Int("used_memory")
	return []Finding{newFinding("fork-slow", sev,
		fmt.Sprintf("The last fork blocked the server for %.1f ms (%s of data): BGSAVE, AOF rewrite and full syncs stall every client that long.", float64(usec)/1000, knownBytes(used, usedOK)),
		factInt("latest_fork_usec", usec), factKnownBytes("used_memory", used, usedOK))}
}

func ruleCowHeadroom(in Input) []Finding {
	s := in.Cur
	persistent, known := s.Persistence()
	limit, source := memoryLimit(in)
	used, ok := s.Int("used_memory")
	if !known || !persistent || limit == 0 || !ok {
		return nil
	}
	share := float64(used) / float64(limit)
	if share <= in.T.CowUsedShare {
		return nil
	}
	cow, cowOK := s.Int("rdb_last_cow_size")
	summary := fmt.Sprintf("Persistence is on and data uses %s of the %s limit (%s): a fork under heavy writes can copy up to the whole dataset (last BGSAVE copied %s).",
		Percent(share), HumanBytes(limit), HumanBytes(used), knownBytes(cow, cowOK))
	if source != "memory_limit" {
		summary += cgroupNote
	}
	return []Finding{newFinding("cow-headroom", SeverityWarning, summary,
		factBytes("used_memory", used), factBytes(source, limit), factShare("used_share", share), factKnownBytes("rdb_last_cow_size", cow, cowOK))}
}

func ruleClientBuffers(in Input) []Finding {
	s := in.Cur
	normal, ok := s.Int("mem_clients_normal")
	if !ok {
		return nil
	}
	clients, _ := s.Int("connected_clients")
	replicas, _ := s.Int("connected_slaves")
	n := max(clients-replicas, 1)
	avg := normal / n
	if avg <= in.T.ClientBufferAvg && normal <= in.T.ClientBufferTotal {
		return nil
	}
	return []Finding{newFinding("client-buffers", SeverityWarning,
		fmt.Sprintf("Client buffers hold %s over %d clients (%s each on average): slow consumers, big replies or big pipelines.", HumanBytes(normal), n, HumanBytes(avg)),
		factBytes("mem_clients_normal", normal), factInt("clients", n), factBytes("average_per_client", avg))}
}

func ruleReplicaBuffers(in Input) []Finding {
	b, ok := in.Cur.Int("mem_clients_slaves")
	if !ok || b <= in.T.ReplicaBuffers {
		return nil
	}
	replicas, _ := in.Cur.Int("connected_slaves")
	return []Finding{newFinding("replica-buffers", SeverityWarning,
		fmt.Sprintf("Replica output buffers hold %s for %d replicas: a replica is not keeping up.", HumanBytes(b), replicas),
		factBytes("mem_clients_slaves", b), factInt("connected_slaves", replicas))}
}

func ruleManyScripts(in Input) []Finding {
	n, ok := in.Cur.Int("number_of_cached_scripts")
	if !ok || n <= in.T.ManyScripts {
		return nil
	}
	mem, memOK := in.Cur.Int("used_memory_scripts")
	return []Finding{newFinding("many-scripts", SeverityWarning,
		fmt.Sprintf("%d scripts cached (%s): scripts generated per call instead of parameterised.", n, knownBytes(mem, memOK)),
		factInt("number_of_cached_scripts", n), factKnownBytes("used_memory_scripts", mem, memOK))}
}

func ruleLazyfreeBacklog(in Input) []Finding {
	n, ok := in.Cur.Int("lazyfree_pending_objects")
	if !ok || n == 0 {
		return nil
	}
	if in.Prev != nil {
		prev, _ := in.Prev.Int("lazyfree_pending_objects")
		if prev == 0 || n < prev {
			return nil // new or draining
		}
		return []Finding{newFinding("lazyfree-backlog", SeverityWarning,
			fmt.Sprintf("%d objects wait to be freed in the background and the backlog is not shrinking (was %d): memory is held after deletes.", n, prev),
			factInt("lazyfree_pending_objects", n), factInt("previous_sample", prev))}
	}
	if n < in.T.LazyfreeBacklog {
		return nil
	}
	return []Finding{newFinding("lazyfree-backlog", SeverityInfo,
		fmt.Sprintf("%d objects wait to be freed in the background: memory is held until the lazyfree thread catches up.", n),
		factInt("lazyfree_pending_objects", n))}
}

// ruleReplicaOverMaxmemory: a replica that ignores maxmemory (the default)
// may hold more than it. That is harmless until a failover promotes it:
// then the limit applies at once, and a policy that cannot evict fails
// every write that needs memory from the first second.
func ruleReplicaOverMaxmemory(in Input) []Finding {
	s := in.Cur
	u, ok := MaxmemoryUsage(s)
	if !s.IsReplica() || !ok || evictionApplies(s) || u.Counted <= u.Maxmemory {
		return nil
	}
	over := u.Counted - u.Maxmemory
	policy, known := s.Policy()
	canEvict, why := evictionCanFree(s, in.T)
	ev := []Fact{factBytes("used_memory_counted", u.Counted), factBytes("maxmemory", u.Maxmemory), factBytes("over_maxmemory", over),
		factShare("usage", u.Share), factText("maxmemory_policy", orUnknown(policy, known))}
	if !canEvict {
		return []Finding{newFinding("replica-over-maxmemory", SeverityWarning,
			fmt.Sprintf("Replica holds %s, %s above its maxmemory %s, and %s: it ignores maxmemory while it replicates, but promoted to primary it fails every write that needs memory at once.",
				HumanBytes(u.Counted), HumanBytes(over), HumanBytes(u.Maxmemory), why), ev...)}
	}
	return []Finding{newFinding("replica-over-maxmemory", SeverityInfo,
		fmt.Sprintf("Replica holds %s, %s above its maxmemory %s: replicas ignore maxmemory (replica-ignore-maxmemory) and follow the primary's deletes; promoted, it would first evict about %s (policy %s).",
			HumanBytes(u.Counted), HumanBytes(over), HumanBytes(u.Maxmemory), HumanBytes(over), policy), ev...)}
}

// doctorFinding quotes MEMORY DOCTOR when it reports issues. Its checks
// overlap ours; its text is evidence from the server itself.
func doctorFinding(in Input) []Finding {
	issues := DoctorIssues(in.Cur.Doctor)
	if len(issues) == 0 {
		return nil
	}
	return []Finding{newFinding("memory-doctor", SeverityInfo,
		"MEMORY DOCTOR reports: "+strings.Join(issues, "; ")+".",
		factText("issues", strings.Join(issues, "; ")), factText("text", strings.TrimSpace(in.Cur.Doctor)))}
}

// DoctorIssues extracts the issue titles (" * Peak memory: ...") from MEMORY
// DOCTOR's text. A report without issues, or an empty instance, has none.
func DoctorIssues(text string) []string {
	var issues []string
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "* ")
		if !ok {
			continue
		}
		if title, _, ok := strings.Cut(rest, ":"); ok {
			issues = append(issues, title)
		}
	}
	return issues
}
