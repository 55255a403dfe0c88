package resptest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

func start(t *testing.T, b resptest.Behavior, info string, delay time.Duration) *resptest.Server {
	t.Helper()
	s, err := resptest.Start(b, info, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func instance(name, addr string) handlers.Instance {
	return handlers.Instance{Name: name, Addr: addr, Thresholds: handlers.DefaultThresholds()}
}

func probeOnce(t *testing.T, s *resptest.Server, timeout time.Duration) (*handlers.Snapshot, error, time.Duration) {
	t.Helper()
	p := probe.New(timeout, nil)
	defer p.Close()
	start := time.Now()
	snap, err := p.Probe(context.Background(), instance("fake-1", s.Addr))
	return snap, err, time.Since(start)
}

func TestDefaultInfoIsTheCapture(t *testing.T) {
	want, err := os.ReadFile("../testdata/info/redis-7.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	if resptest.DefaultInfo != string(want) {
		t.Error("redis-7.0.txt differs from handlers/testdata/info/redis-7.0.txt: copy it again")
	}
}

func TestProbeHealthy(t *testing.T) {
	s := start(t, resptest.Healthy, "", 0)
	snap, err, _ := probeOnce(t, s, 2*time.Second)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := snap.Version(); got != "7.0.15" {
		t.Errorf("version = %q", got)
	}
	if got, ok := snap.Maxmemory(); !ok || got != 0 {
		t.Errorf("maxmemory = %d, %v", got, ok)
	}
	if got, _ := snap.Policy(); got != "noeviction" {
		t.Errorf("policy = %q", got)
	}
	for _, key := range probe.ConfigKeys {
		if _, ok := snap.Config[key]; !ok {
			t.Errorf("CONFIG GET %s missing", key)
		}
	}
	if on, known := snap.Persistence(); !known || !on {
		t.Errorf("persistence = %v, %v; want on (save schedule set)", on, known)
	}
	used, _ := snap.Int("used_memory")
	if got := snap.MemoryStats["total.allocated"]; got != float64(used) {
		t.Errorf("MEMORY STATS total.allocated = %v, want used_memory %d", got, used)
	}
	if got := snap.MemoryStats["fragmentation"]; got != 2.08 {
		t.Errorf("MEMORY STATS fragmentation = %v, want 2.08", got)
	}
	if !strings.Contains(snap.Doctor, "Sam") {
		t.Errorf("doctor = %q", snap.Doctor)
	}
	if len(snap.Missing) != 0 {
		t.Errorf("missing = %v", snap.Missing)
	}

	// The rules see the capture's fragmented allocator.
	findings := handlers.Evaluate(handlers.Input{Cur: snap, T: handlers.DefaultThresholds()})
	ids := make([]string, len(findings))
	for i, f := range findings {
		ids[i] = f.ID
	}
	if !strings.Contains(strings.Join(ids, ","), "frag-") {
		t.Errorf("findings = %v, want a fragmentation finding", ids)
	}
}

func TestProbeCustomInfo(t *testing.T) {
	text, err := os.ReadFile("../testdata/info/redis-7.2-oom.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, resptest.Healthy, string(text), 0)
	snap, err, _ := probeOnce(t, s, 2*time.Second)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got, _ := snap.Maxmemory(); got != 1<<30 {
		t.Errorf("maxmemory from CONFIG = %d, want 1GiB", got)
	}
	if snap.Config["maxmemory"] == "" {
		t.Error("CONFIG GET maxmemory not answered")
	}
}

// SetInfo changes what a running server answers, on the connection the
// prober already holds: INFO and the CONFIG GET that follows from it.
func TestSetInfo(t *testing.T) {
	s := start(t, resptest.Healthy, "", 0)
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	probeMax := func() int64 {
		t.Helper()
		snap, err := p.Probe(context.Background(), instance("fake-1", s.Addr))
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if v, _ := snap.Info.Int("maxmemory"); v != mustInt(t, snap.Config["maxmemory"]) {
			t.Errorf("INFO maxmemory %d, CONFIG GET maxmemory %q: they disagree", v, snap.Config["maxmemory"])
		}
		n, _ := snap.Maxmemory()
		return n
	}
	if got := probeMax(); got != 0 {
		t.Fatalf("maxmemory %d before SetInfo, want DefaultInfo's 0", got)
	}
	full := strings.Replace(resptest.DefaultInfo, "\nmaxmemory:0\r", "\nmaxmemory:61000000\r", 1)
	if err := s.SetInfo(full); err != nil {
		t.Fatal(err)
	}
	if got := probeMax(); got != 61000000 {
		t.Errorf("maxmemory %d after SetInfo, want 61000000", got)
	}

	hole := start(t, resptest.Blackhole, "", 0)
	if err := hole.SetInfo(full); err == nil || !strings.Contains(err.Error(), "blackhole server answers no INFO") {
		t.Errorf("SetInfo on a blackhole: %v", err)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProbeSlow(t *testing.T) {
	const delay = 300 * time.Millisecond
	s := start(t, resptest.Slow, "", delay)
	snap, err, took := probeOnce(t, s, 3*time.Second)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if took < delay {
		t.Errorf("probe of a slow server took %v, want at least %v", took, delay)
	}
	if snap.RoundTrip < delay {
		t.Errorf("round trip = %v, want at least %v", snap.RoundTrip, delay)
	}

	t.Run("slower than the timeout", func(t *testing.T) {
		s := start(t, resptest.Slow, "", 5*time.Second)
		_, err, took := probeOnce(t, s, 300*time.Millisecond)
		if c := handlers.ClassOf(err); c != handlers.ClassTimeout {
			t.Errorf("class = %q (%v), want timeout", c, err)
		}
		if took > 2*time.Second {
			t.Errorf("took %v", took)
		}
	})
}

func TestProbeBlackholeTimesOut(t *testing.T) {
	s := start(t, resptest.Blackhole, "", 0)
	_, err, took := probeOnce(t, s, 300*time.Millisecond)
	if c := handlers.ClassOf(err); c != handlers.ClassTimeout {
		t.Errorf("class = %q (%v), want timeout", c, err)
	}
	if took > 2*time.Second {
		t.Errorf("probe of a blackhole took %v", took)
	}
}

func TestProbeRefused(t *testing.T) {
	s := start(t, resptest.Refuse, "", 0)
	_, err, _ := probeOnce(t, s, time.Second)
	if c := handlers.ClassOf(err); c != handlers.ClassRefused {
		t.Errorf("class = %q (%v), want refused", c, err)
	}
}

// dial opens a raw connection for protocol tests.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

func command(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// readReply reads one RESP2 reply and returns it in a compact form: "+OK",
// "-ERR ...", ":5", "$text", or "*[a b]".
func readReply(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+', '-', ':':
		return line
	case '$':
		n, _ := strconv.Atoi(line[1:])
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		return "$" + string(buf[:n])
	case '*':
		n, _ := strconv.Atoi(line[1:])
		items := make([]string, n)
		for i := range items {
			items[i] = strings.TrimPrefix(readReply(t, r), "$")
		}
		return "*[" + strings.Join(items, " ") + "]"
	}
	t.Fatalf("bad reply line %q", line)
	return ""
}

func TestProtocol(t *testing.T) {
	s := start(t, resptest.Healthy, "# Server\r\nredis_version:7.2.4\r\nmaxmemory:1048576\r\nmaxmemory_policy:allkeys-lru\r\naof_enabled:1\r\n", 0)
	c, r := dial(t, s.Addr)

	// One write holding a whole pipeline: the answers come in order.
	pipeline := command("HELLO", "2") +
		command("client", "setname", "redisbot") +
		command("CLIENT", "SETINFO", "lib-name", "go-redis") +
		command("PING") +
		command("PING", "hi") +
		command("CONFIG", "GET", "maxmemory") +
		command("config", "get", "MAXMEMORY-POLICY") +
		command("CONFIG", "GET", "appendonly") +
		command("CONFIG", "GET", "requirepass") +
		command("INFO", "memory") +
		command("MEMORY", "DOCTOR") +
		command("FLUSHALL") +
		"PING\r\n" // inline, as from nc
	if _, err := io.WriteString(c, pipeline); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-ERR unknown command 'HELLO'",
		"+OK",
		"+OK",
		"+PONG",
		"$hi",
		"*[maxmemory 1048576]",
		"*[maxmemory-policy allkeys-lru]",
		"*[appendonly yes]",
		"*[]",
		"$# Server\r\nredis_version:7.2.4\r\nmaxmemory:1048576\r\nmaxmemory_policy:allkeys-lru\r\naof_enabled:1\r\n",
		"$" + resptest.Doctor,
		"-ERR unknown command 'FLUSHALL'",
		"+PONG",
	}
	for i, w := range want {
		if got := readReply(t, r); got != w {
			t.Errorf("reply %d = %q, want %q", i, got, w)
		}
	}

	if _, err := io.WriteString(c, command("MEMORY", "STATS")); err != nil {
		t.Fatal(err)
	}
	if got := readReply(t, r); !strings.HasPrefix(got, "*[peak.allocated ") || !strings.Contains(got, "fragmentation 1") {
		t.Errorf("MEMORY STATS = %q", got)
	}

	if _, err := io.WriteString(c, command("QUIT")); err != nil {
		t.Fatal(err)
	}
	if got := readReply(t, r); got != "+OK" {
		t.Errorf("QUIT = %q", got)
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("after QUIT: %v, want EOF", err)
	}
}

func TestProtocolError(t *testing.T) {
	s := start(t, resptest.Healthy, "", 0)
	c, r := dial(t, s.Addr)
	if _, err := io.WriteString(c, "*1\r\n+PING\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := readReply(t, r); !strings.HasPrefix(got, "-ERR Protocol error") {
		t.Errorf("reply = %q", got)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Error("connection still open after a protocol error")
	}
}

func TestCloseDropsConnections(t *testing.T) {
	for _, b := range []resptest.Behavior{resptest.Healthy, resptest.Slow, resptest.Blackhole, resptest.Refuse} {
		t.Run(b.String(), func(t *testing.T) {
			s, err := resptest.Start(b, "", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var r *bufio.Reader
			if b != resptest.Refuse {
				var c net.Conn
				c, r = dial(t, s.Addr)
				// A Slow server is now waiting its hour before answering.
				if _, err := io.WriteString(c, command("PING")); err != nil {
					t.Fatal(err)
				}
				if b == resptest.Healthy {
					if got := readReply(t, r); got != "+PONG" {
						t.Fatalf("PING = %q", got)
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			done := make(chan error)
			go func() { done <- s.Close() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close hangs")
			}
			if r != nil {
				if _, err := r.ReadByte(); err == nil {
					t.Error("connection still open after Close")
				}
			}
			if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
				t.Error("port still accepts after Close")
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestManyConnections has many clients pipeline into one server at once.
func TestManyConnections(t *testing.T) {
	s := start(t, resptest.Healthy, "", 0)
	const clients, rounds = 50, 20
	errs := make(chan error, clients)
	for range clients {
		go func() {
			c, err := net.DialTimeout("tcp", s.Addr, time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			for range rounds {
				if _, err := io.WriteString(c, command("PING")+command("CONFIG", "GET", "save")); err != nil {
					errs <- err
					return
				}
				for _, want := range []string{"+PONG\r\n", "*2\r\n"} {
					if line, err := r.ReadString('\n'); err != nil || line != want {
						errs <- fmt.Errorf("got %q, %v; want %q", line, err, want)
						return
					}
				}
				for range 4 { // $4 save $23 3600 ...
					if _, err := r.ReadString('\n'); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestFleetOfAThousand sweeps 1,000 fake instances the way the bot's fleet
// verb does, with a mix of behaviours. The process needs about 3,000 file
// descriptors (1,000 listeners and both ends of up to 1,000 connections);
// RaiseFileLimit raises the soft RLIMIT_NOFILE if it is lower, and fails with
// the fix when the hard limit is too low.
func TestFleetOfAThousand(t *testing.T) {
	const n = 1000
	if err := resptest.RaiseFileLimit(4 * n); err != nil {
		t.Fatal(err)
	}
	mix := func(i int) (resptest.Behavior, time.Duration) {
		switch {
		case i%100 == 7:
			return resptest.Blackhole, 0
		case i%100 == 8:
			return resptest.Refuse, 0
		case i%10 == 3:
			return resptest.Slow, 20 * time.Millisecond
		}
		return resptest.Healthy, 0
	}
	started := time.Now()
	servers, err := resptest.StartMany(n, mix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resptest.CloseAll(servers)
	t.Logf("started %d servers in %v", n, time.Since(started))

	instances := make([]handlers.Instance, n)
	for i, s := range servers {
		instances[i] = instance(fmt.Sprintf("fake-%04d", i), s.Addr)
	}
	// go-redis retries a refused dial with backoff (about 0.8s in all), so
	// the timeout leaves room for that on a loaded 2-core machine.
	p := probe.New(3*time.Second, nil)
	defer p.Close()
	svc := handlers.NewService(instances, p, nil, 64, nil)

	swept := time.Now()
	reports, err := svc.Fleet(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("swept %d instances in %v", n, time.Since(swept))

	classes := map[handlers.ErrorClass]int{}
	for _, r := range reports {
		if r.Failed() {
			classes[r.Error.Class]++
			continue
		}
		classes["ok"]++
		if !r.Has("frag-high") && !r.Has("frag-allocator") {
			t.Errorf("%s: no fragmentation finding in %v", r.Instance, r.Findings)
		}
	}
	want := map[handlers.ErrorClass]int{"ok": 980, handlers.ClassTimeout: 10, handlers.ClassRefused: 10}
	for class, count := range want {
		if classes[class] != count {
			t.Errorf("%s: %d reports, want %d (all: %v)", class, classes[class], count, classes)
		}
	}
}

// BenchmarkFleetSweep is one sweep of 1,000 healthy instances over warm
// connections: the probe, the rules and the fake servers, all in-process.
func BenchmarkFleetSweep(b *testing.B) {
	const n = 1000
	if err := resptest.RaiseFileLimit(4 * n); err != nil {
		b.Fatal(err)
	}
	servers, err := resptest.StartMany(n, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer resptest.CloseAll(servers)
	instances := make([]handlers.Instance, n)
	for i, s := range servers {
		instances[i] = instance(fmt.Sprintf("fake-%04d", i), s.Addr)
	}
	p := probe.New(5*time.Second, nil)
	defer p.Close()
	svc := handlers.NewService(instances, p, nil, 64, nil)
	if _, err := svc.Fleet(context.Background(), "", nil); err != nil { // connect outside the timed loop
		b.Fatal(err)
	}
	for b.Loop() {
		reports, err := svc.Fleet(context.Background(), "", nil)
		if err != nil {
			b.Fatal(err)
		}
		if reports[len(reports)-1].Failed() {
			b.Fatalf("probe failed: %v", reports[len(reports)-1].Error)
		}
	}
}
