package blockkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// Button kinds of the remediation flow.
const (
	// ActionRequest is a remediation button under a finding or an alert:
	// request/<action>/<finding index>/<option index>, value
	// {"instance","action"} and, for a config-set, "setting" and "value".
	ActionRequest = "request"
	// ActionApprove and ActionReject are on a pending approval:
	// approve/<approval id>, value the same id.
	ActionApprove = "approve"
	ActionReject  = "reject"
	// ActionRevert is on a done config-set: revert/<approval id>; it
	// requests (with approval) setting the old value back.
	ActionRevert = "revert"
)

// Click is a parsed button click.
type Click struct {
	Kind       string
	Runbook    RunbookRef       // runbook
	Instance   string           // request, silence, ack, diagnose
	Action     handlers.Action  // request
	Set        handlers.Setting // request of a config-set
	ApprovalID string           // approve, reject
	ScanID     string           // cancel-scan
	Finding    string           // silence
	Duration   time.Duration    // silence
}

// RequestRef is the value of a remediation button.
type RequestRef struct {
	Instance string          `json:"instance"`
	Action   handlers.Action `json:"action"`
	Setting  string          `json:"setting,omitempty"`
	Value    string          `json:"value,omitempty"`
}

var approvalID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// requestable are the actions a button can ask for; a config-set carries
// its setting and value, checked as /redis set checks them.
var requestable = []handlers.Action{handlers.ActionMemoryPurge, handlers.ActionDefragOn, handlers.ActionDefragOff,
	handlers.ActionBGSave, handlers.ActionFailover, handlers.ActionRestart, handlers.ActionConfigSet}

// ParseClick checks any button click that came back from Slack; ids and
// values are untrusted and validated as strictly as ParseAction does.
func ParseClick(actionID, value string) (Click, error) {
	if len(actionID) > maxActionID || len(value) > maxButtonValue {
		return Click{}, errors.New("button id or value too long")
	}
	kind, rest, _ := strings.Cut(actionID, "/")
	switch kind {
	case ActionRunbook:
		_, ref, err := ParseAction(actionID, value)
		return Click{Kind: kind, Runbook: ref}, err
	case ActionApprove, ActionReject, ActionRevert:
		if !approvalID.MatchString(rest) || value != rest {
			return Click{}, fmt.Errorf("bad approval id %q", rest)
		}
		return Click{Kind: kind, ApprovalID: rest}, nil
	case ActionSilence:
		return parseSilence(rest, value)
	case ActionAck:
		return parseAck(rest, value)
	case ActionAckGroup:
		return parseAckGroup(rest, value)
	case ActionDiagnose:
		if !instanceName.MatchString(rest) || value != rest {
			return Click{}, fmt.Errorf("bad instance %q", rest)
		}
		return Click{Kind: kind, Instance: rest}, nil
	case ActionCancelScan:
		if !approvalID.MatchString(rest) || value != rest {
			return Click{}, fmt.Errorf("bad scan id %q", rest)
		}
		return Click{Kind: kind, ScanID: rest}, nil
	case ActionRequest:
		action, _, _ := strings.Cut(rest, "/")
		var ref RequestRef
		dec := json.NewDecoder(strings.NewReader(value))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ref); err != nil {
			return Click{}, fmt.Errorf("request value: %w", err)
		}
		if string(ref.Action) != action || !slices.Contains(requestable, ref.Action) {
			return Click{}, fmt.Errorf("bad requested action %q", action)
		}
		if !instanceName.MatchString(ref.Instance) {
			return Click{}, fmt.Errorf("bad instance name %q", ref.Instance)
		}
		set, err := requestedSetting(ref)
		if err != nil {
			return Click{}, err
		}
		return Click{Kind: kind, Instance: ref.Instance, Action: ref.Action, Set: set}, nil
	}
	return Click{}, fmt.Errorf("unknown button kind %q", kind)
}

