package slackbot_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// This file builds on the bot as it was before the slow lane too
// (scripts/bench-isolation.sh copies it there): it uses only startBot and
// blackhole.

// halfDead is n healthy instances, each a name for one real redis-server,
// and n that accept connections and never answer, each a listener of its
// own; mixed interleaves their names, a dead one first.
func halfDead(tb testing.TB, n int) (instances []handlers.Instance, healthy, dead, mixed []string) {
	srv := redistest.StartT(tb)
	for i := range n {
		h, d := fmt.Sprintf("healthy-%d", i), fmt.Sprintf("dead-%d", i)
		instances = append(instances,
			handlers.Instance{Name: h, Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()},
			handlers.Instance{Name: d, Addr: blackhole(tb), Thresholds: handlers.DefaultThresholds()})
		healthy, dead, mixed = append(healthy, h), append(dead, d), append(mixed, d, h)
	}
	return instances, healthy, dead, mixed
}

// answer is the first thing the bot posted back to one command, besides
// the note that the instance timed out lately.
type answer struct {
	post slacktest.Post
	took time.Duration // from the command sent to the answer posted
	// noteTook is when the note came, if one did (0 otherwise).
	noteTook time.Duration
}

// timeoutNote marks the note a command about an instance that timed out
// lately gets before its answer.
const timeoutNote = "probing again, the answer follows"

// burst sends `/redis diagnose NAME` for every name at once, each from a
// channel of its own (a channel's replies are paced at Slack's rate, and
// this measures the workers, not the pace), and returns each name's
// answer. It fails tb if a command gets no answer within wait.
func burst(tb testing.TB, fake *slacktest.Server, round string, names []string, wait time.Duration) map[string]answer {
	tb.Helper()
	sent := map[string]time.Time{}
	channel := func(name string) string { return "C-" + round + "-" + name }
	for _, name := range names {
		sent[name] = time.Now()
		fake.SlashCommand(slack.SlashCommand{ChannelID: channel(name), UserID: "U1", Command: "/redis", Text: "diagnose " + name})
	}
	got := map[string]answer{}
	deadline := time.Now().Add(wait)
	for len(got) < len(names) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		notes := map[string]time.Duration{}
		for _, p := range fake.Posts() {
			for _, name := range names {
				if p.Channel != channel(name) {
					continue
				}
				switch _, answered := got[name]; {
				case strings.Contains(p.Text, timeoutNote):
					notes[name] = p.At.Sub(sent[name])
				case !answered:
					got[name] = answer{post: p, took: p.At.Sub(sent[name])}
				}
			}
		}
		for name, took := range notes {
			if a, ok := got[name]; ok {
				a.noteTook = took
				got[name] = a
			}
		}
	}
	for _, name := range names {
		if _, ok := got[name]; !ok {
			tb.Fatalf("%s: no answer to diagnose %s within %v", round, name, wait)
		}
	}
	return got
}

func slowest(answers map[string]answer, names []string) time.Duration {
	var worst time.Duration
	for _, name := range names {
		worst = max(worst, answers[name].took)
	}
	return worst
}

// BenchmarkBurstWithDeadInstances is issue 18's burst: 25 `/redis
// diagnose` about healthy instances and 25 about blackholed ones at once,
// 16 workers, a 3 s probe timeout, over the real slack-go client and Socket
// Mode. It reports the slowest healthy answer alone, then in the burst
// when the dead instances are new to the bot (cold) and when a burst
// before has seen them time out (warm), and the fastest dead answer (each
// must wait for its probe timeout). A command left unanswered fails it.
func BenchmarkBurstWithDeadInstances(b *testing.B) {
	const probeTimeout = 3 * time.Second
	var alone, cold, coldMedian, warm, deadFastest []time.Duration
	for b.Loop() {
		instances, healthy, dead, mixed := halfDead(b, 25)
		fake := startBot(b, instances, probeTimeout)
		alone = append(alone, slowest(burst(b, fake, "alone", healthy, 10*time.Second), healthy))
		got := burst(b, fake, "cold", mixed, 3*probeTimeout)
		cold = append(cold, slowest(got, healthy))
		var took []time.Duration
		for _, name := range healthy {
			took = append(took, got[name].took)
		}
		slices.Sort(took)
		coldMedian = append(coldMedian, took[len(took)/2])
		got = burst(b, fake, "warm", mixed, 3*probeTimeout)
		warm = append(warm, slowest(got, healthy))
		fastest := got[dead[0]].took
		for _, name := range dead {
			fastest = min(fastest, got[name].took)
		}
		deadFastest = append(deadFastest, fastest)
	}
	ms := func(d []time.Duration) float64 { return float64(slices.Max(d).Microseconds()) / 1000 }
	b.ReportMetric(ms(alone), "alone-max-ms")
	b.ReportMetric(ms(cold), "cold-max-ms")
	b.ReportMetric(ms(coldMedian), "cold-p50-ms")
	b.ReportMetric(ms(warm), "warm-max-ms")
	b.ReportMetric(float64(slices.Min(deadFastest).Microseconds())/1000, "dead-min-ms")
}
