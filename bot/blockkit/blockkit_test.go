package blockkit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenJSON is the JSON of a reply as stored in testdata/golden: indented,
// without HTML escaping (so &lt; reads as sent), files as text.
func goldenJSON(t *testing.T, r Reply) []byte {
	t.Helper()
	type file struct {
		Name    string `json:"name"`
		Title   string `json:"title"`
		Content string `json:"content"`
	}
	view := struct {
		Messages []Message `json:"messages"`
		Files    []file    `json:"files,omitempty"`
	}{Messages: r.Messages}
	for _, f := range r.Files {
		view.Files = append(view.Files, file{f.Name, f.Title, string(f.Content)})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(view); err != nil {
		t.Fatal(err)
	}
	return unescapeHTML(b.Bytes())
}

// unescapeHTML undoes the \u0026, \u003c and \u003e escapes that slack-go's
// own MarshalJSON methods add inside context and action blocks, so goldens
// show text as Slack receives it after decoding.
func unescapeHTML(js []byte) []byte {
	var out []byte
	for i := 0; i < len(js); i++ {
		if js[i] != '\\' || i+1 == len(js) {
			out = append(out, js[i])
			continue
		}
		if js[i+1] == 'u' && i+6 <= len(js) {
			switch string(js[i+2 : i+6]) {
			case "0026":
				out, i = append(out, '&'), i+5
				continue
			case "003c":
				out, i = append(out, '<'), i+5
				continue
			case "003e":
				out, i = append(out, '>'), i+5
				continue
			}
		}
		out, i = append(out, js[i], js[i+1]), i+1 // keep any other escape whole
	}
	return out
}

func checkGolden(t *testing.T, name string, r Reply) {
	t.Helper()
	got := goldenJSON(t, r)
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot/blockkit -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run go test ./bot/blockkit -update and review the diff\n%s", path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant %s\ngot  %s", i+1, w, g)
		}
	}
	return ""
}

// checkReply validates every message and checks that mrkdwn holds no '<'
// except links in allowed.
func checkReply(t testing.TB, r Reply, allowed map[string]bool) {
	t.Helper()
	if len(r.Messages) == 0 {
		t.Fatal("reply has no messages")
	}
	for i, m := range r.Messages {
		if err := validate(m); err != nil {
			t.Errorf("message %d: %v", i, err)
		}
		for _, text := range mrkdwnTexts(m) {
			toks, ok := links(text)
			if !ok {
				t.Errorf("message %d: unclosed '<' in %q", i, text)
			}
			for _, tok := range toks {
				if !allowed[tok] {
					t.Errorf("message %d: %s is not a link from the runbook, in %q", i, tok, text)
				}
			}
		}
	}
}

// runbookLinks are the links RenderRunbook makes for id without any probe
// data: the only ones any reply may contain.
func runbookLinks(t testing.TB, lib *runbooks.Library, ids ...string) map[string]bool {
	t.Helper()
	allowed := map[string]bool{}
	for _, id := range ids {
		r, err := RenderRunbook(nil, id, lib)
		if err != nil {
			t.Fatal(err)
		}
		addLinks(allowed, r)
	}
	return allowed
}

func addLinks(allowed map[string]bool, r Reply) {
	for _, m := range r.Messages {
		for _, text := range mrkdwnTexts(m) {
			toks, _ := links(text)
			for _, tok := range toks {
				allowed[tok] = true
			}
		}
	}
}

