package sweep_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// TestSlowServerAlertSaysSlow sweeps a real probe of a server that answers
// every reply after 600 ms and has nothing wrong with its memory: the
// alert that fires is slow-server, a warning, with INFO's round trip in it,
// never unreachable.
func TestSlowServerAlertSaysSlow(t *testing.T) {
	info := resptest.DefaultInfo
	for k, v := range clean {
		info = regexp.MustCompile(`(?m)^`+k+`:[^\r\n]*`).ReplaceAllString(info, k+":"+v)
	}
	s, err := resptest.Start(resptest.Slow, info, 600*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	clk := &clock{now: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	st := openStore(t, clk.Now)
	// The prober measures latency on the wall clock; the sweeper, the
	// store and the service run on the test's.
	p := probe.New(3*time.Second, nil)
	t.Cleanup(func() { p.Close() })
	inst := handlers.Instance{Name: "slow-1", Addr: s.Addr, Tags: []string{"cache"}, Thresholds: handlers.DefaultThresholds()}
	fleet := &recordingFleet{Service: handlers.NewService([]handlers.Instance{inst}, p, nil, 1, clk.Now)}
	poster := &recordingPoster{}
	sw := sweep.New(sweep.Options{Fleet: fleet, Store: st, Poster: poster, Leader: startLeader(t, st, "replica-a"),
		ChannelFor: func([]string) string { return alertsChannel }, OnCallGroup: "S0ONCALL", Log: discard, Now: clk.Now})

	sw.Tick(context.Background())
	if got := poster.since(); len(got) != 0 {
		t.Fatalf("first sweep posted %v, want a pending warning", got)
	}
	if u := fleet.unreachable(); len(u) != 0 {
		t.Fatalf("unreachable %v after the first sweep", u)
	}
	clk.step(alerts.DefaultTiming("slow-server").For[handlers.SeverityWarning])
	sw.Tick(context.Background())
	got := poster.since()
	wantCalls(t, "slow for the for period", got, "post")
	a := got[0]
	if !a.about("slow-server") || a.about("unreachable") || !strings.Contains(a.Text, "WARNING · slow-1 · Server is reachable but slow to answer") ||
		!strings.Contains(a.Blocks, "INFO took") || strings.Contains(a.Blocks, "<!subteam^S0ONCALL>") {
		t.Errorf("alert: %s\n%s", a.Text, a.Blocks)
	}
	if u := fleet.unreachable(); len(u) != 0 {
		t.Errorf("unreachable %v", u)
	}
}
