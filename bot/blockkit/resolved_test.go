package blockkit

import (
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// A resolved alert shows the numbers of the probe that found it clear,
// not the ones it fired with.
func TestResolvedAlertShowsCurrentValues(t *testing.T) {
	fired := handlers.Finding{ID: "rss-near-limit", Severity: handlers.SeverityCritical, Title: "RSS near the memory limit (OOM-killer risk)",
		Summary:  "RSS 914.0 MiB is 89% of the 1.0 GiB memory limit.",
		Evidence: handlers.Evidence{{Name: "rss_share", Value: 0.89, Text: "89%"}}}
	now := &handlers.Report{Instance: "cache-1", Metrics: handlers.Evidence{
		{Name: "used_memory", Value: int64(300 << 20), Text: "300.0 MiB"},
		{Name: "used_memory_rss", Value: int64(410 << 20), Text: "410.0 MiB"},
		{Name: "memory_limit", Value: int64(1 << 30), Text: "1.0 GiB"},
	}}
	at := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	v := AlertView{Instance: "cache-1", Finding: fired, State: "resolved", Since: at.Add(-time.Hour), Report: now}
	js := string(goldenJSON(t, Reply{Messages: []Message{RenderAlert(v, library(t), at)}}))
	for _, want := range []string{"RESOLVED", "Clear now: used_memory 300.0 MiB, used_memory_rss 410.0 MiB, memory_limit 1.0 GiB.", "410.0 MiB"} {
		if !strings.Contains(js, want) {
			t.Errorf("resolved alert lacks %q:\n%s", want, js)
		}
	}
	for _, stale := range []string{"89%", "914.0 MiB"} {
		if strings.Contains(js, stale) {
			t.Errorf("resolved alert still shows %q", stale)
		}
	}
	// Firing, the same finding shows its own numbers.
	v.State = "firing"
	if js := string(goldenJSON(t, Reply{Messages: []Message{RenderAlert(v, library(t), at)}})); !strings.Contains(js, "89%") {
		t.Errorf("firing alert lacks its evidence:\n%s", js)
	}
	// Without a report: only that it is clear.
	v.State, v.Report = "resolved", nil
	if js := string(goldenJSON(t, Reply{Messages: []Message{RenderAlert(v, library(t), at)}})); !strings.Contains(js, "Clear now.") || strings.Contains(js, "89%") {
		t.Errorf("resolved alert without a report:\n%s", js)
	}
}
