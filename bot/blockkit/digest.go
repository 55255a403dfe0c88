package blockkit

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

// DigestView is the scheduled fleet digest.
type DigestView struct {
	At          time.Time
	Since       time.Time // the previous digest
	Reports     []*handlers.Report
	FragTrend   map[string]float64 // instance -> change of mem_fragmentation_ratio over 24h
	Restarts    []string           // instances restarted since the previous digest
	Silences    []SilenceView
	Remediation []ApprovalView // done or failed since the previous digest
	MaxLines    int
}

// RenderDigest renders the digest: counts by severity, the riskiest
// instances first, restarts, silences and remediations since the last one.
func RenderDigest(v DigestView) []Message {
	counts := map[handlers.Severity]int{}
	for _, r := range v.Reports {
		counts[r.Severity]++
	}
	var m messages
	m.add(header(fmt.Sprintf("Redis memory digest · %s", v.At.Format("Mon 2 Jan 15:04 MST"))))
	m.add(section(fmt.Sprintf(":red_circle: %d critical · :large_orange_circle: %d warning · :large_blue_circle: %d info · :large_green_circle: %d ok · %d instances",
		counts[handlers.SeverityCritical], counts[handlers.SeverityWarning], counts[handlers.SeverityInfo], counts[handlers.SeverityNone], len(v.Reports))))
	limit := v.MaxLines
	if limit <= 0 {
		limit = 15
	}
	var lines []string
	for i, r := range v.Reports {
		if i == limit || r.Severity < handlers.SeverityWarning {
			break
		}
		lines = append(lines, digestLine(r, v.FragTrend[r.Instance]))
	}
	if len(lines) > 0 {
		for _, text := range lineSections("*Riskiest instances*", lines, 10) {
			m.add(section(text))
		}
	} else {
		m.add(section(":large_green_circle: No instance above info."))
	}
	var extra []string
	if len(v.Restarts) > 0 {
		names := make([]string, len(v.Restarts))
		for i, n := range v.Restarts {
			names[i] = code(truncRaw(n))
		}
		extra = append(extra, fmt.Sprintf(":arrows_counterclockwise: *Restarts since %s:* %s", v.Since.Format("Mon 15:04"), strings.Join(names, ", ")))
	}
	if len(v.Silences) > 0 {
		var s []string
		for _, x := range v.Silences {
			s = append(s, code(truncRaw(x.Instance))+" "+Escape(orEvery(x.Finding)))
		}
		extra = append(extra, ":no_bell: *Open silences:* "+strings.Join(s, ", "))
	}
	if len(v.Remediation) > 0 {
		var s []string
		for _, a := range v.Remediation {
			s = append(s, fmt.Sprintf("%s %s on %s (%s)", stateEmoji[a.State], inline(string(a.Plan.Action)), code(truncRaw(a.Instance)), Escape(a.State)))
		}
		extra = append(extra, ":wrench: *Remediations:* "+strings.Join(s, ", "))
	}
	if len(extra) > 0 {
		m.add(section(strings.Join(extra, "\n")))
	}
	m.add(slack.NewContextBlock("", mrkdwn("`/redis diagnose <instance>` for details · `/redis trend <instance>` for charts")))
	return m.finish(fmt.Sprintf("Redis memory digest: %d critical, %d warning", counts[handlers.SeverityCritical], counts[handlers.SeverityWarning]))
}

func orEvery(finding string) string {
	if finding == "" {
		return "(every finding)"
	}
	return "(" + finding + ")"
}

// digestLine: severity, name, usage, RSS against the limit, fragmentation
// with its 24h trend arrow, time to OOM when forecast, the findings.
func digestLine(r *handlers.Report, fragDelta float64) string {
	parts := []string{severityEmoji(r.Severity) + " " + code(truncRaw(r.Instance))}
	if r.Failed() {
		return parts[0] + " unreachable (" + Escape(string(r.Error.Class)) + ")"
	}
	if m, ok := r.Metric("maxmemory_usage"); ok {
		parts = append(parts, Escape(m.Text)+" of maxmemory")
	}
	if rss, ok := r.Metric("used_memory_rss"); ok {
		text := "RSS " + Escape(rss.Text)
		if n, ok := rss.Value.(int64); ok && r.MemoryLimit > 0 {
			text += " (" + handlers.Percent(float64(n)/float64(r.MemoryLimit)) + " of limit)"
		}
		parts = append(parts, text)
	}
	if f, ok := r.Metric("mem_fragmentation_ratio"); ok {
		arrow := "→"
		switch {
		case fragDelta >= 0.05:
			arrow = "↑"
		case fragDelta <= -0.05:
			arrow = "↓"
		}
		parts = append(parts, "frag "+Escape(f.Text)+" "+arrow)
	}
	if f, ok := r.Finding("oom-forecast"); ok {
		for _, name := range []string{"time_to_maxmemory_seconds", "time_to_limit_seconds"} {
			if e, ok := f.Evidence.Get(name); ok {
				parts = append(parts, "OOM in "+Escape(e.Text))
				break
			}
		}
	}
	ids := riskIDs(r)
	if len(ids) > 0 {
		parts = append(parts, "— "+strings.Join(ids, ", "))
	}
	return strings.Join(parts, " · ")
}
