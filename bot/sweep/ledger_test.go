package sweep_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/bot/sweep"
)

// channelPoster is a Slack channel as the sweep sees it: it records calls
// like recordingPoster, keeps each message's metadata for Tagged, and
// checks the context's fence before every attempt, as the Slack transport
// does. beforeAttempt, when set, runs before each attempt (a 429's wait,
// a pause).
type channelPoster struct {
	*recordingPoster

	mu            sync.Mutex
	meta          map[string]blockkit.Meta
	findErr       error
	finds         int
	beforeAttempt func(method string)
}

func newChannelPoster() *channelPoster {
	return &channelPoster{recordingPoster: &recordingPoster{}, meta: map[string]blockkit.Meta{}}
}

func (c *channelPoster) attempt(ctx context.Context, method string) error {
	c.mu.Lock()
	hook := c.beforeAttempt
	c.mu.Unlock()
	if hook != nil {
		hook(method)
	}
	return store.CheckFence(ctx)
}

func (c *channelPoster) keep(ts string, m blockkit.Message) {
	if m.Meta == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.meta[ts] = *m.Meta
}

func (c *channelPoster) Post(ctx context.Context, channel string, m blockkit.Message) (string, error) {
	if err := c.attempt(ctx, "post"); err != nil {
		return "", err
	}
	ts, err := c.recordingPoster.Post(ctx, channel, m)
	c.keep(ts, m)
	return ts, err
}

func (c *channelPoster) Update(ctx context.Context, channel, ts string, m blockkit.Message) error {
	if err := c.attempt(ctx, "update"); err != nil {
		return err
	}
	c.keep(ts, m)
	return c.recordingPoster.Update(ctx, channel, ts, m)
}

func (c *channelPoster) Reply(ctx context.Context, channel, threadTS string, m blockkit.Message) error {
	if err := c.attempt(ctx, "reply"); err != nil {
		return err
	}
	return c.recordingPoster.Reply(ctx, channel, threadTS, m)
}

func (c *channelPoster) Tagged(_ context.Context, _, metaType string, _ time.Time) (map[string]blockkit.Meta, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finds++
	if c.findErr != nil {
		return nil, c.findErr
	}
	out := map[string]blockkit.Meta{}
	for ts, m := range c.meta {
		if m.Type == metaType {
			out[ts] = m
		}
	}
	return out, nil
}

// withChannel makes h sweep with c as its poster and finder, under leader.
func (h *harness) withChannel(c *channelPoster, leader *sweep.Leader) {
	h.poster = c.recordingPoster
	h.sweeper = sweep.New(sweep.Options{
		Fleet: h.fleet, Store: h.st, Poster: c, Finder: c, Leader: leader,
		ChannelFor:     func([]string) string { return alertsChannel },
		RepeatInterval: repeat, Log: discard, Now: h.clock.Now,
	})
}

// An alert whose record was lost after its message went out (a crash
// between the post and the write, a store that restarted empty) is not
// posted again: the sweep finds the message by its metadata and redraws
// it. A resolved message is history: a recurrence gets a new one.
func TestLostRecordAlertNotPostedTwice(t *testing.T) {
	h := newHarness(t, "cache-1")
	c := newChannelPoster()
	h.withChannel(c, h.leader)
	h.prober.set("cache-1", oomRejecting)
	got := h.sweepAfter(0)
	wantCalls(t, "first sweep", got, "post")
	fired := got[0]
	if m := c.meta[fired.TS]; m.Type != "redisbot_alert" || m.Fields["instance"] != "cache-1" || m.Fields["finding"] != "oom-rejecting" || m.Fields["state"] != "firing" {
		t.Fatalf("alert message metadata: %+v", m)
	}

	// The store forgets the alert.
	if err := h.st.DeleteAlert(context.Background(), "cache-1", "oom-rejecting"); err != nil {
		t.Fatal(err)
	}
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "sweep after the record was lost", got, "update")
	if got[0].TS != fired.TS {
		t.Errorf("redrew %s, want the alert's message %s", got[0].TS, fired.TS)
	}
	if a := h.alert("cache-1", "oom-rejecting"); a.MessageTS != fired.TS || a.State != "firing" {
		t.Errorf("stored alert %+v, want firing with message %s", a, fired.TS)
	}
	h.sweepsQuiet(3, "the found alert")

	// Resolved, the message says so in its metadata too; when the finding
	// comes back it is a new alert and a new message.
	h.prober.set("cache-1", nil)
	for range 30 {
		h.sweepAfter(time.Minute)
	}
	if m := c.meta[fired.TS]; m.Fields["state"] != "resolved" {
		t.Fatalf("resolved alert's metadata: %+v", m)
	}
	h.prober.set("cache-1", oomRejecting)
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "recurrence", got, "post")
	if got[0].TS == fired.TS {
		t.Errorf("recurrence reused the resolved message")
	}
}

