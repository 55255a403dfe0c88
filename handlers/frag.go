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

// find returns the finding with the id, or nil.
func (a *FragAnalysis) find(id string) *Finding {
	for i := range a.Findings {
		if a.Findings[i].ID == id {
			return &a.Findings[i]
		}
	}
	return nil
}

// component is one part of the RSS beyond the data, as INFO splits it.
// Which one carries the excess decides what can give the memory back.
type component int

const (
	// compHoles: free slots in pages that still hold live allocations
	// (allocator_frag). Only active defrag or rebuilding the memory (failover,
	// restart) returns them; MEMORY PURGE cannot.
	compHoles component = iota
	// compRetained: whole free pages jemalloc keeps resident for reuse
	// (allocator_rss). MEMORY PURGE returns them at once.
	compRetained
	// compOutside: RSS jemalloc does not account for (rss_overhead): Lua
	// before Redis 7.4, modules, transparent huge pages, thread stacks, the
	// binary, pages jemalloc released lazily (allocator_muzzy).
	compOutside
)

func (c component) String() string {
	return [...]string{"holes in pages still in use", "free pages the allocator retains", "RSS outside the allocator"}[c]
}

// fragSplit is where the RSS beyond the data sits, by the INFO component
// that carries it, each in bytes next to its ratio.
type fragSplit struct {
	// known: jemalloc, and all three byte counts reported. Other allocators
	// have no such split (7.4 fakes the fields as 1.00 and 0 bytes).
	known   bool
	bytes   [3]int64 // by component; a negative difference (RSS sampled below allocator_resident) counts as 0
	ratio   [3]float64
	ratioOK [3]bool
	// muzzy (allocator_muzzy, Redis 7.4+ and Valkey 8+) are pages jemalloc
	// handed back with MADV_FREE: the kernel takes them only under pressure,
	// so they still count in RSS, outside allocator_resident. MEMORY PURGE
	// releases them at once.
	muzzy   int64
	muzzyOK bool
	// other is what the three leave unexplained: the allocations Redis does
	// not count in used_memory and, from 7.4, the waste outside small size
	// classes, which allocator_frag_bytes no longer counts.
	other int64
}

var splitFields = [3]struct{ bytes, ratio, short string }{
	{"allocator_frag_bytes", "allocator_frag_ratio", "allocator_frag"},
	{"allocator_rss_bytes", "allocator_rss_ratio", "allocator_rss"},
	{"rss_overhead_bytes", "rss_overhead_ratio", "rss_overhead"},
}

func splitOf(s *Snapshot, jemalloc bool, excess int64) fragSplit {
	sp := fragSplit{known: jemalloc}
	for c, f := range splitFields {
		n, ok := s.Int(f.bytes)
		sp.known = sp.known && ok
		sp.bytes[c] = max(n, 0)
		sp.ratio[c], sp.ratioOK[c] = s.Float(f.ratio)
	}
	sp.muzzy, sp.muzzyOK = s.Int("allocator_muzzy")
	sp.muzzy = max(sp.muzzy, 0)
	sp.other = excess - sp.bytes[compHoles] - sp.bytes[compRetained] - sp.bytes[compOutside]
	return sp
}

// carrier is the component holding most of the excess.
func (sp fragSplit) carrier() component {
	c := compHoles
	for _, o := range []component{compRetained, compOutside} {
		if sp.bytes[o] > sp.bytes[c] {
			c = o
		}
	}
	return c
}

// purgeable is what MEMORY PURGE can give back: the free pages jemalloc
// retains and the muzzy ones the kernel has not taken yet. Part of
// allocator_rss_bytes is jemalloc's own metadata, so it is an upper bound.
func (sp fragSplit) purgeable() int64 {
	return sp.bytes[compRetained] + min(sp.muzzy, sp.bytes[compOutside])
}

