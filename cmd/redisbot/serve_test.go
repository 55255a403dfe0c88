package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// syncBuffer collects the bot's logs from its goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type runningBot struct {
	fake *slacktest.Server
	logs *syncBuffer
	stop func() int
	cfg  string
}

const (
	onCall = "C0ONCALL"
	teamA  = "C0TEAMA"
)

// startBot runs `redisbot serve` against a local Slack with the instances
// and access section given, and waits until it is connected.
func startBot(t *testing.T, instances, accessYAML string, env map[string]string) *runningBot {
	t.Helper()
	fake := slacktest.New(t)
	// Port 0: tests do not compete for the default metrics port.
	httpYAML := "http:\n  listen: 127.0.0.1:0\n"
	if strings.Contains(accessYAML, "http:") {
		httpYAML = ""
	}
	cfg := writeConfig(t, fmt.Sprintf("%sprobe:\n  timeout: 1s\nslack:\n  api_url: %s\n  shutdown_timeout: 5s\n%s\ninstances:\n%s", httpYAML, fake.APIURL(), accessYAML, instances))
	return launchBot(t, fake, cfg, env)
}

// launchBot runs `redisbot serve` with a config file against a local Slack.
func launchBot(t *testing.T, fake *slacktest.Server, cfg string, env map[string]string) *runningBot {
	t.Helper()
	return launchBotWith(t, wiring{}, fake, cfg, env)
}

// launchBotWith is launchBot with test wiring (a fault injected).
func launchBotWith(t *testing.T, w wiring, fake *slacktest.Server, cfg string, env map[string]string) *runningBot {
	t.Helper()
	connected := fake.Connections()
	if env == nil {
		env = map[string]string{}
	}
	env["SLACK_APP_TOKEN"], env["SLACK_BOT_TOKEN"] = slacktest.AppToken, slacktest.BotToken
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- w.run(ctx, []string{"serve", "--config", cfg, "--log-format", "json"}, func(k string) string { return env[k] }, &bytes.Buffer{}, logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for fake.Connections() == connected {
		if time.Now().After(deadline) {
			t.Fatalf("bot did not connect; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	var exit int
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case exit = <-code:
			case <-time.After(15 * time.Second):
				t.Fatalf("bot did not stop; logs:\n%s", logs.String())
			}
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	return &runningBot{fake: fake, logs: logs, stop: stop, cfg: cfg}
}

func slash(channel, user, text string) slack.SlashCommand {
	return slack.SlashCommand{ChannelID: channel, ChannelName: "oncall", UserID: user, UserName: "someone", Command: "/redis", Text: text, TeamID: "T1"}
}

func inChannel(channel string) func(slacktest.Post) bool {
	return func(p slacktest.Post) bool { return p.Method == "chat.postMessage" && p.Channel == channel }
}

// ephemeralTo matches an ephemeral reply containing text, ignoring case and
// the backticks the renderer puts around names.
func ephemeralTo(text string) func(slacktest.Post) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "`", "")) }
	return func(p slacktest.Post) bool {
		return (p.Method == "response_url" || p.Method == "chat.postEphemeral") && strings.Contains(norm(p.Text+p.BlocksText()), norm(text))
	}
}

// button finds the first button whose action id starts with prefix, in an
// actions block or beside a section.
func button(t *testing.T, p slacktest.Post, prefix string) slack.BlockAction {
	t.Helper()
	type element struct {
		Type     string `json:"type"`
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	}
	var blocks []struct {
		Type      string    `json:"type"`
		BlockID   string    `json:"block_id"`
		Elements  []element `json:"elements"`
		Accessory *element  `json:"accessory"`
	}
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.Accessory != nil {
			b.Elements = append(b.Elements, *b.Accessory)
		}
		for _, e := range b.Elements {
			if e.Type == "button" && strings.HasPrefix(e.ActionID, prefix) {
				return slack.BlockAction{ActionID: e.ActionID, BlockID: b.BlockID, Value: e.Value, Type: "button"}
			}
		}
	}
	t.Fatalf("no %s button in %s", prefix, p.Blocks)
	return slack.BlockAction{}
}

