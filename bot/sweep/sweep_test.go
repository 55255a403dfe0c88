package sweep_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

const (
	alertsChannel = "C0ALERTS"
	leaseName     = "scheduler"
	// leaseTTL is in the store's (fake) time: longer than any test steps
	// the clock, so the leader keeps the lease unless a test expires it.
	leaseTTL = 7 * 24 * time.Hour
	repeat   = time.Hour
)

// clock is the injected time of the sweeper, the store and the service;
// tests step it by minutes, one sweep per step.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Tweaks of the captured Redis 7.0 INFO. clean makes it an instance with
// nothing to report (maxmemory set, an evicting policy, no fragmentation);
// the others add one finding each.
var (
	clean = map[string]string{
		"maxmemory": "268435456", "maxmemory_policy": "allkeys-lru", "used_memory_rss": "67108864",
		"mem_fragmentation_ratio": "1.10", "allocator_frag_ratio": "1.02", "allocator_frag_bytes": "1048576",
	}
	// oomRejecting: a noeviction instance over its maxmemory (58 MiB in
	// use, 50 MB allowed) rejecting writes, a critical finding that fires
	// at once. A count of OOM errors alone would be history, not an alert.
	oomRejecting = map[string]string{"errorstat_OOM": "count=12", "maxmemory": "50000000", "maxmemory_policy": "noeviction"}
	// libcAllocator: an info-level finding (allocator-not-jemalloc).
	libcAllocator = map[string]string{"mem_allocator": "libc"}
)

// cannedProber answers each instance with the captured INFO plus tweaks,
// or with a probe error; tests change the answers between sweeps.
type cannedProber struct {
	base  string
	clock *clock

	mu      sync.Mutex
	tweaks  map[string]map[string]string
	failing map[string]handlers.ErrorClass
}

func (p *cannedProber) set(instance string, tweaks map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tweaks[instance] = tweaks
	delete(p.failing, instance)
}

func (p *cannedProber) fail(instance string, class handlers.ErrorClass) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing[instance] = class
}

func (p *cannedProber) Probe(_ context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if class, ok := p.failing[inst.Name]; ok {
		return nil, &handlers.ProbeError{Instance: inst.Name, Class: class, Err: errors.New("canned failure")}
	}
	info := handlers.ParseInfo(p.base)
	for k, v := range clean {
		info[k] = v
	}
	for k, v := range p.tweaks[inst.Name] {
		info[k] = v
	}
	cfg := map[string]string{"maxmemory": info["maxmemory"], "maxmemory-policy": info["maxmemory_policy"],
		"activedefrag": "no", "save": "", "appendonly": "no", "replica-ignore-maxmemory": "yes"}
	return &handlers.Snapshot{Instance: inst.Name, ProbedAt: p.clock.Now(), Info: info, Config: cfg}, nil
}

// post is one call to the Poster.
type post struct {
	Method   string // post, update, reply
	Channel  string
	TS       string // the message posted or updated
	ThreadTS string // reply: the alert's message
	Text     string
	Blocks   string // the blocks as JSON, to find a finding's `id`
}

// shows reports whether the blocks hold text, as JSON encodes it (a
// mention's angle brackets escaped).
func (p post) shows(text string) bool {
	b, _ := json.Marshal(text)
	return strings.Contains(p.Blocks, strings.Trim(string(b), `"`))
}

func (p post) about(findingID string) bool {
	return strings.Contains(p.Blocks, "`"+findingID+"`")
}

func (p post) String() string { return fmt.Sprintf("%s %s %q", p.Method, p.TS+p.ThreadTS, p.Text) }

// recordingPoster stands in for Slack and records every call.
type recordingPoster struct {
	mu    sync.Mutex
	posts []post
	seen  int
}

func (r *recordingPoster) record(p post, m blockkit.Message) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep <!subteam^...> readable
	_ = enc.Encode(m.Blocks)
	p.Text, p.Blocks = m.Text, b.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts = append(r.posts, p)
}

