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

// The first screen: the summary line (severity, instance, the number, the
// first action and its gain), what to do first with the Slack command that
// requests it, one line per finding, and where the runbooks are.
func TestReportStartsWithTheSummary(t *testing.T) {
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep := reportFromCapture(t, "52428800", "noeviction", 512<<20)
	var out bytes.Buffer
	New(&out, false, lib).Report(rep)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if want := "CRITICAL  cache-1 (10.0.1.11:6379)  oom-rejecting 116% of maxmemory (58.1 MiB of 50.0 MiB), 0 OOM errors · first: raise maxmemory, +196.0 MiB of maxmemory"; lines[0] != want {
		t.Errorf("summary line\n%q, want\n%q", lines[0], want)
	}
	if !strings.HasPrefix(lines[1], "  First: Raise maxmemory from 50.0 MiB to ") {
		t.Errorf("the first action is not under the summary:\n%s", out.String())
	}
	block := strings.Join(lines[1:4], "\n")
	if one := strings.ReplaceAll(block, "\n         ", " "); !strings.Contains(one, "In Slack: /redis set cache-1 maxmemory 246mb (approval-gated).") {
		t.Errorf("the first action lacks its Slack command:\n%s", block)
	}
	// Wrapped lines stay under the label.
	for _, line := range lines[2:4] {
		if !strings.HasPrefix(line, "         ") {
			t.Errorf("continuation line not indented: %q", line)
		}
	}
	// One line per finding, then the hint, and nothing of the runbooks.
	findings := lines[4 : len(lines)-1]
	if len(findings) != len(rep.Findings) {
		t.Fatalf("%d finding lines for %d findings:\n%s", len(findings), len(rep.Findings), out.String())
	}
	for i, f := range rep.Findings {
		if fields := strings.Fields(findings[i]); len(fields) < 3 || fields[0] != strings.ToUpper(f.Severity.String()) || fields[1] != f.ID {
			t.Errorf("finding line %q, want %s %s first", findings[i], f.Severity, f.ID)
		}
	}
	if want := "redisbot diagnose cache-1 oom-rejecting, or redisbot oom cache-1 --runbook, for the full runbook"; lines[len(lines)-1] != want {
		t.Errorf("hint %q, want %q", lines[len(lines)-1], want)
	}
	if len(lines) > 12 || strings.Contains(out.String(), "Why it happens") {
		t.Errorf("the first screen has %d lines or a runbook:\n%s", len(lines), out.String())
	}

	// The runbooks on demand, with the OOM count where they print it: a
	// count, not INFO's raw text or "unknown".
	out.Reset()
	New(&out, false, lib).WithRunbooks(true).Report(rep)
	text := out.String()
	if !strings.Contains(text, "OOM rejections since start (INFO errorstats): 0;") || strings.Contains(text, "OOM rejections since start: unknown") {
		t.Errorf("the OOM count is not shown as 0:\n%s", text)
	}
	if !strings.Contains(text, "\n  First: ") {
		t.Errorf("no first action line:\n%s", text)
	}
}
