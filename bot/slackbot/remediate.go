package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/requestid"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redact"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// Resolver finds a configured instance within a channel's scope.
type Resolver interface {
	Resolve(name string, scope []string) (handlers.Instance, error)
}

// remediationEnabled reports whether the flow is wired (a store and a
// workflow); without them remediation verbs answer that they are off.
func (b *Bot) remediationEnabled() bool { return b.opts.Workflow != nil && b.opts.Store != nil }

// request starts the flow: operator role, instance in scope, plan from a
// fresh probe, and the approval message with its buttons.
func (b *Bot) request(ctx context.Context, j job, req remedy.Request, scope []string) error {
	if err := b.opts.Access.Require(ctx, j.user, access.Operator); err != nil {
		return b.refuse(ctx, j, err)
	}
	inst, err := b.opts.Resolver.Resolve(req.Instance, scope)
	if err != nil {
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	a, plan, err := b.opts.Workflow.Request(ctx, j.user, req, inst)
	if done, aerr := b.answerStoreDown(ctx, j, err, storeDownText); done {
		return aerr
	}
	var blocked *approvals.BlockedError
	switch {
	case errors.As(err, &blocked):
		// The refused plan itself: what failed and what to do about it, and
		// only the alternatives whose own plans would run here.
		return b.ephemeral(ctx, j, blockkit.RenderApproval(blockkit.ApprovalView{Instance: inst.Name, State: blockkit.StateRefused, RequestedBy: j.user, Plan: plan}, b.now()))
	case err != nil:
		return b.ephemeral(ctx, j, blockkit.RenderError(&handlers.UsageError{Msg: err.Error()}))
	}
	// The request goes to the channel itself, never into a thread: that is
	// where approvers see it. Its audit trail goes into its own thread.
	ts, err := b.postMessage(ctx, j.channel, "", blockkit.RenderApproval(view(a), b.now()))
	if err != nil {
		return b.undelivered(ctx, j, fmt.Errorf("post approval: %w", err))
	}
	if err := b.opts.Workflow.SetMessage(ctx, a.ID, j.channel, ts); err != nil {
		return err
	}
	b.opts.Metrics.Approval(a.State)
	return b.trail(ctx, j.channel, ts, "requested", j.user, strings.Join(plan.Commands, "; "))
}

// decide handles Approve and Reject clicks.
func (b *Bot) decide(ctx context.Context, j job, click blockkit.Click) error {
	if !b.remediationEnabled() {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("Remediations are not enabled on this bot."))
	}
	current, err := b.opts.Store.Approval(ctx, click.ApprovalID)
	if done, aerr := b.answerStoreDown(ctx, j, err, storeDownApprovalText); done {
		return aerr
	}
	if errors.Is(err, store.ErrNotFound) {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("This approval request no longer exists."))
	}
	if err != nil {
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	// The requester may withdraw their own request; deciding takes the
	// approver role.
	if !(click.Kind == blockkit.ActionReject && current.RequestedBy == j.user) {
		if err := b.opts.Access.Require(ctx, j.user, access.Approver); err != nil {
			return b.refuse(ctx, j, err)
		}
	}
	// From here on the approval's id is the request id: its execution,
	// verification and defrag watch log under the id its audit trail has.
	ctx = requestid.With(ctx, click.ApprovalID)
	var a store.Approval
	if click.Kind == blockkit.ActionApprove {
		// Behind the answers: fifty approvers clicking at once wait for no
		// line of the trail, and the decision's outcome overtakes them.
		b.note(ctx, current.Channel, current.MessageTS, blockkit.RenderAuditLine(b.now(), "approval", j.user, "received"))
		a, err = b.opts.Workflow.Approve(ctx, click.ApprovalID, j.user)
	} else {
		a, err = b.opts.Workflow.Reject(ctx, click.ApprovalID, j.user, "")
	}
	switch {
	case errors.Is(err, approvals.ErrSelfApproval), errors.Is(err, approvals.ErrAlreadyVoted),
		errors.Is(err, approvals.ErrAlreadyDecided), errors.Is(err, approvals.ErrBudget):
		return b.ephemeral(ctx, j, blockkit.RenderRefusal(err.Error()))
	case errors.Is(err, approvals.ErrExpired):
		_ = b.ephemeral(ctx, j, blockkit.RenderRefusal(err.Error()))
	case storeDown(err) && a.ID == "":
		_, aerr := b.answerStoreDown(ctx, j, err, storeDownApprovalText)
		return aerr
	case err != nil && a.ID == "":
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	b.opts.Metrics.Approval(a.State)
	b.log.InfoContext(ctx, "approval decided", "approval", a.ID, "instance", a.Instance, "action", a.Action, "state", a.State, "by", j.user)
	if a.State == approvals.StateDone || a.State == approvals.StateFailed {
		b.opts.Metrics.Remediation(a.Action, a.State)
	}
	// Whatever happened (done, failed, refused on drift, rejected,
	// expired), the original message shows it and loses its buttons.
	if err := b.updateApproval(ctx, a); err != nil {
		return err
	}
	kind, detail := a.State, a.State
	if o, ok := approvals.OutcomeOf(a); ok {
		detail = o.Message
		if a.State == approvals.StateDone && o.NoEffect {
			// It ran and changed nothing: not a success to report.
			kind = "no effect"
		}
	}
	if a.State == approvals.StateDone && a.Action == string(handlers.ActionDefragOn) && b.opts.Defrag != nil {
		b.watches.Add(1)
		go func() {
			defer b.watches.Done()
			b.safely(requestid.With(b.background, a.ID), "defrag_watch", func() { b.watchDefrag(a) })
		}()
	}
	return b.trail(ctx, a.Channel, a.MessageTS, kind, actorOf(a, j.user), detail)
}

// watchDefrag follows an approved defrag-on: progress in the approval's
// thread, defrag turned off when it is done or no longer helps (see
// remedy.Watch), and the approval's outcome replaced by what the watch
// measured, before and after, once the numbers have settled.
func (b *Bot) watchDefrag(a store.Approval) {
	ctx := requestid.With(b.background, a.ID)
	inst, err := b.opts.Resolver.Resolve(a.Instance, nil)
	if err != nil {
		return
	}
	target, closeTarget := b.opts.Defrag.Target(inst)
	defer closeTarget()
	cfg := b.opts.DefragWatch
	// The server stops defragging under the active-defrag-ignore-bytes the
	// approved plan set: what the server was told, not today's config.
	if plan, err := approvals.PlanOf(a); err == nil {
		cfg.IgnoreBytes, _ = plan.DefragIgnoreBytes()
	}
	// The watch waits for each note: one Slack holds back (a long
	// Retry-After) is skipped after noticeTimeout rather than stalling
	// the watch that turns defrag off.
	note := func(text string) {
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noticeTimeout)
		defer cancel()
		_, _ = b.postMessage(nctx, a.Channel, a.MessageTS, blockkit.RenderNote(text))
	}
	note(watchRules(cfg))
	res := remedy.Watch(ctx, target, cfg, b.now, nil, func(p remedy.Progress) {
		note(fmt.Sprintf("defrag %s: RSS %s, allocator_frag_ratio %.2f (%s fragmented), hits %d, misses %d, running %d%%, PING %s",
			p.Elapsed.Round(time.Second), handlers.HumanBytes(p.RSS), p.AllocFragRatio, handlers.HumanBytes(p.AllocFragBytes), p.Hits, p.Misses, p.Running, p.PingRTT.Round(time.Millisecond)))
	})
	o := res.Outcome()
	// Redacted here as well as on its way to Slack: the store and the
	// audit log keep it too.
	o.Message = redact.Secrets(b.opts.Redactor.Redact(o.Message), inst.Password, inst.Remediation.Password)
	note(o.Message)
	b.log.InfoContext(ctx, "defrag watch ended", "approval", a.ID, "instance", a.Instance, "reason", res.Reason)
	if b.opts.Store == nil {
		return
	}
	bg := context.WithoutCancel(ctx)
	if raw, err := json.Marshal(o); err == nil {
		updated, err := b.opts.Store.UpdateApproval(bg, a.ID, func(x *store.Approval) error {
			x.Outcome, x.UpdatedAt = raw, b.now()
			if !o.OK {
				x.State = approvals.StateFailed
			}
			return nil
		})
		if err == nil {
			err = b.updateApproval(bg, updated)
		}
		if err != nil {
			b.log.WarnContext(ctx, "defrag watch outcome", "approval", a.ID, "error", err)
		}
	}
	_ = b.opts.Store.Audit(bg, store.AuditRecord{Schema: store.SchemaVersion, At: b.now(), Instance: a.Instance,
		Actor: "redisbot", Kind: "defrag-watch", ApprovalID: a.ID, Detail: map[string]string{"message": o.Message, "reason": res.Reason}})
}

