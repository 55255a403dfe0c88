package resptest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// fleetService is a service over real fake servers whose prober has the
// timeout, probing concurrency instances at once. The prober it returns
// records every probe's duration.
func fleetService(t *testing.T, timeout time.Duration, concurrency int, instances ...handlers.Instance) (*handlers.Service, *resptest.TimedProber) {
	t.Helper()
	p := probe.New(timeout, nil)
	t.Cleanup(func() { _ = p.Close() })
	timed := resptest.NewTimedProber(p)
	svc := handlers.NewService(instances, timed, nil, concurrency, nil)
	svc.SetProbeTimeout(timeout)
	return svc, timed
}

func byName(reports []*handlers.Report) map[string]*handlers.Report {
	out := map[string]*handlers.Report{}
	for _, r := range reports {
		out[r.Instance] = r
	}
	return out
}

// A blackholed instance whose probe timed out the sweep before costs one
// short probe, not the whole timeout: it is reported unreachable, marked
// unconfirmed, and says so.
func TestFleetTimedOutInstanceCostsTheShortTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	hole := start(t, resptest.Blackhole, "", 0)
	good := start(t, resptest.Healthy, "", 0)
	svc, timed := fleetService(t, timeout, 1, instance("a-hole", hole.Addr), instance("b-good", good.Addr))

	reports, err := svc.Fleet(context.Background(), "", map[string]bool{"a-hole": true})
	if err != nil {
		t.Fatal(err)
	}
	r := byName(reports)
	if r["b-good"].Failed() {
		t.Fatalf("b-good failed: %v", r["b-good"].Error)
	}
	short := handlers.ShortTimeout(timeout)
	hr := r["a-hole"]
	if !hr.Failed() || hr.Error.Class != handlers.ClassTimeout || !hr.Error.Unconfirmed || !strings.Contains(hr.Error.Message, "short timeout of "+short.String()) {
		t.Fatalf("a-hole: %+v, want an unconfirmed timeout that says so", hr.Error)
	}
	if f, ok := hr.Finding("unreachable"); !ok || !strings.Contains(fmt.Sprint(f.Evidence), "unconfirmed until a sweep waits the whole timeout") {
		t.Errorf("a-hole: the unreachable finding does not say it is unconfirmed: %+v", hr.Findings)
	}
	if took := timed.Probes("a-hole"); len(took) != 1 || took[0] < short-50*time.Millisecond || took[0] > short+500*time.Millisecond {
		t.Errorf("a-hole's probes took %v, want one of the short timeout %v (the whole one is %v)", took, short, timeout)
	}
}

