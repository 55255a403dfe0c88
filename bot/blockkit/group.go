package blockkit

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

// GroupView is what a group alert message shows: the alerts of one finding
// that fired together in one channel and one sweep, as one message with one
// on-call mention instead of one message (and one page) each.
type GroupView struct {
	Finding     handlers.Finding // ID and Title; the members carry the rest
	Since       time.Time
	OnCallGroup string // mentioned while a member is critical and firing
	Members     []GroupMember
}

// GroupMember is one instance of a group message.
type GroupMember struct {
	Instance string
	Severity handlers.Severity
	// Firing is false once the member's episode ended (resolved): its line
	// is struck through and it no longer counts.
	Firing bool
	// Evidence is the finding's evidence from this sweep's probe, nil when
	// the finding was not present in it (Summary is shown instead).
	Evidence handlers.Evidence
	Summary  string
	Silenced bool
	AckedBy  string
}

// ActionAckGroup is a group message's Acknowledge all: every member still
// firing is acknowledged, as a click on each one's own Acknowledge would:
// ackgroup/<finding>, value the same finding; the group is the message
// clicked.
const ActionAckGroup = "ackgroup"

// groupLines bounds the member lines of a group message: with the header,
// the summary and the footer it stays well within Slack's 50 blocks, and a
// page of 50 instances is as many as anyone reads in a channel; the rest
// are named by count, and `/redis fleet` lists every instance.
const groupLines = 50

// groupLinesPerSection keeps a section of member lines within Slack's 3000
// characters (a line is cut to groupLineMax).
const (
	groupLinesPerSection = 10
	groupLineMax         = 400
	// factMax bounds each fact of a line, so a long one (an error from a
	// hostile server) leaves room for the sizes after it.
	factMax = 160
)

// RenderAlertGroup renders a group alert message: posted once when the
// group fires, edited in place as its members escalate, are silenced or
// acknowledged and resolve. Its one button acknowledges every member still
// firing (one set of buttons per instance would not fit); its footer says
// which commands act on one instance.
func RenderAlertGroup(v GroupView, now time.Time) Message {
	members := slices.Clone(v.Members)
	slices.SortStableFunc(members, worstFirst)
	firing, unacked, worst := 0, 0, handlers.SeverityNone
	for _, m := range members {
		if m.Firing {
			firing++
			worst = max(worst, m.Severity)
			if m.AckedBy == "" {
				unacked++
			}
		}
	}
	f := v.Finding
	label, emoji := severityLabel(worst), severityEmoji(worst)
	if firing == 0 {
		label, emoji = "RESOLVED", ":large_green_circle:"
	}
	title := fmt.Sprintf("%s · %d instances · %s", label, len(members), f.Title)
	status := fmt.Sprintf("%d instances fired together; %d of %d still firing.", len(members), firing, len(members))
	if firing == 0 {
		status = fmt.Sprintf("All %d instances resolved.", len(members))
	}
	text := fmt.Sprintf("%s *%s*  %s\n%s", emoji, inline(truncRaw(f.Title)), code(f.ID), status)
	if firing > 0 && worst == handlers.SeverityCritical && groupID.MatchString(v.OnCallGroup) {
		text = "<!subteam^" + v.OnCallGroup + "> " + text
	}
	blocks := []slack.Block{header(title), section(text)}
	var lines []string
	for _, m := range members[:min(len(members), groupLines)] {
		lines = append(lines, cut(memberLine(m), groupLineMax))
	}
	for _, s := range lineSections("", lines, groupLinesPerSection) {
		blocks = append(blocks, section(s))
	}
	if more := len(members) - groupLines; more > 0 {
		blocks = append(blocks, contextBlock(fmt.Sprintf("…and %d more: `/redis fleet` lists every instance.", more)))
	}
	since := "fired at " + v.Since.UTC().Format("2006-01-02 15:04 UTC")
	if firing == 0 {
		since += " · resolved at " + now.UTC().Format("2006-01-02 15:04 UTC")
	}
	blocks = append(blocks, contextBlock(since+" · runbook "+code(f.ID)))
	if firing > 0 {
		blocks = append(blocks, contextBlock("One instance: "+code("/redis diagnose NAME")+", "+code("/redis silence NAME "+truncRaw(f.ID)+" 1h")+"."))
	}
	if unacked > 0 && findingID.MatchString(f.ID) {
		ack := slack.NewButtonBlockElement(ActionAckGroup+"/"+f.ID, f.ID, plainText("Acknowledge all", maxButtonText))
		ack.Style = slack.StylePrimary
		blocks = append(blocks, slack.NewActionBlock("group-"+f.ID, ack))
	}
	return Message{Text: cut(title, maxFallback), Blocks: blocks}
}

