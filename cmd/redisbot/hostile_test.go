package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/resplimit"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// The end-to-end tests of issue 12: no server can crash, hang or bloat
// redisbot. A fleet mixes healthy servers with one server of each hostile
// answer resptest knows (a 9-exabyte bulk header, a 2-billion-element
// array, millions of nested arrays, endless streams, bytes that are not
// RESP, RESP3 nobody asked for, amplifying headers), some hostile only to
// the command that found the crash (MEMORY DOCTOR: INFO looks fine), some
// to every command, one streaming endlessly in answer to INFO, and one
// whose INFO is one byte over the probe's bulk limit. Two more are hostile
// to the key scan only: the probe sees Redis, SCAN or MEMORY USAGE do not.

// hostileProbeTimeout is the probe timeout of the hostile fleet's config.
// No call may take as long: a hostile reply must be refused when it breaks
// a limit, not read until the deadline.
const hostileProbeTimeout = 5 * time.Second

// hostileMember is a server of the fleet that fails the probe.
type hostileMember struct {
	name string
	how  resptest.Hostility // 0: a server answering like Redis, with info
	to   []string           // the commands it is hostile to; none: every command
	info string             // the INFO text of a server whose how is 0
	// want is what the probe's error must say: the limit the reply broke.
	want string
}

// hostileMembers are the fleet's hostile servers, one per hostility. Deep
// nesting and amplification are hostile to MEMORY DOCTOR and MEMORY STATS,
// which go-redis reads as generic replies: INFO's reader refuses a first
// "*1" itself ("can't parse reply"), before any limit matters, so only a
// generic reply shows the limits at work. The last answers INFO like
// Redis, with one byte more than the probe's bulk limit: a real Redis
// never does (its INFO everything is about 100 KB at most), and 1 MiB of
// short lines would cost about 8 MiB of heap to parse.
var hostileMembers = []hostileMember{
	{"huge-bulk", resptest.HugeBulk, []string{"MEMORY DOCTOR"}, "", "resplimit: bulk length 9223372036854775806 exceeds the 1 MiB limit"},
	{"huge-array", resptest.HugeArray, nil, "", "resplimit: array length 2147483647 exceeds the 1048576-element limit"},
	{"deep-nesting", resptest.DeepNesting, []string{"MEMORY DOCTOR"}, "", "resplimit: aggregates nested deeper than the 32-level limit"},
	{"endless-bulk", resptest.EndlessBulk, nil, "", "resplimit: bulk length 10000000000 exceeds the 1 MiB limit"},
	{"endless-line", resptest.EndlessLine, []string{"INFO"}, "", "resplimit: status line longer than the 64 KiB limit"},
	{"garbage", resptest.Garbage, nil, "", "resplimit: unknown reply type byte '\\x00'"},
	{"resp3", resptest.RESP3, []string{"MEMORY DOCTOR"}, "", "resplimit: map of 1073741824 pairs exceeds the 1048576-element limit"},
	{"amplify", resptest.Amplify, []string{"MEMORY STATS"}, "", "resplimit: reply declares 16000024 bytes of allocations, over the 8 MiB budget"},
	{"oversized-info", 0, nil, infoOfSize(resplimit.DefaultBulk + 1), "resplimit: bulk length 1048577 exceeds the 1 MiB limit"},
}

