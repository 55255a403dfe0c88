package runbooks

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
)

func mustLoad(t testing.TB, dir string) *Library {
	t.Helper()
	lib, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%q): %v", dir, err)
	}
	return lib
}

func mustGet(t testing.TB, lib *Library, id string) *Runbook {
	t.Helper()
	rb, ok := lib.Get(id)
	if !ok {
		t.Fatalf("no runbook %q", id)
	}
	return rb
}

func section(t testing.TB, rb *Runbook, heading string) string {
	t.Helper()
	body, ok := rb.Section(heading)
	if !ok {
		t.Fatalf("%s: no '## %s' section", rb.ID, heading)
	}
	return body
}

func TestEmbeddedRunbooksAreComplete(t *testing.T) {
	lib := mustLoad(t, "")
	for _, id := range lib.IDs() {
		t.Run(id, func(t *testing.T) {
			rb := mustGet(t, lib, id)
			for _, h := range required {
				if body := section(t, rb, h); strings.TrimSpace(body) == "" {
					t.Errorf("'## %s' is empty", h)
				}
			}
			if spec, ok := handlers.SpecFor(id); ok && rb.Title != spec.Title {
				t.Errorf("title %q, want the Catalogue's %q", rb.Title, spec.Title)
			}
			if !strings.Contains(section(t, rb, "How to confirm"), "redis-cli") {
				t.Error("'## How to confirm' has no redis-cli command")
			}
			if !strings.Contains(section(t, rb, "Sources"), "https://") {
				t.Error("'## Sources' has no link")
			}
		})
	}
}

func TestCatalogueAndRunbooksMatch(t *testing.T) {
	lib := mustLoad(t, "")
	var catalogue []string
	for _, s := range handlers.Catalogue {
		catalogue = append(catalogue, s.ID)
		if _, ok := lib.Get(s.ID); !ok {
			t.Errorf("finding %q has no runbook (add runbooks/%s.md)", s.ID, s.ID)
		}
	}
	for _, id := range lib.IDs() {
		if !slices.Contains(catalogue, id) {
			t.Errorf("runbook %q is not in handlers.Catalogue", id)
		}
	}
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	// "/redis purge <instance>", "/redis defrag <instance> on", "/redis set <instance> maxmemory 4gb"
	botCommand = regexp.MustCompile(`/redis ([a-z]+)(?: <instance>)?(?: (on|off))?`)
)

// actionOf maps a chat command shown in a runbook to the action it asks for.
func actionOf(verb, arg string) string {
	switch verb {
	case "purge":
		return string(handlers.ActionMemoryPurge)
	case "defrag":
		return "defrag-" + arg
	case "set":
		return string(handlers.ActionConfigSet)
	case "bgsave":
		return string(handlers.ActionBGSave)
	case "failover":
		return string(handlers.ActionFailover)
	case "restart":
		return string(handlers.ActionRestart)
	}
	return "unknown command /redis " + verb
}

