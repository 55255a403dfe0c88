package probe_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// The case: a server answering 800 ms per reply delivers INFO
// within the 2 s timeout. INFO travels alone, so its reply is kept; the
// rest misses the deadline and is listed as missing; the probe ends at the
// timeout; and the diagnosis is a slow server, not an unreachable one.
func TestSlowServerIsDiagnosedNotUnreachable(t *testing.T) {
	const delay, timeout = 800 * time.Millisecond, 2 * time.Second
	s, err := resptest.Start(resptest.Slow, "", delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p := probe.New(timeout, nil)
	defer p.Close()
	inst := instance(s.Addr)

	start := time.Now()
	snap, err := p.Probe(context.Background(), inst)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("probe of a slow server: %v", err)
	}
	if _, ok := snap.Int("used_memory"); !ok {
		t.Error("no INFO in the snapshot")
	}
	// Connecting is a round trip too: go-redis' HELLO, answered after
	// the delay like every command.
	if snap.Connect < delay || snap.RoundTrip < delay || snap.RoundTrip >= 2*delay {
		t.Errorf("connect %v, INFO round trip %v; want each at least %v, INFO's alone", snap.Connect, snap.RoundTrip, delay)
	}
	want := []string{"CONFIG GET: timed out after 2s", "MEMORY STATS: timed out after 2s", "MEMORY DOCTOR: timed out after 2s"}
	if !slices.Equal(snap.Missing, want) {
		t.Errorf("missing %q, want %q", snap.Missing, want)
	}
	if took < timeout-100*time.Millisecond || took > timeout+500*time.Millisecond {
		t.Errorf("probe took %v, want the %v timeout: one deadline for the whole probe", took, timeout)
	}

	svc := handlers.NewService([]handlers.Instance{inst}, p, nil, 1, nil)
	r, err := svc.Diagnose(context.Background(), inst.Name)
	if err != nil {
		t.Fatal(err)
	}
	f := findingOf(r, "slow-server")
	if r.Failed() || f == nil || f.Severity != handlers.SeverityWarning || findingOf(r, "unreachable") != nil {
		t.Fatalf("report: error %+v, findings %v; want slow-server warning and no unreachable", r.Error, findingIDs(r))
	}
	if fact, ok := f.Evidence.Get("info_round_trip_ms"); !ok || fact.Value.(int64) < delay.Milliseconds() {
		t.Errorf("evidence %v, want INFO's round trip of at least %v", f.Evidence, delay)
	}
	t.Logf("%s; missing %q", f.Summary, r.Missing)
}

// Replies that arrived are kept however the later ones fail: a real server
// behind a proxy that holds back chosen commands (the slowness a server
// under load shows per command, on demand).
func TestSlowRepliesKeepWhatArrived(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	t.Run("slow only on MEMORY DOCTOR", func(t *testing.T) {
		addr := slowProxy(t, srv.Addr, func(cmd []string) time.Duration {
			if matchCommand(cmd, "MEMORY", "DOCTOR") {
				return 3 * time.Second
			}
			return 0
		})
		snap, err, took := probeAt(t, addr, time.Second)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if got, _ := snap.Maxmemory(); got != 64<<20 || len(snap.Config) != len(probe.ConfigKeys)+len(lazyfree70) || snap.MemoryStats["total.allocated"] <= 0 {
			t.Errorf("maxmemory %d, %d settings, MEMORY STATS %v: want everything but the doctor", got, len(snap.Config), snap.MemoryStats["total.allocated"])
		}
		if want := []string{"MEMORY DOCTOR: timed out after 1s"}; snap.Doctor != "" || !slices.Equal(snap.Missing, want) {
			t.Errorf("doctor %q, missing %q; want %q", snap.Doctor, snap.Missing, want)
		}
		if snap.RoundTrip > 200*time.Millisecond {
			t.Errorf("INFO round trip %v: INFO was not slow", snap.RoundTrip)
		}
		if took > 1500*time.Millisecond {
			t.Errorf("probe took %v, want the 1s timeout", took)
		}
	})
	t.Run("400 ms per reply: the settings that arrived are kept", func(t *testing.T) {
		addr := slowProxy(t, srv.Addr, func([]string) time.Duration { return 400 * time.Millisecond })
		snap, err, _ := probeAt(t, addr, 2*time.Second)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		// HELLO and INFO take 800 ms; then one CONFIG GET every 400 ms
		// until the deadline, in ConfigKeys order.
		n := len(snap.Config)
		if n == 0 || n >= len(probe.ConfigKeys) {
			t.Fatalf("%d settings arrived (%v), want some but not all", n, snap.Config)
		}
		for _, key := range probe.ConfigKeys[:n] {
			if _, ok := snap.Config[key]; !ok {
				t.Errorf("settings %v are not the first %d asked for", snap.Config, n)
			}
		}
		want := []string{"CONFIG GET: timed out after 2s", "MEMORY STATS: timed out after 2s", "MEMORY DOCTOR: timed out after 2s"}
		if !slices.Equal(snap.Missing, want) {
			t.Errorf("missing %q, want %q", snap.Missing, want)
		}
		t.Logf("%d of %d settings arrived", n, len(probe.ConfigKeys))
	})
	t.Run("700 ms per reply", func(t *testing.T) {
		addr := slowProxy(t, srv.Addr, func([]string) time.Duration { return 700 * time.Millisecond })
		snap, err, _ := probeAt(t, addr, 2*time.Second)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if got, _ := snap.Maxmemory(); got != 64<<20 { // from INFO
			t.Errorf("maxmemory from INFO = %d", got)
		}
		if len(snap.Config) != 0 || !slices.Contains(snap.Missing, "CONFIG GET: timed out after 2s") || !slices.Contains(snap.Missing, "MEMORY DOCTOR: timed out after 2s") {
			t.Errorf("config %v, missing %q; want the settings and the doctor timed out", snap.Config, snap.Missing)
		}
		if snap.RoundTrip < 700*time.Millisecond {
			t.Errorf("INFO round trip %v, want at least 700ms", snap.RoundTrip)
		}
	})
}

