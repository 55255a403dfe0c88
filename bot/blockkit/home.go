package blockkit

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

// HomeView is what the App Home tab shows one user.
type HomeView struct {
	// Swept is when the fleet was last swept; zero when it never was.
	Swept time.Time
	// Fleet is one summary per instance, from the last sweep's snapshots.
	Fleet []handlers.Summary
	// Approvals are the pending requests the user made or may decide.
	Approvals []ApprovalView
}

// homeFleetLines bounds the fleet list: a Home tab holds at most 100
// blocks, and past a few dozen rows the fleet verb is the better view.
const homeFleetLines = 45

// RenderHome renders the App Home tab: the fleet worst first, then the
// user's pending approvals.
func RenderHome(v HomeView, now time.Time) slack.HomeTabViewRequest {
	blocks := []slack.Block{header("Redis fleet")}
	switch {
	case v.Swept.IsZero():
		blocks = append(blocks, section("No sweep yet: the fleet shows here after the first one. Mention me with an instance name, or try `/redis fleet`."))
	default:
		fleet := slices.Clone(v.Fleet)
		slices.SortStableFunc(fleet, func(a, b handlers.Summary) int {
			return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.Instance, b.Instance))
		})
		var lines []string
		for i, s := range fleet {
			if i == homeFleetLines {
				lines = append(lines, fmt.Sprintf("… and %d more: `/redis fleet` lists them all", len(fleet)-i))
				break
			}
			lines = append(lines, fmt.Sprintf("%s %s %s", severityEmoji(s.Severity), code(truncRaw(s.Instance)), summaryLine(s)))
		}
		if len(lines) == 0 {
			lines = []string{"No instances in the last sweep."}
		}
		for _, text := range lineSections("", lines, 15) {
			blocks = append(blocks, section(text))
		}
		blocks = append(blocks, contextBlock(fmt.Sprintf("Last sweep %s ago", now.Sub(v.Swept).Round(time.Second))))
	}
	blocks = append(blocks, slack.NewDividerBlock(), header("Your pending approvals"))
	if len(v.Approvals) == 0 {
		blocks = append(blocks, section("Nothing waiting on you or requested by you."))
	}
	var lines []string
	for _, a := range v.Approvals {
		lines = append(lines, fmt.Sprintf("%s %s on %s, requested by %s, expires in %s", code(a.ID), inline(string(a.Plan.Action)),
			code(truncRaw(a.Instance)), user(a.RequestedBy), a.ExpiresAt.Sub(now).Round(time.Minute)))
	}
	for _, text := range lineSections("", lines, 15) {
		if len(blocks) == maxHomeBlocks-1 {
			break
		}
		blocks = append(blocks, section(text))
	}
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// maxHomeBlocks is Slack's limit for a Home tab view.
const maxHomeBlocks = 100
