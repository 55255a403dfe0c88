package config

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/handlers"
)

// Alert timing: the runbooks' values by default; alerts.repeat_interval,
// then alert_timing's global entries ("*", then the finding's), then the
// instance's (its config entry's for a Sentinel or cluster member, then
// its own) override them field by field.
func TestAlertTiming(t *testing.T) {
	cfg, err := Load(context.Background(), "testdata/good_alert_timing.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cache := cfg.Instances[0]
	member := handlers.Instance{Name: "orders-0", Origin: "orders"}
	other := handlers.Instance{Name: "cache-9"}
	for _, tc := range []struct {
		name              string
		inst              handlers.Instance
		finding           string
		warning, critical time.Duration
		repeat            time.Duration
	}{
		{"untouched finding: runbook For, global * repeat", other, "oom-rejecting", 0, 0, 2 * time.Hour},
		{"global finding entry", other, "maxmemory-near", 5 * time.Minute, time.Minute, 2 * time.Hour},
		{"instance entry over the global one", cache, "maxmemory-near", 0, time.Minute, 30 * time.Minute},
		{"a Sentinel entry covers its members", member, "frag-high", time.Hour, time.Hour, 2 * time.Hour},
		{"runbook fragmentation timing", other, "frag-high", 30 * time.Minute, 10 * time.Minute, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cfg.AlertTiming.Timing(tc.inst, tc.finding, cfg.Alerts.RepeatInterval)
			if got.For[handlers.SeverityWarning] != tc.warning || got.For[handlers.SeverityCritical] != tc.critical || got.RepeatInterval != tc.repeat {
				t.Errorf("For warning %v critical %v, repeat %v; want %v %v %v", got.For[handlers.SeverityWarning], got.For[handlers.SeverityCritical],
					got.RepeatInterval, tc.warning, tc.critical, tc.repeat)
			}
			if got.ClearFor != alerts.DefaultClearFor {
				t.Errorf("ClearFor %v", got.ClearFor)
			}
		})
	}
	// The overrides never change the runbooks' own maps.
	if d := alerts.DefaultTiming("maxmemory-near").For[handlers.SeverityCritical]; d != 15*time.Minute {
		t.Errorf("DefaultTiming changed: %v", d)
	}

	// Without the section: today's values, with alerts.repeat_interval.
	cfg, err = Load(context.Background(), "testdata/good_group.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.AlertTiming.Timing(cfg.Instances[0], "maxmemory-near", cfg.Alerts.RepeatInterval)
	want := alerts.DefaultTiming("maxmemory-near")
	if got.For[handlers.SeverityWarning] != want.For[handlers.SeverityWarning] || got.RepeatInterval != DefaultRepeatInterval {
		t.Errorf("default timing %+v, want %+v", got, want)
	}
}

func TestAlertTimingErrors(t *testing.T) {
	// A value that does not decode is reported by the decoder, first; the
	// section's own checks follow.
	want := "alert_timing.findings[rss-near-limit][for]: invalid duration 5: add a unit, as in 2s or 500ms\n" +
		"alert_timing.findings[frag-high][for]: must be between 0s and 24h\n" +
		"alert_timing.findings[frag-high][for_critical]: must be between 0s and 24h\n" +
		"alert_timing.findings[frag-high][repeat_interval]: must be between 5m and 168h\n" +
		"alert_timing.findings[maxmemory-nearly]: unknown finding \"maxmemory-nearly\" (a finding id, or \"*\" for every finding)\n" +
		"alert_timing.findings[oom-rejecting][fro]: unknown key\n" +
		"alert_timing.instances[cache-1][*][repeat_interval]: must be between 5m and 168h\n" +
		"alert_timing.instances[cache-2]: no instance is named \"cache-2\""
	cfg, err := Load(context.Background(), filepath.Join("testdata", "bad_alert_timing.yml"), env(nil))
	if err == nil || cfg != nil {
		t.Fatalf("Load = %+v, %v", cfg, err)
	}
	if err.Error() != want {
		t.Errorf("Load error:\n%s\nwant:\n%s", err, want)
	}
}
