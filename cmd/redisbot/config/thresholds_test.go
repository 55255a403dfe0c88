package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The history thresholds are durations: they take a unit, from the file and
// from the environment, per instance too, and must be positive.
func TestDurationThresholds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	doc := "thresholds:\n  frag_rising_min_span: 45m\n  frag_rising_per_hour: 0.1\n" +
		"instances:\n  - name: cache-1\n    addr: 127.0.0.1:6379\n    thresholds:\n      oom_forecast_horizon: 2h30m\n" +
		"  - name: cache-2\n    addr: 127.0.0.1:6380\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(t.Context(), path, env(map[string]string{"REDISBOT_THRESHOLDS_OOM_FORECAST_HORIZON": "12h"}))
	if err != nil {
		t.Fatal(err)
	}
	if g := cfg.Thresholds; g.FragRisingMinSpan != 45*time.Minute || g.FragRisingPerHour != 0.1 || g.OOMForecastHorizon != 12*time.Hour {
		t.Errorf("global thresholds = %+v", g)
	}
	for name, want := range map[string]time.Duration{"cache-1": 150 * time.Minute, "cache-2": 12 * time.Hour} {
		in, _ := cfg.Instance(name)
		if in.Thresholds.OOMForecastHorizon != want || in.Thresholds.FragRisingMinSpan != 45*time.Minute {
			t.Errorf("%s: oom_forecast_horizon %v, frag_rising_min_span %v; want %v, 45m",
				name, in.Thresholds.OOMForecastHorizon, in.Thresholds.FragRisingMinSpan, want)
		}
	}

	_, err = Load(t.Context(), filepath.Join("testdata", "bad_thresholds_durations.yml"), env(nil))
	want := "thresholds.frag_rising_per_hour: must be positive\n" +
		"thresholds.frag_rising_min_span: must be positive\n" +
		"thresholds.oom_forecast_horizon: invalid duration 24: add a unit, as in 2s or 500ms\n" +
		"instances[0].thresholds.oom_forecast_horizon: must be positive\n" +
		"instances[0].thresholds.frag_rising_min_span: invalid duration \"soon\""
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}
