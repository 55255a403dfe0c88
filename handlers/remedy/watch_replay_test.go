package remedy_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// runSample is one line of a recorded defrag run (testdata/defrag-runs): what
// INFO said t after CONFIG SET activedefrag yes.
type runSample struct {
	t                     time.Duration
	rss, used, fragBytes  int64
	allocRatio, memRatio  float64
	hits, misses, running int64
	activedefrag          string
	before                bool // the "before:" line, taken before defrag was turned on
	line                  int
}

var runField = regexp.MustCompile(`(\w+)=\s*(\S+)`)

// loadRun parses a recorded run. Lines are "t=  15.2s rss=334.6MiB
// used=223.2MiB allocator_frag_ratio=1.12 allocator_frag_bytes=26.1MiB
// mem_frag=1.50 hits=2506500 misses=1493502 running=0 activedefrag=yes";
// "#" lines are comments.
func loadRun(t *testing.T, name string) []runSample {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "defrag-runs", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var run []runSample
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := runSample{line: n, before: strings.HasPrefix(line, "before:")}
		seen := map[string]bool{}
		for _, m := range runField.FindAllStringSubmatch(line, -1) {
			key, val := m[1], m[2]
			seen[key] = true
			var err error
			switch key {
			case "t":
				var secs float64
				secs, err = strconv.ParseFloat(strings.TrimSuffix(val, "s"), 64)
				s.t = time.Duration(secs * float64(time.Second))
			case "rss":
				s.rss, err = mib(val)
			case "used":
				s.used, err = mib(val)
			case "allocator_frag_bytes":
				s.fragBytes, err = mib(val)
			case "allocator_frag_ratio":
				s.allocRatio, err = strconv.ParseFloat(val, 64)
			case "mem_frag":
				s.memRatio, err = strconv.ParseFloat(val, 64)
			case "hits":
				s.hits, err = strconv.ParseInt(val, 10, 64)
			case "misses":
				s.misses, err = strconv.ParseInt(val, 10, 64)
			case "running":
				s.running, err = strconv.ParseInt(val, 10, 64)
			case "activedefrag":
				s.activedefrag = val
			default:
				err = fmt.Errorf("unknown field")
			}
			if err != nil {
				t.Fatalf("%s:%d: %s=%s: %v", name, n, key, val, err)
			}
		}
		for _, k := range []string{"t", "rss", "used", "allocator_frag_ratio", "allocator_frag_bytes", "mem_frag", "hits", "misses", "running", "activedefrag"} {
			if !seen[k] {
				t.Fatalf("%s:%d: no %s", name, n, k)
			}
		}
		if len(run) > 0 && s.t < run[len(run)-1].t {
			t.Fatalf("%s:%d: time goes back", name, n)
		}
		run = append(run, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(run) < 3 || !run[0].before {
		t.Fatalf("%s: want a before line and at least two samples", name)
	}
	return run
}

// mib reads "438.7MiB".
func mib(v string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "MiB"), 64)
	if err != nil || !strings.HasSuffix(v, "MiB") {
		return 0, fmt.Errorf("not a MiB size")
	}
	return int64(f * (1 << 20)), nil
}

// replayTarget answers a watch with a recorded run: Snapshot returns the
// latest sample recorded at or before the watch's elapsed time (within a
// second: samples were taken 0.2 s after the interval), so a watch sampling
// at another interval sees what the server said at that moment. After the
// last sample the server stays as it was.
type replayTarget struct {
	mu      sync.Mutex
	run     []runSample // without the before line
	start   time.Time
	offAt   time.Duration // when TurnOff was called, -1 before
	samples int
}

func newReplay(run []runSample) *replayTarget {
	return &replayTarget{run: run[1:], start: time.Now(), offAt: -1}
}

func (r *replayTarget) at(elapsed time.Duration) runSample {
	cur := r.run[0]
	for _, s := range r.run {
		if s.t <= elapsed+time.Second {
			cur = s
		}
	}
	return cur
}

func (r *replayTarget) Snapshot(ctx context.Context) (*handlers.Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples++
	s := r.at(time.Since(r.start))
	info := fmt.Sprintf("# Memory\r\nused_memory:%d\r\nused_memory_rss:%d\r\nallocator_frag_ratio:%.2f\r\nallocator_frag_bytes:%d\r\nmem_fragmentation_ratio:%.2f\r\nactive_defrag_running:%d\r\n"+
		"# Stats\r\nactive_defrag_hits:%d\r\nactive_defrag_misses:%d\r\n",
		s.used, s.rss, s.allocRatio, s.fragBytes, s.memRatio, s.running, s.hits, s.misses)
	return &handlers.Snapshot{Instance: "replay", Info: handlers.ParseInfo(info)}, nil
}

func (r *replayTarget) Ping(context.Context) (time.Duration, error) { return time.Millisecond, nil }

func (r *replayTarget) DefragLatency(context.Context) (time.Duration, error) { return 0, nil }

func (r *replayTarget) TurnOff(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offAt = time.Since(r.start)
	return nil
}

// plateau is when a run stopped improving: the first sample after which
// allocator_frag_bytes no longer falls by more than 1%.
func plateau(run []runSample) time.Duration {
	samples := run[1:]
	for i, s := range samples {
		final := true
		for _, later := range samples[i+1:] {
			if float64(s.fragBytes-later.fragBytes) > 0.01*float64(s.fragBytes) {
				final = false
			}
		}
		if final {
			return s.t
		}
	}
	return samples[len(samples)-1].t
}