func TestSlackDiagnoseAndRunbookButton(t *testing.T) {
	srv := redistest.StartT(t, "--requirepass", "frag-S3CRET")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "frag-S3CRET", Protocol: 2})
	defer c.Close()
	if err := redistest.Fragment(context.Background(), c, 500_000); err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, instanceYAML("frag-1", srv.Addr, "password_env: FRAG_PW"), "", map[string]string{"FRAG_PW": "frag-S3CRET"})
	fake := bot.fake

	env := fake.SlashCommand(slash(onCall, "U1", "diagnose frag-1"))
	if d := fake.WaitAck(t, env, 3*time.Second); d > time.Second {
		t.Errorf("ack took %v", d)
	}
	post := fake.WaitPosts(t, 1, 10*time.Second, inChannel(onCall))[0]
	text := post.BlocksText()
	for _, want := range []string{"frag-1", "frag-high", "High memory fragmentation", "mem_fragmentation_ratio"} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, text)
		}
	}

	// "Full runbook" posts the runbook, with live numbers, in the thread.
	fake.Click("U1", onCall, post.TS, button(t, post, "runbook/frag-high"))
	rb := fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool { return p.Method == "chat.postMessage" && p.ThreadTS == post.TS })
	for _, want := range []string{"Why it happens", "How to confirm", "MEMORY PURGE"} {
		if !strings.Contains(rb[0].BlocksText(), want) {
			t.Errorf("runbook lacks %q", want)
		}
	}

	// @redisbot works like the slash command and answers in the thread.
	fake.AppMention(onCall, "U1", "<@UBOT> frag frag-1")
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.ThreadTS != "" && p.ThreadTS != post.TS && strings.Contains(strings.ToLower(p.BlocksText()), "decision tree")
	})

	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("Block Kit violations: %v", v)
	}
	if code := bot.stop(); code != exitOK {
		t.Errorf("exit = %d", code)
	}
	for _, secret := range []string{slacktest.AppToken, slacktest.BotToken, "frag-S3CRET"} {
		if strings.Contains(bot.logs.String(), secret) {
			t.Errorf("logs contain a secret %q", secret)
		}
	}
}

