package slackbot_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/runbooks"
)

// startBot runs a Bot against a local Slack and the given instances.
func startBot(tb testing.TB, instances []handlers.Instance, timeout time.Duration) *slacktest.Server {
	tb.Helper()
	return startBotWith(tb, instances, timeout, func(*slackbot.Options) {})
}

// startBotWith is startBot with options changed by set before the bot starts.
func startBotWith(tb testing.TB, instances []handlers.Instance, timeout time.Duration, set func(*slackbot.Options)) *slacktest.Server {
	tb.Helper()
	fake := slacktest.New(tb)
	lib, err := runbooks.Load("")
	if err != nil {
		tb.Fatal(err)
	}
	p := probe.New(timeout, nil)
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(fake.APIURL()))
	opts := slackbot.Options{
		Outbox: outbox.New(outbox.Options{API: api}), Socket: socketmode.New(api),
		Router:   handlers.NewService(instances, p, nil, 16, nil),
		Access:   access.New(access.Rules{}, nil, time.Minute, nil),
		Runbooks: lib, APIURL: fake.APIURL(), Workers: 16, Queue: 256, ThreadReplies: true,
		ShutdownTimeout: 5 * time.Second,
	}
	set(&opts)
	bot := slackbot.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done; p.Close() })
	for fake.Connections() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	return fake
}

func blackhole(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // accepted, never answered
		}
	}()
	return l.Addr().String()
}

func percentile(d []time.Duration, p int) time.Duration {
	slices.Sort(d)
	return d[(len(d)-1)*p/100]
}

// BenchmarkAckUnderLoad sends bursts of 50 slash commands, half about
// instances that never answer (each costs the bot a 1 s probe timeout), and
// measures envelope-to-ack latency. Acks must not wait for Redis.
func BenchmarkAckUnderLoad(b *testing.B) {
	fast := redistest.StartT(b)
	instances := []handlers.Instance{
		{Name: "fast-1", Addr: fast.Addr, Thresholds: handlers.DefaultThresholds()},
	}
	for i := range 5 {
		instances = append(instances, handlers.Instance{Name: fmt.Sprintf("dead-%d", i), Addr: blackhole(b), Thresholds: handlers.DefaultThresholds()})
	}
	fake := startBot(b, instances, time.Second)
	var all []time.Duration
	b.ResetTimer()
	for b.Loop() {
		ids := make([]string, 50)
		for i := range ids {
			name := "fast-1"
			if i%2 == 1 {
				name = fmt.Sprintf("dead-%d", i%5)
			}
			ids[i] = fake.SlashCommand(slack.SlashCommand{ChannelID: "C1", UserID: "U1", Command: "/redis", Text: "diagnose " + name})
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				d := fake.WaitAck(b, id, 5*time.Second)
				mu.Lock()
				all = append(all, d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(all, 50).Microseconds())/1000, "ack-p50-ms")
	b.ReportMetric(float64(percentile(all, 99).Microseconds())/1000, "ack-p99-ms")
}

// BenchmarkCommandToPost is one /redis diagnose on a local, fragmented
// instance, from the envelope to the diagnosis posted in the channel.
func BenchmarkCommandToPost(b *testing.B) {
	srv := redistest.StartT(b)
	c := srv.Client()
	defer c.Close()
	if err := redistest.Fragment(context.Background(), c, 100_000); err != nil {
		b.Fatal(err)
	}
	fake := startBot(b, []handlers.Instance{{Name: "cache-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}}, 2*time.Second)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		fake.SlashCommand(slack.SlashCommand{ChannelID: "C1", UserID: "U1", Command: "/redis", Text: "diagnose cache-1"})
		posts := fake.WaitPosts(b, i+1, 10*time.Second, func(p slacktest.Post) bool { return p.Method == "chat.postMessage" })
		lat = append(lat, posts[i].At.Sub(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "post-p50-ms")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "post-p99-ms")
}
