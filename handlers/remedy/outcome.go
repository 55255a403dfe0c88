package remedy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// noEffectBytes is the least change in RSS or fragmented bytes that counts
// as an effect: below it a remediation changed nothing an on-call engineer
// would notice, and its outcome is neutral instead of a green "done".
const noEffectBytes = 1 << 20

// purgeOutcome measures MEMORY PURGE from the snapshots before it and after
// the settle: the RSS it gave back, or that it had nothing to give.
func purgeOutcome(before, after *handlers.Snapshot, o *Outcome) {
	b, _ := before.Int("used_memory_rss")
	a, _ := after.Int("used_memory_rss")
	returned := max(b-a, 0)
	o.Details["rss_returned"] = handlers.HumanBytes(returned)
	if returned < noEffectBytes {
		o.NoEffect = true
		o.Message = fmt.Sprintf("MEMORY PURGE found nothing to give back: RSS %s before, %s after", handlers.HumanBytes(b), handlers.HumanBytes(a))
		return
	}
	o.Message = "MEMORY PURGE returned " + o.Details["rss_returned"] + " of RSS"
}

// configSetOutcome is neutral when the setting already had the value: the
// command ran and changed nothing (a second click, a stale button).
func configSetOutcome(p Plan, o *Outcome) {
	setting, value := p.Params["setting"], p.Params["value"]
	if old := p.Params["old"]; old != value {
		return
	}
	o.NoEffect = true
	shown := value
	if setting == "maxmemory" {
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			shown = handlers.HumanBytes(n)
		}
	}
	o.Message = fmt.Sprintf("%s was already %s: nothing changed", setting, shown)
}

// Summary is the watch's final note, for an on-call engineer: why defrag
// stopped, what it did to RSS and to fragmentation (ratio and bytes), and
// what to do next when it made things worse or could not be turned off.
func (r WatchResult) Summary() string {
	var b strings.Builder
	after := r.After()
	if r.First.At.IsZero() {
		fmt.Fprintf(&b, "Active defrag stopped: %s; no sample was read, so its effect is unknown.", orUnknown(r.Why, r.Why != ""))
	} else {
		fmt.Fprintf(&b, "Active defrag stopped after %s: %s.", r.Last.Elapsed.Round(time.Second), orUnknown(r.Why, r.Why != ""))
		fmt.Fprintf(&b, " RSS %s → %s (%s)", handlers.HumanBytes(r.First.RSS), handlers.HumanBytes(after.RSS), signedBytes(after.RSS-r.First.RSS))
		fmt.Fprintf(&b, "; allocator fragmentation %s → %s (%s → %s in partly used pages)",
			handlers.Ratio(r.First.AllocFragRatio), handlers.Ratio(after.AllocFragRatio),
			handlers.HumanBytes(r.First.AllocFragBytes), handlers.HumanBytes(after.AllocFragBytes))
		if r.First.FragRatio > 0 && after.FragRatio > 0 {
			fmt.Fprintf(&b, "; mem_fragmentation_ratio %s → %s", handlers.Ratio(r.First.FragRatio), handlers.Ratio(after.FragRatio))
		}
		if r.Final.At.IsZero() && r.TurnedOff {
			b.WriteString(" (read as defrag stopped; RSS may still fall a little as the allocator returns pages)")
		}
		b.WriteString(".")
	}
	switch {
	case !r.TurnedOff:
		b.WriteString(" Turning activedefrag off FAILED: it may still be running. Turn it off by hand (/redis defrag <instance> off or CONFIG SET activedefrag no).")
	case r.Reason == WatchRSSGrowth:
		b.WriteString(" Defrag is off. Plan a restart or a failover to rebuild the memory, and leave activedefrag off on this server (see the defrag-version-risk runbook).")
	default:
		b.WriteString(" Defrag is off.")
	}
	if r.Err != nil {
		b.WriteString(" Error: " + r.Err.Error() + ".")
	}
	for _, w := range r.Warnings {
		b.WriteString(" Note: " + w + ".")
	}
	return b.String()
}

// Outcome is defrag-on's result as the watch measured it: before and after
// numbers from its first and settled samples. Defrag that could not be
// turned off, or that made RSS grow, failed; defrag that moved neither RSS
// nor fragmentation had no effect.
func (r WatchResult) Outcome() Outcome {
	after := r.After()
	o := Outcome{OK: r.TurnedOff && r.Reason != WatchRSSGrowth, Message: r.Summary(), Duration: after.Elapsed,
		Details: map[string]string{"stopped": r.Reason}}
	if r.First.At.IsZero() {
		return o
	}
	o.Before, o.After = progressFacts(r.First), progressFacts(after)
	if o.OK && r.First.RSS-after.RSS < noEffectBytes && r.First.AllocFragBytes-after.AllocFragBytes < noEffectBytes {
		o.NoEffect = true
	}
	return o
}

// progressFacts are a sample's numbers as outcome facts, named as INFO
// names them.
func progressFacts(p Progress) []handlers.Fact {
	facts := []handlers.Fact{
		{Name: "used_memory_rss", Value: p.RSS, Text: handlers.HumanBytes(p.RSS)},
		{Name: "allocator_frag_ratio", Value: p.AllocFragRatio, Text: handlers.Ratio(p.AllocFragRatio)},
		{Name: "allocator_frag_bytes", Value: p.AllocFragBytes, Text: handlers.HumanBytes(p.AllocFragBytes)},
	}
	if p.FragRatio > 0 {
		facts = append(facts, handlers.Fact{Name: "mem_fragmentation_ratio", Value: p.FragRatio, Text: handlers.Ratio(p.FragRatio)})
	}
	return facts
}

// signedBytes is a change in bytes with its sign: "-897.5 MiB", "+12.0 MiB".
func signedBytes(n int64) string {
	if n < 0 {
		return "-" + handlers.HumanBytes(-n)
	}
	return "+" + handlers.HumanBytes(n)
}
