package remedy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
)

// WatchConfig bounds an active-defrag run. Start from DefaultWatchConfig:
// the fields are used as given (a zero MaxLatency trips the guard on every
// sample, a zero MaxDuration stops at the first one), except a non-positive
// Interval, which falls back to the default.
type WatchConfig struct {
	// Interval is how often progress is sampled and reported.
	Interval time.Duration
	// MaxDuration is how long defrag may run at most.
	MaxDuration time.Duration
	// TargetRatio: defrag stops at or below this allocator_frag_ratio.
	TargetRatio float64
	// MaxLatency is the latency guard, for the PING round trip and for the
	// active-defrag-cycle event of LATENCY LATEST.
	MaxLatency time.Duration
}

// DefaultWatchConfig is the conservative profile of the runbooks.
func DefaultWatchConfig() WatchConfig {
	return WatchConfig{Interval: 30 * time.Second, MaxDuration: time.Hour, TargetRatio: 1.1, MaxLatency: 50 * time.Millisecond}
}

// Progress is one sample of a defrag run.
type Progress struct {
	At      time.Time
	Elapsed time.Duration // since the watch started

	AllocFragRatio float64
	AllocFragBytes int64
	// Hits and Misses count since the first sample of the watch
	// (active_defrag_hits and active_defrag_misses are lifetime counters);
	// Running is active_defrag_running as INFO says it.
	Hits, Misses, Running int64

	PingRTT time.Duration
	// DefragLatency is LATENCY LATEST's latest active-defrag-cycle latency
	// logged since the watch started, 0 if none.
	DefragLatency time.Duration
}

// Reasons a watch ends.
const (
	WatchTarget      = "target"
	WatchMaxDuration = "max-duration"
	WatchLatency     = "latency"
	WatchStopped     = "stopped"
	WatchError       = "error"
)

// WatchResult is the final report of a defrag run.
type WatchResult struct {
	// Reason is WatchTarget, WatchMaxDuration, WatchLatency, WatchStopped
	// (the context was cancelled) or WatchError.
	Reason string
	// First and Last are the first and last successful samples; zero when
	// no sample succeeded.
	First, Last Progress
	// TurnedOff reports that CONFIG SET activedefrag no succeeded.
	TurnedOff bool
	// Err is why samples failed (Reason WatchError) and why turning defrag
	// off failed.
	Err error
	// Warnings are problems the watch worked around, such as a LATENCY
	// LATEST the server refused: the guard then relied on PING alone.
	Warnings []string
}

// DefragTarget is how the watcher reads and stops one instance. Executor.Target
// gives the real one.
type DefragTarget interface {
	// Snapshot returns INFO with at least the memory and stats sections.
	Snapshot(ctx context.Context) (*handlers.Snapshot, error)
	// Ping returns one PING round trip.
	Ping(ctx context.Context) (time.Duration, error)
	// DefragLatency returns the latest active-defrag-cycle latency logged
	// since the target's first call, 0 if none.
	DefragLatency(ctx context.Context) (time.Duration, error)
	// TurnOff sets activedefrag to no.
	TurnOff(ctx context.Context) error
}

// maxSampleFailures in a row end the watch: the bot can no longer see what
// defrag does to the instance.
const maxSampleFailures = 3

// turnOffTimeout bounds the final CONFIG SET, which runs even when ctx is
// cancelled: defrag must never be left running because the bot stops.
const turnOffTimeout = 5 * time.Second

// Watch follows an active-defrag run that was just turned on. It samples at
// once, then at every Interval (and at MaxDuration), calling progress after
// each interval's sample, and stops defrag when, in this order, the latency
// guard trips, allocator_frag_ratio reaches TargetRatio, MaxDuration has
// passed, or ctx is cancelled. A failed sample is retried at the next
// interval; maxSampleFailures in a row end the watch. Whatever the reason,
// TurnOff is attempted exactly once, on a context that ctx's cancellation
// does not reach. The first sample is decided on like the others, so a
// guard that already trips stops defrag at once.
//
// now and sleep are injected for tests; nil means time.Now and a timer.
func Watch(ctx context.Context, t DefragTarget, cfg WatchConfig, now func() time.Time, sleep func(context.Context, time.Duration) error, progress func(Progress)) WatchResult {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultWatchConfig().Interval
	}
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	w := watcher{t: t, start: now(), now: now}
	res := w.loop(ctx, cfg, sleep, progress)

	offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), turnOffTimeout)
	defer cancel()
	if err := t.TurnOff(offCtx); err != nil {
		res.Err = errors.Join(res.Err, fmt.Errorf("turning active defrag off: %w", err))
	} else {
		res.TurnedOff = true
	}
	return res
}

