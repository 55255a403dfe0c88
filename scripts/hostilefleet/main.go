// Command hostilefleet serves a fleet of in-process fake Redis servers
// (handlers/resptest) for scripts/bench-hostile-fleet.sh, which measures
// `redisbot fleet --json` over it. It starts the healthy servers and the
// hostile ones, writes two configs into -dir:
//
//   - healthy.yaml: the healthy servers only;
//
//   - hostile.yaml: the same fleet size, with the hostile servers in the
//     place of as many healthy ones, spread evenly through the order;
//
//   - faults.yaml, when -blackholed, -slow or -down is above 0: the same
//     fleet size with issue 18's faults in the place of as many healthy
//     servers, each kind spread evenly through the order and the kinds
//     interleaved: blackholed (accepts, reads, never answers, holding the
//     connection), slow (answers each batch of pipelined commands after
//     -slow-delay) and down (a reserved port nothing listens on:
//     connection refused);
//
// then a file named "ready" of shell assignments (healthy, hostile,
// protocol: how many probes must fail with class protocol, bulk, and the
// faults.yaml counts blackholed, slow and down), and serves until it gets
// SIGINT or SIGTERM.
//
// The faulty instances of one kind share one server: a connection is per
// instance all the same (the probe keeps a client per instance name), and
// a listener per faulty instance would take descriptors the fleet server
// needs for connections under the 20,000 hard limit of the machines the
// 10,000-instance benchmarks run on.
//
// The hostile servers cycle through resptest's hostilities and one more,
// big-info: a server that answers INFO with the longest bulk string the
// probe's limits let through (-bulk bytes, resplimit.DefaultBulk by
// default; -bulk 0 leaves big-info out), made of short "field:value" lines, the most a reply within
// the limits can make the probe parse and keep. Each of resptest's
// hostilities cycles through four targets: every command, MEMORY DOCTOR
// and MEMORY STATS (read as generic replies, where an amplifying or
// nested reply costs the most before a limit stops it) and INFO (an
// endless stream where the probe's first reply should be).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redisbot/redisbot/handlers/resplimit"
	"github.com/redisbot/redisbot/handlers/resptest"
)

func main() {
	healthy := flag.Int("healthy", 1000, "healthy servers, and the size of both fleets")
	hostile := flag.Int("hostile", 50, "hostile servers, which replace as many healthy ones in hostile.yaml")
	dir := flag.String("dir", "", "where to write healthy.yaml, hostile.yaml and ready (required)")
	bulk := flag.Int("bulk", resplimit.DefaultBulk, "bytes of the big-info servers' INFO; 0: no big-info servers")
	var f faults
	flag.Float64Var(&f.blackholed, "blackholed", 0, "share of faults.yaml's instances that accept and never answer (0 to 1)")
	flag.Float64Var(&f.slow, "slow", 0, "share of faults.yaml's instances that answer after -slow-delay (0 to 1)")
	flag.DurationVar(&f.slowDelay, "slow-delay", 800*time.Millisecond, "how long a slow instance waits before each reply")
	flag.Float64Var(&f.down, "down", 0, "share of faults.yaml's instances that refuse connections (0 to 1)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *dir, *healthy, *hostile, *bulk, f); err != nil {
		fmt.Fprintf(os.Stderr, "hostilefleet: %v\n", err)
		os.Exit(1)
	}
}

// targets are the commands each hostility is aimed at in turn; nil is
// every command but the connection's set-up.
var targets = [][]string{nil, {"MEMORY DOCTOR"}, {"INFO"}, {"MEMORY STATS"}}

// bigInfo returns an INFO text of exactly n bytes: DefaultInfo, then
// "fN:N" lines.
func bigInfo(n int) string {
	var b strings.Builder
	b.Grow(n)
	b.WriteString(resptest.DefaultInfo)
	for i := 0; b.Len() < n; i++ {
		line := fmt.Sprintf("f%d:%d\r\n", i, i)
		if rest := n - b.Len(); len(line) > rest {
			line = strings.Repeat("x", rest)
		}
		b.WriteString(line)
	}
	return b.String()
}

// faults are the shares of faults.yaml's instances that fail the way
// issue 18's fleet does.
type faults struct {
	blackholed, slow, down float64
	slowDelay              time.Duration
}

// fault is one kind of faulty instance: its name in faults.yaml and the
// server every instance of the kind points at.
type fault struct {
	kind   string
	server *resptest.Server
}

// order returns which kind of fault takes each of the n instances'
// places in a fleet of n, nil for a healthy one: each kind's k-th
// instance goes where k is evenly spread through the fleet, so every
// stretch of the config order, and every batch a concurrency bound
// probes together, meets each kind in its share.
func (f faults) order(n int, blackholed, slow, down fault) []*fault {
	type placed struct {
		at float64 // where in [0, 1) of the order
		f  *fault
	}
	var all []placed
	for _, k := range []struct {
		share float64
		f     *fault
	}{{f.blackholed, &blackholed}, {f.slow, &slow}, {f.down, &down}} {
		count := int(k.share*float64(n) + 0.5)
		for j := range count {
			all = append(all, placed{(float64(j) + 0.5) / float64(count), k.f})
		}
	}
	slices.SortStableFunc(all, func(a, b placed) int { return cmp.Compare(a.at, b.at) })
	out := make([]*fault, n)
	for k, p := range all {
		out[k*n/len(all)] = p.f
	}
	return out
}

func (f faults) valid() error {
	for _, s := range []float64{f.blackholed, f.slow, f.down} {
		if s < 0 || s > 1 {
			return fmt.Errorf("-blackholed, -slow and -down are shares between 0 and 1, not %g", s)
		}
	}
	if sum := f.blackholed + f.slow + f.down; sum > 1 {
		return fmt.Errorf("-blackholed, -slow and -down add up to %g, more than the whole fleet", sum)
	}
	if f.slow > 0 && f.slowDelay <= 0 {
		return fmt.Errorf("-slow-delay must be positive, not %s", f.slowDelay)
	}
	return nil
}

