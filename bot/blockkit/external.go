package blockkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// ExternalAlert is an alert from another alerting system (Alertmanager) as
// the bot shows it above its diagnosis. Every field but Status comes from
// the alert's sender and is escaped here.
type ExternalAlert struct {
	Source   string // "Alertmanager"
	Name     string // the alertname label
	Status   string // firing, resolved
	Receiver string
	// Instance is the configured instance the alert maps to; "" when it
	// maps to none.
	Instance string
	Severity string
	Summary  string
	StartsAt time.Time
	EndsAt   time.Time
}

// externalBlockPrefix marks the blocks RenderExternalDiagnosis puts above a
// diagnosis, so RenderExternalResolved can replace exactly those.
const externalBlockPrefix = "external-alert-"

// RenderExternalDiagnosis puts a header that names the alert above the
// diagnosis of its instance (diag, as Render returns it for the diagnose
// verb), in the same first message, so the alert, the verdict and its
// buttons are one message; the rest of diag goes to its thread as usual.
func RenderExternalDiagnosis(a ExternalAlert, diag Reply) Reply {
	head := externalHead(a, time.Time{})
	if len(diag.Messages) == 0 {
		diag.Messages = []Message{{Text: cut(Escape(externalTitle(a)), maxFallback)}}
	}
	first := diag.Messages[0]
	if len(first.Blocks)+len(head) > maxBlocks {
		// No room: the header is a message of its own, the diagnosis
		// follows in its thread.
		diag.Messages = append([]Message{{Text: cut(Escape(externalTitle(a)), maxFallback), Blocks: head}}, diag.Messages...)
		return diag
	}
	first.Blocks = append(head, first.Blocks...)
	first.Text = cut(Escape(externalTitle(a))+" · "+first.Text, maxFallback)
	diag.Messages[0] = first
	return diag
}

// RenderExternalResolved redraws a message RenderExternalDiagnosis made,
// stored as EncodeMessage wrote it, with its header saying the alert
// resolved at a.EndsAt (now when zero). The diagnosis and its buttons stay:
// they describe the instance when the alert fired.
func RenderExternalResolved(a ExternalAlert, stored []byte, now time.Time) (Message, error) {
	var raw struct {
		Text   string       `json:"text"`
		Blocks slack.Blocks `json:"blocks"`
	}
	if err := json.Unmarshal(stored, &raw); err != nil {
		return Message{}, fmt.Errorf("stored message: %w", err)
	}
	if len(raw.Blocks.BlockSet) == 0 {
		return Message{}, errors.New("stored message: no blocks")
	}
	at := a.EndsAt
	if at.IsZero() || at.After(now) {
		at = now
	}
	blocks := externalHead(a, at)
	for _, b := range raw.Blocks.BlockSet {
		if !strings.HasPrefix(blockID(b), externalBlockPrefix) {
			blocks = append(blocks, b)
		}
	}
	return Message{Text: cut(Escape(externalTitle(a)), maxFallback), Blocks: blocks}, nil
}

// EncodeMessage is how a posted message is kept to be redrawn later.
func EncodeMessage(m Message) ([]byte, error) {
	return json.Marshal(struct {
		Text   string        `json:"text"`
		Blocks []slack.Block `json:"blocks"`
	}{m.Text, m.Blocks})
}

// RenderExternalNote is the line a thread gets when the alert resolves.
func RenderExternalNote(a ExternalAlert, now time.Time) Message {
	at := a.EndsAt
	if at.IsZero() || at.After(now) {
		at = now
	}
	text := fmt.Sprintf(":large_green_circle: %s resolved at %s (%s).", a.Name, at.UTC().Format("2006-01-02 15:04 UTC"), a.Source)
	return RenderNote(text)
}

// RenderExternalUnmapped answers an alert that names no configured
// instance: which labels were tried, and that nothing was probed.
func RenderExternalUnmapped(a ExternalAlert, tried []string) Message {
	labels := "no label that names an instance"
	if len(tried) > 0 {
		quoted := make([]string, len(tried))
		for i, t := range tried {
			quoted[i] = code(truncRaw(t))
		}
		labels = strings.Join(quoted, ", ")
	}
	text := fmt.Sprintf(":grey_question: *%s* (%s, %s): no configured instance matches %s, so nothing was probed. Add a `redisbot_instance` label to the rule, or a label rule to alertmanager.webhook.label_rules.",
		inline(truncRaw(a.Name)), Escape(a.Source), Escape(a.Status), labels)
	return Message{Text: cut(Escape(externalTitle(a))+": no configured instance matches", maxFallback), Blocks: []slack.Block{section(text)}}
}

func externalTitle(a ExternalAlert) string {
	label := "FIRING"
	if a.Status == "resolved" {
		label = "RESOLVED"
	}
	title := label + " · " + a.Name
	if a.Instance != "" {
		title += " · " + a.Instance
	}
	return title
}

// externalHead is the header, context and summary naming the alert;
// resolvedAt zero means firing.
func externalHead(a ExternalAlert, resolvedAt time.Time) []slack.Block {
	if !resolvedAt.IsZero() {
		a.Status = "resolved"
	}
	h := header(externalTitle(a))
	h.BlockID = externalBlockPrefix + "header"
	facts := []string{Escape(a.Source) + " alert " + code(truncRaw(a.Name))}
	if a.Severity != "" {
		facts = append(facts, "severity "+code(truncRaw(a.Severity)))
	}
	if a.Receiver != "" {
		facts = append(facts, "receiver "+code(truncRaw(a.Receiver)))
	}
	if !a.StartsAt.IsZero() {
		facts = append(facts, "firing since "+a.StartsAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if !resolvedAt.IsZero() {
		facts = append(facts, "resolved at "+resolvedAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	ctx := contextBlock(strings.Join(facts, " · "))
	ctx.BlockID = externalBlockPrefix + "context"
	blocks := []slack.Block{h, ctx}
	if strings.TrimSpace(a.Summary) != "" {
		emoji := ":rotating_light:"
		if !resolvedAt.IsZero() {
			emoji = ":large_green_circle:"
		}
		s := section(emoji + " " + Escape(a.Summary))
		s.BlockID = externalBlockPrefix + "summary"
		blocks = append(blocks, s)
	}
	return blocks
}

// blockID returns a block's id, for the kinds RenderExternalDiagnosis puts
// in a header and any other kind a diagnosis holds.
func blockID(b slack.Block) string {
	switch b := b.(type) {
	case *slack.HeaderBlock:
		return b.BlockID
	case *slack.ContextBlock:
		return b.BlockID
	case *slack.SectionBlock:
		return b.BlockID
	}
	return ""
}