// infoOfSize returns an INFO text of n bytes: resptest's, then short
// "fN:N" lines.
func infoOfSize(n int) string {
	var b strings.Builder
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

// hostileFleet is a running mixed fleet.
type hostileFleet struct {
	instances string   // the config's instances, YAML
	healthy   []string // probed in full: the healthy servers and the two hostile to the key scan only
	// keys maps the servers hostile to the key scan only to what the
	// scan's error must say.
	keys map[string]string
}

// startHostileFleet starts 4 healthy resptest servers (each fragmented and
// rejecting writes), the hostile members, a resptest server hostile to
// SCAN and a real redis-server behind a proxy hostile to MEMORY USAGE.
func startHostileFleet(t *testing.T) *hostileFleet {
	t.Helper()
	f := &hostileFleet{keys: map[string]string{}}
	var instances strings.Builder
	add := func(name, addr string) {
		instances.WriteString(instanceYAML(name, addr))
	}
	// Healthy but in trouble: fragmented, and full under noeviction, so
	// writes fail, which a sweep alerts on at once.
	oomInfo := strings.Replace(resptest.DefaultInfo, "\nmaxmemory:0\r", "\nmaxmemory:60000000\r", 1) + "errorstat_OOM:count=12\r\n"
	if !strings.Contains(oomInfo, "\nmaxmemory:60000000\r") {
		t.Fatal("resptest.DefaultInfo has no maxmemory:0 line to replace")
	}
	for i := 1; i <= 4; i++ {
		s, err := resptest.Start(resptest.Healthy, oomInfo, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		name := fmt.Sprintf("ok-%d", i)
		f.healthy = append(f.healthy, name)
		add(name, s.Addr)
	}
	for _, m := range hostileMembers {
		start := func() (*resptest.Server, error) { return resptest.StartHostile(m.how, m.to...) }
		if m.how == 0 {
			start = func() (*resptest.Server, error) { return resptest.Start(resptest.Healthy, m.info, 0) }
		}
		s, err := start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		add(m.name, s.Addr)
	}

	// SCAN answered with an endless status line: resptest answers the
	// probe's commands like Redis and fails SCAN.
	scan, err := resptest.StartHostile(resptest.EndlessLine, "SCAN")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = scan.Close() })
	add("scan-hostile", scan.Addr)
	f.keys["scan-hostile"] = "SCAN: resplimit: status line longer than the 64 KiB limit"

	// MEMORY USAGE comes after a SCAN that returned keys, which resptest
	// cannot serve: a real server holds them, and a proxy in front of it
	// answers MEMORY USAGE with a 9-exabyte bulk header.
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	for i := range 50 {
		if err := c.Set(context.Background(), fmt.Sprintf("session:%d", i), strings.Repeat("v", 100), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	add("usage-hostile", startHostileProxy(t, srv.Addr, "MEMORY USAGE", "$9223372036854775806\r\nAAAAAAAA"))
	f.keys["usage-hostile"] = "TYPE, MEMORY USAGE, PTTL: resplimit: bulk length 9223372036854775806 exceeds the 1 MiB limit"
	f.healthy = append(f.healthy, "scan-hostile", "usage-hostile")

	f.instances = instances.String()
	return f
}

// TestCLIHostileFleet drives the CLI over the mixed fleet: fleet, diagnose,
// frag, doctor and keys each return well within the probe timeout with a
// report of every instance asked about, the healthy ones diagnosed in
// full, the hostile ones failed with class protocol and the limit their
// reply broke, exit code 3, and no panic.
func TestCLIHostileFleet(t *testing.T) {
	f := startHostileFleet(t)
	cfg := writeConfig(t, fmt.Sprintf("probe:\n  timeout: %s\nkeys:\n  budget: 1000000\ninstances:\n%s", hostileProbeTimeout, f.instances))
	call := func(args ...string) result {
		t.Helper()
		start := time.Now()
		res := runCLI(t, nil, append(args, "--config", cfg)...)
		if took := time.Since(start); took >= hostileProbeTimeout {
			t.Errorf("%s took %s: a reply was read until the probe timeout (%s)", strings.Join(args, " "), took, hostileProbeTimeout)
		}
		if res.code == exitInternal || strings.Contains(res.stderr, "internal error") || strings.Contains(res.stderr, "panic") {
			t.Errorf("%s: exit %d, stderr:\n%s", strings.Join(args, " "), res.code, res.stderr)
		}
		return res
	}

	res := call("fleet", "--json")
	if res.code != exitError {
		t.Errorf("fleet exit %d, want %d (probe errors)", res.code, exitError)
	}
	var reports []jsonReport
	if err := json.Unmarshal([]byte(res.stdout), &reports); err != nil {
		t.Fatalf("fleet --json is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, res.stdout, res.stderr)
	}
	byName := map[string]jsonReport{}
	for _, r := range reports {
		byName[r.Instance] = r
	}
	if len(reports) != len(f.healthy)+len(hostileMembers) || len(byName) != len(reports) {
		t.Errorf("%d reports for %d instances", len(reports), len(f.healthy)+len(hostileMembers))
	}
	for _, name := range f.healthy {
		checkDiagnosed(t, name, byName[name])
	}
	for _, m := range hostileMembers {
		checkProtocolFailure(t, m.name, byName[m.name], m.want)
	}

	// The text table has a row for every instance; a hostile one's says
	// why it has no numbers.
	res = call("fleet")
	rows := map[string]string{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if cols := strings.Fields(line); len(cols) > 2 {
			rows[cols[1]] = unwrapped(line)
		}
	}
	for _, name := range f.healthy {
		if row := rows[name]; !strings.Contains(row, "MiB") || strings.Contains(row, "unreachable") {
			t.Errorf("fleet text: %s row %q, want its numbers", name, row)
		}
	}
	for _, m := range hostileMembers {
		if row := rows[m.name]; !strings.HasSuffix(row, "unreachable (protocol)") {
			t.Errorf("fleet text: %s row %q, want unreachable (protocol)", m.name, row)
		}
	}
	if res.code != exitError {
		t.Errorf("fleet (text) exit %d, want %d", res.code, exitError)
	}

	// Each hostile instance, one verb at a time.
	for _, m := range hostileMembers {
		rep, res := diagnoseJSON(t, cfg, m.name)
		if res.code != exitError {
			t.Errorf("diagnose %s --json: exit %d, want %d", m.name, res.code, exitError)
		}
		checkProtocolFailure(t, m.name, rep, m.want)
		for _, verb := range []string{"diagnose", "frag", "doctor"} {
			res := call(verb, m.name)
			if text := unwrapped(res.stdout); res.code != exitError || !strings.Contains(text, "Probe failed (protocol)") || !strings.Contains(text, m.want) {
				t.Errorf("%s %s: exit %d, want %d and the limit %q\nstdout:\n%s\nstderr:\n%s", verb, m.name, res.code, exitError, m.want, res.stdout, res.stderr)
			}
		}
	}
	// A healthy instance of the same fleet is diagnosed as usual.
	healthy, res := diagnoseJSON(t, cfg, "ok-1")
	if res.code != exitCritical {
		t.Errorf("diagnose ok-1: exit %d, want %d (critical findings)", res.code, exitCritical)
	}
	checkDiagnosed(t, "ok-1", healthy)
	wantFinding(t, healthy, "frag-high", "critical")

	// keys: the probe passes, the scan fails on the hostile reply and the
	// report says which limit, in text and JSON.
	for name, want := range f.keys {
		res := call("keys", name)
		if text := unwrapped(res.stdout); res.code != exitError || !strings.Contains(text, "Key scan failed (protocol)") || !strings.Contains(text, want) {
			t.Errorf("keys %s: exit %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", name, res.code, exitError, want, res.stdout, res.stderr)
		}
		res = call("keys", name, "--json")
		var rep jsonReport
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("keys %s --json: %v\n%s", name, err, res.stdout)
		}
		if res.code != exitError || rep.Error == nil || rep.Error.Class != "protocol" || !strings.Contains(rep.Error.Message, want) || len(rep.Metrics) == 0 {
			t.Errorf("keys %s --json: exit %d, error %+v, %d metrics; want protocol with %q after a full probe", name, res.code, rep.Error, len(rep.Metrics), want)
		}
	}
}

// checkDiagnosed fails unless rep is a full diagnosis: no error, the
// metrics of INFO, and findings.
func checkDiagnosed(t *testing.T, name string, rep jsonReport) {
	t.Helper()
	if rep.Instance != name || rep.Error != nil || len(rep.Metrics) == 0 || len(rep.Findings) == 0 || len(rep.Missing) != 0 {
		t.Errorf("%s: not diagnosed in full: instance %q, error %+v, %d metrics, findings %v, missing %v",
			name, rep.Instance, rep.Error, len(rep.Metrics), rep.ids(), rep.Missing)
	}
}

// checkProtocolFailure fails unless rep is a failed probe of class
// protocol whose message names the limit.
func checkProtocolFailure(t *testing.T, name string, rep jsonReport, want string) {
	t.Helper()
	if rep.Instance != name || rep.Error == nil || rep.Error.Class != "protocol" || !strings.Contains(rep.Error.Message, want) {
		t.Errorf("%s: error %+v, want class protocol saying %q", name, rep.Error, want)
		return
	}
	if len(rep.Findings) != 1 || rep.Findings[0].ID != "unreachable" {
		t.Errorf("%s: findings %v, want only unreachable", name, rep.ids())
	}
}

// unwrapped undoes the terminal renderer's wrapping of long lines.
func unwrapped(s string) string { return strings.Join(strings.Fields(s), " ") }

// startHostileProxy starts a proxy to a real server that answers one
// command (such as "MEMORY USAGE") itself, with answer, and closes the
// connection; every other command goes to the server and its reply back.
// It returns the proxy's address. No real server sends a hostile reply
// to one command among valid ones, and resptest cannot serve the keys a
// SCAN must return before the key scan sends MEMORY USAGE.
//
// The matching command is sent to the server as ECHO of a marker, so its
// reply keeps its place in a pipeline; the proxy swaps the marker's reply
// for the answer. Replies are copied line by line: the keys the tests
// use hold no newline that could split the marker's reply.
func startHostileProxy(t *testing.T, backend, command, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "redisbot-hostile-proxy-marker"
	echo := fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", len(marker), marker)
	markerHeader := "$" + strconv.Itoa(len(marker)) + "\r\n"
	words := strings.Fields(command)

	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		conns[c] = struct{}{}
		return true
	}
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})

	serve := func(client net.Conn) {
		server, err := net.Dial("tcp", backend)
		if err != nil || !track(server) {
			_ = client.Close()
			return
		}
		done := func() { _ = client.Close(); _ = server.Close() }
		wg.Add(2)
		go func() { // commands: client to server
			defer wg.Done()
			defer done()
			r, w := bufio.NewReader(client), bufio.NewWriter(server)
			for {
				raw, args, err := readCommand(r)
				if err != nil {
					return
				}
				if matches(args, words) {
					raw = echo
				}
				if _, err := w.WriteString(raw); err != nil {
					return
				}
				if r.Buffered() == 0 && w.Flush() != nil {
					return
				}
			}
		}()
		go func() { // replies: server to client
			defer wg.Done()
			defer done()
			r, w := bufio.NewReader(server), bufio.NewWriter(client)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if line == markerHeader {
					next, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if next == marker+"\r\n" {
						_, _ = w.WriteString(answer)
						_ = w.Flush()
						return
					}
					line += next
				}
				if _, err := w.WriteString(line); err != nil {
					return
				}
				if r.Buffered() == 0 && w.Flush() != nil {
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				_ = c.Close()
				return
			}
			serve(c)
		}
	}()
	return ln.Addr().String()
}

