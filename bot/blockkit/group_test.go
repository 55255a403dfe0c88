package blockkit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// A group of 300 members whose summaries and evidence come from hostile
// servers (mentions, links, control characters, huge values) stays within
// Slack's limits, escapes every string, mentions the on-call group once
// and lists the worst first.
func TestGroupMessageHostileAndBounded(t *testing.T) {
	hostile := "<!channel> <@U0EVIL> <https://evil.example|click> & *bold* `tick`\x1b[31m\u202e" + strings.Repeat("x", 5000)
	v := GroupView{Finding: handlers.Finding{ID: "oom-rejecting", Title: "Writes rejected with OOM errors"}, OnCallGroup: "S0ONCALL",
		Since: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	for i := range 300 {
		m := GroupMember{Instance: fmt.Sprintf("cache-%03d", i), Severity: handlers.SeverityWarning, Firing: true, Summary: hostile,
			Evidence: handlers.Evidence{{Name: "errorstat_OOM", Value: int64(i), Text: hostile}, {Name: "used_memory", Value: int64(i) << 20, Text: handlers.HumanBytes(int64(i) << 20)}}}
		if i == 7 {
			m.Severity = handlers.SeverityCritical
		}
		if i%2 == 1 {
			m.Evidence = nil // drawn again from its record: the summary
		}
		v.Members = append(v.Members, m)
	}
	v.Members[0].Firing = false
	m := RenderAlertGroup(v, v.Since.Add(time.Hour))
	if err := validate(m); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(mrkdwnTexts(m), "\n")
	for _, bad := range []string{"<!channel>", "<@U0EVIL>", "<https://evil", "\x1b", "\u202e"} {
		if strings.Contains(all, bad) {
			t.Errorf("unescaped %q in the group message", bad)
		}
	}
	if n := strings.Count(all, "<!subteam^S0ONCALL>"); n != 1 {
		t.Errorf("%d on-call mentions, want 1", n)
	}
	lines := strings.Split(all, "\n")
	var listed []string
	for _, l := range lines {
		if strings.Contains(l, "`cache-") {
			listed = append(listed, l)
		}
	}
	if len(listed) != groupLines || !strings.HasPrefix(listed[0], ":red_circle: `cache-007` CRITICAL") {
		t.Fatalf("%d lines listed, the first %q: want %d, the critical one first", len(listed), listed[0], groupLines)
	}
	if !strings.Contains(listed[1], "`cache-298` WARNING · errorstat_OOM") || !strings.Contains(listed[1], "used_memory 298.0 MiB (312475648 B)") {
		t.Errorf("second line %q: want the warning with the largest first number, its size in bytes", listed[1])
	}
	if !strings.Contains(all, "…and 250 more") || !strings.Contains(all, "299 of 300 still firing") {
		t.Errorf("counts missing:\n%s", all)
	}
}

// Resolved: green, no mention, the resolve time; the note says so.
func TestGroupResolvedAndNote(t *testing.T) {
	since := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	v := GroupView{Finding: handlers.Finding{ID: "oom-rejecting", Title: "Writes rejected"}, OnCallGroup: "S0ONCALL", Since: since,
		Members: []GroupMember{{Instance: "a", Severity: handlers.SeverityCritical}, {Instance: "b", Severity: handlers.SeverityCritical}}}
	m := RenderAlertGroup(v, since.Add(time.Hour))
	if err := validate(m); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(mrkdwnTexts(m), "\n")
	if !strings.HasPrefix(m.Text, "RESOLVED · 2 instances") || strings.Contains(all, "subteam") || !strings.Contains(all, "resolved at 2026-12-07 10:00 UTC") {
		t.Errorf("resolved group:\n%s", all)
	}
	note := RenderGroupNote(GroupChange{Resolved: []string{"b", "<!here>"}, Escalated: []GroupMember{{Instance: "c", Severity: handlers.SeverityCritical}},
		Firing: 1, Of: 3, Since: since})
	if err := validate(note); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(mrkdwnTexts(note), "\n")
	if strings.Contains(text, "<!here>") || !strings.Contains(text, "Resolved (2): `&lt;!here&gt;`, `b`") ||
		!strings.Contains(text, "Now critical (1): `c`") || !strings.Contains(text, "1 of 3 still firing") {
		t.Errorf("note:\n%s", text)
	}
}

// Acknowledge all: offered while a member is firing and unacknowledged;
// its click names a catalogue finding, and nothing else.
func TestGroupAcknowledgeAllButton(t *testing.T) {
	v := GroupView{Finding: handlers.Finding{ID: "oom-rejecting", Title: "Writes rejected"},
		Members: []GroupMember{{Instance: "a", Severity: handlers.SeverityCritical, Firing: true}, {Instance: "b", Severity: handlers.SeverityCritical, Firing: true, AckedBy: "U0OP"}}}
	if !hasAction(RenderAlertGroup(v, time.Now()), "ackgroup/oom-rejecting") {
		t.Error("no Acknowledge all while a member is unacknowledged")
	}
	v.Members[0].AckedBy = "U0OP"
	if hasAction(RenderAlertGroup(v, time.Now()), "ackgroup/") {
		t.Error("Acknowledge all offered when every firing member is acknowledged")
	}
	if c, err := ParseClick("ackgroup/oom-rejecting", "oom-rejecting"); err != nil || c.Kind != ActionAckGroup || c.Finding != "oom-rejecting" {
		t.Errorf("ParseClick = %+v, %v", c, err)
	}
	for _, bad := range [][2]string{{"ackgroup/no-such-finding", "no-such-finding"}, {"ackgroup/oom-rejecting", "frag-high"}, {"ackgroup/", ""}} {
		if _, err := ParseClick(bad[0], bad[1]); err == nil {
			t.Errorf("ParseClick(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func hasAction(m Message, prefix string) bool {
	b, _ := json.Marshal(m.Blocks)
	return strings.Contains(string(b), `"action_id":"`+prefix)
}
