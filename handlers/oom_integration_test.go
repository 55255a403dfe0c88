package handlers_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// realState probes a real server and runs every rule on what it saw, with
// the previous sample when there is one, as the service does.
type realState struct {
	t     *testing.T
	p     *probe.Prober
	inst  handlers.Instance
	prev  *handlers.Snapshot
	limit int64
}

func newRealState(t *testing.T, srv *redistest.Server, limit int64) *realState {
	t.Helper()
	p := probe.New(5*time.Second, nil)
	t.Cleanup(func() { p.Close() })
	inst := handlers.Instance{Name: "real-1", Addr: srv.Addr, MemoryLimit: limit, Thresholds: handlers.DefaultThresholds()}
	return &realState{t: t, p: p, inst: inst, limit: limit}
}

// sample probes once and returns the report; the snapshot becomes the
// previous sample of the next call.
func (s *realState) sample() *handlers.Report {
	s.t.Helper()
	snap, err := s.p.Probe(context.Background(), s.inst)
	if err != nil {
		s.t.Fatalf("probe: %v", err)
	}
	in := handlers.Input{Cur: snap, Prev: s.prev, MemoryLimit: s.limit, T: s.inst.Thresholds}
	r := &handlers.Report{Verb: "diagnose", Instance: s.inst.Name, Snapshot: snap, MemoryLimit: s.limit}
	r.Findings = handlers.Evaluate(in)
	r.Severity = handlers.Worst(r.Findings)
	s.prev = snap
	return r
}

func wantSeverity(t *testing.T, r *handlers.Report, id string, want handlers.Severity, summary string) handlers.Finding {
	t.Helper()
	f, ok := r.Finding(id)
	switch {
	case want == handlers.SeverityNone && ok:
		t.Errorf("%s fired (%s: %s), want not", id, f.Severity, f.Summary)
	case want != handlers.SeverityNone && !ok:
		t.Errorf("%s did not fire; findings %v", id, findingList(r))
	case ok && f.Severity != want:
		t.Errorf("%s severity %s, want %s (%s)", id, f.Severity, want, f.Summary)
	case ok && !strings.Contains(f.Summary, summary):
		t.Errorf("%s summary %q lacks %q", id, f.Summary, summary)
	}
	return f
}

func findingList(r *handlers.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID+"="+f.Severity.String())
	}
	return out
}

