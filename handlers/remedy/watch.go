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

// WatchConfig bounds an active-defrag run and says when it has stopped
// helping. Start from DefaultWatchConfig: the fields are used as given (a
// zero MaxLatency trips the guard on every sample, a zero MaxDuration stops
// at the first one, a zero StallIntervals, RSSGrowth or IgnoreBytes turns
// that rule off), except a non-positive Interval, which falls back to the
// default.
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

	// StallIntervals: defrag stops after this many intervals in a row
	// without progress. An interval made progress when allocator_frag_bytes
	// fell by more than StallShare of it (and at least 1 MiB), or when
	// defrag worked: active_defrag_running above IdleRunning and hits at
	// least MinHitRatio of hits+misses. Redis 7.4+ and Valkey 8 plateau at
	// an allocator_frag_ratio of 1.11-1.12 and then only miss.
	StallIntervals int
	StallShare     float64
	MinHitRatio    float64
	IdleRunning    int64
	// RSSGrowth: defrag stops when the RSS beyond the data (used_memory_rss
	// minus used_memory) has grown by more than this share of the starting
	// RSS (and at least 16 MiB) above its lowest point in the run: defrag
	// is making memory worse (the Redis 7.2 defect of issue #13612).
	RSSGrowth float64
	// IgnoreBytes is the active-defrag-ignore-bytes defrag-on set: once
	// allocator_frag_bytes is below it the server does not defrag any
	// more, so the watch stops. Not in config: the bot reads it from the
	// approved plan.
	IgnoreBytes int64
	// Settle is how long after turning defrag off the final numbers are
	// read: jemalloc hands freed pages back to the kernel over seconds
	// (dirty and muzzy decay), so RSS read at once understates the gain.
	Settle time.Duration
}

// DefaultWatchConfig is the conservative profile of the runbooks.
func DefaultWatchConfig() WatchConfig {
	return WatchConfig{
		Interval: 30 * time.Second, MaxDuration: time.Hour, TargetRatio: 1.1, MaxLatency: 50 * time.Millisecond,
		StallIntervals: 3, StallShare: 0.02, MinHitRatio: 0.05, IdleRunning: 1,
		RSSGrowth: 0.05, Settle: 15 * time.Second,
	}
}

// minFlatBytes and minRSSGrowth keep the progress and RSS rules from
// reacting to noise on small instances.
const (
	minFlatBytes = 1 << 20
	minRSSGrowth = 16 << 20
)

// Progress is one sample of a defrag run.
type Progress struct {
	At      time.Time
	Elapsed time.Duration // since the watch started

	AllocFragRatio float64
	AllocFragBytes int64
	// RSS is used_memory_rss, Used used_memory and FragRatio
	// mem_fragmentation_ratio, 0 when INFO lacks them.
	RSS, Used int64
	FragRatio float64
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
	WatchIgnoreBytes = "ignore-bytes"
	WatchStalled     = "stalled"
	WatchRSSGrowth   = "rss-growth"
	WatchMaxDuration = "max-duration"
	WatchLatency     = "latency"
	WatchStopped     = "stopped"
	WatchError       = "error"
)

// WatchResult is the final report of a defrag run.
type WatchResult struct {
	// Reason is one of the Watch* reasons: WatchStopped when the context
	// was cancelled, WatchError when the instance could not be read.
	Reason string
	// Why says in words, with the numbers, why the watch stopped.
	Why string
	// First and Last are the first and last successful samples while
	// defrag ran; zero when no sample succeeded.
	First, Last Progress
	// Final is read Settle after defrag was turned off; zero when it was
	// not read (turning off failed, the bot was stopping, INFO failed).
	Final Progress
	// TurnedOff reports that CONFIG SET activedefrag no succeeded.
	TurnedOff bool
	// Err is why samples failed (Reason WatchError) and why turning defrag
	// off failed.
	Err error
	// Warnings are problems the watch worked around, such as a LATENCY
	// LATEST the server refused: the guard then relied on PING alone.
	Warnings []string
}

