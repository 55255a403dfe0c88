package handlers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Point is one past sample of an instance (the store keeps them; the sweep
// passes a window).
type Point struct {
	At                               time.Time
	UsedMemory, RSS, Peak, Maxmemory int64
	FragRatio, AllocFragRatio        float64
	EvictedKeys, OOMErrors, Keys     int64
}

// PointOf reduces a snapshot to the numbers a Point keeps. Fields the server
// did not report are zero.
func PointOf(s *Snapshot) Point {
	p := Point{At: s.ProbedAt}
	p.UsedMemory, _ = s.Int("used_memory")
	p.RSS, _ = s.Int("used_memory_rss")
	p.Peak, _ = s.Int("used_memory_peak")
	p.Maxmemory, _ = s.Maxmemory()
	p.FragRatio, _ = s.Float("mem_fragmentation_ratio")
	p.AllocFragRatio, _ = s.Float("allocator_frag_ratio")
	p.EvictedKeys, _ = s.Int("evicted_keys")
	p.OOMErrors, _ = s.Info.ErrorCount("OOM")
	p.Keys, _ = s.Keys()
	return p
}

// historyRules need more than one snapshot: the previous one (restarted) or
// a window of samples (the trends).
var historyRules = []Rule{
	ruleRestarted,
	ruleFragRising,
	ruleOOMForecast,
}

const (
	// fragRisingFloor is the ratio below which a rising trend is not
	// reported: jemalloc's size classes and the process's own pages keep a
	// healthy instance around 1.0-1.3.
	fragRisingFloor = 1.3
	// fragRisingLookahead: frag-rising is critical when the trend reaches
	// frag_critical within it.
	fragRisingLookahead = 6 * time.Hour
	// A forecast needs enough samples over enough time that one burst does
	// not make the slope.
	oomForecastMinPoints = 5
	oomForecastMinSpan   = 15 * time.Minute
	// oomForecastCritical: a limit nearer than this is critical.
	oomForecastCritical = 2 * time.Hour
	// restartDrop: RSS falling below this share of the previous sample means
	// the process restarted (or its memory was rebuilt by failover); older
	// samples describe another process. Point has no run_id or uptime.
	restartDrop = 0.5
)

func ruleRestarted(in Input) []Finding {
	if in.Prev == nil {
		return nil
	}
	cur, prev := in.Cur, in.Prev
	runID, runOK := cur.Info.String("run_id")
	prevRunID, prevRunOK := prev.Info.String("run_id")
	up, upOK := cur.Int("uptime_in_seconds")
	prevUp, prevUpOK := prev.Int("uptime_in_seconds")
	uptime, prevUptime := time.Duration(up)*time.Second, time.Duration(prevUp)*time.Second

	var how string
	switch {
	case runOK && prevRunOK && runID != "" && prevRunID != "" && runID != prevRunID:
		how = "run_id changed"
	case upOK && prevUpOK && up < prevUp:
		how = fmt.Sprintf("uptime went back from %s to %s", humanDuration(prevUptime), humanDuration(uptime))
	default:
		return nil
	}

	prevRSS, prevRSSOK := prev.Int("used_memory_rss")
	prevUsed, prevUsedOK := prev.Int("used_memory")
	prevKeys, _ := prev.Keys()
	keys, _ := cur.Keys()
	ev := []Fact{
		factText("previous_run_id", orUnknown(prevRunID, prevRunOK)), factText("run_id", orUnknown(runID, runOK)),
		factDuration("uptime_seconds", uptime), factDuration("previous_uptime_seconds", prevUptime),
		factKnownBytes("previous_used_memory_rss", prevRSS, prevRSSOK), factKnownBytes("previous_used_memory", prevUsed, prevUsedOK),
	}

	summary := "Restarted (" + how + ")"
	if upOK {
		summary += " " + humanDuration(uptime) + " ago"
	}
	summary += "; before it, RSS was " + knownBytes(prevRSS, prevRSSOK)
	// The OOM killer leaves no trace in INFO; memory close to a limit just
	// before the restart is the hint the bot can give.
	oomKiller := false
	if in.MemoryLimit > 0 && prevRSSOK {
		share := float64(prevRSS) / float64(in.MemoryLimit)
		summary += fmt.Sprintf(" (%s of memory_limit %s)", Percent(share), HumanBytes(in.MemoryLimit))
		ev = append(ev, factBytes("memory_limit", in.MemoryLimit), factShare("previous_rss_of_limit", share))
		oomKiller = share >= in.T.RSSLimitWarning
	}
	summary += ", used_memory " + knownBytes(prevUsed, prevUsedOK)
	if u, ok := MaxmemoryUsage(prev); ok {
		summary += fmt.Sprintf(" (%s of maxmemory %s)", Percent(u.Share), HumanBytes(u.Maxmemory))
		ev = append(ev, factBytes("previous_maxmemory", u.Maxmemory), factShare("previous_maxmemory_usage", u.Share))
		oomKiller = oomKiller || u.Share >= in.T.MaxmemoryCritical
	}
	summary += fmt.Sprintf(", %d keys (now %d)", prevKeys, keys)
	ev = append(ev, factInt("previous_keys", prevKeys), factInt("keys", keys))
	if oomKiller {
		summary += ": possibly killed by the kernel's OOM killer."
	} else {
		summary += "."
	}
	return []Finding{newFinding("restarted", SeverityWarning, summary, ev...)}
}

func ruleFragRising(in Input) []Finding {
	t := in.T
	pts := sinceRestart(series(in))
	if n := len(pts); n > 0 && forkInProgress(in.Cur) && !in.Cur.ProbedAt.IsZero() && pts[n-1].At.Equal(in.Cur.ProbedAt) {
		// Copy-on-write inflates the current ratio (see FragTree): judge the
		// trend on the samples before it.
		pts = pts[:len(pts)-1]
	}
	pts = slices.DeleteFunc(pts, func(p Point) bool { return p.FragRatio <= 0 }) // not reported
	if len(pts) < 2 {
		return nil
	}
	first, last := pts[0], pts[len(pts)-1]
	span := last.At.Sub(first.At)
	if span < t.FragRisingMinSpan {
		return nil
	}
	tr, ok := fitTrend(pts, func(p Point) float64 { return p.FragRatio })
	if !ok || tr.perHour < t.FragRisingPerHour || last.FragRatio < fragRisingFloor || last.UsedMemory < t.FragMinUsedMemory {
		return nil
	}
	ev := []Fact{
		{Name: "frag_ratio_per_hour", Value: round2(tr.perHour), Text: fmt.Sprintf("%+.3f/h", tr.perHour)},
		factRatio("first_frag_ratio", first.FragRatio), factRatio("last_frag_ratio", last.FragRatio),
		factDuration("window_span_seconds", span), factInt("samples", int64(len(pts))),
		factBytes("used_memory", last.UsedMemory),
	}
	verb := "rose" // the line rises; an early outlier can leave the ends the other way round
	if last.FragRatio < first.FragRatio {
		verb = "went"
	}
	summary := fmt.Sprintf("mem_fragmentation_ratio %s from %s to %s in %s (%+.3f/h by least squares over %d samples)",
		verb, Ratio(first.FragRatio), Ratio(last.FragRatio), humanDuration(span), tr.perHour, len(pts))
	sev := SeverityWarning
	if d, ok := tr.until(t.FragCritical); ok {
		ev = append(ev, factDuration("time_to_frag_critical_seconds", d))
		if d == 0 {
			summary += fmt.Sprintf(" and is past frag_critical %s.", Ratio(t.FragCritical))
		} else {
			summary += fmt.Sprintf(": at this rate it reaches frag_critical %s in about %s.", Ratio(t.FragCritical), humanDuration(d))
		}
		if d <= fragRisingLookahead {
			sev = SeverityCritical
		}
	} else {
		summary += "."
	}
	return []Finding{newFinding("frag-rising", sev, summary, ev...)}
}

func ruleOOMForecast(in Input) []Finding {
	s := in.Cur
	// A sample without used_memory or RSS (unknown is stored as 0) would
	// bend the line towards zero.
	pts := slices.DeleteFunc(sinceRestart(series(in)), func(p Point) bool { return p.UsedMemory <= 0 || p.RSS <= 0 })
	if len(pts) < oomForecastMinPoints {
		return nil
	}
	last := pts[len(pts)-1]
	span := last.At.Sub(pts[0].At)
	if span < oomForecastMinSpan {
		return nil
	}
	used, okUsed := fitTrend(pts, func(p Point) float64 { return float64(p.UsedMemory) })
	rss, okRSS := fitTrend(pts, func(p Point) float64 { return float64(p.RSS) })
	if !okUsed || !okRSS {
		return nil
	}

	// A forecast is the time to one limit, its sentence and its facts.
	type forecast struct {
		in    time.Duration
		text  string
		facts []Fact
	}
	var forecasts []forecast
	// Only a limit not yet reached is forecast: at or over it, oom-rejecting,
	// maxmemory-near and rss-near-limit describe the present.
	policy, policyOK := s.Policy()
	maxmem, _ := s.Maxmemory()
	if maxmem > 0 && evictionApplies(s) && !evictionFrees(s, in.T) {
		// Redis leaves replica and AOF buffers out of the comparison.
		notCounted, _ := s.Int("mem_not_counted_for_evict")
		target := float64(maxmem + notCounted)
		if d, ok := used.until(target); ok && float64(last.UsedMemory) < target {
			why := "policy " + orUnknown(policy, policyOK)
			if strings.HasPrefix(policy, "volatile-") {
				why += ", too few keys with a TTL to evict"
			}
			forecasts = append(forecasts, forecast{d,
				fmt.Sprintf("used_memory (%s, %s) reaches maxmemory %s in about %s, when writes start failing with OOM errors (%s)",
					HumanBytes(last.UsedMemory), mibPerHour(used.perHour), HumanBytes(maxmem), humanDuration(d), why),
				[]Fact{factDuration("time_to_maxmemory_seconds", d), factBytes("maxmemory", maxmem), factText("maxmemory_policy", orUnknown(policy, policyOK))}})
		}
	}
	if d, ok := rss.until(float64(in.MemoryLimit)); ok && in.MemoryLimit > 0 && last.RSS < in.MemoryLimit {
		forecasts = append(forecasts, forecast{d,
			fmt.Sprintf("RSS (%s, %s) reaches memory_limit %s in about %s, when the kernel's OOM killer ends the process",
				HumanBytes(last.RSS), mibPerHour(rss.perHour), HumanBytes(in.MemoryLimit), humanDuration(d)),
			[]Fact{factDuration("time_to_limit_seconds", d), factBytes("memory_limit", in.MemoryLimit)}})
	}
	slices.SortStableFunc(forecasts, func(a, b forecast) int { return cmp.Compare(a.in, b.in) })
	if len(forecasts) == 0 || forecasts[0].in >= in.T.OOMForecastHorizon {
		return nil
	}
	sev := SeverityWarning
	if forecasts[0].in < oomForecastCritical {
		sev = SeverityCritical
	}
	// Nearest limit first, as in the summary.
	var ev []Fact
	texts := make([]string, len(forecasts))
	for i, f := range forecasts {
		ev = append(ev, f.facts...)
		texts[i] = f.text
	}
	ev = append(ev,
		Fact{Name: "used_memory_per_hour", Value: int64(used.perHour), Text: mibPerHour(used.perHour)},
		Fact{Name: "rss_per_hour", Value: int64(rss.perHour), Text: mibPerHour(rss.perHour)},
		factDuration("window_span_seconds", span), factInt("samples", int64(len(pts))))
	summary := fmt.Sprintf("At the growth of the last %s (least squares over %d samples), %s.", humanDuration(span), len(pts), strings.Join(texts, "; "))
	return []Finding{newFinding("oom-forecast", sev, summary, ev...)}
}

// evictionFrees reports whether the policy can make room at maxmemory:
// allkeys-* always can, volatile-* only when enough keys have a TTL.
// noeviction and an unknown policy cannot be relied on.
func evictionFrees(s *Snapshot, t Thresholds) bool {
	policy, _ := s.Policy()
	switch {
	case strings.HasPrefix(policy, "allkeys-"):
		return true
	case strings.HasPrefix(policy, "volatile-"):
		keys, expires := s.Keys()
		return keys > 0 && float64(expires)/float64(keys) >= t.VolatileMinTTLShare
	}
	return false
}

func forkInProgress(s *Snapshot) bool {
	bgsave, _ := s.Int("rdb_bgsave_in_progress")
	rewrite, _ := s.Int("aof_rewrite_in_progress")
	return bgsave == 1 || rewrite == 1
}

// series is the window with the current snapshot as its last point, in time
// order. Window points at or after the current probe (the sweep may have
// stored it already) and points out of order are dropped. A snapshot without
// a probe time (hand-built) is not added.
func series(in Input) []Point {
	now := in.Cur.ProbedAt
	pts := make([]Point, 0, len(in.Window)+1)
	for _, p := range in.Window {
		if !now.IsZero() && !p.At.Before(now) {
			continue
		}
		if n := len(pts); n > 0 && !p.At.After(pts[n-1].At) {
			continue
		}
		pts = append(pts, p)
	}
	if !now.IsZero() {
		pts = append(pts, PointOf(in.Cur))
	}
	return pts
}

// sinceRestart returns the points after the last restart in pts: a trend
// across a restart mixes two processes.
func sinceRestart(pts []Point) []Point {
	start := 0
	for i := 1; i < len(pts); i++ {
		if prev, cur := pts[i-1].RSS, pts[i].RSS; prev > 0 && cur > 0 && float64(cur) < restartDrop*float64(prev) {
			start = i
		}
	}
	return pts[start:]
}

// trend is a least-squares line through a series of points.
type trend struct {
	perHour float64 // slope in units per hour
	last    float64 // the line's value at the last point
}

// fitTrend fits value over time. It fails when all points share one time.
func fitTrend(pts []Point, value func(Point) float64) (trend, bool) {
	if len(pts) < 2 {
		return trend{}, false
	}
	t0 := pts[0].At
	n := float64(len(pts))
	var mx, my float64
	for _, p := range pts {
		mx += p.At.Sub(t0).Hours()
		my += value(p)
	}
	mx, my = mx/n, my/n
	var sxx, sxy float64
	for _, p := range pts {
		dx := p.At.Sub(t0).Hours() - mx
		sxx += dx * dx
		sxy += dx * (value(p) - my)
	}
	if sxx == 0 {
		return trend{}, false
	}
	slope := sxy / sxx
	xLast := pts[len(pts)-1].At.Sub(t0).Hours()
	return trend{perHour: slope, last: my + slope*(xLast-mx)}, true
}

// maxForecast bounds forecasts: beyond it a trend says nothing, and a
// time.Duration would overflow.
const maxForecast = 10 * 365 * 24 * time.Hour

// until returns how long the line takes from the last point to reach
// target (0 when it already has), or false when it does not rise.
func (tr trend) until(target float64) (time.Duration, bool) {
	if tr.perHour <= 0 {
		return 0, false
	}
	hours := (target - tr.last) / tr.perHour
	switch {
	case hours <= 0:
		return 0, true
	case hours >= maxForecast.Hours():
		return 0, false
	}
	return time.Duration(hours * float64(time.Hour)), true
}

// humanDuration formats a duration the way people say it: "45s", "12m",
// "9h 58m", "3d 4h".
func humanDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int64(d.Minutes()))
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		h, m := int64(d.Hours()), int64(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	d = d.Round(time.Hour)
	days, h := int64(d.Hours())/24, int64(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}

// factDuration is a duration in whole seconds, shown as humanDuration.
func factDuration(name string, d time.Duration) Fact {
	return Fact{Name: name, Value: int64(d.Round(time.Second) / time.Second), Text: humanDuration(d)}
}

// mibPerHour shows a growth rate in bytes per hour in one unit, so rates of
// different instances compare at a glance.
func mibPerHour(bytesPerHour float64) string {
	return fmt.Sprintf("%+.1f MiB/h", bytesPerHour/(1<<20))
}