// significant reports whether a component is worth a finding of its own:
// at least t.FragNoiseBytes, and its ratio at least alloc_frag_warning, the
// bar MEMORY DOCTOR sets for all three allocator ratios (1.1).
func (sp fragSplit) significant(c component, t Thresholds) bool {
	return sp.bytes[c] >= t.FragNoiseBytes && (!sp.ratioOK[c] || sp.ratio[c] >= t.AllocFragWarning)
}

// facts are the component's ratio and bytes, for evidence.
func (sp fragSplit) facts(c component) []Fact {
	f := splitFields[c]
	return []Fact{factKnownRatio(f.ratio, sp.ratio[c], sp.ratioOK[c]), factBytes(f.bytes, sp.bytes[c])}
}

// describe is the split in one line, for the tree's printout.
func (sp fragSplit) describe(smallBins bool) string {
	part := func(c component, name string) string {
		f := splitFields[c]
		return fmt.Sprintf("%s %s (%s %s)", name, HumanBytes(sp.bytes[c]), f.short, knownRatio(sp.ratio[c], sp.ratioOK[c]))
	}
	out := part(compHoles, "holes in used pages") + " · " + part(compRetained, "free pages retained") + " · " + part(compOutside, "outside the allocator")
	if sp.muzzyOK && sp.muzzy > 0 {
		out += fmt.Sprintf(", %s of it muzzy", HumanBytes(sp.muzzy))
	}
	if sp.other >= 1<<20 {
		out += fmt.Sprintf(" · elsewhere %s", HumanBytes(sp.other))
		if smallBins {
			out += " (7.4+ counts holes in small size classes only)"
		}
	}
	return out
}

// fragView is what the tree reads from one snapshot, each number with
// whether it was reported.
type fragView struct {
	used, rss, peak       int64
	usedOK, rssOK, peakOK bool
	ratio                 float64
	ratioOK               bool
	// excess is the RSS beyond the data: mem_fragmentation_bytes, or RSS
	// minus used_memory on servers that do not print it.
	excess   int64
	excessOK bool
}

func viewOf(s *Snapshot) fragView {
	var v fragView
	v.used, v.usedOK = s.Int("used_memory")
	v.rss, v.rssOK = s.Int("used_memory_rss")
	v.peak, v.peakOK = s.Int("used_memory_peak")
	v.ratio, v.ratioOK = s.Float("mem_fragmentation_ratio")
	if !v.ratioOK && v.usedOK && v.rssOK && v.used > 0 {
		v.ratio = float64(v.rss) / float64(v.used)
		v.ratioOK = v.rss > 0 && saneRatio(v.ratio)
	}
	v.excess, v.excessOK = s.Int("mem_fragmentation_bytes")
	if !v.excessOK && v.usedOK && v.rssOK {
		v.excess, v.excessOK = v.rss-v.used, true
	}
	if !v.excessOK && v.usedOK && v.ratioOK {
		v.excess, v.excessOK = bytesOf(float64(v.used) * (v.ratio - 1))
	}
	return v
}

// totalFacts are the total ratio with the bytes behind it, for evidence.
func (v fragView) totalFacts() []Fact {
	return []Fact{factRatio("mem_fragmentation_ratio", v.ratio), factKnownBytes("mem_fragmentation_bytes", v.excess, v.excessOK),
		factKnownBytes("used_memory_rss", v.rss, v.rssOK), factKnownBytes("used_memory", v.used, v.usedOK)}
}

// noise reports whether the RSS beyond the data is too small to mean
// anything, whatever the ratio: a process holding almost no data still has
// its binary, stacks and allocator arenas resident (about 6 MiB for 7.0),
// so a few MiB of data read as a ratio of 5 or 10.
func (v fragView) noise(t Thresholds) bool {
	return v.excessOK && v.excess < t.FragNoiseBytes
}

// EffectiveFragRatio returns mem_fragmentation_ratio when it says something
// about the instance. ok is false when the server did not report it and when
// the RSS beyond the data is below t.FragNoiseBytes: a ratio of 9 on a
// process holding a few MiB is noise, and multiplying it into a memory
// projection or drawing it against the critical line misleads.
func EffectiveFragRatio(s *Snapshot, t Thresholds) (ratio float64, ok bool) {
	v := viewOf(s)
	if !v.ratioOK || v.noise(t) {
		return 0, false
	}
	return v.ratio, true
}

