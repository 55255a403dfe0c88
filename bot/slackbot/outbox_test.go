package slackbot_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/runbooks"
)

// outboxBot runs the transport on an outbox against a local Slack made
// with fakeOpts, for commands in C1 about cache-1, a real redis-server.
func outboxBot(t *testing.T, o outbox.Options, commandTimeout time.Duration, fakeOpts ...slacktest.Option) (*slacktest.Server, *outbox.Outbox) {
	t.Helper()
	fake, out, stop := runOutboxBot(t, o, commandTimeout, fakeOpts...)
	t.Cleanup(func() { stop() })
	return fake, out
}

// runOutboxBot is outboxBot with its shutdown left to the test: stop
// cancels Run's context and returns how long Run took to return (its
// ShutdownTimeout is 5 s).
func runOutboxBot(t *testing.T, o outbox.Options, commandTimeout time.Duration, fakeOpts ...slacktest.Option) (fake *slacktest.Server, out *outbox.Outbox, stop func() time.Duration) {
	t.Helper()
	srv := redistest.StartT(t)
	fake = slacktest.New(t, fakeOpts...)
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p := probe.New(time.Second, nil)
	t.Cleanup(func() { p.Close() })
	svc := handlers.NewService([]handlers.Instance{{Name: "cache-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}}, p, nil, 4, nil)
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(fake.APIURL()))
	o.API = api
	out = outbox.New(o)
	bot := slackbot.New(slackbot.Options{
		Outbox: out, Socket: socketmode.New(api), Router: svc,
		Access:   access.New(access.Rules{Channels: []access.Channel{{ID: "C1"}}}, nil, time.Minute, nil),
		Runbooks: lib, APIURL: fake.APIURL(), Workers: 2, Queue: 16, ShutdownTimeout: 5 * time.Second,
		CommandTimeout: commandTimeout,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Run(ctx) }()
	stop = sync.OnceValue(func() time.Duration {
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		return time.Since(start)
	})
	for fake.Connections() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	return fake, out, stop
}

func isDiagnosis(p slacktest.Post) bool {
	return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "cache-1") && !strings.HasPrefix(p.Text, "alert ")
}

// Issue 18: under Slack's rate limits, 50 alerts posted at once in one
// channel and a command answered in that channel: the answer overtakes the
// alerts still waiting and arrives within 3 s; every alert arrives once,
// and no call is made inside a Retry-After.
func TestReplyOvertakesAlertStorm(t *testing.T) {
	t.Parallel() // 50 s of paced posts
	fake, out := outboxBot(t, outbox.Options{}, time.Minute, slacktest.WithRateLimits(slacktest.SlackRateLimits()))
	ctx := context.Background()
	var storm []*outbox.Delivery
	for i := range 50 {
		m := blockkit.RenderNote(fmt.Sprintf("alert %02d", i))
		m.Meta = &blockkit.Meta{Type: "redisbot_alert", Fields: map[string]string{"instance": fmt.Sprintf("cache-%d", i+100), "finding": "oom"}}
		storm = append(storm, out.Send(ctx, outbox.Message{Channel: "C1", Body: m, Priority: outbox.PriorityAlert}))
	}
	fake.WaitPosts(t, 3, 10*time.Second, nil) // the storm is under way

	asked := time.Now()
	fake.WaitAck(t, fake.SlashCommand(slack.SlashCommand{ChannelID: "C1", UserID: "U1", Command: "/redis", Text: "diagnose cache-1"}), 3*time.Second)
	answer := fake.WaitPosts(t, 1, 10*time.Second, isDiagnosis)[0]
	if d := answer.At.Sub(asked); d > 3*time.Second {
		t.Errorf("the answer came %v after the command, want within 3s", d.Round(time.Millisecond))
	}

	for i, d := range storm {
		if _, err := d.Wait(ctx); err != nil {
			t.Errorf("alert %d: %v", i, err)
		}
	}
	var before int
	seen := map[string]int{}
	for _, p := range fake.Posts() {
		if strings.HasPrefix(p.Text, "alert ") {
			seen[p.Text]++
			if p.At.Before(answer.At) {
				before++
			}
		}
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct alerts posted, want 50", len(seen))
	}
	for text, n := range seen {
		if n != 1 {
			t.Errorf("%s posted %d times", text, n)
		}
	}
	if before > 10 {
		t.Errorf("%d alerts went out before the answer: it did not overtake them", before)
	}
	if inside := fake.InsideRetryAfter(); len(inside) > 0 {
		t.Errorf("%d calls inside a Retry-After: %v", len(inside), inside)
	}
	t.Logf("answer after %v, %d alerts before it, %d 429s", answer.At.Sub(asked).Round(time.Millisecond), before, fake.RateLimited("chat.postMessage"))
}

// An answer that cannot be posted (here Slack keeps the channel closed
// past the command's deadline) is not just logged: the user is told,
// ephemerally, through the command's response_url.
func TestUndeliveredAnswerIsToldToTheUser(t *testing.T) {
	fake, _ := outboxBot(t, outbox.Options{}, 2*time.Second)
	fake.RateLimit("chat.postMessage", 1, time.Minute)
	fake.WaitAck(t, fake.SlashCommand(slack.SlashCommand{ChannelID: "C1", UserID: "U1", Command: "/redis", Text: "diagnose cache-1"}), 3*time.Second)
	notice := fake.WaitPosts(t, 1, 10*time.Second, ephemeralWith("could not post its answer here"))[0]
	if notice.User != "U1" || notice.Method != "response_url" || notice.ResponseType != "ephemeral" {
		t.Errorf("notice %v, want an ephemeral answer to U1", notice)
	}
	for _, p := range fake.Posts() {
		if isDiagnosis(p) {
			t.Errorf("the answer was posted after all: %v", p)
		}
	}
	if inside := fake.InsideRetryAfter(); len(inside) > 0 {
		t.Errorf("calls inside the Retry-After: %v", inside)
	}
}

// A Retry-After of an hour does not keep a person waiting for the
// command's whole deadline (the default 2 minutes): the answer fails as
// soon as Slack announces a pause past it, and the user is told at once.
func TestHourLongRetryAfterIsToldAtOnce(t *testing.T) {
	fake, _ := outboxBot(t, outbox.Options{}, 0)
	fake.RateLimit("chat.postMessage", 1, time.Hour)
	asked := time.Now()
	fake.WaitAck(t, fake.SlashCommand(slack.SlashCommand{ChannelID: "C1", UserID: "U1", Command: "/redis", Text: "diagnose cache-1"}), 3*time.Second)
	notice := fake.WaitPosts(t, 1, 10*time.Second, ephemeralWith("could not post its answer here"))[0]
	if notice.User != "U1" {
		t.Errorf("notice %v, want an ephemeral answer to U1", notice)
	}
	if waited := notice.At.Sub(asked); waited > 5*time.Second {
		t.Errorf("the user heard after %v", waited)
	}
	if inside := fake.InsideRetryAfter(); len(inside) > 0 {
		t.Errorf("calls inside the Retry-After: %v", inside)
	}
}

// Shutdown does not wait on Slack: a key scan whose answer Slack holds
// back (a Retry-After of 100 s, well inside the answer's 10-minute
// deadline; the answer is that this bot has no key scanner) ends when the
// shutdown timeout (5 s) does, the outbox closed under it.
func TestShutdownDoesNotWaitOnSlack(t *testing.T) {
	fake, _, stop := runOutboxBot(t, outbox.Options{}, 10*time.Minute)
	fake.RateLimit("response_url", 1, 100*time.Second)
	fake.WaitAck(t, fake.SlashCommand(slack.SlashCommand{ChannelID: "C1", UserID: "U1", Command: "/redis", Text: "keys cache-1"}), 3*time.Second)
	for deadline := time.Now().Add(10 * time.Second); fake.RateLimited("response_url") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the key scan answered nothing in 10 s: %v", fake.Posts())
		}
	}
	if took := stop(); took > 8*time.Second {
		t.Errorf("shutdown took %v, want about its 5 s timeout", took)
	}
	if posts := fake.Posts(); len(posts) > 0 {
		t.Errorf("the answer was posted after all: %v", posts)
	}
}
