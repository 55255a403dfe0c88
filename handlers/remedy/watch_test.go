package remedy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// defragStep is what the fake instance answers for one sample.
type defragStep struct {
	ratio          float64
	hits, misses   int64
	ping, defrag   time.Duration
	snapErr, latEr error
}

// fakeDefragTarget plays a canned sequence of samples: no Debian
// redis-server can run active defrag, so the loop is tested against this.
type fakeDefragTarget struct {
	mu    sync.Mutex
	steps []defragStep
	next  int // index of the step the next Snapshot answers
	cur   defragStep

	turnOffs      int
	turnOffCtxErr error // ctx.Err() when TurnOff was called
	turnOffErr    error
}

func (f *fakeDefragTarget) Snapshot(ctx context.Context) (*handlers.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The last step repeats: an instance that stopped changing.
	f.cur = f.steps[min(f.next, len(f.steps)-1)]
	f.next++
	if f.cur.snapErr != nil {
		return nil, f.cur.snapErr
	}
	info := fmt.Sprintf("# Memory\r\nused_memory:1048576\r\nallocator_frag_ratio:%.2f\r\nallocator_frag_bytes:%d\r\nactive_defrag_running:25\r\n"+
		"# Stats\r\nactive_defrag_hits:%d\r\nactive_defrag_misses:%d\r\n",
		f.cur.ratio, int64(math.Round((f.cur.ratio-1)*100))<<20, f.cur.hits, f.cur.misses)
	return &handlers.Snapshot{Instance: "cache-1", Info: handlers.ParseInfo(info)}, nil
}

func (f *fakeDefragTarget) Ping(ctx context.Context) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur.ping, nil
}

func (f *fakeDefragTarget) DefragLatency(ctx context.Context) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur.defrag, f.cur.latEr
}

func (f *fakeDefragTarget) TurnOff(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.turnOffs++
	f.turnOffCtxErr = ctx.Err()
	return f.turnOffErr
}

// fragSteps is a quiet instance whose ratio follows ratios, defrag hitting
// 1000 and missing 10 per interval.
func fragSteps(ratios ...float64) []defragStep {
	steps := make([]defragStep, len(ratios))
	for i, r := range ratios {
		steps[i] = defragStep{ratio: r, hits: 5000 + 1000*int64(i), misses: 70 + 10*int64(i), ping: time.Millisecond}
	}
	return steps
}

func timerSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watchFake runs Watch in the synctest bubble of the caller and returns the
// result, the progress reports and how long the watch took on the fake clock.
func watchFake(ctx context.Context, f *fakeDefragTarget, cfg remedy.WatchConfig) (remedy.WatchResult, []remedy.Progress, time.Duration) {
	var reports []remedy.Progress
	start := time.Now()
	res := remedy.Watch(ctx, f, cfg, time.Now, timerSleep, func(p remedy.Progress) { reports = append(reports, p) })
	return res, reports, time.Since(start)
}

