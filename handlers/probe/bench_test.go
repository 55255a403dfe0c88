package probe_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// BenchmarkDiagnose measures what `redisbot diagnose` costs once connected:
// one pipelined probe of a local, fragmented instance plus every rule. It
// reports p50 and p99 alongside the mean, since the target is a median.
func BenchmarkDiagnose(b *testing.B) {
	srv := redistest.StartT(b)
	c := srv.Client()
	defer c.Close()
	if err := redistest.Fragment(context.Background(), c, 100_000); err != nil {
		b.Fatal(err)
	}
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	inst := handlers.Instance{Name: "bench-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	svc := handlers.NewService([]handlers.Instance{inst}, p, nil, 1, nil)

	b.Run("probe", func(b *testing.B) {
		latencies(b, func() error { _, err := p.Probe(context.Background(), inst); return err })
	})
	b.Run("probe+rules", func(b *testing.B) {
		latencies(b, func() error {
			r, err := svc.Diagnose(context.Background(), "bench-1")
			if err == nil && r.Failed() {
				b.Fatalf("probe failed: %v", r.Error)
			}
			return err
		})
	})
}

func latencies(b *testing.B, f func() error) {
	if err := f(); err != nil { // connect outside the timed loop
		b.Fatal(err)
	}
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}
