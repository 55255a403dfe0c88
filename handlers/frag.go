package handlers

import (
	"fmt"
	"strings"
)

// Step is one question of the fragmentation decision tree and the answer
// this snapshot gave, so `redisbot frag` can show the path it took.
type Step struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
	// Finding is the id the step produced, if any.
	Finding string `json:"finding,omitempty"`
}

// FragAnalysis is the decision tree's path and its findings.
type FragAnalysis struct {
	Steps    []Step    `json:"steps"`
	Findings []Finding `json:"findings"`
}

func (a *FragAnalysis) step(q, answer string, f ...Finding) {
	s := Step{Question: q, Answer: answer}
	if len(f) > 0 {
		s.Finding = f[0].ID
		a.Findings = append(a.Findings, f...)
	}
	a.Steps = append(a.Steps, s)
}

// FragTree walks the fragmentation runbook's decision tree: filter noise
// first, then swapping, then peak artifacts, then true allocator
// fragmentation against RSS overhead, then the state of active defrag, then
// persistence events that make the ratio transient.
func FragTree(in Input) FragAnalysis {
	var a FragAnalysis
	s, t := in.Cur, in.T
	used, _ := s.Int("used_memory")
	rss, _ := s.Int("used_memory_rss")
	ratio, ratioOK := s.Float("mem_fragmentation_ratio")
	if !ratioOK && used > 0 {
		ratio, ratioOK = float64(rss)/float64(used), rss > 0
	}
	if !ratioOK {
		a.step("Is mem_fragmentation_ratio reported?", "no: the server did not report it; nothing to analyse")
		return a
	}
	ratioFacts := []Fact{factRatio("mem_fragmentation_ratio", ratio), factBytes("used_memory_rss", rss), factBytes("used_memory", used)}

	// 1. The allocator decides what the allocator_* ratios mean and which
	// remedies exist at all.
	jemalloc, known := s.Jemalloc()
	allocName, _ := s.Info.String("mem_allocator")
	switch {
	case !known:
		a.step("Which allocator?", "unknown (mem_allocator not reported)")
	case jemalloc:
		a.step("Which allocator?", allocName+": MEMORY PURGE and allocator ratios apply")
	default:
		sev := SeverityInfo
		if ratio >= t.FragWarning && used >= t.FragMinUsedMemory {
			sev = SeverityWarning
		}
		a.step("Which allocator?", allocName+": not jemalloc, so no MEMORY PURGE, no active defrag",
			newFinding("allocator-not-jemalloc", sev,
				fmt.Sprintf("Allocator is %s: MEMORY PURGE is a no-op, active defrag is unavailable and allocator_* ratios are meaningless.", allocName),
				factText("mem_allocator", allocName), factRatio("mem_fragmentation_ratio", ratio)))
	}

	// 2. Noise: on small instances the allocator's granularity and the
	// process's fixed RSS dominate the ratio.
	if used < t.FragMinUsedMemory {
		if ratio >= t.FragWarning {
			a.step(fmt.Sprintf("Is used_memory at least %s?", HumanBytes(t.FragMinUsedMemory)),
				fmt.Sprintf("no (%s): ratio %s is noise", HumanBytes(used), Ratio(ratio)),
				newFinding("frag-noise", SeverityInfo,
					fmt.Sprintf("Ratio %s on only %s of data: ignore, allocator granularity dominates small instances.", Ratio(ratio), HumanBytes(used)),
					ratioFacts...))
		} else {
			a.step(fmt.Sprintf("Is used_memory at least %s?", HumanBytes(t.FragMinUsedMemory)),
				fmt.Sprintf("no (%s), and the ratio %s is normal", HumanBytes(used), Ratio(ratio)))
		}
		return a
	}
	a.step(fmt.Sprintf("Is used_memory at least %s?", HumanBytes(t.FragMinUsedMemory)), fmt.Sprintf("yes (%s)", HumanBytes(used)))

	// 3. RSS below the data: pages are on swap.
	if ratio < 1.0 && used >= t.SwapMinUsedMemory {
		a.step("Is RSS below used_memory (ratio < 1.0)?", fmt.Sprintf("yes (%s): part of the dataset is swapped out", Ratio(ratio)),
			newFinding("frag-swap", SeverityCritical,
				fmt.Sprintf("RSS %s is below used memory %s (ratio %s): the kernel swapped part of Redis out; latency will spike.", HumanBytes(rss), HumanBytes(used), Ratio(ratio)),
				ratioFacts...))
		return a
	}

	high := ratio >= t.FragWarning
	fragHigh := -1 // index of frag-high in a.Findings
	if !high {
		a.step(fmt.Sprintf("Is mem_fragmentation_ratio >= %s?", Ratio(t.FragWarning)), fmt.Sprintf("no (%s)", Ratio(ratio)))
	} else {
		sev := level(ratio, t.FragWarning, t.FragCritical)
		summary := fmt.Sprintf("RSS is %s for %s of data (ratio %s): %s held beyond the data.", HumanBytes(rss), HumanBytes(used), Ratio(ratio), HumanBytes(rss-used))
		if ratio >= t.FragRestart {
			summary += " Above " + Ratio(t.FragRestart) + ", failover or a restart is the reliable way back."
		}
		f := newFinding("frag-high", sev, summary, ratioFacts...)
		a.step(fmt.Sprintf("Is mem_fragmentation_ratio >= %s?", Ratio(t.FragWarning)), fmt.Sprintf("yes (%s)", Ratio(ratio)), f)
		fragHigh = len(a.Findings) - 1
	}

	// 4. Peak artifact: the allocator keeps pages freed after a peak.
	peak, _ := s.Int("used_memory_peak")
	if high && peak > 0 && float64(peak) >= t.PostPeakFactor*float64(used) {
		f := newFinding("frag-post-peak", SeverityWarning,
			fmt.Sprintf("Peak was %s, %.1fx today's %s: the allocator still holds pages freed since. MEMORY PURGE may return them; otherwise they are reused as data grows.",
				HumanBytes(peak), float64(peak)/float64(used), HumanBytes(used)),
			factBytes("used_memory_peak", peak), factBytes("used_memory", used), factRatio("mem_fragmentation_ratio", ratio))
		a.step(fmt.Sprintf("Is used_memory_peak >= %.1fx used_memory?", t.PostPeakFactor), "yes: a post-peak artifact", f)
		// The ratio is explained by the peak: it is not a growing problem by
		// itself (rss-near-limit still warns if RSS threatens the limit).
		a.Findings[fragHigh].Severity = SeverityInfo
		a.Findings[fragHigh].Summary += " Explained by the past peak."
	} else if high {
		a.step(fmt.Sprintf("Is used_memory_peak >= %.1fx used_memory?", t.PostPeakFactor), fmt.Sprintf("no (peak %s)", HumanBytes(peak)))
	}

	// 5. Allocator fragmentation (what active defrag acts on) against RSS
	// overhead outside the allocator's live data.
	allocFrag, allocFragOK := s.Float("allocator_frag_ratio")
	allocBytes, _ := s.Int("allocator_frag_bytes")
	allocHigh := false
	if jemalloc && allocFragOK {
		allocHigh = allocFrag >= t.AllocFragWarning && allocBytes >= t.AllocFragMinBytes
		q := fmt.Sprintf("Is allocator_frag_ratio >= %s with at least %s fragmented?", Ratio(t.AllocFragWarning), HumanBytes(t.AllocFragMinBytes))
		if allocHigh {
			f := newFinding("frag-allocator", level(allocFrag, t.AllocFragWarning, t.AllocFragCritical),
				fmt.Sprintf("Allocator fragmentation %s: %s sit in partly used pages. Active defrag can move it; a failover or restart resets it.",
					Ratio(allocFrag), HumanBytes(allocBytes)),
				factRatio("allocator_frag_ratio", allocFrag), factBytes("allocator_frag_bytes", allocBytes), factRatio("mem_fragmentation_ratio", ratio))
			if s.VersionAtLeast(7, 4, 0) {
				f.Summary += " (Redis 7.4+ counts only true fragmentation in this ratio.)"
			}
			a.step(q, fmt.Sprintf("yes (%s, %s)", Ratio(allocFrag), HumanBytes(allocBytes)), f)
		} else {
			a.step(q, fmt.Sprintf("no (%s, %s)", Ratio(allocFrag), HumanBytes(allocBytes)))
		}
		if high && allocFrag < t.AllocFragWarning {
			allocRSS, _ := s.Float("allocator_rss_ratio")
			rssOver, _ := s.Float("rss_overhead_ratio")
			allocRSSBytes, _ := s.Int("allocator_rss_bytes")
			rssOverBytes, _ := s.Int("rss_overhead_bytes")
			f := newFinding("frag-rss-overhead", SeverityWarning,
				fmt.Sprintf("Ratio %s but allocator fragmentation only %s: the excess is RSS outside live allocations (allocator_rss_ratio %s, rss_overhead_ratio %s).",
					Ratio(ratio), Ratio(allocFrag), Ratio(allocRSS), Ratio(rssOver)),
				factRatio("mem_fragmentation_ratio", ratio), factRatio("allocator_frag_ratio", allocFrag),
				factRatio("allocator_rss_ratio", allocRSS), factBytes("allocator_rss_bytes", allocRSSBytes),
				factRatio("rss_overhead_ratio", rssOver), factBytes("rss_overhead_bytes", rssOverBytes))
			a.step("Is the high ratio outside the allocator (allocator_frag_ratio low)?", "yes: RSS padding or process overhead", f)
		}
	}

	// 6. Active defrag: off while it would help, running without effect, or
	// on a version with a known defect.
	a.defragState(in, allocHigh)

	// 7. A fork in progress inflates RSS (copy-on-write pages): everything
	// above is transient until it ends.
	bgsave, _ := s.Int("rdb_bgsave_in_progress")
	rewrite, _ := s.Int("aof_rewrite_in_progress")
	if bgsave == 1 || rewrite == 1 {
		what := "BGSAVE"
		if rewrite == 1 {
			what = "AOF rewrite"
		}
		for i := range a.Findings {
			if strings.HasPrefix(a.Findings[i].ID, "frag-") {
				a.Findings[i].Severity = SeverityInfo
			}
		}
		a.step("Is a fork (BGSAVE or AOF rewrite) in progress?", "yes: the ratio is transient",
			newFinding("frag-fork-transient", SeverityInfo,
				fmt.Sprintf("An %s is in progress: copy-on-write inflates RSS until it ends; re-check after it finishes.", what),
				factInt("rdb_bgsave_in_progress", bgsave), factInt("aof_rewrite_in_progress", rewrite), factRatio("mem_fragmentation_ratio", ratio)))
	} else {
		a.step("Is a fork (BGSAVE or AOF rewrite) in progress?", "no")
	}
	return a
}