func TestWatchLoop(t *testing.T) {
	errConn := errors.New("connection refused")
	cfg := remedy.DefaultWatchConfig()
	iv := cfg.Interval
	cases := []struct {
		name    string
		steps   []defragStep
		cfg     func(*remedy.WatchConfig)
		reason  string
		reports int
		took    time.Duration
		lastErr error // wrapped in WatchResult.Err
	}{
		{name: "ratio falls to the target", steps: fragSteps(1.6, 1.5, 1.4, 1.3, 1.2, 1.08, 1.0),
			reason: remedy.WatchTarget, reports: 5, took: 5 * iv},
		{name: "target is inclusive", steps: fragSteps(1.6, 1.1),
			reason: remedy.WatchTarget, reports: 1, took: iv},
		// The last step repeats: no fragmented bytes freed, no hits, no
		// misses. Three such intervals are a stall.
		{name: "ratio never falls: stalled", steps: fragSteps(1.6),
			reason: remedy.WatchStalled, reports: 3, took: 3 * iv},
		{name: "a stall resets when defrag works again", steps: func() []defragStep {
			// Idle twice, one interval of hits, then idle for good.
			s := fragSteps(1.6, 1.6, 1.6, 1.6)
			s[1].hits, s[2].hits, s[3].hits = s[0].hits, s[0].hits, s[0].hits+1000
			s[1].misses, s[2].misses = s[0].misses, s[0].misses
			return s
		}(), reason: remedy.WatchStalled, reports: 6, took: 6 * iv},
		{name: "ratio never falls, stall rule off", steps: fragSteps(1.6),
			cfg:    func(c *remedy.WatchConfig) { c.StallIntervals = 0 },
			reason: remedy.WatchMaxDuration, reports: 120, took: time.Hour},
		{name: "max duration between intervals", steps: fragSteps(1.6),
			cfg:    func(c *remedy.WatchConfig) { c.MaxDuration, c.StallIntervals = 100*time.Second, 0 },
			reason: remedy.WatchMaxDuration, reports: 4, took: 100 * time.Second},
		{name: "slow ping on the third interval", steps: func() []defragStep {
			s := fragSteps(1.6, 1.5, 1.4, 1.3, 1.2)
			s[3].ping = 80 * time.Millisecond
			return s
		}(), reason: remedy.WatchLatency, reports: 3, took: 3 * iv},
		{name: "ping at the threshold is fine", steps: func() []defragStep {
			s := fragSteps(1.6, 1.5, 1.05)
			s[1].ping = 50 * time.Millisecond
			return s
		}(), reason: remedy.WatchTarget, reports: 2, took: 2 * iv},
		{name: "defrag cycle latency", steps: func() []defragStep {
			s := fragSteps(1.6, 1.5, 1.4, 1.3)
			s[2].defrag = 120 * time.Millisecond
			return s
		}(), reason: remedy.WatchLatency, reports: 2, took: 2 * iv},
		{name: "latency guard comes before the target", steps: func() []defragStep {
			s := fragSteps(1.6, 1.05)
			s[1].defrag = 120 * time.Millisecond
			return s
		}(), reason: remedy.WatchLatency, reports: 1, took: iv},
		{name: "guard already tripping at the first sample", steps: func() []defragStep {
			s := fragSteps(1.6)
			s[0].ping = 200 * time.Millisecond
			return s
		}(), reason: remedy.WatchLatency, reports: 0, took: 0},
		{name: "three failed samples", steps: append(fragSteps(1.6, 1.5), defragStep{snapErr: errConn}),
			reason: remedy.WatchError, reports: 1, took: 4 * iv, lastErr: errConn},
		{name: "failures that do not follow each other are retried", steps: func() []defragStep {
			s := fragSteps(1.6, 1.5, 1.4, 1.3, 1.2, 1.05)
			s[1].snapErr, s[2].snapErr, s[4].snapErr = errConn, errConn, errConn
			return s
		}(), reason: remedy.WatchTarget, reports: 2, took: 5 * iv},
		{name: "first samples fail", steps: func() []defragStep {
			s := fragSteps(1.6, 1.6, 1.5, 1.05)
			s[0].snapErr, s[1].snapErr = errConn, errConn
			return s
		}(), reason: remedy.WatchTarget, reports: 2, took: 3 * iv},
		{name: "failing at the time limit", steps: append(fragSteps(1.6), defragStep{snapErr: errConn}),
			cfg:    func(c *remedy.WatchConfig) { c.MaxDuration = 2 * iv },
			reason: remedy.WatchMaxDuration, reports: 0, took: 2 * iv, lastErr: errConn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := remedy.DefaultWatchConfig()
				cfg.Settle = 0 // TestWatchSettles covers it
				if tc.cfg != nil {
					tc.cfg(&cfg)
				}
				f := &fakeDefragTarget{steps: tc.steps}
				res, reports, took := watchFake(context.Background(), f, cfg)
				if res.Reason != tc.reason || len(reports) != tc.reports || took != tc.took {
					t.Errorf("reason %q after %d reports and %s, want %q after %d and %s (err %v)",
						res.Reason, len(reports), took, tc.reason, tc.reports, tc.took, res.Err)
				}
				if f.turnOffs != 1 || !res.TurnedOff {
					t.Errorf("TurnOff called %d times, TurnedOff %v", f.turnOffs, res.TurnedOff)
				}
				if tc.lastErr != nil && !errors.Is(res.Err, tc.lastErr) {
					t.Errorf("err = %v, want it to wrap %v", res.Err, tc.lastErr)
				}
				if tc.lastErr == nil && res.Err != nil {
					t.Errorf("err = %v", res.Err)
				}
				for i, p := range reports {
					if i > 0 && !p.At.After(reports[i-1].At) {
						t.Errorf("report %d at %s, not after %s", i, p.At, reports[i-1].At)
					}
					if p.Elapsed%iv != 0 && p.Elapsed != cfg.MaxDuration {
						t.Errorf("report %d at %s: off the interval schedule", i, p.Elapsed)
					}
				}
				if len(reports) > 0 && reports[len(reports)-1] != res.Last {
					t.Errorf("last report %+v, result's Last %+v", reports[len(reports)-1], res.Last)
				}
			})
		})
	}
}