func (f faults) any() bool { return f.blackholed > 0 || f.slow > 0 || f.down > 0 }

// startFaults starts one server per kind of fault and writes faults.yaml
// (good in the healthy places); it returns the servers, to close, and the
// ready line's counts.
func startFaults(dir string, good []*resptest.Server, f faults) ([]*resptest.Server, string, error) {
	start := func(kind string, b resptest.Behavior, delay time.Duration) (fault, error) {
		s, err := resptest.Start(b, "", delay)
		if err != nil {
			return fault{}, fmt.Errorf("%s server: %w", kind, err)
		}
		return fault{kind: kind, server: s}, nil
	}
	var servers []*resptest.Server
	var kinds [3]fault
	for i, k := range []struct {
		kind  string
		b     resptest.Behavior
		delay time.Duration
	}{{"blackholed", resptest.Blackhole, 0}, {"slow", resptest.Slow, f.slowDelay}, {"down", resptest.Refuse, 0}} {
		x, err := start(k.kind, k.b, k.delay)
		if err != nil {
			resptest.CloseAll(servers)
			return nil, "", err
		}
		servers = append(servers, x.server)
		kinds[i] = x
	}
	counts := map[string]int{}
	var b strings.Builder
	b.WriteString("instances:\n")
	for i, x := range f.order(len(good), kinds[0], kinds[1], kinds[2]) {
		if x == nil {
			fmt.Fprintf(&b, "  - name: healthy-%04d\n    addr: %s\n", i, good[i].Addr)
			continue
		}
		counts[x.kind]++
		fmt.Fprintf(&b, "  - name: %s-%04d\n    addr: %s\n", x.kind, i, x.server.Addr)
	}
	if err := os.WriteFile(filepath.Join(dir, "faults.yaml"), []byte(b.String()), 0o600); err != nil {
		resptest.CloseAll(servers)
		return nil, "", err
	}
	return servers, fmt.Sprintf("blackholed=%d\nslow=%d\ndown=%d\n", counts["blackholed"], counts["slow"], counts["down"]), nil
}

func serve(ctx context.Context, dir string, healthy, hostile, bulk int, f faults) error {
	if dir == "" {
		return errors.New("-dir is required")
	}
	if healthy < 1 || hostile < 0 || hostile > healthy {
		return fmt.Errorf("need 1 or more healthy servers and at most as many hostile ones, not %d and %d", healthy, hostile)
	}
	if err := f.valid(); err != nil {
		return err
	}
	// A listener per server, and both ends of a loopback connection per
	// server while redisbot probes them all at once.
	if err := resptest.RaiseFileLimit(uint64(3*(healthy+hostile) + 100)); err != nil {
		return err
	}
	good, err := resptest.StartMany(healthy, nil, nil)
	if err != nil {
		return err
	}
	defer resptest.CloseAll(good)
	var bad []*resptest.Server
	defer func() { resptest.CloseAll(bad) }()
	// The ways a hostile server answers: resptest's, then big-info.
	kinds := len(resptest.Hostilities) + 1
	if bulk <= 0 {
		kinds--
	}
	info := bigInfo(bulk)
	var badNames []string
	for i := range hostile {
		if i%kinds == len(resptest.Hostilities) {
			s, err := resptest.Start(resptest.Healthy, info, 0)
			if err != nil {
				return fmt.Errorf("hostile server %d: %w", i, err)
			}
			bad = append(bad, s)
			badNames = append(badNames, fmt.Sprintf("hostile-%03d-big-info", i))
			continue
		}
		h := resptest.Hostilities[i%kinds]
		to := targets[(i/kinds)%len(targets)]
		s, err := resptest.StartHostile(h, to...)
		if err != nil {
			return fmt.Errorf("hostile server %d: %w", i, err)
		}
		bad = append(bad, s)
		target := "all"
		if to != nil {
			target = strings.ToLower(strings.ReplaceAll(to[0], " ", "-"))
		}
		badNames = append(badNames, fmt.Sprintf("hostile-%03d-%s-%s", i, h, target))
	}

	var all, mixed strings.Builder
	all.WriteString("instances:\n")
	mixed.WriteString("instances:\n")
	next := 0 // the next hostile server to place
	for i, s := range good {
		entry := fmt.Sprintf("  - name: healthy-%04d\n    addr: %s\n", i, s.Addr)
		all.WriteString(entry)
		// Hostile server k takes the place of healthy server
		// k*healthy/hostile: evenly spread, never two in a row unless
		// more than half are hostile.
		if next < hostile && i == next*healthy/hostile {
			fmt.Fprintf(&mixed, "  - name: %s\n    addr: %s\n", badNames[next], bad[next].Addr)
			next++
			continue
		}
		mixed.WriteString(entry)
	}
	for name, body := range map[string]string{"healthy.yaml": all.String(), "hostile.yaml": mixed.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	// ready says what a run must find: the probes of every hostile
	// server but big-info fail (they break a limit); big-info's do not.
	protocol := hostile
	if bulk > 0 {
		protocol -= hostile / kinds
	}
	ready := fmt.Sprintf("healthy=%d\nhostile=%d\nprotocol=%d\nbulk=%d\n", healthy, hostile, protocol, bulk)
	if f.any() {
		servers, counts, err := startFaults(dir, good, f)
		if err != nil {
			return err
		}
		defer resptest.CloseAll(servers)
		ready += counts
	} else {
		ready += "blackholed=0\nslow=0\ndown=0\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(ready), 0o600); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
