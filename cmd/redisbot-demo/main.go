// Command redisbot-demo is what `make demo` runs: it starts throwaway
// redis-server processes on loopback, puts one into a real memory problem
// (fragmented by deletes, near maxmemory with a policy that cannot evict,
// RSS close to its container limit), and runs the redisbot binary against
// them the way an on-call engineer would. Everything is stopped at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redisbot/redisbot/handlers/redistest"
)

func main() {
	bin := flag.String("redisbot", "bin/redisbot", "the redisbot binary to demonstrate")
	keys := flag.Int("keys", 1_200_000, "keys written before every second one is deleted")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, *bin, *keys); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func demo(ctx context.Context, bin string, keys int) error {
	dir, err := os.MkdirTemp("", "redisbot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("Starting throwaway redis-servers on loopback")
	cache, err := redistest.Start(ctx, dir, "--maxmemory-policy", "volatile-lru")
	if err != nil {
		return err
	}
	defer cache.Stop()
	sessions, err := redistest.Start(ctx, dir, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	if err != nil {
		return err
	}
	defer sessions.Stop()

	step(fmt.Sprintf("Writing %d keys with SETRANGE, then deleting every second one (fragmentation)", keys))
	c := cache.Client()
	defer c.Close()
	start := time.Now()
	if err := redistest.Fragment(ctx, c, keys); err != nil {
		return err
	}
	fmt.Printf("   done in %.1fs\n", time.Since(start).Seconds())
	step("CONFIG SET maxmemory 180mb (policy volatile-lru, and no key has a TTL)")
	if err := c.ConfigSet(ctx, "maxmemory", "180mb").Err(); err != nil {
		return err
	}

	// An address nothing listens on: a crashed instance.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	deadAddr := l.Addr().String()
	l.Close()

	cfg := filepath.Join(dir, "config.yaml")
	body := fmt.Sprintf(`# Written by redisbot-demo.
instances:
  - name: demo-cache
    addr: %s
    tags: [demo, cache]
    memory_limit: 320MiB   # the container limit the process lives under
  - name: demo-sessions
    addr: %s
    tags: [demo]
  - name: demo-queue
    addr: %s   # nothing listens here: a crashed instance
    tags: [demo]
`, cache.Addr, sessions.Addr, deadAddr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return err
	}

	for _, args := range [][]string{
		{"fleet"},
		{"frag", "demo-cache"},
		{"diagnose", "demo-cache"},
		// --fast: the throttle protects production latency; a throwaway
		// server can take the full speed.
		{"keys", "demo-cache", "--top", "5", "--fast"},
	} {
		step("redisbot " + strings.Join(args, " "))
		code, err := runBot(ctx, bin, append(args, "--config", cfg))
		if err != nil {
			return err
		}
		fmt.Printf("\n   (exit code %d: %s)\n", code, meaning(code))
	}
	step("Stopping the throwaway servers")
	return nil
}

func runBot(ctx context.Context, bin string, args []string) (int, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", bin, err)
	}
	return 0, nil
}

func meaning(code int) string {
	return map[int]string{0: "nothing above info", 1: "warnings", 2: "critical findings", 3: "a probe failed"}[code]
}

func step(s string) { fmt.Printf("\n==> %s\n\n", s) }
