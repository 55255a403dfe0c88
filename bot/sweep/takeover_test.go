package sweep_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// fakeServer starts a fake Redis that behaves as b until the test ends.
func fakeServer(t *testing.T, b resptest.Behavior) *resptest.Server {
	t.Helper()
	s, err := resptest.Start(b, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// realFleet is a service over real probes of the named instances, each at
// its address, with the short first probes of a sweep.
func realFleet(t *testing.T, timeout time.Duration, now func() time.Time, addrs map[string]string) (*handlers.Service, *resptest.TimedProber) {
	t.Helper()
	p := probe.New(timeout, nil)
	t.Cleanup(func() { _ = p.Close() })
	timed := resptest.NewTimedProber(p)
	svc := handlers.NewService(instancesAt(addrs), timed, nil, 4, now)
	svc.SetProbeTimeout(timeout)
	return svc, timed
}

// bareHarness is a clock, a store and a recording poster: the test
// brings its fleet, leaders and sweepers.
func bareHarness(t *testing.T) *harness {
	clk := &clock{now: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	return &harness{t: t, clock: clk, st: openStore(t, clk.Now), poster: &recordingPoster{}}
}

// instancesAt lists the instances at their addresses, tagged cache.
func instancesAt(addrs map[string]string) []handlers.Instance {
	var out []handlers.Instance
	for name, addr := range addrs {
		out = append(out, handlers.Instance{Name: name, Addr: addr, Tags: []string{"cache"}, Thresholds: handlers.DefaultThresholds()})
	}
	return out
}

// A replica that takes the lease gives the instances whose stored
// unreachable alert came from a timeout a short first probe, instead of
// the whole timeout each, and a short failure there holds the alert where
// it is: a firing one neither resolves nor starts clearing, a pending one
// does not fire although it has been pending past its For. An instance
// stored as timed out that answers now is reported as any other.
func TestNewLeaderProbesStoredTimeoutsShort(t *testing.T) {
	const timeout = time.Second
	short := handlers.ShortTimeout(timeout)
	hole, healthy := fakeServer(t, resptest.Blackhole), fakeServer(t, resptest.Healthy)
	h := bareHarness(t)
	a, stopA := runLeader(t, h.st, "replica-a")
	svc, timed := realFleet(t, timeout, h.clock.Now, map[string]string{"dead": hole.Addr, "back": hole.Addr, "late": healthy.Addr})
	h.sweeper = h.newSweeper(svc, a)

	// replica-a: dead and back time out (pending), are probed short
	// (held), time out again and fire; then late stops answering
	// (pending) while the other two get a short probe.
	wantCalls(t, "first timeouts", h.sweepAfter(0))
	wantCalls(t, "short probes", h.sweepAfter(3*time.Minute))
	wantCalls(t, "timed out again", h.sweepAfter(time.Minute), "post", "post")
	svc.SetInstances(instancesAt(map[string]string{"dead": hole.Addr, "back": hole.Addr, "late": hole.Addr}))
	wantCalls(t, "late times out", h.sweepAfter(time.Minute))
	for name, state := range map[string]alerts.State{"dead": alerts.StateFiring, "back": alerts.StateFiring, "late": alerts.StatePending} {
		if got := h.alert(name, "unreachable"); got.State != state || got.ErrorClass != handlers.ClassTimeout {
			t.Fatalf("%s before the handover: %+v, want %s with class timeout", name, got, state)
		}
	}

	// replica-a shuts down, back answers again, and replica-b takes the
	// lease with a new Sweeper: nothing in memory, only the store.
	stopA()
	svc.SetInstances(instancesAt(map[string]string{"dead": hole.Addr, "back": healthy.Addr, "late": hole.Addr}))
	b, _ := runLeader(t, h.st, "replica-b")
	fleet := &recordingFleet{Service: svc}
	h.sweeper = h.newSweeper(fleet, b)
	timed.Since()
	wantCalls(t, "the new leader's first sweep, 3 minutes on", h.sweepAfter(3*time.Minute))

	if got, want := fmt.Sprint(fleet.downs), "[back,dead,late]"; got != want {
		t.Errorf("timed-out instances passed by the new leader's first sweep: %s, want %s", got, want)
	}
	took := timed.Since()
	for _, name := range []string{"dead", "late"} {
		if d := took[name]; len(d) != 1 || d[0] > (short+timeout)/2 {
			t.Errorf("%s's probes took %v, want one of about the short timeout %v (the whole one is %v)", name, d, short, timeout)
		}
	}
	if got := fleet.unreachable(); fmt.Sprint(got) != "map[dead:timeout late:timeout]" {
		t.Errorf("unreachable in the new leader's first sweep: %v, want dead and late, timed out", got)
	}
	for _, r := range fleet.last {
		if r.Failed() != (r.Instance != "back") || (r.Failed() && !r.Error.Unconfirmed) {
			t.Errorf("%s: %+v, want back answering and the others unconfirmed", r.Instance, r.Error)
		}
	}
	if got := h.alert("dead", "unreachable"); got.State != alerts.StateFiring || !got.ClearSince.IsZero() {
		t.Errorf("dead after a short timeout: %+v, want firing, not clearing", got)
	}
	if got := h.alert("late", "unreachable"); got.State != alerts.StatePending {
		t.Errorf("late after a short timeout 3 minutes on: %+v, want still pending", got)
	}
	if got := h.alert("back", "unreachable"); got.State != alerts.StateFiring || got.ClearSince.IsZero() || got.ErrorClass != "" {
		t.Errorf("back answering: %+v, want firing and clearing, with no error class", got)
	}
}

// After a sweep, the fleet verb probes the instances it saw time out with
// the short timeout (SetTimedOut, as serve wires it), in a channel's
// scope too, and says the failure is unconfirmed; so does the digest.
// A replica that stopped leading shares nothing.
func TestFleetVerbProbesShortWhatTheSweepSawTimeOut(t *testing.T) {
	const timeout = 2 * time.Second
	hole, healthy := fakeServer(t, resptest.Blackhole), fakeServer(t, resptest.Healthy)
	h := bareHarness(t)
	svc, timed := realFleet(t, timeout, h.clock.Now, map[string]string{"dead": hole.Addr, "ok": healthy.Addr})
	leader, stop := runLeader(t, h.st, "replica-a")
	h.sweeper = h.newSweeper(svc, leader)
	svc.SetTimedOut(h.sweeper.TimedOut)
	if got := h.sweeper.TimedOut(); got != nil {
		t.Errorf("TimedOut before any sweep: %v", got)
	}
	h.sweepAfter(0)
	if got := fmt.Sprint(h.sweeper.TimedOut()); got != "map[dead:true]" {
		t.Errorf("TimedOut after the sweep: %s, want dead", got)
	}

	began := time.Now()
	resp, err := svc.Handle(context.Background(), handlers.Command{Verb: "fleet", Scope: []string{"cache"}})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > timeout/2 {
		t.Errorf("fleet took %v, want about the short timeout %v (the whole one is %v)", took, handlers.ShortTimeout(timeout), timeout)
	}
	for _, r := range resp.Reports {
		switch r.Instance {
		case "dead":
			if !r.Failed() || !r.Error.Unconfirmed || !strings.Contains(r.Error.Message, "unconfirmed until a sweep waits the whole timeout") {
				t.Errorf("dead: %+v, want an unconfirmed timeout that says so", r.Error)
			}
		case "ok":
			if r.Failed() {
				t.Errorf("ok: %+v", r.Error)
			}
		}
	}
	if len(resp.Reports) != 2 {
		t.Errorf("%d reports, want 2", len(resp.Reports))
	}

	timed.Since()
	h.sweeper.Digest(context.Background(), nil)
	if d := timed.Since()["dead"]; len(d) != 1 || d[0] > timeout/2 {
		t.Errorf("the digest's probes of dead took %v, want one of about the short timeout", d)
	}
	if got := h.poster.since(); len(got) == 0 || got[0].Method != "post" {
		t.Errorf("the digest posted %v, want its message", got)
	}

	// A replica that no longer leads has no fresh sweep to go by.
	stop()
	if got := h.sweeper.TimedOut(); got != nil {
		t.Errorf("TimedOut once the lease is released: %v, want none", got)
	}
}

// A replica that does not lead reads from the store which instances the
// leader's sweeps found timing out (Follow): its fleet verb probes them
// with the short timeout (TimedOut), and it returns their names for the
// bot's slow lane. What it read lapses when no tick refreshes it, and the
// leader's Follow does nothing: its own sweep knows better.
func TestFollowerLearnsTheLeadersTimeouts(t *testing.T) {
	const timeout = 2 * time.Second
	ctx := context.Background()
	hole, healthy := fakeServer(t, resptest.Blackhole), fakeServer(t, resptest.Healthy)
	addrs := map[string]string{"dead": hole.Addr, "ok": healthy.Addr}
	h := bareHarness(t)
	svc, _ := realFleet(t, timeout, h.clock.Now, addrs)
	leader, _ := runLeader(t, h.st, "replica-a")
	h.sweeper = h.newSweeper(svc, leader)
	h.sweepAfter(0)
	if names, err := h.sweeper.Follow(ctx); err != nil || names != nil {
		t.Errorf("the leader's Follow = %v, %v; want nothing", names, err)
	}

	// replica-b has not taken the lease (replica-a holds it).
	b := sweep.NewLeader(h.st, leaseName, "replica-b", leaseTTL, discard, nil)
	fsvc, _ := realFleet(t, timeout, h.clock.Now, addrs)
	follower := h.newSweeper(fsvc, b)
	fsvc.SetTimedOut(follower.TimedOut)
	if got := follower.TimedOut(); got != nil {
		t.Errorf("a follower's TimedOut before Follow: %v", got)
	}
	names, err := follower.Follow(ctx)
	if err != nil || fmt.Sprint(names) != "[dead]" {
		t.Fatalf("Follow = %v, %v; want [dead]", names, err)
	}
	if got := fmt.Sprint(follower.TimedOut()); got != "map[dead:true]" {
		t.Errorf("a follower's TimedOut after Follow: %s, want dead", got)
	}
	began := time.Now()
	resp, err := fsvc.Handle(ctx, handlers.Command{Verb: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > timeout/2 {
		t.Errorf("the follower's fleet took %v, want about the short timeout %v", took, handlers.ShortTimeout(timeout))
	}
	for _, r := range resp.Reports {
		if r.Instance == "dead" && (!r.Failed() || !r.Error.Unconfirmed) {
			t.Errorf("dead on the follower: %+v, want an unconfirmed timeout", r.Error)
		}
	}

	h.clock.step(6 * time.Minute) // no tick refreshed it: past followFresh
	if got := follower.TimedOut(); got != nil {
		t.Errorf("a follower's TimedOut 6 minutes after Follow: %v, want none", got)
	}
}