// readCommand reads one command as go-redis sends it, an array of bulk
// strings, and returns its bytes and its arguments.
func readCommand(r *bufio.Reader) (string, []string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return "", nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(head, "*"), "\r\n"))
	if err != nil || !strings.HasPrefix(head, "*") || n < 0 || n > 1024 {
		return "", nil, fmt.Errorf("not a command: %q", head)
	}
	raw := head
	args := make([]string, 0, n)
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		size, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "$"), "\r\n"))
		if err != nil || size < 0 || size > 1<<20 {
			return "", nil, fmt.Errorf("not a bulk string: %q", line)
		}
		arg := make([]byte, size+2)
		if _, err := io.ReadFull(r, arg); err != nil {
			return "", nil, err
		}
		raw += line + string(arg)
		args = append(args, string(arg[:size]))
	}
	return raw, args, nil
}

// matches reports whether args start with words, ignoring case.
func matches(args, words []string) bool {
	if len(args) < len(words) {
		return false
	}
	for i, w := range words {
		if !strings.EqualFold(args[i], w) {
			return false
		}
	}
	return true
}

// TestServeHostileFleet runs `redisbot serve` with a sweep every second
// over the mixed fleet and the local Slack: sweeps keep completing, the
// healthy instances' findings and the hostile ones' protocol failures are
// alerted, /redis diagnose answers for both kinds, the process never
// restarts (run does not return until stopped, then exits 0) and its heap
// stays under a bound.
func TestServeHostileFleet(t *testing.T) {
	f := startHostileFleet(t)
	heap := sampleHeap(t)
	// An unreachable instance is alerted after two minutes of failed
	// sweeps. The store starts as a bot restarted after watching the
	// hostile servers fail for three: their alerts pending since then, so
	// the first sweep fires them.
	storePath := filepath.Join(t.TempDir(), "redisbot.db")
	seedPendingAlerts(t, storePath, time.Now().Add(-3*time.Minute))
	// 9 of the 15 instances fail every sweep: over the default storm
	// threshold (half the fleet), where one summary replaces the
	// per-instance alerts this test wants to see.
	settings := fmt.Sprintf("schedule:\n  sweep: \"@every 1s\"\n  lease: 3s\nalerts:\n  channel: %s\n  storm_threshold: 0.75\nstore:\n  path: %s\n", alertsChannel, storePath)
	bot := startBot(t, f.instances, settings, nil)
	fake := bot.fake

	alerted := func(name, finding string) func(slacktest.Post) bool {
		return func(p slacktest.Post) bool {
			text := p.BlocksText()
			return p.Method == "chat.postMessage" && p.Channel == alertsChannel && p.ThreadTS == "" &&
				strings.Contains(text, name) && strings.Contains(text, "`"+finding+"`")
		}
	}
	for _, name := range f.healthy[:4] {
		fake.WaitPosts(t, 1, 20*time.Second, alerted(name, "oom-rejecting"))
	}
	// The nine fail together: one group message lists them, each line
	// with its error class and error (alerts.group_threshold 5).
	for _, m := range hostileMembers {
		alert := fake.WaitPosts(t, 1, 20*time.Second, alerted(m.name, "unreachable"))[0]
		if text := alert.BlocksText(); !strings.Contains(text, "`"+m.name+"` CRITICAL · error_class protocol · error probe "+m.name+": protocol: ") ||
			!strings.Contains(text, slackEscape(m.want)) {
			t.Errorf("alert of %s does not say protocol and %q:\n%s", m.name, m.want, text)
		}
	}

	// Commands are answered while the sweeps go on, for both kinds.
	huge := hostileMembers[0]
	fake.SlashCommand(slash(onCall, "U1", "diagnose "+huge.name))
	fake.SlashCommand(slash(onCall, "U1", "diagnose ok-1"))
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		text := p.BlocksText()
		return inChannel(onCall)(p) && strings.Contains(text, huge.name) && strings.Contains(text, "protocol") && strings.Contains(text, huge.want)
	})
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return inChannel(onCall)(p) && strings.Contains(p.BlocksText(), "ok-1") && strings.Contains(p.BlocksText(), "frag-high")
	})

	// The sweeps go on. Two more after these answers: the last one starts
	// after mark, and every healthy instance's snapshot in the store is
	// from it, while no hostile instance has one.
	waitSweeps(t, bot.logs, 3)
	mark := time.Now()
	waitSweeps(t, bot.logs, sweepsDone(t, bot.logs)+2)
	for _, rec := range logRecords(t, bot.logs) {
		if msg := fmt.Sprint(rec["msg"]); strings.Contains(strings.ToLower(msg), "panic") || rec["level"] == "ERROR" {
			t.Errorf("log record %v", rec)
		}
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("Block Kit violations: %v", v)
	}
	if code := bot.stop(); code != exitOK {
		t.Errorf("exit = %d, want 0 after a clean stop", code)
	}
	base, peak := heap()
	sweeps := sweepsDone(t, bot.logs)

	st, err := store.Open(context.Background(), store.Options{Path: storePath})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range f.healthy {
		if snap, ok := st.Last(context.Background(), name); !ok || !snap.ProbedAt.After(mark) {
			t.Errorf("%s: last snapshot %v (found %v), want one from a sweep after %s", name, snapshotTime(snap), ok, mark.Format(time.StampMilli))
		}
	}
	for _, m := range hostileMembers {
		if snap, ok := st.Last(context.Background(), m.name); ok {
			t.Errorf("%s: a snapshot from %s, want none", m.name, snap.ProbedAt)
		}
	}

	// The heap bound. With the race detector on, heap in use peaked at
	// 10.6 to 10.8 MiB over 5 sweeps, 4.5 MiB of it there before serve
	// started (the fake servers, the test); the bot's store, Slack client
	// and 15 probes take the rest. With the probe's limits of before
	// (16 MiB bulk strings, 32 MiB of allocations a reply, 64 MiB a
	// batch), the same test peaked at 134 MiB: amplify's first two headers
	// fitted in the budget, so go-redis made two 16 MB slices a sweep, and
	// the oversized INFO was parsed. 48 MiB leaves room for the GC's
	// timing and fails any return of either.
	t.Logf("heap in use: %.1f MiB before serve, peak %.1f MiB during %d sweeps", mib(base), mib(peak), sweeps)
	if limit := uint64(48 << 20); peak > limit {
		t.Errorf("heap in use peaked at %.1f MiB during %d sweeps, want at most %.0f MiB", mib(peak), sweeps, mib(limit))
	}
}