// TestSlowRealServer makes a real redis-server slow the way production
// ones are: a script that runs for 1.2 s holds the main thread (below
// busy-reply-threshold, so no BUSY error), and the probe's INFO waits
// behind it. The probe is a slow server's, not an unreachable one's.
func TestSlowRealServer(t *testing.T) {
	srv := redistest.StartT(t)
	p := probe.New(3*time.Second, nil)
	defer p.Close()
	inst := instance(srv.Addr)
	svc := handlers.NewService([]handlers.Instance{inst}, p, nil, 1, nil)

	// Connected and fast first: nothing to report about latency.
	r, err := svc.Diagnose(context.Background(), inst.Name)
	if err != nil || r.Failed() || findingOf(r, "slow-server") != nil {
		t.Fatalf("idle server: %v %+v, findings %v", err, r.Error, findingIDs(r))
	}

	c := srv.Client()
	defer c.Close()
	const busy = `local t0 = redis.call('TIME')
local start = t0[1] * 1000000 + t0[2]
repeat
  local t = redis.call('TIME')
until t[1] * 1000000 + t[2] - start > 1200000
return 1`
	done := make(chan error, 1)
	go func() { done <- c.Eval(context.Background(), busy, nil).Err() }()
	time.Sleep(150 * time.Millisecond) // the script has started: the main thread is in it

	r, err = svc.Diagnose(context.Background(), inst.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("busy script: %v", err)
	}
	f := findingOf(r, "slow-server")
	if r.Failed() || f == nil || f.Severity != handlers.SeverityWarning || len(r.Missing) != 0 {
		t.Fatalf("server busy in a script: error %+v, findings %v, missing %q; want slow-server warning and a full snapshot", r.Error, findingIDs(r), r.Missing)
	}
	if r.Snapshot.Connect != 0 || r.Snapshot.RoundTrip < 500*time.Millisecond {
		t.Errorf("connect %v, INFO round trip %v; want a pooled connection and INFO waiting behind the script", r.Snapshot.Connect, r.Snapshot.RoundTrip)
	}
	t.Log(f.Summary)
}

// TestProbeTimingOfAHealthyServer: a fresh probe times its connect, a
// pooled one does not, and INFO's round trip on loopback is far below any
// threshold.
func TestProbeTimingOfAHealthyServer(t *testing.T) {
	srv := redistest.StartT(t)
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	inst := instance(srv.Addr)
	for i, wantConnect := range []bool{true, false} {
		snap, err := p.Probe(context.Background(), inst)
		if err != nil {
			t.Fatal(err)
		}
		if (snap.Connect > 0) != wantConnect || snap.RoundTrip <= 0 || snap.RoundTrip > 100*time.Millisecond || len(snap.Missing) != 0 {
			t.Errorf("probe %d: connect %v, INFO round trip %v, missing %q", i+1, snap.Connect, snap.RoundTrip, snap.Missing)
		}
	}
}

func probeAt(t *testing.T, addr string, timeout time.Duration) (*handlers.Snapshot, error, time.Duration) {
	t.Helper()
	p := probe.New(timeout, nil)
	defer p.Close()
	start := time.Now()
	snap, err := p.Probe(context.Background(), instance(addr))
	return snap, err, time.Since(start)
}

func findingOf(r *handlers.Report, id string) *handlers.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

func findingIDs(r *handlers.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID+"="+f.Severity.String())
	}
	return out
}

// slowProxy forwards connections to a real server, holding each command
// back for delay(command) before sending it on: later commands queue
// behind it, as they would on a server busy with it. Replies flow back
// untouched. It returns the proxy's address.
func slowProxy(t *testing.T, backend string, delay func(cmd []string) time.Duration) string {
	t.Helper()
	return serve(t, func(client net.Conn) {
		server, err := net.Dial("tcp", backend)
		if err != nil {
			return
		}
		defer server.Close()
		go func() { _, _ = io.Copy(client, server); client.Close() }()
		r := bufio.NewReader(client)
		for {
			cmd, err := readArray(r)
			if err != nil {
				return
			}
			time.Sleep(delay(cmd))
			if _, err := server.Write(encodeCommand(cmd)); err != nil {
				return
			}
		}
	})
}

func encodeCommand(args []string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

func matchCommand(cmd []string, words ...string) bool {
	if len(cmd) < len(words) {
		return false
	}
	for i, w := range words {
		if !strings.EqualFold(cmd[i], w) {
			return false
		}
	}
	return true
}

// lazyfree70 are the settings Redis 7.0 answers to CONFIG GET
// lazyfree-lazy-*.
var lazyfree70 = []string{"lazyfree-lazy-eviction", "lazyfree-lazy-expire", "lazyfree-lazy-server-del", "lazyfree-lazy-user-del", "lazyfree-lazy-user-flush"}

// TestDialPerProbeKeepsNoConnection: with DialPerProbe every probe opens
// its own connection (it times a connect each time) and leaves none
// pooled, which is what a one-shot CLI run over a big fleet needs.
func TestDialPerProbeKeepsNoConnection(t *testing.T) {
	srv := redistest.StartT(t)
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	p.DialPerProbe()
	inst := instance(srv.Addr)
	for i := range 2 {
		snap, err := p.Probe(context.Background(), inst)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Connect <= 0 {
			t.Errorf("probe %d: connect %v, want a connection of its own", i+1, snap.Connect)
		}
	}
}