// requestedSetting checks a button's setting and value the way /redis set
// does: only a config-set has them, and only maxmemory (a size) and the
// policy (a known one) can be set.
func requestedSetting(ref RequestRef) (handlers.Setting, error) {
	if ref.Action != handlers.ActionConfigSet {
		if ref.Setting != "" || ref.Value != "" {
			return handlers.Setting{}, fmt.Errorf("%s takes no setting", ref.Action)
		}
		return handlers.Setting{}, nil
	}
	verb := map[string]string{"maxmemory": "maxmemory", "maxmemory-policy": "policy"}[ref.Setting]
	if verb == "" {
		return handlers.Setting{}, fmt.Errorf("bad setting %q", ref.Setting)
	}
	r, err := remedy.ParseRequest("set", []string{ref.Instance, verb, ref.Value})
	if err != nil {
		return handlers.Setting{}, err
	}
	return handlers.Setting{Name: r.Params["setting"], Value: r.Params["value"]}, nil
}

// requestButtons are the remediation buttons of a finding: the options the
// domain offers for this instance (handlers.ActionOptions), each labelled
// with its gain or value.
func requestButtons(rep *handlers.Report, i int, f handlers.Finding) []slack.BlockElement {
	if !instanceName.MatchString(rep.Instance) {
		return nil
	}
	var out []slack.BlockElement
	for j, o := range handlers.ActionOptions(rep, f) {
		value, err := json.Marshal(RequestRef{Instance: rep.Instance, Action: o.Action, Setting: o.Set.Name, Value: o.Set.Value})
		if err != nil || len(value) > maxButtonValue {
			continue
		}
		out = append(out, slack.NewButtonBlockElement(fmt.Sprintf("%s/%s/%d/%d", ActionRequest, o.Action, i, j), string(value),
			plainText(o.Label, maxButtonText)))
	}
	return out
}

// ApprovalView is what the renderer needs of an approval record.
type ApprovalView struct {
	ID          string
	Instance    string
	State       string
	RequestedBy string
	RequestedAt time.Time
	ExpiresAt   time.Time
	Required    int
	Approvers   []string
	Rejecter    string
	RejectNote  string
	Plan        remedy.Plan
	Outcome     *remedy.Outcome
}

var userID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// user renders a Slack user id as a mention; anything else as code, so a
// forged id cannot become a ping.
func user(id string) string {
	if userID.MatchString(id) {
		return "<@" + id + ">"
	}
	return code(truncRaw(id))
}

var stateEmoji = map[string]string{
	"pending": ":hourglass_flowing_sand:", "approved": ":white_check_mark:", "executing": ":gear:",
	"done": ":large_green_circle:", "failed": ":red_circle:", "rejected": ":no_entry_sign:", "expired": ":alarm_clock:",
	"refused": ":no_entry:", stateNoEffect: ":white_circle:",
}

// stateNoEffect is how a done approval whose action changed nothing reads:
// neutral, not a green success.
const stateNoEffect = "no effect"

// StateRefused is the view state of a request refused before it became an
// approval (its plan's blocking checks failed): it has no id and no buttons.
const StateRefused = "refused"