// watchRules is the watch's first note: when it will turn defrag off.
func watchRules(cfg remedy.WatchConfig) string {
	rules := []string{fmt.Sprintf("at allocator_frag_ratio %.2f", cfg.TargetRatio)}
	if cfg.IgnoreBytes > 0 {
		rules = append(rules, "when under "+handlers.HumanBytes(cfg.IgnoreBytes)+" stays fragmented (active-defrag-ignore-bytes)")
	}
	if cfg.StallIntervals > 0 {
		rules = append(rules, fmt.Sprintf("after %d checks in a row without progress", cfg.StallIntervals))
	}
	if cfg.RSSGrowth > 0 {
		rules = append(rules, fmt.Sprintf("when RSS beyond the data grows by more than %.0f%% of RSS", cfg.RSSGrowth*100))
	}
	rules = append(rules, "when latency passes "+cfg.MaxLatency.String(), "after "+cfg.MaxDuration.String(), "or when the bot stops")
	return fmt.Sprintf("Watching active defrag every %s. It is turned off %s.", cfg.Interval, strings.Join(rules, ", "))
}

// updateApproval redraws an approval's message in place.
func (b *Bot) updateApproval(ctx context.Context, a store.Approval) error {
	if a.Channel == "" || a.MessageTS == "" {
		return nil
	}
	return b.updateMessage(ctx, a.Channel, a.MessageTS, "approval/"+a.ID, blockkit.RenderApproval(view(a), b.now()))
}

