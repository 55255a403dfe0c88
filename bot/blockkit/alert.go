package blockkit

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

func hasRunbook(lib *runbooks.Library, id string) bool { _, ok := lib.Get(id); return ok }

// Button kinds of an alert message.
const (
	// ActionSilence is the Snooze and Silence buttons of an alert, and the
	// confirmation of a long typed silence: silence/<finding>/<duration>,
	// value {"instance","finding","duration"}; finding AllFindings
	// silences every finding of the instance.
	ActionSilence = "silence"
	// ActionAck acknowledges a firing alert: ack/<finding>, value
	// {"instance","finding"}. Reminders stop until it resolves.
	ActionAck = "ack"
	// ActionDiagnose diagnoses an instance, in the thread of the message
	// the button is on (an alert, a fleet row): diagnose/<instance>, value
	// the same name.
	ActionDiagnose = "diagnose"
)

// AllFindings is the finding of a silence that covers every finding of an
// instance, those that fire later included.
const AllFindings = "*"

// SilenceRef is the value of a Snooze or Silence button.
type SilenceRef struct {
	Instance string `json:"instance"`
	Finding  string `json:"finding"`
	Duration string `json:"duration"`
}

// AlertRef is the value of an Acknowledge button.
type AlertRef struct {
	Instance string `json:"instance"`
	Finding  string `json:"finding"`
}

// silenceButtons are what an alert offers; a typed silence may be any
// duration up to MaxSilence.
var silenceButtons = []struct{ duration, label string }{{"1h", "Snooze 1h"}, {"24h", "Snooze 1d"}, {"168h", "Silence 7d"}}

// Silence bounds: a longer silence than LongSilence asks for a
// confirmation first, as an alert that stays quiet for days is easy to
// forget.
const (
	MinSilence  = time.Minute
	MaxSilence  = 30 * 24 * time.Hour
	LongSilence = 24 * time.Hour
)

var groupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)

// AlertView is what an alert message shows.
type AlertView struct {
	Instance    string
	Finding     handlers.Finding
	State       string // firing, resolved
	Since       time.Time
	OnCallGroup string // mentioned when critical and firing
	Report      *handlers.Report
	// Silence and Ack say who is handling a firing alert; nil when nobody.
	Silence *SilenceMark
	Ack     *AckMark
}

// SilenceMark is the silence an alert message shows.
type SilenceMark struct {
	ID, By string
	Until  time.Time
	// AllFindings: the silence covers every finding of the instance.
	AllFindings bool
}

// AckMark is the acknowledgement an alert message shows.
type AckMark struct {
	By string
	At time.Time
}

// RenderAlert renders one alert message: posted when it fires, edited in
// place when it escalates, when someone silences or acknowledges it and
// when it resolves (green, no buttons).
func RenderAlert(v AlertView, lib *runbooks.Library, now time.Time) Message {
	f := v.Finding
	label, emoji := severityLabel(f.Severity), severityEmoji(f.Severity)
	if v.State == "resolved" {
		label, emoji = "RESOLVED", ":large_green_circle:"
	}
	title := fmt.Sprintf("%s · %s · %s", label, v.Instance, f.Title)
	blocks := []slack.Block{header(title)}
	summary, evidence := f.Summary, f.Evidence
	if v.State == "resolved" {
		summary, evidence = resolvedNow(v.Report)
	}
	text := fmt.Sprintf("%s *%s*  %s\n%s", emoji, inline(truncRaw(f.Title)), code(f.ID), cut(Escape(summary), maxSection/2))
	if v.State != "resolved" && f.Severity == handlers.SeverityCritical && groupID.MatchString(v.OnCallGroup) {
		text = "<!subteam^" + v.OnCallGroup + "> " + text
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(cut(text, maxSection)), evidenceFields(evidence), nil))
	since := "firing since " + v.Since.UTC().Format("2006-01-02 15:04 UTC")
	if v.State == "resolved" {
		since = "resolved at " + now.UTC().Format("2006-01-02 15:04 UTC")
	}
	blocks = append(blocks, contextBlock(since+" · runbook "+code(f.ID)+" · "+code(truncRaw(v.Instance))))
	if v.State == "resolved" || !instanceName.MatchString(v.Instance) {
		return Message{Text: cut(title, maxFallback), Blocks: blocks}
	}
	if marks := handlingMarks(v); len(marks) > 0 {
		blocks = append(blocks, contextBlock(marks...))
	}
	blocks = append(blocks, slack.NewActionBlock("alert-"+f.ID, alertButtons(v, lib)...))
	if v.Report != nil {
		if buttons := requestButtons(v.Report, 0, f); len(buttons) > 0 {
			blocks = append(blocks, slack.NewActionBlock("alert-actions-"+f.ID, buttons...))
		}
	}
	return Message{Text: cut(title, maxFallback), Blocks: blocks}
}

