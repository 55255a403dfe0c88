package slackbot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/charts"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redact"
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

// alertCommand handles silence, silences and trend.
func (b *Bot) alertCommand(ctx context.Context, j job, cmd handlers.Command, scope []string) error {
	if b.opts.Store == nil {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("This needs the state store, which this bot does not have."))
	}
	usage := func(msg string) error {
		return b.ephemeral(ctx, j, blockkit.RenderError(&handlers.UsageError{Verb: cmd.Verb, Msg: msg}))
	}
	switch cmd.Verb {
	case "silences":
		list, err := b.opts.Store.Silences(ctx)
		if err != nil {
			return err
		}
		var views []blockkit.SilenceView
		for _, x := range list {
			if _, err := b.opts.Resolver.Resolve(x.Instance, scope); err == nil && b.now().Before(x.Until) {
				views = append(views, blockkit.SilenceView{ID: x.ID, Instance: x.Instance, Finding: x.Finding, CreatedBy: x.CreatedBy, Until: x.Until})
			}
		}
		return b.post(ctx, j, blockkit.Reply{Messages: blockkit.RenderSilences(views, b.now())})
	case "silence":
		// silence <instance> [finding] <duration>
		if len(cmd.Args) < 2 || len(cmd.Args) > 3 {
			return usage("silence takes an instance, an optional finding and a duration (usage: silence <instance> [finding] <duration>)")
		}
		dur, err := time.ParseDuration(cmd.Args[len(cmd.Args)-1])
		if err != nil || dur < time.Minute || dur > 30*24*time.Hour {
			return usage("the duration must be between 1m and 720h, as in 30m, 4h or 72h")
		}
		finding := ""
		if len(cmd.Args) == 3 {
			finding = cmd.Args[1]
			if _, ok := handlers.SpecFor(finding); !ok {
				return usage(fmt.Sprintf("unknown finding %q", redact.Truncate(finding, 40)))
			}
		}
		return b.silence(ctx, j, cmd.Args[0], finding, dur, scope)
	case "trend":
		if len(cmd.Args) < 1 || len(cmd.Args) > 2 {
			return usage("trend takes an instance and a window (usage: trend <instance> [" + charts.WindowNames() + "])")
		}
		window := 24 * time.Hour
		if len(cmd.Args) == 2 {
			w, err := charts.ParseWindow(cmd.Args[1])
			if err != nil {
				return usage(err.Error())
			}
			window = w
		}
		return b.trend(ctx, j, cmd.Args[0], window, scope)
	}
	return usage("unknown verb " + cmd.Verb)
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

// trend shares a memory chart of an instance's history in the channel,
// its caption in the same message, or a text sparkline when the upload
// fails.
func (b *Bot) trend(ctx context.Context, j job, instance string, window time.Duration, scope []string) error {
	inst, err := b.opts.Resolver.Resolve(instance, scope)
	if err != nil {
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	now := b.now()
	samples, err := b.opts.Store.Samples(ctx, inst.Name, now.Add(-window), now)
	if err != nil {
		return err
	}
	if len(samples) == 0 {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("No history for "+inst.Name+" yet: sweeps record it (schedule.sweep)."))
	}
	series := charts.Series{Instance: inst.Name}
	var rss []float64
	for _, x := range samples {
		series.Points = append(series.Points, charts.Point{At: x.At, UsedMemory: x.UsedMemory, RSS: x.RSS, Maxmemory: x.Maxmemory, MemoryLimit: inst.MemoryLimit, FragRatio: x.FragRatio})
		rss = append(rss, float64(x.RSS))
	}
	title := charts.Title(inst.Name+": memory", window, series.Points)
	caption := fmt.Sprintf("%s (%d samples)", title, len(samples))
	png, err := charts.Memory(series, title)
	if err == nil {
		_, err = b.opts.Outbox.Upload(ctx, j.channel, "", blockkit.File{Name: inst.Name + "-memory.png", Title: title, Comment: blockkit.Escape(caption), Content: png}, outbox.PriorityReply).Wait(ctx)
	}
	if err != nil {
		b.log.Warn("chart upload failed, posting a sparkline", "error", err)
		_, err = b.postMessage(ctx, j.channel, "", blockkit.RenderNote(caption+"\nRSS "+charts.Sparkline(rss, 40)))
		return err
	}
	return nil
}

// snooze handles the Snooze and Silence buttons of an alert: a long
// silence sits behind Slack's confirmation dialog.
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
	if err := b.opts.Store.PutAck(ctx, store.Ack{Instance: inst.Name, Finding: click.Finding, By: j.user, At: now, Episode: a.LastChange}); err != nil {
		return err
	}
	_ = b.opts.Store.Audit(ctx, store.AuditRecord{Schema: store.SchemaVersion, At: now, Instance: inst.Name, Actor: j.user, Kind: "acknowledged",
		Detail: map[string]string{"finding": click.Finding}})
	if j.threadTS != "" {
		return b.Reply(ctx, j.channel, j.threadTS, blockkit.RenderAcked(j.user))
	}
	return b.ephemeral(ctx, j, blockkit.RenderAcked(j.user))
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
