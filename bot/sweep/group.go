package sweep

import (
	"context"
	"errors"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/store"
)

// Alerts that fire together are told together, as Alertmanager's group_by
// [channel, finding] would: when at least Options.GroupThreshold alerts of
// one finding fire in one channel in one sweep, one message lists the
// instances, with one on-call mention, and every member's record points at
// it (store.Alert.Group). Later sweeps tell a group's news (escalations,
// reminders, resolves, a silence or an acknowledgement to show) once per
// sweep: one edit of the message and at most one note in its thread. The
// lifecycle stays per alert (bot/alerts): grouping is only how it is told,
// and a member that fires again later is a new alert, with a message (or a
// group) of its own.

// fireGroup is the alerts of one finding firing in one channel.
type fireGroup struct{ channel, finding string }

// messageGroup is the members of one group message.
type messageGroup struct{ channel, ts string }

// deliverGroups posts the group messages of the alerts that fired
// together and tells the news of the groups posted before. It returns the
// transitions left for deliverAlert, in their order: those not in a group,
// fires too few to group, and the members of groups with no news. A group
// not told (an error, the deadline) leaves its members with news out of d,
// so they keep their previous state.
func (s *Sweeper) deliverGroups(ctx context.Context, token int64, st steps, d *delivered, deferred *int) ([]transition, error) {
	ts := st.transitions
	handled := make([]bool, len(ts))
	// settle ends the members a group message told (err nil: they go on to
	// save) or could not tell (they keep their previous state): cut by the
	// deadline, they are counted deferred; else the error is logged once.
	settle := func(members []int, err error, msg string, where ...any) {
		for _, i := range members {
			handled[i] = true
			if err == nil {
				d.transitions = append(d.transitions, ts[i])
			}
		}
		switch {
		case err != nil && ctx.Err() != nil:
			*deferred += len(members)
		case err != nil:
			s.o.Log.WarnContext(ctx, msg, append(where, "alerts", len(members), "error", err)...)
		}
	}
	fires, news := map[fireGroup][]int{}, map[messageGroup][]int{}
	var fireOrder []fireGroup
	var newsOrder []messageGroup
	for i, t := range ts {
		switch {
		case t.notify.Kind == alerts.NotifyFire:
			c := s.channelOf(t)
			if s.o.GroupThreshold < 2 || c == "" {
				continue
			}
			k := fireGroup{c, t.finding.ID}
			if fires[k] == nil {
				fireOrder = append(fireOrder, k)
			}
			fires[k] = append(fires[k], i)
		case t.next.Group && t.next.MessageTS != "":
			k := messageGroup{t.next.Channel, t.next.MessageTS}
			if news[k] == nil {
				newsOrder = append(newsOrder, k)
			}
			news[k] = append(news[k], i)
		}
	}
	for _, k := range fireOrder {
		idx := fires[k]
		if len(idx) < s.o.GroupThreshold {
			continue
		}
		var fresh []int
		for _, i := range idx {
			if ctx.Err() != nil {
				break // deliverAlert counts them deferred
			}
			// The channel is read once per sweep: one answer for all.
			_, found, err := s.alreadyPosted(ctx, k.channel, ts[i].report.Instance, k.finding, st.now)
			if errors.Is(err, store.ErrFenced) {
				return nil, err
			}
			if err != nil && ctx.Err() != nil {
				fresh = nil
				break // deliverAlert counts them deferred
			}
			if err != nil {
				s.o.Log.WarnContext(ctx, "group alert not delivered", "channel", k.channel, "finding", k.finding, "alerts", len(idx), "error", err)
				for _, i := range idx {
					handled[i] = true
				}
				fresh = nil
				break
			}
			if !found {
				fresh = append(fresh, i)
			}
			// Found: deliverAlert points it at its message.
		}
		if len(fresh) < s.o.GroupThreshold {
			continue
		}
		for _, chunk := range metaChunks(ts, fresh) {
			if ctx.Err() != nil {
				break
			}
			if err := s.stillLeads(ctx, token); err != nil {
				return nil, err
			}
			err := s.postGroup(ctx, k, ts, chunk, st.now)
			if errors.Is(err, store.ErrFenced) {
				return nil, err
			}
			settle(chunk, err, "group alert not delivered", "channel", k.channel, "finding", k.finding)
		}
	}
	for _, k := range newsOrder {
		var told []int
		for _, i := range news[k] {
			if ts[i].notify.Kind != alerts.NotifyNone {
				told = append(told, i)
			}
		}
		if len(told) == 0 {
			continue // deliverAlert passes the members on
		}
		if err := s.stillLeads(ctx, token); err != nil {
			return nil, err
		}
		err := s.tellGroup(ctx, k, ts, news[k], st)
		if errors.Is(err, store.ErrFenced) {
			return nil, err
		}
		// Members with nothing to tell are passed on by deliverAlert
		// either way.
		settle(told, err, "group alert news not delivered", "channel", k.channel, "ts", k.ts)
	}
	// Sized once: a sweep may pass on tens of thousands of transitions,
	// and a slice grown by append leaves its smaller copies behind.
	unhandled := 0
	for _, h := range handled {
		if !h {
			unhandled++
		}
	}
	singles := make([]transition, 0, unhandled)
	for i, t := range ts {
		if !handled[i] {
			singles = append(singles, t)
		}
	}
	return singles, nil
}

