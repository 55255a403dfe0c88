package sweep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/requestid"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// Poster delivers alert messages; the Slack transport implements it.
type Poster interface {
	Post(ctx context.Context, channel string, m blockkit.Message) (ts string, err error)
	Update(ctx context.Context, channel, ts string, m blockkit.Message) error
	Reply(ctx context.Context, channel, threadTS string, m blockkit.Message) error
}

// Finder finds the messages of a channel that carry metadata of a type,
// posted since a time, by ts; the Slack transport implements it.
type Finder interface {
	Tagged(ctx context.Context, channel, metaType string, since time.Time) (map[string]blockkit.Meta, error)
}

// Forwarder hands the sweep's alerts to another alerting system; the
// Alertmanager client implements it.
type Forwarder interface {
	Forward(ctx context.Context, alerts []store.Alert, now time.Time) error
}

// Fleet probes every instance; handlers.Service implements it.
type Fleet interface {
	Fleet(ctx context.Context, tag string) ([]*handlers.Report, error)
	Instances(tag string) []handlers.Instance
}

// Options configure a Sweeper.
type Options struct {
	Fleet  Fleet
	Store  *store.Store
	Poster Poster
	// Finder, when set, is asked before an alert is posted whether its
	// message is already in the channel (see deliver). Without it an
	// alert whose record was lost is posted again.
	Finder   Finder
	Leader   *Leader
	Runbooks *runbooks.Library
	// ChannelFor routes an instance's alerts by its tags; "" posts nothing.
	ChannelFor  func(tags []string) string
	OnCallGroup string
	// RepeatInterval is how often the storm summary repeats (4h when 0).
	RepeatInterval time.Duration
	// Timing is an alert's timing for a finding on an instance (config's
	// alert_timing over alerts.repeat_interval); nil: the runbooks' timing
	// with RepeatInterval.
	Timing         func(inst handlers.Instance, finding string) alerts.Timing
	StormThreshold float64
	// Refresh, when set, runs before each sweep (re-expanding cluster and
	// Sentinel entries).
	Refresh func(ctx context.Context)
	// Forward, when set, is given every alert as saved at the end of each
	// sweep (bot/alertmanager sends them to Alertmanager's API).
	Forward Forwarder
	// Metrics records sweep durations and probe errors; nil records nothing.
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// Sweeper runs one sweep per tick.
type Sweeper struct {
	o       Options
	running atomic.Bool
	// skipped counts the ticks that came while the running sweep ran.
	skipped atomic.Int64
	last    atomic.Int64 // unix nanoseconds of the last finished sweep

	// posted are the firing alert messages found in each channel during
	// the running sweep (channel, then alert key, to ts), read once per
	// channel and sweep; only the sweep's goroutine uses it.
	posted map[string]map[string]string
}

// LastSweep is when this replica's last sweep finished (zero: none yet).
// The fleet's, by whichever replica led, is in the store (LastFleetSweep).
func (s *Sweeper) LastSweep() time.Time {
	if n := s.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// New returns a Sweeper.
func New(o Options) *Sweeper {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StormThreshold <= 0 {
		o.StormThreshold = alerts.DefaultStormThreshold
	}
	if o.Timing == nil {
		repeat := o.RepeatInterval
		o.Timing = func(_ handlers.Instance, finding string) alerts.Timing {
			t := alerts.DefaultTiming(finding)
			if repeat > 0 {
				t.RepeatInterval = repeat
			}
			return t
		}
	}
	return &Sweeper{o: o}
}

// errFenced stops a sweep whose leader lost the lease mid-way.
var errFenced = fmt.Errorf("lost the leader lease: not posting: %w", store.ErrFenced)

// Tick runs one sweep if this replica leads and no sweep is running: a
// tick that comes while a sweep runs is skipped (and counted in
// sweeps_skipped_total), and the sweep that overran is logged once, when
// it ends, with its duration and the ticks it made skip.
//
// The sweep runs on a context fenced by the lease (Leader.Fence): from the
// moment another replica takes the lease, every write of this sweep to the
// store (history, snapshots, alerts) is refused by the store and every
// Slack attempt by the poster, retries after a 429 included. A leader
// resumed after a pause therefore neither starts a sweep on the lease it
// remembers nor finishes one it had started.
func (s *Sweeper) Tick(ctx context.Context) {
	if _, ok := s.o.Leader.Token(); !ok {
		return
	}
	if !s.running.CompareAndSwap(false, true) {
		s.skipped.Add(1)
		s.o.Metrics.SweepSkipped()
		return
	}
	began := s.o.Now()
	defer func() {
		if n := s.skipped.Swap(0); n > 0 {
			s.o.Log.WarnContext(ctx, "sweep overran the schedule's interval: the ticks that came while it ran were skipped", "duration", s.o.Now().Sub(began), "skipped_ticks", n)
		}
		s.running.Store(false)
	}()
	ctx = requestid.With(ctx, requestid.New())
	ctx, token, ok := s.o.Leader.Fence(ctx)
	if !ok {
		s.o.Metrics.Fenced("sweep")
		s.o.Log.WarnContext(ctx, "not sweeping: the store does not confirm this replica's lease (another replica took it, or the store is down)")
		return
	}
	start := s.o.Now()
	var errs map[string]int
	err := handlers.Safely(func() error {
		var err error
		errs, err = s.sweep(ctx, token)
		return err
	})
	if pe, ok := handlers.AsPanic(err); ok {
		// This sweep is lost; the next tick starts afresh (the running
		// flag is cleared on the way out), and the fleet's sweep age in
		// /metrics grows if every sweep fails this way.
		s.o.Metrics.Panicked(ctx, s.o.Log, "sweep", pe)
		return
	}
	if errors.Is(err, store.ErrFenced) {
		s.o.Log.WarnContext(ctx, "sweep stopped: another replica took the leader lease; nothing more is written or posted", "error", err)
		return
	}
	if err != nil {
		s.o.Log.WarnContext(ctx, "sweep stopped", "error", err)
		return
	}
	end := s.o.Now()
	if err := s.o.Store.RecordFleetSweep(ctx, end, s.o.Leader.Holder()); err != nil {
		s.o.Log.WarnContext(ctx, "record the fleet sweep", "error", err)
	} else {
		s.o.Metrics.FleetSweep(end)
	}
	s.last.Store(end.UnixNano())
	s.o.Metrics.Sweep(s.o.Now().Sub(start), errs)
	s.o.Log.InfoContext(ctx, "sweep done", "duration", s.o.Now().Sub(start), "instances", len(s.o.Fleet.Instances("")))
}

func (s *Sweeper) sweep(ctx context.Context, token int64) (map[string]int, error) {
	s.posted = nil // a new sweep reads the channels afresh
	if s.o.Refresh != nil {
		s.o.Refresh(ctx)
	}
	reports, err := s.o.Fleet.Fleet(ctx, "")
	if err != nil {
		return nil, err
	}
	probeErrors := map[string]int{}
	for _, r := range reports {
		if r.Failed() {
			probeErrors[string(r.Error.Class)]++
		}
	}
	if err := s.record(ctx, token, reports); err != nil {
		return probeErrors, err
	}
	return probeErrors, nil
}

// record stores what a sweep saw and moves every alert.
func (s *Sweeper) record(ctx context.Context, token int64, reports []*handlers.Report) error {
	now := s.o.Now()
	instances := map[string]handlers.Instance{}
	for _, inst := range s.o.Fleet.Instances("") {
		instances[inst.Name] = inst
	}
	unreachable := map[string]bool{}
	var records []store.SweepRecord
	for _, r := range reports {
		unreachable[r.Instance] = r.Failed()
		if r.Snapshot != nil && !r.Failed() {
			records = append(records, store.SweepRecord{Instance: r.Instance, Snapshot: r.Snapshot, Point: handlers.PointOf(r.Snapshot)})
		}
	}
	// One transaction (one fsync) for the sweep's history samples and the
	// snapshots due to be persisted, not one or two per instance.
	err := s.o.Store.RecordSweep(ctx, records)
	if errors.Is(err, store.ErrFenced) {
		return err
	}
	if err != nil {
		s.o.Log.WarnContext(ctx, "store sweep records", "error", err)
	}
	storm := alerts.Storm(unreachable, s.o.StormThreshold)
	if err := s.stormSummary(ctx, token, storm, unreachable, now); err != nil {
		return err
	}

	stored, err := s.o.Store.Alerts(ctx)
	if err != nil {
		return fmt.Errorf("read alerts: %w", err)
	}
	byKey := map[string]store.Alert{}
	for _, a := range stored {
		byKey[a.Instance+"\x00"+a.Finding] = a
	}
	silences, err := s.o.Store.Silences(ctx)
	if err != nil {
		return fmt.Errorf("read silences: %w", err)
	}
	acks, err := s.o.Store.Acks(ctx)
	if err != nil {
		return fmt.Errorf("read acknowledgements: %w", err)
	}
	ackByKey := map[string]store.Ack{}
	for _, x := range acks {
		ackByKey[alertKey(x.Instance, x.Finding)] = x
	}
	handled := func(instance, finding string) handling {
		h := handling{silence: matchingSilence(silences, instance, finding, now)}
		if x, ok := ackByKey[alertKey(instance, finding)]; ok {
			h.ack = &x
		}
		return h
	}
	for _, r := range reports {
		seen := map[string]bool{}
		holding := s.holding(r, instances[r.Instance], byKey)
		for _, f := range r.Findings {
			if storm && f.ID == "unreachable" {
				continue // one fleet summary instead of an alert per instance
			}
			// Info findings are context for a diagnosis, not pages.
			if f.Severity < handlers.SeverityWarning {
				continue
			}
			seen[f.ID] = true
			obs := alerts.Observation{Present: true, Severity: f.Severity, Summary: f.Summary}
			if err := s.step(ctx, token, r, f, byKey[r.Instance+"\x00"+f.ID], obs, handled(r.Instance, f.ID), instances[r.Instance], now); err != nil {
				return err
			}
		}
		for key, a := range byKey {
			inst, id, _ := strings.Cut(key, "\x00")
			if inst != r.Instance || seen[id] || (storm && id == "unreachable") {
				continue
			}
			// An unreachable instance tells nothing about its other
			// findings: they keep their state until it answers again.
			if r.Failed() && id != "unreachable" {
				continue
			}
			spec, _ := handlers.SpecFor(id)
			f := handlers.Finding{ID: id, Title: spec.Title, Severity: severityOf(a.Severity), Summary: a.Fields["summary"]}
			obs := alerts.Observation{}
			if held, ok := holding[id]; ok {
				// Below the firing threshold but not below the clearing
				// one: still present, at the severity it held.
				obs = alerts.Observation{Present: true, Severity: max(held.Severity, severityOf(a.Severity)), Summary: held.Summary}
			}
			if err := s.step(ctx, token, r, f, a, obs, handled(inst, id), instances[inst], now); err != nil {
				return err
			}
		}
	}
	if err := s.expireSilences(ctx, token, silences, byKey, now); err != nil {
		return err
	}
	if s.o.Metrics == nil && s.o.Forward == nil {
		return nil
	}
	all, err := s.o.Store.Alerts(ctx)
	if err != nil {
		s.o.Log.WarnContext(ctx, "read alerts after the sweep", "error", err)
		return nil
	}
	if s.o.Metrics != nil {
		byState := map[string]int{}
		for _, a := range all {
			byState[a.State]++
		}
		s.o.Metrics.Alerts(byState)
	}
	if s.o.Forward != nil {
		if err := s.o.Forward.Forward(ctx, all, now); err != nil {
			s.o.Log.WarnContext(ctx, "alerts not forwarded; the next sweep sends them again", "error", err)
		}
	}
	return nil
}

// ClearMargin is how far below its firing threshold a finding must fall
// before its alert starts to clear (hysteresis): 5%.
const ClearMargin = 0.05

// holding returns the findings of firing alerts that are gone at the
// firing thresholds but still present at the clearing ones.
func (s *Sweeper) holding(r *handlers.Report, inst handlers.Instance, alertsByKey map[string]store.Alert) map[string]handlers.Finding {
	if r.Snapshot == nil || r.Failed() {
		return nil
	}
	firing := false
	for key, a := range alertsByKey {
		if strings.HasPrefix(key, r.Instance+"\x00") && a.State == string(alerts.StateFiring) {
			firing = true
			break
		}
	}
	if !firing {
		return nil
	}
	out := map[string]handlers.Finding{}
	for _, f := range handlers.Evaluate(handlers.Input{Cur: r.Snapshot, MemoryLimit: inst.MemoryLimit, T: inst.Thresholds.Clearing(ClearMargin)}) {
		if f.Severity >= handlers.SeverityWarning {
			out[f.ID] = f
		}
	}
	return out
}

// handling is who is handling an alert: the silence that matches it and
// its acknowledgement, each nil when there is none.
type handling struct {
	silence *store.Silence
	ack     *store.Ack
}

// mark is what an alert message shows of the handling, as remembered in
// the alert's record: when it changes, the message is redrawn.
func (h handling) mark() string {
	var m []string
	if h.silence != nil {
		m = append(m, "silence "+h.silence.ID)
	}
	if h.ack != nil {
		m = append(m, "ack "+h.ack.By)
	}
	return strings.Join(m, ", ")
}

// step moves one alert through its lifecycle and posts what it says.
func (s *Sweeper) step(ctx context.Context, token int64, r *handlers.Report, f handlers.Finding, stored store.Alert, obs alerts.Observation, h handling, inst handlers.Instance, now time.Time) error {
	prev := fromStore(stored)
	prev.Instance, prev.Finding = r.Instance, f.ID
	if h.ack != nil && (prev.State != alerts.StateFiring || !h.ack.Episode.Equal(prev.FiringSince)) {
		// Given for an episode that has ended.
		if err := s.o.Store.DeleteAck(ctx, r.Instance, f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		h.ack = nil
	}
	prev.Acked = h.ack != nil
	timing := s.o.Timing(inst, f.ID)
	next, n := alerts.Step(prev, obs, timing, h.silence != nil, now)
	a := toStore(next, stored)
	if n.Kind == alerts.NotifyNone && next.State == alerts.StateFiring && a.MessageTS != "" && h.mark() != stored.Fields["mark"] {
		// Someone silenced, unsilenced or acknowledged it: the open
		// message says so.
		n.Kind = notifyRedraw
	}
	if n.Kind != alerts.NotifyNone {
		if !s.o.Leader.Still(ctx, token) {
			return errFenced
		}
		if err := s.deliver(ctx, n, r, f, &a, h, inst.Tags, now); err != nil {
			if errors.Is(err, store.ErrFenced) {
				return err
			}
			// Keep the previous state so the next sweep tries again.
			s.o.Log.WarnContext(ctx, "alert not delivered", "instance", r.Instance, "finding", f.ID, "error", err)
			return nil
		}
	}
	if next.State == alerts.StateInactive && a.MessageTS == "" {
		if stored.Instance != "" {
			if err := s.o.Store.DeleteAlert(ctx, r.Instance, f.ID); errors.Is(err, store.ErrFenced) {
				return err
			}
		}
		return nil
	}
	if sameAlert(a, stored) {
		return nil // most alerts do not change between sweeps: skip the write
	}
	return s.o.Store.PutAlert(ctx, a)
}

// sameAlert compares as stored: times read back from the store have lost
// their monotonic clock reading, so reflect.DeepEqual would always differ.
func sameAlert(a, b store.Alert) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// notifyRedraw redraws an open alert message whose handling changed; the
// lifecycle has nothing to post.
const notifyRedraw alerts.NotifyKind = -1

func (s *Sweeper) deliver(ctx context.Context, n alerts.Notification, r *handlers.Report, f handlers.Finding, a *store.Alert, h handling, tags []string, now time.Time) error {
	channel := a.Channel
	if channel == "" && s.o.ChannelFor != nil {
		channel = s.o.ChannelFor(tags)
	}
	if channel == "" {
		return nil // history only: nowhere to post
	}
	f.Severity = n.Alert.Severity
	view := blockkit.AlertView{Instance: r.Instance, Finding: f, State: "firing", Since: n.Alert.FiringSince, OnCallGroup: s.o.OnCallGroup, Report: r}
	if x := h.silence; x != nil {
		view.Silence = &blockkit.SilenceMark{ID: x.ID, By: x.CreatedBy, Until: x.Until, AllFindings: x.Finding == ""}
	}
	if x := h.ack; x != nil {
		view.Ack = &blockkit.AckMark{By: x.By, At: x.At}
	}
	alert := func(state string) blockkit.Message {
		m := blockkit.RenderAlert(view, s.o.Runbooks, now)
		m.Meta = alertMeta(r.Instance, f.ID, state, n.Alert.FiringSince)
		if state == stateFiring {
			a.Fields["mark"] = h.mark()
		}
		return m
	}
	switch n.Kind {
	case notifyRedraw:
		return s.o.Poster.Update(ctx, channel, a.MessageTS, alert(stateFiring))
	case alerts.NotifyFire:
		m := alert(stateFiring)
		ts, found, err := s.alreadyPosted(ctx, channel, r.Instance, f.ID, now)
		if err != nil {
			return err
		}
		if found {
			// Posted before its record was saved (a crash, the store
			// failing or restarting empty, a leader that lost the lease
			// after posting): the message is the record. Redraw it with
			// what is true now instead of posting a second one.
			s.o.Log.InfoContext(ctx, "alert message already in the channel: using it", "instance", r.Instance, "finding", f.ID, "ts", ts)
			if err := s.o.Poster.Update(ctx, channel, ts, m); err != nil {
				return err
			}
		} else if ts, err = s.o.Poster.Post(ctx, channel, m); err != nil {
			return err
		}
		s.remember(channel, r.Instance, f.ID, ts)
		a.Channel, a.MessageTS = channel, ts
	case alerts.NotifyEscalate:
		if err := s.o.Poster.Update(ctx, channel, a.MessageTS, alert(stateFiring)); err != nil {
			return err
		}
		return s.o.Poster.Reply(ctx, channel, a.MessageTS, blockkit.RenderNote(fmt.Sprintf("Now %s: %s", n.Alert.Severity, f.Summary)))
	case alerts.NotifyRemind:
		if a.Fields["mark"] != h.mark() {
			// A silence just ended: the message no longer says it.
			if err := s.o.Poster.Update(ctx, channel, a.MessageTS, alert(stateFiring)); err != nil {
				return err
			}
		}
		return s.o.Poster.Reply(ctx, channel, a.MessageTS, blockkit.RenderNote(fmt.Sprintf("Still %s since %s: %s", n.Alert.Severity, n.Alert.FiringSince.UTC().Format("15:04 UTC"), f.Summary)))
	case alerts.NotifyResolve:
		view.State = "resolved"
		if err := s.o.Poster.Update(ctx, channel, a.MessageTS, alert(stateResolved)); err != nil {
			return err
		}
		if err := s.o.Poster.Reply(ctx, channel, a.MessageTS, blockkit.RenderNote("Resolved: the finding has been clear for the clear period.")); err != nil {
			return err
		}
		// A later recurrence is a new alert with a new message.
		a.Channel, a.MessageTS = "", ""
	}
	return nil
}

// stormSummary posts one message when most of the fleet is unreachable in
// one sweep (the bot lost its network, not a thousand instances down), and
// at most once per repeat interval while it lasts.
func (s *Sweeper) stormSummary(ctx context.Context, token int64, storm bool, unreachable map[string]bool, now time.Time) error {
	stored, err := s.o.Store.Alert(ctx, "*fleet*", "unreachable")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	down := 0
	for _, u := range unreachable {
		if u {
			down++
		}
	}
	prev := fromStore(stored)
	prev.Instance, prev.Finding = "*fleet*", "unreachable"
	timing := alerts.Timing{For: map[handlers.Severity]time.Duration{handlers.SeverityCritical: 0}, ClearFor: 2 * time.Minute, RepeatInterval: s.o.RepeatInterval}
	if timing.RepeatInterval <= 0 {
		timing.RepeatInterval = 4 * time.Hour
	}
	summary := fmt.Sprintf("%d of %d instances unreachable in one sweep: probably the bot's own network or DNS, not the instances.", down, len(unreachable))
	next, n := alerts.Step(prev, alerts.Observation{Present: storm, Severity: handlers.SeverityCritical, Summary: summary}, timing, false, now)
	a := toStore(next, stored)
	if n.Kind != alerts.NotifyNone && s.o.ChannelFor != nil {
		if !s.o.Leader.Still(ctx, token) {
			return errFenced
		}
		channel := a.Channel
		if channel == "" {
			channel = s.o.ChannelFor(nil)
		}
		if channel != "" {
			note := blockkit.RenderNote(":rotating_light: " + summary)
			if n.Kind == alerts.NotifyResolve {
				note = blockkit.RenderNote(":large_green_circle: The fleet is reachable again.")
			}
			if _, err := s.o.Poster.Post(ctx, channel, note); err != nil {
				return err
			}
			a.Channel = channel
		}
	}
	if next.State == alerts.StateInactive {
		if stored.Instance != "" {
			return s.o.Store.DeleteAlert(ctx, "*fleet*", "unreachable")
		}
		return nil
	}
	return s.o.Store.PutAlert(ctx, a)
}

// expireSilences says in the alert's thread when a silence ends, then
// forgets it.
func (s *Sweeper) expireSilences(ctx context.Context, token int64, silences []store.Silence, alertsByKey map[string]store.Alert, now time.Time) error {
	for _, x := range silences {
		if now.Before(x.Until) {
			continue
		}
		for key, a := range alertsByKey {
			inst, id, _ := strings.Cut(key, "\x00")
			if inst != x.Instance || (x.Finding != "" && x.Finding != id) || a.MessageTS == "" {
				continue
			}
			if !s.o.Leader.Still(ctx, token) {
				return errFenced
			}
			_ = s.o.Poster.Reply(ctx, a.Channel, a.MessageTS, blockkit.RenderSilenceExpired(x.CreatedBy))
		}
		if err := s.o.Store.DeleteSilence(ctx, x.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// matchingSilence is the active silence of (instance, finding): one of
// that finding first, else one of every finding on the instance; nil when
// none. A silence of one finding never matches another.
func matchingSilence(list []store.Silence, instance, finding string, now time.Time) *store.Silence {
	var all *store.Silence
	for i, x := range list {
		if x.Instance != instance || !now.Before(x.Until) {
			continue
		}
		switch x.Finding {
		case finding:
			return &list[i]
		case "":
			all = &list[i]
		}
	}
	return all
}

// The store keeps alerts in its own record; the lifecycle's extra times
// travel in Fields so the store does not need to know the lifecycle.
func toStore(a alerts.Alert, prev store.Alert) store.Alert {
	out := store.Alert{Schema: store.SchemaVersion, Instance: a.Instance, Finding: a.Finding, State: string(a.State),
		Severity: a.Severity.String(), Since: a.PendingSince, LastChange: a.FiringSince, LastNotified: a.LastNotified,
		Channel: prev.Channel, MessageTS: prev.MessageTS, Fields: map[string]string{"summary": a.Summary}}
	for name, t := range map[string]time.Time{"clear_since": a.ClearSince, "lower_since": a.LowerSince, "resolved_at": a.ResolvedAt} {
		if !t.IsZero() {
			out.Fields[name] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	out.Fields["notified"] = strconv.Itoa(int(a.Notified))
	if mark := prev.Fields["mark"]; mark != "" && out.MessageTS != "" {
		out.Fields["mark"] = mark
	}
	return out
}

func fromStore(s store.Alert) alerts.Alert {
	t := func(name string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s.Fields[name]); return v }
	n, _ := strconv.Atoi(s.Fields["notified"])
	return alerts.Alert{Instance: s.Instance, Finding: s.Finding, State: alerts.State(s.State), Severity: severityOf(s.Severity),
		PendingSince: s.Since, FiringSince: s.LastChange, LastNotified: s.LastNotified, ClearSince: t("clear_since"),
		LowerSince: t("lower_since"), ResolvedAt: t("resolved_at"), Notified: handlers.Severity(n), Summary: s.Fields["summary"]}
}

func severityOf(name string) handlers.Severity {
	s, _ := handlers.ParseSeverity(name)
	return s
}