// RenderApproval renders an approval request: with Approve and Reject
// buttons while it is pending, as a record of what happened after, and,
// for StateRefused, as the plan with what failed and what would run
// instead.
func RenderApproval(v ApprovalView, now time.Time) Message {
	state := v.State
	if o := v.Outcome; state == "done" && o != nil && o.OK && o.NoEffect {
		state = stateNoEffect
	}
	title := fmt.Sprintf("%s on %s · %s", v.Plan.Action, v.Instance, strings.ToUpper(state))
	blocks := []slack.Block{header(title)}
	who := fmt.Sprintf("%s requested by %s", stateEmoji[state], user(v.RequestedBy))
	if approvalID.MatchString(v.ID) {
		who += " · approval " + code(v.ID)
	}
	switch v.State {
	case StateRefused:
		who += " · refused: a blocking precondition does not hold, nothing ran"
	case "pending":
		left := v.ExpiresAt.Sub(now).Round(time.Minute)
		who += fmt.Sprintf(" · needs %d approval(s) from an approver other than the requester · expires in %s", v.Required, left)
	case "rejected":
		who += " · rejected by " + user(v.Rejecter)
		if v.RejectNote != "" {
			who += ": " + Escape(oneLine(v.RejectNote))
		}
	}
	if len(v.Approvers) > 0 {
		names := make([]string, len(v.Approvers))
		for i, a := range v.Approvers {
			names[i] = user(a)
		}
		who += " · approved by " + strings.Join(names, ", ")
	}
	blocks = append(blocks, section(who))

	cmds := make([]string, len(v.Plan.Commands))
	for i, c := range v.Plan.Commands {
		cmds[i] = Escape(c)
	}
	if len(cmds) > 0 {
		label := "*Commands*"
		if v.State == StateRefused {
			label = "*Would have run*"
		}
		blocks = append(blocks, section(label+"\n"+fence+"\n"+strings.Join(cmds, "\n")+"\n"+fence))
	}
	if fields := evidenceFields(handlers.Evidence(v.Plan.Evidence)); len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*Evidence*"), fields, nil))
	}
	if len(v.Plan.Risks) > 0 {
		risks := make([]string, len(v.Plan.Risks))
		for i, r := range v.Plan.Risks {
			risks[i] = "• " + Escape(r)
		}
		blocks = append(blocks, section("*Risks*\n"+strings.Join(risks, "\n")))
	}
	var checks []string
	for _, c := range v.Plan.Checks {
		mark := ":white_check_mark:"
		if !c.OK && c.Blocking {
			mark = ":x:"
		} else if !c.OK {
			mark = ":warning:"
		}
		line := mark + " " + Escape(c.Name)
		if c.Detail != "" {
			line += " — " + Escape(c.Detail)
		}
		if !c.OK && c.Hint != "" {
			line += "\n        ↳ " + Escape(c.Hint)
		}
		checks = append(checks, line)
	}
	if len(checks) > 0 {
		for _, text := range lineSections("*Preconditions checked*", checks, 12) {
			blocks = append(blocks, section(text))
		}
	}
	if v.State == StateRefused && len(v.Plan.Alternatives) > 0 && instanceName.MatchString(v.Instance) {
		alts := make([]string, len(v.Plan.Alternatives))
		for i, a := range v.Plan.Alternatives {
			alts[i] = fmt.Sprintf("%s (%s)", code(string(a)), code("/redis "+verbOf(a)+" "+v.Instance))
		}
		blocks = append(blocks, section("*Consider instead*, its preconditions hold now: "+strings.Join(alts, ", ")))
	}
	if o := v.Outcome; o != nil {
		blocks = append(blocks, slack.NewDividerBlock(), section(outcomeText(*o)))
	}
	if old := v.Plan.Params["old"]; v.State == "done" && v.Plan.Action == handlers.ActionConfigSet && old != "" && old != "unknown" && approvalID.MatchString(v.ID) {
		revert := slack.NewButtonBlockElement(ActionRevert+"/"+v.ID, v.ID, plainText("Request revert to "+old, maxButtonText))
		blocks = append(blocks, slack.NewActionBlock("revert-"+v.ID, revert))
	}
	if v.State == "pending" && approvalID.MatchString(v.ID) {
		approve := slack.NewButtonBlockElement(ActionApprove+"/"+v.ID, v.ID, plainText("Approve", maxButtonText))
		approve.Style = slack.StylePrimary
		approve.Confirm = slack.NewConfirmationBlockObject(plainText("Run "+string(v.Plan.Action)+"?", 100),
			mrkdwn(cut("This runs on *"+Escape(v.Instance)+"* now:\n"+strings.Join(cmds, "\n"), 300)),
			plainText("Approve and run", 30), plainText("Cancel", 30))
		reject := slack.NewButtonBlockElement(ActionReject+"/"+v.ID, v.ID, plainText("Reject", maxButtonText))
		reject.Style = slack.StyleDanger
		reject.Confirm = slack.NewConfirmationBlockObject(plainText("Reject this request?", 100),
			mrkdwn("Nothing will run."), plainText("Reject", 30), plainText("Cancel", 30))
		blocks = append(blocks, slack.NewActionBlock("approval-"+v.ID, approve, reject))
	}
	return Message{Text: cut(title, maxFallback), Blocks: blocks}
}

