package blockkit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

func TestRenderHome(t *testing.T) {
	resp := mustHandle(t, fixtureService(t), "fleet")
	var fleet []handlers.Summary
	// Reversed, so the order shown is the renderer's and not the fleet verb's.
	for i := len(resp.Reports) - 1; i >= 0; i-- {
		fleet = append(fleet, handlers.Summarize(resp.Reports[i]))
	}
	fleet = append(fleet, handlers.Summary{Instance: "<!channel>", Headline: "*bold* <https://evil|x>"})
	now := probed.Add(time.Minute)
	approvals := []ApprovalView{{ID: "a1", Instance: "cache-1", State: "pending", RequestedBy: "U0ASKER",
		ExpiresAt: now.Add(30 * time.Minute), Plan: remedy.Plan{Action: "memory-purge"}}}
	home := RenderHome(HomeView{Swept: probed, Fleet: fleet, Approvals: approvals}, now)
	if home.Type != "home" {
		t.Fatalf("view type %q, want home", home.Type)
	}
	if err := validate(Message{Text: "home", Blocks: home.Blocks.BlockSet}); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(home)
	if err != nil {
		t.Fatal(err)
	}
	text := string(unescapeHTML(js))
	worst := strings.Index(text, "`sessions`")
	healthy := strings.Index(text, "`queue`")
	if worst < 0 || healthy < 0 || worst > healthy {
		t.Errorf("fleet not worst first (sessions at %d, queue at %d):\n%s", worst, healthy, text)
	}
	for _, want := range []string{"Last sweep 1m0s ago", "Your pending approvals", "`a1` memory-purge on `cache-1`, requested by <@U0ASKER>, expires in 30m0s", "&lt;!channel&gt;"} {
		if !strings.Contains(text, want) {
			t.Errorf("home lacks %q:\n%s", want, text)
		}
	}
	for _, text := range mrkdwnTexts(Message{Blocks: home.Blocks.BlockSet}) {
		if strings.Contains(text, "<!channel>") || strings.Contains(text, "<https://evil") {
			t.Errorf("unescaped text from a snapshot: %q", text)
		}
	}
}

func TestRenderHomeBeforeAnySweep(t *testing.T) {
	home := RenderHome(HomeView{}, probed)
	js, _ := json.Marshal(home)
	for _, want := range []string{"No sweep yet", "Nothing waiting on you"} {
		if !strings.Contains(string(js), want) {
			t.Errorf("home lacks %q:\n%s", want, js)
		}
	}
}

// A fleet far past what a Home tab holds is cut with a pointer to the fleet
// verb, inside Slack's 100 blocks.
func TestRenderHomeBigFleet(t *testing.T) {
	var fleet []handlers.Summary
	var approvals []ApprovalView
	for range 500 {
		fleet = append(fleet, handlers.Summary{Instance: "cache", Severity: handlers.SeverityWarning, Headline: strings.Repeat("x", 200)})
		approvals = append(approvals, ApprovalView{ID: "a", Instance: strings.Repeat("y", 300), RequestedBy: "U1", Plan: remedy.Plan{Action: "memory-purge"}})
	}
	home := RenderHome(HomeView{Swept: probed, Fleet: fleet, Approvals: approvals}, probed)
	if n := len(home.Blocks.BlockSet); n > maxHomeBlocks {
		t.Fatalf("%d blocks, Slack takes %d", n, maxHomeBlocks)
	}
	js, _ := json.Marshal(home)
	if !strings.Contains(string(js), "and 455 more") {
		t.Errorf("big fleet not cut with a count")
	}
}
