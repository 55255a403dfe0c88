package terminal

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

func TestCleanNeutralisesEscapes(t *testing.T) {
	cases := map[string]string{
		"plain text\nnext line\tand tab": "plain text\nnext line\tand tab",
		"\x1b[2J\x1b[31mred":             `\x1b[2J\x1b[31mred`,
		"bell\a and CR\r":                `bell\a and CR\r`,
		"bidi \u202eevil":                `bidi \u202eevil`,
		"bad utf8 \xff":                  "bad utf8 \ufffd",
	}
	for in, want := range cases {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// A report whose strings come from a hostile server renders without a
// single raw escape byte, and with the runbook filled from the snapshot.
func TestReportFromHostileServer(t *testing.T) {
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	snap := &handlers.Snapshot{
		Instance: "cache-1", ProbedAt: time.Unix(0, 0),
		Info: handlers.ParseInfo("redis_version:7.0.15\x1b]0;pwned\a\r\nused_memory:104857600\r\nused_memory_rss:262144000\r\n" +
			"mem_fragmentation_ratio:2.5\r\nmem_allocator:jemalloc-5.3.0\r\nrole:master\r\n"),
		Doctor: "Sam, I detected a few issues:\n * Peak memory: \x1b[2J cleared\n",
	}
	in := handlers.Input{Cur: snap, T: handlers.DefaultThresholds()}
	rep := &handlers.Report{Verb: "diagnose", Instance: "cache-1", Addr: "127.0.0.1:6379", Snapshot: snap,
		Findings: handlers.Evaluate(in), Doctor: snap.Doctor}
	rep.Severity = handlers.Worst(rep.Findings)
	var out bytes.Buffer
	New(&out, false, lib).WithRunbooks(true).Report(rep)
	text := out.String()
	if strings.ContainsRune(text, 0x1b) || strings.ContainsRune(text, '\a') {
		t.Errorf("raw escape bytes in output:\n%q", text)
	}
	for _, want := range []string{"frag-high", "2.50", "Why it happens", `\x1b[2J cleared`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(text, "<no value>") {
		t.Error("a runbook template rendered <no value>")
	}

	// In colour, the only escape codes are the renderer's own: the
	// server's are still shown as text.
	out.Reset()
	New(&out, true, lib).WithRunbooks(true).Report(rep)
	if text := out.String(); strings.Contains(text, "\x1b]0;") || strings.ContainsRune(text, '\a') || !strings.Contains(text, `\x1b[2J cleared`) {
		t.Errorf("a server's escape sequence reached the terminal:\n%q", text)
	}
}