func evidenceFields(ev handlers.Evidence) []*slack.TextBlockObject {
	var fields []*slack.TextBlockObject
	for _, f := range ev {
		if len(fields) == maxFields {
			break
		}
		fields = append(fields, mrkdwn(cut("*"+inline(truncRaw(f.Name))+"*\n"+Escape(f.Text), maxField)))
	}
	return fields
}

// verbOf is the chat verb that requests an action.
func verbOf(a handlers.Action) string {
	switch a {
	case handlers.ActionMemoryPurge:
		return "purge"
	case handlers.ActionBGSave:
		return "bgsave"
	}
	return string(a)
}

// outcomeText is what happened, with before -> after numbers. An action
// that ran and changed nothing reads neutral, not as a green success.
func outcomeText(o remedy.Outcome) string {
	mark := ":large_green_circle: *Done*"
	switch {
	case !o.OK:
		mark = ":red_circle: *Failed*"
	case o.NoEffect:
		mark = ":white_circle: *No effect*"
	}
	lines := []string{mark + ": " + Escape(o.Message) + fmt.Sprintf(" (%s)", o.Duration.Round(time.Millisecond))}
	for _, b := range o.Before {
		if a, ok := handlers.Evidence(o.After).Get(b.Name); ok {
			lines = append(lines, fmt.Sprintf("• %s: %s → %s", inline(b.Name), Escape(b.Text), Escape(a.Text)))
		}
	}
	for _, k := range sortedKeys(o.Details) {
		lines = append(lines, fmt.Sprintf("• %s: %s", inline(k), Escape(oneLine(o.Details[k]))))
	}
	return strings.Join(lines, "\n")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// RenderAuditLine is one step of an approval's trail, posted in its thread.
func RenderAuditLine(at time.Time, kind, actor, detail string) Message {
	text := fmt.Sprintf("%s · *%s* by %s", at.UTC().Format("15:04:05 UTC"), Escape(kind), user(actor))
	if detail != "" {
		text += " · " + Escape(oneLine(detail))
	}
	return Message{Text: cut(kind+" by "+actor, maxFallback), Blocks: []slack.Block{contextBlock(cut(text, maxContextText))}}
}

// AuditView is one audit record for /redis audit.
type AuditView struct {
	At                    time.Time
	Instance, Actor, Kind string
	ApprovalID, Summary   string
}

// RenderAudit lists audit records, newest first.
func RenderAudit(title string, records []AuditView) []Message {
	if len(records) == 0 {
		return []Message{textMessage("No audit records for " + Escape(title) + ".")}
	}
	lines := make([]string, len(records))
	for i, r := range records {
		lines[i] = fmt.Sprintf("%s · %s · *%s* by %s %s %s", r.At.UTC().Format("2006-01-02 15:04"), code(truncRaw(r.Instance)),
			Escape(r.Kind), user(r.Actor), code(truncRaw(r.ApprovalID)), Escape(oneLine(r.Summary)))
	}
	var m messages
	m.add(header("Audit · " + title))
	for _, text := range lineSections("", lines, 15) {
		m.add(section(text))
	}
	return m.finish("Audit · " + title)
}

// RenderApprovals lists approval requests (pending ones for /redis approvals).
func RenderApprovals(list []ApprovalView, now time.Time) []Message {
	if len(list) == 0 {
		return []Message{textMessage(":white_check_mark: No pending approval requests.")}
	}
	var m messages
	m.add(header(plural(len(list), "pending approval request")))
	var lines []string
	for _, v := range list {
		lines = append(lines, fmt.Sprintf("%s %s on %s, requested by %s, expires in %s", code(v.ID), inline(string(v.Plan.Action)),
			code(truncRaw(v.Instance)), user(v.RequestedBy), v.ExpiresAt.Sub(now).Round(time.Minute)))
	}
	for _, text := range lineSections("", lines, 15) {
		m.add(section(text))
	}
	return m.finish("Pending approvals")
}
