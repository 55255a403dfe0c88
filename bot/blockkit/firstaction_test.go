package blockkit

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

// A report leads with the summary line (the number that matters, the first
// action and its gain, as handlers.Summarize puts them), then what to do
// first in full, right under the header and its context line.
func TestReportStartsWithTheFirstAction(t *testing.T) {
	for _, tc := range []struct {
		instance string
		want     string
	}{
		{"cache-1", ":point_right: *First:* "},
		{"sessions", ":point_right: *First:* "},
		{"legacy", ":point_right: *First:* Check whether the server is blocked or overloaded"},
	} {
		t.Run(tc.instance, func(t *testing.T) {
			resp := mustHandle(t, fixtureService(t), "diagnose", tc.instance)
			m := Render(resp, library(t)).Messages[0]
			var sections []string
			for _, b := range m.Blocks[1:] {
				if s, ok := b.(*slack.SectionBlock); ok {
					sections = append(sections, s.Text.Text)
					if len(sections) == 2 {
						break
					}
					continue
				}
				if _, ok := b.(*slack.ContextBlock); !ok || len(sections) > 0 {
					t.Fatalf("%T before the first two sections", b)
				}
			}
			sum := handlers.Summarize(resp.Reports[0])
			if want := "*" + inline(sum.Headline) + "*"; len(sections) < 2 || !strings.HasPrefix(sections[0], want) {
				t.Fatalf("sections %q, want the summary %q first", sections, want)
			}
			if first := sections[1]; !strings.HasPrefix(first, tc.want) {
				t.Errorf("first action %q, want it to start with %q", first, tc.want)
			}
			if a := sum.First; a.Command != "" && !strings.Contains(sections[1], "`"+a.Command+"` (approval required)") {
				t.Errorf("first action %q lacks the command %q", sections[1], a.Command)
			}
		})
	}
}

// The line is escaped like every other text: an instance name or a
// server's words cannot ping anyone.
func TestFirstActionIsEscaped(t *testing.T) {
	a := handlers.FirstAction{ID: "memory-purge", Text: "Run MEMORY PURGE on <!channel> & <@U123>.", Remedy: handlers.ActionMemoryPurge,
		Command: "/redis purge <!here>"}
	got := firstActionText(a)
	for _, bad := range []string{"<!channel>", "<@U123>", "<!here>"} {
		if strings.Contains(got, bad) {
			t.Errorf("raw %q in %q", bad, got)
		}
	}
	if !strings.Contains(got, "&lt;!channel&gt; &amp; &lt;@U123&gt;") {
		t.Errorf("text not escaped: %q", got)
	}
	long := handlers.FirstAction{ID: "x", Text: strings.Repeat("word ", 2000)}
	if n := textLen(firstActionText(long)); n > maxSection {
		t.Errorf("a long first action makes a %d-character section", n)
	}
	if got := firstActionText(handlers.FirstAction{ID: "nothing", Text: "Nothing to do now."}); !strings.HasPrefix(got, severityEmoji(handlers.SeverityNone)) {
		t.Errorf("nothing to do: %q", got)
	}
}