// TestWatchReplaysRecordedRuns replays defrag runs recorded on builds with
// Redis' bundled jemalloc through the watch, at the 15 s the samples were
// taken at and at the default 30 s. Each run must end on its own within a
// few intervals of its plateau, for its own reason: 6.2 reaches the target;
// 7.4, the 8.0 line and Valkey 8.0 plateau at an allocator_frag_ratio of
// 1.11-1.12, with 26 MiB left (under active-defrag-ignore-bytes, 100 MiB, so
// the server itself stops) or, with 10M keys, 132 MiB left and defrag only
// missing. The hand-written 7.2 run grows RSS while defrag runs.
func TestWatchReplaysRecordedRuns(t *testing.T) {
	cases := []struct {
		file   string
		reason string
	}{
		{"6.2.16-2M.txt", remedy.WatchTarget},
		{"7.4.1-2M.txt", remedy.WatchIgnoreBytes},
		{"redis-8.0-branch-2M.txt", remedy.WatchIgnoreBytes},
		{"valkey-8.0.1-2M.txt", remedy.WatchIgnoreBytes},
		{"7.4.1-10M.txt", remedy.WatchStalled},
		{"rss-growth-7.2-handwritten.txt", remedy.WatchRSSGrowth},
	}
	ignore, _ := remedy.DefaultPolicy().DefragIgnoreBytes()
	for _, iv := range []time.Duration{15 * time.Second, 30 * time.Second} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s every %s", tc.file, iv), func(t *testing.T) {
				run := loadRun(t, tc.file)
				synctest.Test(t, func(t *testing.T) {
					cfg := remedy.DefaultWatchConfig()
					cfg.Interval, cfg.IgnoreBytes = iv, ignore
					r := newReplay(run)
					res := remedy.Watch(context.Background(), r, cfg, time.Now, timerSleep, nil)
					if res.Reason != tc.reason || !res.TurnedOff || res.Err != nil {
						t.Fatalf("reason %q (%s), turned off %v, err %v; want %q", res.Reason, res.Why, res.TurnedOff, res.Err, tc.reason)
					}
					// Within a few intervals of the plateau, and long before
					// the maximum duration the old watch ran to.
					if limit := plateau(run) + time.Duration(cfg.StallIntervals+1)*iv; res.Last.Elapsed > limit {
						t.Errorf("stopped at %s, plateau at %s: more than %s later", res.Last.Elapsed, plateau(run), limit-plateau(run))
					}
					if r.offAt != res.Last.Elapsed {
						t.Errorf("turned off at %s, last sample at %s", r.offAt, res.Last.Elapsed)
					}
					// The outcome is read a settle after turning off.
					if res.Final.Elapsed != res.Last.Elapsed+cfg.Settle {
						t.Errorf("final numbers read at %s, want %s", res.Final.Elapsed, res.Last.Elapsed+cfg.Settle)
					}
					checkReplayOutcome(t, tc.reason, run, res)
				})
			})
		}
	}
}

func checkReplayOutcome(t *testing.T, reason string, run []runSample, res remedy.WatchResult) {
	t.Helper()
	o := res.Outcome()
	before, _ := handlers.Evidence(o.Before).Get("used_memory_rss")
	after, _ := handlers.Evidence(o.After).Get("used_memory_rss")
	summary := res.Summary()
	if !strings.Contains(summary, "RSS "+before.Text+" → "+after.Text) || !strings.Contains(summary, "allocator fragmentation") ||
		!strings.Contains(summary, res.Why) {
		t.Errorf("summary lacks the numbers or the reason:\n%s", summary)
	}
	if reason == remedy.WatchRSSGrowth {
		if o.OK || after.Value.(int64) <= before.Value.(int64) || !strings.Contains(summary, "Plan a restart or a failover") {
			t.Errorf("RSS growth: outcome %+v\n%s", o, summary)
		}
		return
	}
	if !o.OK || o.NoEffect || after.Value.(int64) >= before.Value.(int64) {
		t.Errorf("outcome OK %v, no effect %v, RSS %s → %s", o.OK, o.NoEffect, before.Text, after.Text)
	}
	// The settle lets RSS fall to where the run ended up: the recorded
	// runs drop to their final RSS within 15 s of their plateau.
	if last := run[len(run)-1]; after.Value.(int64) != last.rss {
		t.Errorf("after RSS %s, the run settled at %s", after.Text, handlers.HumanBytes(last.rss))
	}
}

// The 10M run, summed up as an on-call engineer reads it.
func TestWatchSummaryOfTheTenMillionKeyRun(t *testing.T) {
	run := loadRun(t, "7.4.1-10M.txt")
	synctest.Test(t, func(t *testing.T) {
		cfg := remedy.DefaultWatchConfig()
		cfg.Interval, cfg.IgnoreBytes = 15*time.Second, 100<<20
		res := remedy.Watch(context.Background(), newReplay(run), cfg, time.Now, timerSleep, nil)
		want := "Active defrag stopped after 1m45s: no progress for 3 checks in a row (45s): 132.3 MiB fragmented, defrag idle (active_defrag_running 1%). " +
			"RSS 2.2 GiB → 1.3 GiB (-897.6 MiB); allocator fragmentation 1.89 → 1.11 (1.0 GiB → 132.3 MiB in partly used pages); " +
			"mem_fragmentation_ratio 1.92 → 1.14. Defrag is off."
		if got := res.Summary(); got != want {
			t.Errorf("summary\n got %s\nwant %s", got, want)
		}
	})
}
