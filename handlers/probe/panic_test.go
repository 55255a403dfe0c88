package probe_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestPanicInTheSharedProbeFailsOnlyThatProbe makes the probe's goroutine
// panic (through its injected clock: no real server makes go-redis panic
// on demand) while five callers share it. Each gets a failed probe of class
// internal carrying the one panic, the process lives, and the next probe of
// the same instance works.
func TestPanicInTheSharedProbeFailsOnlyThatProbe(t *testing.T) {
	srv := redistest.StartT(t)
	var calls atomic.Int64
	var readings []time.Time
	clock := func() time.Time {
		if calls.Add(1) == 1 {
			// Long enough for every caller to join the probe in flight.
			time.Sleep(300 * time.Millisecond)
			return readings[len(readings)] // index out of range: a panic
		}
		return time.Now()
	}
	p := probe.New(2*time.Second, clock)
	defer p.Close()

	var wg sync.WaitGroup
	errs := make([]error, 5)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			_, errs[i] = p.Probe(context.Background(), instance(srv.Addr))
		})
	}
	close(start)
	wg.Wait()

	var first *handlers.PanicError
	for i, err := range errs {
		var pe *handlers.ProbeError
		if !errors.As(err, &pe) || pe.Class != handlers.ClassInternal {
			t.Fatalf("caller %d: %v, want a probe error of class internal", i, err)
		}
		panicErr, ok := handlers.AsPanic(err)
		if !ok || !strings.Contains(string(panicErr.Stack), "TestPanicInTheSharedProbeFailsOnlyThatProbe") {
			t.Fatalf("caller %d: %v carries no panic with the stack", i, err)
		}
		if first == nil {
			first = panicErr
		} else if panicErr != first {
			t.Errorf("caller %d got another panic: one probe, one panic", i)
		}
	}
	snap, err := p.Probe(context.Background(), instance(srv.Addr))
	if err != nil || !snap.Info.Has("used_memory") {
		t.Fatalf("the probe after the panic: %v", err)
	}
}
