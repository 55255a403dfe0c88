package handlers

import (
	"fmt"
	"strings"
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

func ruleOOMRejecting(in Input) []Finding {
	s := in.Cur
	count, _ := s.Info.ErrorCount("OOM")
	policy, _ := s.Policy()
	u, limited := MaxmemoryUsage(s)
	atLimit := limited && policy == "noeviction" && u.Share >= 1.0 && evictionApplies(s)
	if count == 0 && !atLimit {
		return nil
	}
	ev := []Fact{factInt("errorstat_OOM", count), factText("maxmemory_policy", policy)}
	if limited {
		ev = append(ev, usageFacts(u)...)
	}
	const msg = "OOM command not allowed when used memory > 'maxmemory'"
	if in.Prev != nil {
		prev, _ := in.Prev.Info.ErrorCount("OOM")
		if count >= prev && count > prev {
			ev = append(ev, factInt("oom_errors_since_last_sample", count-prev))
			return []Finding{newFinding("oom-rejecting", SeverityCritical,
				fmt.Sprintf("%d writes failed with %q since the last sample.", count-prev, msg), ev...)}
		}
		if !atLimit {
			return []Finding{newFinding("oom-rejecting", SeverityWarning,
				fmt.Sprintf("%d writes were rejected with OOM errors since start or the last CONFIG RESETSTAT, none since the last sample.", count), ev...)}
		}
	}
	summary := fmt.Sprintf("Writes are failing with %q: %d rejected since start or the last CONFIG RESETSTAT.", msg, count)
	if atLimit && count == 0 {
		summary = fmt.Sprintf("At %s of maxmemory with noeviction: the next write that needs memory fails with %q.", Percent(u.Share), msg)
	}
	return []Finding{newFinding("oom-rejecting", SeverityCritical, summary, ev...)}
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
	return []Finding{newFinding("maxmemory-unset", SeverityWarning, summary, ev...)}
}

func ruleMaxmemoryNear(in Input) []Finding {
	s := in.Cur
	u, ok := MaxmemoryUsage(s)
	if !ok || !evictionApplies(s) {
		return nil
	}
	sev := level(u.Share, in.T.MaxmemoryWarning, in.T.MaxmemoryCritical)
	if sev == SeverityNone {
		return nil
	}
	policy, _ := s.Policy()
	return []Finding{newFinding("maxmemory-near", sev,
		fmt.Sprintf("%s of maxmemory in use (%s of %s, policy %s).", Percent(u.Share), HumanBytes(u.Counted), HumanBytes(u.Maxmemory), policy),
		append(usageFacts(u), factText("maxmemory_policy", policy))...)}
}

func ruleNoevictionTrap(in Input) []Finding {
	s := in.Cur
	policy, _ := s.Policy()
	u, ok := MaxmemoryUsage(s)
	if !ok || policy != "noeviction" || !evictionApplies(s) {
		return nil
	}
	sev := level(u.Share, in.T.MaxmemoryWarning, in.T.MaxmemoryCritical)
	if sev == SeverityNone {
		return nil
	}
	return []Finding{newFinding("noeviction-trap", sev,
		fmt.Sprintf("Policy noeviction at %s of maxmemory: when it is reached, every write that needs memory fails instead of evicting.", Percent(u.Share)),
		append([]Fact{factText("maxmemory_policy", policy)}, usageFacts(u)...)...)}
}

func ruleVolatileNoTTL(in Input) []Finding {
	s := in.Cur
	policy, _ := s.Policy()
	u, ok := MaxmemoryUsage(s)
	if !ok || !strings.HasPrefix(policy, "volatile-") || !evictionApplies(s) {
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
	if u.Share >= in.T.MaxmemoryCritical {
		sev = SeverityCritical
	}
	return []Finding{newFinding("volatile-no-ttl", sev,
		fmt.Sprintf("Policy %s evicts only keys with a TTL, but only %d of %d keys (%s) have one: at the limit, eviction cannot free memory and writes fail.",
			policy, expires, keys, Percent(share)),
		factText("maxmemory_policy", policy), factInt("keys", keys), factInt("expires", expires), factShare("ttl_share", share), factShare("usage", u.Share))}
}

func ruleEvicting(in Input) []Finding {
	s := in.Cur
	evicted, ok := s.Int("evicted_keys")
	if !ok || evicted == 0 {
		return nil
	}
	if in.Prev != nil {
		prev, _ := in.Prev.Int("evicted_keys")
		elapsed := s.ProbedAt.Sub(in.Prev.ProbedAt).Seconds()
		if evicted <= prev || elapsed <= 0 {
			return nil
		}
		rate := float64(evicted-prev) / elapsed
		return []Finding{newFinding("evicting", SeverityInfo,
			fmt.Sprintf("%d keys evicted since the last sample (%.1f/s).", evicted-prev, rate),
			factInt("evicted_keys", evicted), factInt("evicted_since_last_sample", evicted-prev), Fact{Name: "evictions_per_second", Value: round2(rate), Text: fmt.Sprintf("%.1f/s", rate)})}
	}
	policy, _ := s.Policy()
	return []Finding{newFinding("evicting", SeverityInfo,
		fmt.Sprintf("%d keys evicted since start (policy %s).", evicted, policy),
		factInt("evicted_keys", evicted), factText("maxmemory_policy", policy))}
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

func ruleMaxmemoryHeadroom(in Input) []Finding {
	s := in.Cur
	limit, source := memoryLimit(in)
	maxmem, ok := s.Maxmemory()
	if limit == 0 || !ok || maxmem <= 0 {
		return nil
	}
	frag, _ := s.Float("mem_fragmentation_ratio")
	need := float64(maxmem) * max(1, frag)
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
	summary := fmt.Sprintf("maxmemory %s is %s of the %s limit; at full use with fragmentation %s", HumanBytes(maxmem), Percent(ofLimit), HumanBytes(limit), Ratio(max(1, frag)))
	if persistent {
		summary += fmt.Sprintf(" and a fork's copy-on-write margin (%s)", Percent(in.T.CowMargin))
	}
	// A big ratio times a big maxmemory overflows an int64, which printed
	// as "needs about -8.0 EiB": beyond any machine, say so instead.
	needBytes, needOK := bytesOf(need)
	if needOK {
		summary += fmt.Sprintf(" the process needs about %s.", HumanBytes(needBytes))
	} else {
		summary += " the process needs more memory than any machine has."
	}
	if source != "memory_limit" {
		summary += cgroupNote
	}
	return []Finding{newFinding("maxmemory-headroom", sev, summary,
		factBytes("maxmemory", maxmem), factBytes(source, limit), factShare("maxmemory_of_limit", ofLimit),
		factRatio("mem_fragmentation_ratio", frag), factKnownBytes("projected_rss", needBytes, needOK))}
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
	summary := fmt.Sprintf("Persistence is on and data uses %s of the %s limit: a fork under heavy writes can copy up to the whole dataset (last BGSAVE copied %s).",
		Percent(share), HumanBytes(limit), knownBytes(cow, cowOK))
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

func ruleReplicaOverMaxmemory(in Input) []Finding {
	s := in.Cur
	maxmem, ok := s.Maxmemory()
	if !s.IsReplica() || !ok || maxmem <= 0 || evictionApplies(s) {
		return nil
	}
	used, _ := s.Int("used_memory")
	if used <= maxmem {
		return nil
	}
	return []Finding{newFinding("replica-over-maxmemory", SeverityInfo,
		fmt.Sprintf("Replica uses %s, above its maxmemory %s: replicas do not evict (replica-ignore-maxmemory) and follow the primary's deletes.", HumanBytes(used), HumanBytes(maxmem)),
		factBytes("used_memory", used), factBytes("maxmemory", maxmem))}
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
