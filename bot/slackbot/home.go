package slackbot

import (
	"context"
	"errors"
	"slices"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
)

// Fleet reports on instances from their last recorded snapshots without
// probing; handlers.Service implements it.
type Fleet interface {
	Recorded(ctx context.Context, tags []string) []*handlers.Report
}

// home publishes the App Home tab of a user who opened it: the fleet as
// the last sweep saw it and the approvals waiting on or requested by the
// user. Nothing is probed: Slack shows the tab as soon as it opens.
func (b *Bot) home(ctx context.Context, j job) (string, error) {
	var refusal *access.Refusal
	if err := b.opts.Access.Require(ctx, j.user, access.Viewer); errors.As(err, &refusal) {
		return outcomeRefused, nil
	} else if err != nil {
		return outcomeInternal, err
	}
	var v blockkit.HomeView
	if b.opts.Fleet != nil {
		for _, r := range b.opts.Fleet.Recorded(ctx, nil) {
			v.Fleet = append(v.Fleet, handlers.Summarize(r))
		}
	}
	if b.opts.Store != nil {
		swept, err := b.opts.Store.LastFleetSweep(ctx)
		if err != nil {
			return outcomeInternal, err
		}
		v.Swept = swept.At
		pending, err := b.opts.Store.Approvals(ctx, approvals.StatePending)
		if err != nil {
			return outcomeInternal, err
		}
		approver := b.opts.Access.Require(ctx, j.user, access.Approver) == nil
		for _, a := range pending {
			decided := slices.ContainsFunc(a.Approvals, func(d store.Decision) bool { return d.User == j.user })
			if a.RequestedBy == j.user || approver && !decided {
				v.Approvals = append(v.Approvals, view(a))
			}
		}
	}
	if _, err := b.opts.Outbox.PublishHome(ctx, j.user, blockkit.RenderHome(v, b.now()), outbox.PriorityReply).Wait(ctx); err != nil {
		return outcomeInternal, err
	}
	return outcomeOK, nil
}
