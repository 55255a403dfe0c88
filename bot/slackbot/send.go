package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/store"
)

// Everything the bot sends to Slack leaves through this file: messages
// (chat.postMessage, chat.update, chat.postEphemeral, response_url) and
// file uploads. Each function redacts what it sends of every configured
// secret (Options.Redactor) right before the call, whatever rendered it:
// a report, an error, a key name, a restart command's output. One choke
// point, so a new message path cannot forget; a test holds the package's
// other files to it.
//
// It is also where scheduled work is fenced: a context that carries the
// leader lease's fence (store.WithFence, set by a sweep) is checked before
// every attempt of every call, the first and each retry after a 429's
// Retry-After or a network error alike. A leader paused while it waited
// (or for any other reason) past its lease finds out right before it
// would post, and posts nothing: the replica that took over has the
// lease and posts instead.

// post sends a reply: the first message in the channel (or the job's
// thread), the rest in its thread, files into the thread.
func (b *Bot) post(ctx context.Context, j job, reply blockkit.Reply) error {
	thread := j.threadTS
	for i, m := range reply.Messages {
		ts := thread
		if i > 0 && !b.opts.ThreadReplies && j.threadTS == "" {
			ts = ""
		}
		posted, err := b.postMessage(ctx, j.channel, ts, m)
		if err != nil {
			return fmt.Errorf("post reply: %w", err)
		}
		if thread == "" && b.opts.ThreadReplies {
			thread = posted
		}
	}
	for _, f := range reply.Files {
		if err := b.uploadFile(ctx, j.channel, thread, f); err != nil {
			return err
		}
	}
	return nil
}

// ephemeral answers only the user: through the command's response_url when
// there is one (it works in channels the bot is not in), else
// chat.postEphemeral.
func (b *Bot) ephemeral(ctx context.Context, j job, m blockkit.Message) error {
	m = b.redactMessage(m)
	if j.responseURL != "" && b.trustedHookURL(j.responseURL) {
		return b.retry(ctx, "response_url", b.fenced("response_url", func(ctx context.Context) error {
			return slack.PostWebhookContext(ctx, j.responseURL, &slack.WebhookMessage{
				Text: m.Text, Blocks: &slack.Blocks{BlockSet: m.Blocks}, ResponseType: slack.ResponseTypeEphemeral,
			})
		}))
	}
	return b.retry(ctx, "chat.postEphemeral", b.fenced("chat.postEphemeral", func(ctx context.Context) error {
		_, err := b.opts.API.PostEphemeralContext(ctx, j.channel, j.user,
			slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...), slack.MsgOptionTS(j.threadTS))
		return err
	}))
}

// postMessage posts m in channel, in threadTS's thread unless it is "",
// and returns the new message's ts.
//
// A message with metadata (an alert) is posted at most once: after an
// attempt that may have reached Slack (a network error, a 5xx; not a 429,
// which Slack answers without posting) the next attempt first looks for
// the message by its metadata and returns it if it is there.
func (b *Bot) postMessage(ctx context.Context, channel, threadTS string, m blockkit.Message) (string, error) {
	m = b.redactMessage(m)
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	if m.Meta != nil {
		opts = append(opts, metadataOption(*m.Meta))
	}
	var (
		ts        string
		uncertain bool // an earlier attempt may have posted
		since     = b.now().Add(-time.Minute)
	)
	err := b.retry(ctx, "chat.postMessage", b.fenced("chat.postMessage", func(ctx context.Context) error {
		if uncertain && m.Meta != nil {
			if found, ok, err := b.findMessage(ctx, channel, *m.Meta, since); err == nil && ok {
				b.log.InfoContext(ctx, "message already posted by an attempt whose answer was lost", "channel", channel, "ts", found)
				ts = found
				return nil
			}
		}
		var err error
		_, ts, err = b.opts.API.PostMessageContext(ctx, channel, opts...)
		var rl *slack.RateLimitedError
		uncertain = uncertain || (err != nil && !errors.As(err, &rl))
		return err
	}))
	return ts, err
}

// updateMessage replaces the message ts in channel with m, metadata
// included when m has some.
func (b *Bot) updateMessage(ctx context.Context, channel, ts string, m blockkit.Message) error {
	m = b.redactMessage(m)
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	if m.Meta != nil {
		opts = append(opts, metadataOption(*m.Meta))
	}
	return b.retry(ctx, "chat.update", b.fenced("chat.update", func(ctx context.Context) error {
		_, _, _, err := b.opts.API.UpdateMessageContext(ctx, channel, ts, opts...)
		return err
	}))
}

// metadataOption sends meta as the message's metadata.
func metadataOption(meta blockkit.Meta) slack.MsgOption {
	payload := make(map[string]any, len(meta.Fields))
	for k, v := range meta.Fields {
		payload[k] = v
	}
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: meta.Type, EventPayload: payload})
}

// historyPages bounds one Tagged read: 5 pages of 200 messages. An alert
// channel busier than that within the lookback is read in part, newest
// first.
const (
	historyPages    = 5
	historyPageSize = 200
)