// FragRatioOf is EffectiveFragRatio for the numbers a history sample keeps:
// the ratio, used_memory and RSS (0 when unknown). With either size unknown
// the ratio is returned as it is; a ratio of 0 or less is no ratio.
func FragRatioOf(ratio float64, used, rss int64, t Thresholds) (float64, bool) {
	if ratio <= 0 || !saneRatio(ratio) {
		return 0, false
	}
	if used > 0 && rss > 0 && rss-used < t.FragNoiseBytes {
		return 0, false
	}
	return ratio, true
}

// smallBinHoles reports whether allocator_frag_bytes counts only the free
// slots in jemalloc's small size classes (Redis 7.4+, redis/redis#12996):
// the waste active defrag can remove, without the Lua arena or large
// allocations. Older Redis and Valkey count allocator_active minus
// allocator_allocated.
func smallBinHoles(s *Snapshot) bool { return s.ServerName() == "redis" && s.VersionAtLeast(7, 4, 0) }

// luaOutsideAllocator reports whether the Lua VM allocates with libc, so
// that its memory is part of rss_overhead. Redis 7.4 moved it to a jemalloc
// arena of its own.
func luaOutsideAllocator(s *Snapshot) bool { return !smallBinHoles(s) }

// FragTree walks the fragmentation runbook's decision tree: the allocator,
// swapping, noise (judged by the bytes beyond the data, not by the ratio),
// the ratio, then where the excess sits, which decides what can give it
// back: holes in pages still in use (allocator_frag: active defrag or a
// rebuild), free pages the allocator retains (allocator_rss: MEMORY PURGE)
// or RSS outside the allocator (rss_overhead: Lua, modules, THP). Then the
// state of active defrag, and a fork, judged against the sample before it.
func FragTree(in Input) FragAnalysis {
	a, ok := fragTree(in)
	if ok {
		a.forkStep(in)
	}
	return a
}