// worstFirst orders members: firing before resolved, then by severity,
// then by the finding's first number (its most telling), then by name.
func worstFirst(a, b GroupMember) int {
	if a.Firing != b.Firing {
		if a.Firing {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(keyNumber(b.Evidence), keyNumber(a.Evidence)), cmp.Compare(a.Instance, b.Instance))
}

// keyNumber is the value of the evidence's first fact, 0 when it is not a
// number.
func keyNumber(ev handlers.Evidence) float64 {
	if len(ev) == 0 {
		return 0
	}
	switch v := ev[0].Value.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// memberLine is one instance of a group message: its severity, name, the
// key facts of its evidence (keyFacts) or its summary, and who handles
// it.
func memberLine(m GroupMember) string {
	name := code(truncRaw(m.Instance))
	if !m.Firing {
		return ":large_green_circle: ~" + name + "~ resolved"
	}
	line := severityEmoji(m.Severity) + " " + name + " " + severityLabel(m.Severity)
	key := keyFacts(m.Evidence)
	for _, x := range key {
		line += " · " + inline(truncRunes(x.Name, factMax)) + " " + inline(truncRunes(factText(x), factMax))
	}
	if len(key) < 2 && m.Summary != "" {
		// No evidence from this sweep (a member drawn again while its
		// finding clears): the summary has its latest numbers.
		line += " · " + inline(truncRaw(m.Summary))
	}
	if m.Silenced {
		line += " · :no_bell: silenced"
	}
	if m.AckedBy != "" {
		line += " · :eyes: acknowledged by " + user(m.AckedBy)
	}
	return line
}

// keyFacts are the evidence's first fact (its most telling) and its first
// two sizes, which say how close to its limit each instance is; without
// sizes, its second fact (a probe's error).
func keyFacts(ev handlers.Evidence) handlers.Evidence {
	if len(ev) == 0 {
		return nil
	}
	out := handlers.Evidence{ev[0]}
	for _, x := range ev[1:] {
		if len(out) == 3 {
			break
		}
		if n, ok := x.Value.(int64); ok && x.Text == handlers.HumanBytes(n) {
			out = append(out, x)
		}
	}
	if len(out) == 1 && len(ev) > 1 {
		out = append(out, ev[1])
	}
	return out
}

// factText is a fact as shown, a size also in bytes: "58.0 MiB
// (60817408 B)".
func factText(x handlers.Fact) string {
	if n, ok := x.Value.(int64); ok && x.Text == handlers.HumanBytes(n) && x.Text != strconv.FormatInt(n, 10)+" B" {
		return x.Text + " (" + strconv.FormatInt(n, 10) + " B)"
	}
	return x.Text
}

// findingID is the shape of a finding id; a click is checked against the
// catalogue (ParseClick).
var findingID = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// parseAckGroup checks an Acknowledge all click.
func parseAckGroup(finding, value string) (Click, error) {
	if _, ok := handlers.SpecFor(finding); !ok || value != finding {
		return Click{}, fmt.Errorf("bad group acknowledgement %q", finding)
	}
	return Click{Kind: ActionAckGroup, Finding: finding}, nil
}

// RenderAckedGroup confirms an Acknowledge all in the group's thread.
func RenderAckedGroup(by string, n int) Message {
	text := fmt.Sprintf(":eyes: Acknowledged by %s for %d instances: no reminders until they resolve.", user(by), n)
	return Message{Text: fmt.Sprintf("Acknowledged for %d instances: no reminders until they resolve.", n), Blocks: []slack.Block{contextBlock(text)}}
}

// GroupChange is what changed in a group during one sweep, for the one
// note in its thread: the instances that resolved, escalated or
// de-escalated, and whether the group's reminder is due.
type GroupChange struct {
	Resolved  []string
	Escalated []GroupMember // at their new severity
	Remind    bool
	// Firing and Of count the members still firing, after the changes.
	Firing, Of int
	Since      time.Time
}

// groupNoteNames bounds the instances a group note names in each list.
const groupNoteNames = 20

// RenderGroupNote is the one note a sweep posts in a group message's
// thread: what changed, and how many are still firing.
func RenderGroupNote(c GroupChange) Message {
	var parts []string
	if len(c.Resolved) > 0 {
		parts = append(parts, fmt.Sprintf(":large_green_circle: Resolved (%d): %s", len(c.Resolved), nameList(c.Resolved)))
	}
	bySeverity := map[handlers.Severity][]string{}
	for _, m := range c.Escalated {
		bySeverity[m.Severity] = append(bySeverity[m.Severity], m.Instance)
	}
	for _, sev := range []handlers.Severity{handlers.SeverityCritical, handlers.SeverityWarning, handlers.SeverityInfo} {
		if names := bySeverity[sev]; len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%s Now %s (%d): %s", severityEmoji(sev), sev, len(names), nameList(names)))
		}
	}
	state := fmt.Sprintf("%d of %d still firing", c.Firing, c.Of)
	if c.Remind {
		state = fmt.Sprintf("Still firing since %s: %d of %d", c.Since.UTC().Format("15:04 UTC"), c.Firing, c.Of)
	}
	if c.Firing == 0 {
		state = fmt.Sprintf("All %d resolved.", c.Of)
	}
	parts = append(parts, state)
	text := strings.Join(parts, "\n")
	return Message{Text: cut(strings.Join(parts, " · "), maxFallback), Blocks: []slack.Block{contextBlock(text)}}
}

// nameList names instances as code, at most groupNoteNames of them.
func nameList(names []string) string {
	names = slices.Sorted(slices.Values(names))
	var out []string
	for _, n := range names[:min(len(names), groupNoteNames)] {
		out = append(out, code(truncRaw(n)))
	}
	s := strings.Join(out, ", ")
	if more := len(names) - groupNoteNames; more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}
