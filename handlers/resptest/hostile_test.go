package resptest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resplimit"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// wantLimit is what the probe's error says about each hostile answer: the
// rule it broke, with the numbers.
var wantLimit = map[resptest.Hostility]string{
	resptest.HugeBulk:    "resplimit: bulk length 9223372036854775806 exceeds the 1 MiB limit",
	resptest.HugeArray:   "resplimit: array length 2147483647 exceeds the 1048576-element limit",
	resptest.DeepNesting: "resplimit: aggregates nested deeper than the 32-level limit",
	resptest.EndlessBulk: "resplimit: bulk length 10000000000 exceeds the 1 MiB limit",
	resptest.EndlessLine: "resplimit: status line longer than the 64 KiB limit",
	resptest.Garbage:     "resplimit: unknown reply type byte '\\x00'",
	resptest.RESP3:       "resplimit: map of 1073741824 pairs exceeds the 1048576-element limit",
	resptest.Amplify:     "resplimit: reply declares 16000024 bytes of allocations, over the 8 MiB budget",
}

// wantError is what a command's error says when the server answers it
// with h. A command go-redis reads as a string, an integer or a fixed
// array (INFO, SCAN, TYPE, MEMORY USAGE) refuses a first "*1" line
// itself, before the limits matter and before it allocates; one read as a
// generic reply (MEMORY STATS, MEMORY DOCTOR: Do) recurses into it, and
// there the limits stop it. Amplify's first "*1000000" is over the
// allocation budget on its own: the limits stop it before any reader.
func wantError(h resptest.Hostility, generic bool) string {
	if !generic && h == resptest.DeepNesting {
		return "redis: "
	}
	return wantLimit[h]
}