func TestSlackBadInputNeverReachesRedis(t *testing.T) {
	// An instance that counts connections: none of these commands may
	// open one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	conns := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns++
			mu.Unlock()
			c.Close()
		}
	}()
	accessYAML := fmt.Sprintf("access:\n  channels:\n    - id: %s\n    - id: %s\n      tags: [team-a]\n  viewers: [U0VIEWER]\n", onCall, teamA)
	bot := startBot(t, instanceYAML("cache-1", l.Addr().String(), "tags: [team-b]")+instanceYAML("cache-2", l.Addr().String(), "tags: [team-a]"), accessYAML, nil)
	fake := bot.fake

	cases := []struct {
		channel, user, text, want string
	}{
		{onCall, "U0VIEWER", "diagnose cache-3", "did you mean cache-1, cache-2?"},
		{onCall, "U0VIEWER", "diagnoze cache-1", `unknown verb "diagnoze"`},
		{onCall, "U0VIEWER", "diagnose", "diagnose takes an instance name"},
		{onCall, "U0VIEWER", "diagnose " + strings.Repeat("x", 1200), "the limit is 1000"},
		{onCall, "U0VIEWER", "diagnose \"cache-1", "unbalanced quotes"},
		{onCall, "U0VIEWER", "diagnose cache-1\x07", "control characters"},
		{onCall, "U0VIEWER", "diagnose 10.0.0.5:6379", "unknown instance 10.0.0.5:6379"},
		{"C0RANDOM", "U0VIEWER", "diagnose cache-1", "does not answer in this channel"},
		{onCall, "U0STRANGER", "diagnose cache-1", "needs the viewer role"},
		// team-a's channel does not see cache-1, nor learn its name.
		{teamA, "U0VIEWER", "diagnose cache-1", "unknown instance cache-1."},
		{onCall, "U0VIEWER", "help", "/redis diagnose &lt;instance&gt;"},
		// The verb table says where a verb runs and the role it needs.
		{onCall, "U0VIEWER", "serve", "serve runs only at a terminal"},
		{onCall, "U0VIEWER", "silence cache-1 4h", "This needs the operator role"},
		{onCall, "U0VIEWER", "purge cache-1", "This needs the operator role"},
		// A user cannot make the bot ping the channel.
		{onCall, "U0VIEWER", "diagnose <!channel>", "unknown instance"},
	}
	for _, tc := range cases {
		env := fake.SlashCommand(slash(tc.channel, tc.user, tc.text))
		fake.WaitAck(t, env, 3*time.Second)
		fake.WaitPosts(t, 1, 5*time.Second, ephemeralTo(tc.want))
	}
	for _, p := range fake.Posts() {
		if p.Method == "chat.postMessage" {
			t.Errorf("bad input produced a channel message: %s", p.Text)
		}
		if strings.Contains(p.Text+p.BlocksText(), "<!channel>") {
			t.Errorf("unescaped <!channel> posted: %s", p.Text)
		}
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("Block Kit violations: %v", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 0 {
		t.Errorf("bad input opened %d connections to Redis", conns)
	}
}

func TestSlackRateLimitsAndReconnects(t *testing.T) {
	srv := redistest.StartT(t)
	bot := startBot(t, instanceYAML("cache-1", srv.Addr), "", nil)
	fake := bot.fake

	// Slack answers 429 twice: the reply waits Retry-After and arrives.
	fake.RateLimit("chat.postMessage", 2, time.Second)
	start := time.Now()
	fake.SlashCommand(slash(onCall, "U1", "oom cache-1"))
	fake.WaitPosts(t, 1, 15*time.Second, inChannel(onCall))
	if fake.RateLimited("chat.postMessage") != 2 {
		t.Errorf("429s served = %d", fake.RateLimited("chat.postMessage"))
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("reply after %v: Retry-After not respected", d)
	}
	// The retries are logged under the command's request id.
	waitLog(t, bot.logs, "command done")
	var limited, done []string
	for _, rec := range logRecords(t, bot.logs) {
		switch rec["msg"] {
		case "slack rate limit":
			limited = append(limited, fmt.Sprint(rec["request"]))
		case "command done":
			done = append(done, fmt.Sprint(rec["request"]))
		}
	}
	if len(limited) != 2 || len(done) != 1 || limited[0] != done[0] || limited[1] != done[0] || len(done[0]) != 12 {
		t.Errorf("request ids: rate limit %v, command done %v", limited, done)
	}

	// The socket drops: the bot reconnects and answers the next command.
	fake.DropConnections()
	waitConnections(t, fake, 2)
	fake.SlashCommand(slash(onCall, "U1", "doctor cache-1"))
	fake.WaitPosts(t, 2, 15*time.Second, inChannel(onCall))

	// Slack asks it to reconnect (connection rotation).
	fake.Disconnect("refresh_requested")
	waitConnections(t, fake, 3)
	fake.SlashCommand(slash(onCall, "U1", "frag cache-1"))
	fake.WaitPosts(t, 3, 15*time.Second, inChannel(onCall))
}

// logRecords parses the bot's JSON log lines.
func logRecords(t *testing.T, logs *syncBuffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		recs = append(recs, rec)
	}
	return recs
}

