package sweep

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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

// Fleet probes every instance, the ones named in timedOut (whose probe
// timed out the sweep before) with a short timeout;
// handlers.Service implements it.
type Fleet interface {
	Fleet(ctx context.Context, tag string, timedOut map[string]bool) ([]*handlers.Report, error)
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
	// GroupThreshold is how many alerts of one finding must fire in one
	// channel in one sweep to be posted as one group message (see
	// deliverGroups); 0 or 1 posts every alert by itself.
	GroupThreshold int
	// Interval is the time between two sweeps (the schedule's): delivery
	// stops in time for the next one (deliverBudget). 0: no deadline.
	Interval time.Duration
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
	// the running sweep (channel, then alert key, to message), read once per
	// channel and sweep; only the sweep's goroutine uses it.
	posted map[string]map[string]postedMessage
	// timedOut are the instances whose probe timed out in the last
	// sweep with the whole timeout; the next sweep probes them with a
	// short timeout (see handlers.Service.Fleet). Only the sweep's
	// goroutine uses it. It was learnt under the lease token lease: a
	// sweep under another token (this replica has just taken the lease,
	// or taken it back) starts again from the stored alerts
	// (timedOutBefore).
	timedOut map[string]bool
	lease    int64
	// unanswered are the instances whose probe timed out in the last
	// sweep, short or whole, published for TimedOut; a map once
	// published is never written.
	unanswered atomic.Pointer[map[string]bool]
	// followed is what Follow last read from the store on a replica that
	// does not lead: the leader's view, for TimedOut.
	followed atomic.Pointer[followed]
}

// followed is a follower's copy of the leader's unanswered instances.
type followed struct {
	at    time.Time
	names map[string]bool
}

// TimedOut returns the instances whose probe timed out in this replica's
// last sweep, for the fleet views that probe the whole fleet outside the
// sweep (the fleet verb, the digest): they give those instances a short
// first probe, and their reports say the failure is unconfirmed. While
// this replica does not lead, it is what Follow last read of the
// leader's sweeps, if that is recent (followFresh); nil otherwise and
// before the first sweep: a former leader's last sweep may be hours old.
// The map is shared: read it, never write it.
//
// The sweep keeps the set and others read a snapshot, rather than the
// service keeping it from every fleet probe, so that what a chat command
// saw never changes what the sweep does next: a timeout in a `fleet`
// command would otherwise turn the next sweep's whole probe into a short
// one, whose failure is held unconfirmed, and delay an unreachable alert
// by a sweep. Data flows one way, sweep to view.
func (s *Sweeper) TimedOut() map[string]bool {
	if _, leads := s.o.Leader.Token(); !leads {
		if f := s.followed.Load(); f != nil && s.o.Now().Sub(f.at) < s.followFresh() {
			return f.names
		}
		return nil
	}
	if m := s.unanswered.Load(); m != nil {
		return *m
	}
	return nil
}

// Follow is a follower's part of a tick. A replica that does not lead
// probes no fleet, yet serves commands too: it reads from the store the
// instances whose unreachable alert the leader's sweeps keep pending or
// firing after a timeout (as a new leader does, timedOutBefore), so that
// its fleet verb gives them the short probe (TimedOut) and its Slack
// commands about them go to the slow lane from the start (the names it
// returns; serve hands them to the bot). On the leader it does nothing and
// returns nil: its own sweep knows better.
func (s *Sweeper) Follow(ctx context.Context) ([]string, error) {
	if _, leads := s.o.Leader.Token(); leads {
		return nil, nil
	}
	stored, err := s.o.Store.Alerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	names := timedOutBefore(stored)
	s.followed.Store(&followed{at: s.o.Now(), names: names})
	return slices.Sorted(maps.Keys(names)), nil
}

