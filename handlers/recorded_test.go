package handlers

import (
	"context"
	"testing"
	"time"
)

// recordedHistory answers Last from a fixed map, as a store would after a
// sweep.
type recordedHistory map[string]*Snapshot

func (h recordedHistory) Last(_ context.Context, instance string) (*Snapshot, bool) {
	s, ok := h[instance]
	return s, ok
}

// Recorded reports from the stored snapshots, within the scope, and never
// probes (the prober here would fail the test).
func TestRecorded(t *testing.T) {
	snap := fixture(t, "redis-7.0.txt", nil, nil)
	snap.Instance = "cache-1"
	mk := func(name string, tags ...string) Instance {
		return Instance{Name: name, Addr: "127.0.0.1:6379", Tags: tags, Thresholds: DefaultThresholds()}
	}
	svc := NewService([]Instance{mk("cache-1", "team-a"), mk("cache-2", "team-a"), mk("queue-1", "team-b")},
		failingProber{t}, recordedHistory{"cache-1": snap, "queue-1": snap}, 4, func() time.Time { return time.Unix(0, 0) })
	got := svc.Recorded(context.Background(), []string{"team-a"})
	if len(got) != 1 || got[0].Instance != "cache-1" || got[0].Snapshot == nil || got[0].Failed() {
		t.Fatalf("recorded = %+v, want cache-1's report alone (cache-2 has no snapshot, queue-1 is out of scope)", got)
	}
	if s := Summarize(got[0]); s.Headline == "" {
		t.Errorf("no summary headline from the recorded report")
	}
	if all := svc.Recorded(context.Background(), nil); len(all) != 2 {
		t.Errorf("unscoped: %d reports, want 2", len(all))
	}
	if none := NewService(nil, failingProber{t}, nil, 1, nil).Recorded(context.Background(), nil); none != nil {
		t.Errorf("without a history: %v", none)
	}
}

type failingProber struct{ t *testing.T }

func (p failingProber) Probe(context.Context, Instance) (*Snapshot, error) {
	p.t.Error("Recorded probed an instance")
	return nil, context.Canceled
}
