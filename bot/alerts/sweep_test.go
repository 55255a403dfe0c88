package alerts

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// event is one post, at the time since the first sweep.
type event struct {
	At       time.Duration
	Kind     NotifyKind
	Severity handlers.Severity
}

func (e event) String() string { return fmt.Sprintf("%s %s@%v", e.Kind, e.Severity, e.At) }

// scenario is what a sweep sees at a time since the first sweep.
type scenario struct {
	finding  string
	duration time.Duration
	observe  func(elapsed time.Duration) Observation
	silenced func(elapsed time.Duration) bool
}

// sweep runs the scenario in a synctest bubble the way the scheduler will:
// one sweep a minute, reading the (fake) clock at each sweep and sleeping in
// between, and returns the posts.
func sweep(t *testing.T, sc scenario) []event {
	t.Helper()
	var events []event
	synctest.Test(t, func(t *testing.T) {
		timing := DefaultTiming(sc.finding)
		start := time.Now()
		a := Alert{Instance: "cache-1", Finding: sc.finding}
		for {
			elapsed := time.Since(start)
			if elapsed >= sc.duration {
				break
			}
			silenced := sc.silenced != nil && sc.silenced(elapsed)
			var n Notification
			a, n = Step(a, sc.observe(elapsed), timing, silenced, time.Now())
			if n.Kind != NotifyNone {
				events = append(events, event{elapsed, n.Kind, n.Alert.Severity})
			}
			time.Sleep(time.Minute)
		}
	})
	return events
}

func always(sev handlers.Severity) func(time.Duration) Observation {
	return func(time.Duration) Observation { return present(sev) }
}

// flapping is present on even minutes and absent on odd ones.
func flapping(sev handlers.Severity) func(time.Duration) Observation {
	return func(e time.Duration) Observation {
		if int(e/time.Minute)%2 == 0 {
			return present(sev)
		}
		return absent
	}
}