func TestFixNamesExactlyTheCatalogueActions(t *testing.T) {
	allowed := []string{
		string(handlers.ActionMemoryPurge), string(handlers.ActionDefragOn), string(handlers.ActionDefragOff),
		string(handlers.ActionConfigSet), string(handlers.ActionBGSave), string(handlers.ActionRestart),
		string(handlers.ActionFailover),
	}
	lib := mustLoad(t, "")
	for _, spec := range handlers.Catalogue {
		t.Run(spec.ID, func(t *testing.T) {
			fix := section(t, mustGet(t, lib, spec.ID), "Fix")
			var want []string
			for _, a := range spec.Actions {
				want = append(want, string(a))
			}
			slices.Sort(want)

			// The "Bot actions:" line lists them, for a reader skimming the fix.
			var line string
			for l := range strings.SplitSeq(fix, "\n") {
				if strings.HasPrefix(l, "Bot actions:") {
					line = l
					break
				}
			}
			if line == "" {
				t.Fatal("'## Fix' has no 'Bot actions:' line")
			}
			var listed []string
			for _, m := range backticked.FindAllStringSubmatch(line, -1) {
				if !slices.Contains(allowed, m[1]) {
					t.Errorf("Bot actions line names %q, not an action", m[1])
				}
				listed = append(listed, m[1])
			}
			slices.Sort(listed)
			if len(want) == 0 && !strings.HasPrefix(line, "Bot actions: none") {
				t.Errorf("no actions in the Catalogue, want 'Bot actions: none', got %q", line)
			}
			if !slices.Equal(listed, want) {
				t.Errorf("Bot actions line names %v, Catalogue has %v", listed, want)
			}

			// Anywhere in the fix, an action name or a chat command must be
			// one the Catalogue offers for this finding: the bot would refuse
			// any other.
			for _, m := range backticked.FindAllStringSubmatch(fix, -1) {
				if slices.Contains(allowed, m[1]) && !slices.Contains(want, m[1]) {
					t.Errorf("'## Fix' names action %q, which the Catalogue does not offer here", m[1])
				}
			}
			for _, m := range botCommand.FindAllStringSubmatch(fix, -1) {
				if a := actionOf(m[1], m[2]); !slices.Contains(want, a) {
					t.Errorf("'## Fix' shows %q (%s), which the Catalogue does not offer here", m[0], a)
				}
			}
			for _, a := range want {
				if strings.Count(fix, "`"+a+"`") < 1 {
					t.Errorf("'## Fix' does not name action %q", a)
				}
			}
		})
	}
}

func TestHostChecksHaveManualChecks(t *testing.T) {
	lib := mustLoad(t, "")
	for _, id := range []string{"frag-swap", "cow-headroom", "fork-slow", "rss-near-limit", "frag-rss-overhead", "maxmemory-headroom"} {
		t.Run(id, func(t *testing.T) {
			body := section(t, mustGet(t, lib, id), "Manual checks")
			if !strings.Contains(body, "```") {
				t.Error("'## Manual checks' has no shell command block")
			}
			if !strings.Contains(body, "Good:") {
				t.Error("'## Manual checks' does not say which value is good")
			}
		})
	}
}

