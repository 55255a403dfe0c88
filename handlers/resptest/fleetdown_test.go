package resptest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// fleetService is a service over real fake servers whose prober has the
// timeout, probing concurrency instances at once; now nil is the wall
// clock. The prober it returns records every probe's duration.
func fleetService(t *testing.T, timeout time.Duration, concurrency int, now func() time.Time, instances ...handlers.Instance) (*handlers.Service, *timedProber) {
	t.Helper()
	p := probe.New(timeout, nil)
	t.Cleanup(func() { _ = p.Close() })
	timed := &timedProber{Prober: p, took: map[string][]time.Duration{}}
	svc := handlers.NewService(instances, timed, nil, concurrency, now)
	svc.SetProbeTimeout(timeout)
	return svc, timed
}

// timedProber records how long each probe of an instance took, in order.
type timedProber struct {
	handlers.Prober
	mu   sync.Mutex
	took map[string][]time.Duration
}

func (p *timedProber) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	began := time.Now()
	snap, err := p.Prober.Probe(ctx, inst)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.took[inst.Name] = append(p.took[inst.Name], time.Since(began))
	return snap, err
}

func (p *timedProber) probes(name string) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.took[name]
}

func byName(reports []*handlers.Report) map[string]*handlers.Report {
	out := map[string]*handlers.Report{}
	for _, r := range reports {
		out[r.Instance] = r
	}
	return out
}

// A blackholed instance whose probe timed out the sweep before holds a
// worker for the short timeout, not the whole one; time allowing, the
// failure is then confirmed with the whole timeout.
func TestFleetDownInstanceCostsTheShortTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	hole := start(t, resptest.Blackhole, "", 0)
	good := start(t, resptest.Healthy, "", 0)
	svc, timed := fleetService(t, timeout, 1, nil, instance("a-hole", hole.Addr), instance("b-good", good.Addr))

	reports, err := svc.Fleet(context.Background(), "", map[string]bool{"a-hole": true})
	if err != nil {
		t.Fatal(err)
	}
	r := byName(reports)
	if r["b-good"].Failed() {
		t.Fatalf("b-good failed: %v", r["b-good"].Error)
	}
	hr := r["a-hole"]
	if !hr.Failed() || hr.Error.Class != handlers.ClassTimeout || hr.Error.Unconfirmed {
		t.Fatalf("a-hole: %+v, want a confirmed timeout", hr.Error)
	}
	short := handlers.ShortTimeout(timeout)
	took := timed.probes("a-hole")
	if len(took) != 2 || took[0] < short-50*time.Millisecond || took[0] > short+500*time.Millisecond || took[1] < timeout-50*time.Millisecond {
		t.Errorf("a-hole's probes took %v, want the short timeout %v, then the whole one %v", took, short, timeout)
	}
}

// An instance that was down and answers slowly now (slower than the short
// timeout, within the whole one) is reported reachable: the short probe's
// timeout is confirmed with the whole timeout, which it answers.
func TestFleetSlowInstanceThatWasDownIsReachable(t *testing.T) {
	const timeout = 2 * time.Second
	slow := start(t, resptest.Slow, "", 300*time.Millisecond)
	svc, _ := fleetService(t, timeout, 4, nil, instance("slow", slow.Addr))

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
// ConfirmWithin, on a clock that jumps past it after the start), a short
// failure stays unreachable, marked unconfirmed, and says so; it is
// probed once.
func TestFleetUnconfirmedWhenNoTimeIsLeft(t *testing.T) {
	const timeout = 2 * time.Second
	short := handlers.ShortTimeout(timeout)
	hole := start(t, resptest.Blackhole, "", 0)
	var calls atomic.Int64
	now := func() time.Time {
		if calls.Add(1) == 1 { // the start
			return time.Now()
		}
		return time.Now().Add(handlers.ConfirmWithin + time.Second)
	}
	svc, timed := fleetService(t, timeout, 2, now, instance("hole-1", hole.Addr), instance("hole-2", hole.Addr))

	reports, err := svc.Fleet(context.Background(), "", map[string]bool{"hole-1": true, "hole-2": true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if !r.Failed() || r.Error.Class != handlers.ClassTimeout || !r.Error.Unconfirmed || !strings.Contains(r.Error.Message, "short first timeout of "+short.String()) {
			t.Errorf("%s: %+v, want an unconfirmed timeout that says so", r.Instance, r.Error)
		}
		if f, ok := r.Finding("unreachable"); !ok || !strings.Contains(fmt.Sprint(f.Evidence), "not confirmed") {
			t.Errorf("%s: the unreachable finding does not say it is unconfirmed: %+v", r.Instance, r.Findings)
		}
		if took := timed.probes(r.Instance); len(took) != 1 || took[0] > short+500*time.Millisecond {
			t.Errorf("%s: probes took %v, want one short one (%v)", r.Instance, took, short)
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

// Probes blocked on servers that never answer do not hold the fleet
// back: each lets another start after BlockedAfter (up to
// FleetWorkersGrowth times the concurrency in flight), so eight
// blackholes probed two at a time cost about one timeout, not four, and
// every healthy instance answers.
func TestFleetGrowsBesideBlockedWorkers(t *testing.T) {
	const timeout, holes = time.Second, 8
	hole := start(t, resptest.Blackhole, "", 0)
	good := start(t, resptest.Healthy, "", 0)
	var instances []handlers.Instance
	for i := range holes {
		instances = append(instances, instance(fmt.Sprintf("hole-%d", i), hole.Addr))
	}
	for i := range 10 {
		instances = append(instances, instance(fmt.Sprintf("good-%d", i), good.Addr))
	}
	svc, _ := fleetService(t, timeout, 2, nil, instances...)

	began := time.Now()
	reports, err := svc.Fleet(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two at a time would take holes/2 timeouts; two more starting every
	// BlockedAfter, the last blackhole starts within about holes/2 *
	// BlockedAfter.
	if took, most := time.Since(began), timeout+holes/2*handlers.BlockedAfter+time.Second; took > most {
		t.Errorf("fleet took %v, want at most %v (two workers alone: %v)", took, most, holes/2*timeout)
	}
	for _, r := range reports {
		if failed := r.Failed(); failed != strings.HasPrefix(r.Instance, "hole-") {
			t.Errorf("%s: failed %v (%+v)", r.Instance, failed, r.Error)
		}
	}
}