// handlingMarks say who silenced or acknowledged a firing alert, and until
// when.
func handlingMarks(v AlertView) []string {
	var marks []string
	if x := v.Silence; x != nil {
		what := "Silenced"
		if x.AllFindings {
			what = "Silenced, with every finding on " + code(truncRaw(v.Instance)) + ","
		}
		mark := fmt.Sprintf(":no_bell: %s by %s until %s", what, user(x.By), x.Until.UTC().Format("2006-01-02 15:04 UTC"))
		if silenceID.MatchString(x.ID) {
			mark += " · silence " + code(x.ID)
		}
		marks = append(marks, mark)
	}
	if a := v.Ack; a != nil {
		marks = append(marks, fmt.Sprintf(":eyes: Acknowledged by %s at %s: no reminders until it resolves", user(a.By), a.At.UTC().Format("2006-01-02 15:04 UTC")))
	}
	return marks
}

// alertButtons are an alert's own buttons: its runbook, a diagnosis now,
// acknowledge (until someone has), snooze and silence.
func alertButtons(v AlertView, lib *runbooks.Library) []slack.BlockElement {
	f := v.Finding
	var buttons []slack.BlockElement
	if rb, err := json.Marshal(RunbookRef{Instance: v.Instance, Finding: f.ID}); err == nil && lib != nil && hasRunbook(lib, f.ID) {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionRunbook+"/"+f.ID+"/0", string(rb), plainText("Full runbook", maxButtonText)))
	}
	buttons = append(buttons, diagnoseButton(v.Instance))
	if v.Ack == nil {
		value, _ := json.Marshal(AlertRef{Instance: v.Instance, Finding: f.ID})
		ack := slack.NewButtonBlockElement(ActionAck+"/"+f.ID, string(value), plainText("Acknowledge", maxButtonText))
		ack.Style = slack.StylePrimary
		buttons = append(buttons, ack)
	}
	for _, b := range silenceButtons {
		value, _ := json.Marshal(SilenceRef{Instance: v.Instance, Finding: f.ID, Duration: b.duration})
		btn := slack.NewButtonBlockElement(ActionSilence+"/"+f.ID+"/"+b.duration, string(value), plainText(b.label, maxButtonText))
		if d, _ := time.ParseDuration(b.duration); d > LongSilence {
			btn.Confirm = silenceConfirm(v.Instance, f.ID, d)
		}
		buttons = append(buttons, btn)
	}
	return buttons
}

// diagnoseButton diagnoses an instance in the thread of its message.
func diagnoseButton(instance string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(ActionDiagnose+"/"+instance, instance, plainText("Diagnose", maxButtonText))
}

// silenceConfirm is the dialog in front of a long silence.
func silenceConfirm(instance, finding string, d time.Duration) *slack.ConfirmationBlockObject {
	return slack.NewConfirmationBlockObject(plainText("Silence for "+Duration(d)+"?", 100),
		mrkdwn(cut(silenceWhat(instance, finding)+" posts nothing for "+Duration(d)+", and the alert message says who silenced it.", 300)),
		plainText("Silence "+Duration(d), 30), plainText("Cancel", 30))
}

// silenceWhat names what a silence covers, escaped.
func silenceWhat(instance, finding string) string {
	if finding == AllFindings || finding == "" {
		return "Every finding on " + code(truncRaw(instance)) + ", those that fire later included,"
	}
	return code(truncRaw(finding)) + " on " + code(truncRaw(instance))
}

// RenderSilenceConfirm asks before a typed silence longer than
// LongSilence: nothing is silenced until the button is clicked.
func RenderSilenceConfirm(instance, finding string, d time.Duration, now time.Time) Message {
	if finding == "" {
		finding = AllFindings
	}
	text := fmt.Sprintf(":warning: %s would stay quiet for %s, until %s. Silence it?", silenceWhat(instance, finding), Duration(d),
		now.Add(d).UTC().Format("2006-01-02 15:04 UTC"))
	blocks := []slack.Block{section(text)}
	if instanceName.MatchString(instance) {
		value, _ := json.Marshal(SilenceRef{Instance: instance, Finding: finding, Duration: d.String()})
		btn := slack.NewButtonBlockElement(ActionSilence+"/"+finding+"/"+d.String(), string(value), plainText("Silence for "+Duration(d), maxButtonText))
		btn.Style = slack.StyleDanger
		blocks = append(blocks, slack.NewActionBlock("silence-confirm", btn))
	}
	return Message{Text: cut("Silence "+instance+" for "+Duration(d)+"?", maxFallback), Blocks: blocks}
}

// Duration is a duration as people write it: "7d", "4h", "1d 12h", "30m".
func Duration(d time.Duration) string {
	d = d.Round(time.Minute)
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	hours, mins := rest/time.Hour, rest%time.Hour/time.Minute
	var parts []string
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
	}
	if hours > 0 {
		parts = append(parts, fmt.Sprintf("%dh", hours))
	}
	if mins > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%dm", mins))
	}
	return strings.Join(parts, " ")
}