// followFresh is how long what Follow read stands for the leader's view:
// two sweep intervals, so one missed tick does not drop it (5 minutes
// without an interval).
func (s *Sweeper) followFresh() time.Duration {
	if s.o.Interval <= 0 {
		return 5 * time.Minute
	}
	return 2 * s.o.Interval
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
	var done swept
	err := handlers.Safely(func() error {
		var err error
		done, err = s.sweep(ctx, token)
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
	s.o.Metrics.Sweep(s.o.Now().Sub(start), done.probeErrors)
	for _, st := range done.stages {
		s.o.Metrics.SweepStage(st.name, st.took)
	}
	s.o.Log.InfoContext(ctx, "sweep done", "duration", s.o.Now().Sub(start), "instances", done.instances, "stages", done.stagesText())
}

// A sweep is a chain of small stages, each with one input and one output,
// as Alertmanager's notify pipeline: observe probes the fleet and reads
// what the store remembers, judge decides what each instance shows, step
// moves every alert through its lifecycle, deliver posts what changed,
// save writes what was delivered, and forward hands the saved alerts on.
// Only observe reads the store and only save writes it.
func (s *Sweeper) sweep(ctx context.Context, token int64) (swept, error) {
	began := s.o.Now()
	done := swept{lapped: began}
	seen, err := s.observe(ctx)
	done.lap("observe", s.o.Now())
	if err != nil {
		return done, err
	}
	done.instances, done.probeErrors = len(seen.probes), seen.probeErrors()
	steps := s.step(s.judge(seen))
	done.lap("judge", s.o.Now())
	delivered, err := s.deliver(ctx, token, steps, s.deliverBudget(s.o.Now().Sub(began)))
	done.lap("deliver", s.o.Now())
	// What was delivered is saved even when a later delivery failed, so
	// a posted message keeps its record.
	saved, serr := s.save(ctx, delivered)
	done.lap("save", s.o.Now())
	if err = errors.Join(err, serr); err != nil {
		return done, err
	}
	s.forward(ctx, saved, seen.now)
	done.lap("forward", s.o.Now())
	return done, nil
}

// deliverBudget is how long deliver may take in a sweep that has run for
// elapsed: what is left of the interval, less a fifth of it for saving and
// for the sweep's own jitter, so that the next tick finds no sweep
// running. A sweep whose probes took most of the interval still gets a
// tenth of it, or alerts would never go out while the fleet is slow to
// probe. 0 (no deadline) without an interval.
func (s *Sweeper) deliverBudget(elapsed time.Duration) time.Duration {
	if s.o.Interval <= 0 {
		return 0
	}
	return max(s.o.Interval-s.o.Interval/5-elapsed, s.o.Interval/10)
}

// swept is what Tick logs and counts of a sweep.
type swept struct {
	instances   int
	probeErrors map[string]int
	// stages are the stages that ran, in order, with how long each took:
	// a sweep that overruns its interval says where the time went.
	stages []stage
	lapped time.Time // when the running stage began
}

type stage struct {
	name string
	took time.Duration
}

// lap ends the stage name, begun at the last lap, at now.
func (w *swept) lap(name string, now time.Time) {
	w.stages = append(w.stages, stage{name, now.Sub(w.lapped)})
	w.lapped = now
}

// stagesText is the stages for the log: "observe=1.2s judge=3ms ...".
func (w swept) stagesText() string {
	var b strings.Builder
	for i, st := range w.stages {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", st.name, st.took.Round(time.Millisecond))
	}
	return b.String()
}

// probe is one instance's report beside its configuration.
type probe struct {
	report *handlers.Report
	inst   handlers.Instance
}

// observation is what one sweep saw: every instance probed once, and what
// the store remembers (alerts, silences, acknowledgements), read once.
type observation struct {
	now    time.Time
	probes []probe
	// alerts are the stored alerts in the store's order (instance, then
	// finding); byKey indexes them by alertKey, and byInstance by
	// instance: judging one instance must not read
	// every alert of the fleet (20,000 alerts times 10,000 instances was
	// most of a sweep).
	alerts     []store.Alert
	byKey      map[string]store.Alert
	byInstance map[string][]store.Alert
	silences   []store.Silence
	acks       map[string]store.Ack
}

func (o observation) probeErrors() map[string]int {
	out := map[string]int{}
	for _, p := range o.probes {
		if p.report.Failed() {
			out[string(p.report.Error.Class)]++
		}
	}
	return out
}

// observe probes every instance once and reads the store's alerts,
// silences and acknowledgements once.
func (s *Sweeper) observe(ctx context.Context) (observation, error) {
	s.posted = nil // a new sweep reads the channels afresh
	if s.o.Refresh != nil {
		s.o.Refresh(ctx)
	}
	// The alerts are read before the probes, as only sweeps write them:
	// they say which instances to probe short after a change of leader.
	o := observation{byKey: map[string]store.Alert{}, byInstance: map[string][]store.Alert{}, acks: map[string]store.Ack{}}
	var err error
	if o.alerts, err = s.o.Store.Alerts(ctx); err != nil {
		return o, fmt.Errorf("read alerts: %w", err)
	}
	for _, a := range o.alerts {
		o.byKey[alertKey(a.Instance, a.Finding)] = a
		o.byInstance[a.Instance] = append(o.byInstance[a.Instance], a)
	}
	if fence, _ := store.FenceOf(ctx); s.timedOut == nil || fence.Token != s.lease {
		s.timedOut, s.lease = timedOutBefore(o.alerts), fence.Token
	}
	reports, err := s.o.Fleet.Fleet(ctx, "", s.timedOut)
	if err != nil {
		return observation{}, err
	}
	// A short probe can only keep an instance unreachable that was
	// already, so judge's hysteresis never sees a reachable instance
	// turn unreachable by one; an unconfirmed failure is left out of
	// timedOut, so the next sweep gives that instance the whole timeout.
	s.timedOut = map[string]bool{}
	unanswered := map[string]bool{}
	for _, r := range reports {
		if r.Failed() && r.Error.Class == handlers.ClassTimeout {
			unanswered[r.Instance] = true
			if !r.Error.Unconfirmed {
				s.timedOut[r.Instance] = true
			}
		}
	}
	s.unanswered.Store(&unanswered)
	o.now = s.o.Now()
	instances := map[string]handlers.Instance{}
	for _, inst := range s.o.Fleet.Instances("") {
		instances[inst.Name] = inst
	}
	for _, r := range reports {
		o.probes = append(o.probes, probe{report: r, inst: instances[r.Instance]})
	}
	if o.silences, err = s.o.Store.Silences(ctx); err != nil {
		return o, fmt.Errorf("read silences: %w", err)
	}
	acks, err := s.o.Store.Acks(ctx)
	if err != nil {
		return o, fmt.Errorf("read acknowledgements: %w", err)
	}
	for _, x := range acks {
		o.acks[alertKey(x.Instance, x.Finding)] = x
	}
	return o, nil
}

// timedOutBefore is where a sweep under a new lease token starts its
// short probes: the instances whose stored unreachable alert (pending or
// firing) came from a probe that timed out, as the previous leader's last
// sweeps saw them. Without it the first sweep of a replica that takes the
// lease waited the whole timeout on every dead instance.
//
// Whether that last probe was short or whole is not stored, so an
// instance whose last probe was short may get a second short one in a
// row: a short failure holds its alert where it is (judge), the sweep
// after gives it the whole timeout, and an instance that answers is
// reported as any other.
func timedOutBefore(stored []store.Alert) map[string]bool {
	out := map[string]bool{}
	for _, a := range stored {
		if a.Finding == "unreachable" && a.Instance != fleetInstance && a.ErrorClass == handlers.ClassTimeout &&
			(a.State == alerts.StatePending || a.State == alerts.StateFiring) {
			out[a.Instance] = true
		}
	}
	return out
}

// fleetInstance and fleetFinding name the storm summary's alert: one for the whole fleet.
const fleetInstance, fleetFinding = "*fleet*", "unreachable"

// judgement is what a sweep concludes from its observation: whether the
// fleet storms, and the observation of every alert to step.
type judgement struct {
	observation
	storm bool
	// down of fleet instances did not answer.
	down, fleet int
	verdicts    []verdict
}

// verdict is one (instance, finding) as this sweep sees it.
//
// It points at its probe rather than copying it: a probe (its instance's
// configuration) is most of a verdict's size, a sweep of 10,000
// instances has 20,000 verdicts or more, and each is copied into a
// transition and again into what deliver passes on.
type verdict struct {
	*probe
	finding handlers.Finding
	obs     alerts.Observation
	stored  store.Alert // zero when the store has none
}

// judge applies the storm rule and hysteresis to the observation: every
// finding at warning or above is present, every stored alert the report
// no longer shows is absent unless it holds above its clearing threshold,
// and an unreachable instance leaves its other alerts as they are.
func (s *Sweeper) judge(o observation) judgement {
	unreachable := map[string]bool{}
	for _, p := range o.probes {
		unreachable[p.report.Instance] = p.report.Failed()
	}
	j := judgement{observation: o, fleet: len(unreachable), storm: alerts.Storm(unreachable, s.o.StormThreshold)}
	for _, u := range unreachable {
		if u {
			j.down++
		}
	}
	for i := range o.probes {
		p := &o.probes[i]
		r := p.report
		seen := map[string]bool{}
		stored := o.byInstance[r.Instance]
		holding := holding(r, p.inst, stored)
		// A short probe's timeout (unconfirmed) holds the instance's
		// unreachable alert where it is: it was unreachable by a whole
		// probe the sweep before, and the next sweep's whole probe says
		// whether it still is. Counted, it could fire a pending alert
		// that the whole timeout would have cleared.
		hold := r.Failed() && r.Error.Unconfirmed
		for _, f := range r.Findings {
			if j.storm && f.ID == "unreachable" {
				continue // one fleet summary instead of an alert per instance
			}
			if hold && f.ID == "unreachable" {
				continue
			}
			// Info findings are context for a diagnosis, not pages.
			if f.Severity < handlers.SeverityWarning {
				continue
			}
			seen[f.ID] = true
			j.verdicts = append(j.verdicts, verdict{probe: p, finding: f, stored: o.byKey[alertKey(r.Instance, f.ID)],
				obs: alerts.Observation{Present: true, Severity: f.Severity, Summary: f.Summary}})
		}
		for _, a := range stored {
			id := a.Finding
			if seen[id] || (j.storm && id == "unreachable") || (hold && id == "unreachable") {
				continue
			}
			// An unreachable instance tells nothing about its other
			// findings: they keep their state until it answers again.
			if r.Failed() && id != "unreachable" {
				continue
			}
			spec, _ := handlers.SpecFor(id)
			v := verdict{probe: p, stored: a, finding: handlers.Finding{ID: id, Title: spec.Title, Severity: a.Severity, Summary: a.Summary}}
			if held, ok := holding[id]; ok {
				// Below the firing threshold but not below the clearing
				// one: still present, at the severity it held.
				v.obs = alerts.Observation{Present: true, Severity: max(held.Severity, a.Severity), Summary: held.Summary}
			}
			j.verdicts = append(j.verdicts, v)
		}
	}
	return j
}

// ClearMargin is how far below its firing threshold a finding must fall
// before its alert starts to clear (hysteresis): 5%.
const ClearMargin = 0.05

// holding returns the findings of firing alerts that are gone at the
// firing thresholds but still present at the clearing ones; stored are
// the instance's alerts.
func holding(r *handlers.Report, inst handlers.Instance, stored []store.Alert) map[string]handlers.Finding {
	if r.Snapshot == nil || r.Failed() {
		return nil
	}
	firing := false
	for _, a := range stored {
		if a.State == alerts.StateFiring {
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

// steps is what the lifecycle makes of a judgement: the storm summary's
// transition, every alert's, and the silences that ended.
type steps struct {
	judgement
	fleet       transition
	transitions []transition
	// staleAcks were given for an episode that has ended.
	staleAcks []store.Ack
	expired   []store.Silence
}

// transition is one alert's step: the record before and after, and what
// to post about it.
type transition struct {
	verdict
	handling
	next   store.Alert
	notify alerts.Notification
}

// step moves every alert through its lifecycle; it is pure, with the
// sweep's time from the observation.
func (s *Sweeper) step(j judgement) steps {
	out := steps{judgement: j}
	summary := fmt.Sprintf("%d of %d instances unreachable in one sweep: probably the bot's own network or DNS, not the instances.", j.down, j.fleet)
	fleet := verdict{stored: j.byKey[alertKey(fleetInstance, fleetFinding)], finding: handlers.Finding{ID: fleetFinding, Summary: summary},
		obs: alerts.Observation{Present: j.storm, Severity: handlers.SeverityCritical, Summary: summary}}
	fleet.probe = &probe{report: &handlers.Report{Instance: fleetInstance}}
	timing := alerts.Timing{For: map[handlers.Severity]time.Duration{handlers.SeverityCritical: 0}, ClearFor: 2 * time.Minute, RepeatInterval: s.o.RepeatInterval}
	if timing.RepeatInterval <= 0 {
		timing.RepeatInterval = 4 * time.Hour
	}
	out.fleet = stepOne(fleet, handling{}, timing, j.now)

	out.transitions = make([]transition, 0, len(j.verdicts))
	for _, v := range j.verdicts {
		key := alertKey(v.report.Instance, v.finding.ID)
		h := handling{silence: matchingSilence(j.silences, v.report.Instance, v.finding.ID, j.now)}
		if x, ok := j.acks[key]; ok {
			if v.stored.State != alerts.StateFiring || !x.Episode.Equal(v.stored.FiringSince) {
				out.staleAcks = append(out.staleAcks, x)
			} else {
				h.ack = &x
			}
		}
		t := stepOne(v, h, s.o.Timing(v.inst, v.finding.ID), j.now)
		if t.notify.Kind == alerts.NotifyNone && t.next.State == alerts.StateFiring && t.next.MessageTS != "" && h.mark() != v.stored.Mark {
			// Someone silenced, unsilenced or acknowledged it: the open
			// message says so.
			t.notify.Kind = notifyRedraw
		}
		out.transitions = append(out.transitions, t)
	}
	// Each transition holds its verdict: the verdicts would otherwise
	// stay in memory, a second copy, until the sweep ends.
	out.verdicts = nil
	for _, x := range j.silences {
		if !j.now.Before(x.Until) {
			out.expired = append(out.expired, x)
		}
	}
	return out
}

func stepOne(v verdict, h handling, timing alerts.Timing, now time.Time) transition {
	prev := v.stored.Alert
	prev.Instance, prev.Finding = v.report.Instance, v.finding.ID
	prev.Acked = h.ack != nil
	next, n := alerts.Step(prev, v.obs, timing, h.silence != nil, now)
	t := transition{verdict: v, handling: h, next: record(next, v.stored), notify: n}
	if v.finding.ID == "unreachable" && v.obs.Present && v.report.Failed() {
		// Kept for a replica that takes the lease (timedOutBefore).
		t.next.ErrorClass = v.report.Error.Class
	}
	return t
}

// delivered is what was posted: the transitions whose news went out (or
// had none), with the messages they now point to. An alert whose
// delivery failed is left out, so it keeps its previous state and the
// next sweep tries again.
type delivered struct {
	// observation is what save writes the history from and what the
	// alerts were before the sweep.
	observation
	staleAcks   []store.Ack
	transitions []transition
	// expired are the silences whose end was told.
	expired []store.Silence
}

// deliver posts the storm summary, the alerts that fired together as
// groups (see deliverGroups), every other alert's news and the end of
// every silence, checking before each post that this replica still holds
// the lease. It stops at the sweep's delivery deadline (deliverBudget):
// the news not told by then is left out, so those alerts keep their
// previous state and the next sweep tells it, and a storm under Slack's
// rate limits never holds up the next sweep.
func (s *Sweeper) deliver(ctx context.Context, token int64, st steps, budget time.Duration) (delivered, error) {
	d := delivered{observation: st.observation, staleAcks: st.staleAcks, transitions: make([]transition, 0, 1+len(st.transitions))}
	if err := s.deliverFleet(ctx, token, &st.fleet); err != nil {
		return d, err
	}
	d.transitions = append(d.transitions, st.fleet)
	if budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, budget)
		defer cancel()
	}
	deferred := 0
	singles, err := s.deliverGroups(ctx, token, st, &d, &deferred)
	if err != nil {
		return d, err
	}
	for _, t := range singles {
		if t.notify.Kind != alerts.NotifyNone {
			if ctx.Err() != nil {
				deferred++
				continue
			}
			if err := s.stillLeads(ctx, token); err != nil {
				return d, err
			}
			if err := s.deliverAlert(ctx, &t, st.now); err != nil {
				switch {
				case errors.Is(err, store.ErrFenced):
					return d, err
				case ctx.Err() != nil:
					deferred++
				default:
					s.o.Log.WarnContext(ctx, "alert not delivered", "instance", t.report.Instance, "finding", t.finding.ID, "error", err)
				}
				continue
			}
		}
		d.transitions = append(d.transitions, t)
	}
	for _, x := range st.expired {
		if ctx.Err() != nil {
			break // told by the next sweep
		}
		// Said in the thread of each alert it silenced, as the store had
		// them when the sweep began.
		for _, a := range st.alerts {
			if a.Instance != x.Instance || (x.Finding != "" && x.Finding != a.Finding) || a.MessageTS == "" {
				continue
			}
			if err := s.stillLeads(ctx, token); err != nil {
				return d, err
			}
			_ = s.o.Poster.Reply(ctx, a.Channel, a.MessageTS, blockkit.RenderSilenceExpired(x.CreatedBy))
		}
		d.expired = append(d.expired, x)
	}
	if deferred > 0 {
		s.o.Metrics.SweepDeferred(deferred)
		s.o.Log.WarnContext(ctx, "delivery deadline passed: the alerts not told yet are left to the next sweep", "deferred", deferred, "budget", budget)
	}
	return d, nil
}

// stillLeads checks before a post that this replica still holds the
// lease. A check cut short by the delivery deadline is not a lost lease:
// the post that follows fails on the same deadline, and is left to the
// next sweep.
func (s *Sweeper) stillLeads(ctx context.Context, token int64) error {
	if s.o.Leader.Still(ctx, token) || ctx.Err() != nil {
		return nil
	}
	return errFenced
}

// deliverFleet posts the storm summary: one message when most of the fleet
// is unreachable in one sweep (the bot lost its network, not a thousand
// instances down), and at most once per repeat interval while it lasts.
func (s *Sweeper) deliverFleet(ctx context.Context, token int64, t *transition) error {
	if t.notify.Kind == alerts.NotifyNone || s.o.ChannelFor == nil {
		return nil
	}
	if !s.o.Leader.Still(ctx, token) {
		return errFenced
	}
	channel := t.next.Channel
	if channel == "" {
		channel = s.o.ChannelFor(nil)
	}
	if channel == "" {
		return nil
	}
	note := blockkit.RenderNote(":rotating_light: " + t.finding.Summary)
	if t.notify.Kind == alerts.NotifyResolve {
		note = blockkit.RenderNote(":large_green_circle: The fleet is reachable again.")
	}
	if _, err := s.o.Poster.Post(ctx, channel, note); err != nil {
		return err
	}
	t.next.Channel = channel
	return nil
}

// save writes what was delivered: the history samples and snapshots in
// one transaction (one fsync), then the alerts that changed, and forgets
// ended acknowledgements and silences. It returns the alerts as they
// stand after the sweep.
func (s *Sweeper) save(ctx context.Context, d delivered) ([]store.Alert, error) {
	var records []store.SweepRecord
	for _, p := range d.probes {
		if r := p.report; r.Snapshot != nil && !r.Failed() {
			records = append(records, store.SweepRecord{Instance: r.Instance, Snapshot: r.Snapshot, Point: handlers.PointOf(r.Snapshot)})
		}
	}
	err := s.o.Store.RecordSweep(ctx, records)
	if errors.Is(err, store.ErrFenced) {
		return nil, err
	}
	if err != nil {
		s.o.Log.WarnContext(ctx, "store sweep records", "error", err)
	}
	for _, x := range d.staleAcks {
		if err := s.o.Store.DeleteAck(ctx, x.Instance, x.Finding); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	// The alerts are written in one batch, the deletes in another: a
	// sweep may change thousands (its first, a storm).
	after := maps.Clone(d.byKey)
	var (
		puts      []store.Alert
		gone      []store.AlertKey
		goneFleet bool
	)
	for _, t := range d.transitions {
		key := alertKey(t.report.Instance, t.finding.ID)
		switch {
		case t.next.State == alerts.StateInactive && (t.next.MessageTS == "" || t.next.Group || t.report.Instance == fleetInstance):
			// A group member whose new episode never fired is gone too:
			// its group message already shows it resolved.
			delete(after, key)
			if t.stored.Instance != "" {
				gone = append(gone, store.AlertKey{Instance: t.report.Instance, Finding: t.finding.ID})
				goneFleet = goneFleet || t.report.Instance == fleetInstance
			}
		case sameAlert(t.next, t.stored):
			// Most alerts do not change between sweeps: skip the write.
		default:
			puts = append(puts, t.next)
			after[key] = t.next
		}
	}
	if err := s.o.Store.PutAlerts(ctx, puts); err != nil {
		return nil, err
	}
	if err := s.o.Store.DeleteAlerts(ctx, gone); err != nil {
		// A member left behind is deleted by a later sweep; the storm
		// summary left behind would stay firing, so that one stops.
		if errors.Is(err, store.ErrFenced) || goneFleet {
			return nil, err
		}
		s.o.Log.WarnContext(ctx, "delete resolved alerts", "alerts", len(gone), "error", err)
	}
	for _, x := range d.expired {
		if err := s.o.Store.DeleteSilence(ctx, x.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	out := slices.Collect(maps.Values(after))
	slices.SortFunc(out, func(a, b store.Alert) int {
		return cmp.Or(cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Finding, b.Finding))
	})
	return out, nil
}

// forward counts the saved alerts by state and hands them to Alertmanager.
// It runs after save, so a leader fenced mid-sweep forwards nothing.
func (s *Sweeper) forward(ctx context.Context, saved []store.Alert, now time.Time) {
	if s.o.Metrics != nil {
		byState := map[string]int{}
		for _, a := range saved {
			byState[string(a.State)]++
		}
		s.o.Metrics.Alerts(byState)
	}
	if s.o.Forward != nil {
		if err := s.o.Forward.Forward(ctx, saved, now); err != nil {
			s.o.Log.WarnContext(ctx, "alerts not forwarded; the next sweep sends them again", "error", err)
		}
	}
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

// deliverAlert posts one alert's news and points its record at the
// message.
func (s *Sweeper) deliverAlert(ctx context.Context, t *transition, now time.Time) error {
	n, r, f, a, h := t.notify, t.report, t.finding, &t.next, t.handling
	channel := a.Channel
	if channel == "" && s.o.ChannelFor != nil {
		channel = s.o.ChannelFor(t.inst.Tags)
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
			a.Mark = h.mark()
		}
		return m
	}
	switch n.Kind {
	case notifyRedraw:
		return s.o.Poster.Update(ctx, channel, a.MessageTS, alert(stateFiring))
	case alerts.NotifyFire:
		m := alert(stateFiring)
		posted, found, err := s.alreadyPosted(ctx, channel, r.Instance, f.ID, now)
		if err != nil {
			return err
		}
		ts := posted.ts
		if found && posted.group {
			// Named in a group message a sweep posted before its records
			// were saved: that message is this alert's.
			a.Channel, a.MessageTS, a.Group = channel, ts, true
			return nil
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
		s.remember(channel, r.Instance, f.ID, postedMessage{ts: ts})
		a.Channel, a.MessageTS, a.Group = channel, ts, false
	case alerts.NotifyEscalate:
		if err := s.o.Poster.Update(ctx, channel, a.MessageTS, alert(stateFiring)); err != nil {
			return err
		}
		return s.o.Poster.Reply(ctx, channel, a.MessageTS, blockkit.RenderNote(fmt.Sprintf("Now %s: %s", n.Alert.Severity, f.Summary)))
	case alerts.NotifyRemind:
		if a.Mark != h.mark() {
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
		a.Channel, a.MessageTS, a.Group = "", "", false
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

// record is an alert's next record: its lifecycle after the step, still
// pointing at the message its previous record had.
func record(a alerts.Alert, prev store.Alert) store.Alert {
	out := store.Alert{Alert: a, Schema: store.SchemaVersion, Channel: prev.Channel, MessageTS: prev.MessageTS, Group: prev.Group}
	if out.MessageTS != "" {
		out.Mark = prev.Mark
	}
	return out
}
