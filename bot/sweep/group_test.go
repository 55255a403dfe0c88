package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/handlers"
)

// slackPoster posts through an outbox, as the Slack transport does
// (bot/slackbot's Post, Update, Reply and Tagged), so these tests run the
// sweep against the local Slack with the real slack-go client.
type slackPoster struct{ out *outbox.Outbox }

func (p slackPoster) Post(ctx context.Context, channel string, m blockkit.Message) (string, error) {
	return p.out.Send(ctx, outbox.Message{Channel: channel, Body: m, Priority: outbox.PriorityAlert}).Wait(ctx)
}

func (p slackPoster) Update(ctx context.Context, channel, ts string, m blockkit.Message) error {
	_, err := p.out.Send(ctx, outbox.Message{Channel: channel, TS: ts, Body: m, Priority: outbox.PriorityUpdate}).Wait(ctx)
	return err
}

func (p slackPoster) Reply(ctx context.Context, channel, threadTS string, m blockkit.Message) error {
	_, err := p.out.Send(ctx, outbox.Message{Channel: channel, ThreadTS: threadTS, Body: m, Priority: outbox.PriorityNote}).Wait(ctx)
	return err
}

func (p slackPoster) Tagged(ctx context.Context, channel, metaType string, since time.Time) (map[string]blockkit.Meta, error) {
	return p.out.Tagged(ctx, channel, metaType, since)
}

// slackHarness is the harness's fleet and store swept into the local
// Slack under Slack's rate limits.
type slackHarness struct {
	*harness
	fake    *slacktest.Server
	metrics *metrics.Metrics
	names   []string
}

// newSlackHarness sweeps n instances (cache-000...) with grouping from
// threshold and a sweep interval (0: no delivery deadline).
func newSlackHarness(t *testing.T, n, threshold int, interval time.Duration) *slackHarness {
	t.Helper()
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("cache-%03d", i))
	}
	h := &slackHarness{harness: newHarness(t, names...), names: names, metrics: metrics.New()}
	h.fake = slacktest.New(t, slacktest.WithRateLimits(slacktest.SlackRateLimits()))
	h.fake.AllowMentions("<!subteam^S0ONCALL>")
	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(h.fake.APIURL()))
	poster := slackPoster{out: outbox.New(outbox.Options{API: api})}
	h.sweeper = sweep.New(sweep.Options{
		Fleet: h.fleet, Store: h.st, Poster: poster, Finder: poster, Leader: h.leader,
		ChannelFor:     func([]string) string { return alertsChannel },
		OnCallGroup:    "S0ONCALL",
		RepeatInterval: repeat,
		GroupThreshold: threshold,
		Interval:       interval,
		Metrics:        h.metrics,
		Log:            discard,
		Now:            h.clock.Now,
	})
	return h
}

// sweep steps the clock by d and sweeps once; it returns the local
// Slack's posts during the sweep.
func (h *slackHarness) sweep(d time.Duration) []slacktest.Post {
	before := len(h.fake.Posts())
	h.clock.step(d)
	h.sweeper.Tick(context.Background())
	return h.fake.Posts()[before:]
}

// topLevel are the messages posted in the channel (not in a thread).
func topLevel(posts []slacktest.Post) []slacktest.Post {
	var out []slacktest.Post
	for _, p := range posts {
		if p.Method == "chat.postMessage" && p.ThreadTS == "" {
			out = append(out, p)
		}
	}
	return out
}

func count(posts []slacktest.Post, method string) int {
	n := 0
	for _, p := range posts {
		if p.Method == method {
			n++
		}
	}
	return n
}

