package resptest

import (
	"context"
	"sync"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// TimedProber wraps a Prober and records how long each probe of an
// instance took, in order: tests of short first probes and of the fleet's
// scheduling read it.
type TimedProber struct {
	handlers.Prober
	mu   sync.Mutex
	took map[string][]time.Duration
}

// NewTimedProber records the probes p makes.
func NewTimedProber(p handlers.Prober) *TimedProber {
	return &TimedProber{Prober: p, took: map[string][]time.Duration{}}
}

// Probe probes through the wrapped Prober and records the duration.
func (p *TimedProber) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	began := time.Now()
	snap, err := p.Prober.Probe(ctx, inst)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.took[inst.Name] = append(p.took[inst.Name], time.Since(began))
	return snap, err
}

// Probes returns the durations of the named instance's probes so far.
func (p *TimedProber) Probes(name string) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.took[name]
}

// Since returns every instance's probe durations since the previous call,
// and forgets them.
func (p *TimedProber) Since() map[string][]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.took
	p.took = map[string][]time.Duration{}
	return out
}