// watcher holds what the samples of one watch share.
type watcher struct {
	t     DefragTarget
	start time.Time
	now   func() time.Time

	haveFirst         bool
	baseHits, baseMis int64
	warnings          []string
}

func (w *watcher) loop(ctx context.Context, cfg WatchConfig, sleep func(context.Context, time.Duration) error, progress func(Progress)) WatchResult {
	var res WatchResult
	end := func(reason string) WatchResult {
		res.Reason, res.Warnings = reason, w.warnings
		return res
	}
	failures := 0
	for n := 0; ; n++ {
		if n > 0 {
			if err := sleep(ctx, w.untilNext(cfg)); err != nil {
				return end(WatchStopped)
			}
		}
		p, err := w.sample(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return end(WatchStopped)
			}
			failures++
			if failures >= maxSampleFailures {
				res.Err = fmt.Errorf("%d samples in a row failed, the last: %w", failures, err)
				return end(WatchError)
			}
			// No sample means no ratio and no latency to judge, but the
			// time limit still holds.
			if w.now().Sub(w.start) >= cfg.MaxDuration {
				res.Err = fmt.Errorf("last sample failed: %w", err)
				return end(WatchMaxDuration)
			}
			continue
		}
		failures = 0
		if !w.haveFirst {
			w.haveFirst, w.baseHits, w.baseMis = true, p.Hits, p.Misses
			p.Hits, p.Misses = 0, 0
			res.First = p
		} else {
			p.Hits, p.Misses = delta(p.Hits, w.baseHits), delta(p.Misses, w.baseMis)
		}
		res.Last = p
		if n > 0 {
			progress(p)
		}
		switch {
		case p.PingRTT > cfg.MaxLatency || p.DefragLatency > cfg.MaxLatency:
			return end(WatchLatency)
		case p.AllocFragRatio <= cfg.TargetRatio:
			return end(WatchTarget)
		case p.Elapsed >= cfg.MaxDuration:
			return end(WatchMaxDuration)
		case ctx.Err() != nil:
			return end(WatchStopped)
		}
	}
}

// untilNext is the wait until the next interval boundary after now, counted
// from the start so slow samples do not make the schedule drift, and
// shortened to end exactly at MaxDuration.
func (w *watcher) untilNext(cfg WatchConfig) time.Duration {
	elapsed := w.now().Sub(w.start)
	next := (elapsed/cfg.Interval + 1) * cfg.Interval
	if elapsed < cfg.MaxDuration && next > cfg.MaxDuration {
		next = cfg.MaxDuration
	}
	return next - elapsed
}

// sample reads one Progress with raw (lifetime) hit and miss counters.
func (w *watcher) sample(ctx context.Context) (Progress, error) {
	at := w.now()
	s, err := w.t.Snapshot(ctx)
	if err != nil {
		return Progress{}, err
	}
	ratio, ok := s.Float("allocator_frag_ratio")
	if !ok {
		// Without it, "target reached" cannot be told from "unknown".
		return Progress{}, errors.New("INFO has no allocator_frag_ratio")
	}
	p := Progress{At: at, Elapsed: at.Sub(w.start), AllocFragRatio: ratio}
	p.AllocFragBytes, _ = s.Int("allocator_frag_bytes")
	p.Hits, _ = s.Int("active_defrag_hits")
	p.Misses, _ = s.Int("active_defrag_misses")
	p.Running, _ = s.Int("active_defrag_running")
	if p.PingRTT, err = w.t.Ping(ctx); err != nil {
		return Progress{}, err
	}
	// LATENCY can be denied by ACL or renamed while everything else works:
	// the PING guard still protects the instance, so degrade and say so.
	if p.DefragLatency, err = w.t.DefragLatency(ctx); err != nil {
		if ctx.Err() != nil {
			return Progress{}, err
		}
		w.warn("defrag latency unknown, the guard used PING only: " + err.Error())
	}
	return p, nil
}

func (w *watcher) warn(msg string) {
	if !slices.Contains(w.warnings, msg) {
		w.warnings = append(w.warnings, msg)
	}
}