// Tagged returns the messages of channel posted since since that carry
// metadata of type metaType, by ts (conversations.history, newest first,
// thread replies excluded as Slack excludes them). It needs the
// channels:history scope (groups:history for a private channel). The
// sweep asks it before posting an alert, under its fence.
func (b *Bot) Tagged(ctx context.Context, channel, metaType string, since time.Time) (map[string]blockkit.Meta, error) {
	out := map[string]blockkit.Meta{}
	cursor := ""
	for range historyPages {
		var page *slack.GetConversationHistoryResponse
		err := b.retry(ctx, "conversations.history", b.fenced("conversations.history", func(ctx context.Context) error {
			var err error
			page, err = b.opts.API.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channel, Cursor: cursor, Limit: historyPageSize, IncludeAllMetadata: true,
				Oldest: fmt.Sprintf("%d.000000", since.Unix()),
			})
			return err
		}))
		var refused slack.SlackErrorResponse
		if errors.As(err, &refused) {
			return nil, &historyRefused{fmt.Errorf("read the history of %s: %w", channel, err)}
		}
		if err != nil {
			return nil, fmt.Errorf("read the history of %s: %w", channel, err)
		}
		for _, msg := range page.Messages {
			if msg.Metadata.EventType != metaType {
				continue
			}
			fields := make(map[string]string, len(msg.Metadata.EventPayload))
			for k, v := range msg.Metadata.EventPayload {
				if s, ok := v.(string); ok {
					fields[k] = s
				}
			}
			out[msg.Timestamp] = blockkit.Meta{Type: msg.Metadata.EventType, Fields: fields}
		}
		cursor = page.ResponseMetaData.NextCursor
		if !page.HasMore || cursor == "" {
			break
		}
	}
	return out, nil
}

// historyRefused is Slack refusing to show a channel's history (the app
// lacks channels:history, the bot is not in the channel): asking again
// will not help, unlike a network error. It says so to the sweep with
// Permanent, which then posts without the check rather than never.
type historyRefused struct{ err error }

func (e *historyRefused) Error() string { return e.err.Error() }

func (e *historyRefused) Unwrap() error { return e.err }

// Permanent reports that the read will keep failing.
func (e *historyRefused) Permanent() bool { return true }

// findMessage looks for the newest message in channel since since whose
// metadata is meta.
func (b *Bot) findMessage(ctx context.Context, channel string, meta blockkit.Meta, since time.Time) (string, bool, error) {
	tagged, err := b.Tagged(ctx, channel, meta.Type, since)
	if err != nil {
		return "", false, err
	}
	found := ""
	for ts, m := range tagged {
		if maps.Equal(m.Fields, meta.Fields) && ts > found {
			found = ts
		}
	}
	return found, found != "", nil
}

// fenceError is an attempt refused because the context's fence does not
// hold (or could not be checked): retry gives up on it at once.
type fenceError struct{ err error }

func (e *fenceError) Error() string { return "not sent: " + e.err.Error() }

func (e *fenceError) Unwrap() error { return e.err }

// fenced checks the context's fence, if any, before each attempt of f.
// A refusal is logged and counted; an attempt the store cannot vouch for
// is not made either.
func (b *Bot) fenced(method string, f func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := store.CheckFence(ctx)
		if err == nil {
			return f(ctx)
		}
		if errors.Is(err, store.ErrFenced) {
			b.opts.Metrics.Fenced("slack")
			b.log.WarnContext(ctx, "not posting: another replica took the leader lease", "method", method, "error", err)
		} else {
			b.log.WarnContext(ctx, "not posting: the leader lease cannot be checked", "method", method, "error", err)
		}
		return &fenceError{err}
	}
}

// uploadFile attaches f to a thread (or the channel when threadTS is "").
func (b *Bot) uploadFile(ctx context.Context, channel, threadTS string, f blockkit.File) error {
	r := b.opts.Redactor
	name, title, comment, content := r.Redact(f.Name), r.Redact(f.Title), r.Redact(f.Comment), r.Redact(string(f.Content))
	err := b.retry(ctx, "files.upload", b.fenced("files.upload", func(ctx context.Context) error {
		_, err := b.opts.API.UploadFileContext(ctx, slack.UploadFileParameters{
			Filename: name, Title: title, InitialComment: comment, Content: content, FileSize: len(content),
			Channel: channel, ThreadTimestamp: threadTS,
		})
		return err
	}))
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

// redactMessage returns m without any configured secret in its text or its
// blocks. The blocks are redacted as the JSON slack-go sends (the Redactor
// knows a secret's JSON and mrkdwn forms) and decoded back only when a
// secret was found, so a clean message, nearly every one, goes out as it
// was rendered.
func (b *Bot) redactMessage(m blockkit.Message) blockkit.Message {
	r := b.opts.Redactor
	if r.Len() == 0 {
		return m
	}
	m.Text = r.Redact(m.Text)
	if len(m.Blocks) == 0 {
		return m
	}
	raw, err := json.Marshal(m.Blocks)
	if err != nil {
		return b.withheld(err)
	}
	clean := r.Redact(string(raw))
	if clean == string(raw) {
		return m
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(clean), &blocks); err != nil {
		return b.withheld(err)
	}
	m.Blocks = blocks.BlockSet
	return m
}

// withheld replaces a message that held a secret and could not be cleaned:
// better no message than a leak.
func (b *Bot) withheld(err error) blockkit.Message {
	b.log.Error("message withheld: it held a configured secret and its blocks could not be redacted", "error", err)
	return blockkit.RenderNote("redisbot withheld this message: it held a configured secret that could not be removed (see the bot's log).")
}
