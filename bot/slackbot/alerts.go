package slackbot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/store"
)

// Post, Update and Reply let scheduled work (sweeps, digests) post through
// the outbox and wait for the outcome: a new alert, an edit, a thread
// note, each behind the answers people wait for.
func (b *Bot) Post(ctx context.Context, channel string, m blockkit.Message) (string, error) {
	return b.send(ctx, outbox.Message{Channel: channel, Body: m, Priority: outbox.PriorityAlert})
}

// Update edits a message in place.
func (b *Bot) Update(ctx context.Context, channel, ts string, m blockkit.Message) error {
	_, err := b.send(ctx, outbox.Message{Channel: channel, TS: ts, Body: m, Priority: outbox.PriorityUpdate})
	return err
}

// Reply posts in a message's thread.
func (b *Bot) Reply(ctx context.Context, channel, threadTS string, m blockkit.Message) error {
	_, err := b.send(ctx, outbox.Message{Channel: channel, ThreadTS: threadTS, Body: m, Priority: outbox.PriorityNote})
	return err
}

// Tagged is the outbox's (the sweep's Finder).
func (b *Bot) Tagged(ctx context.Context, channel, metaType string, since time.Time) (map[string]blockkit.Meta, error) {
	return b.opts.Outbox.Tagged(ctx, channel, metaType, since)
}

// unsilence lifts silences: the one with an id, or every active one on an
// instance (of one finding, when named). Operators lift them, as they set
// them. The sweep then redraws the alert messages that showed them.
func (b *Bot) unsilence(ctx context.Context, j job, args []string, scope []string) error {
	if err := b.opts.Access.Require(ctx, j.user, access.Operator); err != nil {
		return b.refuse(ctx, j, err)
	}
	list, err := b.opts.Store.Silences(ctx)
	if err != nil {
		return err
	}
	now := b.now()
	var lift []store.Silence
	for _, x := range list {
		if len(args) == 1 && x.ID == args[0] {
			lift = []store.Silence{x}
			break
		}
	}
	if lift == nil {
		inst, err := b.opts.Resolver.Resolve(args[0], scope)
		if err != nil {
			return b.ephemeral(ctx, j, blockkit.RenderError(err))
		}
		for _, x := range list {
			if x.Instance == inst.Name && now.Before(x.Until) && (len(args) == 1 || x.Finding == args[1]) {
				lift = append(lift, x)
			}
		}
	}
	// A silence outside the channel's scope is not this channel's to lift.
	lift = slices.DeleteFunc(lift, func(x store.Silence) bool { _, err := b.opts.Resolver.Resolve(x.Instance, scope); return err != nil })
	if len(lift) == 0 {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("No active silence matches "+strings.Join(args, " ")+": /redis silences lists them."))
	}
	for _, x := range lift {
		if err := b.opts.Store.DeleteSilence(ctx, x.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		_ = b.opts.Store.Audit(ctx, store.AuditRecord{Schema: store.SchemaVersion, At: now, Instance: x.Instance, Actor: j.user, Kind: "unsilenced",
			Detail: map[string]string{"finding": orAll(x.Finding), "silence": x.ID}})
		if err := b.ephemeral(ctx, j, blockkit.RenderUnsilenced(x.ID, x.Instance, x.Finding, j.user)); err != nil {
			return err
		}
	}
	return nil
}

// threadAlert is the alert whose message the job's thread hangs under.
func (b *Bot) threadAlert(ctx context.Context, j job) (store.Alert, bool, error) {
	if j.threadTS == "" {
		return store.Alert{}, false, nil
	}
	list, err := b.opts.Store.Alerts(ctx)
	if err != nil {
		return store.Alert{}, false, err
	}
	for _, a := range list {
		if a.Channel == j.channel && a.MessageTS == j.threadTS {
			return a, true, nil
		}
	}
	return store.Alert{}, false, nil
}

