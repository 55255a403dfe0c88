package slackbot_test

import (
	"context"
	"strings"
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

// Free text mentioning the bot: naming a configured instance reads as its
// diagnosis, said as such; naming nothing gets the closest verbs without
// touching Redis; an address that is not in config is never connected to.
// Real slack-go client, local Slack, real redis-server behind recorders
// that see every command sent.
func TestFreeTextMention(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartT(t)
	configured := redistest.Record(t, srv.Addr)
	// The same server under an address that is not in config: a mention
	// naming it must not reach it.
	stranger := redistest.Record(t, srv.Addr)
	instances := []handlers.Instance{{Name: "cache-1", Addr: configured.Addr, Thresholds: handlers.DefaultThresholds()}}
	p := probe.New(5*time.Second, nil)
	t.Cleanup(func() { p.Close() })

	fake := slacktest.New(t)
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(fake.APIURL()))
	bot := slackbot.New(slackbot.Options{
		Outbox: outbox.New(outbox.Options{API: api}), Socket: socketmode.New(api),
		Router: handlers.NewService(instances, p, nil, 4, nil),
		Access: access.New(access.Rules{}, nil, time.Minute, nil), Runbooks: lib,
		APIURL: fake.APIURL(), Workers: 2, Queue: 8, ShutdownTimeout: 5 * time.Second,
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bot.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	ephemeralTo := func(channel string) func(slacktest.Post) bool {
		return func(p slacktest.Post) bool { return p.Method == "chat.postEphemeral" && p.Channel == channel }
	}

	// Nothing to read: the closest verbs, to the asker only, and no Redis.
	fake.AppMention("C1", "U1", "<@UBOT> hello there")
	help := fake.WaitPosts(t, 1, 20*time.Second, ephemeralTo("C1"))[0]
	if text := help.BlocksText(); !strings.Contains(text, "Closest commands: `help [verb]`") {
		t.Errorf("help for free text lacks the closest verb:\n%s", text)
	}
	if sent := configured.Sent(); len(sent) > 0 {
		t.Errorf("free text naming no instance sent Redis commands: %v", sent)
	}

	// A hostile text naming an address outside config, as free text and
	// as a verb's argument: neither is probed.
	fake.AppMention("C2", "U1", "<@UBOT> why is "+stranger.Addr+" so slow? try redis://"+stranger.Addr)
	fake.AppMention("C2", "U1", "<@UBOT> diagnose "+stranger.Addr)
	answers := fake.WaitPosts(t, 2, 20*time.Second, ephemeralTo("C2"))
	var texts []string
	for _, a := range answers {
		texts = append(texts, a.BlocksText())
	}
	all := strings.Join(texts, "\n")
	if !strings.Contains(all, "Closest commands") || !strings.Contains(all, "Unknown instance") {
		t.Errorf("answers to addresses outside config:\n%s", all)
	}
	if sent := stranger.Sent(); len(sent) > 0 {
		t.Errorf("an address outside config was probed: %v", sent)
	}
	if sent := configured.Sent(); len(sent) > 0 {
		t.Errorf("mentions naming no configured instance sent Redis commands: %v", sent)
	}

	// Naming an instance reads as its diagnosis, in the mention's thread,
	// after saying how the text was read.
	id := fake.AppMention("C3", "U1", "<@UBOT> why is cache-1 using so much memory?")
	posts := fake.WaitPosts(t, 2, 20*time.Second, func(p slacktest.Post) bool { return p.Method == "chat.postMessage" && p.Channel == "C3" })
	thread := fake.MessageTS(id)
	if got := posts[0].BlocksText(); got != "Reading this as `diagnose cache-1`" || posts[0].ThreadTS != thread {
		t.Errorf("first post = %s, want the reading in thread %s", posts[0], thread)
	}
	if got := posts[1].Text + posts[1].BlocksText(); !strings.Contains(got, "cache-1") || posts[1].ThreadTS != thread {
		t.Errorf("second post = %s, want the diagnosis of cache-1 in thread %s", posts[1], thread)
	}
	if len(configured.Sent()) == 0 {
		t.Error("the inferred diagnosis sent nothing to cache-1")
	}
	if len(stranger.Sent()) > 0 {
		t.Errorf("an address outside config was probed: %v", stranger.Sent())
	}

	// A direct message reads the same way.
	fake.DirectMessage("D1", "U1", "is CACHE-1 ok?")
	dm := fake.WaitPosts(t, 2, 20*time.Second, func(p slacktest.Post) bool { return p.Method == "chat.postMessage" && p.Channel == "D1" })
	if got := dm[0].BlocksText(); got != "Reading this as `diagnose cache-1`" {
		t.Errorf("direct message: first post = %s", dm[0])
	}

	// A slash command is still a verb and its arguments.
	fake.SlashCommand(slack.SlashCommand{ChannelID: "C4", UserID: "U1", Command: "/redis", Text: "why is cache-1 slow"})
	slash := fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool { return p.Channel == "C4" })[0]
	if got := slash.BlocksText(); !strings.Contains(got, `unknown verb "why"`) {
		t.Errorf("slash command free text = %s, want an unknown verb", slash)
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("Slack contract violations: %q", v)
	}
}