func TestRenderFillsEvidence(t *testing.T) {
	lib := mustLoad(t, "")
	full := Data{
		Instance: "cache-1",
		Info: map[string]string{
			"mem_fragmentation_ratio": "2.31",
			"used_memory":             "58615808",
			"used_memory_rss":         "135397376",
			"mem_fragmentation_bytes": "76781568",
			"mem_allocator":           "jemalloc-5.3.0",
			"errorstat_OOM":           "count=42",
			"maxmemory":               "4294967296",
			"db0":                     "keys=10000,expires=12,avg_ttl=0",
		},
		Config: map[string]string{"maxmemory-policy": "volatile-lru", "activedefrag": "no", "save": ""},
		Extra:  map[string]string{"memory_limit": "8589934592", "error": "dial tcp 10.0.0.7:6379: connect: connection refused", "errorstat_OOM": "42"},
	}
	tests := []struct {
		id   string
		data Data
		want []string
	}{
		{"frag-high", full, []string{
			"- mem_fragmentation_ratio: 2.31 (RSS 129.1 MiB for 55.9 MiB of data; 73.2 MiB wasted)",
			"activedefrag: no",
			"allocator: jemalloc-5.3.0",
		}},
		{"frag-high", Data{}, []string{
			"- mem_fragmentation_ratio: unknown (RSS unknown for unknown of data; unknown wasted)",
			"activedefrag: unknown",
		}},
		{"oom-rejecting", full, []string{
			"- OOM rejections since start (INFO errorstats): 42;",
			"- used_memory: 55.9 MiB of maxmemory 4.0 GiB",
			"- maxmemory-policy: volatile-lru",
		}},
		{"volatile-no-ttl", full, []string{"- keyspace db0: keys=10000,expires=12,avg_ttl=0 (keys vs expires)"}},
		{"maxmemory-headroom", full, []string{"- maxmemory: 4.0 GiB of limit 8.0 GiB", "save (empty)"}},
		{"unreachable", full, []string{"- instance: cache-1 at unknown", "- error: dial tcp 10.0.0.7:6379: connect: connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			rb, err := lib.Render(tt.id, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			got := section(t, rb, "Evidence")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Evidence lacks %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "{{") || strings.Contains(got, "<no value>") {
				t.Errorf("Evidence not rendered cleanly:\n%s", got)
			}
		})
	}
}

func TestRenderLeavesLibraryUnchanged(t *testing.T) {
	lib := mustLoad(t, "")
	if _, err := lib.Render("frag-high", Data{Info: map[string]string{"mem_fragmentation_ratio": "9.99"}}); err != nil {
		t.Fatal(err)
	}
	if ev := section(t, mustGet(t, lib, "frag-high"), "Evidence"); !strings.Contains(ev, `{{ metric "mem_fragmentation_ratio" }}`) {
		t.Errorf("Get after Render returned a rendered Evidence section:\n%s", ev)
	}
	if _, err := lib.Render("no-such-finding", Data{}); err == nil {
		t.Error("Render of an unknown id did not fail")
	}
}

// templateKeys are the fields the embedded Evidence sections ask for.
var templateKey = regexp.MustCompile(`\b(?:metric|bytes|config|extra) "([^"]+)"`)

// hostileData sets every field any runbook asks for to v, in every map.
func hostileData(t testing.TB, lib *Library, v string) Data {
	t.Helper()
	d := Data{Instance: v, Info: map[string]string{}, Config: map[string]string{}, Extra: map[string]string{}}
	for _, id := range lib.IDs() {
		for _, m := range templateKey.FindAllStringSubmatch(section(t, mustGet(t, lib, id), "Evidence"), -1) {
			d.Info[m[1]], d.Config[m[1]], d.Extra[m[1]] = v, v, v
		}
	}
	return d
}

// renderAll renders every runbook with d; v is the value d was built from.
func renderAll(t testing.TB, lib *Library, d Data, v string) {
	t.Helper()
	for _, id := range lib.IDs() {
		rb, err := lib.Render(id, d)
		if err != nil {
			t.Fatalf("Render(%s): %v", id, err)
		}
		// A server may send the text "<no value>" itself; it is shown as is.
		ev := section(t, rb, "Evidence")
		if strings.Contains(ev, "<no value>") && !strings.Contains(v, "<no value>") {
			t.Fatalf("Render(%s) shows <no value>:\n%s", id, ev)
		}
	}
}

func TestRenderNeverFails(t *testing.T) {
	lib := mustLoad(t, "")
	for _, v := range []string{"", "0", "-1", "1e400", "NaN", "-Inf", "not a number", "{{ .Instance }}", "x\n## Fix\n- injected", "\x00\xff"} {
		renderAll(t, lib, hostileData(t, lib, v), v)
	}
	renderAll(t, lib, Data{}, "")
}

func FuzzRender(f *testing.F) {
	lib := mustLoad(f, "")
	for _, s := range []string{"", "1.5", "58615808", "count=3", "-76781568", "9e999", "jemalloc-5.3.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		renderAll(t, lib, hostileData(t, lib, v), v)
	})
}

