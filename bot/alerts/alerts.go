// Package alerts is the alert lifecycle of the fleet sweep: what the bot
// remembers about each (instance, finding) between sweeps, and when that
// becomes a Slack message. It is pure: Step takes the previous state, one
// sweep's observation and the time, and returns the next state and what to
// post. The scheduler owns storage, silences and the clock; the renderer owns
// the words. Modelled on Alertmanager, where the dedup decision
// (needsUpdate) is a function of the entry, the repeat interval and now.
package alerts

import (
	"strconv"
	"strings"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// State is where an alert is in its lifecycle.
type State string

// The lifecycle: a finding first seen is pending; it fires once it has lasted
// its For duration; it resolves once it has been absent for ClearFor. The
// zero State is treated as inactive.
const (
	StateInactive State = "inactive"
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// Timing says how long a finding must last before it fires, how long it must
// be gone before it resolves, and how often a firing alert is repeated.
type Timing struct {
	// For is how long a finding must be present, per severity, before it
	// fires. A severity with no entry uses the longest entry.
	For map[handlers.Severity]time.Duration
	// ClearFor is how long a firing finding must be absent before it
	// resolves, and how long a lower severity must last before a firing
	// alert is de-escalated.
	ClearFor time.Duration
	// RepeatInterval is the least time between two posts about one alert
	// while it keeps firing (reminders and de-escalations).
	RepeatInterval time.Duration
}

// Defaults from the runbooks.
const (
	DefaultClearFor       = 10 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// DefaultTiming returns the runbooks' timing for a finding id. Fragmentation
// moves slowly and a high ratio after a spike often settles by itself, so it
// waits longest; RSS near the container limit can end in the OOM killer within
// minutes; rejected writes are already an outage.
func DefaultTiming(findingID string) Timing {
	t := Timing{ClearFor: DefaultClearFor, RepeatInterval: DefaultRepeatInterval}
	switch {
	case strings.HasPrefix(findingID, "frag-"), strings.HasPrefix(findingID, "defrag-"):
		t.For = forAll(30 * time.Minute)
		t.For[handlers.SeverityCritical] = 10 * time.Minute
	case findingID == "rss-near-limit":
		t.For = forAll(5 * time.Minute)
	case findingID == "oom-rejecting":
		t.For = forAll(0)
	case findingID == "unreachable":
		t.For = forAll(2 * time.Minute)
	default:
		t.For = forAll(15 * time.Minute)
	}
	return t
}

func forAll(d time.Duration) map[handlers.Severity]time.Duration {
	return map[handlers.Severity]time.Duration{
		handlers.SeverityInfo:     d,
		handlers.SeverityWarning:  d,
		handlers.SeverityCritical: d,
	}
}

// forSeverity is how long a finding at sev must last before it fires. A
// severity missing from the map waits as long as the most patient one, so a
// partial config errs toward fewer pages.
func (t Timing) forSeverity(sev handlers.Severity) time.Duration {
	if d, ok := t.For[sev]; ok {
		return d
	}
	var longest time.Duration
	for _, d := range t.For {
		longest = max(longest, d)
	}
	return longest
}

// Alert is what is remembered per (instance, finding) between sweeps. It
// marshals to JSON for the store; the severity as its name.
type Alert struct {
	Instance string `json:"instance"`
	Finding  string `json:"finding"`
	State    State  `json:"state"`
	// Severity is the current severity: while firing, the highest seen
	// until a lower one has lasted ClearFor (see Step).
	Severity handlers.Severity `json:"severity"`
	// PendingSince is when the current episode was first seen.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// FiringSince is when the current episode fired.
	FiringSince time.Time `json:"firing_since,omitzero"`
	// ClearSince is when a firing finding was first seen absent; zero
	// while it is present.
	ClearSince time.Time `json:"clear_since,omitzero"`
	// LowerSince is when a firing finding was first seen at a severity
	// below Severity; zero otherwise.
	LowerSince time.Time `json:"lower_since,omitzero"`
	// LastNotified is when the last post about this alert was made.
	LastNotified time.Time `json:"last_notified,omitzero"`
	// ResolvedAt is when the last episode resolved.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Notified is the severity the open Slack message shows, or
	// SeverityNone when no message is open (never posted, or already
	// turned green). The next post is decided by comparing it with the
	// state, which is how a silence that ends still gets the news out.
	Notified handlers.Severity `json:"notified"`
	// Summary is the finding's latest one-line summary.
	Summary string `json:"summary,omitempty"`
	// Acked says someone acknowledged this firing episode: reminders
	// stop, while an escalation and the resolve still post. The
	// scheduler sets it from its acknowledgement records before Step; a
	// new episode starts unacknowledged.
	Acked bool `json:"acked,omitempty"`
}

// Observation is one sweep's result for (instance, finding): the finding was
// produced (with its severity and summary) or it was not.
type Observation struct {
	Present  bool
	Severity handlers.Severity
	Summary  string
}

// NotifyKind says what to post.
type NotifyKind int

// What a step asks the transport to do.
const (
	// NotifyNone: post nothing.
	NotifyNone NotifyKind = iota
	// NotifyFire: post a new alert message.
	NotifyFire
	// NotifyEscalate: the severity changed (up, or down after hysteresis);
	// update the open message in place.
	NotifyEscalate
	// NotifyRemind: the alert is still firing; reply in the message's thread.
	NotifyRemind
	// NotifyResolve: update the open message to resolved (it turns green).
	NotifyResolve
)

var notifyNames = [...]string{"none", "fire", "escalate", "remind", "resolve"}

func (k NotifyKind) String() string {
	if k < 0 || int(k) >= len(notifyNames) {
		return "notify(" + strconv.Itoa(int(k)) + ")"
	}
	return notifyNames[k]
}

// Notification is what to post and about which alert (the state after the
// step).
type Notification struct {
	Kind  NotifyKind
	Alert Alert
}

// Step advances one alert by one sweep. It is a pure function: now is the
// sweep's time, silenced says whether a silence matches the alert now.
//
// State changes follow the observation and the clock only, silenced or not:
//   - inactive/resolved + present: pending, and at once firing when the
//     severity's For is zero.
//   - pending + present: firing once present for For[severity], measured
//     from PendingSince with the current severity (a critical observation
//     during a warning-pending uses the critical For).
//   - pending + absent: inactive.
//   - firing + present at a higher severity: escalated at once.
//   - firing + present at a lower severity: keeps the higher severity
//     until the lower one has lasted ClearFor and RepeatInterval has passed
//     since the last post, so a wobbling severity is posted at most once
//     per RepeatInterval on the way down.
//   - firing + absent for ClearFor: resolved. Absence shorter than that is
//     forgiven, which is what stops a flapping finding from firing and
//     resolving every sweep.
//
// What to post is then decided from the state alone (see notification); a
// silence only suppresses the post and leaves LastNotified and Notified
// untouched, so the news goes out on the first sweep after the silence.
func Step(prev Alert, obs Observation, t Timing, silenced bool, now time.Time) (Alert, Notification) {
	next := advance(prev, obs, t, now)
	kind := notification(next, t, now)
	if silenced {
		kind = NotifyNone
	}
	switch kind {
	case NotifyFire, NotifyEscalate, NotifyRemind:
		next.LastNotified = now
		next.Notified = next.Severity
	case NotifyResolve:
		next.LastNotified = now
		next.Notified = handlers.SeverityNone
	}
	return next, Notification{Kind: kind, Alert: next}
}

// advance is the state machine without notifications.
func advance(a Alert, obs Observation, t Timing, now time.Time) Alert {
	if a.State == "" {
		a.State = StateInactive
	}
	if obs.Present {
		a.Summary = obs.Summary
	}
	switch a.State {
	case StateInactive, StateResolved:
		if !obs.Present {
			return a
		}
		a.State = StatePending
		a.PendingSince = now
		a.FiringSince, a.ClearSince, a.LowerSince = time.Time{}, time.Time{}, time.Time{}
		a.Acked = false
		a.Severity = obs.Severity
		return fireIfDue(a, t, now)

	case StatePending:
		if !obs.Present {
			a.State = StateInactive
			a.PendingSince = time.Time{}
			a.Severity = handlers.SeverityNone
			return a
		}
		a.Severity = obs.Severity
		return fireIfDue(a, t, now)

	case StateFiring:
		if !obs.Present {
			a.LowerSince = time.Time{}
			if a.ClearSince.IsZero() {
				a.ClearSince = now
			}
			if now.Sub(a.ClearSince) >= t.ClearFor {
				a.State = StateResolved
				a.ResolvedAt = now
				a.ClearSince = time.Time{}
			}
			return a
		}
		a.ClearSince = time.Time{}
		switch {
		case obs.Severity > a.Severity:
			a.Severity = obs.Severity
			a.LowerSince = time.Time{}
		case obs.Severity < a.Severity:
			if a.LowerSince.IsZero() {
				a.LowerSince = now
			}
			if now.Sub(a.LowerSince) >= t.ClearFor && now.Sub(a.LastNotified) >= t.RepeatInterval {
				a.Severity = obs.Severity
				a.LowerSince = time.Time{}
			}
		default:
			a.LowerSince = time.Time{}
		}
		return a
	}
	return a
}

func fireIfDue(a Alert, t Timing, now time.Time) Alert {
	if now.Sub(a.PendingSince) >= t.forSeverity(a.Severity) {
		a.State = StateFiring
		a.FiringSince = now
	}
	return a
}

// notification decides what to post for an alert in its new state, from the
// state alone: like Alertmanager's needsUpdate, it compares what the open
// message shows (Notified) with what is true now.
func notification(a Alert, t Timing, now time.Time) NotifyKind {
	switch a.State {
	case StateFiring:
		switch {
		case a.Notified == handlers.SeverityNone:
			return NotifyFire
		case a.Severity != a.Notified:
			return NotifyEscalate
		case !a.Acked && a.ClearSince.IsZero() && now.Sub(a.LastNotified) >= t.RepeatInterval:
			// Only while present: a reminder about something absent
			// this sweep would contradict the next resolve. Someone
			// who acknowledged it needs no reminder.
			return NotifyRemind
		}
	default:
		if a.Notified != handlers.SeverityNone {
			// A message is still open (red) for an episode that
			// ended, possibly while silenced.
			return NotifyResolve
		}
	}
	return NotifyNone
}

// Storm defaults: more than half of a fleet of at least five.
const (
	DefaultStormThreshold = 0.5
	MinStormFleet         = 5
)

// Storm reports whether so much of the fleet is unreachable in one sweep that
// the cause is most likely shared (network, DNS, the bot's own host): the
// caller then posts one summary instead of one alert per instance. results
// maps instance name to whether it was unreachable; threshold is the share
// that must be exceeded (DefaultStormThreshold when <= 0). Fleets smaller
// than MinStormFleet never storm: two of three instances down is two alerts.
func Storm(results map[string]bool, threshold float64) bool {
	if threshold <= 0 {
		threshold = DefaultStormThreshold
	}
	if len(results) < MinStormFleet {
		return false
	}
	down := 0
	for _, unreachable := range results {
		if unreachable {
			down++
		}
	}
	return float64(down) > threshold*float64(len(results))
}
