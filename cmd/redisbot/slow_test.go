package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers/resptest"
)

// quietInfo is resptest's captured INFO made into an instance with nothing
// to say about memory: maxmemory set under an evicting policy, no
// fragmentation. Only latency is left to judge.
func quietInfo() string {
	info := resptest.DefaultInfo
	for k, v := range map[string]string{
		"maxmemory": "268435456", "maxmemory_policy": "allkeys-lru", "used_memory_rss": "67108864", "used_memory_peak": "61000000",
		"mem_fragmentation_ratio": "1.10", "mem_fragmentation_bytes": "6225344",
		"allocator_frag_ratio": "1.02", "allocator_frag_bytes": "1048576", "allocator_rss_ratio": "1.01", "allocator_rss_bytes": "600000",
	} {
		info = regexp.MustCompile(`(?m)^`+k+`:[^\r\n]*`).ReplaceAllString(info, k+":"+v)
	}
	return info
}

// TestCLISlowInstance: redisbot diagnose of a server that answers, slowly,
// shows slow-server and exits by its severity, never 3 (a failed probe).
// At 800 ms a reply INFO arrives within the 2 s timeout and the rest is
// listed as not available; at 300 ms everything arrives and the finding
// is information only.
func TestCLISlowInstance(t *testing.T) {
	for _, tc := range []struct {
		delay    time.Duration
		severity string
		missing  bool
	}{
		{800 * time.Millisecond, "warning", true},
		{300 * time.Millisecond, "info", false},
	} {
		t.Run(tc.delay.String(), func(t *testing.T) {
			s, err := resptest.Start(resptest.Slow, quietInfo(), tc.delay)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			cfg := writeConfig(t, "probe:\n  timeout: 2s\ninstances:\n"+instanceYAML("slow-1", s.Addr))

			rep, res := diagnoseJSON(t, cfg, "slow-1")
			if rep.Error != nil {
				t.Fatalf("diagnose slow-1: error %+v, want a diagnosis", rep.Error)
			}
			if _, ok := rep.finding("unreachable"); ok {
				t.Errorf("findings %v include unreachable", rep.ids())
			}
			f := wantFinding(t, rep, "slow-server", tc.severity)
			if rep.Severity != tc.severity || res.code != exitFor(tc.severity) {
				t.Errorf("severity %s, exit %d; want %s and %d (findings %v)", rep.Severity, res.code, tc.severity, exitFor(tc.severity), rep.ids())
			}
			if ms, _ := f.Evidence["info_round_trip_ms"].(float64); ms < float64(tc.delay.Milliseconds()) {
				t.Errorf("evidence %v, want INFO's round trip of at least %v", f.Evidence, tc.delay)
			}
			if got := len(rep.Missing) > 0; got != tc.missing || tc.missing && !strings.Contains(strings.Join(rep.Missing, "; "), "MEMORY DOCTOR: timed out after 2s") {
				t.Errorf("missing %q", rep.Missing)
			}

			res = runCLI(t, nil, "diagnose", "slow-1", "--config", cfg)
			text := oneLine(res.stdout)
			if res.code != exitFor(tc.severity) || !strings.Contains(text, "slow-server") || strings.Contains(text, "unreachable") || strings.Contains(text, "Probe failed") {
				t.Errorf("diagnose (text): exit %d\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			if tc.missing && !strings.Contains(text, "Not available: CONFIG GET: timed out after 2s") {
				t.Errorf("diagnose (text) does not say what timed out:\n%s", res.stdout)
			}
		})
	}
}