func (r *recordingPoster) Post(_ context.Context, channel string, m blockkit.Message) (string, error) {
	r.mu.Lock()
	ts := fmt.Sprintf("1800000000.%06d", len(r.posts)+1)
	r.mu.Unlock()
	r.record(post{Method: "post", Channel: channel, TS: ts}, m)
	return ts, nil
}

func (r *recordingPoster) Update(_ context.Context, channel, ts string, m blockkit.Message) error {
	r.record(post{Method: "update", Channel: channel, TS: ts}, m)
	return nil
}

func (r *recordingPoster) Reply(_ context.Context, channel, threadTS string, m blockkit.Message) error {
	r.record(post{Method: "reply", Channel: channel, ThreadTS: threadTS}, m)
	return nil
}

// since returns the calls made since the previous call of since.
func (r *recordingPoster) since() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.posts[r.seen:]
	r.seen = len(r.posts)
	return out
}

// harness is a Sweeper over a real bbolt store, with a real service over
// canned probes, a leader holding the lease and a recording poster.
type harness struct {
	t       *testing.T
	clock   *clock
	st      *store.Store
	prober  *cannedProber
	fleet   sweep.Fleet
	poster  *recordingPoster
	leader  *sweep.Leader
	sweeper *sweep.Sweeper
}

var discard = slog.New(slog.DiscardHandler)

// newHarness sweeps the named instances, all clean at first.
func newHarness(t *testing.T, names ...string) *harness {
	t.Helper()
	base, err := os.ReadFile("../../handlers/testdata/info/redis-7.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)
	h := &harness{t: t, clock: clk, st: st, poster: &recordingPoster{},
		prober: &cannedProber{base: string(base), clock: clk, tweaks: map[string]map[string]string{}, failing: map[string]handlers.ErrorClass{}}}
	h.leader = startLeader(t, st, "replica-a")
	var instances []handlers.Instance
	for _, name := range names {
		instances = append(instances, handlers.Instance{Name: name, Addr: "127.0.0.1:1", Tags: []string{"cache"}, Thresholds: handlers.DefaultThresholds()})
	}
	h.fleet = handlers.NewService(instances, h.prober, nil, 4, clk.Now)
	h.sweeper = h.newSweeper(h.fleet, h.leader)
	return h
}

// openStore opens a bbolt store in the test's directory; now nil is the
// wall clock.
func openStore(t testing.TB, now func() time.Time) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "redisbot.db"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (h *harness) newSweeper(fleet sweep.Fleet, leader *sweep.Leader) *sweep.Sweeper {
	return sweep.New(sweep.Options{
		Fleet: fleet, Store: h.st, Poster: h.poster, Leader: leader,
		ChannelFor:     func([]string) string { return alertsChannel },
		OnCallGroup:    "S0ONCALL",
		RepeatInterval: repeat,
		Log:            discard,
		Now:            h.clock.Now,
	})
}

// startLeader runs a Leader until the test ends and waits until it holds
// the lease (or finds another holder has it).
func startLeader(t testing.TB, st *store.Store, holder string) *sweep.Leader {
	t.Helper()
	l, _ := runLeader(t, st, holder)
	return l
}

// runLeader is startLeader with a stop that ends the Leader earlier,
// releasing the lease as a replica that shuts down does.
func runLeader(t testing.TB, st *store.Store, holder string) (l *sweep.Leader, stop func()) {
	t.Helper()
	l = sweep.NewLeader(st, leaseName, holder, leaseTTL, discard, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	// Run takes the lease before its first tick; waiting for it is not a
	// timing assumption, the deadline only turns a hang into a failure.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := l.Token(); ok {
			return l, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became leader", holder)
		}
		time.Sleep(time.Millisecond)
	}
}

// sweepAfter steps the clock by d and sweeps once; it returns the calls
// the sweep made to the poster.
func (h *harness) sweepAfter(d time.Duration) []post {
	h.clock.step(d)
	h.sweeper.Tick(context.Background())
	return h.poster.since()
}

// sweepsQuiet sweeps once a minute n times and fails on any post.
func (h *harness) sweepsQuiet(n int, why string) {
	h.t.Helper()
	for i := range n {
		if got := h.sweepAfter(time.Minute); len(got) != 0 {
			h.t.Fatalf("%s: sweep %d of %d posted %v", why, i+1, n, got)
		}
	}
}

