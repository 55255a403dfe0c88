package slackbot_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestHealthyCommandsDoNotWaitOnDeadInstances is issue 18's burst: 25
// commands about healthy instances and 25 about instances that accept
// connections and never answer, at once, over the real slack-go client and
// Socket Mode, with 16 workers. Before the slow lane, the healthy answers
// waited for the dead ones' probe timeout. Now a dead instance holds a
// worker at most SlowAfter the first time, and not at all once a command
// has seen it time out; every dead one is still answered, with its
// timeout.
func TestHealthyCommandsDoNotWaitOnDeadInstances(t *testing.T) {
	const (
		probeTimeout = 3 * time.Second
		slowAfter    = 500 * time.Millisecond
		// margin absorbs the scheduling noise of a loaded 2-core machine
		// under -race; without the slow lane the healthy answers wait
		// probeTimeout.
		margin = time.Second
	)
	instances, healthy, dead, mixed := halfDead(t, 25)
	fake := startBotWith(t, instances, probeTimeout, func(o *slackbot.Options) { o.SlowAfter = slowAfter })

	base := slowest(burst(t, fake, "baseline", healthy, 10*time.Second), healthy)
	t.Logf("25 healthy alone: slowest answer %v", base)

	for _, round := range []struct {
		name  string
		bound time.Duration
	}{
		// Nothing is known of the dead instances yet: they hold the
		// workers until SlowAfter moves them to the slow lane.
		{"cold", base + slowAfter + margin},
		// The cold round saw them time out: they go to the slow lane at
		// once.
		{"warm", base + margin},
	} {
		got := burst(t, fake, round.name, mixed, 2*probeTimeout+5*time.Second)
		if worst := slowest(got, healthy); worst > round.bound {
			t.Errorf("%s: slowest healthy answer took %v, want at most %v (25 healthy alone: %v)", round.name, worst, round.bound, base)
		} else {
			t.Logf("%s: slowest healthy answer %v (bound %v)", round.name, worst, round.bound)
		}
		for _, name := range healthy {
			if a := got[name]; a.post.Method != "chat.postMessage" || strings.Contains(a.post.String(), "Probe failed") {
				t.Errorf("%s: %s answered %s", round.name, name, a.post)
			}
		}
		for _, name := range dead {
			a := got[name]
			if a.took < probeTimeout || !strings.Contains(a.post.String(), "Probe failed (timeout)") {
				t.Errorf("%s: %s answered after %v: %s; want its probe timeout", round.name, name, a.took, a.post)
			}
			// Once it timed out, the user hears so at once, then the answer.
			switch {
			case round.name == "cold" && a.noteTook != 0:
				t.Errorf("cold: %s got a note that it timed out before", name)
			case round.name == "warm" && (a.noteTook == 0 || a.noteTook > time.Second):
				t.Errorf("warm: %s's note that it timed out came after %v, want within a second", name, a.noteTook)
			}
		}
	}
}

// TestSlowLaneFullIsSaid: when the slow lane has no room, a command about
// an instance known not to answer is told so at once, not dropped and not
// queued in front of the main workers.
func TestSlowLaneFullIsSaid(t *testing.T) {
	// Long enough that the command running in the lane still runs when
	// the last of the four arrives on a loaded machine.
	const probeTimeout = 3 * time.Second
	srv := redistest.StartT(t)
	instances := []handlers.Instance{
		{Name: "dead-1", Addr: blackhole(t), Thresholds: handlers.DefaultThresholds()},
		{Name: "cache-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()},
	}
	m := metrics.New()
	fake := startBotWith(t, instances, probeTimeout, func(o *slackbot.Options) { o.SlowWorkers, o.SlowQueue, o.Metrics = 1, 1, m })
	// The bot learns that dead-1 times out.
	burst(t, fake, "first", []string{"dead-1"}, 3*probeTimeout)

	var names []string
	for i := range 4 {
		names = append(names, fmt.Sprintf("dead-1 #%d", i))
	}
	sent := time.Now()
	for i := range names {
		fake.SlashCommand(slack.SlashCommand{ChannelID: fmt.Sprintf("C-full-%d", i), UserID: "U1", Command: "/redis", Text: "diagnose dead-1"})
	}
	healthy := burst(t, fake, "healthy", []string{"cache-1"}, 5*time.Second)["cache-1"]
	if healthy.took > probeTimeout/2 {
		t.Errorf("cache-1 answered after %v, behind the commands about dead-1", healthy.took)
	}
	var refused, timedOut int
	for i := range names {
		ch := fmt.Sprintf("C-full-%d", i)
		posts := fake.WaitPosts(t, 1, 3*probeTimeout, func(p slacktest.Post) bool {
			return p.Channel == ch && !strings.Contains(p.Text, timeoutNote)
		})
		switch s := posts[0].String(); {
		case strings.Contains(s, "already waiting on unreachable instances; try again in a minute."):
			refused++
			if posts[0].At.Sub(sent) > probeTimeout/2 {
				t.Errorf("refusal %d took %v", i, posts[0].At.Sub(sent))
			}
		case strings.Contains(s, "Probe failed (timeout)"):
			timedOut++
		default:
			t.Errorf("command %d answered %s", i, s)
		}
	}
	// One runs, one waits; the others are refused (the lane's feeder may
	// not have taken the first from the queue when the second came).
	if refused < 2 || refused+timedOut != len(names) {
		t.Errorf("%d refused and %d timed out of %d; want at least 2 refused and every command answered", refused, timedOut, len(names))
	}
	// The first command moved there after SlowAfter; the others were sent
	// or refused.
	for how, want := range map[string]int{"moved": 1, "sent": timedOut, "refused": refused} {
		if got := slowLaneCount(t, m, how); got != want {
			t.Errorf("redisbot_slack_slow_lane_total{how=%q} = %d, want %d", how, got, want)
		}
	}
}

// slowLaneCount reads redisbot_slack_slow_lane_total{how}.
func slowLaneCount(t *testing.T, m *metrics.Metrics, how string) int {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "redisbot_slack_slow_lane_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "how" && l.GetValue() == how {
					return int(s.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}
