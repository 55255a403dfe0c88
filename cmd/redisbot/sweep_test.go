package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers/redistest"
)

const alertsChannel = "C0ALERTS"

// fullServer is a noeviction server filled until it rejects writes: the
// oom-rejecting finding fires on the first sweep.
func fullServer(t *testing.T) *redistest.Server {
	t.Helper()
	srv := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	c := srv.Client()
	defer c.Close()
	if err := redistest.FillUntilOOM(context.Background(), c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
	return srv
}

func alertPosts(fake *slacktest.Server, instance, finding string) int {
	n := 0
	for _, p := range fake.Posts() {
		if p.Method == "chat.postMessage" && p.Channel == alertsChannel && p.ThreadTS == "" &&
			strings.Contains(p.BlocksText(), instance) && strings.Contains(p.BlocksText(), "`"+finding+"`") {
			n++
		}
	}
	return n
}

func sweepYAML(extra string) string {
	return "schedule:\n  sweep: \"@every 1s\"\n  lease: 3s\nalerts:\n  channel: " + alertsChannel + "\n  oncall_group: S0ONCALL\n" + extra
}

// alertingBot is a bot sweeping one instance that rejects writes (OOM),
// with U0OP an operator, and the first alert it posted about it.
func alertingBot(t *testing.T) (*runningBot, slacktest.Post) {
	t.Helper()
	srv := fullServer(t)
	bot := startBot(t, instanceYAML("full-1", srv.Addr), sweepYAML("access:\n  operators: [U0OP]\n"), nil)
	bot.fake.AllowMentions("<!subteam^S0ONCALL>", "<@U0*>")
	alert := bot.fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Channel == alertsChannel && p.ThreadTS == "" && strings.Contains(p.BlocksText(), "`oom-rejecting`")
	})[0]
	return bot, alert
}

