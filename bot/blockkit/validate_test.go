package blockkit

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// validate checks a message against Slack's documented Block Kit limits
// (https://api.slack.com/reference/block-kit/blocks), so a message that
// would be refused with invalid_blocks fails a test instead of a post.
func validate(m Message) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if m.Text == "" || textLen(m.Text) > maxFallback {
		bad("fallback text has %d characters; want 1 to %d", textLen(m.Text), maxFallback)
	}
	if err := checkText(m.Text); err != nil {
		bad("fallback text: %v", err)
	}
	if len(m.Blocks) == 0 || len(m.Blocks) > maxBlocks {
		bad("%d blocks; want 1 to %d", len(m.Blocks), maxBlocks)
	}
	blockIDs := map[string]bool{}
	actionIDs := map[string]bool{}
	text := func(where string, t *slack.TextBlockObject, max int, wantType string) {
		switch {
		case t == nil:
			bad("%s: no text", where)
			return
		case wantType != "" && t.Type != wantType:
			bad("%s: text type %q, want %q", where, t.Type, wantType)
		case t.Type != slack.MarkdownType && t.Type != slack.PlainTextType:
			bad("%s: text type %q", where, t.Type)
		case t.Type == slack.MarkdownType && (t.Emoji != nil || !t.Verbatim):
			bad("%s: mrkdwn must be verbatim and carry no emoji flag", where)
		}
		if n := textLen(t.Text); n == 0 || n > max {
			bad("%s: text has %d characters; want 1 to %d", where, n, max)
		}
		if strings.TrimSpace(t.Text) == "" {
			bad("%s: text is blank", where)
		}
		if err := checkText(t.Text); err != nil {
			bad("%s: %v", where, err)
		}
	}
	for i, b := range m.Blocks {
		where := fmt.Sprintf("block %d (%s)", i, b.BlockType())
		if id := b.ID(); id != "" {
			if len(id) > maxBlockID {
				bad("%s: block_id is %d long", where, len(id))
			}
			if blockIDs[id] {
				bad("%s: block_id %q repeats", where, id)
			}
			blockIDs[id] = true
		}
		switch b := b.(type) {
		case *slack.HeaderBlock:
			text(where, b.Text, maxHeader, slack.PlainTextType)
		case *slack.DividerBlock:
		case *slack.SectionBlock:
			if b.Text == nil && len(b.Fields) == 0 {
				bad("%s: neither text nor fields", where)
			}
			if b.Text != nil {
				text(where, b.Text, maxSection, "")
			}
			if len(b.Fields) > maxFields {
				bad("%s: %d fields; the limit is %d", where, len(b.Fields), maxFields)
			}
			for j, f := range b.Fields {
				text(fmt.Sprintf("%s field %d", where, j), f, maxField, "")
			}
		case *slack.ContextBlock:
			els := b.ContextElements.Elements
			if len(els) == 0 || len(els) > maxContextEls {
				bad("%s: %d elements; want 1 to %d", where, len(els), maxContextEls)
			}
			for j, el := range els {
				t, ok := el.(*slack.TextBlockObject)
				if !ok {
					bad("%s element %d: %T", where, j, el)
					continue
				}
				text(fmt.Sprintf("%s element %d", where, j), t, maxContextText, "")
			}
		case *slack.ActionBlock:
			if b.Elements == nil || len(b.Elements.ElementSet) == 0 || len(b.Elements.ElementSet) > 25 {
				bad("%s: want 1 to 25 elements", where)
				continue
			}
			for j, el := range b.Elements.ElementSet {
				btn, ok := el.(*slack.ButtonBlockElement)
				if !ok {
					bad("%s element %d: %T", where, j, el)
					continue
				}
				text(fmt.Sprintf("%s button %d", where, j), btn.Text, maxButtonText, slack.PlainTextType)
				if len(btn.Value) > maxButtonValue {
					bad("%s button %d: value is %d long", where, j, len(btn.Value))
				}
				if btn.ActionID == "" || len(btn.ActionID) > maxActionID {
					bad("%s button %d: action_id %q", where, j, btn.ActionID)
				}
				if actionIDs[btn.ActionID] {
					bad("%s button %d: action_id %q repeats", where, j, btn.ActionID)
				}
				actionIDs[btn.ActionID] = true
			}
		default:
			bad("%s: unexpected block %T", where, b)
		}
	}
	return errors.Join(errs...)
}

// checkText refuses invalid UTF-8 and control characters other than
// newline and tab in text sent to Slack.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("invalid UTF-8")
	}
	for _, r := range s {
		if unsafeRune(r) {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// mrkdwnTexts returns every text of a message that Slack parses as mrkdwn:
// the fallback and all mrkdwn objects.
func mrkdwnTexts(m Message) []string {
	out := []string{m.Text}
	add := func(t *slack.TextBlockObject) {
		if t != nil && t.Type == slack.MarkdownType {
			out = append(out, t.Text)
		}
	}
	for _, b := range m.Blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			add(b.Text)
			for _, f := range b.Fields {
				add(f)
			}
		case *slack.ContextBlock:
			for _, el := range b.ContextElements.Elements {
				if t, ok := el.(*slack.TextBlockObject); ok {
					add(t)
				}
			}
		}
	}
	return out
}

// links returns the <...> tokens of a mrkdwn text, and false when a '<'
// is never closed. A raw '>' alone is harmless (it starts block quotes).
func links(text string) ([]string, bool) {
	var out []string
	for {
		i := strings.IndexByte(text, '<')
		if i < 0 {
			return out, true
		}
		j := strings.IndexByte(text[i:], '>')
		if j < 0 {
			return out, false
		}
		out = append(out, text[i:i+j+1])
		text = text[i+j+1:]
	}
}
