package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"
)

// Slack's Block Kit limits for messages
// (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxBlocks          = 50
	maxBlockID         = 255
	maxHeaderText      = 150
	maxSectionText     = 3000
	maxFields          = 10
	maxFieldText       = 2000
	maxContextElements = 10
	maxActionsElements = 25
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxButtonURL       = 3000
	maxActionID        = 255
	maxMessageText     = 40000
)

// mentionPattern matches the mrkdwn sequences that notify people: special
// mentions, user-group mentions and user mentions, with or without a label.
var mentionPattern = regexp.MustCompile(`<(?:!(?:channel|here|everyone)|!subteam\^[A-Za-z0-9]+|@[UWB][A-Za-z0-9]+)(?:\|[^>]*)?>`)

// checkBlocks reports the Block Kit limits a message's blocks break, and an
// error if they are not a JSON array of objects. allowed says which raw
// mentions the test permits.
func checkBlocks(raw json.RawMessage, allowed func(mention string) bool) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, err
	}
	c := blockChecker{allowed: allowed, blockIDs: map[string]bool{}}
	if len(blocks) > maxBlocks {
		c.addf("%d blocks, limit %d", len(blocks), maxBlocks)
	}
	for i, b := range blocks {
		c.block(fmt.Sprintf("blocks[%d]", i), b)
	}
	return c.problems, nil
}

// checkText reports the problems of a message's top-level text, which Slack
// renders as mrkdwn and truncates.
func checkText(text string, allowed func(mention string) bool) []string {
	c := blockChecker{allowed: allowed}
	if n := utf8.RuneCountInString(text); n > maxMessageText {
		c.addf("text is %d characters; Slack truncates it at %d", n, maxMessageText)
	}
	c.mentionsIn("text", text)
	return c.problems
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

type blockChecker struct {
	allowed  func(string) bool
	blockIDs map[string]bool
	problems []string
}

func (c *blockChecker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *blockChecker) limit(at, s string, limit int) {
	if n := utf8.RuneCountInString(s); n > limit {
		c.addf("%s is %d characters, limit %d", at, n, limit)
	}
}

func (c *blockChecker) block(at string, b map[string]any) {
	typ, _ := b["type"].(string)
	at = fmt.Sprintf("%s (%s)", at, typ)
	if id, ok := b["block_id"].(string); ok {
		c.limit(at+" block_id", id, maxBlockID)
		if c.blockIDs[id] {
			c.addf("%s block_id %q is not unique in the message", at, id)
		}
		c.blockIDs[id] = true
	}
	// Slack wants action_id unique among the elements of one block.
	actionIDs := map[string]bool{}
	switch typ {
	case "header":
		kind, text := textObject(b["text"])
		if kind != "plain_text" {
			c.addf("%s text must be plain_text, not %q", at, kind)
		}
		c.limit(at+" text", text, maxHeaderText)
	case "section":
		if t, ok := b["text"]; ok {
			_, text := textObject(t)
			c.limit(at+" text", text, maxSectionText)
		}
		fields, _ := b["fields"].([]any)
		if len(fields) > maxFields {
			c.addf("%s has %d fields, limit %d", at, len(fields), maxFields)
		}
		for j, f := range fields {
			_, text := textObject(f)
			c.limit(fmt.Sprintf("%s fields[%d]", at, j), text, maxFieldText)
		}
		if acc, ok := b["accessory"].(map[string]any); ok {
			c.element(at+" accessory", acc, actionIDs)
		}
	case "context":
		if els, _ := b["elements"].([]any); len(els) > maxContextElements {
			c.addf("%s has %d elements, limit %d", at, len(els), maxContextElements)
		}
	case "actions":
		els, _ := b["elements"].([]any)
		if len(els) > maxActionsElements {
			c.addf("%s has %d elements, limit %d", at, len(els), maxActionsElements)
		}
		for j, e := range els {
			if el, ok := e.(map[string]any); ok {
				c.element(fmt.Sprintf("%s elements[%d]", at, j), el, actionIDs)
			}
		}
	case "input":
		if el, ok := b["element"].(map[string]any); ok {
			c.element(at+" element", el, actionIDs)
		}
	}
	c.mentions(at, b)
}

func (c *blockChecker) element(at string, el map[string]any, actionIDs map[string]bool) {
	if id, ok := el["action_id"].(string); ok {
		c.limit(at+" action_id", id, maxActionID)
		if actionIDs[id] {
			c.addf("%s action_id %q is not unique in its block", at, id)
		}
		actionIDs[id] = true
	}
	if el["type"] != "button" {
		return
	}
	_, text := textObject(el["text"])
	c.limit(at+" text", text, maxButtonText)
	if v, ok := el["value"].(string); ok {
		c.limit(at+" value", v, maxButtonValue)
	}
	if u, ok := el["url"].(string); ok {
		c.limit(at+" url", u, maxButtonURL)
	}
}

// mentions checks every mrkdwn text object below v, in a stable order.
func (c *blockChecker) mentions(at string, v any) {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			c.mentions(fmt.Sprintf("%s[%d]", at, i), e)
		}
	case map[string]any:
		if text, ok := v["text"].(string); ok && v["type"] == "mrkdwn" {
			c.mentionsIn(at, text)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			c.mentions(at+"."+k, v[k])
		}
	}
}

func (c *blockChecker) mentionsIn(at, text string) {
	for _, m := range mentionPattern.FindAllString(text, -1) {
		if c.allowed == nil || !c.allowed(m) {
			c.addf("unescaped mention %s in %s", m, at)
		}
	}
}

// textObject returns the type and text of a Block Kit text object.
func textObject(v any) (kind, text string) {
	m, _ := v.(map[string]any)
	kind, _ = m["type"].(string)
	text, _ = m["text"].(string)
	return kind, text
}
