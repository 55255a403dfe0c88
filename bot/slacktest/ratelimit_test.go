package slacktest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/slacktest"
)

// Under Slack's limits, chat.postMessage takes a burst then about one a
// second in each channel, and refuses the rest with a Retry-After that
// closes the channel: a call inside it is refused again and counted.
// Other channels and methods keep their own limits.
func TestRateLimitsPerChannel(t *testing.T) {
	s := slacktest.New(t, slacktest.WithRateLimits(slacktest.RateLimits{
		PostPerChannel: slacktest.Rate{Every: time.Second, Burst: 2},
		Methods:        map[string]slacktest.Rate{"chat.update": {Every: time.Minute, Burst: 1}},
	}))
	api := newAPI(s)
	ctx := context.Background()
	post := func(channel string) (string, error) {
		_, ts, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText("hi", false))
		return ts, err
	}
	var ts string
	for i := range 2 {
		var err error
		if ts, err = post("C1"); err != nil {
			t.Fatalf("post %d within the burst: %v", i, err)
		}
	}
	_, err := post("C1")
	rl, ok := errors.AsType[*slack.RateLimitedError](err)
	if !ok || rl.RetryAfter != time.Second {
		t.Fatalf("third post: %v, want a 429 with Retry-After 1s", err)
	}
	if len(s.InsideRetryAfter()) != 0 {
		t.Fatalf("counted before any call inside: %v", s.InsideRetryAfter())
	}
	if _, err := post("C2"); err != nil {
		t.Errorf("another channel: %v", err)
	}
	if _, err := post("C1"); !errors.As(err, &rl) {
		t.Errorf("inside the Retry-After: %v, want a 429", err)
	}
	inside := s.InsideRetryAfter()
	if len(inside) != 1 || !strings.HasPrefix(inside[0], "chat.postMessage in C1 ") {
		t.Errorf("InsideRetryAfter = %q, want the one call in C1", inside)
	}
	time.Sleep(rl.RetryAfter)
	if _, err := post("C1"); err != nil {
		t.Errorf("after the Retry-After: %v", err)
	}

	// chat.update is limited as a method, whatever the channel.
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("edited", false)); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("again", false))
	if !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Errorf("second update: %v, want a 429 with Retry-After 60s", err)
	}
	if got := s.RateLimited("chat.postMessage"); got != 2 {
		t.Errorf("RateLimited(chat.postMessage) = %d, want 2", got)
	}
	if n := len(s.Posts()); n != 5 {
		t.Errorf("%d posts, want 5 (4 messages and 1 edit)", n)
	}
}

// Without WithRateLimits nothing is paced (other tests post freely), but a
// call inside a Retry-After that RateLimit announced is still counted.
func TestRateLimitsOffByDefault(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	ctx := context.Background()
	for range 20 {
		if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err != nil {
			t.Fatal(err)
		}
	}
	s.RateLimit("chat.postMessage", 1, time.Second)
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err == nil {
		t.Fatal("no forced 429")
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.InsideRetryAfter()); n != 1 {
		t.Errorf("%d calls counted inside the Retry-After, want 1", n)
	}
}