// fragTree is the tree without the fork step; ok is false when it stopped
// early (no ratio, noise, swap) and there is nothing a fork could inflate.
func fragTree(in Input) (FragAnalysis, bool) {
	var a FragAnalysis
	s, t := in.Cur, in.T
	v := viewOf(s)
	if !v.ratioOK {
		a.step("Is mem_fragmentation_ratio reported?", "no: the server did not report it; nothing to analyse")
		return a, false
	}
	ratio := v.ratio
	ratioFacts := v.totalFacts()

	// 1. The allocator decides what the allocator_* fields mean and which
	// remedies exist at all.
	jemalloc, known := s.Jemalloc()
	allocName, _ := s.Info.String("mem_allocator")
	switch {
	case !known:
		a.step("Which allocator?", "unknown (mem_allocator not reported)")
	case jemalloc:
		a.step("Which allocator?", allocName+": MEMORY PURGE and the allocator_* split apply")
	default:
		sev := SeverityInfo
		if ratio >= t.FragWarning && !v.noise(t) {
			sev = SeverityWarning
		}
		a.step("Which allocator?", allocName+": not jemalloc, so no MEMORY PURGE, no active defrag, no allocator_* split",
			newFinding("allocator-not-jemalloc", sev,
				fmt.Sprintf("Allocator is %s: MEMORY PURGE is a no-op, active defrag is unavailable and the allocator_* fields are placeholders.", allocName),
				factText("mem_allocator", allocName), factRatio("mem_fragmentation_ratio", ratio), factKnownBytes("mem_fragmentation_bytes", v.excess, v.excessOK)))
	}

	// Without the data's size the ratio can be neither filtered as noise
	// nor turned into bytes.
	if !v.usedOK {
		a.step("Is used_memory reported?", "no: the size of the data is unknown; the ratio cannot be judged")
		return a, false
	}

	// 2. RSS below the data: pages are on swap. Before the noise filter,
	// whose bytes are negative here.
	if ratio < 1.0 && v.used >= t.SwapMinUsedMemory {
		a.step("Is RSS below used_memory (ratio < 1.0)?", fmt.Sprintf("yes (%s): part of the dataset is swapped out", Ratio(ratio)),
			newFinding("frag-swap", SeverityCritical,
				fmt.Sprintf("RSS %s is below used memory %s (ratio %s): the kernel swapped part of Redis out; latency will spike.", knownBytes(v.rss, v.rssOK), HumanBytes(v.used), Ratio(ratio)),
				ratioFacts...))
		return a, false
	}

	// 3. Noise is a small absolute excess, not a small dataset: 2 MiB of
	// data under 300 MiB of RSS is a real problem at any ratio.
	noiseQ := fmt.Sprintf("Is the RSS beyond the data (mem_fragmentation_bytes) at least %s?", HumanBytes(t.FragNoiseBytes))
	if !v.excessOK {
		a.step(noiseQ, "unknown: neither mem_fragmentation_bytes nor RSS reported")
	} else if v.noise(t) {
		if ratio >= t.FragWarning {
			a.step(noiseQ, fmt.Sprintf("no (%s): ratio %s is noise", HumanBytes(v.excess), Ratio(ratio)),
				newFinding("frag-noise", SeverityInfo,
					fmt.Sprintf("Ratio %s, but only %s of RSS beyond %s of data: the process's own pages (binary, stacks, allocator arenas) dominate a small instance; ignore.",
						Ratio(ratio), HumanBytes(v.excess), HumanBytes(v.used)),
					ratioFacts...))
		} else {
			a.step(noiseQ, fmt.Sprintf("no (%s), and the ratio %s is normal", HumanBytes(v.excess), Ratio(ratio)))
		}
		return a, false
	} else {
		a.step(noiseQ, fmt.Sprintf("yes (%s)", HumanBytes(v.excess)))
	}

	// 4. Where the excess sits decides what gives it back.
	sp := splitOf(s, jemalloc, v.excess)
	smallBins := smallBinHoles(s)
	switch {
	case sp.known:
		a.step("Where does the excess sit?", sp.describe(smallBins)+"; most of it is "+sp.carrier().String())
	case known && !jemalloc:
		a.step("Where does the excess sit?", "unknown: "+allocName+" does not report it")
	default:
		a.step("Where does the excess sit?", "unknown: the allocator_* fields are not all reported")
	}
	// The ratio MEMORY PURGE would leave.
	afterPurge, afterPurgeOK := 0.0, false
	if sp.known && v.rssOK && v.used > 0 {
		afterPurge, afterPurgeOK = float64(v.rss-sp.purgeable())/float64(v.used), true
	}

	high := ratio >= t.FragWarning
	peakFactor := 0.0
	if v.peakOK && v.used > 0 {
		peakFactor = float64(v.peak) / float64(v.used)
	}
	bigPeak := v.peakOK && v.peak > 0 && peakFactor >= t.PostPeakFactor
	// MEMORY PURGE alone cures the ratio when what it leaves is under the
	// warning line, or is noise: on a data set of a few MiB even the
	// process's own pages read as a ratio of 10.
	purgeCures := high && afterPurgeOK && sp.significant(compRetained, t) &&
		(afterPurge < t.FragWarning || v.excess-sp.purgeable() < t.FragNoiseBytes)

	// 5. The ratio, at its level unless MEMORY PURGE alone cures it: then the
	// pages are idle, not fragmented.
	ratioQ := fmt.Sprintf("Is mem_fragmentation_ratio >= %s?", Ratio(t.FragWarning))
	if !high {
		a.step(ratioQ, fmt.Sprintf("no (%s)", Ratio(ratio)))
	} else {
		a.step(ratioQ, fmt.Sprintf("yes (%s)", Ratio(ratio)), fragHigh(t, v, sp, afterPurge, purgeCures, bigPeak, peakFactor))
	}

	// 6. Past peak: only free pages are a post-peak artifact. Freed memory
	// that left holes in pages still in use is fragmentation, peak or not.
	if high && bigPeak {
		q := fmt.Sprintf("Is used_memory_peak >= %.1fx used_memory, with free pages carrying the excess?", t.PostPeakFactor)
		switch {
		case !sp.known:
			a.step(q, fmt.Sprintf("peak %.1fx, but where the excess sits is unknown", peakFactor))
		case purgeCures:
			a.step(q, fmt.Sprintf("yes (peak %.1fx): a post-peak artifact; MEMORY PURGE returns it", peakFactor))
		default:
			a.step(q, fmt.Sprintf("no: peak %.1fx, but most of the excess is %s, which a purge does not return", peakFactor, sp.carrier()))
		}
	}

	// 7. Each component on its own: holes (what active defrag acts on),
	// retained free pages (what MEMORY PURGE returns), RSS outside the
	// allocator (neither).
	allocHigh := false
	if sp.known {
		allocHigh = a.holesStep(t, v, sp, smallBins)
		a.retainedStep(s, t, v, sp, afterPurge, high && sp.carrier() == compRetained, bigPeak, peakFactor)
		a.outsideStep(s, t, v, sp, high && sp.carrier() == compOutside)
	}

	// 8. Active defrag: off while it would help, running without effect, or
	// on a version with a known defect.
	a.defragState(in, allocHigh)
	return a, true
}

