package handlers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeMembership is a hand-written Membership: each read returns the
// lists in turn (the last one again when they run out), after block is
// closed when set. The real one, topology.Expand, is tested against real
// clusters and sentinels in handlers/topology.
type fakeMembership struct {
	reads atomic.Int32
	mu    sync.Mutex
	lists [][]Instance
	errs  []error
	block chan struct{}
	panic bool
}

func (f *fakeMembership) read(ctx context.Context) ([]Instance, []error) {
	n := int(f.reads.Add(1))
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
		}
	}
	if f.panic {
		panic("boom")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists[min(n, len(f.lists))-1], f.errs
}

// sentinelGroup is a Sentinel entry's members with the master at
// masterAddr, and a plain instance from config.
func sentinelGroup(masterAddr, replicaAddr string) []Instance {
	s := &Sentinel{Master: "mymaster", Addrs: []string{"10.0.0.9:26379"}}
	return []Instance{
		{Name: "cache-1", Addr: "10.0.0.1:6379", Thresholds: DefaultThresholds()},
		{Name: "sessions.master", Addr: masterAddr, Origin: "sessions", Sentinel: s, Tags: []string{"primary", "team-s"}, Thresholds: DefaultThresholds()},
		{Name: "sessions.replica-" + strings.ReplaceAll(replicaAddr, ":", "-"), Addr: replicaAddr, Origin: "sessions", Sentinel: s, Tags: []string{"replica", "team-s"}, Thresholds: DefaultThresholds()},
	}
}

func memberService(t *testing.T, f *fakeMembership, maxAge, maxWait time.Duration) *Service {
	t.Helper()
	svc := NewService(f.lists[0], cannedProber{fixture(t, "redis-7.0.txt", nil, nil)}, nil, 4, nil)
	svc.SetMembership(f.read, maxAge, maxWait)
	return svc
}

func diagnoseAddr(t *testing.T, svc *Service, name string) string {
	t.Helper()
	resp, err := svc.Handle(t.Context(), Command{Verb: "diagnose", Args: []string{name}})
	if err != nil {
		t.Fatalf("diagnose %s: %v", name, err)
	}
	return resp.Reports[0].Addr
}

// A command that names a member reads the membership when the last read
// is older than maxAge, and only then; a plain instance from config never
// triggers a read.
func TestMembershipCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeMembership{lists: [][]Instance{sentinelGroup("10.0.0.2:6379", "10.0.0.3:6379"), sentinelGroup("10.0.0.3:6379", "10.0.0.2:6379")}}
		svc := memberService(t, f, 5*time.Second, time.Second)

		if got := diagnoseAddr(t, svc, "cache-1"); got != "10.0.0.1:6379" || f.reads.Load() != 0 {
			t.Fatalf("plain instance: addr %s, %d reads", got, f.reads.Load())
		}
		// The first read: the failover already happened (second list).
		f.lists = f.lists[1:]
		if got := diagnoseAddr(t, svc, "sessions.master"); got != "10.0.0.3:6379" || f.reads.Load() != 1 {
			t.Fatalf("member: addr %s, %d reads", got, f.reads.Load())
		}
		time.Sleep(4 * time.Second)
		diagnoseAddr(t, svc, "sessions.master")
		if _, err := svc.Handle(t.Context(), Command{Verb: "fleet"}); err != nil || f.reads.Load() != 1 {
			t.Fatalf("within maxAge: %v, %d reads, want 1", err, f.reads.Load())
		}
		time.Sleep(2 * time.Second)
		diagnoseAddr(t, svc, "sessions.master")
		if f.reads.Load() != 2 {
			t.Fatalf("after maxAge: %d reads, want 2", f.reads.Load())
		}
		// A name nobody knows may be a member that just appeared.
		time.Sleep(6 * time.Second)
		if _, err := svc.Handle(t.Context(), Command{Verb: "diagnose", Args: []string{"sessions.replica-10.0.0.9-6379"}}); !errors.Is(err, ErrUnknownInstance) || f.reads.Load() != 3 {
			t.Fatalf("unknown name: %v, %d reads, want 3", err, f.reads.Load())
		}
		if inst, err := svc.ResolveFresh(t.Context(), "sessions.master", []string{"team-s"}); err != nil || inst.Addr != "10.0.0.3:6379" || f.reads.Load() != 3 {
			t.Fatalf("ResolveFresh = %v, %v, %d reads", inst, err, f.reads.Load())
		}
	})
}

