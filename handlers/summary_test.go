package handlers

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func captureReport(t *testing.T, maxmemory string, limit int64) *Report {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "info", "redis-7.0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	info := ParseInfo(string(raw))
	info["maxmemory"], info["maxmemory_policy"] = maxmemory, "noeviction"
	snap := &Snapshot{Instance: "cache-1", ProbedAt: time.Unix(1_800_000_000, 0), Info: info,
		Config: map[string]string{"maxmemory": maxmemory, "maxmemory-policy": "noeviction", "activedefrag": "no", "save": ""}}
	rep := &Report{Instance: "cache-1", Addr: "10.0.1.11:6379", Snapshot: snap, MemoryLimit: limit,
		Findings: Evaluate(Input{Cur: snap, MemoryLimit: limit, T: DefaultThresholds()})}
	rep.Severity = Worst(rep.Findings)
	return rep
}

// The summary's number is the one of the finding the first action
// answers, with the sizes beside the share, and the gain in words.
func TestSummarize(t *testing.T) {
	s := Summarize(captureReport(t, "52428800", 512<<20))
	want := Summary{Instance: "cache-1", Addr: "10.0.1.11:6379", Severity: SeverityCritical, Finding: "oom-rejecting",
		Headline: "oom-rejecting 116% of maxmemory (58.1 MiB of 50.0 MiB), 0 OOM errors", Gain: "+196.0 MiB of maxmemory"}
	if s.Severity != want.Severity || s.Finding != want.Finding || s.Headline != want.Headline || s.Gain != want.Gain || s.First.ID != "raise-maxmemory" {
		t.Errorf("Summarize = %+v\nwant %+v with raise-maxmemory", s, want)
	}
	if s.First.Label() != "raise maxmemory" {
		t.Errorf("Label = %q", s.First.Label())
	}

	// Without maxmemory the fragmentation carries it: the ratio with the
	// bytes it stands for.
	s = Summarize(captureReport(t, "0", 0))
	if s.Finding != "frag-high" || s.Headline != "frag-high fragmentation 2.08 (62.6 MiB beyond the data)" {
		t.Errorf("Summarize = %+v", s)
	}

	// Nothing to act on: the size in use and how many findings are info.
	rep := &Report{Instance: "small", Metrics: Evidence{factBytes("used_memory", 1<<20)},
		Findings: []Finding{newFinding("noeviction-trap", SeverityInfo, "x")}}
	if s := Summarize(rep); s.Headline != "used 1.0 MiB, nothing above info (1 finding)" || !s.First.Nothing() || s.Gain != "" {
		t.Errorf("Summarize = %+v", s)
	}
}

func TestHeadline(t *testing.T) {
	cases := []struct {
		f    Finding
		want string
	}{
		{newFinding("rss-near-limit", SeverityCritical, "", factBytes("used_memory_rss", 470<<20), factBytes("memory_limit", 512<<20), factShare("rss_share", 0.92)),
			"RSS 470.0 MiB of the 512.0 MiB limit (92%)"},
		// A phrasing whose facts are unknown falls back to the next.
		{newFinding("maxmemory-unset", SeverityWarning, "", factBytes("maxmemory", 0), factBytes("used_memory", 3<<30)), "no maxmemory, 3.0 GiB in use"},
		{newFinding("maxmemory-near", SeverityWarning, "", usageFacts(Usage{Counted: 94 << 20, Maxmemory: 100 << 20, Share: 0.94})...), "94% of maxmemory (94.0 MiB of 100.0 MiB)"},
		{newFinding("frag-allocator", SeverityWarning, "", factRatio("allocator_frag_ratio", 1.9), factBytes("allocator_frag_bytes", 200<<20)), "allocator fragmentation 1.90 (200.0 MiB in holes)"},
		{newFinding("fork-slow", SeverityWarning, "", factInt("latest_fork_usec", 900000)), "latest fork usec 900000"},
		{newFinding("evicting", SeverityInfo, ""), ""},
	}
	for _, c := range cases {
		if got := Headline(c.f); got != c.want {
			t.Errorf("Headline(%s) = %q, want %q", c.f.ID, got, c.want)
		}
	}
}
