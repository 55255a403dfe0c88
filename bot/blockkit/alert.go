package blockkit

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

func hasRunbook(lib *runbooks.Library, id string) bool { _, ok := lib.Get(id); return ok }

// ActionSilence is the Snooze and Silence buttons of an alert:
// silence/<finding>/<duration>, value {"instance","finding","duration"}.
const ActionSilence = "silence"

// SilenceRef is the value of a Snooze or Silence button.
type SilenceRef struct {
	Instance string `json:"instance"`
	Finding  string `json:"finding"`
	Duration string `json:"duration"`
}

// silenceDurations are what the buttons offer; typed silences may differ.
var silenceDurations = []string{"1h", "24h", "168h"}

var groupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)

// AlertView is what an alert message shows.
type AlertView struct {
	Instance    string
	Finding     handlers.Finding
	State       string // firing, resolved
	Since       time.Time
	OnCallGroup string // mentioned when critical and firing
	Report      *handlers.Report
}

// RenderAlert renders one alert message: posted when it fires, edited in
// place when it escalates and when it resolves (green, no buttons).
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
	var buttons []slack.BlockElement
	if rb, err := json.Marshal(RunbookRef{Instance: v.Instance, Finding: f.ID}); err == nil && lib != nil && hasRunbook(lib, f.ID) {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionRunbook+"/"+f.ID+"/0", string(rb), plainText("Full runbook", maxButtonText)))
	}
	for i, d := range silenceDurations {
		value, _ := json.Marshal(SilenceRef{Instance: v.Instance, Finding: f.ID, Duration: d})
		label := map[int]string{0: "Snooze 1h", 1: "Snooze 1d", 2: "Silence 7d"}[i]
		buttons = append(buttons, slack.NewButtonBlockElement(ActionSilence+"/"+f.ID+"/"+d, string(value), plainText(label, maxButtonText)))
	}
	if v.Report != nil {
		buttons = append(buttons, requestButtons(v.Report, 0, f)...)
	}
	blocks = append(blocks, slack.NewActionBlock("alert-"+f.ID, buttons...))
	return Message{Text: cut(title, maxFallback), Blocks: blocks}
}

// RenderNote is a one-line message for an alert's thread (escalated,
// still firing, resolved, silence expired).
func RenderNote(text string) Message {
	return Message{Text: cut(text, maxFallback), Blocks: []slack.Block{contextBlock(cut(Escape(text), maxContextText))}}
}

// parseSilence checks a Snooze or Silence click.
func parseSilence(rest, value string) (Click, error) {
	finding, dur, _ := strings.Cut(rest, "/")
	var ref SilenceRef
	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ref); err != nil {
		return Click{}, fmt.Errorf("silence value: %w", err)
	}
	if ref.Finding != finding || ref.Duration != dur || !slices.Contains(silenceDurations, dur) {
		return Click{}, fmt.Errorf("bad silence button %q", rest)
	}
	if _, ok := handlers.SpecFor(finding); !ok || !instanceName.MatchString(ref.Instance) {
		return Click{}, fmt.Errorf("bad silence target %q %q", ref.Instance, finding)
	}
	d, _ := time.ParseDuration(dur)
	return Click{Kind: ActionSilence, Instance: ref.Instance, Finding: finding, Duration: d}, nil
}

// SilenceView is one silence for /redis silences.
type SilenceView struct {
	ID, Instance, Finding, CreatedBy string
	Until                            time.Time
}

// RenderSilences lists the active silences.
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
		lines = append(lines, fmt.Sprintf("%s on %s, by %s, for %s more (%s)", what, code(truncRaw(s.Instance)), user(s.CreatedBy),
			s.Until.Sub(now).Round(time.Minute), code(truncRaw(s.ID))))
	}
	var m messages
	m.add(header(plural(len(list), "active silence")))
	for _, text := range lineSections("", lines, 15) {
		m.add(section(text))
	}
	return m.finish("Active silences")
}