// Commands that arrive while a read is in flight wait for it; one read
// serves them all.
func TestMembershipSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeMembership{lists: [][]Instance{sentinelGroup("10.0.0.2:6379", "10.0.0.3:6379"), sentinelGroup("10.0.0.3:6379", "10.0.0.2:6379")},
			block: make(chan struct{})}
		svc := memberService(t, f, 5*time.Second, time.Minute)
		f.lists = f.lists[1:]
		var wg sync.WaitGroup
		addrs := make([]string, 5)
		for i := range addrs {
			wg.Go(func() { addrs[i] = diagnoseAddr(t, svc, "sessions.master") })
		}
		synctest.Wait()
		if n := f.reads.Load(); n != 1 {
			t.Fatalf("%d reads in flight, want 1", n)
		}
		close(f.block)
		wg.Wait()
		for _, a := range addrs {
			if a != "10.0.0.3:6379" {
				t.Errorf("a waiter saw %s, want the new master", a)
			}
		}
	})
}

// Refresh (after a failover the bot ran) does not settle for a read that
// started before it: it waits for that one and reads again. A command
// waits at most maxWait and goes on with the list it has.
func TestMembershipRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeMembership{lists: [][]Instance{sentinelGroup("10.0.0.2:6379", "10.0.0.3:6379"), sentinelGroup("10.0.0.2:6379", "10.0.0.3:6379"), sentinelGroup("10.0.0.3:6379", "10.0.0.2:6379")},
			block: make(chan struct{})}
		svc := memberService(t, f, time.Hour, time.Second)

		// A command starts a read that hangs (a black-holed sentinel):
		// after maxWait it answers from the list it has.
		start := time.Now()
		if got := diagnoseAddr(t, svc, "sessions.master"); got != "10.0.0.2:6379" || time.Since(start) != time.Second {
			t.Fatalf("hung read: addr %s after %s", got, time.Since(start))
		}
		done := make(chan []error)
		go func() { done <- svc.Refresh(context.Background()) }()
		synctest.Wait()
		if n := f.reads.Load(); n != 1 {
			t.Fatalf("Refresh started a read while one was in flight: %d reads", n)
		}
		close(f.block)
		<-done
		if n := f.reads.Load(); n != 2 {
			t.Fatalf("Refresh after an older read: %d reads, want 2", n)
		}
		// The cache is fresh (maxAge is an hour): only Refresh reads.
		diagnoseAddr(t, svc, "sessions.master")
		svc.Refresh(t.Context())
		if got := diagnoseAddr(t, svc, "sessions.master"); got != "10.0.0.3:6379" || f.reads.Load() != 3 {
			t.Fatalf("after Refresh: addr %s, %d reads", got, f.reads.Load())
		}
	})
}

// A read that panics keeps the list it had and says why.
func TestMembershipPanic(t *testing.T) {
	f := &fakeMembership{lists: [][]Instance{sentinelGroup("10.0.0.2:6379", "10.0.0.3:6379")}, panic: true}
	svc := memberService(t, f, time.Hour, time.Second)
	var heard []string
	svc.OnPanic(func(_ context.Context, where, _ string, _ *PanicError) { heard = append(heard, where) })
	errs := svc.Refresh(t.Context())
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "reading cluster and Sentinel members: panic:") || !slices.Equal(heard, []string{"membership"}) {
		t.Fatalf("errors = %v, heard %v", errs, heard)
	}
	if got := diagnoseAddr(t, svc, "sessions.master"); got != "10.0.0.2:6379" {
		t.Errorf("addr %s after a panicked read", got)
	}
}

