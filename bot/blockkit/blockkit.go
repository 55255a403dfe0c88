// Package blockkit renders handler responses as Slack Block Kit messages.
//
// It is the Slack counterpart of bot/terminal: it takes the platform-neutral
// values the handlers return (reports, findings, instance lists, errors) and
// turns them into blocks, leaving posting them to the Slack transport.
//
// Every string that comes from Redis or from a user (instance names, INFO
// values, evidence, summaries, MEMORY DOCTOR's text, error messages) goes
// through Escape before it is placed in mrkdwn, and every mrkdwn object is
// sent with verbatim set, so a server reporting redis_version:<!channel> shows
// that text instead of notifying a channel. The only links in a message are
// the ones the renderer makes itself from runbook Markdown.
//
// Slack's size limits (50 blocks a message, 3000 characters a section, 150 a
// header, ...) are enforced here, by splitting or cutting, not left to the
// API to reject.
package blockkit

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// Message is one Slack message: blocks plus the notification fallback text.
type Message struct {
	// Text is the fallback shown in notifications (escaped); always set and
	// at most 3000 characters.
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
	// Meta, when set, goes with the message as Slack message metadata:
	// invisible to people, returned by conversations.history. Alert
	// messages carry their alert's key in it, so a leader that lost its
	// record of a post finds the message instead of posting it again.
	Meta *Meta `json:"meta,omitempty"`
}

// Meta is machine-readable data a message carries (Slack's event_type and
// event_payload; this bot's payloads are flat strings).
type Meta struct {
	Type   string            `json:"event_type"`
	Fields map[string]string `json:"event_payload"`
}

// Reply is what one command posts: Messages[0] in the channel, the rest in
// its thread; Files are uploaded into the thread.
type Reply struct {
	Messages []Message `json:"messages"`
	Files    []File    `json:"files,omitempty"`
}

// File is an attachment uploaded with a reply, such as the CSV of a fleet
// too large for a message.
type File struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Comment is the message the file is shared with, when it is the
	// message itself (a chart in the channel) rather than part of a thread.
	Comment string `json:"comment,omitempty"`
	Content []byte `json:"content"`
}

// Slack's limits, from https://api.slack.com/reference/block-kit/blocks.
const (
	maxBlocks      = 50
	maxHeader      = 150
	maxSection     = 3000
	maxFields      = 10
	maxField       = 2000
	maxContextEls  = 10
	maxContextText = 3000
	maxButtonText  = 75
	maxButtonValue = 2000
	maxActionID    = 255
	maxBlockID     = 255
	maxFallback    = 3000
)

// Render turns whatever a verb returned into a reply. lib provides the
// runbooks that findings link to; with a nil lib findings get no "Full
// runbook" button.
func Render(resp *handlers.Response, lib *runbooks.Library) Reply {
	switch {
	case resp == nil:
		return Reply{Messages: []Message{RenderError(fmt.Errorf("empty response"))}}
	case resp.Help != nil:
		return Reply{Messages: renderHelp(resp.Help)}
	case resp.Verb == "list":
		return Reply{Messages: renderList(resp.Instances)}
	case resp.Verb == "fleet":
		return renderFleet(resp.Reports)
	case resp.Verb == "keys" && len(resp.Reports) == 1 && resp.Reports[0] != nil:
		return renderKeys(resp.Reports[0], lib)
	}
	var r Reply
	for _, rep := range resp.Reports {
		if rep != nil {
			r.Messages = append(r.Messages, renderReport(rep, lib)...)
		}
	}
	if len(r.Messages) == 0 {
		r.Messages = []Message{textMessage(":large_green_circle: Nothing to show for " + code(resp.Verb) + ".")}
	}
	return r
}

// mrkdwn is a mrkdwn text object. Verbatim stops Slack from turning bare
// URLs, #channel names and @mentions in the text into links: the text is
// shown as written, and only explicit <url|text> links made here are links.
func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, true)
}

func plainText(text string, max int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, plain(text, max), true, false)
}

func header(text string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(plainText(text, maxHeader))
}

// section is a section block of escaped mrkdwn, cut to Slack's limit.
func section(text string, opts ...slack.SectionBlockOption) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(cut(text, maxSection)), nil, nil, opts...)
}

// contextBlock is a context block with one mrkdwn element per non-empty
// text. Slack refuses a context block without elements: callers that may
// pass only empty texts check.
func contextBlock(texts ...string) *slack.ContextBlock {
	var els []slack.MixedElement
	for _, t := range texts {
		if t != "" && len(els) < maxContextEls {
			els = append(els, mrkdwn(cut(t, maxContextText)))
		}
	}
	return slack.NewContextBlock("", els...)
}

// textMessage is a message of one section whose text is also the fallback.
func textMessage(text string, extra ...slack.Block) Message {
	return Message{Text: cut(text, maxFallback), Blocks: append([]slack.Block{section(text)}, extra...)}
}

// messages collects blocks into messages of at most maxBlocks each. Blocks
// added together (a finding's divider, section, context and buttons) stay in
// the same message.
type messages struct {
	done []Message
	cur  []slack.Block
}

func (m *messages) add(group ...slack.Block) {
	if len(m.cur) > 0 && len(m.cur)+len(group) > maxBlocks {
		m.flush()
	}
	m.cur = append(m.cur, group...)
}

func (m *messages) flush() {
	if len(m.cur) > 0 {
		m.done = append(m.done, Message{Blocks: m.cur})
		m.cur = nil
	}
}

// finish returns the messages with their fallback texts: text for the
// first, text marked as a continuation for the rest.
func (m *messages) finish(text string) []Message {
	m.flush()
	for i := range m.done {
		t := text
		if len(m.done) > 1 {
			t = fmt.Sprintf("%s (%d/%d)", text, i+1, len(m.done))
		}
		m.done[i].Text = cut(t, maxFallback)
	}
	return m.done
}

// lineSections packs lines into section texts of at most perSection lines
// and maxSection characters; prefix starts the first one. Lines longer than
// a section are cut.
func lineSections(prefix string, lines []string, perSection int) []string {
	var out []string
	var b strings.Builder
	n := 0
	b.WriteString(prefix)
	for _, line := range lines {
		line = cut(line, maxSection-textLen(prefix)-1)
		if b.Len() > 0 && (n == perSection || textLen(b.String())+1+textLen(line) > maxSection) {
			out = append(out, b.String())
			b.Reset()
			n = 0
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
		n++
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

func severityEmoji(s handlers.Severity) string {
	switch s {
	case handlers.SeverityCritical:
		return ":red_circle:"
	case handlers.SeverityWarning:
		return ":large_orange_circle:"
	case handlers.SeverityInfo:
		return ":large_blue_circle:"
	case handlers.SeverityNone:
		return ":large_green_circle:"
	}
	return ":white_circle:"
}

func severityLabel(s handlers.Severity) string {
	if s == handlers.SeverityNone {
		return "OK"
	}
	return strings.ToUpper(s.String())
}