func startHostile(t *testing.T, h resptest.Hostility, to ...string) *resptest.Server {
	t.Helper()
	s, err := resptest.StartHostile(h, to...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestProbeHostileServers probes, all at once, a healthy server and two
// servers of each hostility: one hostile to MEMORY DOCTOR only (how the
// crash was found: INFO looks fine), one to every command. It does it
// twice, the second time over whatever the first left in the pool. Every
// hostile probe fails, classified protocol and naming the limit; the
// healthy one gets its whole snapshot; and the process allocates a bounded
// amount on the way.
func TestProbeHostileServers(t *testing.T) {
	type target struct {
		h       resptest.Hostility
		generic bool // the hostile answer is read as a generic reply
	}
	targets := map[string]target{}
	var instances []handlers.Instance
	for _, h := range resptest.Hostilities {
		doctor := startHostile(t, h, "MEMORY DOCTOR")
		all := startHostile(t, h)
		targets[h.String()+"/doctor"] = target{h, true}
		targets[h.String()+"/all"] = target{h, false}
		instances = append(instances, instance(h.String()+"/doctor", doctor.Addr), instance(h.String()+"/all", all.Addr))
	}
	healthy := start(t, resptest.Healthy, "", 0)
	instances = append(instances, instance("healthy", healthy.Addr))
	p := probe.New(3*time.Second, nil)
	defer p.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for round := range 2 {
		type result struct {
			snap *handlers.Snapshot
			err  error
		}
		results := make([]result, len(instances))
		var wg sync.WaitGroup
		for i, inst := range instances {
			wg.Go(func() {
				snap, err := p.Probe(context.Background(), inst)
				results[i] = result{snap, err}
			})
		}
		wg.Wait()
		for i, inst := range instances {
			snap, err := results[i].snap, results[i].err
			tg, isHostile := targets[inst.Name]
			if !isHostile {
				if err != nil || len(snap.Missing) != 0 || snap.Doctor == "" || len(snap.MemoryStats) == 0 || len(snap.Config) == 0 {
					t.Errorf("round %d: the healthy server probed alongside: %v (missing %v)", round, err, snap.Missing)
				}
				continue
			}
			if c := handlers.ClassOf(err); c != handlers.ClassProtocol {
				t.Errorf("round %d: %s: class %q (%v), want protocol", round, inst.Name, c, err)
				continue
			}
			want := wantError(tg.h, tg.generic)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("round %d: %s: error %q, want it to say %q", round, inst.Name, err, want)
			}
			if limited := errors.Is(err, resplimit.ErrLimit) || errors.Is(err, resplimit.ErrProtocol); limited != strings.HasPrefix(want, "resplimit:") {
				t.Errorf("round %d: %s: error %v wraps a resplimit error: %v", round, inst.Name, err, limited)
			}
		}
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("probing %d hostile servers twice allocated %.1f MiB in all; heap in use %.1f MiB before, %.1f MiB after",
		len(targets), mib(allocated), mib(before.HeapAlloc), mib(after.HeapAlloc))
	// Amplify's first header is over the 8 MiB budget: refused before
	// go-redis makes its 16 MB slice (with the 32 MiB budget of old, two
	// were made, 32 MB a probe). Without the limits one HugeArray asks
	// for 32 GiB and one HugeBulk panics.
	if limit := uint64(160 << 20); allocated > limit {
		t.Errorf("the probes allocated %.1f MiB, want at most %.0f MiB", mib(allocated), mib(limit))
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// TestProbeHostileToOneCommand: a server hostile to one of the probe's
// commands fails the whole probe, whichever command it is: a reply that
// is not Redis (over a limit, unparsable) says nothing of the server can
// be believed. The error names the command whose reply broke the limit
// (INFO is a round trip of its own; the rest share a pipeline).
func TestProbeHostileToOneCommand(t *testing.T) {
	for _, cmd := range []string{"INFO", "CONFIG GET", "MEMORY STATS", "MEMORY DOCTOR"} {
		t.Run(cmd, func(t *testing.T) {
			s := startHostile(t, resptest.HugeBulk, cmd)
			p := probe.New(2*time.Second, nil)
			defer p.Close()
			for round := range 2 {
				_, err := p.Probe(context.Background(), instance("one-"+cmd, s.Addr))
				if c := handlers.ClassOf(err); c != handlers.ClassProtocol || !strings.Contains(err.Error(), wantLimit[resptest.HugeBulk]) {
					t.Errorf("round %d: class %q, error %v", round, c, err)
				}
			}
		})
	}
}

// TestHostileKeyScanCommands sends the key scan's commands (SCAN, TYPE,
// MEMORY USAGE) through a client built like every other one
// (probe.ClientOptions) to each hostile server: each fails with a
// protocol error, none panics.
func TestHostileKeyScanCommands(t *testing.T) {
	ctx := context.Background()
	for _, h := range resptest.Hostilities {
		t.Run(h.String(), func(t *testing.T) {
			s := startHostile(t, h, "SCAN", "TYPE", "MEMORY USAGE")
			opts, err := probe.ClientOptions(instance("keys", s.Addr), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(opts)
			defer c.Close()
			for _, cmd := range []func() error{
				func() error { return c.Scan(ctx, 0, "", 100).Err() },
				func() error { return c.Type(ctx, "k").Err() },
				func() error { return c.MemoryUsage(ctx, "k").Err() },
			} {
				err := cmd()
				if want := wantError(h, false); probe.Classify(err) != handlers.ClassProtocol || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v (class %s), want protocol: %s", err, probe.Classify(err), want)
				}
			}
			// The server still answers what it is not hostile to.
			if err := c.Ping(ctx).Err(); err != nil {
				t.Errorf("PING after the failures: %v", err)
			}
		})
	}
}

// TestHugeBulkCrashesAnUnlimitedClient shows the kit reproduces the crash
// the limits prevent: go-redis without them panics in makeslice. (The
// other hostilities end the process with no panic to recover.)
func TestHugeBulkCrashesAnUnlimitedClient(t *testing.T) {
	s := startHostile(t, resptest.HugeBulk, "MEMORY DOCTOR")
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "makeslice") {
			t.Errorf("recovered %v, want go-redis' makeslice panic", r)
		}
	}()
	err := c.Do(context.Background(), "MEMORY", "DOCTOR").Err()
	t.Errorf("MEMORY DOCTOR returned %v without a panic: the hostile answer no longer breaks go-redis", err)
}

// TestHostileChoosesItsCommands checks on the wire which commands get the
// hostile answer.
func TestHostileChoosesItsCommands(t *testing.T) {
	const huge = "$9223372036854775806\r\n"
	for _, c := range []struct {
		name string
		to   []string
		cmd  []string
		want string // the first line of the answer
	}{
		{"named command", []string{"CONFIG GET"}, []string{"config", "get", "maxmemory"}, huge},
		{"other subcommand", []string{"CONFIG GET"}, []string{"CONFIG", "SET", "maxmemory", "1"}, "-ERR unknown command 'CONFIG'\r\n"},
		{"command not named", []string{"MEMORY DOCTOR"}, []string{"PING"}, "+PONG\r\n"},
		{"default: every command", nil, []string{"INFO"}, huge},
		{"default: not the set-up", nil, []string{"HELLO", "2"}, "-ERR unknown command 'HELLO'\r\n"},
		{"star: the set-up too", []string{"*"}, []string{"PING"}, huge},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startHostile(t, resptest.HugeBulk, c.to...)
			conn, r := dial(t, s.Addr)
			if _, err := conn.Write([]byte(command(c.cmd...))); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || line != c.want {
				t.Errorf("answer %q, %v; want %q", line, err, c.want)
			}
		})
	}
	for _, to := range []string{"CONFIG GET x", ""} {
		if s, err := resptest.StartHostile(resptest.HugeBulk, to); err == nil {
			_ = s.Close()
			t.Errorf("StartHostile(%q) started a server", to)
		}
	}
	if s, err := resptest.StartHostile(0); err == nil {
		_ = s.Close()
		t.Error("StartHostile(0) started a server")
	}
}
