package outbox_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
)

// fenceOutbox is an Outbox on a local Slack with metrics, and a bbolt
// store whose "scheduler" lease r1 holds: fenced is fenced by r1's token.
func fenceOutbox(t *testing.T, client *http.Client) (out *outbox.Outbox, fake *slacktest.Server, st *store.Store, m *metrics.Metrics, fenced context.Context) {
	t.Helper()
	fake = slacktest.New(t)
	opts := []slack.Option{slack.OptionAPIURL(fake.APIURL())}
	if client != nil {
		opts = append(opts, slack.OptionHTTPClient(client))
	}
	m = metrics.New()
	out = outbox.New(outbox.Options{API: slack.New(slacktest.BotToken, opts...), Metrics: m})
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "redisbot.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, ok, err := st.AcquireLease(context.Background(), "scheduler", "r1", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	return out, fake, st, m, st.WithFence(context.Background(), store.Fence{Lease: "scheduler", Token: l.Token})
}

func post(ctx context.Context, out *outbox.Outbox, channel string, m blockkit.Message) (string, error) {
	return out.Send(ctx, outbox.Message{Channel: channel, Body: m, Priority: outbox.PriorityAlert}).Wait(ctx)
}

// A post that waits out a 429 checks the lease again before it posts: a
// leader that lost the lease while it waited posts nothing (issue 17,
// case 2), and says so in its log and metrics, not as a Slack error.
func TestRetryAfterRateLimitChecksTheFence(t *testing.T) {
	out, fake, st, m, fenced := fenceOutbox(t, nil)
	fake.RateLimit("chat.postMessage", 1, time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := post(fenced, out, "C0ALERTS", blockkit.RenderNote("cache-1 is rejecting writes"))
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for fake.RateLimited("chat.postMessage") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no 429")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// While it waits, another replica takes the lease.
	ctx := context.Background()
	if err := st.ReleaseLease(ctx, "scheduler", "r1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.AcquireLease(ctx, "scheduler", "r2", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := <-done; !errors.Is(err, store.ErrFenced) {
		t.Errorf("post after the lease moved: %v, want ErrFenced", err)
	}
	if posts := fake.Posts(); len(posts) != 0 {
		t.Errorf("a fenced leader posted: %v", posts)
	}
	body := scrape(t, m)
	for _, want := range []string{`redisbot_fenced_total{what="slack"} 1`, `redisbot_slack_errors_total{method="chat.postMessage"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// A leader that kept its lease posts once after the wait.
	fresh, ok, err := st.AcquireLease(ctx, "scheduler", "r2", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	fake.RateLimit("chat.postMessage", 1, time.Second)
	if _, err := post(st.WithFence(ctx, store.Fence{Lease: "scheduler", Token: fresh.Token}), out, "C0ALERTS", blockkit.RenderNote("still rejecting")); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Posts()); n != 1 {
		t.Errorf("%d posts by the leader, want 1", n)
	}
	if inside := fake.InsideRetryAfter(); len(inside) > 0 {
		t.Errorf("calls inside a Retry-After: %v", inside)
	}
}

// Alert messages carry their metadata in Slack, set by post and update,
// and Tagged reads them back from the channel's history: top-level
// messages of the type asked, newest within the window.
func TestTaggedMessagesRoundTrip(t *testing.T) {
	out, fake, _, _, _ := fenceOutbox(t, nil)
	ctx := context.Background()
	alert := func(state string) blockkit.Message {
		m := blockkit.RenderNote("cache-1 oom-rejecting " + state)
		m.Meta = &blockkit.Meta{Type: "redisbot_alert", Fields: map[string]string{"instance": "cache-1", "finding": "oom-rejecting", "state": state}}
		return m
	}
	ts, err := post(ctx, out, "C0ALERTS", alert("firing"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Send(ctx, outbox.Message{Channel: "C0ALERTS", ThreadTS: ts, Body: blockkit.RenderNote("a note in the thread"), Priority: outbox.PriorityNote}).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	other := blockkit.RenderNote("a digest")
	other.Meta = &blockkit.Meta{Type: "redisbot_digest", Fields: map[string]string{}}
	if _, err := post(ctx, out, "C0ALERTS", other); err != nil {
		t.Fatal(err)
	}
	if _, err := post(ctx, out, "C0OTHER", alert("firing")); err != nil {
		t.Fatal(err)
	}
	got, err := out.Tagged(ctx, "C0ALERTS", "redisbot_alert", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[ts].Fields["state"] != "firing" || got[ts].Fields["instance"] != "cache-1" {
		t.Fatalf("Tagged = %+v, want the alert %s firing", got, ts)
	}
	if _, err := out.Send(ctx, outbox.Message{Channel: "C0ALERTS", TS: ts, Body: alert("resolved"), Priority: outbox.PriorityUpdate}).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := out.Tagged(ctx, "C0ALERTS", "redisbot_alert", time.Now().Add(-time.Hour)); got[ts].Fields["state"] != "resolved" {
		t.Errorf("after the update: %+v", got)
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// A post whose answer was lost (the client gave up, the post had landed)
// is not posted again by the retry: the message is found by its metadata.
func TestLostAnswerNotPostedTwice(t *testing.T) {
	out, fake, _, _, _ := fenceOutbox(t, &http.Client{Timeout: 300 * time.Millisecond})
	release := fake.HoldAnswers("chat.postMessage", 1)
	defer release()
	m := blockkit.RenderNote("cache-1 oom-rejecting")
	m.Meta = &blockkit.Meta{Type: "redisbot_alert", Fields: map[string]string{"instance": "cache-1", "finding": "oom-rejecting", "state": "firing"}}
	ts, err := post(context.Background(), out, "C0ALERTS", m)
	if err != nil {
		t.Fatal(err)
	}
	posts := fake.Posts()
	if len(posts) != 1 || posts[0].TS != ts || fake.Held("chat.postMessage") != 1 {
		t.Errorf("posts %v (held %d), want the one message %s", posts, fake.Held("chat.postMessage"), ts)
	}
}

// Slack refusing the history read is reported as permanent (the sweep then
// alerts without the check); a network failure is not.
func TestTaggedRefusalIsPermanent(t *testing.T) {
	out, _, _, _, _ := fenceOutbox(t, nil)
	_, err := out.Tagged(context.Background(), "", "redisbot_alert", time.Now().Add(-time.Hour))
	var p interface{ Permanent() bool }
	if !errors.As(err, &p) || !p.Permanent() || !strings.Contains(err.Error(), "channel_not_found") {
		t.Errorf("refused read: %v", err)
	}
	dead := outbox.New(outbox.Options{API: slack.New(slacktest.BotToken, slack.OptionAPIURL("http://"+freeLoopback(t)+"/api/"))})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := dead.Tagged(ctx, "C0ALERTS", "redisbot_alert", time.Now()); err == nil || errors.As(err, &p) {
		t.Errorf("unreachable Slack: %v, want a transient error", err)
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