// trail posts one audit step in the approval message's thread.
func (b *Bot) trail(ctx context.Context, channel, ts, kind, actor, detail string) error {
	if channel == "" || ts == "" {
		return nil
	}
	_, err := b.postMessage(ctx, channel, ts, blockkit.RenderAuditLine(b.now(), kind, actor, detail))
	return err
}

// expireStale moves stale requests to expired and redraws their messages.
// Every replica may run it: the transition is a compare-and-set.
func (b *Bot) expireStale(ctx context.Context) {
	if !b.remediationEnabled() {
		return
	}
	expired, err := b.opts.Workflow.ExpireStale(ctx)
	if err != nil {
		b.log.Warn("expire approvals", "error", err)
		return
	}
	for _, a := range expired {
		if err := b.updateApproval(ctx, a); err != nil {
			b.log.Warn("update expired approval", "id", a.ID, "error", err)
		}
		_ = b.trail(ctx, a.Channel, a.MessageTS, "expired", "redisbot", "no decision within the expiry")
	}
}

func (b *Bot) refuse(ctx context.Context, j job, err error) error {
	var refusal *access.Refusal
	if errors.As(err, &refusal) {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal(refusal.Reason))
	}
	return b.ephemeral(ctx, j, blockkit.RenderError(err))
}

func actorOf(a store.Approval, clicker string) string {
	if a.State == approvals.StateDone || a.State == approvals.StateFailed {
		return "redisbot"
	}
	return clicker
}

func view(a store.Approval) blockkit.ApprovalView {
	v := blockkit.ApprovalView{ID: a.ID, Instance: a.Instance, State: a.State, RequestedBy: a.RequestedBy,
		RequestedAt: a.RequestedAt, ExpiresAt: a.ExpiresAt, Required: a.Required}
	for _, d := range a.Approvals {
		v.Approvers = append(v.Approvers, d.User)
	}
	if a.Rejection != nil {
		v.Rejecter, v.RejectNote = a.Rejection.User, a.Rejection.Note
	}
	v.Plan, _ = approvals.PlanOf(a)
	if o, ok := approvals.OutcomeOf(a); ok {
		v.Outcome = &o
	}
	return v
}

// revert requests, through the same approval flow, setting back the value a
// done config-set replaced.
func (b *Bot) revert(ctx context.Context, j job, click blockkit.Click, scope []string) error {
	if !b.remediationEnabled() {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("Remediations are not enabled on this bot."))
	}
	a, err := b.opts.Store.Approval(ctx, click.ApprovalID)
	if done, aerr := b.answerStoreDown(ctx, j, err, storeDownText); done {
		return aerr
	}
	if errors.Is(err, store.ErrNotFound) {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("This approval request no longer exists."))
	}
	if err != nil {
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	plan, err := approvals.PlanOf(a)
	old := plan.Params["old"]
	if err != nil || a.State != approvals.StateDone || plan.Action != handlers.ActionConfigSet || old == "" || old == "unknown" {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("There is nothing to revert for this request."))
	}
	req := remedy.Request{Instance: a.Instance, Action: handlers.ActionConfigSet, Params: map[string]string{"setting": plan.Params["setting"], "value": old}}
	return b.request(ctx, j, req, scope)
}
