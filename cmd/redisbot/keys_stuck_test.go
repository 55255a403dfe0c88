package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers/keyspace/scantest"
)

// A server or proxy whose SCAN never returns to cursor 0 gets a partial
// report at the terminal that says why, in a second or two, instead of a
// scan that runs for ever.
func TestCLIKeysStuckScan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   scantest.Options
		reason string
	}{
		{"cycle", scantest.Options{Mode: scantest.Cycle, Keys: 30},
			"a SAMPLE: stopped early (SCAN cursor repeated after 4 pages; the server or proxy does not implement SCAN correctly) after 30 of about 30 keys"},
		{"same keys", scantest.Options{Mode: scantest.SameKeys, Keys: 10},
			"a SAMPLE: stopped early (SCAN returned only keys it had already returned, 100 pages in a row; the server or proxy does not implement SCAN correctly)"},
	} {
		srv := scantest.Start(t, tc.opts)
		cfg := writeConfig(t, "keys:\n  budget: 1000000\ninstances:\n"+instanceYAML("proxy-1", srv.Addr))
		start := time.Now()
		res := runCLI(t, nil, "keys", "proxy-1", "--config", cfg)
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: took %s", tc.name, took)
		}
		if res.code == exitError || !strings.Contains(oneLine(res.stdout), tc.reason) || !strings.Contains(res.stdout, "Biggest keys") {
			t.Errorf("%s: exit %d, want the report of a sample with %q\nstdout:\n%s\nstderr:\n%s", tc.name, res.code, tc.reason, res.stdout, res.stderr)
		}

		res = runCLI(t, nil, "keys", "proxy-1", "--config", cfg, "--json")
		var rep struct {
			Keys struct {
				Complete bool   `json:"complete"`
				Stopped  string `json:"stopped"`
				Scanned  int64  `json:"scanned"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("%s: JSON: %v\n%s", tc.name, err, res.stdout)
		}
		if rep.Keys.Complete || !strings.Contains(rep.Keys.Stopped, "does not implement SCAN correctly") || rep.Keys.Scanned == 0 {
			t.Errorf("%s: JSON keys = %+v", tc.name, rep.Keys)
		}
	}
}

// keys.max_duration ends a scan at the terminal too, not only in Slack: a
// server that answers every SCAN slowly, never with cursor 0, gets the
// sample seen within the configured minute (the shortest keys.max_duration
// accepted), and a report that says the time limit ended it.
func TestCLIKeysMaxDuration(t *testing.T) {
	srv := scantest.Start(t, scantest.Options{Mode: scantest.Endless, Keys: 1_000_000, Delay: 500 * time.Millisecond})
	const limit = time.Minute
	cfg := writeConfig(t, fmt.Sprintf("keys:\n  max_duration: %s\ninstances:\n%s", limit, instanceYAML("slow-1", srv.Addr)))
	start := time.Now()
	res := runCLI(t, nil, "keys", "slow-1", "--config", cfg)
	took := time.Since(start)
	// The probe, then the scan for the minute, then at most the round trip
	// the deadline cut.
	if took < limit || took > limit+5*time.Second {
		t.Errorf("took %s with keys.max_duration %s", took, limit)
	}
	if out := oneLine(res.stdout); res.code == exitError || !strings.Contains(out, "a SAMPLE: stopped early (time limit reached) after") ||
		!strings.Contains(out, "of about 1,000,000 keys") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	if scans := srv.Scans(); scans < 100 || scans > 121 {
		t.Errorf("%d SCANs in %s at one per 500 ms", scans, took)
	}
}

// oneLine undoes the terminal renderer's wrapping of long lines.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
