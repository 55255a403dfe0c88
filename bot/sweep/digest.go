package sweep

import (
	"context"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/charts"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// Uploader shares a file in a channel, or in a thread when threadTS is set
// (the digest's chart).
type Uploader interface {
	Upload(ctx context.Context, channel, threadTS, name, title string, content []byte) error
}

const digestKey = "*digest*"

// Digest posts the fleet digest to the default alert channel when this
// replica leads: counts by severity, the riskiest instances with their
// fragmentation trend and time to OOM, restarts, silences and remediations
// since the previous digest, and a chart of the riskiest in the channel.
func (s *Sweeper) Digest(ctx context.Context, up Uploader) {
	if _, ok := s.o.Leader.Token(); !ok || s.o.ChannelFor == nil {
		return
	}
	channel := s.o.ChannelFor(nil)
	if channel == "" {
		return
	}
	// Fenced like a sweep: a stale leader's digest writes and posts
	// nothing.
	ctx, token, ok := s.o.Leader.Fence(ctx)
	if !ok {
		s.o.Metrics.Fenced("sweep")
		return
	}
	err := handlers.Safely(func() error { return s.digest(ctx, token, channel, up) })
	if pe, ok := handlers.AsPanic(err); ok {
		s.o.Metrics.Panicked(ctx, s.o.Log, "digest", pe)
		return
	}
	if err != nil {
		s.o.Log.Warn("digest not posted", "error", err)
	}
}

func (s *Sweeper) digest(ctx context.Context, token int64, channel string, up Uploader) error {
	now := s.o.Now()
	// The instances the last sweep saw time out get a short first probe:
	// a digest of a fleet with dead instances does not wait the whole
	// timeout on each, and their reports say unconfirmed.
	reports, err := s.o.Fleet.Fleet(ctx, "", s.TimedOut())
	if err != nil {
		return err
	}
	facts, _ := s.o.Store.Facts(ctx, digestKey)
	since := now.Add(-24 * time.Hour)
	if t, err := time.Parse(time.RFC3339, facts["at"]); err == nil {
		since = t
	}
	view := blockkit.DigestView{At: now.In(time.UTC), Since: since, Reports: reports, FragTrend: map[string]float64{}}
	var series []charts.Series
	for _, r := range reports {
		samples, err := s.o.Store.Samples(ctx, r.Instance, now.Add(-24*time.Hour), now)
		if err == nil && len(samples) > 0 {
			if f, ok := r.Metric("mem_fragmentation_ratio"); ok {
				if cur, ok := f.Value.(float64); ok {
					view.FragTrend[r.Instance] = cur - samples[0].FragRatio
				}
			}
			if r.Severity >= handlers.SeverityWarning {
				series = append(series, charts.Series{Instance: r.Instance, Points: samples, MemoryLimit: r.MemoryLimit})
			}
		}
		// A new run_id since the previous digest is a restart.
		if r.Snapshot != nil {
			run, _ := r.Snapshot.Info.String("run_id")
			inst, _ := s.o.Store.Facts(ctx, r.Instance)
			if prev := inst["digest_run_id"]; prev != "" && prev != run {
				view.Restarts = append(view.Restarts, r.Instance)
			}
			_ = s.o.Store.SetFact(ctx, r.Instance, "digest_run_id", run)
		}
	}
	if silences, err := s.o.Store.Silences(ctx); err == nil {
		for _, x := range silences {
			if now.Before(x.Until) {
				view.Silences = append(view.Silences, blockkit.SilenceView{ID: x.ID, Instance: x.Instance, Finding: x.Finding, CreatedBy: x.CreatedBy, Until: x.Until})
			}
		}
	}
	if done, err := s.o.Store.Approvals(ctx, "done", "failed"); err == nil {
		for _, a := range done {
			if a.UpdatedAt.After(since) {
				view.Remediation = append(view.Remediation, blockkit.ApprovalView{ID: a.ID, Instance: a.Instance, State: a.State, Plan: planAction(a.Action)})
			}
		}
	}

	msgs := blockkit.RenderDigest(view)
	if !s.o.Leader.Still(ctx, token) {
		return errFenced
	}
	ts, err := s.o.Poster.Post(ctx, channel, msgs[0])
	if err != nil {
		return err
	}
	for _, m := range msgs[1:] {
		if err := s.o.Poster.Reply(ctx, channel, ts, m); err != nil {
			return err
		}
	}
	if len(series) > 0 && up != nil {
		var all []handlers.Point
		for _, sr := range series {
			all = append(all, sr.Points...)
		}
		title := charts.Title("Riskiest instances", 24*time.Hour, all)
		png, err := charts.Fleet(series, title)
		if err == nil {
			// In the channel, under the digest: a chart in its thread is
			// one click away and unseen.
			err = up.Upload(ctx, channel, "", "redis-digest.png", title, png)
		}
		if err != nil {
			// The text fallback: a sparkline of RSS per instance.
			for _, sr := range series[:min(len(series), charts.MaxFleetLines)] {
				var rss []float64
				for _, p := range sr.Points {
					rss = append(rss, float64(p.RSS))
				}
				_ = s.o.Poster.Reply(ctx, channel, ts, blockkit.RenderNote(sr.Instance+" RSS "+charts.Sparkline(rss, 30)))
			}
		}
	}
	return s.o.Store.SetFact(ctx, digestKey, "at", now.UTC().Format(time.RFC3339))
}

// planAction is enough of a plan for the digest line, which shows only the
// action.
func planAction(action string) remedy.Plan { return remedy.Plan{Action: handlers.Action(action)} }