func (h *harness) alert(instance, finding string) store.Alert {
	h.t.Helper()
	a, err := h.st.Alert(context.Background(), instance, finding)
	if err != nil {
		h.t.Fatalf("alert %s/%s: %v", instance, finding, err)
	}
	return a
}

func wantCalls(t *testing.T, when string, got []post, want ...string) {
	t.Helper()
	var methods []string
	for _, p := range got {
		methods = append(methods, p.Method)
	}
	if strings.Join(methods, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: calls %v, want %v", when, got, want)
	}
}

func TestOOMAlertLifecycle(t *testing.T) {
	h := newHarness(t, "cache-1")
	h.prober.set("cache-1", oomRejecting)

	got := h.sweepAfter(0)
	wantCalls(t, "first sweep", got, "post")
	fired := got[0]
	if fired.Channel != alertsChannel || !fired.about("oom-rejecting") || !strings.Contains(fired.Text, "CRITICAL · cache-1") ||
		!strings.Contains(fired.Blocks, "<!subteam^S0ONCALL>") {
		t.Fatalf("alert: %+v", fired)
	}

	// One message while it lasts: nine more sweeps, then up to the
	// repeat interval.
	h.sweepsQuiet(9, "ten sweeps of one condition")
	h.sweepsQuiet(int(repeat/time.Minute)-10, "before the repeat interval")

	got = h.sweepAfter(time.Minute)
	wantCalls(t, "after the repeat interval", got, "reply")
	if got[0].ThreadTS != fired.TS || !strings.HasPrefix(got[0].Text, "Still critical since 09:00 UTC") {
		t.Fatalf("reminder: %+v, want a reply in the thread of %s", got[0], fired.TS)
	}

	// Gone: forgiven for ClearFor, then resolved in place.
	h.prober.set("cache-1", nil)
	h.sweepsQuiet(int(alerts.DefaultClearFor/time.Minute), "absent for less than ClearFor")
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "absent for ClearFor", got, "update", "reply")
	if got[0].TS != fired.TS || !strings.HasPrefix(got[0].Text, "RESOLVED · cache-1") {
		t.Errorf("resolve did not update the alert in place: %+v", got[0])
	}
	if got[1].ThreadTS != fired.TS || !strings.HasPrefix(got[1].Text, "Resolved:") {
		t.Errorf("resolve note: %+v", got[1])
	}
	if a := h.alert("cache-1", "oom-rejecting"); a.State != "resolved" || a.MessageTS != "" {
		t.Errorf("stored after resolve: %+v", a)
	}
	h.sweepsQuiet(3, "after resolve")

	// A recurrence is a new message.
	h.prober.set("cache-1", oomRejecting)
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "recurrence", got, "post")
	if got[0].TS == fired.TS || !got[0].about("oom-rejecting") {
		t.Errorf("recurrence: %+v", got[0])
	}
}

func TestInfoFindingNeverPosts(t *testing.T) {
	h := newHarness(t, "cache-1")
	h.prober.set("cache-1", libcAllocator)
	h.sweepsQuiet(1, "first sweep")
	// Past every finding's For (the longest is 30 minutes) and a repeat.
	h.sweepsQuiet(90, "info finding")
	alerts, err := h.st.Alerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 0 {
		t.Errorf("info finding tracked as an alert: %+v", alerts)
	}
}

