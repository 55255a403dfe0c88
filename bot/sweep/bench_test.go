package sweep_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// Fleet of the sweep benchmark: 5% blackholed (accept, never answer) and 5%
// slow, spread evenly through the config order so every concurrency bound
// meets them the way a real fleet would.
const (
	fleetSize  = 1000
	slowDelay  = 500 * time.Millisecond
	blackholes = fleetSize / 20
)

func fleetMix(i int) (resptest.Behavior, time.Duration) {
	switch i % 20 {
	case 7:
		return resptest.Blackhole, 0
	case 17:
		return resptest.Slow, slowDelay
	}
	return resptest.Healthy, 0
}

// oomInfo makes 1% of the healthy instances reject writes, so the first
// sweep also renders and posts alerts (oom-rejecting fires at once).
func oomInfo(i int) string {
	if i%100 == 3 {
		return resptest.DefaultInfo + "errorstat_OOM:count=12\r\n"
	}
	return ""
}

// BenchmarkSweep1000 is the target of the sweeps issue: a sweep of 1,000
// instances, 5% blackholed and 5% slow, completes within the probe timeout
// + 1 s with the default concurrency, and the bot's RSS stays under 150 MB.
//
// Everything but Slack is real: handlers.Service and probe.Prober with the
// default probe timeout, a bbolt store (also the service's history, as in
// serve), a Leader holding the lease, and the Sweeper. The Poster only
// counts: Slack's latency is not what is measured here (see
// bot/slackbot's benchmarks for that).
//
// Each variant starts with a new prober and store, so its first sweep is
// cold (1,000 connects, the alerts' first posts) and the others are steady
// state. The servers live in this process: peak-RSS-MB includes them, and
// base-RSS-MB is the process with the servers before the variant's first
// sweep.
func BenchmarkSweep1000(b *testing.B) {
	if err := resptest.RaiseFileLimit(3*fleetSize + 512); err != nil {
		b.Skip(err)
	}
	servers, err := resptest.StartMany(fleetSize, fleetMix, oomInfo)
	if err != nil {
		b.Fatal(err)
	}
	defer resptest.CloseAll(servers)
	instances := make([]handlers.Instance, len(servers))
	for i, s := range servers {
		instances[i] = handlers.Instance{Name: fmt.Sprintf("cache-%04d", i), Addr: s.Addr, Tags: []string{"cache"}, Thresholds: handlers.DefaultThresholds()}
	}

	variants := []int{16, 64, 128, 256, 1000}
	if !slices.Contains(variants, config.DefaultProbeConcurrency) {
		variants = append(variants, config.DefaultProbeConcurrency)
	}
	for _, c := range variants {
		name := fmt.Sprintf("concurrency=%d", c)
		if c == config.DefaultProbeConcurrency {
			name += "_default"
		}
		b.Run(name, func(b *testing.B) { benchSweep(b, instances, c) })
	}
}

func benchSweep(b *testing.B, instances []handlers.Instance, concurrency int) {
	// Measure this variant alone: return what earlier ones left to the
	// OS and restart the kernel's high-water mark.
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(b)
	base := procStatus(b)

	st := openStore(b, nil)
	p := probe.New(config.DefaultProbeTimeout, nil)
	defer p.Close()
	fleet := &countingFleet{Service: handlers.NewService(instances, p, st, concurrency, nil)}
	poster := &countingPoster{}
	sw := sweep.New(sweep.Options{
		Fleet: fleet, Store: st, Poster: poster, Leader: startLeader(b, st, "bench"),
		ChannelFor: func([]string) string { return alertsChannel }, OnCallGroup: "S0ONCALL", Log: discard,
	})
	heap := watchHeap()

	var total, slowest time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		sw.Tick(context.Background())
		d := time.Since(start)
		total += d
		slowest = max(slowest, d)
		// The sweep measured must be the one described: every blackhole
		// timed out, nothing else failed.
		if n := fleet.unreachable.Load(); n != blackholes {
			b.Fatalf("%d unreachable instances in a sweep, want the %d blackholes", n, blackholes)
		}
	}
	b.StopTimer()
	peakHeap := heap()
	end := procStatus(b)

	b.ReportMetric(total.Seconds()/float64(b.N), "s/sweep")
	b.ReportMetric(slowest.Seconds(), "max-s/sweep")
	b.ReportMetric(time.Duration(fleet.probing.Load()).Seconds()/float64(b.N), "probe-s/sweep")
	b.ReportMetric(mb(end["VmHWM"]), "peak-RSS-MB")
	b.ReportMetric(mb(base["VmRSS"]), "base-RSS-MB")
	b.ReportMetric(mb(peakHeap), "peak-heap-MB")
	b.ReportMetric(float64(poster.calls.Load())/float64(b.N), "posts/sweep")
}

// countingFleet counts the unreachable instances of the last sweep and
// times the probing part of each sweep.
type countingFleet struct {
	*handlers.Service
	unreachable atomic.Int64
	probing     atomic.Int64 // total ns in Fleet
}

func (f *countingFleet) Fleet(ctx context.Context, tag string, timedOut map[string]bool) ([]*handlers.Report, error) {
	start := time.Now()
	reports, err := f.Service.Fleet(ctx, tag, timedOut)
	f.probing.Add(int64(time.Since(start)))
	n := 0
	for _, r := range reports {
		if r.Failed() {
			n++
		}
	}
	f.unreachable.Store(int64(n))
	return reports, err
}

// countingPoster stands in for Slack: it counts calls and answers at once.
type countingPoster struct{ calls atomic.Int64 }

func (p *countingPoster) Post(context.Context, string, blockkit.Message) (string, error) {
	n := p.calls.Add(1)
	return "1800000000." + strconv.FormatInt(n, 10), nil
}

func (p *countingPoster) Update(context.Context, string, string, blockkit.Message) error {
	p.calls.Add(1)
	return nil
}

func (p *countingPoster) Reply(context.Context, string, string, blockkit.Message) error {
	p.calls.Add(1)
	return nil
}

// watchHeap samples the Go heap in use (HeapInuse: objects and the free
// space of their spans) every 5 ms until the returned function is called,
// which returns the peak.
func watchHeap() (stop func() uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	read := func() uint64 {
		metrics.Read(samples)
		return samples[0].Value.Uint64() + samples[1].Value.Uint64()
	}
	var (
		mu   sync.Mutex
		peak = read()
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				v := read()
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return max(peak, read())
	}
}

// resetPeakRSS restarts VmHWM from the current RSS (Linux: clear_refs 5),
// so each variant's peak is its own.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset, it covers the whole run: %v", err)
	}
}

// procStatus reads the kB fields of /proc/self/status (VmRSS, VmHWM).
func procStatus(b *testing.B) map[string]uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		if n, err := strconv.ParseUint(fields[0], 10, 64); err == nil {
			out[name] = n << 10
		}
	}
	return out
}

func mb(bytes uint64) float64 { return float64(bytes) / (1 << 20) }