func waitLog(t *testing.T, logs *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs:\n%s", text, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitConnections(t *testing.T, fake *slacktest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for fake.Connections() < n {
		if time.Now().After(deadline) {
			t.Fatalf("connections = %d, want %d", fake.Connections(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSlackShutdownFinishesInFlightCommands(t *testing.T) {
	// A blackholed instance: the command takes the whole probe timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	bot := startBot(t, instanceYAML("slow-1", l.Addr().String()), "", nil)
	env := bot.fake.SlashCommand(slash(onCall, "U1", "diagnose slow-1"))
	bot.fake.WaitAck(t, env, 3*time.Second)
	// SIGTERM while the probe waits: the command still gets its answer.
	if code := bot.stop(); code != exitOK {
		t.Errorf("exit = %d", code)
	}
	posts := bot.fake.WaitPosts(t, 1, time.Second, inChannel(onCall))
	if !strings.Contains(posts[0].BlocksText(), "unreachable") {
		t.Errorf("in-flight answer = %s", posts[0].BlocksText())
	}
}

func TestSlackServeNeedsTokens(t *testing.T) {
	cfg := writeConfig(t, "instances:\n"+instanceYAML("cache-1", "127.0.0.1:6379"))
	res := runCLI(t, map[string]string{}, "serve", "--config", cfg, "--log-format", "text")
	if res.code != exitError || !strings.Contains(res.stderr, "SLACK_APP_TOKEN") {
		t.Errorf("serve without tokens: exit %d, stderr %s", res.code, res.stderr)
	}
	res = runCLI(t, map[string]string{"SLACK_APP_TOKEN": "xoxb-WRONG-KIND", "SLACK_BOT_TOKEN": "xoxb-1"}, "serve", "--config", cfg, "--log-format", "text")
	if res.code != exitError || strings.Contains(res.stderr, "WRONG-KIND") {
		t.Errorf("serve with a bot token as app token: exit %d, stderr %s", res.code, res.stderr)
	}
}

func TestSlackViewerThroughUserGroup(t *testing.T) {
	srv := redistest.StartT(t)
	bot := startBot(t, instanceYAML("cache-1", srv.Addr), "access:\n  viewers: [S0ONCALL]\n", nil)
	bot.fake.AddUserGroup("S0ONCALL", "U0MEMBER")
	bot.fake.SlashCommand(slash(onCall, "U0MEMBER", "oom cache-1"))
	bot.fake.WaitPosts(t, 1, 10*time.Second, inChannel(onCall))
	bot.fake.SlashCommand(slash(onCall, "U0OUTSIDER", "oom cache-1"))
	bot.fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("needs the viewer role"))
	if n := len(bot.fake.WaitPosts(t, 1, time.Second, inChannel(onCall))); n != 1 {
		t.Errorf("%d channel posts, want only the member's", n)
	}
}

func TestMetricsAndHealthEndpoints(t *testing.T) {
	srv := redistest.StartT(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	bot := startBot(t, instanceYAML("cache-1", srv.Addr), "http:\n  listen: "+addr+"\nschedule:\n  sweep: \"@every 1s\"\n", nil)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Ready once Slack is connected, the store answers and a sweep ran.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	bot.fake.RateLimit("chat.postMessage", 1, time.Second)
	bot.fake.SlashCommand(slash(onCall, "U1", "oom cache-1"))
	bot.fake.WaitPosts(t, 1, 10*time.Second, inChannel(onCall))
	time.Sleep(200 * time.Millisecond)
	_, body := get("/metrics")
	for _, want := range []string{`redisbot_commands_total{outcome="ok",verb="oom"} 1`, "redisbot_ack_latency_seconds_count", "redisbot_sweeps_total",
		`redisbot_slack_rate_limited_total{method="chat.postMessage"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, secret := range []string{slacktest.AppToken, slacktest.BotToken} {
		if strings.Contains(body, secret) {
			t.Error("a token in /metrics")
		}
	}
}

// The sweep's delivery deadline follows from the time between two sweeps
// of the schedule.
func TestSweepInterval(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 30, 0, time.UTC)
	for spec, want := range map[string]time.Duration{
		"@every 1m":              time.Minute,
		"@every 10s":             10 * time.Second,
		"*/2 * * * *":            2 * time.Minute,
		"TZ=Europe/Paris @daily": 24 * time.Hour,
		"not a schedule":         0,
	} {
		if got := sweepInterval(spec, now); got != want {
			t.Errorf("sweepInterval(%q) = %v, want %v", spec, got, want)
		}
	}
}