func TestSilence(t *testing.T) {
	silence := func(h *harness, until time.Time) {
		t.Helper()
		err := h.st.PutSilence(context.Background(), store.Silence{ID: "0123456789ab", Instance: "cache-1", Finding: "oom-rejecting",
			CreatedBy: "U0OP", Reason: "resizing", CreatedAt: h.clock.Now(), Until: until})
		if err != nil {
			t.Fatal(err)
		}
	}
	silences := func(h *harness) int {
		t.Helper()
		list, err := h.st.Silences(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	t.Run("snoozed after it fired", func(t *testing.T) {
		h := newHarness(t, "cache-1")
		h.prober.set("cache-1", oomRejecting)
		got := h.sweepAfter(0)
		wantCalls(t, "first sweep", got, "post")
		fired := got[0]
		h.sweepsQuiet(5, "firing")

		// Snoozed for an hour at 09:05: the message says who silenced
		// it and until when, and the reminder due at 10:00 is held back.
		silence(h, h.clock.Now().Add(time.Hour))
		got = h.sweepAfter(time.Minute)
		wantCalls(t, "silenced", got, "update")
		if got[0].TS != fired.TS || !got[0].shows("Silenced by <@U0OP> until") || !got[0].shows("silence `0123456789ab`") {
			t.Errorf("silenced message: %+v", got[0])
		}
		h.sweepsQuiet(58, "silenced")
		if n := silences(h); n != 1 {
			t.Fatalf("%d silences while active, want 1", n)
		}

		// 10:05: the silence has expired. The message no longer says it,
		// the held-back reminder goes out, a note says why alerts post
		// again, and the silence is gone.
		got = h.sweepAfter(time.Minute)
		wantCalls(t, "silence expired", got, "update", "reply", "reply")
		if got[0].TS != fired.TS || strings.Contains(got[0].Blocks, "Silenced by") {
			t.Errorf("message after the silence: %+v", got[0])
		}
		if got[1].ThreadTS != fired.TS || !strings.HasPrefix(got[1].Text, "Still critical since 09:00 UTC") {
			t.Errorf("reminder after the silence: %+v", got[1])
		}
		if got[2].ThreadTS != fired.TS || !got[2].shows("The silence set by <@U0OP> has expired; alerts for this finding post again.") {
			t.Errorf("expiry note: %+v", got[2])
		}
		if n := silences(h); n != 0 {
			t.Errorf("%d silences after expiry, want 0", n)
		}
		h.sweepsQuiet(3, "after the silence")
	})

	t.Run("silenced before it fired", func(t *testing.T) {
		h := newHarness(t, "cache-1")
		silence(h, h.clock.Now().Add(30*time.Minute))
		h.prober.set("cache-1", oomRejecting)
		got := h.sweepAfter(0)
		wantCalls(t, "first sweep, silenced", got)
		h.sweepsQuiet(29, "silenced")
		if a := h.alert("cache-1", "oom-rejecting"); a.State != "firing" || a.MessageTS != "" {
			t.Fatalf("silenced alert should fire without a message: %+v", a)
		}

		// The silence ends: the alert is posted, and there is no thread
		// yet for a note.
		got = h.sweepAfter(time.Minute)
		wantCalls(t, "silence expired", got, "post")
		if !got[0].about("oom-rejecting") {
			t.Errorf("post after the silence: %+v", got[0])
		}
		if n := silences(h); n != 0 {
			t.Errorf("%d silences after expiry, want 0", n)
		}
		h.sweepsQuiet(3, "after the silence")
	})
}

// A silence of one finding never hides another finding of the same
// instance; a silence of every finding does, and says so on the message.
func TestSilenceOfOneFindingKeepsOthers(t *testing.T) {
	for _, tc := range []struct {
		name, finding string
		posted        bool
	}{{"of oom-rejecting", "oom-rejecting", true}, {"of every finding", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "cache-1")
			h.prober.set("cache-1", oomRejecting)
			wantCalls(t, "first sweep", h.sweepAfter(0), "post")
			err := h.st.PutSilence(context.Background(), store.Silence{ID: "0123456789ab", Instance: "cache-1", Finding: tc.finding,
				CreatedBy: "U0OP", CreatedAt: h.clock.Now(), Until: h.clock.Now().Add(4 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			got := h.sweepAfter(time.Minute)
			wantCalls(t, "silenced", got, "update")
			if all := strings.Contains(got[0].Blocks, "with every finding on"); all != (tc.finding == "") {
				t.Errorf("message says every finding: %v\n%s", all, got[0].Blocks)
			}

			// Later the instance stops answering: a different finding.
			h.prober.fail("cache-1", handlers.ClassTimeout)
			var posts []post
			for range 5 {
				posts = append(posts, h.sweepAfter(time.Minute)...)
			}
			unreachable := 0
			for _, p := range posts {
				if p.Method == "post" && p.about("unreachable") {
					unreachable++
				}
			}
			if (unreachable == 1) != tc.posted {
				t.Errorf("silence %s: %d unreachable alerts posted, want posted %v (%v)", tc.name, unreachable, tc.posted, posts)
			}
		})
	}
}

// Acknowledge: the message says who, reminders stop while it fires, an
// escalation would still post, and the acknowledgement ends with the
// episode.
func TestAcknowledgedAlertGetsNoReminders(t *testing.T) {
	h := newHarness(t, "cache-1")
	h.prober.set("cache-1", oomRejecting)
	got := h.sweepAfter(0)
	wantCalls(t, "first sweep", got, "post")
	fired := got[0]
	a := h.alert("cache-1", "oom-rejecting")
	err := h.st.PutAck(context.Background(), store.Ack{Instance: "cache-1", Finding: "oom-rejecting", By: "U0OP", At: h.clock.Now(), Episode: a.FiringSince})
	if err != nil {
		t.Fatal(err)
	}
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "acknowledged", got, "update")
	if got[0].TS != fired.TS || !got[0].shows("Acknowledged by <@U0OP>") || strings.Contains(got[0].Blocks, `"ack/`) {
		t.Errorf("acknowledged message: %+v", got[0])
	}
	// Past the 4h repeat interval: no reminder.
	h.sweepsQuiet(5*60, "acknowledged")

	// It resolves; the acknowledgement goes with the episode.
	h.prober.set("cache-1", nil)
	for range 15 {
		h.sweepAfter(time.Minute)
	}
	if a := h.alert("cache-1", "oom-rejecting"); a.State != "resolved" {
		t.Fatalf("alert after recovery: %+v", a)
	}
	h.sweepAfter(time.Minute)
	if acks, _ := h.st.Acks(context.Background()); len(acks) != 0 {
		t.Errorf("acknowledgements after the episode: %+v", acks)
	}
}

func TestStormPostsOneSummary(t *testing.T) {
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("cache-%d", i))
	}
	h := newHarness(t, names...)
	for _, name := range names[:6] {
		h.prober.fail(name, handlers.ClassTimeout)
	}

	got := h.sweepAfter(0)
	wantCalls(t, "storm", got, "post")
	if got[0].Channel != alertsChannel || !strings.Contains(got[0].Text, "6 of 10 instances unreachable in one sweep") {
		t.Fatalf("storm summary: %+v", got[0])
	}
	// Past the unreachable finding's For (2 minutes): no alert per
	// instance, and the summary is not repeated.
	h.sweepsQuiet(10, "storm goes on")

	for _, name := range names[:6] {
		h.prober.set(name, nil)
	}
	h.sweepsQuiet(2, "fleet back for less than the summary's ClearFor (2 minutes)")
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "fleet back", got, "post")
	if !strings.Contains(got[0].Text, "The fleet is reachable again") {
		t.Errorf("all-clear: %+v", got[0])
	}
	alerts, err := h.st.Alerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Instance != "*fleet*" {
			t.Errorf("per-instance alert during a storm: %+v", a)
		}
	}
}

