package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// panickingProber panics when it probes one instance, as go-redis did over
// a hostile reply before its reader was bounded: no real server makes a
// probe panic on demand. Every other instance is probed for real.
type panickingProber struct {
	real handlers.Prober
	bad  string
}

func (p panickingProber) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	if inst.Name == p.bad {
		var bulk []byte
		_ = bulk[len(inst.Name)] // a reader trusting a length the reply did not have
	}
	return p.real.Probe(ctx, inst)
}

func panicWhenProbing(name string) wiring {
	return wiring{prober: func(real handlers.Prober) handlers.Prober { return panickingProber{real, name} }}
}

func TestFleetJSONWithAPanickingInstance(t *testing.T) {
	var instances strings.Builder
	for i := 1; i <= 4; i++ {
		instances.WriteString(instanceYAML(fmt.Sprintf("cache-%d", i), redistest.StartT(t).Addr))
	}
	instances.WriteString(instanceYAML("hostile-1", "127.0.0.1:1"))
	cfg := writeConfig(t, "instances:\n"+instances.String())

	var stdout, stderr bytes.Buffer
	code := panicWhenProbing("hostile-1").run(context.Background(), []string{"fleet", "--json", "--config", cfg}, func(string) string { return "" }, &stdout, &stderr)
	if code != exitError {
		t.Errorf("exit = %d, want %d (a probe failed)", code, exitError)
	}
	var reports []jsonReport
	if err := json.Unmarshal(stdout.Bytes(), &reports); err != nil {
		t.Fatalf("fleet --json: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if len(reports) != 5 {
		t.Fatalf("%d reports, want all 5", len(reports))
	}
	for _, r := range reports {
		if r.Instance != "hostile-1" {
			if r.Error != nil || len(r.Metrics) == 0 {
				t.Errorf("%s: error %+v, %d metrics: a healthy instance must be probed as usual", r.Instance, r.Error, len(r.Metrics))
			}
			continue
		}
		if r.Error == nil || r.Error.Class != "internal" ||
			r.Error.Message != "internal error while probing: runtime error: index out of range [9] with length 0" {
			t.Errorf("hostile-1 error = %+v, want class internal", r.Error)
		}
	}
	// The stack goes to stderr, for the bug report; stdout stays JSON.
	for _, want := range []string{"redisbot: internal error in probe of hostile-1: runtime error: index out of range", "panickingProber.Probe"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// A panic that escapes every recovery (here, in run's own goroutine while
// wiring the service) exits 70 with the stack, never 2 ("critical").
func TestEscapedPanicExits70(t *testing.T) {
	cfg := writeConfig(t, "instances:\n"+instanceYAML("cache-1", "127.0.0.1:1"))
	w := wiring{prober: func(real handlers.Prober) handlers.Prober {
		var byName map[string]handlers.Prober
		byName["cache-1"] = real // assignment to entry in nil map
		return real
	}}
	var stdout, stderr bytes.Buffer
	code := w.run(context.Background(), []string{"diagnose", "cache-1", "--config", cfg}, func(string) string { return "" }, &stdout, &stderr)
	if code != exitInternal || exitInternal != 70 {
		t.Errorf("exit = %d, want 70", code)
	}
	for _, want := range []string{"redisbot: internal error: assignment to entry in nil map (a bug in redisbot", "goroutine ", "TestEscapedPanicExits70"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestServeFailsWhenHTTPListenIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	fake := slacktest.New(t)
	cfg := writeConfig(t, fmt.Sprintf("http:\n  listen: %s\nslack:\n  api_url: %s\nschedule:\n  sweep: \"@every 1s\"\ninstances:\n%s",
		addr, fake.APIURL(), instanceYAML("cache-1", "127.0.0.1:1")))
	env := map[string]string{"SLACK_APP_TOKEN": slacktest.AppToken, "SLACK_BOT_TOKEN": slacktest.BotToken}

	// A serve that ran on would only stop at this deadline, and exit 0.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"serve", "--config", cfg, "--log-format", "text"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != exitError || time.Since(start) > 5*time.Second {
		t.Errorf("serve on a taken port: exit %d after %v, want %d at once\n%s", code, time.Since(start), exitError, stderr.String())
	}
	for _, want := range []string{"cannot serve /metrics, /healthz and /readyz on http.listen " + addr, "address already in use"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	for _, secret := range []string{slacktest.AppToken, slacktest.BotToken} {
		if strings.Contains(stderr.String(), secret) {
			t.Error("a token in the start-up error")
		}
	}
	if n := fake.Connections(); n != 0 || len(fake.Posts()) != 0 {
		t.Errorf("serve connected to Slack %d times and posted %d messages before failing", n, len(fake.Posts()))
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	return freeAddrs(t, 1)[0]
}

// freeAddrs returns n distinct loopback addresses nothing listens on, for
// a server the test starts later. The ports come from below Linux's
// ephemeral range (32768-60999): a port the kernel chose for ":0" and this
// helper closed is the very next one it hands out, to any test of any
// package running beside this one, which then held the bot's http.listen.
// The listeners are all held until every port is chosen, so the n differ.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("no free loopback port found in %d tries", tries)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue // taken: try another
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestSlackProbePanicIsContained is `redisbot serve` with the local Slack
// and a probe that panics on one instance: the bot answers that command
// with the instance's internal failure, answers the next ones, and
// /metrics counts the panic and each command's real outcome.
func TestSlackProbePanicIsContained(t *testing.T) {
	srv := redistest.StartT(t)
	metricsAddr := freeAddr(t)
	fake := slacktest.New(t)
	cfg := writeConfig(t, fmt.Sprintf("probe:\n  timeout: 1s\nslack:\n  api_url: %s\n  shutdown_timeout: 5s\nhttp:\n  listen: %s\naccess:\n  viewers: [U0VIEWER]\ninstances:\n%s%s%s",
		fake.APIURL(), metricsAddr, instanceYAML("cache-1", srv.Addr), instanceYAML("hostile-1", "127.0.0.1:1"), instanceYAML("dead-1", freeAddr(t))))
	bot := launchBotWith(t, panicWhenProbing("hostile-1"), fake, cfg, nil)
	channelPost := func(text string) func(slacktest.Post) bool {
		return func(p slacktest.Post) bool {
			return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), text)
		}
	}

	fake.SlashCommand(slash(onCall, "U0VIEWER", "diagnose hostile-1"))
	answer := fake.WaitPosts(t, 1, 10*time.Second, channelPost("hostile-1"))[0]
	for _, want := range []string{"internal", "internal error while probing: runtime error: index out of range"} {
		if !strings.Contains(answer.BlocksText(), want) {
			t.Errorf("the answer about hostile-1 lacks %q:\n%s", want, answer.BlocksText())
		}
	}
	// The bot is still up and answering.
	fake.SlashCommand(slash(onCall, "U0VIEWER", "diagnose cache-1"))
	fake.WaitPosts(t, 1, 10*time.Second, channelPost("cache-1"))
	fake.SlashCommand(slash(onCall, "U0VIEWER", "diagnose dead-1"))
	fake.WaitPosts(t, 1, 10*time.Second, channelPost("dead-1"))
	fake.SlashCommand(slash(onCall, "U0VIEWER", "diagnose cache-9"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("unknown instance cache-9"))
	fake.SlashCommand(slash(onCall, "U0STRANGER", "diagnose cache-1"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("needs the viewer role"))
	fake.SlashCommand(slash(onCall, "U0VIEWER", "help"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("/redis diagnose"))

	waitLog(t, bot.logs, "recovered a panic")
	var panicLog map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		dones := 0
		for _, rec := range logRecords(t, bot.logs) {
			switch rec["msg"] {
			case "recovered a panic":
				panicLog = rec
			case "command done":
				dones++
			}
		}
		if dones == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d commands done, want 6:\n%s", dones, bot.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if panicLog["where"] != "probe" || panicLog["instance"] != "hostile-1" || len(fmt.Sprint(panicLog["request"])) != 12 ||
		!strings.Contains(fmt.Sprint(panicLog["stack"]), "panickingProber.Probe") {
		t.Errorf("the panic is logged as %v, want where, instance, request id and stack", panicLog)
	}

	body := scrape(t, metricsAddr)
	for _, want := range []string{
		`redisbot_panics_total{where="probe"} 1`,
		`redisbot_commands_total{outcome="internal",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="ok",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="probe_error",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="usage",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="refused",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="ok",verb="help"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code := bot.stop(); code != exitOK {
		t.Errorf("exit = %d", code)
	}
}

// A cron job that panics loses that run only: the scheduler runs it again
// on the next tick, and the panic is counted.
func TestCronJobPanicIsRecovered(t *testing.T) {
	m := metrics.New()
	var logs syncBuffer
	var runs atomic.Int64
	c := cron.New(cron.WithChain(recoverJobs(slog.New(slog.NewJSONHandler(&logs, nil)), m)))
	c.Schedule(cron.Every(time.Second), cron.FuncJob(func() {
		if runs.Add(1) == 1 {
			var jobs []func()
			jobs[0]() // index out of range
		}
	}))
	c.Start()
	defer func() { <-c.Stop().Done() }()
	deadline := time.Now().Add(10 * time.Second)
	for runs.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the job ran %d times, want a run after the panic", runs.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `"where":"cron"`) || !strings.Contains(logs.String(), "TestCronJobPanicIsRecovered") {
		t.Errorf("cron panic not logged with its stack:\n%s", logs.String())
	}
	srv := httpTestMetrics(t, m)
	if body := scrape(t, srv); !strings.Contains(body, `redisbot_panics_total{where="cron"} 1`) {
		t.Errorf("/metrics does not count the cron panic")
	}
}

// httpTestMetrics serves m's /metrics on a free port until the test ends.
func httpTestMetrics(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	ln, err := metrics.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.ServeListener(ctx, ln, m.Handler(metrics.Checks{}, nil, nil)) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}