func TestWatchReportsDeltasFromTheFirstSample(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		f := &fakeDefragTarget{steps: fragSteps(1.6, 1.4, 1.2, 1.05)}
		res, reports, _ := watchFake(context.Background(), f, remedy.DefaultWatchConfig())
		iv := remedy.DefaultWatchConfig().Interval
		want := []remedy.Progress{
			{At: start.Add(iv), Elapsed: iv, AllocFragRatio: 1.4, AllocFragBytes: 40 << 20, Used: 1 << 20, Hits: 1000, Misses: 10, Running: 25, PingRTT: time.Millisecond},
			{At: start.Add(2 * iv), Elapsed: 2 * iv, AllocFragRatio: 1.2, AllocFragBytes: 20 << 20, Used: 1 << 20, Hits: 2000, Misses: 20, Running: 25, PingRTT: time.Millisecond},
			{At: start.Add(3 * iv), Elapsed: 3 * iv, AllocFragRatio: 1.05, AllocFragBytes: 5 << 20, Used: 1 << 20, Hits: 3000, Misses: 30, Running: 25, PingRTT: time.Millisecond},
		}
		if len(reports) != len(want) {
			t.Fatalf("%d reports, want %d: %+v", len(reports), len(want), reports)
		}
		for i := range want {
			if reports[i] != want[i] {
				t.Errorf("report %d = %+v, want %+v", i, reports[i], want[i])
			}
		}
		first := remedy.Progress{At: start, AllocFragRatio: 1.6, AllocFragBytes: 60 << 20, Used: 1 << 20, Running: 25, PingRTT: time.Millisecond}
		if res.First != first || res.Last != want[2] {
			t.Errorf("First %+v, Last %+v", res.First, res.Last)
		}
	})
}

func TestWatchCounterReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := fragSteps(1.6, 1.5, 1.05)
		steps[2].hits, steps[2].misses = 300, 4 // CONFIG RESETSTAT between samples
		res, _, _ := watchFake(context.Background(), &fakeDefragTarget{steps: steps}, remedy.DefaultWatchConfig())
		if res.Last.Hits != 300 || res.Last.Misses != 4 {
			t.Errorf("after a reset: hits %d, misses %d; want the counters since the reset", res.Last.Hits, res.Last.Misses)
		}
	})
}

func TestWatchStoppedTurnsDefragOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		iv := remedy.DefaultWatchConfig().Interval
		// The bot shuts down between the second and third interval.
		time.AfterFunc(2*iv+iv/2, cancel)
		f := &fakeDefragTarget{steps: fragSteps(1.6, 1.5, 1.4, 1.3, 1.2, 1.05)}
		res, reports, took := watchFake(ctx, f, remedy.DefaultWatchConfig())
		if res.Reason != remedy.WatchStopped || len(reports) != 2 || took != 2*iv+iv/2 {
			t.Errorf("reason %q after %d reports and %s", res.Reason, len(reports), took)
		}
		if f.turnOffs != 1 || !res.TurnedOff || f.turnOffCtxErr != nil {
			t.Errorf("TurnOff called %d times on a context with error %v; TurnedOff %v", f.turnOffs, f.turnOffCtxErr, res.TurnedOff)
		}
		if res.Err != nil {
			t.Errorf("err = %v", res.Err)
		}
	})
}

func TestWatchCancelledBeforeItStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f := &fakeDefragTarget{steps: fragSteps(1.6)}
		res, reports, _ := watchFake(ctx, f, remedy.DefaultWatchConfig())
		if res.Reason != remedy.WatchStopped || len(reports) != 0 || f.turnOffs != 1 || f.turnOffCtxErr != nil {
			t.Errorf("reason %q, %d reports, %d turn-offs (ctx error %v)", res.Reason, len(reports), f.turnOffs, f.turnOffCtxErr)
		}
	})
}

func TestWatchTurnOffFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errDenied := errors.New("NOPERM this user has no permissions to run the 'config|set' command")
		f := &fakeDefragTarget{steps: fragSteps(1.6, 1.05), turnOffErr: errDenied}
		res, _, _ := watchFake(context.Background(), f, remedy.DefaultWatchConfig())
		if res.Reason != remedy.WatchTarget || res.TurnedOff || !errors.Is(res.Err, errDenied) || f.turnOffs != 1 {
			t.Errorf("reason %q, TurnedOff %v, err %v, %d turn-offs", res.Reason, res.TurnedOff, res.Err, f.turnOffs)
		}
	})
}

