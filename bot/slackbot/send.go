package slackbot

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/blockkit"
)

// Everything the bot sends to Slack leaves through this file: messages
// (chat.postMessage, chat.update, chat.postEphemeral, response_url) and
// file uploads. Each function redacts what it sends of every configured
// secret (Options.Redactor) right before the call, whatever rendered it:
// a report, an error, a key name, a restart command's output. One choke
// point, so a new message path cannot forget; a test holds the package's
// other files to it.

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
		return b.retry(ctx, "response_url", func(ctx context.Context) error {
			return slack.PostWebhookContext(ctx, j.responseURL, &slack.WebhookMessage{
				Text: m.Text, Blocks: &slack.Blocks{BlockSet: m.Blocks}, ResponseType: slack.ResponseTypeEphemeral,
			})
		})
	}
	return b.retry(ctx, "chat.postEphemeral", func(ctx context.Context) error {
		_, err := b.opts.API.PostEphemeralContext(ctx, j.channel, j.user,
			slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...), slack.MsgOptionTS(j.threadTS))
		return err
	})
}

// postMessage posts m in channel, in threadTS's thread unless it is "",
// and returns the new message's ts.
func (b *Bot) postMessage(ctx context.Context, channel, threadTS string, m blockkit.Message) (string, error) {
	m = b.redactMessage(m)
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	var ts string
	err := b.retry(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		_, ts, err = b.opts.API.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// updateMessage replaces the message ts in channel with m.
func (b *Bot) updateMessage(ctx context.Context, channel, ts string, m blockkit.Message) error {
	m = b.redactMessage(m)
	return b.retry(ctx, "chat.update", func(ctx context.Context) error {
		_, _, _, err := b.opts.API.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...))
		return err
	})
}

// uploadFile attaches f to a thread (or the channel when threadTS is "").
func (b *Bot) uploadFile(ctx context.Context, channel, threadTS string, f blockkit.File) error {
	r := b.opts.Redactor
	name, title, content := r.Redact(f.Name), r.Redact(f.Title), r.Redact(string(f.Content))
	err := b.retry(ctx, "files.upload", func(ctx context.Context) error {
		_, err := b.opts.API.UploadFileContext(ctx, slack.UploadFileParameters{
			Filename: name, Title: title, Content: content, FileSize: len(content),
			Channel: channel, ThreadTimestamp: threadTS,
		})
		return err
	})
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
