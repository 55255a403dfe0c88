package slackbot

import (
	"context"
	"fmt"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/outbox"
)

// Everything the bot sends to Slack leaves through the outbox
// (Options.Outbox), which redacts, fences, paces, prioritises and retries
// it; this file maps a command's answers onto it. Answers to people go at
// PriorityReply, ahead of alerts waiting in the same channel.

// send queues m and waits for its outcome.
func (b *Bot) send(ctx context.Context, m outbox.Message) (string, error) {
	return b.opts.Outbox.Send(ctx, m).Wait(ctx)
}

// post sends a reply: the first message in the channel (or the job's
// thread), the rest in its thread, files into the thread. When it cannot
// be delivered, the user is told so (undelivered).
func (b *Bot) post(ctx context.Context, j job, reply blockkit.Reply) error {
	thread := j.threadTS
	for i, m := range reply.Messages {
		ts := thread
		if i > 0 && !b.opts.ThreadReplies && j.threadTS == "" {
			ts = ""
		}
		posted, err := b.postMessage(ctx, j.channel, ts, m)
		if err != nil {
			return b.undelivered(ctx, j, fmt.Errorf("post reply: %w", err))
		}
		if thread == "" && b.opts.ThreadReplies {
			thread = posted
		}
	}
	for _, f := range reply.Files {
		if _, err := b.opts.Outbox.Upload(ctx, j.channel, thread, f, outbox.PriorityReply).Wait(ctx); err != nil {
			return b.undelivered(ctx, j, err)
		}
	}
	return nil
}

// undeliveredText is what a user hears when the answer to their command
// could not be posted; the reason is in the log, under the reference.
const undeliveredText = "redisbot could not post its answer here: Slack refused it or kept it waiting past the command's deadline (ref %s, in the bot's log). Try again in a minute."

// undelivered tells j's user, ephemerally, that the answer to their
// command could not be posted (Slack refused it, kept rate-limiting it
// until the command's deadline, or the outbox was full), logs why, and
// returns err. The notice has a deadline of its own: the command's may be
// what ran out.
func (b *Bot) undelivered(ctx context.Context, j job, err error) error {
	ref := blockkit.ErrorRef(err)
	b.log.WarnContext(ctx, "answer not delivered: telling the user", "channel", j.channel, "user", j.user, "ref", ref, "error", err)
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noticeTimeout)
	defer cancel()
	if nerr := b.ephemeral(nctx, j, blockkit.RenderRefusal(fmt.Sprintf(undeliveredText, ref))); nerr != nil {
		b.log.WarnContext(ctx, "the notice of an undelivered answer was not delivered either", "channel", j.channel, "user", j.user, "error", nerr)
	}
	return err
}

// ephemeral answers only the user: through the command's response_url when
// there is one (it works in channels the bot is not in), else
// chat.postEphemeral.
func (b *Bot) ephemeral(ctx context.Context, j job, m blockkit.Message) error {
	msg := outbox.Message{Channel: j.channel, User: j.user, ThreadTS: j.threadTS, Body: m, Priority: outbox.PriorityReply}
	if j.responseURL != "" && b.trustedHookURL(j.responseURL) {
		msg.ResponseURL = j.responseURL
	}
	_, err := b.send(ctx, msg)
	return err
}

// postMessage posts an answer m in channel, in threadTS's thread unless it
// is "", and returns the new message's ts.
func (b *Bot) postMessage(ctx context.Context, channel, threadTS string, m blockkit.Message) (string, error) {
	return b.send(ctx, outbox.Message{Channel: channel, ThreadTS: threadTS, Body: m, Priority: outbox.PriorityReply})
}

// updateMessage replaces the message ts in channel with an answer m. key,
// when set, lets a newer version of the message replace this one while it
// waits (a key scan's progress).
func (b *Bot) updateMessage(ctx context.Context, channel, ts, key string, m blockkit.Message) error {
	_, err := b.send(ctx, outbox.Message{Channel: channel, TS: ts, Key: key, Body: m, Priority: outbox.PriorityReply})
	return err
}

// note queues m for the thread threadTS in channel behind every answer,
// and returns without waiting for it; a failure is logged. It outlives
// the command that queued it, within noteTimeout.
func (b *Bot) note(ctx context.Context, channel, threadTS string, m blockkit.Message) {
	if channel == "" || threadTS == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noteTimeout)
	d := b.opts.Outbox.Send(ctx, outbox.Message{Channel: channel, ThreadTS: threadTS, Body: m, Priority: outbox.PriorityNote})
	b.goSafely(ctx, "slack_note", func() {
		defer cancel()
		if _, err := d.Wait(ctx); err != nil {
			b.log.WarnContext(ctx, "thread note not posted", "channel", channel, "thread", threadTS, "error", err)
		}
	})
}

// noteTimeout bounds how long a thread note may wait for Slack. Nothing
// waits for a note (shutdown closes the outbox instead), so it may be
// long.
const noteTimeout = 10 * time.Minute

// noticeTimeout bounds a notice sent on its own after its command's
// context ended or without one (an undelivered answer, a busy refusal, a
// key scan's panic, a defrag watch's progress): a person is waiting, and
// one Slack cannot take in this long is not worth waiting for.
const noticeTimeout = 30 * time.Second