// fragHigh is the frag-high finding: the total ratio at its level, saying
// which component carries the excess and so what returns it.
func fragHigh(t Thresholds, v fragView, sp fragSplit, afterPurge float64, purgeCures, bigPeak bool, peakFactor float64) Finding {
	ratio := v.ratio
	sev := level(ratio, t.FragWarning, t.FragCritical)
	summary := fmt.Sprintf("RSS is %s for %s of data (ratio %s)", knownBytes(v.rss, v.rssOK), HumanBytes(v.used), Ratio(ratio))
	if v.excessOK && v.excess > 0 { // the ratio and the sizes may disagree: never a negative excess
		summary += fmt.Sprintf(": %s held beyond the data", HumanBytes(v.excess))
	}
	summary += "."
	ev := v.totalFacts()
	switch c := sp.carrier(); {
	case !sp.known:
	case purgeCures:
		sev = SeverityInfo
		summary += fmt.Sprintf(" Most of it, %s, is free pages the allocator retains: MEMORY PURGE returns them and leaves %s beyond the data (see frag-post-peak).",
			HumanBytes(sp.purgeable()), HumanBytes(max(v.excess-sp.purgeable(), 0)))
	case c == compHoles:
		summary += fmt.Sprintf(" %s of it are holes in pages still in use (allocator_frag %s): MEMORY PURGE will not return them; ",
			HumanBytes(sp.bytes[c]), knownRatio(sp.ratio[c], sp.ratioOK[c]))
		if sp.bytes[c] < t.AllocFragMinBytes {
			// Redis's active defrag does not start below
			// active-defrag-ignore-bytes (100mb), which this bar mirrors.
			summary += fmt.Sprintf("active defrag does not start below %s, so rebuilding the memory (failover, restart) is what returns them.", HumanBytes(t.AllocFragMinBytes))
		} else {
			summary += "active defrag or rebuilding the memory (failover, restart) will."
		}
		if bigPeak {
			summary += fmt.Sprintf(" The peak (%.1fx today's data) does not explain it away: what was freed since left holes, not free pages.", peakFactor)
		}
	case c == compRetained:
		summary += fmt.Sprintf(" %s of it are free pages the allocator retains: MEMORY PURGE returns them, leaving %s beyond the data (ratio about %s).",
			HumanBytes(sp.purgeable()), HumanBytes(max(v.excess-sp.purgeable(), 0)), Ratio(afterPurge))
	case c == compOutside:
		summary += fmt.Sprintf(" %s of it is outside the allocator (rss_overhead %s): neither MEMORY PURGE nor active defrag returns it (see frag-rss-overhead).",
			HumanBytes(sp.bytes[c]), knownRatio(sp.ratio[c], sp.ratioOK[c]))
	}
	switch {
	case purgeCures:
	case sp.known && sp.significant(compRetained, t) && afterPurge >= t.FragRestart:
		summary += " Even after the purge the ratio stays above " + Ratio(t.FragRestart) + ": failover or a restart is the reliable way back."
	case ratio >= t.FragRestart && !(sp.known && sp.significant(compRetained, t)):
		summary += " Above " + Ratio(t.FragRestart) + ", failover or a restart is the reliable way back."
	}
	if sp.known {
		for _, c := range []component{compHoles, compRetained, compOutside} {
			ev = append(ev, sp.facts(c)...)
		}
		ev = append(ev, factBytes("purgeable_bytes", sp.purgeable()))
	}
	return newFinding("frag-high", sev, summary, ev...)
}

