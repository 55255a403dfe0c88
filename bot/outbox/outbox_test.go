package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
)

// newOutbox is an Outbox with metrics on the real slack-go client against
// a local Slack started with fakeOpts.
func newOutbox(t *testing.T, o outbox.Options, fakeOpts ...slacktest.Option) (*outbox.Outbox, *slacktest.Server, *metrics.Metrics) {
	t.Helper()
	fake := slacktest.New(t, fakeOpts...)
	o.API = slack.New(slacktest.BotToken, slack.OptionAPIURL(fake.APIURL()))
	o.Metrics = metrics.New()
	return outbox.New(o), fake, o.Metrics
}

// fast paces chat.postMessage at 20 a second: tests of the order of
// messages need not wait Slack's second between posts.
var fast = outbox.Limits{"chat.postMessage": {Every: 50 * time.Millisecond, Burst: 1}}

func note(text string) blockkit.Message { return blockkit.RenderNote(text) }

// wait is every Delivery's outcome, failing t on timeout.
func wait(t *testing.T, ds ...*outbox.Delivery) []result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make([]result, len(ds))
	for i, d := range ds {
		out[i].ts, out[i].err = d.Wait(ctx)
		if errors.Is(out[i].err, context.DeadlineExceeded) {
			t.Fatalf("delivery %d: no outcome within a minute", i)
		}
	}
	return out
}

type result struct {
	ts  string
	err error
}

// texts are the texts of the posts of method, in the order Slack took them.
func texts(fake *slacktest.Server, method string) []string {
	var out []string
	for _, p := range fake.Posts() {
		if p.Method == method {
			out = append(out, p.Text)
		}
	}
	return out
}

// Within a lane the most urgent message goes first: a reply, then new
// alerts, then thread notes, each kind in the order sent.
func TestPriorities(t *testing.T) {
	out, fake, _ := newOutbox(t, outbox.Options{Limits: fast})
	ctx := context.Background()
	release := fake.HoldAnswers("chat.postMessage", 1)
	first := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("first"), Priority: outbox.PriorityNote})
	fake.WaitPosts(t, 1, 5*time.Second, nil) // in flight, its answer held: the rest queue behind it
	ds := []*outbox.Delivery{first}
	for i, p := range []outbox.Priority{outbox.PriorityNote, outbox.PriorityAlert, outbox.PriorityNote, outbox.PriorityReply, outbox.PriorityAlert} {
		ds = append(ds, out.Send(ctx, outbox.Message{Channel: "C1", Body: note(fmt.Sprintf("%d %s", i, p)), Priority: p}))
	}
	release()
	for i, r := range wait(t, ds...) {
		if r.err != nil || r.ts == "" {
			t.Errorf("message %d: ts %q, %v", i, r.ts, r.err)
		}
	}
	got := strings.Join(texts(fake, "chat.postMessage"), ", ")
	if want := "first, 3 reply, 1 alert, 4 alert, 0 note, 2 note"; got != want {
		t.Errorf("posted %s, want %s", got, want)
	}
}

// A newer version of a queued edit replaces it: Slack sees the first
// (in flight) and the last, and every Delivery reports the edit made.
func TestNewerUpdateReplacesQueuedOne(t *testing.T) {
	out, fake, m := newOutbox(t, outbox.Options{})
	ctx := context.Background()
	ts, err := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("alert"), Priority: outbox.PriorityAlert}).Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release := fake.HoldAnswers("chat.update", 1)
	update := func(v int) *outbox.Delivery {
		return out.Send(ctx, outbox.Message{Channel: "C1", TS: ts, Key: "alert/C1/cache-1/oom", Body: note(fmt.Sprintf("v%d", v)), Priority: outbox.PriorityUpdate})
	}
	ds := []*outbox.Delivery{update(1)}
	fake.WaitPosts(t, 1, 5*time.Second, func(p slacktest.Post) bool { return p.Method == "chat.update" })
	for v := 2; v <= 4; v++ {
		ds = append(ds, update(v))
	}
	release()
	for i, r := range wait(t, ds...) {
		if r.err != nil || r.ts != ts {
			t.Errorf("update %d: ts %q, %v; want %s", i+1, r.ts, r.err, ts)
		}
	}
	if got := strings.Join(texts(fake, "chat.update"), ", "); got != "v1, v4" {
		t.Errorf("Slack saw the edits %s, want v1, v4", got)
	}
	if body := scrape(t, m); !strings.Contains(body, `redisbot_slack_outbox_dropped_total{priority="update",reason="replaced"} 2`) {
		t.Errorf("/metrics lacks the 2 replaced edits:\n%s", grep(body, "outbox"))
	}
}

