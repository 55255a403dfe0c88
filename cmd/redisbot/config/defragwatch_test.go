package config

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers/remedy"
)

// The remediation section: how long after MEMORY PURGE its result is read,
// and when the defrag watch turns defrag off.
func TestRemediationSection(t *testing.T) {
	cfg, err := Load(context.Background(), "testdata/good_remediation_section.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Remediation{PurgeSettle: 5 * time.Second, DefragWatch: remedy.WatchConfig{
		Interval: 15 * time.Second, MaxDuration: 20 * time.Minute, TargetRatio: 1.05, MaxLatency: 20 * time.Millisecond,
		StallIntervals: 4, StallShare: 0.01, MinHitRatio: 0.1, IdleRunning: 2, RSSGrowth: 0.1, Settle: 30 * time.Second,
	}}
	if cfg.Remediation != want {
		t.Errorf("remediation\n got %+v\nwant %+v", cfg.Remediation, want)
	}
	// The per-instance remediation section is unaffected.
	if cfg.Instances[0].Remediation.RestartMethod != "shutdown" {
		t.Errorf("instance remediation = %+v", cfg.Instances[0].Remediation)
	}

	// Absent: the defaults, which are the watch's own.
	cfg, err = Load(context.Background(), "testdata/good_group.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Remediation != DefaultRemediation() || cfg.Remediation.DefragWatch != remedy.DefaultWatchConfig() {
		t.Errorf("default remediation = %+v", cfg.Remediation)
	}
}

func TestRemediationSectionErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"bad_remediation_section_values.yml", "remediation.purge_settle: must be between 0s and 1m\n" +
			"remediation.defrag_watch.interval: must be between 1s and 10m\n" +
			"remediation.defrag_watch.target_ratio: must be between 1.0 and 2.0\n" +
			"remediation.defrag_watch.max_latency: must be between 1ms and 10s\n" +
			"remediation.defrag_watch.stall_intervals: must be between 0 (off) and 100\n" +
			"remediation.defrag_watch.stall_share: must be between 0 and 0.5\n" +
			"remediation.defrag_watch.min_hit_ratio: must be between 0 and 1\n" +
			"remediation.defrag_watch.idle_running: must be between 0 and 100 (percent of a CPU)\n" +
			"remediation.defrag_watch.rss_growth: must be between 0 (off) and 1\n" +
			"remediation.defrag_watch.settle: must be between 0s and 5m"},
		{"bad_remediation_section_types.yml", "remediation.purge_settle: invalid duration 2: add a unit, as in 2s or 500ms\n" +
			"remediation.defrag_watch.interval: invalid duration \"often\"\n" +
			"remediation.defrag_watch.target_ratio: invalid number \"low\"\n" +
			"remediation.defrag_watch.stall_intervals: expected an integer, got a list\n" +
			"remediation.defrag_watch.stal_share: unknown key (did you mean stall_share?)"},
		{"bad_remediation_section_not_mapping.yml", "remediation.defrag_watch: expected a mapping, got a string"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := Load(context.Background(), filepath.Join("testdata", tc.file), env(nil))
			if err == nil || cfg != nil {
				t.Fatalf("Load = %+v, %v", cfg, err)
			}
			if err.Error() != tc.want {
				t.Errorf("Load error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}
