package slackbot

import (
	"context"
	"fmt"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/charts"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// roles maps the verb table's roles to the access policy's.
var roles = map[handlers.Role]access.Role{
	handlers.RoleViewer:   access.Viewer,
	handlers.RoleOperator: access.Operator,
	handlers.RoleApprover: access.Approver,
}

// changes carries out, for one command, the verbs that change something:
// it knows who asked and where to answer.
type changes struct {
	b     *Bot
	j     job
	scope []string
}

// RequestRemediation starts the approval flow for a typed remediation.
func (c changes) RequestRemediation(ctx context.Context, cmd handlers.Command) error {
	if !c.b.remediationEnabled() {
		return c.b.ephemeral(ctx, c.j, blockkit.RenderRefusal("Remediations are not enabled on this bot (no store configured)."))
	}
	req, err := remedy.ParseRequest(cmd.Verb, cmd.Args)
	if err != nil {
		return c.b.ephemeral(ctx, c.j, blockkit.RenderError(err))
	}
	return c.b.request(ctx, c.j, req, c.scope)
}

// Silence records a typed silence. Left out, the finding is that of the
// alert whose thread the command was typed in; a silence longer than
// blockkit.LongSilence asks first, with a button that sets it (snooze),
// since days of quiet are easy to forget.
func (c changes) Silence(ctx context.Context, req handlers.SilenceRequest) error {
	if c.b.opts.Store == nil {
		return c.b.ephemeral(ctx, c.j, blockkit.RenderRefusal("This needs the state store, which this bot does not have."))
	}
	inst, err := c.b.opts.Resolver.Resolve(req.Instance, c.scope)
	if err != nil {
		return c.b.ephemeral(ctx, c.j, blockkit.RenderError(err))
	}
	finding := req.Finding
	if req.FindingLeftOut {
		a, ok, err := c.b.threadAlert(ctx, c.j)
		if err != nil {
			return err
		}
		if !ok || a.Instance != inst.Name {
			v, _ := handlers.LookupVerb("silence")
			return c.b.ephemeral(ctx, c.j, blockkit.RenderError(v.UsageError(
				"name the finding to silence, or all for every finding on the instance, those that fire later included; in an alert's thread the finding may be left out")))
		}
		finding = a.Finding
	}
	if req.Duration > blockkit.LongSilence {
		return c.b.ephemeral(ctx, c.j, blockkit.RenderSilenceConfirm(inst.Name, finding, req.Duration, c.b.now()))
	}
	return c.b.silence(ctx, c.j, inst.Name, finding, req.Duration, c.scope)
}

// Unsilence lifts typed silences.
func (c changes) Unsilence(ctx context.Context, args []string) error {
	if c.b.opts.Store == nil {
		return c.b.ephemeral(ctx, c.j, blockkit.RenderRefusal("This needs the state store, which this bot does not have."))
	}
	return c.b.unsilence(ctx, c.j, args, c.scope)
}

// render answers a command with what its verb returned.
func (b *Bot) render(ctx context.Context, j job, resp *handlers.Response) error {
	switch {
	case resp.Help != nil:
		for _, m := range blockkit.Render(resp, b.opts.Runbooks).Messages {
			if err := b.ephemeral(ctx, j, m); err != nil {
				return err
			}
		}
		return nil
	case resp.Approvals != nil:
		views := make([]blockkit.ApprovalView, len(resp.Approvals))
		for i, a := range resp.Approvals {
			views[i] = blockkit.ApprovalView{ID: a.ID, Instance: a.Instance, RequestedBy: a.RequestedBy, RequestedAt: a.RequestedAt,
				ExpiresAt: a.ExpiresAt, Plan: remedy.Plan{Action: a.Action}}
		}
		return b.post(ctx, j, blockkit.Reply{Messages: blockkit.RenderApprovals(views, b.now())})
	case resp.Audit != nil:
		views := make([]blockkit.AuditView, len(resp.Audit))
		for i, r := range resp.Audit {
			views[i] = blockkit.AuditView{At: r.At, Instance: r.Instance, Actor: r.Actor, Kind: r.Kind, ApprovalID: r.ApprovalID, Summary: r.Summary}
		}
		return b.post(ctx, j, blockkit.Reply{Messages: blockkit.RenderAudit(resp.AuditOf, views)})
	case resp.Silences != nil:
		views := make([]blockkit.SilenceView, len(resp.Silences))
		for i, x := range resp.Silences {
			views[i] = blockkit.SilenceView{ID: x.ID, Instance: x.Instance, Finding: x.Finding, CreatedBy: x.CreatedBy, Until: x.Until}
		}
		return b.post(ctx, j, blockkit.Reply{Messages: blockkit.RenderSilences(views, b.now())})
	case resp.Trend != nil:
		return b.trend(ctx, j, resp.Trend)
	case resp.Runbook != "":
		// The runbook of the finding asked for, filled from this probe,
		// as its button on a report shows it.
		for _, rep := range resp.Reports {
			reply, err := blockkit.RenderRunbook(rep, resp.Runbook, b.opts.Runbooks)
			if err != nil {
				return b.ephemeral(ctx, j, blockkit.RenderError(err))
			}
			if err := b.post(ctx, j, reply); err != nil {
				return err
			}
		}
		return nil
	}
	return b.post(ctx, j, blockkit.Render(resp, b.opts.Runbooks))
}

// trend shares a memory chart of an instance's history in the channel,
// its caption in the same message, or a text sparkline when the upload
// fails.
func (b *Bot) trend(ctx context.Context, j job, t *handlers.Trend) error {
	if len(t.Points) == 0 {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("No history for "+t.Instance.Name+" yet: sweeps record it (schedule.sweep)."))
	}
	series := charts.SeriesOf(t)
	title := charts.Title(t.Instance.Name+": memory", t.Window, series.Points)
	caption := fmt.Sprintf("%s (%d samples)", title, len(t.Points))
	png, err := charts.Memory(series, title)
	if err == nil {
		_, err = b.opts.Outbox.Upload(ctx, j.channel, "", blockkit.File{Name: t.Instance.Name + "-memory.png", Title: title, Comment: blockkit.Escape(caption), Content: png}, outbox.PriorityReply).Wait(ctx)
	}
	if err != nil {
		b.log.Warn("chart upload failed, posting a sparkline", "error", err)
		_, err = b.postMessage(ctx, j.channel, "", blockkit.RenderNote(caption+"\nRSS "+charts.Sparkline(charts.RSS(t), 40)))
		return err
	}
	return nil
}