func TestGolden(t *testing.T) {
	lib := library(t)
	svc := fixtureService(t)
	reply := func(verb string, args ...string) func(t *testing.T) Reply {
		return func(t *testing.T) Reply { return Render(mustHandle(t, svc, verb, args...), lib) }
	}
	errReply := func(verb string, args ...string) func(t *testing.T) Reply {
		return func(t *testing.T) Reply {
			_, err := handle(t, svc, verb, args...)
			if err == nil {
				t.Fatalf("%s %v: no error", verb, args)
			}
			return Reply{Messages: []Message{RenderError(err)}}
		}
	}
	cases := []struct {
		name   string
		render func(t *testing.T) Reply
		links  map[string]bool
	}{
		{"diagnose", reply("diagnose", "cache-1"), nil},
		{"frag", reply("frag", "cache-1"), nil},
		{"oom", reply("oom", "sessions"), nil},
		{"doctor", reply("doctor", "cache-1"), nil},
		{"fleet", reply("fleet"), nil},
		{"fleet-300", func(t *testing.T) Reply { return Render(mustHandle(t, bigFleetService(t, 300), "fleet"), lib) }, nil},
		{"list", reply("list"), nil},
		{"help", reply("help"), nil},
		{"unreachable", reply("diagnose", "legacy"), nil},
		{"no-findings", reply("frag", "queue"), nil},
		{"usage-error", errReply("diagnose"), nil},
		{"unknown-verb", errReply("purge-everything"), nil},
		{"unknown-instance", errReply("diagnose", "cache-l"), nil},
		{"internal-error", func(t *testing.T) Reply {
			return Reply{Messages: []Message{RenderError(fmt.Errorf("store: open /var/lib/redisbot/bolt.db: %w", os.ErrPermission))}}
		}, nil},
		{"runbook-frag-high", func(t *testing.T) Reply {
			rep := mustHandle(t, svc, "diagnose", "cache-1").Reports[0]
			r, err := RenderRunbook(rep, "frag-high", lib)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, runbookLinks(t, lib, "frag-high")},
		{"keys", keysReply, runbookLinks(t, lib, "big-keys", "keys-no-ttl", "defrag-skip-keys", "ttl-size-mix")},
		{"key-progress", func(t *testing.T) Reply {
			p := handlers.KeyScanProgress{Scanned: 400_000, Estimate: 1_000_000, Elapsed: 80 * time.Second, ETA: 2 * time.Minute}
			return Reply{Messages: []Message{RenderKeyProgress("cache-1", "0123456789ab", p, "")}}
		}, nil},
		{"refusal", func(t *testing.T) Reply {
			return Reply{Messages: []Message{RenderRefusal("Only members of <!subteam^S0123|redis-oncall> may approve a restart of `cache-1`.")}}
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.render(t)
			checkReply(t, r, c.links)
			checkGolden(t, c.name, r)
		})
	}
}

func TestDiagnoseShowsFindings(t *testing.T) {
	r := Render(mustHandle(t, fixtureService(t), "diagnose", "cache-1"), library(t))
	if len(r.Messages) != 1 {
		t.Fatalf("%d messages, want 1", len(r.Messages))
	}
	m := r.Messages[0]
	h, ok := m.Blocks[0].(*slack.HeaderBlock)
	if !ok || h.Text.Text != "cache-1 · CRITICAL" {
		t.Errorf("first block %#v, want the header cache-1 · CRITICAL", m.Blocks[0])
	}
	all := strings.Join(mrkdwnTexts(m), "\n")
	for _, want := range []string{
		":red_circle: *Memory usage near maxmemory*  `maxmemory-near`",
		"redis 7.0.15 master",
		"frag 2.08",
		"maxmemory 91% of 64.0 MiB",
		"policy noeviction",
		// Only what this instance can do: no failover or restart method is
		// configured, and the allocator holds too few free pages to purge.
		"actions: defrag-on (approval required)",
		"no bot action can help on this instance now",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	// One "Full runbook" button per finding, and a button for each action
	// this instance can carry out.
	runbookButtons, requestButtons := 0, 0
	for _, b := range m.Blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				id := e.(*slack.ButtonBlockElement).ActionID
				switch {
				case strings.HasPrefix(id, ActionRunbook+"/"):
					runbookButtons++
				case strings.HasPrefix(id, ActionRequest+"/"):
					requestButtons++
				}
			}
		}
	}
	if rep := mustHandle(t, fixtureService(t), "diagnose", "cache-1").Reports[0]; runbookButtons != len(rep.Findings) || runbookButtons < 6 {
		t.Errorf("%d runbook buttons for %d findings", runbookButtons, len(rep.Findings))
	}
	if requestButtons == 0 {
		t.Error("no remediation buttons under findings that have remedies")
	}
}