// The name of a cluster seed or Sentinel entry stands for its members, in
// every read verb, within the channel's scope; an entry that could not be
// expanded answers with why.
func TestGroupNames(t *testing.T) {
	members := sentinelGroup("10.0.0.2:6379", "10.0.0.3:6379")
	orders := []Instance{
		{Name: "orders.10.0.0.5-7000", Addr: "10.0.0.5:7000", Origin: "orders", Cluster: true, Tags: []string{"team-o", "primary"}, Thresholds: DefaultThresholds()},
		{Name: "orders.10.0.0.5-7001", Addr: "10.0.0.5:7001", Origin: "orders", Cluster: true, Tags: []string{"team-o", "replica"}, Thresholds: DefaultThresholds()},
	}
	f := &fakeMembership{lists: [][]Instance{append(members, orders...)}}
	svc := memberService(t, f, time.Hour, time.Second)
	for _, verb := range []string{"diagnose", "frag", "oom", "doctor"} {
		resp, err := svc.Handle(t.Context(), Command{Verb: verb, Args: []string{"orders"}})
		if err != nil || len(resp.Reports) != 2 {
			t.Fatalf("%s orders = %v, %v", verb, resp, err)
		}
		var names []string
		for _, r := range resp.Reports {
			names = append(names, r.Instance)
			if r.Verb != verb {
				t.Errorf("%s report of %s has verb %s", verb, r.Instance, r.Verb)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"orders.10.0.0.5-7000", "orders.10.0.0.5-7001"}) {
			t.Errorf("%s orders reported %v", verb, names)
		}
	}
	resp, err := svc.Handle(t.Context(), Command{Verb: "diagnose", Args: []string{"sessions"}})
	if err != nil || len(resp.Reports) != 2 {
		t.Fatalf("diagnose sessions = %v, %v", resp, err)
	}
	// A channel scoped to team-o does not see sessions' members.
	if _, err := svc.Handle(t.Context(), Command{Verb: "diagnose", Args: []string{"sessions"}, Scope: []string{"team-o"}}); !errors.Is(err, ErrUnknownInstance) {
		t.Errorf("scoped diagnose sessions: %v, want unknown", err)
	}
	if resp, err := svc.Handle(t.Context(), Command{Verb: "diagnose", Args: []string{"orders"}, Scope: []string{"primary"}}); err != nil || len(resp.Reports) != 1 {
		t.Errorf("scoped diagnose orders = %v, %v; want the primary only", resp, err)
	}
}

func TestGroupFailureFinding(t *testing.T) {
	entry := Instance{Name: "sessions", Password: "s3cret-pw", Thresholds: DefaultThresholds(),
		Sentinel: &Sentinel{Master: "mymaster", Addrs: []string{"127.0.0.1:26379", "127.0.0.1:26380"}}}
	seed := Instance{Name: "orders", Addr: "10.0.0.5:7000", Seeds: []string{"10.0.0.5:7000", "10.0.0.6:7000"}, Cluster: true, Thresholds: DefaultThresholds()}
	refused := errors.New("no sentinel answered: sentinel 127.0.0.1:26379: dial tcp 127.0.0.1:26379: connect: connection refused (auth s3cret-pw); sentinel 127.0.0.1:26380: ...")
	f := &fakeMembership{
		lists: [][]Instance{{entry, seed}},
		errs: []error{
			&GroupError{Entry: "sessions", Class: ClassRefused, Err: refused},
			&GroupError{Entry: "orders", Class: ClassNoPerm, Err: errors.New("seed 10.0.0.5:7000: NOPERM ...")},
			errors.New("expand other: x is already the name of another instance; skipped"),
		},
	}
	svc := memberService(t, f, time.Hour, time.Second)
	if errs := svc.Refresh(t.Context()); len(errs) != 3 {
		t.Fatalf("Refresh errors = %v", errs)
	}
	reports, err := svc.Fleet(t.Context(), "", nil)
	if err != nil || len(reports) != 2 {
		t.Fatalf("fleet = %v, %v", reports, err)
	}
	for _, r := range reports {
		if len(r.Findings) != 1 || r.Findings[0].ID != "unreachable" || r.Error == nil {
			t.Fatalf("%s: %+v", r.Instance, r)
		}
		ev := Evidence(r.Findings[0].Evidence)
		errText, _ := ev.Get("error")
		addr, _ := ev.Get("addr")
		switch r.Instance {
		case "sessions":
			want := "Members unknown (refused): the Sentinel master mymaster behind sessions could not be read; check that the sentinels are up, reachable from the bot and monitor mymaster."
			if r.Findings[0].Summary != want || r.Findings[0].Severity != SeverityCritical {
				t.Errorf("summary = %q (%s)", r.Findings[0].Summary, r.Findings[0].Severity)
			}
			if !strings.HasPrefix(errText.Text, "no sentinel answered: sentinel 127.0.0.1:26379: dial tcp") || strings.Contains(errText.Text, "s3cret-pw") ||
				strings.Contains(r.Error.Message, "s3cret-pw") {
				t.Errorf("error = %q", errText.Text)
			}
			if addr.Text != "127.0.0.1:26379, 127.0.0.1:26380" {
				t.Errorf("addr = %q", addr.Text)
			}
		case "orders":
			if r.Error.Class != ClassNoPerm || r.Findings[0].Severity != SeverityWarning || addr.Text != "10.0.0.5:7000, 10.0.0.6:7000" ||
				!strings.HasPrefix(r.Findings[0].Summary, "Members unknown (noperm): the cluster behind orders could not be read; the bot's ACL user lacks CLUSTER SHARDS") {
				t.Errorf("orders: %+v", r.Findings[0])
			}
		}
	}
}
