package sweep_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// A real noeviction server rejects writes, then is emptied: the alert fires
// at once, stays one message while writes keep failing, and resolves after
// the incident although errorstat_OOM keeps its count. The sweeps run as
// in serve: the real prober, and the store as the history that gives each
// sweep its previous sample.
func TestOOMAlertResolvesAfterTheIncident(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.FillUntilOOM(ctx, c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}

	clk := &clock{now: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)
	h := &harness{t: t, clock: clk, st: st, poster: &recordingPoster{}}
	h.leader = startLeader(t, st, "replica-a")
	p := probe.New(5*time.Second, clk.Now)
	t.Cleanup(func() { p.Close() })
	inst := handlers.Instance{Name: "full-1", Addr: srv.Addr, Tags: []string{"cache"}, Thresholds: handlers.DefaultThresholds()}
	h.fleet = handlers.NewService([]handlers.Instance{inst}, p, st, 1, clk.Now)
	h.sweeper = h.newSweeper(h.fleet, h.leader)

	got := h.sweepAfter(0)
	wantCalls(t, "first sweep", got, "post")
	fired := got[0]
	if !fired.about("oom-rejecting") || !strings.Contains(fired.Text, "CRITICAL · full-1") {
		t.Fatalf("alert: %+v", fired)
	}

	// While it lasts, writes keep failing between sweeps: one message.
	for i := range 5 {
		if err := c.Set(ctx, "more:"+strconv.Itoa(i), strings.Repeat("v", 4096), 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM ") {
			t.Fatalf("write at the limit: %v, want an OOM error", err)
		}
		h.sweepsQuiet(1, "writes still failing")
	}
	if a := h.alert("full-1", "oom-rejecting"); a.State != "firing" || !strings.Contains(a.Summary, "writes failed") {
		t.Errorf("alert while writes fail: %s, %q", a.State, a.Summary)
	}

	// The incident ends. The count since start stays in INFO; the
	// finding is history (info) and the alert resolves after ClearFor.
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.sweepsQuiet(int(alerts.DefaultClearFor/time.Minute), "after the incident, within ClearFor")
	got = h.sweepAfter(time.Minute)
	wantCalls(t, "after the incident, ClearFor later", got, "update", "reply")
	if got[0].TS != fired.TS || !strings.HasPrefix(got[0].Text, "RESOLVED · full-1") {
		t.Errorf("resolve: %+v", got[0])
	}
	info, err := c.Info(ctx, "errorstats").Result()
	if err != nil || !strings.Contains(info, "errorstat_OOM:count=") {
		t.Fatalf("errorstat_OOM gone from INFO (%v): the test no longer shows a count that stays", err)
	}
	h.sweepsQuiet(30, "the count since start alone")
	if a := h.alert("full-1", "oom-rejecting"); a.State != "resolved" {
		t.Errorf("alert after the incident: %+v", a)
	}
}
