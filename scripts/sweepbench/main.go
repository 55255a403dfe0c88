// Command sweepbench times serve's sweeps over a fleet written by
// scripts/hostilefleet, for scripts/bench-sweep-faults.sh (issue 18: a
// sweep of 10,000 instances with faults within the probe timeout + 3 s).
//
// It wires what serve wires for a sweep: probe.Prober (pooled clients)
// behind handlers.Service, a bbolt store (also the service's history), a
// Leader holding the lease and the Sweeper, whose Tick it calls -sweeps
// times one after the other. Only Slack is left out: the poster counts.
// Each sweep prints one line: the whole Tick, the probe stage (from the
// Tick's start to the end of its last probe: observe without the store
// reads) and the probes that failed, by class, the bot's CPU, its peak
// RSS and its live heap after the sweep.
//
// The source builds against the code before issue 18's short first
// probes too (the benchmark's baseline): it sets the service's probe
// timeout only where the service has SetProbeTimeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
)

func main() {
	configs := flag.String("config", "", "comma-separated hostilefleet configs whose instances make the fleet (required)")
	concurrency := flag.Int("concurrency", 128, "probe.concurrency")
	timeout := flag.Duration("timeout", 2*time.Second, "probe.timeout")
	sweeps := flag.Int("sweeps", 3, "sweeps to run, one after the other")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the sweeps after the first (the steady state) to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile after the last sweep (after a GC: what the bot holds between sweeps) to this file")
	flag.Parse()
	if err := run(strings.Split(*configs, ","), *concurrency, *timeout, *sweeps, *profile, *memProfile); err != nil {
		fmt.Fprintf(os.Stderr, "sweepbench: %v\n", err)
		os.Exit(1)
	}
}

// fleetFile is the part of a hostilefleet config read here.
type fleetFile struct {
	Instances []struct {
		Name string `yaml:"name"`
		Addr string `yaml:"addr"`
	} `yaml:"instances"`
}

func readFleet(paths []string) ([]handlers.Instance, error) {
	var out []handlers.Instance
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var f fleetFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, in := range f.Instances {
			out = append(out, handlers.Instance{Name: in.Name, Addr: in.Addr, Tags: []string{"cache"}, Thresholds: handlers.DefaultThresholds()})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no instances: pass -config")
	}
	return out, nil
}

func run(configs []string, concurrency int, timeout time.Duration, sweeps int, profile, memProfile string) error {
	instances, err := readFleet(configs)
	if err != nil {
		return err
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sweepbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "redisbot.db")})
	if err != nil {
		return err
	}
	defer st.Close()
	p := probe.New(timeout, nil)
	defer p.Close()
	timed := &timedProber{Prober: p}
	svc := handlers.NewService(instances, timed, st, concurrency, nil)
	if s, ok := any(svc).(interface{ SetProbeTimeout(time.Duration) }); ok {
		s.SetProbeTimeout(timeout)
	}
	stages := &stagesHandler{}
	log := slog.New(stages)
	leader := sweep.NewLeader(st, "scheduler", "bench", time.Minute, log, nil)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go leader.Run(lctx)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := leader.Token(); ok {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the leader never took the lease")
		}
	}
	sw := sweep.New(sweep.Options{Fleet: svc, Store: st, Poster: &countingPoster{}, Leader: leader,
		ChannelFor: func([]string) string { return "C0ALERTS" }, Log: log})
	for n := 1; n <= sweeps; n++ {
		if n == 2 && profile != "" {
			f, err := os.Create(profile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
		timed.reset()
		cpu := cpuTime()
		began := time.Now()
		sw.Tick(ctx)
		tick := time.Since(began)
		cpu = cpuTime() - cpu
		probes, failed, last := timed.result()
		peak := peakRSS()
		fmt.Printf("sweep %d: instances %d, tick %.2f s, probe stage %.2f s, probes %d, failed %s, cpu %.2f s, peak rss %d MiB, live heap %d MiB, stages %s\n",
			n, len(instances), tick.Seconds(), last.Sub(began).Seconds(), probes, failed, cpu.Seconds(), peak>>20, liveHeap()>>20, stages.last())
	}
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	return nil
}

// liveHeap is what the heap holds after a full GC: what the bot keeps
// between sweeps, where the peak RSS is what a sweep adds on top (up to
// the GC goal). The GC it forces runs after the sweep's CPU is counted.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// cpuTime is the CPU this process has used (user and system): what a
// sweep costs the bot, apart from the fleet servers on the same machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the most memory this process has held, in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10 // KiB on Linux
}

// timedProber counts a sweep's probes and the failures of each instance's
// last probe, by class, and when the last probe ended.
type timedProber struct {
	handlers.Prober
	probes atomic.Int64
	mu     sync.Mutex
	class  map[string]handlers.ErrorClass
	last   time.Time
}

func (t *timedProber) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probes.Store(0)
	t.class = map[string]handlers.ErrorClass{}
	t.last = time.Time{}
}

func (t *timedProber) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	t.probes.Add(1)
	snap, err := t.Prober.Probe(ctx, inst)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.class[inst.Name] = handlers.ClassOf(err)
	if now := time.Now(); now.After(t.last) {
		t.last = now
	}
	return snap, err
}

// result returns the probes, the failures by class ("timeout=500
// refused=200") and when the last probe ended.
func (t *timedProber) result() (int64, string, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	counts := map[string]int{}
	for _, c := range t.class {
		if c != "" {
			counts[string(c)]++
		}
	}
	var parts []string
	for c, n := range counts {
		parts = append(parts, c+"="+strconv.Itoa(n))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	return t.probes.Load(), strings.Join(parts, " "), t.last
}

// stagesHandler keeps the stages of the last "sweep done" log line (code
// that logs none, the baseline's, shows "-") and drops every other record.
type stagesHandler struct {
	mu     sync.Mutex
	stages string
}

func (h *stagesHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *stagesHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *stagesHandler) WithGroup(string) slog.Handler            { return h }

func (h *stagesHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sweep done" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stages" {
			h.mu.Lock()
			h.stages = a.Value.String()
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *stagesHandler) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stages == "" {
		return "-"
	}
	s := h.stages
	h.stages = ""
	return s
}

// countingPoster stands in for Slack, answering at once.
type countingPoster struct{ calls atomic.Int64 }

func (p *countingPoster) Post(context.Context, string, blockkit.Message) (string, error) {
	return "1800000000." + strconv.FormatInt(p.calls.Add(1), 10), nil
}

func (p *countingPoster) Update(context.Context, string, string, blockkit.Message) error {
	p.calls.Add(1)
	return nil
}

func (p *countingPoster) Reply(context.Context, string, string, blockkit.Message) error {
	p.calls.Add(1)
	return nil
}