// slackEscape escapes text as mrkdwn does.
func slackEscape(text string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(text)
}

// snapshotTime is when s was probed, or nil for no snapshot.
func snapshotTime(s *handlers.Snapshot) any {
	if s == nil {
		return nil
	}
	return s.ProbedAt
}

// waitSweeps waits until the bot has logged n sweeps done.
func waitSweeps(t *testing.T, logs *syncBuffer, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Duration(n)*time.Second + 20*time.Second)
	for sweepsDone(t, logs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sweeps done, want %d; logs:\n%s", sweepsDone(t, logs), n, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seedPendingAlerts writes, to the bbolt store at path, a pending
// unreachable alert for each hostile member, pending since since.
func seedPendingAlerts(t *testing.T, path string, since time.Time) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, m := range hostileMembers {
		a := store.Alert{Alert: alerts.Alert{Instance: m.name, Finding: "unreachable", State: alerts.StatePending, Severity: handlers.SeverityCritical, PendingSince: since, FiringSince: since}}
		if err := st.PutAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// sweepsDone counts the sweeps the bot logged as done.
func sweepsDone(t *testing.T, logs *syncBuffer) int {
	n := 0
	for _, rec := range logRecords(t, logs) {
		if rec["msg"] == "sweep done" {
			n++
		}
	}
	return n
}

// sampleHeap reads the process's heap in use every 10 ms until the
// returned function is called, which returns the first sample and the
// highest.
func sampleHeap(t *testing.T) func() (first, peak uint64) {
	t.Helper()
	done := make(chan struct{})
	result := make(chan [2]uint64, 1)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	first := ms.HeapInuse
	go func() {
		peak := first
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				result <- [2]uint64{first, peak}
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop := func() (uint64, uint64) {
		once.Do(func() { close(done) })
		r := <-result
		return r[0], r[1]
	}
	t.Cleanup(func() { once.Do(func() { close(done) }) })
	return stop
}
