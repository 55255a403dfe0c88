package blockkit

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// probed is the fixed clock of every fixture, so goldens do not change.
var probed = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// fakeProber answers with canned snapshots or errors by instance name.
type fakeProber struct {
	snaps map[string]*handlers.Snapshot
	errs  map[string]error
}

func (p fakeProber) Probe(_ context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	if err := p.errs[inst.Name]; err != nil {
		return nil, err
	}
	s, ok := p.snaps[inst.Name]
	if !ok {
		return nil, &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassRefused, Err: fmt.Errorf("dial tcp %s: connection refused", inst.Addr)}
	}
	return s, nil
}

// infoCache holds parsed captures by file name; the fuzzer asks often.
var infoCache sync.Map

// info parses a captured INFO reply from handlers/testdata/info.
func info(t testing.TB, name string) handlers.Info {
	t.Helper()
	if v, ok := infoCache.Load(name); ok {
		return maps.Clone(v.(handlers.Info))
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "handlers", "testdata", "info", name))
	if err != nil {
		t.Fatal(err)
	}
	in := handlers.ParseInfo(string(b))
	infoCache.Store(name, in)
	return maps.Clone(in)
}

const doctorText = `Sam, I detected a few issues in this Redis instance memory implants:

 * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is "jemalloc-5.3.0".

 * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.

I'm here to keep you safe, Sam. I want to help you.
`

// fragmented is the real Redis 7.0 capture (allocator_frag_ratio 1.91,
// mem_fragmentation_ratio 2.08) with a maxmemory close to its usage, OOM
// errors and active defrag off, so that diagnose has many findings.
func fragmented(t testing.TB) *handlers.Snapshot {
	in := info(t, "redis-7.0.txt")
	in["allocator_frag_bytes"] = "125829120" // above the 100 MiB floor of frag-allocator
	in["errorstat_OOM"] = "count=17"
	in["maxmemory"] = "67108864"
	in["maxmemory_policy"] = "noeviction"
	return &handlers.Snapshot{
		Instance: "cache-1", ProbedAt: probed, Info: in,
		Config: map[string]string{"maxmemory": "67108864", "maxmemory-policy": "noeviction", "activedefrag": "no", "save": "3600 1 300 100"},
		Doctor: doctorText,
	}
}

func snapshotOf(t testing.TB, name, file string, tweak func(handlers.Info, map[string]string)) *handlers.Snapshot {
	in := info(t, file)
	cfg := map[string]string{}
	if v, ok := in["maxmemory"]; ok {
		cfg["maxmemory"] = v
	}
	if v, ok := in["maxmemory_policy"]; ok {
		cfg["maxmemory-policy"] = v
	}
	cfg["activedefrag"] = "no"
	if tweak != nil {
		tweak(in, cfg)
	}
	return &handlers.Snapshot{Instance: name, ProbedAt: probed, Info: in, Config: cfg}
}

// fixtureService is a small fleet: a fragmented cache, a primary refusing
// writes at maxmemory, a healthy Valkey, a 6.2 replica and one instance that
// times out.
func fixtureService(t testing.TB) *handlers.Service {
	limit := int64(150 << 20)
	instances := []handlers.Instance{
		{Name: "cache-1", Addr: "10.0.1.11:6379", Tags: []string{"prod", "cache"}, MemoryLimit: limit},
		{Name: "sessions", Addr: "10.0.1.12:6379", Tags: []string{"prod"}, MemoryLimit: 4 << 30},
		{Name: "queue", Addr: "10.0.1.13:6379", Tags: []string{"prod", "queue"}},
		{Name: "reports-replica", Addr: "10.0.2.21:6380", Tags: []string{"analytics"}, MemoryLimit: 8 << 30},
		{Name: "legacy", Addr: "10.0.9.9:6379", Tags: []string{"legacy"}},
	}
	for i := range instances {
		instances[i].Thresholds = handlers.DefaultThresholds()
	}
	prober := fakeProber{
		snaps: map[string]*handlers.Snapshot{
			"cache-1":         fragmented(t),
			"sessions":        snapshotOf(t, "sessions", "redis-7.2-oom.txt", nil),
			"queue":           snapshotOf(t, "queue", "valkey-8.1.txt", func(in handlers.Info, cfg map[string]string) { cfg["maxmemory"] = "0" }),
			"reports-replica": snapshotOf(t, "reports-replica", "redis-6.2-replica.txt", nil),
		},
		errs: map[string]error{
			"legacy": &handlers.ProbeError{Instance: "legacy", Class: handlers.ClassTimeout, Err: fmt.Errorf("dial tcp 10.0.9.9:6379: i/o timeout")},
		},
	}
	return handlers.NewService(instances, prober, nil, 4, func() time.Time { return probed })
}

// bigFleetService has n instances whose numbers vary with their index, so
// that severities and the risk order vary too.
func bigFleetService(t testing.TB, n int) *handlers.Service {
	base := info(t, "../versions/7.4.1/info-everything.txt") // a real Redis 7.4.1 reply
	instances := make([]handlers.Instance, n)
	snaps := map[string]*handlers.Snapshot{}
	errs := map[string]error{}
	for i := range instances {
		name := fmt.Sprintf("cache-%03d", i)
		instances[i] = handlers.Instance{Name: name, Addr: fmt.Sprintf("10.1.%d.%d:6379", i/250, i%250+1),
			Tags: []string{"prod"}, MemoryLimit: 2 << 30, Thresholds: handlers.DefaultThresholds()}
		if i%97 == 13 {
			errs[name] = &handlers.ProbeError{Instance: name, Class: handlers.ClassRefused, Err: fmt.Errorf("connection refused")}
			continue
		}
		in := maps.Clone(base)
		used := int64(200<<20) + int64(i)*(3<<20)
		rss := used * int64(100+(i*37)%150) / 100
		maxmem := int64(1 << 30)
		in["used_memory"] = strconv.FormatInt(used, 10)
		in["used_memory_rss"] = strconv.FormatInt(rss, 10)
		in["used_memory_peak"] = strconv.FormatInt(used, 10)
		in["mem_fragmentation_ratio"] = strconv.FormatFloat(float64(rss)/float64(used), 'f', 2, 64)
		in["maxmemory"] = strconv.FormatInt(maxmem, 10)
		snaps[name] = &handlers.Snapshot{Instance: name, ProbedAt: probed, Info: in,
			Config: map[string]string{"maxmemory": in["maxmemory"], "maxmemory-policy": "allkeys-lru", "activedefrag": "no"}}
	}
	return handlers.NewService(instances, fakeProber{snaps: snaps, errs: errs}, nil, 8, func() time.Time { return probed })
}

var (
	libOnce sync.Once
	libVal  *runbooks.Library
	libErr  error
)

func library(t testing.TB) *runbooks.Library {
	t.Helper()
	libOnce.Do(func() { libVal, libErr = runbooks.Load("") })
	if libErr != nil {
		t.Fatal(libErr)
	}
	return libVal
}

func handle(t testing.TB, svc *handlers.Service, verb string, args ...string) (*handlers.Response, error) {
	t.Helper()
	return svc.Handle(context.Background(), handlers.Command{Verb: verb, Args: args})
}

func mustHandle(t testing.TB, svc *handlers.Service, verb string, args ...string) *handlers.Response {
	t.Helper()
	resp, err := handle(t, svc, verb, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", verb, args, err)
	}
	return resp
}
