package outbox

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

// The calls an item makes. Each message is redacted of every configured
// secret once, when it is sent (Send), whatever rendered it: a report, an
// error, a key name, a restart command's output. One choke point, so a
// new message path cannot forget.
//
// Scheduled work is fenced here: a context that carries the leader
// lease's fence (store.WithFence, set by a sweep) is checked before every
// attempt, the first and each retry after a 429 or a network error alike.
// A leader paused past its lease while its message waited finds out right
// before it would post, and posts nothing: the replica that took over
// posts instead.

// postCall posts m in channel, in threadTS's thread unless it is "".
//
// A message with metadata (an alert) is posted at most once: after an
// attempt that may have reached Slack the next one first looks for the
// message by its metadata and returns it if it is there.
func (o *Outbox) postCall(channel, threadTS string, m blockkit.Message, p Priority) call {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	if m.Meta != nil {
		opts = append(opts, metadataOption(*m.Meta))
	}
	since := o.o.Now().Add(-time.Minute)
	return func(ctx context.Context, maybeSent bool) (string, error) {
		if maybeSent && m.Meta != nil {
			if found, ok, err := o.findMessage(ctx, channel, *m.Meta, since, p); err == nil && ok {
				o.log.InfoContext(ctx, "message already posted by an attempt whose answer was lost", "channel", channel, "ts", found)
				return found, nil
			}
		}
		_, ts, err := o.o.API.PostMessageContext(ctx, channel, opts...)
		return ts, err
	}
}

// updateCall replaces the message ts in channel with m, metadata included
// when m has some.
func (o *Outbox) updateCall(channel, ts string, m blockkit.Message) call {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	if m.Meta != nil {
		opts = append(opts, metadataOption(*m.Meta))
	}
	return func(ctx context.Context, _ bool) (string, error) {
		_, _, _, err := o.o.API.UpdateMessageContext(ctx, channel, ts, opts...)
		return ts, err
	}
}

func (o *Outbox) ephemeralCall(channel, user, threadTS string, m blockkit.Message) call {
	return func(ctx context.Context, _ bool) (string, error) {
		_, err := o.o.API.PostEphemeralContext(ctx, channel, user,
			slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...), slack.MsgOptionTS(threadTS))
		return "", err
	}
}

func (o *Outbox) webhookCall(url string, m blockkit.Message) call {
	return func(ctx context.Context, _ bool) (string, error) {
		return "", slack.PostWebhookContext(ctx, url, &slack.WebhookMessage{
			Text: m.Text, Blocks: &slack.Blocks{BlockSet: m.Blocks}, ResponseType: slack.ResponseTypeEphemeral,
		})
	}
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
// sweep asks it before posting an alert, under its fence; its pages wait
// in the conversations.history lane at alert priority.
func (o *Outbox) Tagged(ctx context.Context, channel, metaType string, since time.Time) (map[string]blockkit.Meta, error) {
	return o.tagged(ctx, channel, metaType, since, PriorityAlert)
}

func (o *Outbox) tagged(ctx context.Context, channel, metaType string, since time.Time, p Priority) (map[string]blockkit.Meta, error) {
	out := map[string]blockkit.Meta{}
	cursor := ""
	for range historyPages {
		var page *slack.GetConversationHistoryResponse
		_, err := o.enqueue(&item{ctx: ctx, method: "conversations.history", lane: "conversations.history", prio: p,
			call: func(ctx context.Context, _ bool) (string, error) {
				var err error
				page, err = o.o.API.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
					ChannelID: channel, Cursor: cursor, Limit: historyPageSize, IncludeAllMetadata: true,
					Oldest: fmt.Sprintf("%d.000000", since.Unix()),
				})
				return "", err
			}}).Wait(ctx)
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
func (o *Outbox) findMessage(ctx context.Context, channel string, meta blockkit.Meta, since time.Time, p Priority) (string, bool, error) {
	tagged, err := o.tagged(ctx, channel, meta.Type, since, p)
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
// hold (or could not be checked): the item is not tried again.
type fenceError struct{ err error }

func (e *fenceError) Error() string { return "not sent: " + e.err.Error() }

func (e *fenceError) Unwrap() error { return e.err }

// fenced checks the context's fence, if any, before each attempt of f.
// A refusal is logged and counted; an attempt the store cannot vouch for
// is not made either.
func (o *Outbox) fenced(method string, f call) call {
	return func(ctx context.Context, maybeSent bool) (string, error) {
		err := store.CheckFence(ctx)
		if err == nil {
			return f(ctx, maybeSent)
		}
		if errors.Is(err, store.ErrFenced) {
			o.o.Metrics.Fenced("slack")
			o.log.WarnContext(ctx, "not posting: another replica took the leader lease", "method", method, "error", err)
		} else {
			o.log.WarnContext(ctx, "not posting: the leader lease cannot be checked", "method", method, "error", err)
		}
		return "", &fenceError{err}
	}
}

// redact returns m without any configured secret in its text or its
// blocks. The blocks are redacted as the JSON slack-go sends (the Redactor
// knows a secret's JSON and mrkdwn forms) and decoded back only when a
// secret was found, so a clean message, nearly every one, goes out as it
// was rendered.
func (o *Outbox) redact(m blockkit.Message) blockkit.Message {
	r := o.o.Redactor
	if r.Len() == 0 {
		return m
	}
	m.Text = r.Redact(m.Text)
	if len(m.Blocks) == 0 {
		return m
	}
	raw, err := json.Marshal(m.Blocks)
	if err != nil {
		return o.withheld(err)
	}
	clean := r.Redact(string(raw))
	if clean == string(raw) {
		return m
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(clean), &blocks); err != nil {
		return o.withheld(err)
	}
	m.Blocks = blocks.BlockSet
	return m
}

// withheld replaces a message that held a secret and could not be cleaned:
// better no message than a leak.
func (o *Outbox) withheld(err error) blockkit.Message {
	o.log.Error("message withheld: it held a configured secret and its blocks could not be redacted", "error", err)
	return blockkit.RenderNote("redisbot withheld this message: it held a configured secret that could not be removed (see the bot's log).")
}
