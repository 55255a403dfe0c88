package blockkit

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

func TestParseClick(t *testing.T) {
	ok := []struct {
		id, value string
		want      Click
	}{
		{"approve/0123456789ab", "0123456789ab", Click{Kind: ActionApprove, ApprovalID: "0123456789ab"}},
		{"reject/0123456789ab", "0123456789ab", Click{Kind: ActionReject, ApprovalID: "0123456789ab"}},
		{"request/memory-purge/0", `{"instance":"cache-1","action":"memory-purge"}`, Click{Kind: ActionRequest, Instance: "cache-1", Action: handlers.ActionMemoryPurge}},
		{"runbook/frag-high/2", `{"instance":"cache-1","finding":"frag-high"}`, Click{Kind: ActionRunbook, Runbook: RunbookRef{Instance: "cache-1", Finding: "frag-high"}}},
		{"request/config-set/3/0", `{"instance":"cache-1","action":"config-set","setting":"maxmemory","value":"170917888"}`,
			Click{Kind: ActionRequest, Instance: "cache-1", Action: handlers.ActionConfigSet, Set: handlers.Setting{Name: "maxmemory", Value: "170917888"}}},
		{"request/config-set/3/1", `{"instance":"cache-1","action":"config-set","setting":"maxmemory-policy","value":"allkeys-lru"}`,
			Click{Kind: ActionRequest, Instance: "cache-1", Action: handlers.ActionConfigSet, Set: handlers.Setting{Name: "maxmemory-policy", Value: "allkeys-lru"}}},
	}
	for _, tc := range ok {
		got, err := ParseClick(tc.id, tc.value)
		if err != nil || got != tc.want {
			t.Errorf("ParseClick(%q, %q) = %+v, %v", tc.id, tc.value, got, err)
		}
	}
	bad := [][2]string{
		{"approve/0123456789ab", "ffffffffffff"},                                 // value and id disagree
		{"approve/../../etc", "../../etc"},                                       // not an approval id
		{"request/config-set/0", `{"instance":"cache-1","action":"config-set"}`}, // needs a setting and a value
		{"request/config-set/0", `{"instance":"cache-1","action":"config-set","setting":"save","value":""}`},
		{"request/config-set/0", `{"instance":"cache-1","action":"config-set","setting":"maxmemory","value":"-1"}`},
		{"request/config-set/0", `{"instance":"cache-1","action":"config-set","setting":"maxmemory-policy","value":"evict-all"}`},
		{"request/memory-purge/0", `{"instance":"cache-1","action":"memory-purge","setting":"maxmemory","value":"1mb"}`},
		{"request/memory-purge/0", `{"instance":"cache-1","action":"restart"}`}, // id and value disagree
		{"request/memory-purge/0", `{"instance":"10.0.0.1:6379","action":"memory-purge"}`},
		{"request/memory-purge/0", `{"instance":"cache-1","action":"memory-purge","host":"x"}`},
		{"shell/rm", "-rf"},
		{"approve/" + strings.Repeat("a", 300), "x"},
	}
	for _, b := range bad {
		if _, err := ParseClick(b[0], b[1]); err == nil {
			t.Errorf("ParseClick(%q, %q) accepted", b[0], b[1])
		}
	}
}

func approvalView(state string) ApprovalView {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	return ApprovalView{
		ID: "0123456789ab", Instance: "cache-1", State: state, RequestedBy: "U0OPERATOR",
		RequestedAt: now, ExpiresAt: now.Add(15 * time.Minute), Required: 1,
		Plan: remedy.Plan{
			Instance: "cache-1", Action: handlers.ActionMemoryPurge, Commands: []string{"MEMORY PURGE"},
			Evidence: []handlers.Fact{{Name: "used_memory_rss", Value: int64(1 << 30), Text: "1.0 GiB"}},
			Risks:    []string{"Blocks the main thread <briefly> & returns pages."},
			Checks:   []remedy.Check{{Name: "allocator is jemalloc", OK: true, Blocking: true, Detail: "jemalloc-5.3.0"}},
		},
	}
}

func TestRenderApproval(t *testing.T) {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	pending := RenderApproval(approvalView("pending"), now)
	if err := validate(pending); err != nil {
		t.Fatal(err)
	}
	text := messageText(pending)
	for _, want := range []string{"MEMORY PURGE", "<@U0OPERATOR>", "expires in 15m", "&lt;briefly&gt; &amp;", "allocator is jemalloc"} {
		if !strings.Contains(text, want) {
			t.Errorf("pending approval lacks %q:\n%s", want, text)
		}
	}
	if n := countButtons(pending); n != 2 {
		t.Errorf("pending approval has %d buttons, want Approve and Reject", n)
	}

	done := approvalView("done")
	done.Approvers = []string{"U0LEAD"}
	done.Outcome = &remedy.Outcome{OK: true, Message: "MEMORY PURGE returned 200.0 MiB of RSS",
		Before: []handlers.Fact{{Name: "used_memory_rss", Text: "1.0 GiB"}}, After: []handlers.Fact{{Name: "used_memory_rss", Text: "824.0 MiB"}}}
	m := RenderApproval(done, now)
	if err := validate(m); err != nil {
		t.Fatal(err)
	}
	if countButtons(m) != 0 {
		t.Error("a decided approval still has buttons")
	}
	if text := messageText(m); !strings.Contains(text, "1.0 GiB → 824.0 MiB") || !strings.Contains(text, "approved by <@U0LEAD>") {
		t.Errorf("done approval:\n%s", text)
	}
	forged := approvalView("pending")
	forged.RequestedBy = "<!channel>"
	if text := messageText(RenderApproval(forged, now)); strings.Contains(text, "<!channel>") {
		t.Error("a forged user id became a mention")
	}
}

func countButtons(m Message) int {
	n := 0
	for _, b := range m.Blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			n += len(a.Elements.ElementSet)
		}
	}
	return n
}

func messageText(m Message) string {
	var parts []string
	for _, b := range m.Blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil {
				parts = append(parts, b.Text.Text)
			}
			for _, f := range b.Fields {
				parts = append(parts, f.Text)
			}
		case *slack.HeaderBlock:
			parts = append(parts, b.Text.Text)
		}
	}
	return strings.Join(parts, "\n")
}