// A noeviction instance pushed to its limit rejects writes: critical while
// it does, and once it is emptied the count since start is history.
func TestOOMIncidentAndAfterOnRealServer(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.FillUntilOOM(ctx, c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
	state := newRealState(t, srv, 256<<20)

	// Full, no history: the state says writes fail now.
	r := state.sample()
	wantSeverity(t, r, "oom-rejecting", handlers.SeverityCritical, "now with \"OOM command not allowed")
	// One incident, one finding that carries it: the others explain.
	wantSeverity(t, r, "noeviction-trap", handlers.SeverityInfo, "writes fail")
	wantSeverity(t, r, "maxmemory-near", handlers.SeverityNone, "")
	if a := handlers.ChooseFirstAction(r); a.ID != "raise-maxmemory" || a.Finding != "oom-rejecting" || a.GainBytes <= 0 {
		t.Errorf("first action while full: %+v", a)
	}

	// More writes are rejected: counted since the previous sample.
	rejected := 0
	for i := range 25 {
		if err := c.Set(ctx, "more:"+strconv.Itoa(i), strings.Repeat("v", 4096), 0).Err(); err != nil && strings.HasPrefix(err.Error(), "OOM ") {
			rejected++
		}
	}
	if rejected == 0 {
		t.Fatal("no write was rejected at the limit")
	}
	r = state.sample()
	f := wantSeverity(t, r, "oom-rejecting", handlers.SeverityCritical, "writes failed with")
	if e, ok := f.Evidence.Get("oom_errors_since_last_sample"); !ok || e.Value.(int64) < int64(rejected) {
		t.Errorf("oom_errors_since_last_sample = %+v, want at least %d", e, rejected)
	}

	// The incident is over: the data is gone, the count stays.
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r = state.sample()
	f = wantSeverity(t, r, "oom-rejecting", handlers.SeverityInfo, " since start, none now")
	total, _ := f.Evidence.Get("errorstat_OOM")
	if n, _ := total.Value.(int64); n < int64(rejected) || !strings.Contains(f.Summary, total.Text+" since start, none now") {
		t.Errorf("after the incident: %s (errorstat_OOM %v)", f.Summary, total.Value)
	}
	wantSeverity(t, r, "maxmemory-near", handlers.SeverityNone, "")
	wantSeverity(t, r, "noeviction-trap", handlers.SeverityNone, "")
	for _, f := range r.Findings {
		if spec, _ := handlers.SpecFor(f.ID); spec.Area == handlers.AreaOOM && f.Severity > handlers.SeverityInfo {
			t.Errorf("after the incident %s is %s: %s", f.ID, f.Severity, f.Summary)
		}
	}
	// The same without history, as `redisbot diagnose` sees it.
	state.prev = nil
	r = state.sample()
	wantSeverity(t, r, "oom-rejecting", handlers.SeverityInfo, " since start, none now")
}

// An allkeys-lru cache at a small maxmemory with a writer: it evicts, as it
// should, and nothing about its limit is a warning.
func TestEvictingCacheOnRealServer(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru")
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, c, "lru:", 30_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	state := newRealState(t, srv, 0)
	state.sample()
	// The writer goes on, and readers hit what is left.
	if err := redistest.Fill(ctx, c, "lru2:", 20_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		c.Get(ctx, "lru2:"+strconv.Itoa(19_999-i))
	}
	r := state.sample()
	ev := wantSeverity(t, r, "evicting", handlers.SeverityInfo, "keys evicted in the last")
	if n, ok := ev.Evidence.Get("evicted_since_last_sample"); !ok || n.Value.(int64) < 1000 {
		t.Errorf("evicted since the last sample: %+v", n)
	}
	wantSeverity(t, r, "maxmemory-near", handlers.SeverityInfo, "policy allkeys-lru evicts to make room")
	wantSeverity(t, r, "oom-rejecting", handlers.SeverityNone, "")
	for _, f := range r.Findings {
		if spec, _ := handlers.SpecFor(f.ID); spec.Area == handlers.AreaOOM && f.Severity > handlers.SeverityInfo {
			t.Errorf("an evicting cache has %s at %s: %s", f.ID, f.Severity, f.Summary)
		}
	}
	if a := handlers.ChooseFirstAction(r); a.Finding != "" {
		if spec, _ := handlers.SpecFor(a.Finding); spec.Area == handlers.AreaOOM {
			t.Errorf("first action for an evicting cache: %+v", a)
		}
	}
}

// A replica above a small maxmemory: harmless while it replicates, an
// outage on promotion when its policy cannot evict.
func TestReplicaAboveMaxmemoryOnRealServer(t *testing.T) {
	primary := redistest.StartT(t)
	pc := primary.Client()
	defer pc.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, pc, "r:", 20_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		policy string
		want   handlers.Severity
		text   string
	}{
		{"noeviction", handlers.SeverityWarning, "promoted to primary it fails every write that needs memory at once"},
		{"allkeys-lru", handlers.SeverityInfo, "promoted, it would first evict about"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			replica := redistest.StartT(t, "--maxmemory", "5mb", "--maxmemory-policy", tc.policy, "--replicaof", strings.Replace(primary.Addr, ":", " ", 1))
			rc := replica.Client()
			defer rc.Close()
			deadline := time.Now().Add(10 * time.Second)
			for rc.DBSize(ctx).Val() < 20_000 {
				if time.Now().After(deadline) {
					t.Fatalf("replica has %d keys", rc.DBSize(ctx).Val())
				}
				time.Sleep(50 * time.Millisecond)
			}
			r := newRealState(t, replica, 0).sample()
			wantSeverity(t, r, "replica-over-maxmemory", tc.want, tc.text)
			for _, id := range []string{"maxmemory-near", "oom-rejecting", "noeviction-trap", "maxmemory-unset"} {
				wantSeverity(t, r, id, handlers.SeverityNone, "")
			}
			if a := handlers.ChooseFirstAction(r); tc.want == handlers.SeverityWarning && a.ID != "match-replica-maxmemory" {
				t.Errorf("first action %+v", a)
			}
		})
	}
}
