package sweep_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/handlers"
)

// panickingFleet panics in its first n Fleet calls, as a bug in the
// sweep's path (a refresh, the store, a renderer) would: nothing real
// panics on demand. Later calls reach the real service.
type panickingFleet struct {
	service sweep.Fleet
	n       atomic.Int64 // panics left
}

func (f *panickingFleet) Instances(tag string) []handlers.Instance { return f.service.Instances(tag) }

func (f *panickingFleet) Fleet(ctx context.Context, tag string, timedOut map[string]bool) ([]*handlers.Report, error) {
	if f.n.Add(-1) >= 0 {
		var reports []*handlers.Report
		_ = reports[0].Instance // index out of range
	}
	return f.service.Fleet(ctx, tag, timedOut)
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A tick that panics loses that sweep only: it is logged with its stack
// and counted, and the next tick sweeps and alerts as usual.
func TestPanickingTickIsFollowedByAWorkingTick(t *testing.T) {
	h := newHarness(t, "cache-1", "cache-2")
	h.prober.fail("cache-2", handlers.ClassRefused)
	fleet := &panickingFleet{service: h.fleet}
	fleet.n.Store(1)
	m := metrics.New()
	var logs syncLog
	sw := sweep.New(sweep.Options{
		Fleet: fleet, Store: h.st, Poster: h.poster, Leader: h.leader,
		ChannelFor: func([]string) string { return alertsChannel }, Metrics: m,
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: h.clock.Now,
	})

	sw.Tick(context.Background())
	if !sw.LastSweep().IsZero() {
		t.Fatalf("the panicking sweep counted as done (%v)", sw.LastSweep())
	}
	h.clock.step(time.Minute)
	sw.Tick(context.Background())
	if sw.LastSweep().IsZero() {
		t.Error("the tick after the panic did not finish")
	}
	// The working tick recorded what it saw: a sweep and cache-2's probe
	// error.
	if n := counter(t, m, "redisbot_sweeps_total", ""); n != 1 {
		t.Errorf("redisbot_sweeps_total = %v, want 1", n)
	}
	if n := counter(t, m, "redisbot_probe_errors_total", "refused"); n != 1 {
		t.Errorf("redisbot_probe_errors_total{class=refused} = %v, want 1", n)
	}
	if _, err := h.st.Alert(context.Background(), "cache-2", "unreachable"); err != nil {
		t.Errorf("the working tick did not record cache-2's alert: %v", err)
	}

	if n := counter(t, m, "redisbot_panics_total", "sweep"); n != 1 {
		t.Errorf("redisbot_panics_total{where=sweep} = %v, want 1", n)
	}
	for _, want := range []string{`"msg":"recovered a panic"`, `"where":"sweep"`, "index out of range", "panickingFleet"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// The digest recovers the same way.
func TestPanickingDigestIsContained(t *testing.T) {
	h := newHarness(t, "cache-1")
	fleet := &panickingFleet{service: h.fleet}
	fleet.n.Store(1)
	m := metrics.New()
	sw := sweep.New(sweep.Options{
		Fleet: fleet, Store: h.st, Poster: h.poster, Leader: h.leader,
		ChannelFor: func([]string) string { return alertsChannel }, Metrics: m, Log: discard, Now: h.clock.Now,
	})
	sw.Digest(context.Background(), nil)
	if got := h.poster.since(); len(got) != 0 {
		t.Fatalf("the panicking digest posted %v", got)
	}
	sw.Digest(context.Background(), nil)
	if got := h.poster.since(); len(got) == 0 {
		t.Error("the digest after the panic posted nothing")
	}
	if n := counter(t, m, "redisbot_panics_total", "digest"); n != 1 {
		t.Errorf("redisbot_panics_total{where=digest} = %v, want 1", n)
	}
}

// counter reads a counter from the registry: the series with label value
// value, or the unlabelled one when value is "".
func counter(t *testing.T, m *metrics.Metrics, name, value string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, c := range f.GetMetric() {
			if value == "" && len(c.GetLabel()) == 0 {
				return c.GetCounter().GetValue()
			}
			for _, l := range c.GetLabel() {
				if l.GetValue() == value {
					return c.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