// RenderSilenced confirms a silence in the alert's thread or to its
// author: what it covers, who set it, until when, and its id.
func RenderSilenced(id, instance, finding, by string, d time.Duration, until time.Time) Message {
	text := fmt.Sprintf(":no_bell: %s silenced by %s for %s, until %s · silence %s", silenceWhat(instance, finding), user(by), Duration(d),
		until.UTC().Format("2006-01-02 15:04 UTC"), code(truncRaw(id)))
	return Message{Text: cut(fmt.Sprintf("Silenced %s on %s for %s", findingOrEvery(finding), instance, Duration(d)), maxFallback),
		Blocks: []slack.Block{contextBlock(cut(text, maxContextText))}}
}

// RenderUnsilenced says a silence was lifted, and by whom.
func RenderUnsilenced(id, instance, finding, by string) Message {
	text := fmt.Sprintf(":bell: %s no longer silenced: silence %s lifted by %s", silenceWhat(instance, finding), code(truncRaw(id)), user(by))
	return Message{Text: cut(fmt.Sprintf("Unsilenced %s on %s", findingOrEvery(finding), instance), maxFallback),
		Blocks: []slack.Block{contextBlock(cut(text, maxContextText))}}
}

// RenderSilenceExpired is the note in an alert's thread when its silence
// ends.
func RenderSilenceExpired(by string) Message {
	return Message{Text: "The silence has expired; alerts for this finding post again.",
		Blocks: []slack.Block{contextBlock(":bell: The silence set by " + user(by) + " has expired; alerts for this finding post again.")}}
}

// RenderAcked confirms an acknowledgement in the alert's thread.
func RenderAcked(by string) Message {
	return Message{Text: "Acknowledged: no reminders until it resolves.",
		Blocks: []slack.Block{contextBlock(":eyes: Acknowledged by " + user(by) + ": no reminders until it resolves; a higher severity still posts.")}}
}

func findingOrEvery(finding string) string {
	if finding == "" || finding == AllFindings {
		return "every finding"
	}
	return finding
}

// RenderNote is a one-line message for an alert's thread (escalated,
// still firing, resolved, silence expired).
func RenderNote(text string) Message {
	return Message{Text: cut(text, maxFallback), Blocks: []slack.Block{contextBlock(cut(Escape(text), maxContextText))}}
}

// parseSilence checks a Snooze, Silence or confirmation click.
func parseSilence(rest, value string) (Click, error) {
	finding, dur, _ := strings.Cut(rest, "/")
	var ref SilenceRef
	if err := decodeStrict(value, &ref); err != nil {
		return Click{}, fmt.Errorf("silence value: %w", err)
	}
	d, err := time.ParseDuration(dur)
	if ref.Finding != finding || ref.Duration != dur || err != nil || d < MinSilence || d > MaxSilence {
		return Click{}, fmt.Errorf("bad silence button %q", rest)
	}
	if _, ok := handlers.SpecFor(finding); (!ok && finding != AllFindings) || !instanceName.MatchString(ref.Instance) {
		return Click{}, fmt.Errorf("bad silence target %q %q", ref.Instance, finding)
	}
	if finding == AllFindings {
		finding = ""
	}
	return Click{Kind: ActionSilence, Instance: ref.Instance, Finding: finding, Duration: d}, nil
}

// parseAck checks an Acknowledge click.
func parseAck(finding, value string) (Click, error) {
	var ref AlertRef
	if err := decodeStrict(value, &ref); err != nil {
		return Click{}, fmt.Errorf("ack value: %w", err)
	}
	if _, ok := handlers.SpecFor(finding); !ok || ref.Finding != finding || !instanceName.MatchString(ref.Instance) {
		return Click{}, fmt.Errorf("bad ack target %q %q", ref.Instance, finding)
	}
	return Click{Kind: ActionAck, Instance: ref.Instance, Finding: finding}, nil
}

// decodeStrict reads one JSON object with no unknown fields.
func decodeStrict(value string, v any) error {
	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var silenceID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// SilenceView is one silence for /redis silences.
type SilenceView struct {
	ID, Instance, Finding, CreatedBy string
	Until                            time.Time
}

// RenderSilences lists the active silences: what each covers, who set it
// (a mention), when it ends, and its id for unsilence.
func RenderSilences(list []SilenceView, now time.Time) []Message {
	if len(list) == 0 {
		return []Message{textMessage("No active silences.")}
	}
	var lines []string
	for _, s := range list {
		what := "every finding"
		if s.Finding != "" {
			what = code(truncRaw(s.Finding))
		}
		lines = append(lines, fmt.Sprintf("%s · %s on %s · by %s · until %s (%s more)", code(truncRaw(s.ID)), what, code(truncRaw(s.Instance)), user(s.CreatedBy),
			s.Until.UTC().Format("2006-01-02 15:04 UTC"), Duration(s.Until.Sub(now))))
	}
	var m messages
	m.add(header(plural(len(list), "active silence")))
	for _, text := range lineSections("", lines, 15) {
		m.add(section(text))
	}
	return m.finish("Active silences")
}
