package blockkit

import (
	"strings"

	"github.com/redisbot/redisbot/handlers"
)

// nowMetrics are the numbers a resolved alert shows: the memory picture
// of the probe that found the finding clear.
var nowMetrics = []string{"used_memory", "used_memory_rss", "mem_fragmentation_ratio", "maxmemory_usage", "maxmemory", "memory_limit", "errorstat_OOM"}

// resolvedNow is what a resolved alert says instead of the numbers it
// fired with: a green circle above "RSS 89%" reads as if 89% were fine.
// It is the current values, or only that the finding is clear when the
// probe has none.
func resolvedNow(rep *handlers.Report) (string, handlers.Evidence) {
	if rep == nil || len(rep.Metrics) == 0 {
		return "Clear now.", nil
	}
	var now handlers.Evidence
	var parts []string
	for _, name := range nowMetrics {
		if m, ok := rep.Metric(name); ok {
			now = append(now, m)
			parts = append(parts, name+" "+m.Text)
		}
	}
	return "Clear now: " + strings.Join(parts, ", ") + ".", now
}