// holesStep reports allocator fragmentation, the holes active defrag fills,
// and returns whether it is high enough for defrag to be worth it.
func (a *FragAnalysis) holesStep(t Thresholds, v fragView, sp fragSplit, smallBins bool) bool {
	holes, allocFrag, allocFragOK := sp.bytes[compHoles], sp.ratio[compHoles], sp.ratioOK[compHoles]
	q := fmt.Sprintf("Is allocator_frag_ratio >= %s with at least %s in holes?", Ratio(t.AllocFragWarning), HumanBytes(t.AllocFragMinBytes))
	if !allocFragOK || allocFrag < t.AllocFragWarning || holes < t.AllocFragMinBytes {
		a.step(q, fmt.Sprintf("no (%s, %s)", knownRatio(allocFrag, allocFragOK), HumanBytes(holes)))
		return false
	}
	summary := fmt.Sprintf("Allocator fragmentation %s: %s sit in holes in pages still in use. MEMORY PURGE cannot return them; active defrag can move the data out of them, a failover or restart rebuilds the memory.",
		Ratio(allocFrag), HumanBytes(holes))
	if smallBins {
		summary += " (Redis 7.4+ counts only the small size classes here, the ones active defrag can fill.)"
	}
	f := newFinding("frag-allocator", level(allocFrag, t.AllocFragWarning, t.AllocFragCritical), summary,
		append([]Fact{factRatio("allocator_frag_ratio", allocFrag), factBytes("allocator_frag_bytes", holes)}, v.totalFacts()...)...)
	a.step(q, fmt.Sprintf("yes (%s, %s)", Ratio(allocFrag), HumanBytes(holes)), f)
	return true
}

// retainedStep reports the free pages the allocator keeps resident, the
// part MEMORY PURGE returns, with that number as its own.
func (a *FragAnalysis) retainedStep(s *Snapshot, t Thresholds, v fragView, sp fragSplit, afterPurge float64, carries, bigPeak bool, peakFactor float64) {
	q := fmt.Sprintf("Does the allocator retain at least %s of free pages (allocator_rss)?", HumanBytes(t.FragNoiseBytes))
	if !sp.significant(compRetained, t) {
		a.step(q, fmt.Sprintf("no (%s)", HumanBytes(sp.bytes[compRetained])))
		return
	}
	// Warning when these pages are what makes the ratio high: the purge is
	// then the fix. Otherwise it is worth knowing, not worth a page.
	sev := SeverityInfo
	if carries {
		sev = SeverityWarning
	}
	p := sp.purgeable()
	summary := fmt.Sprintf("The allocator keeps %s of free pages resident (allocator_rss %s)", HumanBytes(sp.bytes[compRetained]), knownRatio(sp.ratio[compRetained], sp.ratioOK[compRetained]))
	if m := min(sp.muzzy, sp.bytes[compOutside]); m > 0 {
		summary += fmt.Sprintf(" and %s of muzzy pages the kernel has not taken back", HumanBytes(m))
	}
	summary += fmt.Sprintf(": MEMORY PURGE returns up to %s", HumanBytes(p))
	if v.rssOK {
		summary += fmt.Sprintf(" (RSS %s to about %s, ratio about %s)", HumanBytes(v.rss), HumanBytes(max(v.rss-p, 0)), Ratio(afterPurge))
	}
	summary += "."
	switch {
	case bigPeak:
		summary += fmt.Sprintf(" They were freed since the peak of %s, %.1fx today's data; data that grows back reuses them first.", HumanBytes(v.peak), peakFactor)
	case s.Config["jemalloc-bg-thread"] == "no":
		summary += " jemalloc-bg-thread is off, so nothing returns them until the allocator is busy again."
	}
	ev := append(sp.facts(compRetained), factBytes("purgeable_bytes", p))
	if sp.muzzyOK {
		ev = append(ev, factBytes("allocator_muzzy", sp.muzzy))
	}
	ev = append(ev, factKnownBytes("used_memory_peak", v.peak, v.peakOK))
	ev = append(ev, v.totalFacts()...)
	a.step(q, fmt.Sprintf("yes (%s): MEMORY PURGE returns it", HumanBytes(sp.bytes[compRetained])), newFinding("frag-post-peak", sev, summary, ev...))
}

