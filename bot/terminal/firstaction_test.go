package terminal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// reportFromCapture evaluates the real Redis 7.0 capture with maxmemory and
// the policy set, as the service would.
func reportFromCapture(t *testing.T, maxmemory, policy string, limit int64) *handlers.Report {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "handlers", "testdata", "info", "redis-7.0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	info := handlers.ParseInfo(string(raw))
	info["maxmemory"], info["maxmemory_policy"] = maxmemory, policy
	snap := &handlers.Snapshot{Instance: "cache-1", ProbedAt: time.Unix(1_800_000_000, 0), Info: info,
		Config: map[string]string{"maxmemory": maxmemory, "maxmemory-policy": policy, "activedefrag": "no", "save": ""}}
	rep := &handlers.Report{Verb: "oom", Instance: "cache-1", Addr: "10.0.1.11:6379", Snapshot: snap, MemoryLimit: limit,
		Findings: handlers.Evaluate(handlers.Input{Cur: snap, MemoryLimit: limit, T: handlers.DefaultThresholds()})}
	rep.Severity = handlers.Worst(rep.Findings)
	return rep
}

// What to do first comes right under the header, before the findings, with
// the Slack command that requests it.
func TestReportStartsWithTheFirstAction(t *testing.T) {
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep := reportFromCapture(t, "52428800", "noeviction", 512<<20)
	var out bytes.Buffer
	New(&out, false, lib).Report(rep)
	text := out.String()
	first := strings.Index(text, "  First: Raise maxmemory from 50.0 MiB to ")
	findings := strings.Index(text, "\n\n")
	if first < 0 || findings < 0 || first > findings {
		t.Fatalf("the first action is not the last line of the header, before the findings:\n%s", text)
	}
	block := text[first:findings]
	if one := strings.ReplaceAll(block, "\n         ", " "); !strings.Contains(one, "In Slack: /redis set cache-1 maxmemory 246mb (approval-gated).") {
		t.Errorf("the first action lacks its Slack command:\n%s", block)
	}
	// Wrapped lines stay under the label.
	for _, line := range strings.Split(block, "\n")[1:] {
		if !strings.HasPrefix(line, "         ") {
			t.Errorf("continuation line not indented: %q", line)
		}
	}
	// Where the runbooks print the OOM count it is a count, not INFO's
	// raw text or "unknown".
	if !strings.Contains(text, "OOM rejections since start (INFO errorstats): 0;") || strings.Contains(text, "OOM rejections since start: unknown") {
		t.Errorf("the OOM count is not shown as 0:\n%s", text)
	}

	out.Reset()
	New(&out, false, lib).Report(reportFromCapture(t, "268435456", "allkeys-lru", 0))
	if !strings.Contains(out.String(), "\n  First: ") {
		t.Errorf("no first action line:\n%s", out.String())
	}
}