func TestLostLeasePostsNothing(t *testing.T) {
	h := newHarness(t, "cache-1")
	h.prober.set("cache-1", oomRejecting)

	// replica-a was paused past its lease and replica-b took it. replica-a
	// has not renewed since, so it still believes it leads.
	h.clock.step(leaseTTL + time.Minute)
	successor := startLeader(t, h.st, "replica-b")
	oldToken, stillThinksSo := h.leader.Token()
	newToken, _ := successor.Token()
	if !stillThinksSo || newToken <= oldToken {
		t.Fatalf("tokens: old %d (%v), new %d", oldToken, stillThinksSo, newToken)
	}

	got := h.sweepAfter(0)
	wantCalls(t, "sweep of a fenced leader", got)
	if _, err := h.st.Alert(context.Background(), "cache-1", "oom-rejecting"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("fenced sweep stored the alert (err %v): the new leader would never post it", err)
	}

	// The new leader posts it, once.
	h.sweeper = h.newSweeper(h.fleet, successor)
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "new leader", got, "post")
	h.sweepsQuiet(3, "new leader")
}

func TestUnreachableKeepsOtherAlerts(t *testing.T) {
	h := newHarness(t, "cache-0", "cache-1", "cache-2", "cache-3", "cache-4")
	h.prober.set("cache-0", oomRejecting)
	got := h.sweepAfter(0)
	wantCalls(t, "first sweep", got, "post")
	fired := got[0]

	// cache-0 stops answering for 15 minutes, longer than ClearFor: it
	// tells nothing about its OOM errors, so that alert neither resolves
	// nor starts clearing. Its own unreachable alert fires after 2 minutes.
	h.prober.fail("cache-0", handlers.ClassTimeout)
	h.sweepsQuiet(2, "unreachable, pending")
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "unreachable for 2 minutes", got, "post")
	if !got[0].about("unreachable") || !strings.Contains(got[0].Text, "cache-0") {
		t.Errorf("unreachable alert: %+v", got[0])
	}
	h.sweepsQuiet(12, "still unreachable")
	a := h.alert("cache-0", "oom-rejecting")
	if a.State != "firing" || a.MessageTS != fired.TS || !a.ClearSince.IsZero() {
		t.Errorf("oom-rejecting while unreachable: %+v, want firing on %s and not clearing", a, fired.TS)
	}

	// Back, still rejecting writes: the same alert goes on, no new post.
	h.prober.set("cache-0", oomRejecting)
	h.sweepsQuiet(3, "back with the same condition")
	if a := h.alert("cache-0", "oom-rejecting"); a.MessageTS != fired.TS {
		t.Errorf("oom-rejecting after the outage: %+v", a)
	}
}

