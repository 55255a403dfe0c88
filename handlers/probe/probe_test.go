package probe_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

func instance(addr string) handlers.Instance {
	return handlers.Instance{Name: "test-1", Addr: addr, Thresholds: handlers.DefaultThresholds()}
}

func TestProbeRealServer(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	p := probe.New(2*time.Second, nil)
	defer p.Close()

	snap, err := p.Probe(context.Background(), instance(srv.Addr))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got, _ := snap.Maxmemory(); got != 64<<20 {
		t.Errorf("maxmemory = %d, want %d", got, 64<<20)
	}
	if got, _ := snap.Policy(); got != "allkeys-lru" {
		t.Errorf("policy = %q", got)
	}
	for _, key := range probe.ConfigKeys {
		if _, ok := snap.Config[key]; !ok {
			t.Errorf("CONFIG GET %s missing from snapshot", key)
		}
	}
	if _, ok := snap.Config["requirepass"]; ok {
		t.Error("snapshot must never fetch requirepass")
	}
	if snap.MemoryStats["total.allocated"] <= 0 {
		t.Errorf("MEMORY STATS total.allocated = %v", snap.MemoryStats["total.allocated"])
	}
	if !strings.Contains(snap.Doctor, "Sam") {
		t.Errorf("MEMORY DOCTOR text missing: %q", snap.Doctor)
	}
	if len(snap.Missing) != 0 {
		t.Errorf("missing = %v, want none", snap.Missing)
	}
	if snap.RoundTrip <= 0 {
		t.Errorf("round trip = %v", snap.RoundTrip)
	}
}

func probeErr(t *testing.T, inst handlers.Instance, timeout time.Duration) *handlers.ProbeError {
	t.Helper()
	p := probe.New(timeout, nil)
	defer p.Close()
	_, err := p.Probe(context.Background(), inst)
	var pe *handlers.ProbeError
	if !errors.As(err, &pe) {
		t.Fatalf("probe error = %v (%T), want *handlers.ProbeError", err, err)
	}
	return pe
}

func TestProbeErrorClasses(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		if pe := probeErr(t, instance(addr), time.Second); pe.Class != handlers.ClassRefused {
			t.Errorf("class = %s (%v), want refused", pe.Class, pe.Err)
		}
	})
	t.Run("timeout on a blackhole", func(t *testing.T) {
		addr := serve(t, func(c net.Conn) { time.Sleep(5 * time.Second) })
		start := time.Now()
		pe := probeErr(t, instance(addr), 300*time.Millisecond)
		if pe.Class != handlers.ClassTimeout {
			t.Errorf("class = %s (%v), want timeout", pe.Class, pe.Err)
		}
		// One timeout, not one per pipelined command or retry.
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("probe of a blackhole took %v", d)
		}
	})
	t.Run("garbage answer", func(t *testing.T) {
		addr := serve(t, func(c net.Conn) {
			fmt.Fprint(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			time.Sleep(time.Second)
		})
		if pe := probeErr(t, instance(addr), time.Second); pe.Class != handlers.ClassProtocol {
			t.Errorf("class = %s (%v), want protocol", pe.Class, pe.Err)
		}
	})
	t.Run("a server that is not Redis but speaks RESP", func(t *testing.T) {
		addr := serve(t, answerAll("+OK\r\n"))
		if pe := probeErr(t, instance(addr), time.Second); pe.Class != handlers.ClassProtocol {
			t.Errorf("class = %s (%v), want protocol", pe.Class, pe.Err)
		}
	})
	t.Run("loading error reply", func(t *testing.T) {
		addr := serve(t, answerAll("-LOADING Redis is loading the dataset in memory\r\n"))
		if pe := probeErr(t, instance(addr), time.Second); pe.Class != handlers.ClassLoading {
			t.Errorf("class = %s (%v), want loading", pe.Class, pe.Err)
		}
	})
	t.Run("wrong password never shows the password", func(t *testing.T) {
		srv := redistest.StartT(t, "--requirepass", "right-pw")
		inst := instance(srv.Addr)
		inst.Password = "wrong-S3CRET"
		pe := probeErr(t, inst, time.Second)
		if pe.Class != handlers.ClassAuth {
			t.Errorf("class = %s (%v), want auth", pe.Class, pe.Err)
		}
		if strings.Contains(pe.Error(), "S3CRET") || strings.Contains(pe.Error(), "right-pw") {
			t.Errorf("error leaks a password: %v", pe)
		}
	})
	t.Run("ACL user without INFO", func(t *testing.T) {
		srv := redistest.StartT(t)
		c := srv.Client()
		defer c.Close()
		if err := c.Do(context.Background(), "ACL", "SETUSER", "noinfo", "on", ">pw", "+ping", "+auth", "+hello", "+client").Err(); err != nil {
			t.Fatal(err)
		}
		inst := instance(srv.Addr)
		inst.Username, inst.Password = "noinfo", "pw"
		if pe := probeErr(t, inst, time.Second); pe.Class != handlers.ClassNoPerm {
			t.Errorf("class = %s (%v), want noperm", pe.Class, pe.Err)
		}
	})
	t.Run("busy script", func(t *testing.T) {
		srv := redistest.StartT(t, "--busy-reply-threshold", "100")
		c := srv.Client()
		defer c.Close()
		go c.Eval(context.Background(), "local i = 0 while true do i = i + 1 end", nil)
		t.Cleanup(func() { srv.Stop() })
		time.Sleep(300 * time.Millisecond)
		if pe := probeErr(t, instance(srv.Addr), time.Second); pe.Class != handlers.ClassBusy {
			t.Errorf("class = %s (%v), want busy", pe.Class, pe.Err)
		}
	})
}