// outsideStep reports RSS the allocator does not account for: no purge or
// defrag returns it, except the muzzy pages a purge releases.
func (a *FragAnalysis) outsideStep(s *Snapshot, t Thresholds, v fragView, sp fragSplit, carries bool) {
	q := fmt.Sprintf("Is there at least %s of RSS outside the allocator (rss_overhead)?", HumanBytes(t.FragNoiseBytes))
	out := sp.bytes[compOutside]
	if !sp.significant(compOutside, t) {
		a.step(q, fmt.Sprintf("no (%s)", HumanBytes(out)))
		return
	}
	sev := SeverityInfo
	if carries {
		sev = SeverityWarning
	}
	summary := fmt.Sprintf("%s of RSS is outside the allocator (rss_overhead %s): active defrag cannot move it.", HumanBytes(out), knownRatio(sp.ratio[compOutside], sp.ratioOK[compOutside]))
	ev := append(sp.facts(compOutside), factKnownBytes("used_memory_rss", v.rss, v.rssOK))
	if res, ok := s.Int("allocator_resident"); ok {
		ev = append(ev, factBytes("allocator_resident", res))
	}
	var causes []string
	if luaOutsideAllocator(s) {
		lua, ok := s.Int("used_memory_vm_eval") // 7.0+; used_memory_lua before
		if !ok {
			lua, ok = s.Int("used_memory_lua")
		}
		if ok {
			ev = append(ev, factBytes("lua_vm", lua))
			if lua >= t.FragNoiseBytes/4 {
				causes = append(causes, fmt.Sprintf("the Lua VM holds %s (SCRIPT FLUSH resets it)", HumanBytes(lua)))
			}
		}
	}
	muzzy := min(sp.muzzy, out)
	if sp.muzzyOK {
		ev = append(ev, factBytes("allocator_muzzy", sp.muzzy))
	}
	if muzzy >= t.FragNoiseBytes {
		causes = append(causes, fmt.Sprintf("%s are muzzy pages jemalloc released lazily, which MEMORY PURGE returns now", HumanBytes(muzzy)))
	}
	if len(causes) > 0 {
		summary += " Of it, " + strings.Join(causes, "; ") + "."
	}
	summary += " The rest is modules, transparent huge pages, thread stacks"
	if luaOutsideAllocator(s) {
		summary += " or Lua"
	}
	summary += ": MEMORY PURGE does not return it."
	if carries {
		summary += " This is what makes the ratio high."
	}
	a.step(q, fmt.Sprintf("yes (%s)", HumanBytes(out)), newFinding("frag-rss-overhead", sev, summary, ev...))
}

