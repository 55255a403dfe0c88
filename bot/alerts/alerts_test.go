package alerts

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

const (
	warning  = handlers.SeverityWarning
	critical = handlers.SeverityCritical
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func present(sev handlers.Severity) Observation {
	return Observation{Present: true, Severity: sev, Summary: "ratio 2.1"}
}

var absent = Observation{}

func TestDefaultTiming(t *testing.T) {
	tests := []struct {
		id                string
		warning, critical time.Duration
	}{
		{"frag-high", 30 * time.Minute, 10 * time.Minute},
		{"frag-allocator", 30 * time.Minute, 10 * time.Minute},
		{"defrag-disabled", 30 * time.Minute, 10 * time.Minute},
		{"rss-near-limit", 5 * time.Minute, 5 * time.Minute},
		{"oom-rejecting", 0, 0},
		{"unreachable", 2 * time.Minute, 2 * time.Minute},
		{"maxmemory-near", 15 * time.Minute, 15 * time.Minute},
		{"allocator-not-jemalloc", 15 * time.Minute, 15 * time.Minute},
	}
	for _, tt := range tests {
		got := DefaultTiming(tt.id)
		if w, c := got.forSeverity(warning), got.forSeverity(critical); w != tt.warning || c != tt.critical {
			t.Errorf("%s: For warning/critical = %v/%v, want %v/%v", tt.id, w, c, tt.warning, tt.critical)
		}
		if got.ClearFor != 10*time.Minute || got.RepeatInterval != 4*time.Hour {
			t.Errorf("%s: ClearFor/RepeatInterval = %v/%v", tt.id, got.ClearFor, got.RepeatInterval)
		}
	}
	// A severity missing from For waits as long as the most patient one.
	partial := Timing{For: map[handlers.Severity]time.Duration{critical: time.Minute, warning: time.Hour}}
	if got := partial.forSeverity(handlers.SeverityInfo); got != time.Hour {
		t.Errorf("missing severity For = %v, want 1h", got)
	}
}

func TestStep(t *testing.T) {
	frag := DefaultTiming("frag-high")
	oom := DefaultTiming("oom-rejecting")
	firingWarning := Alert{Instance: "cache-1", Finding: "frag-high", State: StateFiring, Severity: warning,
		PendingSince: at(-time.Hour), FiringSince: at(-30 * time.Minute), LastNotified: at(-30 * time.Minute), Notified: warning}
	firingCritical := firingWarning
	firingCritical.Severity, firingCritical.Notified = critical, critical
	with := func(a Alert, f func(*Alert)) Alert { f(&a); return a }

	tests := []struct {
		name     string
		prev     Alert
		obs      Observation
		timing   Timing
		silenced bool
		now      time.Time
		want     State
		kind     NotifyKind
		severity handlers.Severity
		check    func(t *testing.T, a Alert)
	}{
		{name: "inactive stays inactive when absent", prev: Alert{}, obs: absent, timing: frag, now: t0,
			want: StateInactive, kind: NotifyNone},
		{name: "first sighting is pending", prev: Alert{}, obs: present(warning), timing: frag, now: t0,
			want: StatePending, kind: NotifyNone, severity: warning,
			check: func(t *testing.T, a Alert) {
				if !a.PendingSince.Equal(t0) {
					t.Errorf("PendingSince = %v", a.PendingSince)
				}
			}},
		{name: "oom-rejecting fires on the first sweep", prev: Alert{}, obs: present(critical), timing: oom, now: t0,
			want: StateFiring, kind: NotifyFire, severity: critical},
		{name: "pending short of For", prev: Alert{State: StatePending, PendingSince: at(0), Severity: warning},
			obs: present(warning), timing: frag, now: at(29 * time.Minute), want: StatePending, kind: NotifyNone, severity: warning},
		{name: "pending reaches For", prev: Alert{State: StatePending, PendingSince: at(0), Severity: warning},
			obs: present(warning), timing: frag, now: at(30 * time.Minute), want: StateFiring, kind: NotifyFire, severity: warning,
			check: func(t *testing.T, a Alert) {
				if !a.FiringSince.Equal(at(30*time.Minute)) || !a.LastNotified.Equal(at(30*time.Minute)) || a.Notified != warning {
					t.Errorf("FiringSince %v LastNotified %v Notified %v", a.FiringSince, a.LastNotified, a.Notified)
				}
			}},
		{name: "critical during warning-pending uses critical For from PendingSince",
			prev: Alert{State: StatePending, PendingSince: at(0), Severity: warning},
			obs:  present(critical), timing: frag, now: at(10 * time.Minute), want: StateFiring, kind: NotifyFire, severity: critical},
		{name: "pending then absent is inactive, silently", prev: Alert{State: StatePending, PendingSince: at(0), Severity: warning},
			obs: absent, timing: frag, now: at(20 * time.Minute), want: StateInactive, kind: NotifyNone},
		{name: "escalates at once", prev: firingWarning, obs: present(critical), timing: frag, now: t0,
			want: StateFiring, kind: NotifyEscalate, severity: critical},
		{name: "lower severity keeps the higher one", prev: firingCritical, obs: present(warning), timing: frag, now: t0,
			want: StateFiring, kind: NotifyNone, severity: critical,
			check: func(t *testing.T, a Alert) {
				if !a.LowerSince.Equal(t0) {
					t.Errorf("LowerSince = %v", a.LowerSince)
				}
			}},
		{name: "de-escalates after ClearFor once a post is due",
			prev: with(firingCritical, func(a *Alert) { a.LowerSince = at(-10 * time.Minute); a.LastNotified = at(-4 * time.Hour) }),
			obs:  present(warning), timing: frag, now: t0, want: StateFiring, kind: NotifyEscalate, severity: warning},
		{name: "no de-escalation before a post is due",
			prev: with(firingCritical, func(a *Alert) { a.LowerSince = at(-time.Hour); a.LastNotified = at(-time.Hour) }),
			obs:  present(warning), timing: frag, now: t0, want: StateFiring, kind: NotifyNone, severity: critical},
		{name: "reminds after RepeatInterval",
			prev: with(firingWarning, func(a *Alert) { a.LastNotified = at(-4 * time.Hour) }),
			obs:  present(warning), timing: frag, now: t0, want: StateFiring, kind: NotifyRemind, severity: warning,
			check: func(t *testing.T, a Alert) {
				if !a.LastNotified.Equal(t0) {
					t.Errorf("LastNotified = %v", a.LastNotified)
				}
			}},
		{name: "no reminder before RepeatInterval",
			prev: with(firingWarning, func(a *Alert) { a.LastNotified = at(-4*time.Hour + time.Minute) }),
			obs:  present(warning), timing: frag, now: t0, want: StateFiring, kind: NotifyNone},
		{name: "no reminder while absent",
			prev: with(firingWarning, func(a *Alert) { a.LastNotified = at(-5 * time.Hour) }),
			obs:  absent, timing: frag, now: t0, want: StateFiring, kind: NotifyNone},
		{name: "absence starts the clear clock", prev: firingWarning, obs: absent, timing: frag, now: t0,
			want: StateFiring, kind: NotifyNone,
			check: func(t *testing.T, a Alert) {
				if !a.ClearSince.Equal(t0) {
					t.Errorf("ClearSince = %v", a.ClearSince)
				}
			}},
		{name: "presence resets the clear clock",
			prev: with(firingWarning, func(a *Alert) { a.ClearSince = at(-9 * time.Minute) }),
			obs:  present(warning), timing: frag, now: t0, want: StateFiring, kind: NotifyNone,
			check: func(t *testing.T, a Alert) {
				if !a.ClearSince.IsZero() {
					t.Errorf("ClearSince = %v, want zero", a.ClearSince)
				}
			}},
		{name: "resolves after ClearFor",
			prev: with(firingWarning, func(a *Alert) { a.ClearSince = at(-10 * time.Minute) }),
			obs:  absent, timing: frag, now: t0, want: StateResolved, kind: NotifyResolve,
			check: func(t *testing.T, a Alert) {
				if !a.ResolvedAt.Equal(t0) || a.Notified != handlers.SeverityNone {
					t.Errorf("ResolvedAt %v Notified %v", a.ResolvedAt, a.Notified)
				}
			}},
		{name: "silenced: fires without a post",
			prev: Alert{State: StatePending, PendingSince: at(0), Severity: warning},
			obs:  present(warning), timing: frag, silenced: true, now: at(30 * time.Minute), want: StateFiring, kind: NotifyNone,
			check: func(t *testing.T, a Alert) {
				if !a.LastNotified.IsZero() || a.Notified != handlers.SeverityNone {
					t.Errorf("silenced step touched LastNotified %v / Notified %v", a.LastNotified, a.Notified)
				}
			}},
		{name: "after a silence, a firing alert never posted fires",
			prev: Alert{State: StateFiring, PendingSince: at(-2 * time.Hour), FiringSince: at(-time.Hour), Severity: warning},
			obs:  present(warning), timing: frag, now: t0, want: StateFiring, kind: NotifyFire, severity: warning},
		{name: "silenced resolve leaves the message open",
			prev: with(firingWarning, func(a *Alert) { a.ClearSince = at(-10 * time.Minute) }),
			obs:  absent, timing: frag, silenced: true, now: t0, want: StateResolved, kind: NotifyNone,
			check: func(t *testing.T, a Alert) {
				if a.Notified != warning {
					t.Errorf("Notified = %v, want warning (message still open)", a.Notified)
				}
			}},
		{name: "after a silence, an open message of a resolved alert turns green",
			prev: Alert{State: StateResolved, Severity: warning, Notified: warning, ResolvedAt: at(-time.Hour)},
			obs:  absent, timing: frag, now: t0, want: StateResolved, kind: NotifyResolve},
		{name: "resolved then present again starts a new episode",
			prev: Alert{State: StateResolved, Severity: warning, ResolvedAt: at(-time.Hour), FiringSince: at(-3 * time.Hour)},
			obs:  present(warning), timing: frag, now: t0, want: StatePending, kind: NotifyNone,
			check: func(t *testing.T, a Alert) {
				if !a.PendingSince.Equal(t0) || !a.FiringSince.IsZero() {
					t.Errorf("PendingSince %v FiringSince %v", a.PendingSince, a.FiringSince)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := Step(tt.prev, tt.obs, tt.timing, tt.silenced, tt.now)
			if got.State != tt.want || n.Kind != tt.kind {
				t.Fatalf("Step = %s/%s, want %s/%s", got.State, n.Kind, tt.want, tt.kind)
			}
			if tt.severity != handlers.SeverityNone && got.Severity != tt.severity {
				t.Errorf("severity = %s, want %s", got.Severity, tt.severity)
			}
			if n.Alert != got {
				t.Errorf("notification carries %+v, want the next state %+v", n.Alert, got)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

// An acknowledged alert gets no reminders, but an escalation and the
// resolve still post; the next episode starts unacknowledged.
func TestAcknowledgedAlert(t *testing.T) {
	timing := DefaultTiming("maxmemory-near")
	firing := Alert{Instance: "cache-1", Finding: "maxmemory-near", State: StateFiring, Severity: warning,
		PendingSince: at(0), FiringSince: at(15 * time.Minute), LastNotified: at(15 * time.Minute), Notified: warning, Acked: true}

	later := at(15*time.Minute + timing.RepeatInterval + time.Minute)
	if _, n := Step(firing, present(warning), timing, false, later); n.Kind != NotifyNone {
		t.Errorf("acknowledged, repeat interval passed: %s, want none", n.Kind)
	}
	if _, n := Step(firing, present(critical), timing, false, later); n.Kind != NotifyEscalate {
		t.Errorf("acknowledged, now critical: %s, want escalate", n.Kind)
	}
	next := firing
	for i := range 11 {
		next, _ = Step(next, absent, timing, false, later.Add(time.Duration(i)*time.Minute))
	}
	if next.State != StateResolved || next.Notified != handlers.SeverityNone {
		t.Fatalf("acknowledged alert absent past ClearFor: %+v", next)
	}
	next, _ = Step(next, present(warning), timing, false, later.Add(time.Hour))
	if next.Acked {
		t.Error("a new episode starts acknowledged")
	}
}

func TestStepKeepsIdentityAndSummary(t *testing.T) {
	prev := Alert{Instance: "cache-1", Finding: "oom-rejecting"}
	got, n := Step(prev, Observation{Present: true, Severity: critical, Summary: "3 OOM errors"}, DefaultTiming("oom-rejecting"), false, t0)
	if got.Instance != "cache-1" || got.Finding != "oom-rejecting" || got.Summary != "3 OOM errors" {
		t.Errorf("got %+v", got)
	}
	if n.Alert.Summary != "3 OOM errors" {
		t.Errorf("notification summary = %q", n.Alert.Summary)
	}
}

func TestStorm(t *testing.T) {
	fleet := func(n, down int) map[string]bool {
		m := map[string]bool{}
		for i := range n {
			m[string(rune('a'+i))] = i < down
		}
		return m
	}
	tests := []struct {
		name      string
		results   map[string]bool
		threshold float64
		want      bool
	}{
		{"empty", nil, 0, false},
		{"small fleet all down", fleet(4, 4), 0, false},
		{"five, three down", fleet(5, 3), 0, true},
		{"ten, exactly half down", fleet(10, 5), 0, false},
		{"ten, six down", fleet(10, 6), 0, true},
		{"ten, six down, threshold 0.7", fleet(10, 6), 0.7, false},
		{"ten, eight down, threshold 0.7", fleet(10, 8), 0.7, true},
		{"thousand, 501 down", fleet(1000, 501), 0, true},
		{"none down", fleet(20, 0), 0, false},
	}
	for _, tt := range tests {
		if got := Storm(tt.results, tt.threshold); got != tt.want {
			t.Errorf("%s: Storm = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNotifyKindString(t *testing.T) {
	if NotifyEscalate.String() != "escalate" || NotifyKind(9).String() != "notify(9)" {
		t.Errorf("got %s, %s", NotifyEscalate, NotifyKind(9))
	}
}

func TestAlertJSONRoundTrip(t *testing.T) {
	a, _ := Step(Alert{Instance: "cache-1", Finding: "oom-rejecting"}, present(critical), DefaultTiming("oom-rejecting"), false, t0)
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"severity":"critical"`) || strings.Contains(string(b), "clear_since") {
		t.Errorf("json = %s", b)
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != a {
		t.Errorf("round trip:\n got  %+v\n want %+v", back, a)
	}
}