// An instance that timed out and now answers slowly (slower than the
// short timeout, within the whole one) is unreachable, unconfirmed, for
// one fleet probe only: the next, without it among the timed out (as the
// sweep passes them), gives it the whole timeout, which it answers.
func TestFleetSlowInstanceIsUnreachableOnceAtMost(t *testing.T) {
	const timeout = 2 * time.Second
	slow := start(t, resptest.Slow, "", 300*time.Millisecond)
	svc, _ := fleetService(t, timeout, 4, instance("slow", slow.Addr))

	reports, err := svc.Fleet(context.Background(), "", map[string]bool{"slow": true})
	if err != nil {
		t.Fatal(err)
	}
	if r := reports[0]; !r.Failed() || !r.Error.Unconfirmed {
		t.Fatalf("slow instance after a timeout: %+v, want an unconfirmed timeout", r.Error)
	}
	reports, err = svc.Fleet(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := reports[0]; r.Failed() || r.Has("unreachable") {
		t.Fatalf("slow instance with the whole timeout reported unreachable: %+v", r.Error)
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
// back: each lets another start after DefaultBlockedAfter (up to
// DefaultFleetWorkersGrowth times the concurrency in flight), so eight
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
	svc, _ := fleetService(t, timeout, 2, instances...)

	began := time.Now()
	reports, err := svc.Fleet(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two at a time would take holes/2 timeouts; two more starting every
	// DefaultBlockedAfter, the last blackhole starts within about holes/2 *
	// DefaultBlockedAfter.
	if took, most := time.Since(began), timeout+holes/2*handlers.DefaultBlockedAfter+time.Second; took > most {
		t.Errorf("fleet took %v, want at most %v (two workers alone: %v)", took, most, holes/2*timeout)
	}
	for _, r := range reports {
		if failed := r.Failed(); failed != strings.HasPrefix(r.Instance, "hole-") {
			t.Errorf("%s: failed %v (%+v)", r.Instance, failed, r.Error)
		}
	}
}

// SetFleetGrowth (probe.blocked_after, probe.workers_growth) bounds the
// probes in flight beside blocked ones: a blocked_after longer than the
// timeout never lets another start, and a growth of two lets twice the
// concurrency wait on blackholes at once, never more.
func TestFleetGrowthFollowsItsSettings(t *testing.T) {
	const timeout, holes, concurrency = 400 * time.Millisecond, 8, 2
	hole := start(t, resptest.Blackhole, "", 0)
	var instances []handlers.Instance
	for i := range holes {
		instances = append(instances, instance(fmt.Sprintf("hole-%d", i), hole.Addr))
	}
	for _, c := range []struct {
		name         string
		blockedAfter time.Duration
		growth       int
		inFlight     int
	}{
		{"never blocked", time.Hour, handlers.DefaultFleetWorkersGrowth, concurrency},
		{"growth 2", 20 * time.Millisecond, 2, 2 * concurrency},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := probe.New(timeout, nil)
			t.Cleanup(func() { _ = p.Close() })
			counting := &inFlightProber{Prober: p}
			svc := handlers.NewService(instances, counting, nil, concurrency, nil)
			svc.SetProbeTimeout(timeout)
			svc.SetFleetGrowth(c.blockedAfter, c.growth)
			began := time.Now()
			if _, err := svc.Fleet(context.Background(), "", nil); err != nil {
				t.Fatal(err)
			}
			if got := counting.most(); got != c.inFlight {
				t.Errorf("at most %d probes in flight, want %d", got, c.inFlight)
			}
			if took, least := time.Since(began), time.Duration(holes/c.inFlight)*timeout; took < least {
				t.Errorf("fleet took %v, want at least %v with %d probes in flight", took, least, c.inFlight)
			}
		})
	}
}

// inFlightProber counts the probes running at once.
type inFlightProber struct {
	handlers.Prober
	mu        sync.Mutex
	now, peak int
}

func (p *inFlightProber) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	p.mu.Lock()
	p.now++
	p.peak = max(p.peak, p.now)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.now--
		p.mu.Unlock()
	}()
	return p.Prober.Probe(ctx, inst)
}

func (p *inFlightProber) most() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// An instance whose last fleet probe waited on its server starts first
// in the next one, without a probe token: its wait runs beside the other
// probes instead of adding to the end of the fleet's, and it does not
// hold back the answering instances for blockedAfter.
func TestFleetStartsSlowInstancesFirst(t *testing.T) {
	const blockedAfter = 100 * time.Millisecond
	slow := start(t, resptest.Slow, "", 150*time.Millisecond)
	good := start(t, resptest.Healthy, "", 0)
	var instances []handlers.Instance
	for i := range 60 {
		instances = append(instances, instance(fmt.Sprintf("good-%02d", i), good.Addr))
	}
	// Last in the config: one token, so before it was known to be slow it
	// started after the 60 others, one after the other.
	instances = append(instances, instance("slow", slow.Addr))
	p := probe.New(5*time.Second, nil)
	t.Cleanup(func() { _ = p.Close() })
	rec := &startProber{Prober: p}
	svc := handlers.NewService(instances, rec, nil, 1, nil)
	svc.SetFleetGrowth(blockedAfter, handlers.DefaultFleetWorkersGrowth)

	var slowAt [2]time.Duration
	for round := range 2 {
		rec.reset()
		began := time.Now()
		reports, err := svc.Fleet(context.Background(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reports {
			if r.Failed() {
				t.Fatalf("round %d: %s failed: %+v", round, r.Instance, r.Error)
			}
		}
		starts := rec.result()
		slowAt[round] = starts["slow"].Sub(began)
		first := time.Duration(1 << 62)
		for name, at := range starts {
			if name != "slow" {
				first = min(first, at.Sub(began))
			}
		}
		if round == 1 && first >= blockedAfter/2 {
			t.Errorf("the first answering instance started %v after the fleet began: it waited for the slow probe's token", first)
		}
	}
	if slowAt[1] >= blockedAfter/2 || slowAt[1] >= slowAt[0] {
		t.Errorf("slow started %v after the fleet began the first time and %v the second: want it first the second time", slowAt[0], slowAt[1])
	}
}

// startProber records when each probe started.
type startProber struct {
	handlers.Prober
	mu     sync.Mutex
	starts map[string]time.Time
}

func (p *startProber) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts = map[string]time.Time{}
}

func (p *startProber) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	p.mu.Lock()
	p.starts[inst.Name] = time.Now()
	p.mu.Unlock()
	return p.Prober.Probe(ctx, inst)
}

func (p *startProber) result() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}
