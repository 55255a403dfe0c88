package slacktest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Post is one thing the bot made visible in Slack.
type Post struct {
	// Method is "chat.postMessage", "chat.postEphemeral", "chat.update",
	// "response_url", "files.upload", or "ack" for the payload of a slash
	// command's ack, which Slack shows to the user like a response.
	Method   string
	Channel  string
	User     string // chat.postEphemeral: the recipient; response_url and ack: the user who acted
	TS       string // the message's ts; for response_url, the replaced message's ts, if any
	ThreadTS string
	Text     string
	Blocks   json.RawMessage // as posted; nil when none
	// ResponseType is "ephemeral" or "in_channel" for response_url and ack posts.
	ResponseType    string
	ReplaceOriginal bool
	DeleteOriginal  bool
	File            *File // files.upload
	// Metadata is the message metadata posted or set by chat.update, as
	// sent ({"event_type":...,"event_payload":{...}}); nil when none.
	Metadata json.RawMessage
	At       time.Time
}

// File is a file the bot uploaded with the files upload v2 flow.
type File struct {
	ID      string
	Name    string
	Title   string
	Content []byte
}

// String is a one-line summary for failure dumps.
func (p Post) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s channel=%s", p.Method, p.Channel)
	for _, f := range []struct{ k, v string }{
		{"user", p.User}, {"ts", p.TS}, {"thread_ts", p.ThreadTS}, {"response_type", p.ResponseType},
	} {
		if f.v != "" {
			fmt.Fprintf(&b, " %s=%s", f.k, f.v)
		}
	}
	if p.ReplaceOriginal {
		b.WriteString(" replace_original")
	}
	if p.DeleteOriginal {
		b.WriteString(" delete_original")
	}
	if p.File != nil {
		fmt.Fprintf(&b, " file=%q (%d bytes)", p.File.Name, len(p.File.Content))
	}
	fmt.Fprintf(&b, " text=%q", p.Text)
	if bt := p.BlocksText(); bt != "" {
		fmt.Fprintf(&b, " blocks=%q", bt)
	}
	return b.String()
}

// BlocksText returns every text in the blocks (headers, section text and
// fields, context elements, button labels, rich text), in reading order and
// joined with "\n", so that assertions need not know the block layout.
func (p Post) BlocksText() string {
	var blocks any
	if len(p.Blocks) == 0 || json.Unmarshal(p.Blocks, &blocks) != nil {
		return ""
	}
	var texts []string
	collectTexts(blocks, &texts)
	return strings.Join(texts, "\n")
}

// textKeys are visited first, in this order, so that texts come out in the
// order Slack shows them; other keys follow sorted.
var textKeys = []string{"text", "fields", "elements", "accessory", "element"}

func collectTexts(v any, texts *[]string) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			collectTexts(e, texts)
		}
	case map[string]any:
		if text, ok := v["text"].(string); ok {
			switch v["type"] {
			case "plain_text", "mrkdwn", "text":
				*texts = append(*texts, text)
			}
		}
		for _, k := range textKeys {
			if e, ok := v[k]; ok {
				collectTexts(e, texts)
			}
		}
		var rest []string
		for k := range v {
			if !slices.Contains(textKeys, k) {
				rest = append(rest, k)
			}
		}
		slices.Sort(rest)
		for _, k := range rest {
			collectTexts(v[k], texts)
		}
	}
}
