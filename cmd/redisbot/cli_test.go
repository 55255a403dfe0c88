package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestCLIConventions: help, usage errors, --version and completion behave
// as Go CLI users expect, through run and the command tree generated from
// the verb table.
func TestCLIConventions(t *testing.T) {
	cfg := writeConfig(t, "instances:\n"+instanceYAML("cache-1", "127.0.0.1:1", "tags: [team-a]")+instanceYAML("queue-1", "127.0.0.1:1"))
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string // each must appear
		notStdout      []string
	}{
		{name: "--help", args: []string{"--help"}, stdout: []string{"Usage:\n  redisbot [flags]\n  redisbot [command]", "Verbs:\n  diagnose ", "Only in Slack (type /redis <verb> in a channel):\n  purge ", "--config string", "Exit codes: 0"}},
		{name: "-h", args: []string{"-h"}, stdout: []string{"Verbs:", "\n  keys ", "Exit codes: 0"}},
		{name: "no verb is help", args: nil, stdout: []string{"Verbs:"}},
		{name: "help keys prints keys' usage only", args: []string{"help", "keys"},
			stdout:    []string{"redisbot keys <instance> [--match 'prefix:*'] [--top N] [--limit N] [--fast]", "--match PATTERN", "--top N", "--fast", "--config string"},
			notStdout: []string{"diagnose", "fleet", "Verbs:"}},
		{name: "diagnose --help", args: []string{"diagnose", "--help"}, stdout: []string{"redisbot diagnose <instance>", "Every memory finding"}, notStdout: []string{"keys <instance>"}},
		{name: "flags after the verb's --help", args: []string{"fleet", "-h", "--config", cfg}, stdout: []string{"redisbot fleet [tag]", "--tag TAG"}},
		{name: "help of a Slack-only verb says so", args: []string{"help", "purge"}, stdout: []string{"purge runs only in Slack"}},
		{name: "--version", args: []string{"--version"}, stdout: []string{"redisbot dev\n"}},
		{name: "version", args: []string{"version"}, stdout: []string{"redisbot dev\n"}},
		{name: "completion bash", args: []string{"completion", "bash"}, stdout: []string{"bash completion V2 for redisbot", "__redisbot_"}},
		{name: "completion zsh", args: []string{"completion", "zsh"}, stdout: []string{"#compdef redisbot"}},
		{name: "completion fish", args: []string{"completion", "fish"}, stdout: []string{"complete -c redisbot"}},
		{name: "completion offers the verbs", args: []string{"__complete", "d"}, stdout: []string{"diagnose\t", "doctor\t"}},
		{name: "unknown verb names the closest", args: []string{"diagnoze", "cache-1"}, code: exitError,
			stderr: []string{`redisbot: unknown verb "diagnoze" (did you mean diagnose?); verbs: diagnose, frag`}},
		{name: "help of an unknown verb", args: []string{"help", "nope"}, code: exitError, stderr: []string{`unknown verb "nope"`}},
		{name: "unknown flag prints the verb's usage", args: []string{"keys", "cache-1", "--jsn"}, code: exitError,
			stderr: []string{"redisbot: unknown flag: --jsn", "Usage:\n  redisbot keys <instance>"}},
		{name: "flag without its value", args: []string{"keys", "cache-1", "--top"}, code: exitError,
			stderr: []string{"flag needs an argument: --top", "redisbot keys <instance>"}},
		{name: "handler usage error", args: []string{"keys", "cache-1", "--top", "0", "--config", cfg}, code: exitError,
			stderr: []string{"--top must be a number from 1 to", "(usage: keys <instance>", "Run 'redisbot help keys' for usage."}},
		{name: "too many arguments", args: []string{"oom", "a", "b", "--config", cfg}, code: exitError,
			stderr: []string{"oom takes exactly one instance name (usage: oom <instance>)"}},
		{name: "bad --color", args: []string{"list", "--color", "pink", "--config", cfg}, code: exitError, stderr: []string{`--color must be auto, always or never, not "pink"`}},
		{name: "global flags before the verb", args: []string{"--config", cfg, "--json", "list"}, stdout: []string{`"name": "cache-1"`}},
		{name: "global flags after the verb", args: []string{"list", "--json", "--config", cfg}, stdout: []string{`"name": "queue-1"`}},
		{name: "--tag", args: []string{"list", "--tag", "team-a", "--config", cfg}, stdout: []string{"cache-1"}, notStdout: []string{"queue-1"}},
		{name: "--tag=value", args: []string{"list", "--tag=team-a", "--config", cfg}, stdout: []string{"cache-1"}, notStdout: []string{"queue-1"}},
		{name: "remediations need Slack", args: []string{"purge", "cache-1", "--config", cfg}, code: exitError,
			stderr: []string{"purge runs only in Slack, where it needs an approver: type /redis purge cache-1"}},
		{name: "silence needs Slack", args: []string{"silence", "cache-1", "4h"}, code: exitError, stderr: []string{"silence runs only in Slack"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, nil, tc.args...)
			if res.code != tc.code {
				t.Errorf("exit = %d, want %d\nstdout: %s\nstderr: %s", res.code, tc.code, res.stdout, res.stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
				}
			}
			for _, not := range tc.notStdout {
				if strings.Contains(res.stdout, not) {
					t.Errorf("stdout has %q:\n%s", not, res.stdout)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
				}
			}
		})
	}
}

