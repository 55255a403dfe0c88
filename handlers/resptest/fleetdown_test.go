package resptest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// fleetService is a service over real fake servers whose prober has the
// timeout, probing concurrency instances at once.
func fleetService(t *testing.T, timeout time.Duration, concurrency int, instances ...handlers.Instance) *handlers.Service {
	t.Helper()
	p := probe.New(timeout, nil)
	t.Cleanup(func() { _ = p.Close() })
	svc := handlers.NewService(instances, p, nil, concurrency, nil)
	svc.SetProbeTimeout(timeout)
	return svc
}

func byName(reports []*handlers.Report) map[string]*handlers.Report {
	out := map[string]*handlers.Report{}
	for _, r := range reports {
		out[r.Instance] = r
	}
	return out
}

// A blackholed instance that was down holds a worker for the short
// timeout only: with one worker, the healthy instance after it is probed
// once the short timeout is over, not the whole one. Time allowing, the
// failure is then confirmed with the whole timeout.
func TestFleetDownInstanceCostsTheShortTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	hole := start(t, resptest.Blackhole, "", 0)
	good := start(t, resptest.Healthy, "", 0)
	svc := fleetService(t, timeout, 1, instance("a-hole", hole.Addr), instance("b-good", good.Addr))

	began := time.Now()
	reports, err := svc.Fleet(context.Background(), "", map[string]bool{"a-hole": true})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	r := byName(reports)
	if r["b-good"].Failed() {
		t.Fatalf("b-good failed: %v", r["b-good"].Error)
	}
	short := handlers.ShortTimeout(timeout)
	if waited := r["b-good"].ProbedAt.Sub(began); waited < short-50*time.Millisecond || waited > short+time.Second {
		t.Errorf("b-good probed %v after the start, want about the short timeout %v (the whole one is %v)", waited, short, timeout)
	}
	hr := r["a-hole"]
	if !hr.Failed() || hr.Error.Class != handlers.ClassTimeout || hr.Error.Unconfirmed {
		t.Fatalf("a-hole: %+v, want a confirmed timeout", hr.Error)
	}
	// The confirmation took the whole timeout after the first pass.
	if took < short+timeout-100*time.Millisecond {
		t.Errorf("fleet took %v, want the short timeout and the whole one (%v)", took, short+timeout)
	}
}

// An instance that was down and answers slowly now (slower than the short
// timeout, within the whole one) is reported reachable: the short probe's
// timeout is confirmed with the whole timeout, which it answers.
func TestFleetSlowInstanceThatWasDownIsReachable(t *testing.T) {
	const timeout = 2 * time.Second
	slow := start(t, resptest.Slow, "", 300*time.Millisecond)
	svc := fleetService(t, timeout, 4, instance("slow", slow.Addr))

	reports, err := svc.Fleet(context.Background(), "", map[string]bool{"slow": true})
	if err != nil {
		t.Fatal(err)
	}
	if r := reports[0]; r.Failed() || r.Has("unreachable") {
		t.Fatalf("slow instance reported unreachable: %+v", r.Error)
	}
	// Reachable the sweep before, it gets the whole timeout at once.
	reports, err = svc.Fleet(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := reports[0]; r.Failed() {
		t.Fatalf("slow instance reported unreachable: %+v", r.Error)
	}
}

// When no time is left to confirm (the short failures come later than
// ConfirmWithin), a short failure stays unreachable, marked unconfirmed,
// and says so.
func TestFleetUnconfirmedWhenNoTimeIsLeft(t *testing.T) {
	const timeout = 2 * time.Second
	short := handlers.ShortTimeout(timeout)
	// One worker and enough blackholes that their short timeouts add up
	// to more than ConfirmWithin.
	n := int(handlers.ConfirmWithin/short) + 2
	hole := start(t, resptest.Blackhole, "", 0)
	var instances []handlers.Instance
	down := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("hole-%d", i)
		instances = append(instances, instance(name, hole.Addr))
		down[name] = true
	}
	svc := fleetService(t, timeout, 1, instances...)

	began := time.Now()
	reports, err := svc.Fleet(context.Background(), "", down)
	if err != nil {
		t.Fatal(err)
	}
	if took, most := time.Since(began), time.Duration(n)*short+timeout; took > most {
		t.Errorf("fleet took %v, want at most %v: %d short timeouts", took, most, n)
	}
	for _, r := range reports {
		if !r.Failed() {
			t.Fatalf("%s answered", r.Instance)
		}
		if r.Error.Class != handlers.ClassTimeout || !r.Error.Unconfirmed || !strings.Contains(r.Error.Message, "short first timeout of "+short.String()) {
			t.Errorf("%s: %+v, want an unconfirmed timeout that says so", r.Instance, r.Error)
		}
		if f, ok := r.Finding("unreachable"); !ok || !strings.Contains(fmt.Sprint(f.Evidence), "not confirmed") {
			t.Errorf("%s: the unreachable finding does not say it is unconfirmed: %+v", r.Instance, r.Findings)
		}
	}
}

// A probe cut short by its caller's deadline does not answer for a
// concurrent caller that allows the whole timeout: that one gets its own
// probe, which the slow server answers.
func TestShortProbeIsNotSharedWithAWholeOne(t *testing.T) {
	slow := start(t, resptest.Slow, "", 300*time.Millisecond)
	p := probe.New(2*time.Second, nil)
	t.Cleanup(func() { _ = p.Close() })
	inst := instance("slow", slow.Addr)

	shortErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := p.Probe(ctx, inst)
		shortErr <- err
	}()
	time.Sleep(50 * time.Millisecond) // the short probe is in flight
	snap, err := p.Probe(context.Background(), inst)
	if err != nil || snap == nil {
		t.Fatalf("the whole probe: %v, want the slow server's snapshot", err)
	}
	if err := <-shortErr; handlers.ClassOf(err) != handlers.ClassTimeout {
		t.Errorf("the short probe: %v, want a timeout", err)
	}
}