func TestWatchLatencyUnavailableDegrades(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := fragSteps(1.6, 1.5, 1.4, 1.3, 1.05)
		for i := range steps {
			steps[i].latEr = errors.New("NOPERM latency")
		}
		res, reports, _ := watchFake(context.Background(), &fakeDefragTarget{steps: steps}, remedy.DefaultWatchConfig())
		if res.Reason != remedy.WatchTarget || len(reports) != 4 {
			t.Errorf("reason %q after %d reports: a refused LATENCY LATEST must not stop the watch", res.Reason, len(reports))
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "PING only") {
			t.Errorf("warnings = %q", res.Warnings)
		}
	})
}

func TestTargetOnRealServer(t *testing.T) {
	const pass = "remediate-secret"
	srv := redistest.StartT(t, "--requirepass", pass, "--enable-debug-command", "yes")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: pass, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fragment(ctx, c, 100_000); err != nil {
		t.Fatal(err)
	}
	// Diagnosis has a credential that cannot write; the target must use the
	// remediation one.
	inst := handlers.Instance{Name: "frag-1", Addr: srv.Addr, Password: "read-only-wrong",
		Remediation: handlers.Remediation{Password: pass}, Thresholds: handlers.DefaultThresholds()}
	e, _ := executor(t)
	target, closeTarget := e.Target(inst)
	t.Cleanup(func() { _ = closeTarget() })

	s, err := target.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"allocator_frag_ratio", "allocator_frag_bytes", "active_defrag_hits", "active_defrag_misses", "active_defrag_running"} {
		if !s.Info.Has(key) {
			t.Errorf("snapshot lacks %s", key)
		}
	}
	if ratio, _ := s.Float("allocator_frag_ratio"); ratio < 1.1 {
		t.Errorf("allocator_frag_ratio %.2f after Fragment: the test lost its fragmented instance", ratio)
	}
	if rtt, err := target.Ping(ctx); err != nil || rtt <= 0 {
		t.Errorf("Ping = %s, %v", rtt, err)
	}
	if d, err := target.DefragLatency(ctx); err != nil || d != 0 {
		t.Errorf("DefragLatency with no events = %s, %v", d, err)
	}
	// Other events are not the defrag cycle's.
	if err := c.ConfigSet(ctx, "latency-monitor-threshold", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "DEBUG", "SLEEP", "0.02").Err(); err != nil {
		t.Fatal(err)
	}
	if latest := c.Do(ctx, "LATENCY", "LATEST").Val(); len(latest.([]any)) == 0 {
		t.Fatal("DEBUG SLEEP logged no latency event")
	}
	if d, err := target.DefragLatency(ctx); err != nil || d != 0 {
		t.Errorf("DefragLatency with only a command event = %s, %v", d, err)
	}
	if err := target.TurnOff(ctx); err != nil {
		t.Errorf("TurnOff: %v", err)
	}
	if v := c.ConfigGet(ctx, "activedefrag").Val()["activedefrag"]; v != "no" {
		t.Errorf("activedefrag = %q", v)
	}
}