// forkStep judges a fork in progress. Copy-on-write pages belong to the
// child: the parent's INFO barely moves, so a fork explains only what rose
// since the sample before it. A frag-* finding stronger than the previous
// sample supports is held at the previous level (info at least) until the
// fork ends; one that was already as high is kept. Without a previous
// sample nothing is held back: hiding fragmentation on every instance whose
// saves are long would make its alerts come and go with the saves.
func (a *FragAnalysis) forkStep(in Input) {
	s := in.Cur
	bgsave, _ := s.Int("rdb_bgsave_in_progress")
	rewrite, _ := s.Int("aof_rewrite_in_progress")
	const q = "Is a fork (BGSAVE or AOF rewrite) in progress?"
	if bgsave != 1 && rewrite != 1 {
		a.step(q, "no")
		return
	}
	// "an AOF rewrite": the article goes by how the name is read out.
	what, article, elapsedField := "BGSAVE", "A", "rdb_current_bgsave_time_sec"
	if rewrite == 1 {
		what, article, elapsedField = "AOF rewrite", "An", "aof_current_rewrite_time_sec"
	}
	v := viewOf(s)
	ev := append([]Fact{factInt("rdb_bgsave_in_progress", bgsave), factInt("aof_rewrite_in_progress", rewrite)}, v.totalFacts()...)
	summary := article + " " + what + " is in progress"
	if sec, ok := s.Int(elapsedField); ok && sec >= 0 {
		summary += fmt.Sprintf(" (for %d s)", sec)
		ev = append(ev, factInt(elapsedField, sec))
	}
	if cow, ok := s.Int("current_cow_size"); ok {
		summary += fmt.Sprintf("; the child has %s of copy-on-write pages", HumanBytes(cow))
		ev = append(ev, factBytes("current_cow_size", cow))
	}
	summary += ". Those pages are the child's: this process's numbers barely move."

	if in.Prev == nil {
		summary += " No earlier sample to compare with, so every verdict above stands."
		a.step(q, "yes ("+what+"): no earlier sample to compare with; the verdicts above stand",
			newFinding("frag-fork-transient", SeverityInfo, summary, ev...))
		return
	}
	prev, _ := fragTree(Input{Cur: in.Prev, T: in.T, MemoryLimit: in.MemoryLimit})
	pv := viewOf(in.Prev)
	ev = append(ev, factKnownRatio("previous_mem_fragmentation_ratio", pv.ratio, pv.ratioOK))
	var held, kept []string
	for i := range a.Findings {
		f := &a.Findings[i]
		if !strings.HasPrefix(f.ID, "frag-") || f.Severity <= SeverityInfo {
			continue
		}
		before := SeverityNone
		if p := prev.find(f.ID); p != nil {
			before = p.Severity
		}
		if f.Severity <= before {
			kept = append(kept, f.ID)
			continue
		}
		was := "it did not fire"
		if before > SeverityNone {
			was = "it was " + before.String()
		}
		f.Summary += fmt.Sprintf(" Held at %s while the %s runs: %s in the previous sample (ratio %s).",
			max(before, SeverityInfo), what, was, knownRatio(pv.ratio, pv.ratioOK))
		f.Severity = max(before, SeverityInfo)
		held = append(held, f.ID)
	}
	answer := fmt.Sprintf("yes (%s); ratio %s before, %s now", what, knownRatio(pv.ratio, pv.ratioOK), Ratio(v.ratio))
	if len(held) > 0 {
		summary += fmt.Sprintf(" What rose since the previous sample (ratio %s then, %s now) is held until it ends: %s.", knownRatio(pv.ratio, pv.ratioOK), Ratio(v.ratio), strings.Join(held, ", "))
		answer += "; held until it ends: " + strings.Join(held, ", ")
	}
	if len(kept) > 0 {
		summary += " Already as high before the fork, so kept: " + strings.Join(kept, ", ") + "."
		answer += "; already high before, kept: " + strings.Join(kept, ", ")
	}
	a.step(q, answer, newFinding("frag-fork-transient", SeverityInfo, summary, ev...))
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