// TestEveryTerminalVerbIsReachable: each verb the terminal runs is a
// command of the tree that reaches its handler: without a config, the
// config is what it asks for, never an unknown verb.
func TestEveryTerminalVerbIsReachable(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./config.yaml to find
	for _, v := range handlers.VerbsFor(handlers.AtTerminal) {
		if v.Name == "help" || v.Name == "version" {
			continue // TestCLIConventions runs them
		}
		res := runCLI(t, nil, v.Name, "cache-1")
		if res.code != exitError || !strings.Contains(res.stderr, "no config file") {
			t.Errorf("%s: exit %d, stderr %q; want the missing config", v.Name, res.code, res.stderr)
		}
		help := runCLI(t, nil, v.Name, "--help")
		if help.code != exitOK || !strings.Contains(help.stdout, "redisbot "+v.Usage) {
			t.Errorf("%s --help: exit %d:\n%s", v.Name, help.code, help.stdout)
		}
	}
}

// TestVerbTable: every entry is complete, and both transports list the
// verbs the table gives them.
func TestVerbTable(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range handlers.Verbs {
		if v.Name == "" || v.Usage == "" || v.Summary == "" || v.Role == "" || v.Where == 0 {
			t.Errorf("incomplete entry %+v", v)
		}
		if !strings.HasPrefix(v.Usage, v.Name) {
			t.Errorf("%s: usage %q does not start with the verb", v.Name, v.Usage)
		}
		if seen[v.Name] {
			t.Errorf("%s is in the table twice", v.Name)
		}
		seen[v.Name] = true
		// The binary itself runs the entries without a handler.
		if v.Handle == nil && !slices.Contains([]string{"check-config", "serve", "version"}, v.Name) {
			t.Errorf("%s has no handler", v.Name)
		}
		if v.Handle == nil && v.Where != handlers.AtTerminal {
			t.Errorf("%s has no handler but runs in Slack", v.Name)
		}
	}

	// Slack's help: the verbs Slack runs.
	resp, err := (&handlers.Service{}).Handle(context.Background(), handlers.Command{Verb: "help"})
	if err != nil {
		t.Fatal(err)
	}
	var slack []string
	for _, h := range resp.Help {
		slack = append(slack, h.Verb)
	}
	if want := names(handlers.VerbsFor(handlers.InSlack)); !slices.Equal(slack, want) {
		t.Errorf("Slack help lists %v, the table %v", slack, want)
	}

	// The CLI's help: every verb, those only Slack runs in their own group.
	res := runCLI(t, nil, "--help")
	cli := regexp.MustCompile(`(?m)^  ([a-z-]+) `).FindAllStringSubmatch(res.stdout, -1)
	var listed []string
	for _, m := range cli {
		if m[1] != "completion" && m[1] != "redisbot" { // cobra's, not verbs
			listed = append(listed, m[1])
		}
	}
	slices.Sort(listed)
	want := names(handlers.Verbs)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("CLI help lists %v, the table %v", listed, want)
	}
	slackOnly := res.stdout[strings.Index(res.stdout, "Only in Slack"):strings.Index(res.stdout, "Additional Commands")]
	for _, v := range handlers.Verbs {
		if got := strings.Contains(slackOnly, "\n  "+v.Name+" "); got != (v.Where&handlers.AtTerminal == 0) {
			t.Errorf("%s in the CLI's Slack-only group: %v", v.Name, got)
		}
	}
}