// A resolve that finds its alert's message still queued cancels it: Slack
// sees neither, and both Deliveries say so.
func TestResolveCancelsQueuedFire(t *testing.T) {
	out, fake, m := newOutbox(t, outbox.Options{})
	ctx := context.Background()
	release := fake.HoldAnswers("chat.postMessage", 1)
	busy := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("another alert"), Priority: outbox.PriorityAlert})
	fake.WaitPosts(t, 1, 5*time.Second, nil)
	key := "alert/C1/cache-1/oom"
	fire := out.Send(ctx, outbox.Message{Channel: "C1", Key: key, Body: note("cache-1 oom firing"), Priority: outbox.PriorityAlert})
	resolve := out.Send(ctx, outbox.Message{Channel: "C1", Key: key, Resolve: true, Body: note("cache-1 oom resolved"), Priority: outbox.PriorityUpdate})
	release()
	r := wait(t, busy, fire, resolve)
	if r[0].err != nil || !errors.Is(r[1].err, outbox.ErrCancelled) || !errors.Is(r[2].err, outbox.ErrCancelled) {
		t.Errorf("outcomes %v, want the busy post delivered and the fire and resolve cancelled", r)
	}
	// A resolve whose fire went out is sent.
	fired, err := out.Send(ctx, outbox.Message{Channel: "C1", Key: key, Body: note("cache-1 oom firing again"), Priority: outbox.PriorityAlert}).Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Send(ctx, outbox.Message{Channel: "C1", TS: fired, Key: key, Resolve: true, Body: note("cache-1 oom resolved"), Priority: outbox.PriorityUpdate}).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(append(texts(fake, "chat.postMessage"), texts(fake, "chat.update")...), ", "); got != "another alert, cache-1 oom firing again, cache-1 oom resolved" {
		t.Errorf("Slack saw %s", got)
	}
	if body := scrape(t, m); !strings.Contains(body, `redisbot_slack_outbox_dropped_total{priority="alert",reason="cancelled"} 1`) {
		t.Errorf("/metrics lacks the cancelled fire:\n%s", grep(body, "outbox"))
	}
}