// A server that reports hostile strings gets them shown, never executed.
func TestHostileServer(t *testing.T) {
	snap := fragmented(t)
	snap.Info["redis_version"] = "<!channel>"
	snap.Info["mem_allocator"] = "jemalloc <http://evil.example|click> & <#C0123>"
	snap.Doctor = "Sam, I detected a few issues:\n * Peak memory: <!here> \x1b[2J\n"
	rep := &handlers.Report{Verb: "diagnose", Instance: "cache-1", Addr: "10.0.1.11:6379", ProbedAt: probed, Snapshot: snap, Doctor: snap.Doctor,
		Metrics: handlers.Evidence{{Name: "server", Value: "redis", Text: "redis"}, {Name: "version", Value: "<!channel>", Text: "<!channel>"}}}
	rep.Findings = handlers.Evaluate(handlers.Input{Cur: snap, T: handlers.DefaultThresholds()})
	rep.Findings[0].Summary = "ping <@U123> now"
	rep.Severity = handlers.Worst(rep.Findings)

	lib := library(t)
	r := Render(&handlers.Response{Verb: "diagnose", Reports: []*handlers.Report{rep}}, lib)
	checkReply(t, r, nil)
	js := string(goldenJSON(t, r))
	for _, want := range []string{"&lt;!channel&gt;", "&lt;@U123&gt;", "&lt;!here&gt;", `\\x1b[2J`} {
		if !strings.Contains(js, want) {
			t.Errorf("reply lacks %s", want)
		}
	}
	for _, bad := range []string{"<!channel>", "<@U123>", "<!here>", "<http://evil", "\x1b"} {
		if strings.Contains(js, bad) {
			t.Errorf("reply contains raw %q", bad)
		}
	}

	for _, id := range []string{"frag-high", "allocator-not-jemalloc", "defrag-version-risk"} {
		rb, err := RenderRunbook(rep, id, lib)
		if err != nil {
			t.Fatal(err)
		}
		checkReply(t, rb, runbookLinks(t, lib, id))
		if js := string(goldenJSON(t, rb)); strings.Contains(js, "<http://evil") || strings.Contains(js, "<#C0123>") {
			t.Errorf("runbook %s lets a link from the server through", id)
		}
	}
}

