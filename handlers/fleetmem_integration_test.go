package handlers_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// The fleet view holds every instance's report until it is printed, so what
// one report keeps is what 10,000 instances cost (issue 18: at most 300 MB
// for the whole run). Probed over the wire by the real prober, a report of
// the fleet verb keeps its numbers, findings and what its first action
// reads, not the probe's whole snapshot (INFO, MEMORY STATS, the doctor's
// text: about 16 KiB a report), nor any part of
// the INFO reply.
func TestFleetReportsStaySmall(t *testing.T) {
	const n = 300
	// A listener per server, and both ends of each connection in flight.
	if err := resptest.RaiseFileLimit(3*n + 100); err != nil {
		t.Fatal(err)
	}
	servers, err := resptest.StartMany(n, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resptest.CloseAll(servers) })
	instances := make([]handlers.Instance, n)
	for i, s := range servers {
		instances[i] = handlers.Instance{Name: fmt.Sprintf("cache-%03d", i), Addr: s.Addr, Thresholds: handlers.DefaultThresholds()}
	}
	p := probe.New(5*time.Second, nil)
	p.DialPerProbe()
	t.Cleanup(func() { _ = p.Close() })
	svc := handlers.NewService(instances, p, nil, 16, nil)

	before := liveHeap()
	resp, err := svc.Handle(context.Background(), handlers.Command{Verb: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	perReport := (liveHeap() - before) / n
	for _, r := range resp.Reports {
		if r.Failed() || len(r.Findings) == 0 {
			t.Fatalf("%s: failed or no findings: %+v", r.Instance, r)
		}
	}
	// Measured at about 4.6 KiB (metrics and findings; 21.5 KiB with the
	// whole snapshot) on Go 1.26; the bound leaves room for new findings,
	// not for a snapshot.
	const bound = 10 << 10
	t.Logf("%d bytes live per fleet report", perReport)
	if perReport > bound {
		t.Errorf("%d bytes live per fleet report, want at most %d", perReport, bound)
	}
	runtime.KeepAlive(resp)
}

// liveHeap is the bytes of live heap objects, after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