func TestWatchOnRealServer(t *testing.T) {
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fragment(ctx, c, 100_000); err != nil {
		t.Fatal(err)
	}
	inst := handlers.Instance{Name: "frag-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	e, _ := executor(t)
	for _, maxDuration := range []time.Duration{0, 150 * time.Millisecond} {
		t.Run("max duration "+maxDuration.String(), func(t *testing.T) {
			target, closeTarget := e.Target(inst)
			defer closeTarget()
			// A generous guard: a loaded CI machine under -race must not
			// trip it.
			cfg := remedy.WatchConfig{Interval: 30 * time.Millisecond, MaxDuration: maxDuration, TargetRatio: 1.1, MaxLatency: 2 * time.Second}
			reports := 0
			start := time.Now()
			res := remedy.Watch(ctx, target, cfg, time.Now, nil, func(remedy.Progress) { reports++ })
			if res.Reason != remedy.WatchMaxDuration && res.Reason != remedy.WatchTarget {
				t.Fatalf("reason %q, err %v", res.Reason, res.Err)
			}
			if !res.TurnedOff || res.Err != nil {
				t.Errorf("TurnedOff %v, err %v", res.TurnedOff, res.Err)
			}
			if res.First.At.IsZero() || res.First.AllocFragRatio <= 0 || res.First.PingRTT <= 0 || res.Last.At.Before(res.First.At) {
				t.Errorf("First %+v, Last %+v", res.First, res.Last)
			}
			if res.Reason == remedy.WatchMaxDuration && (res.Last.Elapsed < maxDuration || reports < int(maxDuration/cfg.Interval)) {
				t.Errorf("stopped after %s and %d reports, before the maximum duration %s", res.Last.Elapsed, reports, maxDuration)
			}
			if took := time.Since(start); took > maxDuration+5*time.Second {
				t.Errorf("watch took %s", took)
			}
		})
	}
	if v := c.ConfigGet(ctx, "activedefrag").Val()["activedefrag"]; v != "no" {
		t.Errorf("activedefrag = %q", v)
	}
}

func TestWatchRealServerGoneAway(t *testing.T) {
	srv := redistest.StartT(t)
	inst := handlers.Instance{Name: "gone-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	srv.Stop()
	e, _ := executor(t)
	target, closeTarget := e.Target(inst)
	defer closeTarget()
	cfg := remedy.WatchConfig{Interval: 10 * time.Millisecond, MaxDuration: time.Minute, TargetRatio: 1.1, MaxLatency: time.Second}
	res := remedy.Watch(context.Background(), target, cfg, time.Now, nil, nil)
	if res.Reason != remedy.WatchError || res.TurnedOff || res.Err == nil || !strings.Contains(res.Err.Error(), "3 samples in a row failed") {
		t.Errorf("reason %q, TurnedOff %v, err %v", res.Reason, res.TurnedOff, res.Err)
	}
	if !res.First.At.IsZero() {
		t.Errorf("First = %+v with no successful sample", res.First)
	}
}

// latencyServer is a minimal RESP2 server answering TIME with serverTime and
// LATENCY LATEST with *latest, for the one thing a Debian redis-server cannot
// show: an active-defrag-cycle event. Everything else is refused, which
// go-redis's HELLO accepts as an old server.
func latencyServer(t *testing.T, serverTime int64, latest *atomic.Pointer[string]) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					args, err := readRESPCommand(r)
					if err != nil {
						return
					}
					reply := "-ERR unknown command\r\n"
					switch strings.ToUpper(strings.Join(args, " ")) {
					case "TIME":
						ts := strconv.FormatInt(serverTime, 10)
						reply = "*2\r\n$" + strconv.Itoa(len(ts)) + "\r\n" + ts + "\r\n$1\r\n0\r\n"
					case "LATENCY LATEST":
						reply = *latest.Load()
					}
					if _, err := io.WriteString(conn, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func readRESPCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	args := make([]string, n)
	for i := range args {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		arg, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		args[i] = strings.TrimSuffix(arg, "\r\n")
	}
	return args, nil
}

func latencyEntry(fields ...any) string {
	s := "*" + strconv.Itoa(len(fields)) + "\r\n"
	for _, f := range fields {
		switch v := f.(type) {
		case string:
			s += "$" + strconv.Itoa(len(v)) + "\r\n" + v + "\r\n"
		case int:
			s += ":" + strconv.Itoa(v) + "\r\n"
		}
	}
	return s
}

func TestTargetDefragLatencyEvents(t *testing.T) {
	const now = 1_700_000_000
	var latest atomic.Pointer[string]
	set := func(entries ...string) {
		s := "*" + strconv.Itoa(len(entries)) + "\r\n" + strings.Join(entries, "")
		latest.Store(&s)
	}
	// An event of an earlier defrag run, an hour before the watch.
	set(latencyEntry("command", now-10, 250, 1001), latencyEntry("active-defrag-cycle", now-3600, 300, 300))
	e, _ := executor(t)
	target, closeTarget := e.Target(handlers.Instance{Name: "fake-1", Addr: latencyServer(t, now, &latest)})
	defer closeTarget()
	ctx := context.Background()

	if d, err := target.DefragLatency(ctx); err != nil || d != 0 {
		t.Errorf("with a stale event: %s, %v; want 0", d, err)
	}
	set(latencyEntry("command", now-10, 250, 1001), latencyEntry("active-defrag-cycle", now+5, 120, 300))
	if d, err := target.DefragLatency(ctx); err != nil || d != 120*time.Millisecond {
		t.Errorf("with a fresh event: %s, %v; want 120ms", d, err)
	}
	// Valkey 8.1 adds the sum and count of the series.
	set(latencyEntry("active-defrag-cycle", now+35, 80, 300, 500, 4))
	if d, err := target.DefragLatency(ctx); err != nil || d != 80*time.Millisecond {
		t.Errorf("Valkey 8.1 form: %s, %v; want 80ms", d, err)
	}
	set(latencyEntry("active-defrag-cycle", now+65, "soon"))
	if _, err := target.DefragLatency(ctx); err == nil {
		t.Error("a malformed entry was accepted")
	}
}