func TestEscape(t *testing.T) {
	cases := map[string]string{
		"plain":               "plain",
		"a & b < c > d":       "a &amp; b &lt; c &gt; d",
		"<!channel>":          "&lt;!channel&gt;",
		"<@U123|bob>":         "&lt;@U123|bob&gt;",
		"&lt;":                "&amp;lt;",
		"line\nnext\ttab":     "line\nnext\ttab",
		"\x1b[31mred\a\r":     `\x1b[31mred\a\r`,
		"bidi \u202eevil":     `bidi \u202eevil`,
		"bad utf8 \xff\xfe":   "bad utf8 \ufffd\ufffd",
		"c1 \u0085":           `c1 \u0085`,
		"emoji 🔥 *bold* _it_": "emoji 🔥 *bold* _it_",
	}
	for in, want := range cases {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCut(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 5, "abcd…"},
		{"abc&amp;def", 6, "abc…"},
		{"abc&amp;def", 9, "abc&amp;…"},
		{"see <https://redis.io|docs> now", 12, "see …"},
		{"🔥🔥🔥", 4, "🔥…"},
	}
	for _, c := range cases {
		if got := cut(c.in, c.max); got != c.want || textLen(got) > c.max {
			t.Errorf("cut(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestConvertMarkdown(t *testing.T) {
	cases := []struct {
		name, in string
		links    bool
		want     string
	}{
		{"heading", "## Fix it", true, "*Fix it*"},
		{"bold", "Run **MEMORY PURGE** first.", true, "Run *MEMORY PURGE* first."},
		{"escapes", "redis-cli -h <host> -p <port> & more", true, "redis-cli -h &lt;host&gt; -p &lt;port&gt; &amp; more"},
		{"code span", "run `redis-cli -h <host> INFO`", true, "run `redis-cli -h &lt;host&gt; INFO`"},
		{"bullet", "- one\n  - nested", true, "• one\n\u2003\u2003• nested"},
		{"ordered", "2. **Active defrag** now", true, "2. *Active defrag* now"},
		{"link", "see [the docs](https://redis.io/docs/?a=1&b=2) today", true, "see <https://redis.io/docs/?a=1&amp;b=2|the docs> today"},
		{"link not http", "see [x](javascript:alert(1))", true, "see x (javascript:alert(1))"},
		{"autolink", "docs: <https://redis.io/docs/> and <host>", true, "docs: <https://redis.io/docs/> and &lt;host&gt;"},
		{"link off", "see [the docs](https://redis.io/docs/)", false, "see the docs (https://redis.io/docs/)"},
		{"bare url", "- INFO: https://redis.io/docs/latest/commands/info/.", true, "• INFO: <https://redis.io/docs/latest/commands/info/>."},
		{"bare url off", "https://redis.io/x", false, "https://redis.io/x"},
		{"url in code", "`https://redis.io/x`", true, "`https://redis.io/x`"},
		{"fence", "```bash\nredis-cli -h <host> INFO # ## not a heading\n```", true, "```\nredis-cli -h &lt;host&gt; INFO # ## not a heading\n```"},
		{"fence in fence", "~~~\necho ```\n~~~", true, "```\necho `\u200b``\n```"},
		{"table", "| a | `b` |\n| --- | --- |\n| x | `y & z` |", true, "*a* · *`b`*\n• x · `y &amp; z`"},
		{"quote", "> careful <now>", true, "> careful &lt;now&gt;"},
		{"mention", "<!channel> <@U1> <#C1> <!subteam^S1|ops>", true, "&lt;!channel&gt; &lt;@U1&gt; &lt;#C1&gt; &lt;!subteam^S1|ops&gt;"},
		{"slack link syntax", "<https://x.example|y>", false, "&lt;https://x.example|y&gt;"},
	}
	for _, c := range cases {
		if got := strings.Join(convertMarkdown(c.in, c.links), "\n"); got != c.want {
			t.Errorf("%s: convertMarkdown(%q) =\n%q\nwant\n%q", c.name, c.in, got, c.want)
		}
	}
}

// A runbook far longer than a message splits into sections that each keep
// their code fences balanced, over several messages, losing no line.
func TestLongRunbookSplits(t *testing.T) {
	var b strings.Builder
	b.WriteString("# frag-high: A very long runbook\n\n## What it means\nMeans <this>.\n\n## Evidence\n- ratio: {{ metric \"mem_fragmentation_ratio\" }}\n\n## Why it happens\n")
	for i := range 80 {
		fmt.Fprintf(&b, "Paragraph %d: %s\n\n", i, strings.Repeat("words & <more> words ", 120))
	}
	b.WriteString("## How to confirm\n```\n")
	for i := range 400 {
		fmt.Fprintf(&b, "redis-cli -h <host> -p <port> INFO memory # line %03d\n", i)
	}
	b.WriteString("```\n\n## Fix\nSmall block next:\n```\nredis-cli MEMORY PURGE\n```\n\n## Prevention\n" + strings.Repeat("x", 7000) + "\n\n## Sources\n- https://redis.io/docs/\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "frag-high.md"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	lib, err := runbooks.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := RenderRunbook(nil, "frag-high", lib)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Messages) < 2 {
		t.Fatalf("%d messages, want the runbook split over several", len(r.Messages))
	}
	checkReply(t, r, map[string]bool{"<https://redis.io/docs/>": true})
	var code []string
	for _, m := range r.Messages {
		for _, blk := range m.Blocks {
			s, ok := blk.(*slack.SectionBlock)
			if !ok {
				continue
			}
			lines := strings.Split(s.Text.Text, "\n")
			fences := 0
			for _, l := range lines {
				if l == fence {
					fences++
				} else if strings.HasPrefix(l, "redis-cli -h") {
					code = append(code, l)
				}
			}
			if fences%2 != 0 {
				t.Errorf("section with unbalanced fences:\n%s", s.Text.Text)
			}
			if strings.HasPrefix(lines[0], "redis-cli -h") {
				t.Errorf("a code line starts a section outside a fence:\n%.200s", s.Text.Text)
			}
		}
	}
	if len(code) != 400 {
		t.Fatalf("%d code lines survived, want 400", len(code))
	}
	for i, l := range code {
		if want := fmt.Sprintf("redis-cli -h &lt;host&gt; -p &lt;port&gt; INFO memory # line %03d", i); l != want {
			t.Fatalf("code line %d = %q, want %q", i, l, want)
		}
	}
}

// A code block that fits a section on its own is moved whole rather than
// split across two.
func TestSplitFencedKeepsSmallBlockWhole(t *testing.T) {
	lines := []string{"*Fix*", strings.Repeat("a", 2500), fence}
	for range 20 {
		lines = append(lines, strings.Repeat("b", 40))
	}
	lines = append(lines, fence, "after")
	out := splitFenced(lines, maxSection)
	if len(out) != 2 || !strings.HasPrefix(out[1], fence+"\n") || strings.Count(out[1], fence) != 2 {
		t.Fatalf("split into %d sections: %q", len(out), out)
	}
}

func TestFleetCSV(t *testing.T) {
	r := Render(mustHandle(t, bigFleetService(t, 300), "fleet"), library(t))
	if len(r.Messages) != 1 || len(r.Files) != 1 {
		t.Fatalf("%d messages and %d files, want 1 and 1", len(r.Messages), len(r.Files))
	}
	lines := 0
	for _, text := range mrkdwnTexts(r.Messages[0])[1:] {
		lines += strings.Count(text, "*cache-")
	}
	if lines != fleetPreview {
		t.Errorf("%d instance lines in the channel message, want %d", lines, fleetPreview)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.Files[0].Content)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 301 {
		t.Fatalf("%d CSV rows, want a header and 300", len(rows))
	}
	if got := strings.Join(rows[0], ","); got != "name,addr,severity,used_memory,used_memory_rss,mem_fragmentation_ratio,maxmemory_usage,findings" {
		t.Errorf("CSV header %q", got)
	}
	unreachable := 0
	for _, row := range rows[1:] {
		if strings.HasPrefix(row[7], "unreachable") {
			unreachable++
		}
	}
	if unreachable != 3 {
		t.Errorf("%d unreachable rows, want 3", unreachable)
	}
}

func TestRenderErrorHidesInternals(t *testing.T) {
	err := fmt.Errorf("redis: AUTH s3cret-password failed against 10.0.0.5:6379: %w", context.DeadlineExceeded)
	m := RenderError(err)
	if err := validate(m); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(mrkdwnTexts(m), "\n")
	if strings.Contains(all, "s3cret") || strings.Contains(all, "10.0.0.5") {
		t.Errorf("internal error text reached the user: %s", all)
	}
	if !strings.Contains(all, "timed out") || !strings.Contains(all, ErrorRef(err)) {
		t.Errorf("message lacks the timeout or the reference: %s", all)
	}
	wrapped := fmt.Errorf("slack: %w", &handlers.UsageError{Verb: "frag", Msg: "frag takes exactly one instance name (usage: frag <instance>)"})
	m = RenderError(wrapped)
	if all := strings.Join(mrkdwnTexts(m), "\n"); !strings.Contains(all, ":warning: frag takes exactly one instance name (usage: frag &lt;instance&gt;)") ||
		!strings.Contains(all, "Try `/redis help frag`") {
		t.Errorf("wrapped usage error not shown escaped with its help: %s", all)
	}
}

// firstButton returns the first runbook button of a reply.
func firstButton(t *testing.T, r Reply) *slack.ButtonBlockElement {
	t.Helper()
	for _, m := range r.Messages {
		for _, b := range m.Blocks {
			if a, ok := b.(*slack.ActionBlock); ok {
				return a.Elements.ElementSet[0].(*slack.ButtonBlockElement)
			}
		}
	}
	t.Fatal("no button")
	return nil
}

func TestParseAction(t *testing.T) {
	r := Render(mustHandle(t, fixtureService(t), "diagnose", "cache-1"), library(t))
	btn := firstButton(t, r)
	kind, ref, err := ParseAction(btn.ActionID, btn.Value)
	if err != nil {
		t.Fatal(err)
	}
	if kind != ActionRunbook || ref.Instance != "cache-1" || !strings.HasPrefix(btn.ActionID, "runbook/"+ref.Finding+"/") {
		t.Errorf("ParseAction(%q, %q) = %q, %+v", btn.ActionID, btn.Value, kind, ref)
	}

	good := `{"instance":"cache-1","finding":"frag-high"}`
	bad := []struct{ name, id, value string }{
		{"unknown kind", "restart/frag-high/0", good},
		{"unknown finding", "runbook/frag-huge/0", `{"instance":"cache-1","finding":"frag-huge"}`},
		{"finding mismatch", "runbook/frag-high/0", `{"instance":"cache-1","finding":"evicting"}`},
		{"bad instance", "runbook/frag-high/0", `{"instance":"../etc/passwd","finding":"frag-high"}`},
		{"instance with markup", "runbook/frag-high/0", `{"instance":"<!channel>","finding":"frag-high"}`},
		{"upper-case instance", "runbook/frag-high/0", `{"instance":"Cache-1","finding":"frag-high"}`},
		{"empty instance", "runbook/frag-high/0", `{"instance":"","finding":"frag-high"}`},
		{"long instance", "runbook/frag-high/0", `{"instance":"` + strings.Repeat("a", 65) + `","finding":"frag-high"}`},
		{"oversize value", "runbook/frag-high/0", `{"instance":"cache-1","finding":"frag-high","x":"` + strings.Repeat("a", 2000) + `"}`},
		{"oversize id", "runbook/frag-high/" + strings.Repeat("1", 300), good},
		{"bad json", "runbook/frag-high/0", `{"instance":"cache-1",`},
		{"unknown field", "runbook/frag-high/0", `{"instance":"cache-1","finding":"frag-high","admin":true}`},
		{"trailing data", "runbook/frag-high/0", good + `{}`},
		{"not an object", "runbook/frag-high/0", `"cache-1"`},
		{"bad index", "runbook/frag-high/-1", good},
		{"padded index", "runbook/frag-high/01", good},
		{"missing index", "runbook/frag-high", good},
		{"extra part", "runbook/frag-high/0/1", good},
	}
	for _, c := range bad {
		if kind, ref, err := ParseAction(c.id, c.value); err == nil {
			t.Errorf("%s: ParseAction(%q, %.80q) = %q, %+v, want an error", c.name, c.id, c.value, kind, ref)
		}
	}
}

// Instances whose names config would refuse get no button: a click could
// not be served.
func TestNoButtonForUnservableFinding(t *testing.T) {
	rep := mustHandle(t, fixtureService(t), "diagnose", "cache-1").Reports[0]
	rep.Instance = "Not A Valid Name"
	r := Render(&handlers.Response{Verb: "diagnose", Reports: []*handlers.Report{rep}}, library(t))
	for _, b := range r.Messages[0].Blocks {
		if _, ok := b.(*slack.ActionBlock); ok {
			t.Fatal("button rendered for an instance name ParseAction refuses")
		}
	}
	rep.Instance = "cache-1"
	r = Render(&handlers.Response{Verb: "diagnose", Reports: []*handlers.Report{rep}}, nil)
	checkReply(t, r, nil)
	for _, b := range r.Messages[0].Blocks {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && strings.HasPrefix(btn.ActionID, ActionRunbook+"/") {
					t.Fatal("runbook button rendered without a runbook library")
				}
			}
		}
	}
}

func TestRenderRunbookErrors(t *testing.T) {
	if _, err := RenderRunbook(nil, "frag-high", nil); err == nil {
		t.Error("no error without a library")
	}
	if _, err := RenderRunbook(nil, "no-such-finding", library(t)); err == nil {
		t.Error("no error for an unknown runbook")
	}
}

// A report with nothing to say beyond its header still makes a valid
// message: Slack refuses empty context blocks.
func TestBareReport(t *testing.T) {
	r := Render(&handlers.Response{Verb: "oom", Reports: []*handlers.Report{{Verb: "oom"}}}, nil)
	checkReply(t, r, nil)
}

// A report with more findings than fit 50 blocks continues in the thread.
func TestManyFindingsSplit(t *testing.T) {
	rep := mustHandle(t, fixtureService(t), "diagnose", "cache-1").Reports[0]
	var fs []handlers.Finding
	for _, spec := range handlers.Catalogue {
		f := rep.Findings[0]
		f.ID, f.Runbook, f.Title = spec.ID, spec.ID, spec.Title
		fs = append(fs, f)
	}
	rep.Findings = fs
	r := Render(&handlers.Response{Verb: "diagnose", Reports: []*handlers.Report{rep}}, library(t))
	if len(r.Messages) < 3 {
		t.Fatalf("%d messages for %d findings, want at least 3", len(r.Messages), len(fs))
	}
	checkReply(t, r, nil)
	if want := fmt.Sprintf("(2/%d)", len(r.Messages)); !strings.HasSuffix(r.Messages[1].Text, want) {
		t.Errorf("continuation fallback %q", r.Messages[1].Text)
	}
}