func TestSweeps(t *testing.T) {
	h, m := time.Hour, time.Minute
	tests := []struct {
		name string
		sc   scenario
		want []event
	}{
		{
			name: "warning fragmentation fires after 30m and reminds every 4h",
			sc:   scenario{finding: "frag-high", duration: 9 * h, observe: always(warning)},
			want: []event{{30 * m, NotifyFire, warning}, {4*h + 30*m, NotifyRemind, warning}, {8*h + 30*m, NotifyRemind, warning}},
		},
		{
			name: "critical fragmentation fires after 10m",
			sc:   scenario{finding: "frag-high", duration: h, observe: always(critical)},
			want: []event{{10 * m, NotifyFire, critical}},
		},
		{
			name: "escalates at once, and the reminder clock restarts",
			sc: scenario{finding: "frag-high", duration: 9 * h, observe: func(e time.Duration) Observation {
				if e >= 45*m {
					return present(critical)
				}
				return present(warning)
			}},
			want: []event{{30 * m, NotifyFire, warning}, {45 * m, NotifyEscalate, critical}, {4*h + 45*m, NotifyRemind, critical}, {8*h + 45*m, NotifyRemind, critical}},
		},
		{
			name: "resolves after 10m of absence",
			sc: scenario{finding: "frag-high", duration: 3 * h, observe: func(e time.Duration) Observation {
				if e < h {
					return present(warning)
				}
				return absent
			}},
			want: []event{{30 * m, NotifyFire, warning}, {h + 10*m, NotifyResolve, warning}},
		},
		{
			name: "a short absence is forgiven",
			sc: scenario{finding: "rss-near-limit", duration: 2 * h, observe: func(e time.Duration) Observation {
				if e >= 30*m && e < 39*m {
					return absent
				}
				return present(critical)
			}},
			want: []event{{5 * m, NotifyFire, critical}},
		},
		{
			name: "oom-rejecting fires on the first sweep",
			sc:   scenario{finding: "oom-rejecting", duration: 30 * m, observe: always(critical)},
			want: []event{{0, NotifyFire, critical}},
		},
		{
			name: "unreachable fires after 2m",
			sc:   scenario{finding: "unreachable", duration: 30 * m, observe: always(critical)},
			want: []event{{2 * m, NotifyFire, critical}},
		},
		{
			name: "flapping oom-rejecting for 8h: fire and one reminder",
			sc:   scenario{finding: "oom-rejecting", duration: 8 * h, observe: flapping(critical)},
			want: []event{{0, NotifyFire, critical}, {4 * h, NotifyRemind, critical}},
		},
		{
			name: "flapping fragmentation never lasts its For",
			sc:   scenario{finding: "frag-high", duration: 8 * h, observe: flapping(warning)},
			want: nil,
		},
		{
			name: "fragmentation that fired, then flaps for hours",
			sc: scenario{finding: "frag-high", duration: 8*h + 30*m, observe: func(e time.Duration) Observation {
				if e < 40*m {
					return present(warning)
				}
				return flapping(warning)(e)
			}},
			want: []event{{30 * m, NotifyFire, warning}, {4*h + 30*m, NotifyRemind, warning}},
		},
		{
			name: "severity wobbling every 5m stays critical and is not re-posted",
			sc: scenario{finding: "frag-high", duration: 8 * h, observe: func(e time.Duration) Observation {
				if int(e/(5*m))%2 == 0 {
					return present(critical)
				}
				return present(warning)
			}},
			want: []event{{10 * m, NotifyFire, critical}, {4*h + 10*m, NotifyRemind, critical}},
		},
		{
			name: "a lasting lower severity de-escalates with the next due post",
			sc: scenario{finding: "frag-high", duration: 6 * h, observe: func(e time.Duration) Observation {
				if e < h {
					return present(critical)
				}
				return present(warning)
			}},
			want: []event{{10 * m, NotifyFire, critical}, {4*h + 10*m, NotifyEscalate, warning}},
		},
		{
			name: "silence suppresses the fire, which is posted when the silence ends",
			sc: scenario{finding: "oom-rejecting", duration: 3 * h, observe: always(critical),
				silenced: func(e time.Duration) bool { return e < 90*m }},
			want: []event{{90 * m, NotifyFire, critical}},
		},
		{
			name: "escalation during a silence is posted when it ends",
			sc: scenario{finding: "frag-high", duration: 7 * h, observe: func(e time.Duration) Observation {
				if e >= 2*h {
					return present(critical)
				}
				return present(warning)
			}, silenced: func(e time.Duration) bool { return e >= h && e < 6*h }},
			// The reminder due at 4h30m fell in the silence; the update at
			// 6h restarts the reminder clock.
			want: []event{{30 * m, NotifyFire, warning}, {6 * h, NotifyEscalate, critical}},
		},
		{
			name: "a reminder missed during a silence is posted when it ends",
			sc: scenario{finding: "frag-high", duration: 7 * h, observe: always(warning),
				silenced: func(e time.Duration) bool { return e >= h && e < 5*h }},
			want: []event{{30 * m, NotifyFire, warning}, {5 * h, NotifyRemind, warning}},
		},
		{
			name: "resolved during a silence: the message turns green after it",
			sc: scenario{finding: "frag-high", duration: 4 * h, observe: func(e time.Duration) Observation {
				if e < h {
					return present(warning)
				}
				return absent
			}, silenced: func(e time.Duration) bool { return e >= 50*m && e < 2*h }},
			want: []event{{30 * m, NotifyFire, warning}, {2 * h, NotifyResolve, warning}},
		},
		{
			name: "fired and resolved inside a silence: nothing to post",
			sc: scenario{finding: "oom-rejecting", duration: 4 * h, observe: func(e time.Duration) Observation {
				if e < h {
					return present(critical)
				}
				return absent
			}, silenced: func(e time.Duration) bool { return e < 2*h }},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sweep(t, tt.sc)
			if !slices.Equal(got, tt.want) {
				t.Errorf("posts:\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

// TestFlappingNeverNotifiesMoreThanOncePerRepeatInterval checks the bound
// for every finding's timing: over 8h of a finding present on alternate
// sweeps, at most one post per 4h (a fire and one reminder).
func TestFlappingNeverNotifiesMoreThanOncePerRepeatInterval(t *testing.T) {
	for _, spec := range handlers.Catalogue {
		for _, sev := range []handlers.Severity{warning, critical} {
			t.Run(spec.ID+"/"+sev.String(), func(t *testing.T) {
				got := sweep(t, scenario{finding: spec.ID, duration: 8 * time.Hour, observe: flapping(sev)})
				if len(got) > 2 {
					t.Errorf("%d posts: %v", len(got), got)
				}
				for i := 1; i < len(got); i++ {
					if d := got[i].At - got[i-1].At; d < DefaultRepeatInterval {
						t.Errorf("posts %v apart: %v", d, got)
					}
				}
				for _, e := range got {
					if e.Kind == NotifyResolve || strings.Contains(e.Kind.String(), "notify(") {
						t.Errorf("unexpected post %v", e)
					}
				}
			})
		}
	}
}