func TestProbeDegrades(t *testing.T) {
	t.Run("read-only ACL user without CONFIG", func(t *testing.T) {
		srv := redistest.StartT(t, "--maxmemory", "32mb", "--maxmemory-policy", "volatile-lru")
		c := srv.Client()
		defer c.Close()
		if err := c.Do(context.Background(), "ACL", "SETUSER", "ro", "on", ">pw", "+ping", "+info", "+memory|stats", "+memory|doctor").Err(); err != nil {
			t.Fatal(err)
		}
		inst := instance(srv.Addr)
		inst.Username, inst.Password = "ro", "pw"
		p := probe.New(time.Second, nil)
		defer p.Close()
		snap, err := p.Probe(context.Background(), inst)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if len(snap.Config) != 0 {
			t.Errorf("config = %v, want none (denied)", snap.Config)
		}
		if !strings.Contains(strings.Join(snap.Missing, ";"), "CONFIG GET: noperm") {
			t.Errorf("missing = %v, want CONFIG GET: noperm", snap.Missing)
		}
		// maxmemory and the policy still come from INFO.
		if got, _ := snap.Maxmemory(); got != 32<<20 {
			t.Errorf("maxmemory from INFO = %d", got)
		}
		if got, _ := snap.Policy(); got != "volatile-lru" {
			t.Errorf("policy from INFO = %q", got)
		}
	})
	t.Run("CONFIG renamed away", func(t *testing.T) {
		srv := redistest.StartT(t, "--rename-command", "CONFIG", "")
		p := probe.New(time.Second, nil)
		defer p.Close()
		snap, err := p.Probe(context.Background(), instance(srv.Addr))
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if !strings.Contains(strings.Join(snap.Missing, ";"), "CONFIG GET: error") {
			t.Errorf("missing = %v, want CONFIG GET: error", snap.Missing)
		}
	})
	t.Run("loading flag in INFO", func(t *testing.T) {
		text, err := os.ReadFile("../testdata/info/redis-7.0-loading.txt")
		if err != nil {
			t.Fatal(err)
		}
		addr := serve(t, answerInfo(string(text)))
		p := probe.New(time.Second, nil)
		defer p.Close()
		snap, err := p.Probe(context.Background(), instance(addr))
		if handlers.ClassOf(err) != handlers.ClassLoading || snap == nil {
			t.Fatalf("probe = %v, %v; want a snapshot and a loading error", snap, err)
		}
	})
}

// serve runs handle for each connection on a loopback listener. Only the
// situations no real server can be put in on demand use this.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().String()
}

// answerAll replies the same RESP line to every command it reads.
func answerAll(reply string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for readCommand(r) == nil {
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
	}
}

// answerInfo answers INFO with text and everything else with an error.
func answerInfo(text string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			cmd, err := readArray(r)
			if err != nil {
				return
			}
			reply := "-ERR unknown command\r\n"
			if len(cmd) > 0 && strings.EqualFold(cmd[0], "INFO") {
				reply = fmt.Sprintf("$%d\r\n%s\r\n", len(text), text)
			}
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
	}
}

func readCommand(r *bufio.Reader) error { _, err := readArray(r); return err }

func readArray(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	var n int
	if _, err := fmt.Sscanf(line, "*%d\r\n", &n); err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for range n {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		arg, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		out = append(out, strings.TrimRight(arg, "\r\n"))
	}
	return out, nil
}

func TestConcurrentProbesShareOneRoundTrip(t *testing.T) {
	var accepted atomicCounter
	addr := serve(t, func(c net.Conn) { accepted.add(); time.Sleep(3 * time.Second) })
	p := probe.New(300*time.Millisecond, nil)
	defer p.Close()
	inst := instance(addr)
	start := time.Now()
	errs := make(chan error, 50)
	for range 50 {
		go func() { _, err := p.Probe(context.Background(), inst); errs <- err }()
	}
	for range 50 {
		if c := handlers.ClassOf(<-errs); c != handlers.ClassTimeout {
			t.Errorf("class = %s, want timeout", c)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("50 probes of a blackhole took %v, want about one timeout", d)
	}
	if n := accepted.get(); n > 2 {
		t.Errorf("%d connections to the blackhole, want 1", n)
	}
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) add()     { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCounter) get() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