// After is the sample the run's effect is judged by: the settled one when
// there is one.
func (r WatchResult) After() Progress {
	if !r.Final.At.IsZero() {
		return r.Final
	}
	return r.Last
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
// guard trips, RSS beyond the data grows, allocator_frag_ratio reaches
// TargetRatio, allocator_frag_bytes falls under IgnoreBytes, StallIntervals
// intervals in a row made no progress, MaxDuration has passed, or ctx is
// cancelled. A failed sample is retried at the next interval;
// maxSampleFailures in a row end the watch. Whatever the reason, TurnOff is
// attempted exactly once, on a context that ctx's cancellation does not
// reach; Settle later the final numbers are read. The first sample is
// decided on like the others, so a guard that already trips stops defrag
// at once.
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
	w := watcher{t: t, cfg: cfg, start: now(), now: now}
	res := w.loop(ctx, sleep, progress)

	offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), turnOffTimeout)
	defer cancel()
	if err := t.TurnOff(offCtx); err != nil {
		res.Err = errors.Join(res.Err, fmt.Errorf("turning active defrag off: %w", err))
		return res
	}
	res.TurnedOff = true
	if ctx.Err() != nil || res.First.At.IsZero() {
		return res
	}
	// The settled numbers are a report, not a guard: a failure here only
	// leaves the last sample as the result.
	if cfg.Settle > 0 && sleep(ctx, cfg.Settle) != nil {
		return res
	}
	if p, err := w.read(ctx); err == nil {
		p.Hits, p.Misses = delta(p.Hits, w.baseHits), delta(p.Misses, w.baseMis)
		res.Final = p
	}
	return res
}

// watcher holds what the samples of one watch share.
type watcher struct {
	t     DefragTarget
	cfg   WatchConfig
	start time.Time
	now   func() time.Time

	haveFirst         bool
	baseHits, baseMis int64
	warnings          []string

	// prev is the previous successful sample with raw counters, for the
	// progress of one interval; stalled counts intervals in a row without.
	prev    Progress
	stalled int
	// rss0 is the RSS of the first sample with one; minExcess the lowest
	// RSS beyond the data seen since.
	rss0, minExcess int64
}

func (w *watcher) loop(ctx context.Context, sleep func(context.Context, time.Duration) error, progress func(Progress)) WatchResult {
	var res WatchResult
	end := func(reason, why string) WatchResult {
		res.Reason, res.Why, res.Warnings = reason, why, w.warnings
		return res
	}
	failures := 0
	for n := 0; ; n++ {
		if n > 0 {
			if err := sleep(ctx, w.untilNext()); err != nil {
				return end(WatchStopped, "the bot was stopping")
			}
		}
		p, err := w.sample(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return end(WatchStopped, "the bot was stopping")
			}
			failures++
			if failures >= maxSampleFailures {
				res.Err = fmt.Errorf("%d samples in a row failed, the last: %w", failures, err)
				return end(WatchError, fmt.Sprintf("the bot could not read the instance %d times in a row", failures))
			}
			// No sample means no ratio and no latency to judge, but the
			// time limit still holds.
			if w.now().Sub(w.start) >= w.cfg.MaxDuration {
				res.Err = fmt.Errorf("last sample failed: %w", err)
				return end(WatchMaxDuration, "it ran for the maximum of "+w.cfg.MaxDuration.String())
			}
			continue
		}
		failures = 0
		raw := p
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
		if reason, why := w.decide(ctx, raw, n > 0 && !w.prev.At.IsZero()); reason != "" {
			return end(reason, why)
		}
		w.prev = raw
	}
}