func names(verbs []handlers.Verb) []string {
	var out []string
	for _, v := range verbs {
		out = append(out, v.Name)
	}
	return out
}

// TestStoreVerbsAtTheTerminal: trend, audit, silences and approvals read a
// real bbolt store written through the store package, and refuse, at once,
// a file a running serve holds.
func TestStoreVerbsAtTheTerminal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "state.db")
	cfg := writeConfig(t, "store:\n  path: "+dbPath+"\ninstances:\n"+
		instanceYAML("cache-1", "127.0.0.1:1", "memory_limit: 1gb", "tags: [team-a]")+instanceYAML("queue-1", "127.0.0.1:1"))

	// Before serve ever ran there is no file to read.
	res := runCLI(t, nil, "audit", "--config", cfg)
	if res.code != exitError || !strings.Contains(res.stderr, "no state store at "+dbPath+" yet") {
		t.Errorf("audit without a store file: exit %d, stderr %q", res.code, res.stderr)
	}

	now := time.Now()
	st, err := store.Open(ctx, store.Options{Path: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		err := st.AppendSample(ctx, "cache-1", handlers.Point{At: now.Add(time.Duration(i-12) * 10 * time.Minute),
			UsedMemory: int64(100+i) << 20, RSS: int64(150+2*i) << 20, Maxmemory: 512 << 20, FragRatio: 1.5 + float64(i)/100})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []store.Silence{
		{ID: "s1", Instance: "cache-1", Finding: "frag-high", CreatedBy: "U0ALICE", CreatedAt: now, Until: now.Add(4 * time.Hour)},
		{ID: "s2", Instance: "queue-1", CreatedBy: "U0BOB", CreatedAt: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}, // expired
	} {
		if err := st.PutSilence(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []store.AuditRecord{
		{At: now.Add(-time.Hour), Instance: "cache-1", Actor: "U0ALICE", Kind: "requested", ApprovalID: "a1", Detail: map[string]string{"commands": "MEMORY PURGE"}},
		{At: now.Add(-time.Minute), Instance: "queue-1", Actor: "U0BOB", Kind: "silenced", Detail: map[string]string{"finding": "every finding"}},
	} {
		if err := st.Audit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateApproval(ctx, store.Approval{ID: "a1", Instance: "cache-1", Action: "memory-purge", State: "pending",
		RequestedBy: "U0ALICE", RequestedAt: now, ExpiresAt: now.Add(30 * time.Minute), Required: 1}); err != nil {
		t.Fatal(err)
	}

	// While serve holds the file, the verbs say so within a second or so.
	start := time.Now()
	res = runCLI(t, nil, "silences", "--config", cfg)
	if res.code != exitError || !strings.Contains(res.stderr, "the store is in use by a running serve; use Slack or the redis store") {
		t.Errorf("silences while the store is held: exit %d, stderr %q", res.code, res.stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refusing a held store took %v", took)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "chart.png")
	cases := []struct {
		args   []string
		stdout []string
		not    []string
	}{
		{args: []string{"trend", "cache-1", "6h", "--out", out}, stdout: []string{"cache-1: memory, last 1h 50m (window 6h)", "12 samples", "used memory", "100.0 MiB", "111.0 MiB", "RSS", "172.0 MiB", "1.50", "1.61", "Chart: " + out}},
		{args: []string{"silences"}, stdout: []string{"s1", "cache-1", "frag-high", "U0ALICE"}, not: []string{"s2", "U0BOB"}},
		{args: []string{"audit"}, stdout: []string{"Audit log: all instances", "requested", "MEMORY PURGE", "silenced", "queue-1"}},
		{args: []string{"audit", "cache-1"}, stdout: []string{"Audit log: cache-1", "requested"}, not: []string{"silenced"}},
		{args: []string{"approvals"}, stdout: []string{"a1", "memory-purge", "cache-1", "U0ALICE"}},
	}
	for _, tc := range cases {
		res := runCLI(t, nil, append(tc.args, "--config", cfg)...)
		if res.code != exitOK {
			t.Errorf("%v: exit %d, stderr %s", tc.args, res.code, res.stderr)
		}
		for _, want := range tc.stdout {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("%v: stdout lacks %q:\n%s", tc.args, want, res.stdout)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(res.stdout, not) {
				t.Errorf("%v: stdout has %q:\n%s", tc.args, not, res.stdout)
			}
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(raw)); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("trend chart: %v", err)
	}

	// Without --out the chart goes to ./trend-<instance>.png.
	t.Chdir(dir)
	if res := runCLI(t, nil, "trend", "cache-1", "--config", cfg); res.code != exitOK || !strings.Contains(res.stdout, "Chart: trend-cache-1.png") {
		t.Errorf("trend: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "trend-cache-1.png")); err != nil {
		t.Error(err)
	}
	// An instance without history: said, and no file.
	if res := runCLI(t, nil, "trend", "queue-1", "--config", cfg); res.code != exitOK || !strings.Contains(res.stdout, "No history for queue-1") {
		t.Errorf("trend without history: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// --json: the points.
	res = runCLI(t, nil, "trend", "cache-1", "--json", "--config", cfg)
	var got struct {
		Instance string           `json:"instance"`
		Points   []handlers.Point `json:"points"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || got.Instance != "cache-1" || len(got.Points) != 12 {
		t.Errorf("trend --json: %v %+v\n%s", err, got, res.stderr)
	}
}

// TestRunbookFlag: a report at the terminal shows each finding in a line;
// --runbook, or diagnose <instance> <finding>, prints the full runbook.
func TestRunbookFlag(t *testing.T) {
	srv := redistest.StartT(t) // no maxmemory: maxmemory-unset, a warning
	cfg := writeConfig(t, "instances:\n"+instanceYAML("cache-1", srv.Addr))
	const heading = "Runbook maxmemory-unset:"
	cases := []struct {
		args     []string
		code     int
		has, not []string
	}{
		{args: []string{"diagnose", "cache-1"}, code: exitWarning, has: []string{"maxmemory-unset"}, not: []string{heading}},
		{args: []string{"diagnose", "cache-1", "--runbook"}, code: exitWarning, has: []string{heading}},
		{args: []string{"oom", "cache-1", "--runbook"}, code: exitWarning, has: []string{heading}},
		{args: []string{"diagnose", "cache-1", "maxmemory-unset"}, code: exitWarning, has: []string{heading}},
		{args: []string{"diagnose", "cache-1", "frag-high"}, code: exitWarning, has: []string{"cache-1 has no frag-high finding in this probe (findings: maxmemory-unset"}, not: []string{heading}},
	}
	for _, tc := range cases {
		res := runCLI(t, nil, append(tc.args, "--config", cfg, "--color", "never")...)
		if res.code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, res.code, tc.code, res.stderr)
		}
		for _, want := range tc.has {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("%v: stdout lacks %q:\n%s", tc.args, want, res.stdout)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(res.stdout, not) {
				t.Errorf("%v: stdout has %q:\n%s", tc.args, not, res.stdout)
			}
		}
	}
}