// channelOf is where an alert's messages go: the channel of its message,
// else its route's.
func (s *Sweeper) channelOf(t transition) string {
	if t.next.Channel != "" {
		return t.next.Channel
	}
	if s.o.ChannelFor != nil {
		return s.o.ChannelFor(t.inst.Tags)
	}
	return ""
}

// metaChunks splits the fires of one group into groups whose instance
// names fit in one message's metadata (maxGroupMeta).
func metaChunks(ts []transition, idx []int) [][]int {
	var out [][]int
	size := 0
	for _, i := range idx {
		n := len(ts[i].report.Instance) + 1
		if len(out) == 0 || size+n > maxGroupMeta {
			out = append(out, nil)
			size = 0
		}
		out[len(out)-1] = append(out[len(out)-1], i)
		size += n
	}
	return out
}

// postGroup posts one group message for the fires idx and points each at
// it.
func (s *Sweeper) postGroup(ctx context.Context, k fireGroup, ts []transition, idx []int, now time.Time) error {
	view := blockkit.GroupView{Finding: ts[idx[0]].finding, Since: now, OnCallGroup: s.o.OnCallGroup}
	var names []string
	for _, i := range idx {
		view.Members = append(view.Members, memberView(ts[i]))
		names = append(names, ts[i].report.Instance)
	}
	m := blockkit.RenderAlertGroup(view, now)
	m.Meta = groupMeta(names, k.finding, stateFiring, now)
	posted, err := s.o.Poster.Post(ctx, k.channel, m)
	if err != nil {
		return err
	}
	for _, i := range idx {
		a := &ts[i].next
		a.Channel, a.MessageTS, a.Group, a.Mark = k.channel, posted, true, ts[i].handling.mark()
		s.remember(k.channel, ts[i].report.Instance, k.finding, postedMessage{ts: posted, group: true})
	}
	return nil
}

// tellGroup redraws a group message from every member (members are the
// transitions idx; members the sweep did not step, such as those on an
// unreachable instance, as stored) and, when a member resolved, escalated
// or is due a reminder, posts one note in its thread.
func (s *Sweeper) tellGroup(ctx context.Context, k messageGroup, ts []transition, idx []int, st steps) error {
	var view blockkit.GroupView
	var change blockkit.GroupChange
	stepped := map[string]bool{}
	var firing []string
	add := func(m blockkit.GroupMember, a store.Alert) {
		view.Members = append(view.Members, m)
		if view.Since.IsZero() || (!a.FiringSince.IsZero() && a.FiringSince.Before(view.Since)) {
			view.Since = a.FiringSince
		}
		if m.Firing {
			firing = append(firing, m.Instance)
		}
	}
	for _, i := range idx {
		t := ts[i]
		stepped[alertKey(t.report.Instance, t.finding.ID)] = true
		view.Finding = t.finding
		add(memberView(t), t.next)
		switch t.notify.Kind {
		case alerts.NotifyResolve:
			change.Resolved = append(change.Resolved, t.report.Instance)
		case alerts.NotifyEscalate:
			change.Escalated = append(change.Escalated, blockkit.GroupMember{Instance: t.report.Instance, Severity: t.next.Severity})
		case alerts.NotifyRemind:
			change.Remind = true
		}
	}
	for _, a := range st.alerts {
		if !a.Group || a.Channel != k.channel || a.MessageTS != k.ts || stepped[alertKey(a.Instance, a.Finding)] {
			continue
		}
		h := handling{silence: matchingSilence(st.silences, a.Instance, a.Finding, st.now)}
		if x, ok := st.acks[alertKey(a.Instance, a.Finding)]; ok && a.State == alerts.StateFiring && x.Episode.Equal(a.FiringSince) {
			h.ack = &x
		}
		add(blockkit.GroupMember{Instance: a.Instance, Severity: a.Severity, Firing: a.State == alerts.StateFiring, Summary: a.Summary,
			Silenced: h.silence != nil, AckedBy: ackedBy(h)}, a)
	}
	view.OnCallGroup = s.o.OnCallGroup
	m := blockkit.RenderAlertGroup(view, st.now)
	state := stateFiring
	if len(firing) == 0 {
		state = stateResolved
	}
	m.Meta = groupMeta(firing, view.Finding.ID, state, view.Since)
	if err := s.o.Poster.Update(ctx, k.channel, k.ts, m); err != nil {
		return err
	}
	if len(change.Resolved)+len(change.Escalated) > 0 || change.Remind {
		change.Firing, change.Of, change.Since = len(firing), len(view.Members), view.Since
		if err := s.o.Poster.Reply(ctx, k.channel, k.ts, blockkit.RenderGroupNote(change)); err != nil {
			return err
		}
	}
	for _, i := range idx {
		if ts[i].next.State == alerts.StateFiring {
			ts[i].next.Mark = ts[i].handling.mark()
		}
	}
	return nil
}

// memberView is one stepped alert as its group message shows it. A member
// that fires again is a new alert: in its old group it shows resolved.
func memberView(t transition) blockkit.GroupMember {
	m := blockkit.GroupMember{Instance: t.report.Instance, Severity: t.next.Severity, Summary: t.next.Summary,
		Firing: t.next.State == alerts.StateFiring, Silenced: t.silence != nil, AckedBy: ackedBy(t.handling)}
	if t.obs.Present {
		m.Evidence = t.finding.Evidence
	}
	return m
}

func ackedBy(h handling) string {
	if h.ack == nil {
		return ""
	}
	return h.ack.By
}