func TestHumanBytes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0 B"},
		{"512", "512 B"},
		{"1023", "1023 B"},
		{"1024", "1.0 KiB"},
		{"58615808", "55.9 MiB"},
		{"1073741824", "1.0 GiB"},
		{"1073700000", "1.0 GiB"}, // 1023.96 MiB rounds up a unit, not to "1024.0 MiB"
		{"1099511627776", "1.0 TiB"},
		{"-76781568", "-73.2 MiB"},
		{" 2048 ", "2.0 KiB"},
		{"1.5", "2 B"},
		{"", "unknown"},
		{"abc", "unknown"},
		{"NaN", "unknown"},
		{"+Inf", "unknown"},
		{"1e30", "867361737988.4 EiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// minimal is a valid runbook for id; override tests change parts of it.
func minimal(id, title, evidence string) string {
	return "# " + id + ": " + title + "\n\n" +
		"## What it means\nmeaning\n\n" +
		"## Evidence\n" + evidence + "\n\n" +
		"## Why it happens\ncause\n\n" +
		"## How to confirm\n```\nredis-cli INFO memory\n## not a heading inside a code block\n```\n\n" +
		"## Fix\nBot actions: none.\n\n" +
		"## Prevention\nprevent\n\n" +
		"## Sources\nhttps://redis.io/docs/latest/commands/info/\n"
}

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOverrideDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "frag-high.md", strings.ReplaceAll(minimal("frag-high", "Local fragmentation policy", `- ratio {{ metric "mem_fragmentation_ratio" }} on {{ .Instance }}`), "\n", "\r\n"))
	write(t, dir, "team-quota.md", minimal("team-quota", "Team over its memory quota", `- used {{ bytes "used_memory" }}`))
	write(t, dir, "notes.txt", "ignored: not a runbook")
	if err := os.Mkdir(filepath.Join(dir, "archive.md"), 0o755); err != nil {
		t.Fatal(err)
	}

	lib := mustLoad(t, dir)
	embedded := mustLoad(t, "")
	if got, want := len(lib.IDs()), len(embedded.IDs())+1; got != want {
		t.Errorf("%d runbooks, want %d (embedded plus one added)", got, want)
	}
	if got := mustGet(t, lib, "frag-high").Title; got != "Local fragmentation policy" {
		t.Errorf("frag-high title %q, want the override's", got)
	}
	if got := mustGet(t, lib, "frag-noise").Title; got != mustGet(t, embedded, "frag-noise").Title {
		t.Errorf("frag-noise changed by an unrelated override: %q", got)
	}
	rb, err := lib.Render("frag-high", Data{Instance: "cache-1", Info: map[string]string{"mem_fragmentation_ratio": "1.91"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := section(t, rb, "Evidence"); got != "- ratio 1.91 on cache-1" {
		t.Errorf("override Evidence = %q", got)
	}
	if got := section(t, rb, "How to confirm"); !strings.Contains(got, "## not a heading") {
		t.Errorf("a '## ' line inside a code block was taken as a heading: %q", got)
	}
	rb, err = lib.Render("team-quota", Data{Info: map[string]string{"used_memory": "1073741824"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := section(t, rb, "Evidence"); got != "- used 1.0 GiB" {
		t.Errorf("added runbook Evidence = %q", got)
	}
}

func TestLoadRejectsMalformedRunbooks(t *testing.T) {
	good := minimal("x", "Title", `- {{ metric "used_memory" }}`)
	tests := []struct {
		name, file, text, want string
	}{
		{"no heading", "x.md", strings.Replace(good, "# x: Title", "x: Title", 1),
			"first line must be '# <id>: <title>'"},
		{"heading without title", "x.md", strings.Replace(good, "# x: Title", "# x:", 1),
			"first line must be '# <id>: <title>'"},
		{"id differs from file", "x.md", strings.Replace(good, "# x: Title", "# y: Title", 1),
			`id "y" in heading does not match file name "x.md"`},
		{"missing section", "x.md", strings.Replace(good, "## Fix\nBot actions: none.\n\n", "", 1),
			"missing '## Fix' section"},
		{"empty section", "x.md", strings.Replace(good, "## Prevention\nprevent\n", "## Prevention\n", 1),
			"empty '## Prevention' section"},
		{"duplicate section", "x.md", good + "\n## fix\nagain\n",
			"duplicate '## fix' section"},
		{"text before sections", "x.md", strings.Replace(good, "\n\n## What it means", "\nintro\n## What it means", 1),
			"text before the first '## ' section"},
		{"unclosed code block", "x.md", good + "```\n",
			"code block not closed"},
		{"template syntax", "x.md", minimal("x", "Title", `{{ metric "used_memory" `),
			"'## Evidence' template: template: x:1: unclosed action"},
		{"unknown function", "x.md", minimal("x", "Title", `{{ nope "used_memory" }}`),
			`'## Evidence' template: template: x:1: function "nope" not defined`},
		{"unknown field", "x.md", minimal("x", "Title", `{{ .Nope }}`),
			`'## Evidence' template: template: x:1:3: executing "x" at <.Nope>: can't evaluate field Nope in type runbooks.Data`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.file, tt.text)
			_, err := Load(dir)
			want := filepath.Join(dir, tt.file) + ": " + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("Load error\n got: %v\nwant: %s", err, want)
			}
		})
	}
}

func TestLoadReportsEveryBadFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.md", "nonsense\n")
	write(t, dir, "b.md", "# c: Title\n")
	_, err := Load(dir)
	want := filepath.Join(dir, "a.md") + ": first line must be '# <id>: <title>'\n" +
		filepath.Join(dir, "b.md") + `: id "c" in heading does not match file name "b.md"`
	if err == nil || err.Error() != want {
		t.Errorf("Load error\n got: %v\nwant: %s", err, want)
	}
}

func TestLoadMissingDirectory(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("Load of a missing directory did not fail")
	}
}