func (a *FragAnalysis) defragState(in Input, allocHigh bool) {
	s, t := in.Cur, in.T
	setting, known := s.Config["activedefrag"]
	running, _ := s.Int("active_defrag_running")
	switch {
	case allocHigh && known && setting == "no":
		a.step("Is active defrag on?", "no, while allocator fragmentation is high",
			newFinding("defrag-disabled", SeverityWarning,
				"Allocator fragmentation is high and activedefrag is off. Turning it on (with conservative limits) would reclaim memory in place, if the build supports it.",
				factText("activedefrag", setting), factRatio("allocator_frag_ratio", mustFloat(s, "allocator_frag_ratio")), factBytes("allocator_frag_bytes", mustInt(s, "allocator_frag_bytes"))))
	case allocHigh && !known:
		a.step("Is active defrag on?", "unknown: CONFIG GET activedefrag was not answered")
	case known:
		a.step("Is active defrag on?", setting)
	}

	if running > 0 {
		hits, _ := s.Int("active_defrag_hits")
		misses, _ := s.Int("active_defrag_misses")
		// With history, judge the work done since the last sample.
		if in.Prev != nil {
			ph, _ := in.Prev.Int("active_defrag_hits")
			pm, _ := in.Prev.Int("active_defrag_misses")
			if hits >= ph && misses >= pm {
				hits, misses = hits-ph, misses-pm
			}
		}
		if total := hits + misses; total > 0 {
			hitRatio := float64(hits) / float64(total)
			q := fmt.Sprintf("Is running defrag effective (hits/(hits+misses) >= %s)?", Ratio(t.DefragMinHitRatio))
			if hitRatio < t.DefragMinHitRatio {
				a.step(q, fmt.Sprintf("no (%s)", Percent(hitRatio)),
					newFinding("defrag-ineffective", SeverityWarning,
						fmt.Sprintf("Active defrag is running (%d%% of CPU) but only %s of the allocations it visits move: it spends CPU for little memory back.", running, Percent(hitRatio)),
						factInt("active_defrag_running", running), factInt("active_defrag_hits", hits), factInt("active_defrag_misses", misses), factShare("hit_ratio", hitRatio)))
			} else {
				a.step(q, fmt.Sprintf("yes (%s)", Percent(hitRatio)))
			}
		}
	}

	if defect, ok := defragDefect(s); ok && (setting == "yes" || allocHigh) {
		sev := SeverityInfo
		if setting == "yes" {
			sev = SeverityWarning
		}
		a.step("Does this version have a known active-defrag defect?", "yes: "+defect.Note,
			newFinding("defrag-version-risk", sev,
				fmt.Sprintf("%s %s: %s (%s).", s.ServerName(), s.Version(), defect.Note, defect.Ref),
				factText("version", s.Version()), factText("activedefrag", orUnknown(setting, known)), factText("defect", defect.Note), factText("reference", defect.Ref)))
	}
}

func mustFloat(s *Snapshot, key string) float64 { f, _ := s.Float(key); return f }
func mustInt(s *Snapshot, key string) int64     { n, _ := s.Int(key); return n }

func orUnknown(v string, ok bool) string {
	if !ok {
		return "unknown"
	}
	return v
}
