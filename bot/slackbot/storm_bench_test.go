package slackbot_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/runbooks"
)

// Issue 18's alert storm under Slack's rate limits (the local Slack's
// SlackRateLimits): a sweep posts stormAlerts alerts in one channel one
// after another, as bot/sweep delivers them (Bot.Post), while someone asks
// /redis diagnose in that channel every 4 s (stormCommands times), each
// about an instance of its own on one real redis-server. It reports the answers' latency (median
// and max), the calls made inside a Retry-After Slack had announced, the
// 429s, the storm's duration and the alerts lost or posted twice.
// scripts/bench-outbox.sh runs it here and on a baseline commit side by
// side.
const (
	stormAlerts   = 60
	stormCommands = 15
)

func BenchmarkReplyDuringAlertStorm(b *testing.B) {
	for range b.N {
		stormOnce(b)
	}
}

func stormOnce(b *testing.B) {
	srv := redistest.StartT(b)
	fake := slacktest.New(b, slacktest.WithRateLimits(slacktest.SlackRateLimits()))
	lib, err := runbooks.Load("")
	if err != nil {
		b.Fatal(err)
	}
	p := probe.New(time.Second, nil)
	defer p.Close()
	var instances []handlers.Instance
	for i := range 100 {
		instances = append(instances, handlers.Instance{Name: fmt.Sprintf("cache-%02d", i), Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()})
	}
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(fake.APIURL()))
	o := stormOptions(api)
	o.Socket, o.Router, o.Runbooks, o.APIURL = socketmode.New(api), handlers.NewService(instances, p, nil, 16, nil), lib, fake.APIURL()
	o.Access = access.New(access.Rules{Channels: []access.Channel{{ID: "C1"}}}, nil, time.Minute, nil)
	o.Workers, o.Queue, o.ShutdownTimeout = 16, 256, 5*time.Second
	bot := slackbot.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for fake.Connections() == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	start := time.Now()
	stormDone := make(chan time.Duration, 1)
	go func() {
		for i := range stormAlerts {
			m := blockkit.RenderNote(fmt.Sprintf("storm alert %02d", i))
			m.Meta = &blockkit.Meta{Type: "redisbot_alert", Fields: map[string]string{"instance": fmt.Sprintf("db-%02d", i), "finding": "oom"}}
			if _, err := bot.Post(ctx, "C1", m); err != nil {
				b.Errorf("alert %d: %v", i, err)
			}
		}
		stormDone <- time.Since(start)
	}()

	// The commands go on a fixed schedule, whatever their answers' delay,
	// so both sides of a comparison share the channel with as many.
	asked := map[string]time.Time{}
	for k := range stormCommands {
		time.Sleep(time.Until(start.Add(time.Duration(2+4*k) * time.Second)))
		name := fmt.Sprintf("cache-%02d", k)
		asked[name] = time.Now()
		fake.SlashCommand(slack.SlashCommand{ChannelID: "C1", UserID: "U1", Command: "/redis", Text: "diagnose " + name})
	}
	var latencies []time.Duration
	for name, at := range asked {
		answer := fake.WaitPosts(b, 1, 3*time.Minute, func(p slacktest.Post) bool {
			return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), name)
		})[0]
		latencies = append(latencies, answer.At.Sub(at))
	}
	storm := <-stormDone

	seen := map[string]int{}
	for _, p := range fake.Posts() {
		if strings.HasPrefix(p.Text, "storm alert ") {
			seen[p.Text]++
		}
	}
	twice := 0
	for _, n := range seen {
		twice += n - 1
	}
	slices.Sort(latencies)
	median, worst := latencies[len(latencies)/2], latencies[len(latencies)-1]
	inside := len(fake.InsideRetryAfter())
	b.ReportMetric(median.Seconds(), "answer-p50-s")
	b.ReportMetric(worst.Seconds(), "answer-max-s")
	b.ReportMetric(float64(inside), "calls-inside-retry-after")
	b.ReportMetric(float64(fake.RateLimited("chat.postMessage")), "429s")
	b.ReportMetric(storm.Seconds(), "storm-s")
	b.Logf("%d alerts in %v: %d answers, median %v, max %v; %d calls inside a Retry-After, %d 429s; %d alerts lost, %d posted twice",
		stormAlerts, storm.Round(100*time.Millisecond), len(latencies), median.Round(10*time.Millisecond), worst.Round(10*time.Millisecond),
		inside, fake.RateLimited("chat.postMessage"), stormAlerts-len(seen), twice)
}