func TestSectionMatchesHeadingCaseInsensitively(t *testing.T) {
	rb := mustGet(t, mustLoad(t, ""), "frag-high")
	a, okA := rb.Section("how to confirm")
	b, okB := rb.Section("How To Confirm")
	if !okA || !okB || a != b || a == "" {
		t.Errorf("Section lookups differ: %v %v", okA, okB)
	}
	if _, ok := rb.Section("Nonexistent"); ok {
		t.Error("found a section that does not exist")
	}
}

func FuzzParse(f *testing.F) {
	names, err := embedded.ReadDir(".")
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range names {
		text, err := embedded.ReadFile(n.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSuffix(n.Name(), ".md"), string(text))
	}
	f.Add("x", minimal("x", "T", "{{ range .Info }}{{ . }}{{ end }}"))
	f.Fuzz(func(t *testing.T, id, text string) {
		rb, tmpl, err := parse(id, text)
		if err != nil {
			return
		}
		if rb.ID != id || tmpl == nil {
			t.Fatalf("parse accepted %q as %q", id, rb.ID)
		}
		for _, h := range required {
			if body, ok := rb.Section(h); !ok || strings.TrimSpace(body) == "" {
				t.Fatalf("parse accepted a runbook without '## %s'", h)
			}
		}
	})
}

// Every placeholder the bot knows is filled in every section, and only
// those: a key name or a pod is for the reader to fill.
func TestRenderFillsPlaceholders(t *testing.T) {
	lib, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	data := Data{Instance: "orders-primary", Addr: "10.0.1.11:6380", Info: map[string]string{"process_id": "4242"}}
	for _, id := range lib.IDs() {
		rb, err := lib.Render(id, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rb.Sections {
			for _, p := range []string{"<host>", "<port>", "<instance>", "<pid>"} {
				if strings.Contains(s.Body, p) {
					t.Errorf("%s, %s: %s left unfilled", id, s.Heading, p)
				}
			}
		}
	}
	rb, err := lib.Render("big-keys", data)
	if err != nil {
		t.Fatal(err)
	}
	confirm, _ := rb.Section("How to confirm")
	for _, want := range []string{"redis-cli -h 10.0.1.11 -p 6380 --bigkeys", "`/redis keys orders-primary`", "TYPE '<key>'"} {
		if !strings.Contains(confirm, want) {
			t.Errorf("big-keys How to confirm lacks %q:\n%s", want, confirm)
		}
	}
}

// What the bot cannot know stays a placeholder: a Sentinel group or a unix
// socket has no host and port for redis-cli, and a pid that is not a
// number is not one.
func TestPlaceholdersOnlyWhatIsKnown(t *testing.T) {
	cases := []struct {
		data Data
		want map[string]string
	}{
		{Data{Instance: "a", Addr: "[::1]:6379"}, map[string]string{"instance": "a", "host": "::1", "port": "6379"}},
		{Data{Instance: "group", Addr: "mymaster"}, map[string]string{"instance": "group"}},
		{Data{Addr: "/run/redis.sock"}, map[string]string{}},
		{Data{Addr: "h:0", Info: map[string]string{"process_id": "12;rm"}}, map[string]string{}},
	}
	for _, c := range cases {
		if got := c.data.Placeholders(); !maps.Equal(got, c.want) {
			t.Errorf("Placeholders(%+v) = %v, want %v", c.data, got, c.want)
		}
	}
	if got := Fill("redis-cli -h <host> -p <port> TTL '<key>' # <instance>", map[string]string{"host": "h", "port": "1", "instance": "x"}); got != "redis-cli -h h -p 1 TTL '<key>' # x" {
		t.Errorf("Fill = %q", got)
	}
}