// A full queue drops its least urgent message, the last sent of those,
// for a more urgent one, and refuses a message no more urgent than any it
// holds; both are counted, and the depth shows what waits.
func TestFullQueueDropsLeastUrgent(t *testing.T) {
	out, fake, m := newOutbox(t, outbox.Options{MaxQueue: 3, Limits: fast})
	ctx := context.Background()
	release := fake.HoldAnswers("chat.postMessage", 1)
	defer release()
	busy := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("in flight"), Priority: outbox.PriorityAlert})
	fake.WaitPosts(t, 1, 5*time.Second, nil)
	note1 := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("note 1"), Priority: outbox.PriorityNote})
	note2 := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("note 2"), Priority: outbox.PriorityNote})
	alert := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("alert"), Priority: outbox.PriorityAlert})
	reply := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("reply"), Priority: outbox.PriorityReply})
	note3 := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("note 3"), Priority: outbox.PriorityNote})
	for name, d := range map[string]*outbox.Delivery{"note 2": note2, "note 3": note3} {
		if _, err := d.Wait(ctx); !errors.Is(err, outbox.ErrQueueFull) {
			t.Errorf("%s: %v, want ErrQueueFull", name, err)
		}
	}
	body := scrape(t, m)
	for _, want := range []string{
		`redisbot_slack_outbox_dropped_total{priority="note",reason="queue_full"} 2`,
		`redisbot_slack_outbox_depth{priority="note"} 1`,
		`redisbot_slack_outbox_depth{priority="alert"} 1`,
		`redisbot_slack_outbox_depth{priority="reply"} 1`,
		`redisbot_slack_outbox_oldest_age_seconds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grep(body, "outbox"))
		}
	}
	release()
	for i, r := range wait(t, busy, reply, alert, note1) {
		if r.err != nil {
			t.Errorf("kept message %d: %v", i, r.err)
		}
	}
	if got := strings.Join(texts(fake, "chat.postMessage"), ", "); got != "in flight, reply, alert, note 1" {
		t.Errorf("posted %s", got)
	}
}

// Against a Slack stricter than the outbox's own pace, every 429 pauses
// the whole lane for its Retry-After: no call inside one, nothing lost or
// posted twice, the reply still first.
func TestRetryAfterPausesTheLane(t *testing.T) {
	out, fake, m := newOutbox(t, outbox.Options{Limits: outbox.Limits{"chat.postMessage": {Every: 100 * time.Millisecond, Burst: 1}}},
		slacktest.WithRateLimits(slacktest.RateLimits{PostPerChannel: slacktest.Rate{Every: 500 * time.Millisecond, Burst: 2}}))
	ctx := context.Background()
	var ds []*outbox.Delivery
	for i := range 8 {
		ds = append(ds, out.Send(ctx, outbox.Message{Channel: "C1", Body: note(fmt.Sprintf("alert %d", i)), Priority: outbox.PriorityAlert}))
	}
	fake.WaitPosts(t, 2, 5*time.Second, nil)
	ds = append(ds, out.Send(ctx, outbox.Message{Channel: "C1", Body: note("reply"), Priority: outbox.PriorityReply}))
	for i, r := range wait(t, ds...) {
		if r.err != nil {
			t.Errorf("message %d: %v", i, r.err)
		}
	}
	if fake.RateLimited("chat.postMessage") == 0 {
		t.Fatal("Slack never said 429: the test proves nothing")
	}
	if inside := fake.InsideRetryAfter(); len(inside) > 0 {
		t.Errorf("%d calls inside a Retry-After: %v", len(inside), inside)
	}
	posted := texts(fake, "chat.postMessage")
	seen := map[string]int{}
	for _, text := range posted {
		seen[text]++
	}
	if len(posted) != 9 || len(seen) != 9 {
		t.Errorf("posted %q, want 9 messages once each", posted)
	}
	if i := indexOf(posted, "reply"); i < 0 || i > 3 {
		t.Errorf("the reply went out %dth: %q", i+1, posted)
	}
	if body := scrape(t, m); !strings.Contains(body, `redisbot_slack_paused_total{method="chat.postMessage"}`) {
		t.Errorf("/metrics lacks the pauses:\n%s", grep(body, "slack"))
	}
}

// A message whose Send context ends while it waits is not sent.
func TestExpiredMessageIsNotSent(t *testing.T) {
	out, fake, _ := newOutbox(t, outbox.Options{})
	release := fake.HoldAnswers("chat.postMessage", 1)
	busy := out.Send(context.Background(), outbox.Message{Channel: "C1", Body: note("in flight"), Priority: outbox.PriorityAlert})
	fake.WaitPosts(t, 1, 5*time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	late := out.Send(ctx, outbox.Message{Channel: "C1", Body: note("too late"), Priority: outbox.PriorityReply})
	cancel()
	release()
	r := wait(t, busy, late)
	if r[0].err != nil || !errors.Is(r[1].err, context.Canceled) {
		t.Errorf("outcomes %v", r)
	}
	if got := texts(fake, "chat.postMessage"); len(got) != 1 {
		t.Errorf("posted %q", got)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// scrape is what /metrics serves.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler(metrics.Checks{}, nil, nil))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// grep keeps the lines of text that contain s, for failure messages.
func grep(text, s string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// A Home tab goes out through views.publish, redacted like any message.
func TestPublishHome(t *testing.T) {
	out, fake, _ := newOutbox(t, outbox.Options{Redactor: handlers.NewRedactor("hunter2-secret-pw")})
	ctx := context.Background()
	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "cache-1 auth hunter2-secret-pw failed", false, true), nil, nil)}}}
	if _, err := out.PublishHome(ctx, "U1", view, outbox.PriorityReply).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got := string(fake.WaitHome(t, "U1", 5*time.Second).View)
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "cache-1 auth") {
		t.Errorf("published Home tab is not the redacted view: %s", got)
	}
}

// A Retry-After of an hour (a broken proxy, a fake) holds no message for
// an hour: the pause is capped (maxPause, 2 minutes); a reply whose
// deadline it outlasts fails at once with ErrRateLimited; a message sent
// without a deadline gives up at MaxWait; a message in another lane is not
// held at all.
func TestHugeRetryAfterHoldsNoMessageForAnHour(t *testing.T) {
	out, fake, m := newOutbox(t, outbox.Options{MaxWait: 2 * time.Second})
	fake.RateLimit("chat.postMessage", 1, time.Hour)
	start := time.Now()
	first := out.Send(context.Background(), outbox.Message{Channel: "C1", Body: note("no deadline"), Priority: outbox.PriorityAlert})
	waitRateLimited(t, fake, "chat.postMessage", 1)
	patient, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	longReply := out.Send(patient, outbox.Message{Channel: "C1", Body: note("reply with 3 minutes"), Priority: outbox.PriorityReply})
	soon, cancelSoon := context.WithTimeout(context.Background(), time.Minute)
	defer cancelSoon()
	reply := out.Send(soon, outbox.Message{Channel: "C1", Body: note("reply with a minute"), Priority: outbox.PriorityReply})
	other := out.Send(soon, outbox.Message{Channel: "C2", Body: note("elsewhere"), Priority: outbox.PriorityReply})
	r := wait(t, reply, other)
	if !errors.Is(r[0].err, outbox.ErrRateLimited) || !strings.Contains(r[0].err.Error(), "past its deadline") {
		t.Errorf("reply in the paused lane: %v, want ErrRateLimited at once", r[0].err)
	}
	if r[1].err != nil {
		t.Errorf("post in another channel: %v", r[1].err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("the reply failed after %v: it should not wait for a pause it cannot outlive", waited)
	}
	select {
	case <-first.Done():
	case <-time.After(time.Minute):
		t.Fatal("the message without a deadline had no outcome within a minute")
	}
	if _, err := first.Wait(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("message without a deadline: %v, want it to give up at MaxWait", err)
	}
	if waited := time.Since(start); waited < 2*time.Second || waited > 10*time.Second {
		t.Errorf("the message without a deadline gave up after %v, want MaxWait (2s)", waited)
	}
	// The 3-minute reply's deadline outlasts the capped pause: it waits.
	select {
	case <-longReply.Done():
		_, err := longReply.Wait(patient)
		t.Errorf("reply with 3 minutes to go: %v, want it still queued behind the 2-minute pause", err)
	default:
	}
	if got := texts(fake, "chat.postMessage"); len(got) != 1 || got[0] != "elsewhere" {
		t.Errorf("posted %q, want only the message in the other channel", got)
	}
	if body := scrape(t, m); !strings.Contains(body, `redisbot_slack_outbox_dropped_total{priority="reply",reason="rate_limited"} 1`) {
		t.Errorf("/metrics lacks the rate-limited drop:\n%s", grep(body, "dropped"))
	}
	out.Close()
	if _, err := longReply.Wait(patient); !errors.Is(err, outbox.ErrClosed) {
		t.Errorf("reply after Close: %v, want ErrClosed", err)
	}
}

// Close ends every wait at once: messages queued behind a pause fail with
// ErrClosed, a call in flight whose answer Slack holds is cut, and a later
// Send fails at once.
func TestCloseEndsEveryWait(t *testing.T) {
	out, fake, _ := newOutbox(t, outbox.Options{})
	fake.RateLimit("chat.postMessage", 1, time.Hour)
	first := out.Send(context.Background(), outbox.Message{Channel: "C1", Body: note("paused"), Priority: outbox.PriorityAlert})
	waitRateLimited(t, fake, "chat.postMessage", 1)
	queued := out.Send(context.Background(), outbox.Message{Channel: "C1", Body: note("behind it"), Priority: outbox.PriorityNote})
	release := fake.HoldAnswers("chat.update", 1)
	defer release()
	inFlight := out.Send(context.Background(), outbox.Message{Channel: "C2", TS: "1.000001", Body: note("edit"), Priority: outbox.PriorityUpdate})
	for deadline := time.Now().Add(5 * time.Second); fake.Held("chat.update") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the edit never reached Slack")
		}
	}
	start := time.Now()
	out.Close()
	late := out.Send(context.Background(), outbox.Message{Channel: "C3", Body: note("after close"), Priority: outbox.PriorityReply})
	for i, r := range wait(t, first, queued, inFlight, late) {
		if !errors.Is(r.err, outbox.ErrClosed) {
			t.Errorf("message %d: %v, want ErrClosed", i, r.err)
		}
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("Close took %v to end the waits", waited)
	}
	if got := texts(fake, "chat.postMessage"); len(got) != 0 {
		t.Errorf("posted %q after Close", got)
	}
}

// waitRateLimited waits until fake has answered n 429s to method.
func waitRateLimited(t *testing.T, fake *slacktest.Server, method string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); fake.RateLimited(method) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d 429s after 5s, want %d", method, fake.RateLimited(method), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