func TestSweepAlertsOnceSnoozeAndTrend(t *testing.T) {
	bot, alert := alertingBot(t)
	fake := bot.fake
	if !strings.Contains(alert.BlocksText(), "CRITICAL") || !strings.Contains(alert.BlocksText(), "<!subteam^S0ONCALL>") {
		t.Errorf("critical alert without the on-call group:\n%s", alert.BlocksText())
	}
	time.Sleep(4 * time.Second) // four more sweeps
	if n := alertPosts(fake, "full-1", "oom-rejecting"); n != 1 {
		t.Errorf("%d alert messages for one condition, want 1", n)
	}
	// Each sweep logs under its own request id.
	sweeps := map[string]bool{}
	for _, rec := range logRecords(t, bot.logs) {
		if rec["msg"] == "sweep done" {
			sweeps[fmt.Sprint(rec["request"])] = true
		}
	}
	if delete(sweeps, "<nil>"); len(sweeps) < 3 {
		t.Errorf("sweeps logged with %d distinct request ids, want one each", len(sweeps))
	}

	// Snooze from the alert: an operator silences it for an hour.
	fake.Click("U0OP", alertsChannel, alert.TS, button(t, alert, "silence/oom-rejecting/1h"))
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == alert.TS && strings.Contains(p.BlocksText(), "`oom-rejecting` on `full-1` silenced by <@U0OP> for 1h")
	})
	fake.SlashCommand(slash(onCall, "U0OP", "silences"))
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "1 active silence")
	})

	// The sweeps recorded history: the trend chart goes up as a PNG in
	// the channel, its caption saying how much history there is.
	fake.SlashCommand(slash(onCall, "U0OP", "trend full-1 15m"))
	file := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool { return p.Method == "files.upload" })[0]
	if !strings.HasPrefix(string(file.File.Content), "\x89PNG") || file.ThreadTS != "" || file.Channel != onCall {
		t.Errorf("trend upload: %s, channel %q, thread %q", file.File.Name, file.Channel, file.ThreadTS)
	}
	if !strings.HasPrefix(file.Text, "full-1: memory, last ") || !strings.Contains(file.Text, "(window 15m)") {
		t.Errorf("trend caption %q", file.Text)
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestTwoReplicas runs two redisbot processes on one local Slack and one
// shared Redis store.
func TestTwoReplicas(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "redisbot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	stateRedis := redistest.StartT(t)
	full := fullServer(t)
	later := redistest.StartT(t, "--maxmemory", "20mb", "--maxmemory-policy", "noeviction")
	frag := redistest.StartT(t)
	{
		c := frag.Client()
		if err := redistest.Fragment(context.Background(), c, 500_000); err != nil {
			t.Fatal(err)
		}
		if err := redistest.WaitQuiet(context.Background(), c, 1000); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	fake := slacktest.New(t)
	fake.AllowMentions("<!subteam^S0ONCALL>", "<@U0*>")
	cfg := writeConfig(t, fmt.Sprintf("http:\n  listen: 127.0.0.1:0\nprobe:\n  timeout: 1s\nslack:\n  api_url: %s\nstore:\n  redis_url: redis://%s/0\n%s%s\ninstances:\n%s%s%s",
		fake.APIURL(), stateRedis.Addr, sweepYAML(""), "keys:\n  budget: 100\naccess:\n  operators: [U0OP]\n  approvers: [U0LEAD1, U0LEAD2]\n",
		instanceYAML("full-1", full.Addr), instanceYAML("later-1", later.Addr), instanceYAML("frag-1", frag.Addr)))

	var procs []*exec.Cmd
	for i := range 2 {
		cmd := exec.Command(bin, "serve", "--config", cfg, "--log-format", "json")
		cmd.Env = append(os.Environ(), "SLACK_APP_TOKEN="+slacktest.AppToken, "SLACK_BOT_TOKEN="+slacktest.BotToken)
		logf, _ := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("replica-%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	waitConnections(t, fake, 2)

	// A sweep posts exactly once, whichever replica leads.
	fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool {
		return p.Channel == alertsChannel && strings.Contains(p.BlocksText(), "`oom-rejecting`")
	})
	time.Sleep(4 * time.Second)
	if n := alertPosts(fake, "full-1", "oom-rejecting"); n != 1 {
		t.Fatalf("%d alert messages from two replicas, want 1", n)
	}

	// A request and two approvals delivered to either replica run once.
	fake.SlashCommand(slash(onCall, "U0OP", "bgsave frag-1"))
	msg := approvalMessageFor(t, fake, "bgsave", "frag-1")
	if doneLines := approveAll(t, fake, msg, []string{"U0LEAD1", "U0LEAD2"}); doneLines != 1 {
		t.Errorf("%d executions across two replicas, want 1", doneLines)
	}

	// One key scan of an instance across both replicas; Slack delivers
	// round-robin, so the second and third requests and the Cancel click
	// are spread over them, and a click on the other replica still stops it.
	fake.SlashCommand(slash(onCall, "U0OP", "keys frag-1"))
	progress := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "Scanning the keys of")
	})[0]
	fake.SlashCommand(slash(onCall, "U0LEAD1", "keys frag-1"))
	fake.SlashCommand(slash(onCall, "U0LEAD2", "keys frag-1"))
	fake.WaitPosts(t, 2, 10*time.Second, ephemeralTo("already running (started by <@U0OP>)"))
	fake.Click("U0OP", onCall, progress.TS, button(t, progress, "cancel-scan/"))
	fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == progress.TS && strings.Contains(p.BlocksText(), "(cancelled)")
	})

	// Kill the leader without warning: the other takes over within the
	// lease and alerts on a condition that appears after the kill.
	st, err := store.Open(context.Background(), store.Options{RedisURL: "redis://" + stateRedis.Addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Round-robin delivery put the click on the replica that was not
	// scanning: it passed the cancel on through the store.
	if facts, err := st.Facts(context.Background(), "_keyscans"); err != nil || len(facts) != 1 {
		t.Errorf("cancel requests in the store: %v, %v; want the click's", facts, err)
	}
	lease, ok, err := st.AcquireLease(context.Background(), "scheduler", "test-observer", time.Second)
	if err != nil || ok {
		t.Fatalf("lease: %+v ok=%v err=%v", lease, ok, err)
	}
	parts := strings.Split(lease.Holder, "/")
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	killed := false
	for _, p := range procs {
		if p.Process.Pid == pid {
			p.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	if !killed {
		t.Fatalf("leader %q is not one of the replicas", lease.Holder)
	}
	killedAt := time.Now()
	c := later.Client()
	defer c.Close()
	if err := redistest.FillUntilOOM(context.Background(), c, 1000, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
	posted := fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool {
		return p.Channel == alertsChannel && strings.Contains(p.BlocksText(), "later-1") && strings.Contains(p.BlocksText(), "`oom-rejecting`")
	})[0]
	if d := posted.At.Sub(killedAt); d > 3*time.Second+5*time.Second {
		t.Errorf("survivor alerted %v after the leader died (lease 3s)", d)
	}
	time.Sleep(3 * time.Second)
	if n := alertPosts(fake, "later-1", "oom-rejecting"); n != 1 {
		t.Errorf("%d alert messages after takeover, want 1", n)
	}
	if n := alertPosts(fake, "full-1", "oom-rejecting"); n != 1 {
		t.Errorf("the new leader re-posted an existing alert (%d messages)", n)
	}
}

func approvalMessageFor(t *testing.T, fake *slacktest.Server, action, instance string) slacktest.Post {
	t.Helper()
	return fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.ThreadTS == "" && strings.Contains(p.BlocksText(), action+" on "+instance+" · PENDING")
	})[0]
}

func TestDigest(t *testing.T) {
	full := fullServer(t)
	healthy := redistest.StartT(t, "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
	cfg := "schedule:\n  sweep: \"@every 1s\"\n  digest: \"@every 3s\"\n  lease: 3s\nalerts:\n  channel: " + alertsChannel + "\n"
	bot := startBot(t, instanceYAML("full-1", full.Addr)+instanceYAML("ok-1", healthy.Addr), cfg, nil)
	fake := bot.fake
	digest := fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool {
		return p.Channel == alertsChannel && strings.Contains(p.BlocksText(), "Redis memory digest")
	})[0]
	text := digest.BlocksText()
	for _, want := range []string{"1 critical", "0 warning", "2 instances", "full-1", "of maxmemory", "oom-rejecting"} {
		if !strings.Contains(text, want) {
			t.Errorf("digest lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "full-1") < 0 || strings.Contains(text, "`ok-1`") {
		t.Errorf("digest lists a healthy instance among the riskiest:\n%s", text)
	}
	// The chart of the riskiest goes into the channel, under the digest.
	chart := fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool {
		return p.Method == "files.upload" && p.File != nil && p.File.Name == "redis-digest.png"
	})[0]
	if !strings.HasPrefix(string(chart.File.Content), "\x89PNG") || chart.ThreadTS != "" {
		t.Errorf("digest chart: PNG %v, thread %q", strings.HasPrefix(string(chart.File.Content), "\x89PNG"), chart.ThreadTS)
	}
}
