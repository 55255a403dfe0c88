package keyspace

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

var (
	benchKeys = flag.Int("keyspace.keys", 1_000_000, "keys BenchmarkKeyScan loads")
	// A throttled scan runs at about 5,000 keys a second: a sample is
	// enough to measure the latency it causes.
	benchThrottled  = flag.Int64("keyspace.throttled", 150_000, "keys each throttled scan of BenchmarkKeyScan measures (its Limit)")
	benchBudgets    = flag.String("keyspace.budgets", "", "comma-separated budgets to measure besides the default, e.g. 40000,80000")
	benchIdle       = flag.Duration("keyspace.idle", 10*time.Second, "how long the latency client measures the idle server (half before, half after the throttled scans)")
	benchLatencyGap = flag.Duration("keyspace.latency-gap", time.Millisecond, "pause between the latency client's PINGs")
	benchLatency    = flag.Bool("keyspace.latency", true, "after the runs, measure what throttled scans cost other clients")
)

// BenchmarkKeyScan compares, on one real redis-server loaded with a mixed
// key space, redis-cli --memkeys with the scanner's --fast mode, and
// measures what the throttle costs other clients: the round trips of a
// client sending PING every millisecond, on the idle server and while a
// throttled scan runs. Each iteration runs redis-cli then --fast, so
// -benchtime 3x gives three of each, alternating, and logs the load
// average before each (see docs/benchmarks.md); the latency part runs once,
// after them.
func BenchmarkKeyScan(b *testing.B) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		b.Fatalf("redis-cli: %v", err)
	}
	budgets := []int{DefaultBudget}
	for f := range strings.SplitSeq(*benchBudgets, ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				b.Fatalf("-keyspace.budgets: %q is not a budget", f)
			}
			budgets = append(budgets, n)
		}
	}
	srv := redistest.StartT(b)
	ctx := context.Background()
	c := srv.Client()
	defer c.Close()
	n := *benchKeys
	began := time.Now()
	if err := loadMixed(ctx, c, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d keys in %s (used_memory %s)", n, time.Since(began).Round(time.Millisecond), usedMemory(ctx, c))
	if err := redistest.WaitQuiet(ctx, c, 100); err != nil {
		b.Fatal(err)
	}
	inst := handlers.Instance{Name: "bench", Addr: srv.Addr}
	_, port, _ := net.SplitHostPort(srv.Addr)

	s := New(5 * time.Second)
	for b.Loop() {
		cliLoad := loadavg()
		// 1. redis-cli --memkeys: SCAN (COUNT 10), then TYPE and MEMORY
		// USAGE of the page, in three round trips per page.
		cpu := serverCPU(srv.Pid())
		start := time.Now()
		out, err := exec.Command(cli, "-p", port, "--memkeys").CombinedOutput()
		cliTime := time.Since(start)
		cliCPU := serverCPU(srv.Pid()) - cpu
		if err != nil {
			b.Fatalf("redis-cli --memkeys: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`Sampled (\d+) keys`).FindSubmatch(out)
		if m == nil || string(m[1]) != strconv.Itoa(n) {
			b.Fatalf("redis-cli --memkeys did not report %d keys:\n%s", n, tail(out))
		}
		cliRate := float64(n) / cliTime.Seconds()
		b.Logf("redis-cli --memkeys: %d keys in %s (%.0f keys/s), redis-server CPU %s, load average before %s",
			n, cliTime.Round(time.Millisecond), cliRate, cliCPU, cliLoad)

		// 2. --fast.
		fastLoad := loadavg()
		cpu, self := serverCPU(srv.Pid()), selfCPU()
		fast, err := s.Scan(ctx, []handlers.Instance{inst}, handlers.KeyScanOptions{Fast: true, Limit: int64(n)})
		cpu, self = serverCPU(srv.Pid())-cpu, selfCPU()-self
		if err != nil || !fast.Complete || fast.Scanned != int64(n) || fast.Total.Keys != int64(n) {
			b.Fatalf("fast scan: %s, %v", summary(fast), err)
		}
		fastRate := float64(n) / fast.Duration.Seconds()
		b.Logf("--fast: %d keys in %s (%.0f keys/s, %.2fx redis-cli), %d commands, round trips %s to %s, redis-server CPU %s, scanner CPU %s, load average before %s",
			fast.Scanned, fast.Duration.Round(time.Millisecond), fastRate, fastRate/cliRate, fast.Throttle.Commands,
			fast.Throttle.BaselineRTT.Round(time.Microsecond), fast.Throttle.MaxRTT.Round(time.Microsecond), cpu, self, fastLoad)
		b.ReportMetric(cliRate, "cli-keys/s")
		b.ReportMetric(fastRate, "fast-keys/s")
		b.ReportMetric(fastRate/cliRate, "fast/cli")
	}
	if *benchLatency {
		// 3. What other clients see: PING round trips on the idle server
		// (half before, half after) and during a throttled scan for each
		// budget.
		idle := measureLatency(ctx, srv.Addr, func() { time.Sleep(*benchIdle / 2) })
		var err error
		var busy [][]time.Duration
		var scans []*handlers.KeyScan
		for _, budget := range budgets {
			var scan *handlers.KeyScan
			lat := measureLatency(ctx, srv.Addr, func() {
				scan, err = s.Scan(ctx, []handlers.Instance{inst}, handlers.KeyScanOptions{Limit: *benchThrottled, Budget: budget})
			})
			if err != nil || scan.Scanned != min(*benchThrottled, int64(n)) {
				b.Fatalf("throttled scan: %s, %v", summary(scan), err)
			}
			busy, scans = append(busy, lat), append(scans, scan)
		}
		idle = append(idle, measureLatency(ctx, srv.Addr, func() { time.Sleep(*benchIdle / 2) })...)
		b.Logf("PING idle: %s", latencies(idle))
		for i, scan := range scans {
			rate := float64(scan.Scanned) / scan.Duration.Seconds()
			b.Logf("budget %d: %d keys in %s (%.0f keys/s), %d commands, paused %s, %d backoffs, SCAN round trips %s to %s",
				budgets[i], scan.Scanned, scan.Duration.Round(time.Millisecond), rate, scan.Throttle.Commands,
				scan.Throttle.Paused.Round(time.Millisecond), scan.Throttle.Backoffs,
				scan.Throttle.BaselineRTT.Round(time.Microsecond), scan.Throttle.MaxRTT.Round(time.Microsecond))
			b.Logf("budget %d: PING during the scan: %s; p99 %+.3f ms over idle", budgets[i], latencies(busy[i]),
				ms(percentile(busy[i], 99)-percentile(idle, 99)))
			if i == 0 { // the default
				b.ReportMetric(rate, "throttled-keys/s")
				b.ReportMetric(ms(percentile(idle, 50)), "idle-p50-ms")
				b.ReportMetric(ms(percentile(idle, 99)), "idle-p99-ms")
				b.ReportMetric(ms(percentile(busy[i], 50)), "throttled-p50-ms")
				b.ReportMetric(ms(percentile(busy[i], 99)), "throttled-p99-ms")
			}
		}
	}
}

func latencies(d []time.Duration) string {
	return fmt.Sprintf("%d samples, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms", len(d),
		ms(percentile(d, 50)), ms(percentile(d, 99)), ms(percentile(d, 99.9)), ms(percentile(d, 100)))
}

// loadMixed writes n keys shaped like a cache's: nine in ten small strings
// of 8 to 500 bytes, the rest hashes, lists, sets and sorted sets of 4 to
// 64 elements; about half with a TTL of hours (none expires during the
// benchmark), under a dozen prefixes.
func loadMixed(ctx context.Context, c *redis.Client, n int) error {
	prefixes := []string{"session:", "user:", "cart:", "feed:", "rate:", "lock:", "cfg:", "tmp:", "idx:", "q:", "geo:", "tok:"}
	values := make([]string, 64)
	for i := range values {
		values[i] = strings.Repeat("v", 8+i*i/8) // 8 .. 504 bytes
	}
	field := strings.Repeat("h", 40)
	const batch = 20_000
	for from := 0; from < n; from += batch {
		p := c.Pipeline()
		for i := from; i < min(from+batch, n); i++ {
			key := prefixes[i%len(prefixes)] + strconv.Itoa(i)
			ttl := time.Duration(0)
			if i%2 == 0 {
				ttl = time.Duration(1+i%24) * time.Hour
			}
			elems := 4 + i%61
			switch i % 40 {
			case 1:
				args := make([]any, 0, 2*elems)
				for e := range elems {
					args = append(args, "f"+strconv.Itoa(e), field[:8+e%32])
				}
				p.HSet(ctx, key, args...)
			case 2:
				args := make([]any, elems)
				for e := range elems {
					args[e] = values[e%16]
				}
				p.RPush(ctx, key, args...)
			case 3:
				args := make([]any, elems)
				for e := range elems {
					args[e] = "m" + strconv.Itoa(e)
				}
				p.SAdd(ctx, key, args...)
			case 4:
				zs := make([]redis.Z, elems)
				for e := range elems {
					zs[e] = redis.Z{Score: float64(e), Member: "m" + strconv.Itoa(e)}
				}
				p.ZAdd(ctx, key, zs...)
			default:
				p.Set(ctx, key, values[(i*7)%len(values)], ttl)
				continue
			}
			if ttl > 0 {
				p.Expire(ctx, key, ttl)
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	return nil
}

// measureLatency PINGs addr from a client of its own, one PING every
// -keyspace.latency-gap, while during runs, and returns every round trip.
func measureLatency(ctx context.Context, addr string, during func()) []time.Duration {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, PoolSize: 1, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil { // connect outside the measurement
		return nil
	}
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		samples []time.Duration
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			if err := c.Ping(ctx).Err(); err == nil {
				samples = append(samples, time.Since(start))
			}
			time.Sleep(*benchLatencyGap)
		}
	})
	during()
	close(stop)
	wg.Wait()
	return samples
}

// loadavg is the machine's load: the benchmark shares it with whatever
// else runs, and redis-cli, bound by its round trips, suffers most.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// serverCPU is the CPU time redis-server pid has used.
func serverCPU(pid int) time.Duration {
	text, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces).
	f := strings.Fields(string(text[strings.LastIndexByte(string(text), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func usedMemory(ctx context.Context, c *redis.Client) string {
	v, _ := handlers.ParseInfo(c.Info(ctx, "memory").Val()).String("used_memory_human")
	return v
}

func tail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

func summary(s *handlers.KeyScan) string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("scanned %d, total %d, vanished %d, complete %v, stopped %q, %s",
		s.Scanned, s.Total.Keys, s.Vanished, s.Complete, s.Stopped, s.Duration)
}
