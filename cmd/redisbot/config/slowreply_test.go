package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// slow_reply_info and slow_reply_warning are durations like the history
// thresholds, per instance too, and the info level stays below the
// warning one.
func TestSlowReplyThresholds(t *testing.T) {
	write := func(doc string) string {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	path := write("thresholds:\n  slow_reply_info: 100ms\n" +
		"instances:\n  - name: far-1\n    addr: 10.9.0.1:6379\n    thresholds:\n      slow_reply_info: 1s\n      slow_reply_warning: 2s\n" +
		"  - name: near-1\n    addr: 127.0.0.1:6379\n")
	cfg, err := Load(t.Context(), path, env(map[string]string{"REDISBOT_THRESHOLDS_SLOW_REPLY_WARNING": "750ms"}))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]time.Duration{"far-1": {time.Second, 2 * time.Second}, "near-1": {100 * time.Millisecond, 750 * time.Millisecond}} {
		in, _ := cfg.Instance(name)
		if got := [2]time.Duration{in.Thresholds.SlowReplyInfo, in.Thresholds.SlowReplyWarning}; got != want {
			t.Errorf("%s: slow_reply_info, slow_reply_warning = %v, want %v", name, got, want)
		}
	}

	for doc, want := range map[string]string{
		"thresholds:\n  slow_reply_info: 1s\n  slow_reply_warning: 500ms\ninstances:\n  - name: a\n    addr: 127.0.0.1:6379\n": "thresholds.slow_reply_warning: must be greater than slow_reply_info",
		"thresholds:\n  slow_reply_info: 0s\ninstances:\n  - name: a\n    addr: 127.0.0.1:6379\n":                              "thresholds.slow_reply_info: must be positive",
		"instances:\n  - name: a\n    addr: 127.0.0.1:6379\n    thresholds:\n      slow_reply_info: 800ms\n":                   "instances[0].thresholds.slow_reply_info: must be less than slow_reply_warning",
		"thresholds:\n  slow_reply_warning: 500\ninstances:\n  - name: a\n    addr: 127.0.0.1:6379\n":                          "thresholds.slow_reply_warning: invalid duration 500: add a unit, as in 2s or 500ms",
	} {
		if _, err := Load(t.Context(), write(doc), env(nil)); err == nil || err.Error() != want {
			t.Errorf("Load error %v, want %q\n%s", err, want, doc)
		}
	}
}
