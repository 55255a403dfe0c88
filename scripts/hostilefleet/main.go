// Command hostilefleet serves a fleet of in-process fake Redis servers
// (handlers/resptest) for scripts/bench-hostile-fleet.sh, which measures
// `redisbot fleet --json` over it. It starts the healthy servers and the
// hostile ones, writes two configs into -dir:
//
//   - healthy.yaml: the healthy servers only;
//   - hostile.yaml: the same fleet size, with the hostile servers in the
//     place of as many healthy ones, spread evenly through the order;
//
// then a file named "ready" of shell assignments (healthy, hostile,
// protocol: how many probes must fail with class protocol, and bulk), and
// serves until it gets SIGINT or SIGTERM.
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
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/redisbot/redisbot/handlers/resplimit"
	"github.com/redisbot/redisbot/handlers/resptest"
)

func main() {
	healthy := flag.Int("healthy", 1000, "healthy servers, and the size of both fleets")
	hostile := flag.Int("hostile", 50, "hostile servers, which replace as many healthy ones in hostile.yaml")
	dir := flag.String("dir", "", "where to write healthy.yaml, hostile.yaml and ready (required)")
	bulk := flag.Int("bulk", resplimit.DefaultBulk, "bytes of the big-info servers' INFO; 0: no big-info servers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *dir, *healthy, *hostile, *bulk); err != nil {
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

func serve(ctx context.Context, dir string, healthy, hostile, bulk int) error {
	if dir == "" {
		return errors.New("-dir is required")
	}
	if healthy < 1 || hostile < 0 || hostile > healthy {
		return fmt.Errorf("need 1 or more healthy servers and at most as many hostile ones, not %d and %d", healthy, hostile)
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
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(ready), 0o600); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