// Forty instances turning critical in one sweep: one message listing them
// with one on-call mention, every record pointing at it; half resolve: one
// edit and one note; all resolve: the message says so; one fires again: a
// message of its own.
func TestGroupedAlertLifecycle(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t, 40, 5, 0)
	for _, name := range h.names {
		h.prober.set(name, oomRejecting)
	}
	got := h.sweep(0)
	if len(got) != 1 || got[0].Method != "chat.postMessage" {
		t.Fatalf("first sweep: %d calls, want one message: %v", len(got), got)
	}
	group := got[0]
	text := group.BlocksText()
	if n := strings.Count(text, "<!subteam^S0ONCALL>"); n != 1 {
		t.Errorf("%d on-call mentions, want 1:\n%s", n, text)
	}
	if !strings.HasPrefix(group.Text, "CRITICAL · 40 instances · ") || !strings.Contains(text, "40 of 40 still firing") {
		t.Errorf("group message %q:\n%s", group.Text, text)
	}
	for _, name := range h.names {
		if !strings.Contains(text, "`"+name+"` CRITICAL") {
			t.Errorf("%s not listed:\n%s", name, text)
		}
		a := h.alert(name, "oom-rejecting")
		if a.MessageTS != group.TS || a.Channel != alertsChannel || !a.Group || a.State != alerts.StateFiring {
			t.Errorf("%s record %+v, want firing in group %s", name, a, group.TS)
		}
	}
	// The key evidence in absolute bytes: used_memory and maxmemory.
	if !strings.Contains(text, "(50000000 B)") {
		t.Errorf("no absolute bytes in the evidence:\n%s", text)
	}
	if !strings.Contains(string(group.Metadata), `"instances":"cache-000,cache-001,`) {
		t.Errorf("metadata %s does not name the instances", group.Metadata)
	}

	// A quiet sweep posts nothing.
	if got := h.sweep(time.Minute); len(got) != 0 {
		t.Fatalf("second sweep: %v", got)
	}

	// An operator silences one member: the message is redrawn, no note.
	if err := h.st.PutSilence(context.Background(), store.Silence{ID: "s1", Instance: "cache-039", Finding: "oom-rejecting",
		CreatedBy: "U0OP", CreatedAt: h.clock.Now(), Until: h.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got = h.sweep(time.Minute)
	if len(got) != 1 || got[0].Method != "chat.update" || got[0].TS != group.TS ||
		!strings.Contains(got[0].BlocksText(), "`cache-039` CRITICAL · errorstat_OOM 12 · used_memory") ||
		!strings.Contains(got[0].BlocksText(), ":no_bell: silenced") {
		t.Fatalf("after a silence: %v", got)
	}
	if got := h.sweep(time.Minute); len(got) != 0 {
		t.Fatalf("the sweep after the redraw: %v", got)
	}

	// Half resolve (after ClearFor): one edit, one note.
	for _, name := range h.names[:20] {
		h.prober.set(name, nil)
	}
	for range int(alerts.DefaultClearFor / time.Minute) {
		if got := h.sweep(time.Minute); len(got) != 0 {
			t.Fatalf("absent for less than ClearFor: %v", got)
		}
	}
	got = h.sweep(time.Minute)
	if len(got) != 2 || got[0].Method != "chat.update" || got[0].TS != group.TS || got[1].ThreadTS != group.TS {
		t.Fatalf("half resolved: %v, want one edit and one note in its thread", got)
	}
	if edit := got[0].BlocksText(); !strings.Contains(edit, "20 of 40 still firing") || !strings.Contains(edit, "~`cache-000`~ resolved") {
		t.Errorf("edit after half resolved:\n%s", edit)
	}
	if note := got[1].BlocksText(); !strings.Contains(note, "Resolved (20)") || !strings.Contains(note, "20 of 40 still firing") {
		t.Errorf("note: %s", note)
	}
	if a := h.alert("cache-000", "oom-rejecting"); a.State != alerts.StateResolved || a.MessageTS != group.TS {
		t.Errorf("resolved member %+v, want resolved and still in its group", a)
	}

	// The rest resolve: the message says so.
	for _, name := range h.names[20:] {
		h.prober.set(name, nil)
	}
	for range int(alerts.DefaultClearFor / time.Minute) {
		h.sweep(time.Minute)
	}
	got = h.sweep(time.Minute)
	if len(got) != 2 || got[0].Method != "chat.update" || !strings.HasPrefix(got[0].Text, "RESOLVED · 40 instances") {
		t.Fatalf("all resolved: %v", got)
	}
	if strings.Contains(got[0].BlocksText(), "subteam") || !strings.Contains(got[1].BlocksText(), "All 40 resolved.") {
		t.Errorf("resolved group:\n%s\n%s", got[0].BlocksText(), got[1].BlocksText())
	}
	if !strings.Contains(string(h.fake.Metadata(group.TS)), `"state":"resolved"`) {
		t.Errorf("metadata after resolve: %s", h.fake.Metadata(group.TS))
	}

	// One fires again: a new alert, with a message of its own.
	h.prober.set("cache-007", oomRejecting)
	got = h.sweep(time.Minute)
	if len(got) != 1 || got[0].Method != "chat.postMessage" || !strings.HasPrefix(got[0].Text, "CRITICAL · cache-007") {
		t.Fatalf("a member firing again: %v", got)
	}
	if a := h.alert("cache-007", "oom-rejecting"); a.Group || a.MessageTS != got[0].TS {
		t.Errorf("record %+v, want its own message %s", a, got[0].TS)
	}
	if v := h.fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// A group posted whose records were lost (a crash between the post and
// the save): the next sweep finds the members in its metadata and points
// them at it instead of posting again.
func TestGroupFoundAfterLostRecords(t *testing.T) {
	h := newSlackHarness(t, 8, 5, 0)
	for _, name := range h.names {
		h.prober.set(name, oomRejecting)
	}
	group := topLevel(h.sweep(0))
	if len(group) != 1 {
		t.Fatalf("first sweep posted %d messages, want one group", len(group))
	}
	for _, name := range h.names {
		if err := h.st.DeleteAlert(context.Background(), name, "oom-rejecting"); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.sweep(time.Minute); len(got) != 0 {
		t.Fatalf("after the records were lost: %v, want nothing posted", got)
	}
	for _, name := range h.names {
		if a := h.alert(name, "oom-rejecting"); a.MessageTS != group[0].TS || !a.Group {
			t.Errorf("%s record %+v, want it in group %s", name, a, group[0].TS)
		}
	}
}

// Fewer alerts than the threshold are posted one by one, as before.
func TestFewAlertsAreNotGrouped(t *testing.T) {
	h := newSlackHarness(t, 3, 5, 0)
	for _, name := range h.names {
		h.prober.set(name, oomRejecting)
	}
	got := h.sweep(0)
	if len(got) != 3 {
		t.Fatalf("%d calls, want 3 messages: %v", len(got), got)
	}
	for i, p := range got {
		if !strings.HasPrefix(p.Text, "CRITICAL · "+h.names[i]) || strings.Count(p.BlocksText(), "<!subteam^S0ONCALL>") != 1 {
			t.Errorf("message %d: %q", i, p.Text)
		}
		if a := h.alert(h.names[i], "oom-rejecting"); a.Group || a.MessageTS != p.TS {
			t.Errorf("record %+v, want its own message %s", a, p.TS)
		}
	}
}

// More alerts than fit in one group message: fifty lines, then a count,
// within Slack's limits.
func TestGroupMessageIsBounded(t *testing.T) {
	h := newSlackHarness(t, 120, 5, 0)
	for _, name := range h.names {
		h.prober.set(name, oomRejecting)
	}
	got := h.sweep(0)
	if len(got) != 1 {
		t.Fatalf("%d calls, want one message", len(got))
	}
	var blocks []json.RawMessage
	if err := json.Unmarshal(got[0].Blocks, &blocks); err != nil || len(blocks) > 50 {
		t.Errorf("%d blocks (%v), want at most 50", len(blocks), err)
	}
	if text := got[0].BlocksText(); !strings.Contains(text, "…and 70 more: `/redis fleet` lists every instance.") {
		t.Errorf("no count of the instances left out:\n%s", text)
	}
	if v := h.fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// A storm larger than the delivery deadline allows under Slack's rate
// limits (one message a second in a channel, grouping off): the sweep
// returns within its deadline, the rest go out in the next sweeps, and
// none twice.
func TestDeliveryDeadlineDefersTheRest(t *testing.T) {
	t.Parallel() // paced by the rate limits for about 10 s
	const n = 12
	interval := 3 * time.Second // a delivery budget of 2.4 s
	// The budget counts from the sweep's start on the test's clock, which
	// stands still while observe probes and save writes: under -race on a
	// loaded machine they take up to a second of real time more. Without
	// the deadline the first sweep would take about 10 s.
	limit := interval + time.Second
	h := newSlackHarness(t, n, 0, interval)
	for _, name := range h.names {
		h.prober.set(name, oomRejecting)
	}
	start := time.Now()
	first := topLevel(h.sweep(0))
	if d := time.Since(start); d > limit {
		t.Errorf("the sweep took %v, longer than its interval %v and a second", d.Round(time.Millisecond), interval)
	}
	if len(first) == 0 || len(first) >= n {
		t.Fatalf("the first sweep posted %d of %d alerts: want some, not all, within its deadline", len(first), n)
	}
	deferred := counter(t, h.metrics, "redisbot_sweep_notifications_deferred_total", "")
	if deferred == 0 {
		t.Errorf("no deferred notifications counted")
	}
	for sweeps := 1; ; sweeps++ {
		posted := 0
		for _, name := range h.names {
			// A deferred alert keeps its previous state: none yet.
			if a, err := h.st.Alert(context.Background(), name, "oom-rejecting"); err == nil && a.MessageTS != "" {
				posted++
			}
		}
		if posted == n {
			break
		}
		if sweeps > 10 {
			t.Fatalf("after %d sweeps %d of %d alerts posted", sweeps, posted, n)
		}
		start := time.Now()
		h.sweep(time.Minute)
		if d := time.Since(start); d > limit {
			t.Errorf("sweep %d took %v", sweeps+1, d.Round(time.Millisecond))
		}
	}
	perInstance := map[string]int{}
	for _, p := range topLevel(h.fake.Posts()) {
		for _, name := range h.names {
			if strings.HasPrefix(p.Text, "CRITICAL · "+name+" ") {
				perInstance[name]++
			}
		}
	}
	for _, name := range h.names {
		if perInstance[name] != 1 {
			t.Errorf("%s posted %d times, want once", name, perInstance[name])
		}
		if a := h.alert(name, "oom-rejecting"); a.State != alerts.StateFiring || a.Notified != handlers.SeverityCritical {
			t.Errorf("%s record %+v", name, a)
		}
	}
	if inside := h.fake.InsideRetryAfter(); len(inside) > 0 {
		t.Errorf("calls inside a Retry-After: %v", inside)
	}
}
