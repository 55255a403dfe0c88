package terminal

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// checkGolden compares output with testdata/golden/name, or rewrites it
// with -update. Review the diff of a rewritten file before committing it.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot/terminal -update)", err)
	}
	if !bytes.Equal(want, got) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		for i := range max(len(wl), len(gl)) {
			w, g := "", ""
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Fatalf("%s differs at line %d; run go test ./bot/terminal -update and review the diff\nwant %q\ngot  %q", path, i+1, w, g)
			}
		}
	}
}

// The same report at a terminal (colour) and in a pipe or file (no colour,
// which the CLI chooses when stdout is not a TTY), as the first screen and
// with the runbooks.
func TestGoldenReport(t *testing.T) {
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep := reportFromCapture(t, "52428800", "noeviction", 512<<20)
	for _, c := range []struct {
		name        string
		color, full bool
	}{
		{"first-screen.txt", false, false},
		{"first-screen-tty.txt", true, false},
		{"runbook.txt", false, true},
		{"runbook-tty.txt", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			New(&out, c.color, lib).WithRunbooks(c.full).Report(rep)
			text := out.String()
			checkGolden(t, c.name, out.Bytes())
			if hasANSI := strings.Contains(text, "\x1b["); hasANSI != c.color {
				t.Errorf("escape codes in output: %v, want %v", hasANSI, c.color)
			}
			if !c.full {
				return
			}
			// The runbook is Markdown rendered, not shown: no ** and no
			// code fences in either form, and the bot's own values in
			// place of the placeholders.
			plain := ansiCode.ReplaceAllString(text, "")
			for _, bad := range []string{"**", "```", "<host>", "<port>", "<instance>"} {
				if strings.Contains(plain, bad) {
					t.Errorf("runbook output contains %q", bad)
				}
			}
			for _, want := range []string{"redis-cli -h 10.0.1.11 -p 6379 INFO memory", "/redis set cache-1 maxmemory", "How to confirm", "Sources"} {
				if !strings.Contains(plain, want) {
					t.Errorf("runbook output lacks %q", want)
				}
			}
		})
	}
}

var ansiCode = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// The fleet's columns line up on a colour terminal: escape codes take
// bytes, not columns.
func TestFleetAlignsInColour(t *testing.T) {
	fleetReport := func(name string, sev handlers.Severity, used, rss string) *handlers.Report {
		return &handlers.Report{Instance: name, Severity: sev, Metrics: handlers.Evidence{
			{Name: "used_memory", Text: used}, {Name: "used_memory_rss", Text: rss}, {Name: "mem_fragmentation_ratio", Text: "1.10"}},
			Findings: []handlers.Finding{{ID: "frag-high", Severity: handlers.SeverityWarning}}}
	}
	reports := []*handlers.Report{
		fleetReport("orders-primary", handlers.SeverityCritical, "1.9 GiB", "4.0 GiB"),
		fleetReport("small", handlers.SeverityInfo, "1.0 MiB", "8.0 MiB"),
		fleetReport("sessions", handlers.SeverityWarning, "12.0 MiB", "20.0 MiB"),
		{Instance: "dead", Severity: handlers.SeverityCritical, Error: &handlers.ReportError{Class: handlers.ClassRefused},
			Findings: []handlers.Finding{{ID: "unreachable", Severity: handlers.SeverityCritical}}},
	}
	reports[1].Findings = []handlers.Finding{{ID: "frag-noise", Severity: handlers.SeverityInfo}}
	var out bytes.Buffer
	New(&out, true, nil).Fleet(reports)
	checkGolden(t, "fleet-tty.txt", out.Bytes())
	if !strings.Contains(out.String(), "1.10 \x1b[2m(noise)") {
		t.Errorf("a noise ratio is not marked:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSuffix(ansiCode.ReplaceAllString(out.String(), ""), "\n"), "\n")
	header := lines[0]
	for _, col := range []string{"INSTANCE", "USED", "RSS", "FRAG", "MAXMEMORY", "FINDINGS"} {
		at := strings.Index(header, col)
		for _, l := range lines[1:] {
			if col == "FINDINGS" && len(l) <= at {
				continue // none: the last column is not padded
			}
			if len(l) <= at || l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("column %s does not start at %d in %q", col, at, l)
			}
		}
	}
}