// delta is a counter's growth since base; a counter below its base was
// reset (restart, CONFIG RESETSTAT) and has grown from zero since.
func delta(v, base int64) int64 {
	if v < base {
		return v
	}
	return v - base
}

// Target returns the real DefragTarget of an instance, over the remediation
// credential, and the function that closes its connection. The target is for
// one watch: it is not safe for concurrent use.
func (e *Executor) Target(inst handlers.Instance) (DefragTarget, func() error) {
	c := e.client(inst)
	return &defragTarget{c: c, inst: inst.Name, timeout: e.timeout, now: e.now}, c.Close
}

// defragTarget reads an instance with go-redis.
type defragTarget struct {
	c       *redis.Client
	inst    string
	timeout time.Duration
	now     func() time.Time
	// since is the server's clock (unix seconds) at the first
	// DefragLatency: events logged before it belong to an earlier run.
	since int64
}

func (t *defragTarget) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, t.timeout)
}

// Snapshot reads INFO memory and INFO stats: all the watch needs, and far
// less than a full probe every interval.
func (t *defragTarget) Snapshot(ctx context.Context) (*handlers.Snapshot, error) {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	start := t.now()
	pipe := t.c.Pipeline()
	memory := pipe.Info(ctx, "memory")
	stats := pipe.Info(ctx, "stats")
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("%s: INFO: %w", t.inst, err)
	}
	return &handlers.Snapshot{
		Instance:  t.inst,
		ProbedAt:  start,
		RoundTrip: t.now().Sub(start),
		Info:      handlers.ParseInfo(memory.Val() + "\r\n" + stats.Val()),
	}, nil
}

// Ping times one PING. Snapshot comes first in a sample, so the connection
// is open and the time is the server's, not the dial's.
func (t *defragTarget) Ping(ctx context.Context) (time.Duration, error) {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	start := t.now()
	if err := t.c.Ping(ctx).Err(); err != nil {
		return 0, fmt.Errorf("%s: PING: %w", t.inst, err)
	}
	return t.now().Sub(start), nil
}

// DefragLatency reads LATENCY LATEST. The server logs events only when
// latency-monitor-threshold is above 0 (it is 0 by default).
func (t *defragTarget) DefragLatency(ctx context.Context) (time.Duration, error) {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	if t.since == 0 {
		// The server's clock, not ours: event timestamps are the server's.
		now, err := t.c.Time(ctx).Result()
		if err != nil {
			return 0, fmt.Errorf("%s: TIME: %w", t.inst, err)
		}
		t.since = now.Unix()
	}
	reply, err := t.c.Do(ctx, "LATENCY", "LATEST").Slice()
	if err != nil {
		return 0, fmt.Errorf("%s: LATENCY LATEST: %w", t.inst, err)
	}
	d, err := defragCycleLatency(reply, t.since)
	if err != nil {
		return 0, fmt.Errorf("%s: LATENCY LATEST: %w", t.inst, err)
	}
	return d, nil
}

// defragEvent is the latency event active defrag logs for a cycle that
// took longer than latency-monitor-threshold.
const defragEvent = "active-defrag-cycle"

// defragCycleLatency reads the active-defrag-cycle entry of a LATENCY LATEST
// reply: [event, unix timestamp, latest ms, all-time max ms] (Valkey 8.1
// adds fields after these). Events older than since are ignored.
func defragCycleLatency(reply []any, since int64) (time.Duration, error) {
	for _, entry := range reply {
		ev, ok := entry.([]any)
		if !ok || len(ev) < 3 {
			return 0, fmt.Errorf("unexpected entry %v", entry)
		}
		if name, _ := ev[0].(string); name != defragEvent {
			continue
		}
		ts, ok1 := ev[1].(int64)
		ms, ok2 := ev[2].(int64)
		if !ok1 || !ok2 {
			return 0, fmt.Errorf("unexpected %s entry %v", defragEvent, ev)
		}
		if ts < since {
			return 0, nil
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	return 0, nil
}

// TurnOff sets activedefrag no. Builds without defrag support accept it too.
func (t *defragTarget) TurnOff(ctx context.Context) error {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	if err := t.c.ConfigSet(ctx, "activedefrag", "no").Err(); err != nil {
		return fmt.Errorf("%s: CONFIG SET activedefrag no: %w", t.inst, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }
