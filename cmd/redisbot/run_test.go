package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers/redistest"
)

// jsonReport mirrors the JSON contract: a test that decodes into it fails
// when a field is renamed.
type jsonReport struct {
	Instance string            `json:"instance"`
	ProbedAt time.Time         `json:"probed_at"`
	Severity string            `json:"severity"`
	Metrics  map[string]any    `json:"metrics"`
	Findings []jsonFinding     `json:"findings"`
	Path     []json.RawMessage `json:"path"`
	Missing  []string          `json:"missing"`
	Error    *struct {
		Class   string `json:"class"`
		Message string `json:"message"`
	} `json:"error"`
}

type jsonFinding struct {
	ID       string         `json:"id"`
	Severity string         `json:"severity"`
	Title    string         `json:"title"`
	Summary  string         `json:"summary"`
	Evidence map[string]any `json:"evidence"`
	Runbook  string         `json:"runbook"`
	Actions  []string       `json:"actions"`
}

func (r jsonReport) finding(id string) (jsonFinding, bool) {
	for _, f := range r.Findings {
		if f.ID == id {
			return f, true
		}
	}
	return jsonFinding{}, false
}

func (r jsonReport) ids() []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID+"="+f.Severity)
	}
	return out
}

// writeConfig writes a config with one instance per name=addr pair and
// extra YAML lines for each instance.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func instanceYAML(name, addr string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    addr: %s\n", name, addr)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, getenv, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func diagnoseJSON(t *testing.T, cfg, name string, verb ...string) (jsonReport, result) {
	t.Helper()
	v := "diagnose"
	if len(verb) > 0 {
		v = verb[0]
	}
	res := runCLI(t, nil, v, name, "--config", cfg, "--json")
	var rep jsonReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%s %s: bad JSON (%v)\nstdout: %s\nstderr: %s", v, name, err, res.stdout, res.stderr)
	}
	return rep, res
}

func wantFinding(t *testing.T, rep jsonReport, id string, severities ...string) jsonFinding {
	t.Helper()
	f, ok := rep.finding(id)
	if !ok {
		t.Fatalf("%s missing; findings: %v", id, rep.ids())
	}
	if len(severities) > 0 && !contains(severities, f.Severity) {
		t.Errorf("%s severity = %s, want one of %v (%s)", id, f.Severity, severities, f.Summary)
	}
	if f.Runbook != id || len(f.Evidence) == 0 || f.Summary == "" {
		t.Errorf("%s incomplete: %+v", id, f)
	}
	return f
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func exitFor(severity string) int {
	return map[string]int{"none": 0, "info": 0, "warning": 1, "critical": 2}[severity]
}

func TestDiagnoseFragmentedServer(t *testing.T) {
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	if err := redistest.Fragment(context.Background(), c, 500_000); err != nil {
		t.Fatal(err)
	}
	// 500k keys leave about 55 MB of allocator fragmentation; the default
	// floor of 100 MB is lowered so the recipe stays fast.
	cfg := writeConfig(t, "instances:\n"+instanceYAML("frag-1", srv.Addr, "thresholds: {alloc_frag_min_bytes: 10MB}"))
	rep, res := diagnoseJSON(t, cfg, "frag-1")

	fragHigh := wantFinding(t, rep, "frag-high", "warning", "critical")
	ratio := fragHigh.Evidence["mem_fragmentation_ratio"].(float64)
	if ratio < 1.5 {
		t.Errorf("mem_fragmentation_ratio = %v, want >= 1.5 after the recipe", ratio)
	}
	alloc := wantFinding(t, rep, "frag-allocator", "warning")
	if r := alloc.Evidence["allocator_frag_ratio"].(float64); r < 1.3 {
		t.Errorf("allocator_frag_ratio = %v, want >= 1.3", r)
	}
	// Debian's build cannot run active defrag, but CONFIG GET says "no":
	// the finding stands, the remediation issue handles the capability.
	wantFinding(t, rep, "defrag-disabled", "warning")
	wantFinding(t, rep, "maxmemory-unset", "warning")
	wantFinding(t, rep, "memory-doctor", "info")
	if _, ok := rep.finding("frag-noise"); ok {
		t.Error("frag-noise on a 60 MB instance")
	}
	if res.code != exitFor(rep.Severity) || rep.Severity == "none" {
		t.Errorf("exit = %d with severity %s", res.code, rep.Severity)
	}
	for _, key := range []string{"used_memory", "used_memory_rss", "mem_fragmentation_ratio", "allocator_frag_ratio", "maxmemory", "keys"} {
		if _, ok := rep.Metrics[key]; !ok {
			t.Errorf("metrics.%s missing", key)
		}
	}
	if time.Since(rep.ProbedAt) > time.Minute {
		t.Errorf("probed_at = %v", rep.ProbedAt)
	}

	// The frag verb shows the path through the decision tree.
	fragRep, _ := diagnoseJSON(t, cfg, "frag-1", "frag")
	if len(fragRep.Path) < 5 {
		t.Errorf("frag path has %d steps, want the whole tree", len(fragRep.Path))
	}
	if _, ok := fragRep.finding("maxmemory-unset"); ok {
		t.Error("frag verb shows OOM findings")
	}

	// Text output is the first screen: the summary, what to do first,
	// one line per finding and where the runbooks are.
	text := runCLI(t, nil, "diagnose", "frag-1", "--config", cfg)
	for _, want := range []string{"frag-high", "  First: ", "redisbot diagnose frag-1 ", "--runbook for the full runbook"} {
		if !strings.Contains(text.stdout, want) {
			t.Errorf("text output lacks %q", want)
		}
	}
	if strings.Contains(text.stdout, "Why it happens") {
		t.Errorf("the first screen prints runbooks:\n%s", text.stdout)
	}
	if strings.Contains(text.stdout, "\x1b[") {
		t.Error("colour codes in output that is not a terminal")
	}
}

func TestDiagnosePostPeak(t *testing.T) {
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	// 70 MB of data that stays, and a 250 MB peak that is deleted again.
	if err := redistest.Fill(ctx, c, "base:", 70_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	if err := redistest.Fill(ctx, c, "peak:", 250_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	if err := redistest.Delete(ctx, c, "peak:", 250_000); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "instances:\n"+instanceYAML("peak-1", srv.Addr))
	rep, _ := diagnoseJSON(t, cfg, "peak-1", "frag")
	f := wantFinding(t, rep, "frag-post-peak", "warning")
	if peak, used := f.Evidence["used_memory_peak"].(float64), f.Evidence["used_memory"].(float64); peak < 2*used {
		t.Errorf("peak %v not 2x used %v", peak, used)
	}
	wantFinding(t, rep, "frag-high", "info")
}

func TestDiagnoseNoevictionAtLimit(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	c := srv.Client()
	defer c.Close()
	if err := redistest.FillUntilOOM(context.Background(), c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "instances:\n"+instanceYAML("full-1", srv.Addr))
	rep, res := diagnoseJSON(t, cfg, "full-1", "oom")
	f := wantFinding(t, rep, "oom-rejecting", "critical")
	if n := f.Evidence["errorstat_OOM"].(float64); n < 1 {
		t.Errorf("errorstat_OOM = %v", n)
	}
	if !strings.Contains(f.Summary, "OOM command not allowed when used memory > 'maxmemory'") {
		t.Errorf("summary does not quote the error users see: %s", f.Summary)
	}
	// One finding carries the outage; the policy's is context, and the
	// limit is reached, not near.
	wantFinding(t, rep, "noeviction-trap", "info")
	if f, ok := rep.finding("maxmemory-near"); ok {
		t.Errorf("maxmemory-near beside oom-rejecting: %s", f.Summary)
	}
	if res.code != exitCritical {
		t.Errorf("exit = %d, want %d", res.code, exitCritical)
	}
}

func TestDiagnoseVolatileWithoutTTLs(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "30mb", "--maxmemory-policy", "volatile-lru")
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, c, "nottl:", 10_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "instances:\n"+instanceYAML("vol-1", srv.Addr))
	rep, _ := diagnoseJSON(t, cfg, "vol-1", "oom")
	wantFinding(t, rep, "volatile-no-ttl", "warning")

	// Eviction cannot free memory: the server rejects writes at the limit.
	if err := redistest.FillUntilOOM(ctx, c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
	rep, _ = diagnoseJSON(t, cfg, "vol-1", "oom")
	wantFinding(t, rep, "volatile-no-ttl", "critical")
	wantFinding(t, rep, "oom-rejecting", "critical")
}

func TestDiagnoseEvictingCache(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru")
	c := srv.Client()
	defer c.Close()
	if err := redistest.Fill(context.Background(), c, "lru:", 30_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "instances:\n"+instanceYAML("lru-1", srv.Addr))
	rep, _ := diagnoseJSON(t, cfg, "lru-1", "oom")
	f := wantFinding(t, rep, "evicting", "info")
	if n := f.Evidence["evicted_keys"].(float64); n < 1000 {
		t.Errorf("evicted_keys = %v", n)
	}
	if _, ok := rep.finding("oom-rejecting"); ok {
		t.Error("an LRU cache that evicts is not rejecting writes")
	}
}

func TestDiagnoseSmallUnlimitedInstance(t *testing.T) {
	srv := redistest.StartT(t)
	cfg := writeConfig(t, "instances:\n"+instanceYAML("tiny-1", srv.Addr))
	rep, res := diagnoseJSON(t, cfg, "tiny-1")
	wantFinding(t, rep, "maxmemory-unset", "warning")
	// A fresh server has a few MB of RSS for 1 MB of data: a high ratio
	// that means nothing.
	if f, ok := rep.finding("frag-noise"); ok && f.Severity != "info" {
		t.Errorf("frag-noise severity %s", f.Severity)
	}
	if _, ok := rep.finding("frag-high"); ok {
		t.Error("frag-high on a tiny instance")
	}
	if res.code != exitWarning {
		t.Errorf("exit = %d, want %d", res.code, exitWarning)
	}
}

func TestDiagnoseManyScriptsAndRSSLimit(t *testing.T) {
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	p := c.Pipeline()
	for i := range 1200 {
		p.ScriptLoad(ctx, fmt.Sprintf("return %d", i))
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// A memory limit just above the process's RSS puts it at the OOM killer's door.
	rss, err := c.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	rssBytes := infoInt(rss, "used_memory_rss")
	cfg := writeConfig(t, "instances:\n"+instanceYAML("lua-1", srv.Addr, fmt.Sprintf("memory_limit: %d", rssBytes*10/9)))
	rep, _ := diagnoseJSON(t, cfg, "lua-1")
	wantFinding(t, rep, "many-scripts", "warning")
	wantFinding(t, rep, "rss-near-limit", "critical")
}

func TestDiagnoseSlowSubscriberBuffers(t *testing.T) {
	srv := redistest.StartT(t, "--client-output-buffer-limit", "pubsub 0 0 0")
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	// A subscriber that never reads: its replies pile up in Redis.
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n")
	time.Sleep(50 * time.Millisecond)
	msg := strings.Repeat("x", 64<<10)
	p := c.Pipeline()
	for range 400 {
		p.Publish(ctx, "news", msg)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Redis accounts client memory in clientsCron, which visits every
	// client within about a second: wait for its numbers, not ours.
	deadline := time.Now().Add(5 * time.Second)
	for infoInt(c.Info(ctx, "memory").Val(), "mem_clients_normal") < 10<<20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cfg := writeConfig(t, "instances:\n"+instanceYAML("pub-1", srv.Addr))
	rep, _ := diagnoseJSON(t, cfg, "pub-1", "oom")
	f := wantFinding(t, rep, "client-buffers", "warning")
	if n := f.Evidence["mem_clients_normal"].(float64); n < 10<<20 {
		t.Errorf("mem_clients_normal = %v", n)
	}
}

func TestDiagnoseReplicaAboveMaxmemory(t *testing.T) {
	primary := redistest.StartT(t)
	replica := redistest.StartT(t, "--maxmemory", "5mb", "--replicaof", strings.Replace(primary.Addr, ":", " ", 1))
	pc := primary.Client()
	defer pc.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, pc, "r:", 20_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	rc := replica.Client()
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rc.DBSize(ctx).Val() < 20_000 {
		if time.Now().After(deadline) {
			t.Fatalf("replica has %d keys", rc.DBSize(ctx).Val())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cfg := writeConfig(t, "instances:\n"+instanceYAML("replica-1", replica.Addr))
	rep, _ := diagnoseJSON(t, cfg, "replica-1", "oom")
	// noeviction (the default): promoted, it would fail every write.
	wantFinding(t, rep, "replica-over-maxmemory", "warning")
	for _, id := range []string{"maxmemory-near", "oom-rejecting", "maxmemory-unset"} {
		if _, ok := rep.finding(id); ok {
			t.Errorf("%s on a replica that ignores maxmemory", id)
		}
	}
}

func TestDiagnoseReadOnlyUser(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "32mb")
	c := srv.Client()
	defer c.Close()
	if err := c.Do(context.Background(), "ACL", "SETUSER", "ro", "on", ">ro-pass", "+ping", "+info", "+memory|stats", "+memory|doctor").Err(); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "instances:\n"+instanceYAML("ro-1", srv.Addr, "username: ro", "password_env: RO_PASS"))
	res := runCLI(t, map[string]string{"RO_PASS": "ro-pass"}, "diagnose", "ro-1", "--config", cfg, "--json")
	var rep jsonReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%v: %s %s", err, res.stdout, res.stderr)
	}
	if rep.Error != nil {
		t.Fatalf("read-only user could not diagnose: %+v", rep.Error)
	}
	if !strings.Contains(strings.Join(rep.Missing, ";"), "CONFIG GET: noperm") {
		t.Errorf("missing = %v", rep.Missing)
	}
	if rep.Metrics["maxmemory"].(float64) != 32<<20 {
		t.Errorf("maxmemory from INFO = %v", rep.Metrics["maxmemory"])
	}
}

func TestBadInput(t *testing.T) {
	srv := redistest.StartT(t, "--requirepass", "server-S3CRET")
	deadAddr := freeAddr(t)
	cfg := writeConfig(t, "instances:\n"+
		instanceYAML("cache-1", srv.Addr, "password: wrong-S3CRET")+
		instanceYAML("cache-2", deadAddr)+
		instanceYAML("session-store", srv.Addr, "password_env: SESSION_PW"))
	env := map[string]string{"SESSION_PW": "server-S3CRET"}

	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		unreachCls string
	}{
		{name: "unknown instance names the closest", args: []string{"diagnose", "cache-3"}, code: exitError, stderr: `unknown instance "cache-3" (did you mean cache-1, cache-2?)`},
		{name: "missing instance argument", args: []string{"diagnose"}, code: exitError, stderr: "diagnose takes an instance name and, for its runbook, a finding (usage: diagnose <instance> [finding])"},
		{name: "unknown verb", args: []string{"diagnoze", "cache-1"}, code: exitError, stderr: `unknown verb "diagnoze"`},
		{name: "unknown flag", args: []string{"diagnose", "cache-1", "--jsn"}, code: exitError, stderr: "unknown flag: --jsn"},
		{name: "missing config file", args: []string{"diagnose", "cache-1", "--config", "/nonexistent/redisbot.yaml"}, code: exitError, stderr: "/nonexistent/redisbot.yaml"},
		{name: "wrong password", args: []string{"diagnose", "cache-1", "--json"}, code: exitError, stdout: `"class": "auth"`},
		{name: "refused", args: []string{"diagnose", "cache-2", "--json"}, code: exitError, stdout: `"class": "refused"`},
		{name: "fleet with one dead instance", args: []string{"fleet"}, code: exitError, stdout: "unreachable (refused)"},
		{name: "fleet with unknown tag", args: []string{"fleet", "--tag", "nope"}, code: exitError, stderr: `no instance has tag "nope"`},
		{name: "right password from the environment", args: []string{"diagnose", "session-store"}, code: exitWarning, stdout: "maxmemory-unset"},
		{name: "check-config", args: []string{"check-config"}, code: exitError, stdout: "error: auth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, env, append(tc.args, "--config", cfg)...)
			if tc.name == "missing config file" {
				res = runCLI(t, env, tc.args...)
			}
			if res.code != tc.code {
				t.Errorf("exit = %d, want %d\nstdout: %s\nstderr: %s", res.code, tc.code, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, res.stdout)
			}
			if !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, res.stderr)
			}
			if all := res.stdout + res.stderr; strings.Contains(all, "S3CRET") {
				t.Errorf("output leaks a password:\n%s", all)
			}
		})
	}
}

func TestFleetSortsByRisk(t *testing.T) {
	healthy := redistest.StartT(t, "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
	full := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	c := full.Client()
	defer c.Close()
	if err := redistest.FillUntilOOM(context.Background(), c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "instances:\n"+
		instanceYAML("a-healthy", healthy.Addr, "tags: [cache]")+
		instanceYAML("b-full", full.Addr, "tags: [cache, queue]"))
	res := runCLI(t, nil, "fleet", "--config", cfg, "--json")
	var reps []jsonReport
	if err := json.Unmarshal([]byte(res.stdout), &reps); err != nil {
		t.Fatalf("%v: %s", err, res.stdout)
	}
	if len(reps) != 2 || reps[0].Instance != "b-full" || reps[0].Severity != "critical" {
		t.Errorf("fleet order = %+v", reps)
	}
	if res.code != exitCritical {
		t.Errorf("exit = %d", res.code)
	}
	res = runCLI(t, nil, "fleet", "queue", "--config", cfg)
	if !strings.Contains(res.stdout, "b-full") || strings.Contains(res.stdout, "a-healthy") {
		t.Errorf("fleet queue:\n%s", res.stdout)
	}
}

func infoInt(info, field string) int64 {
	var n int64
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			fmt.Sscan(v, &n)
		}
	}
	return n
}