// When the channel cannot be read, the sweep does not post blind: the
// alert waits for the next sweep, once.
func TestUnreadableChannelPostsLater(t *testing.T) {
	h := newHarness(t, "cache-1")
	c := newChannelPoster()
	c.findErr = errors.New("slack: missing_scope")
	h.withChannel(c, h.leader)
	h.prober.set("cache-1", oomRejecting)
	wantCalls(t, "channel unreadable", h.sweepAfter(0))
	c.mu.Lock()
	c.findErr = nil
	c.mu.Unlock()
	wantCalls(t, "channel readable again", h.sweepAfter(time.Minute), "post")
	h.sweepsQuiet(2, "posted")
	if c.finds != 2 {
		t.Errorf("%d channel reads for two firing sweeps, want one each", c.finds)
	}
}

// A leader paused in the middle of a post (a 429's Retry-After, a GC, a
// stopped VM) while another replica takes the lease: its next attempt is
// refused by the fence, its write of the alert too, and the new leader
// posts the alert once.
func TestPausedLeaderPostsNothing(t *testing.T) {
	h := newHarness(t, "cache-1")
	c := newChannelPoster()
	h.withChannel(c, h.leader)
	h.prober.set("cache-1", oomRejecting)

	var successor *sweep.Leader
	c.beforeAttempt = func(method string) {
		if method != "post" || successor != nil {
			return
		}
		// The first post attempt was answered 429; while this leader
		// waits, it is paused past its lease and replica-b takes over.
		h.clock.step(leaseTTL + time.Minute)
		successor = startLeader(t, h.st, "replica-b")
	}
	wantCalls(t, "the paused leader's sweep", h.sweepAfter(0))
	if _, err := h.st.Alert(context.Background(), "cache-1", "oom-rejecting"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the paused leader stored the alert (err %v)", err)
	}
	// The old leader's next tick starts nothing: the store does not
	// confirm its lease.
	wantCalls(t, "the old leader's next tick", h.sweepAfter(time.Minute))

	c.beforeAttempt = nil
	h.withChannel(c, successor)
	wantCalls(t, "the new leader's sweep", h.sweepAfter(time.Minute), "post")
	h.sweepsQuiet(3, "the new leader")
	if last, err := h.st.LastFleetSweep(context.Background()); err != nil || last.By != "replica-b" || !last.At.Equal(h.clock.Now()) {
		t.Errorf("fleet sweep record: %+v %v, want replica-b's last", last, err)
	}
}

// The fleet sweep stamp is written by each sweep, for every replica's
// /metrics.
func TestSweepStampsTheFleet(t *testing.T) {
	h := newHarness(t, "cache-1")
	h.sweepAfter(0)
	last, err := h.st.LastFleetSweep(context.Background())
	if err != nil || last.By != "replica-a" || !last.At.Equal(h.clock.Now()) {
		t.Errorf("fleet sweep: %+v %v", last, err)
	}
}

// A leader that has not renewed for a lease by its own clock (a process
// stopped and resumed: its renewals did not run either) does not act on
// the token it remembers, even before the store is asked.
func TestLeaderForgetsAnUnrenewedLease(t *testing.T) {
	st := openStore(t, nil)
	l := startLeader(t, st, "replica-a")
	if _, ok := l.Token(); !ok {
		t.Fatal("not leading")
	}
	resumed := time.Now().Add(leaseTTL)
	l.SetClock(func() time.Time { return resumed })
	if tok, ok := l.Token(); ok {
		t.Errorf("token %d after a lease-long pause, want none", tok)
	}
	if _, _, ok := l.Fence(context.Background()); ok {
		t.Error("Fence after a lease-long pause")
	}
}

// permanentErr is Slack refusing the read for good (a missing scope).
type permanentErr struct{}

func (permanentErr) Error() string   { return "read the history of C0ALERTS: missing_scope" }
func (permanentErr) Permanent() bool { return true }

// A channel Slack will never show (the app lacks channels:history) does not
// stop alerts: they post without the check.
func TestRefusedChannelStillAlerts(t *testing.T) {
	h := newHarness(t, "cache-1")
	c := newChannelPoster()
	c.findErr = permanentErr{}
	h.withChannel(c, h.leader)
	h.prober.set("cache-1", oomRejecting)
	wantCalls(t, "channel history refused", h.sweepAfter(0), "post")
	h.sweepsQuiet(2, "posted")
}