// silence records a silence; operators set them, as they decide what pages.
func (b *Bot) silence(ctx context.Context, j job, instance, finding string, d time.Duration, scope []string) error {
	if err := b.opts.Access.Require(ctx, j.user, access.Operator); err != nil {
		return b.refuse(ctx, j, err)
	}
	inst, err := b.opts.Resolver.Resolve(instance, scope)
	if err != nil {
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	now := b.now()
	x := store.Silence{Schema: store.SchemaVersion, ID: randomID(), Instance: inst.Name, Finding: finding, CreatedBy: j.user, CreatedAt: now, Until: now.Add(d)}
	if err := b.opts.Store.PutSilence(ctx, x); err != nil {
		return err
	}
	_ = b.opts.Store.Audit(ctx, store.AuditRecord{Schema: store.SchemaVersion, At: now, Instance: inst.Name, Actor: j.user, Kind: "silenced",
		Detail: map[string]string{"finding": orAll(finding), "until": x.Until.UTC().Format(time.RFC3339)}})
	note := blockkit.RenderSilenced(x.ID, inst.Name, finding, j.user, d, x.Until)
	if j.threadTS != "" {
		_, err := b.postMessage(ctx, j.channel, j.threadTS, note)
		return err
	}
	return b.ephemeral(ctx, j, note)
}

func orAll(finding string) string {
	if finding == "" {
		return "every finding"
	}
	return finding
}

// snooze handles the Snooze and Silence buttons of an alert, where a long
// silence sits behind Slack's confirmation dialog, and the answer to the
// question a long typed silence asks (RenderSilenceConfirm).
func (b *Bot) snooze(ctx context.Context, j job, click blockkit.Click, scope []string) error {
	if b.opts.Store == nil {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("Silences need the state store."))
	}
	return b.silence(ctx, j, click.Instance, click.Finding, click.Duration, scope)
}

// ack handles an alert's Acknowledge button: reminders stop until the
// alert resolves, and its message says who acknowledged it (redrawn by the
// next sweep). Anyone who may see the alert may acknowledge it.
func (b *Bot) ack(ctx context.Context, j job, click blockkit.Click, scope []string) error {
	if b.opts.Store == nil {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("Acknowledgements need the state store."))
	}
	inst, err := b.opts.Resolver.Resolve(click.Instance, scope)
	if err != nil {
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	a, err := b.opts.Store.Alert(ctx, inst.Name, click.Finding)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.State != "firing") {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("This alert is no longer firing: nothing to acknowledge."))
	}
	if err != nil {
		return err
	}
	now := b.now()
	if err := b.opts.Store.PutAck(ctx, store.Ack{Instance: inst.Name, Finding: click.Finding, By: j.user, At: now, Episode: a.FiringSince}); err != nil {
		return err
	}
	_ = b.opts.Store.Audit(ctx, store.AuditRecord{Schema: store.SchemaVersion, At: now, Instance: inst.Name, Actor: j.user, Kind: "acknowledged",
		Detail: map[string]string{"finding": click.Finding}})
	if j.threadTS != "" {
		return b.Reply(ctx, j.channel, j.threadTS, blockkit.RenderAcked(j.user))
	}
	return b.ephemeral(ctx, j, blockkit.RenderAcked(j.user))
}

// ackGroup handles a group message's Acknowledge all: each member still
// firing that the channel may see is acknowledged, as a click on its own
// Acknowledge would; the next sweep redraws the message with the marks.
func (b *Bot) ackGroup(ctx context.Context, j job, click blockkit.Click, scope []string) error {
	if b.opts.Store == nil {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("Acknowledgements need the state store."))
	}
	list, err := b.opts.Store.Alerts(ctx)
	if err != nil {
		return err
	}
	now, n := b.now(), 0
	for _, a := range list {
		if !a.Group || a.Channel != j.channel || a.MessageTS != j.threadTS || a.Finding != click.Finding || a.State != "firing" {
			continue
		}
		if _, err := b.opts.Resolver.Resolve(a.Instance, scope); err != nil {
			continue // not this channel's to acknowledge
		}
		if err := b.opts.Store.PutAck(ctx, store.Ack{Instance: a.Instance, Finding: a.Finding, By: j.user, At: now, Episode: a.FiringSince}); err != nil {
			return err
		}
		_ = b.opts.Store.Audit(ctx, store.AuditRecord{Schema: store.SchemaVersion, At: now, Instance: a.Instance, Actor: j.user, Kind: "acknowledged",
			Detail: map[string]string{"finding": a.Finding}})
		n++
	}
	if n == 0 {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("Nothing in this group is firing: nothing to acknowledge."))
	}
	return b.Reply(ctx, j.channel, j.threadTS, blockkit.RenderAckedGroup(j.user, n))
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Upload attaches a file to a thread (the digest's chart), as a note.
func (b *Bot) Upload(ctx context.Context, channel, threadTS, name, title string, content []byte) error {
	_, err := b.opts.Outbox.Upload(ctx, channel, threadTS, blockkit.File{Name: name, Title: title, Content: content}, outbox.PriorityNote).Wait(ctx)
	return err
}