// decide applies the stopping rules to a sample with raw counters; interval
// says whether a previous sample exists to measure progress against. It
// returns "" to go on.
func (w *watcher) decide(ctx context.Context, p Progress, interval bool) (reason, why string) {
	cfg := w.cfg
	switch {
	case p.PingRTT > cfg.MaxLatency || p.DefragLatency > cfg.MaxLatency:
		worst := max(p.PingRTT, p.DefragLatency)
		return WatchLatency, fmt.Sprintf("latency rose to %s, over the %s guard", worst.Round(time.Millisecond), cfg.MaxLatency)
	}
	if excess := p.RSS - p.Used; p.RSS > 0 && w.rss0 == 0 {
		w.rss0, w.minExcess = p.RSS, excess
	} else if p.RSS > 0 {
		growth := excess - w.minExcess
		limit := max(int64(cfg.RSSGrowth*float64(w.rss0)), minRSSGrowth)
		if cfg.RSSGrowth > 0 && growth > limit {
			return WatchRSSGrowth, fmt.Sprintf("RSS beyond the data grew by %s while defrag ran (from %s to %s): defrag is making memory worse on this server",
				handlers.HumanBytes(growth), handlers.HumanBytes(w.minExcess), handlers.HumanBytes(excess))
		}
		w.minExcess = min(w.minExcess, excess)
	}
	switch {
	case p.AllocFragRatio <= cfg.TargetRatio:
		return WatchTarget, fmt.Sprintf("allocator fragmentation fell to %s, at or under the target %s", handlers.Ratio(p.AllocFragRatio), handlers.Ratio(cfg.TargetRatio))
	case cfg.IgnoreBytes > 0 && p.AllocFragBytes < cfg.IgnoreBytes:
		return WatchIgnoreBytes, fmt.Sprintf("only %s is still fragmented, under active-defrag-ignore-bytes (%s): the server does not defrag less than that",
			handlers.HumanBytes(p.AllocFragBytes), handlers.HumanBytes(cfg.IgnoreBytes))
	}
	if interval && cfg.StallIntervals > 0 {
		if w.progressed(p) {
			w.stalled = 0
		} else if w.stalled++; w.stalled >= cfg.StallIntervals {
			return WatchStalled, fmt.Sprintf("no progress for %d checks in a row (%s): %s fragmented, %s",
				w.stalled, (time.Duration(w.stalled) * cfg.Interval).String(), handlers.HumanBytes(p.AllocFragBytes), w.workSince(p))
		}
	}
	switch {
	case p.Elapsed >= cfg.MaxDuration:
		return WatchMaxDuration, "it ran for the maximum of " + cfg.MaxDuration.String()
	case ctx.Err() != nil:
		return WatchStopped, "the bot was stopping"
	}
	return "", ""
}

// progressed reports whether the interval since the previous sample made
// progress: fragmented bytes fell beyond the tolerance, or defrag worked
// (running, and moving at least MinHitRatio of what it visited).
func (w *watcher) progressed(p Progress) bool {
	tol := max(int64(w.cfg.StallShare*float64(w.prev.AllocFragBytes)), minFlatBytes)
	if w.prev.AllocFragBytes-p.AllocFragBytes > tol {
		return true
	}
	hits, misses := delta(p.Hits, w.prev.Hits), delta(p.Misses, w.prev.Misses)
	if p.Running <= w.cfg.IdleRunning || hits+misses == 0 {
		return false
	}
	return float64(hits) >= w.cfg.MinHitRatio*float64(hits+misses)
}

// workSince says what defrag did in the last interval, for the stall note.
func (w *watcher) workSince(p Progress) string {
	hits, misses := delta(p.Hits, w.prev.Hits), delta(p.Misses, w.prev.Misses)
	if hits+misses == 0 || p.Running <= w.cfg.IdleRunning {
		return fmt.Sprintf("defrag idle (active_defrag_running %d%%)", p.Running)
	}
	return fmt.Sprintf("defrag moved %s of %s allocations it visited in the last check",
		handlers.Thousands(hits), handlers.Thousands(hits+misses))
}

// untilNext is the wait until the next interval boundary after now, counted
// from the start so slow samples do not make the schedule drift, and
// shortened to end exactly at MaxDuration.
func (w *watcher) untilNext() time.Duration {
	elapsed := w.now().Sub(w.start)
	next := (elapsed/w.cfg.Interval + 1) * w.cfg.Interval
	if elapsed < w.cfg.MaxDuration && next > w.cfg.MaxDuration {
		next = w.cfg.MaxDuration
	}
	return next - elapsed
}

// read takes the INFO part of a sample, with raw (lifetime) hit and miss
// counters.
func (w *watcher) read(ctx context.Context) (Progress, error) {
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
	p.RSS, _ = s.Int("used_memory_rss")
	p.Used, _ = s.Int("used_memory")
	p.FragRatio, _ = s.Float("mem_fragmentation_ratio")
	p.Hits, _ = s.Int("active_defrag_hits")
	p.Misses, _ = s.Int("active_defrag_misses")
	p.Running, _ = s.Int("active_defrag_running")
	return p, nil
}

// sample reads one Progress: INFO, then the latency guard's numbers.
func (w *watcher) sample(ctx context.Context) (Progress, error) {
	p, err := w.read(ctx)
	if err != nil {
		return Progress{}, err
	}
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
	snap := &handlers.Snapshot{
		Instance:  t.inst,
		ProbedAt:  start,
		RoundTrip: t.now().Sub(start),
		Info:      handlers.ParseInfo(memory.Val() + "\r\n" + stats.Val()),
	}
	// As in a probe: a number that cannot be true reads as unknown, so the
	// guard never judges progress from it.
	snap.Validate()
	return snap, nil
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