// blockingFleet's Fleet blocks until released, to hold a sweep open.
type blockingFleet struct {
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (f *blockingFleet) Fleet(context.Context, string, map[string]bool) ([]*handlers.Report, error) {
	f.calls.Add(1)
	f.entered <- struct{}{}
	<-f.release
	return nil, nil
}

func (f *blockingFleet) Instances(string) []handlers.Instance { return nil }

// A tick during a running sweep is skipped and counted; the sweep that
// overran is logged once, when it ends, with its duration and the ticks it
// made skip (issue 18: it used to log every skipped tick).
func TestTickSkipsWhileRunning(t *testing.T) {
	h := newHarness(t)
	fleet := &blockingFleet{entered: make(chan struct{}, 3), release: make(chan struct{})}
	m := metrics.New()
	var logs syncLog
	sw := sweep.New(sweep.Options{
		Fleet: fleet, Store: h.st, Poster: h.poster, Leader: h.leader, Metrics: m,
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: h.clock.Now,
	})
	tick := func() <-chan struct{} {
		done := make(chan struct{})
		go func() { defer close(done); sw.Tick(context.Background()) }()
		return done
	}
	// The deadlines below only turn a hang into a failure.
	wait := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal(what)
		}
	}

	first := tick()
	wait(fleet.entered, "the first sweep never started")
	wait(tick(), "a tick during a running sweep waited for it instead of skipping")
	wait(tick(), "a second tick during a running sweep waited for it instead of skipping")
	if n := fleet.calls.Load(); n != 1 {
		t.Fatalf("%d sweeps started while one was running, want 1", n)
	}
	if strings.Contains(logs.String(), "overran") {
		t.Errorf("logged before the sweep ended:\n%s", logs.String())
	}
	h.clock.step(3 * time.Minute)
	close(fleet.release)
	wait(first, "the first sweep never ended")
	if n := counter(t, m, "redisbot_sweeps_skipped_total", ""); n != 2 {
		t.Errorf("redisbot_sweeps_skipped_total = %v, want 2", n)
	}
	if n := strings.Count(logs.String(), "overran"); n != 1 {
		t.Errorf("%d overrun records, want 1:\n%s", n, logs.String())
	}
	for _, want := range []string{`"duration":180000000000`, `"skipped_ticks":2`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the overrun record lacks %s:\n%s", want, logs.String())
		}
	}
	wait(tick(), "the next tick did not run")
	if n := fleet.calls.Load(); n != 2 {
		t.Errorf("%d sweeps after the first ended, want 2", n)
	}
}

// recordingFleet keeps the reports of the last sweep and the instances
// each sweep said had timed out.
type recordingFleet struct {
	*handlers.Service
	// unconfirm marks the failures of these instances unconfirmed, as
	// the service does when a sweep has no time to confirm a short probe.
	unconfirm map[string]bool
	mu        sync.Mutex
	last      []*handlers.Report
	downs     []string
}

func (f *recordingFleet) Fleet(ctx context.Context, tag string, timedOut map[string]bool) ([]*handlers.Report, error) {
	reports, err := f.Service.Fleet(ctx, tag, timedOut)
	for _, r := range reports {
		if r.Failed() && f.unconfirm[r.Instance] {
			r.Error.Unconfirmed = true
		}
	}
	f.mu.Lock()
	f.last = reports
	f.downs = append(f.downs, strings.Join(slices.Sorted(maps.Keys(timedOut)), ","))
	f.mu.Unlock()
	return reports, err
}

func (f *recordingFleet) unreachable() map[string]handlers.ErrorClass {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]handlers.ErrorClass{}
	for _, r := range f.last {
		if r.Failed() {
			out[r.Instance] = r.Error.Class
		}
	}
	return out
}

// TestBlackholeCostsOneTimeout sweeps real probes of fake servers: the one
// that accepts and never answers ends as one timeout, the slow one answers
// within the timeout, and the sweep ends. The timing target itself is in
// BenchmarkSweep1000.
func TestBlackholeCostsOneTimeout(t *testing.T) {
	st := openStore(t, nil)
	leader := startLeader(t, st, "replica-a")
	behaviors := []resptest.Behavior{resptest.Healthy, resptest.Blackhole, resptest.Slow, resptest.Refuse}
	servers, err := resptest.StartMany(len(behaviors), func(i int) (resptest.Behavior, time.Duration) {
		return behaviors[i], 20 * time.Millisecond
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resptest.CloseAll(servers) })
	var instances []handlers.Instance
	for _, s := range servers {
		instances = append(instances, handlers.Instance{Name: s.Behavior.String(), Addr: s.Addr, Thresholds: handlers.DefaultThresholds()})
	}
	p := probe.New(time.Second, nil)
	t.Cleanup(func() { p.Close() })
	svc := handlers.NewService(instances, p, st, len(instances), nil)
	svc.SetProbeTimeout(time.Second)
	fleet := &recordingFleet{Service: svc}
	sw := sweep.New(sweep.Options{Fleet: fleet, Store: st, Poster: &recordingPoster{}, Leader: leader,
		ChannelFor: func([]string) string { return alertsChannel }, Log: discard})

	for sweepNo := 1; sweepNo <= 3; sweepNo++ {
		done := make(chan struct{})
		go func() { defer close(done); sw.Tick(context.Background()) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // a hang, not a slow sweep
			t.Fatalf("sweep %d is stuck on the blackholed instance", sweepNo)
		}
		got := fleet.unreachable()
		want := map[string]handlers.ErrorClass{"blackhole": handlers.ClassTimeout, "refuse": handlers.ClassRefused}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("sweep %d: unreachable %v, want %v", sweepNo, got, want)
		}
	}
	// The second sweep probes the blackhole with the short timeout, an
	// unconfirmed failure, so the third waits the whole timeout again;
	// the refused one fails fast anyway and the slow one answered.
	if got, want := fmt.Sprint(fleet.downs), "[ blackhole ]"; got != want {
		t.Errorf("timed-out instances passed by each sweep: %s, want %s", got, want)
	}
}

// An instance whose short probe timed out (unconfirmed) is not passed as
// timed out to the next sweep: that sweep gives it the whole timeout, so
// a slow instance is never judged by short probes twice in a row. One
// whose timeout was confirmed stays; one refused is never passed (it
// fails fast with any timeout).
func TestUnconfirmedFailureGetsTheWholeTimeoutNext(t *testing.T) {
	h := newHarness(t, "cache-1", "cache-2", "cache-3")
	h.prober.fail("cache-1", handlers.ClassTimeout)
	h.prober.fail("cache-2", handlers.ClassTimeout)
	h.prober.fail("cache-3", handlers.ClassRefused)
	fleet := &recordingFleet{Service: h.fleet.(*handlers.Service), unconfirm: map[string]bool{"cache-1": true}}
	sw := h.newSweeper(fleet, h.leader)
	for range 3 {
		sw.Tick(context.Background())
	}
	if got, want := fmt.Sprint(fleet.downs), "[ cache-2 cache-2]"; got != want {
		t.Errorf("timed-out instances passed by each sweep: %s, want %s", got, want)
	}
}

// A value that falls just below its firing threshold keeps the alert: it
// clears only below the clearing threshold (5% lower), then after ClearFor.
func TestClearThresholdHysteresis(t *testing.T) {
	h := newHarness(t, "cache-1")
	// Under noeviction, usage near maxmemory is capacity running out (an
	// evicting cache at its limit is only information).
	used := func(share float64) map[string]string {
		return map[string]string{"used_memory": strconv.FormatInt(int64(share*268435456), 10), "maxmemory_policy": "noeviction"}
	}
	h.prober.set("cache-1", used(0.80)) // maxmemory-near warning
	h.sweepsQuiet(int(alerts.DefaultTiming("maxmemory-near").For[handlers.SeverityWarning]/time.Minute), "pending")
	got := h.sweepAfter(time.Minute)
	wantCalls(t, "after the for period", got, "post")
	fired := got[0]

	// 74%: under the 75% firing threshold, over the 71.25% clearing one.
	h.prober.set("cache-1", used(0.74))
	h.sweepsQuiet(30, "just under the firing threshold")
	if a := h.alert("cache-1", "maxmemory-near"); a.State != "firing" {
		t.Fatalf("alert %s after 30 min at 74%%, want firing", a.State)
	}

	// 70%: under the clearing threshold; resolves after ClearFor.
	h.prober.set("cache-1", used(0.70))
	h.sweepsQuiet(int(alerts.DefaultClearFor/time.Minute), "clearing")
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "cleared for ClearFor", got, "update", "reply")
	if got[0].TS != fired.TS {
		t.Errorf("resolve did not edit the alert: %+v", got[0])
	}
}

func TestClearingThresholds(t *testing.T) {
	c := handlers.DefaultThresholds().Clearing(0.05)
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if !near(c.FragWarning, 1.475) || !near(c.MaxmemoryWarning, 0.7125) || !near(c.RSSLimitCritical, 0.8075) {
		t.Errorf("clearing thresholds: frag %v, maxmemory %v, rss %v", c.FragWarning, c.MaxmemoryWarning, c.RSSLimitCritical)
	}
}

// A short probe's timeout neither fires nor clears the unreachable alert:
// pending after a whole timeout, it stays pending through an unconfirmed
// failure that comes later than the alert's For (2 minutes), and fires
// only when a whole probe times out again.
func TestUnconfirmedFailureHoldsTheUnreachableAlert(t *testing.T) {
	h := newHarness(t, "cache-1")
	h.prober.fail("cache-1", handlers.ClassTimeout)
	fleet := &recordingFleet{Service: h.fleet.(*handlers.Service)}
	h.sweeper = h.newSweeper(fleet, h.leader)
	wantCalls(t, "first timeout", h.sweepAfter(0))
	fleet.unconfirm = map[string]bool{"cache-1": true}
	wantCalls(t, "a short probe's timeout 3 minutes later", h.sweepAfter(3*time.Minute))
	if a := h.alert("cache-1", "unreachable"); a.State != alerts.StatePending {
		t.Fatalf("after the short probe's timeout: %+v, want still pending", a)
	}
	fleet.unconfirm = nil
	wantCalls(t, "a whole probe's timeout", h.sweepAfter(time.Minute), "post")
}
