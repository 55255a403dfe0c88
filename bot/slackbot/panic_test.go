package slackbot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/requestid"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/runbooks"
)

// panickingRouter panics on commands naming "boom", as a bug in a verb
// would (nothing real panics on demand), and passes the rest to the real
// service.
type panickingRouter struct{ svc *handlers.Service }

func (r panickingRouter) Handle(ctx context.Context, cmd handlers.Command) (*handlers.Response, error) {
	for _, a := range cmd.Args {
		if a == "boom" {
			var reports []*handlers.Report
			_ = reports[len(cmd.Args)].Instance // index out of range
		}
	}
	return r.svc.Handle(ctx, cmd)
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the JSON log lines with the given message.
func (l *syncLog) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func ephemeralWith(text string) func(slacktest.Post) bool {
	return func(p slacktest.Post) bool {
		return (p.Method == "response_url" || p.Method == "chat.postEphemeral") && strings.Contains(p.Text+p.BlocksText(), text)
	}
}

// TestCommandPanicIsAnsweredAndCounted runs the real transport against the
// local Slack: a command whose verb panics gets the internal-error answer,
// the next command works, and /metrics counts the panic and every outcome.
func TestCommandPanicIsAnsweredAndCounted(t *testing.T) {
	srv := redistest.StartT(t)
	fake := slacktest.New(t)
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p := probe.New(time.Second, nil)
	defer p.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close() // nothing listens: a refused probe
	svc := handlers.NewService([]handlers.Instance{
		{Name: "cache-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()},
		{Name: "dead-1", Addr: deadAddr, Thresholds: handlers.DefaultThresholds()},
	}, p, nil, 4, nil)
	m := metrics.New()
	var logs syncLog
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(fake.APIURL()))
	bot := slackbot.New(slackbot.Options{
		Outbox: outbox.New(outbox.Options{API: api, Metrics: m}), Socket: socketmode.New(api), Router: panickingRouter{svc},
		Access:   access.New(access.Rules{Channels: []access.Channel{{ID: "C1"}}}, nil, time.Minute, nil),
		Runbooks: lib, APIURL: fake.APIURL(), Workers: 2, Queue: 16, ShutdownTimeout: 5 * time.Second,
		Metrics: m, Logger: slog.New(requestid.Handler(slog.NewJSONHandler(&logs, nil))),
		KeyScans: slackbot.KeyScanOptions{ProgressEvery: time.Hour},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for fake.Connections() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	slash := func(channel, text string) {
		fake.WaitAck(t, fake.SlashCommand(slack.SlashCommand{ChannelID: channel, UserID: "U1", Command: "/redis", Text: text}), 3*time.Second)
	}

	slash("C1", "diagnose boom")
	answer := fake.WaitPosts(t, 1, 10*time.Second, ephemeralWith("Something went wrong (internal error, ref "))[0]

	// The worker lives: the same two workers answer the next commands.
	slash("C1", "diagnose cache-1")
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "cache-1")
	})
	slash("C1", "diagnose dead-1")
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "dead-1")
	})
	slash("C1", "diagnoze cache-1")
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralWith("unknown verb"))
	slash("C1", "diagnose cache-9")
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralWith("Unknown instance"))
	slash("C0ELSEWHERE", "diagnose cache-1")
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralWith("does not answer in this channel"))

	// A key scan runs in goroutines of its own; its panic is contained too.
	slash("C1", "keys boom")
	fake.WaitPosts(t, 2, 10*time.Second, ephemeralWith("Something went wrong (internal error, ref "))

	// The log has each panic once, with its stack, the command's request id
	// and the reference the user was shown.
	var recs []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for len(recs) < 2 && time.Now().Before(deadline) {
		recs = logs.records(t, "recovered a panic")
		time.Sleep(10 * time.Millisecond)
	}
	if len(recs) != 2 {
		t.Fatalf("%d panics logged, want 2: %v", len(recs), recs)
	}
	cmdPanic := recs[0]
	if cmdPanic["where"] != "slack_command" || !strings.Contains(cmdPanic["stack"].(string), "panickingRouter") ||
		len(cmdPanic["request"].(string)) != 12 || !strings.Contains(answer.Text, cmdPanic["ref"].(string)) {
		t.Errorf("command panic logged as %v; the user saw %q", cmdPanic, answer.Text)
	}
	if recs[1]["where"] != "keyscan" {
		t.Errorf("key scan panic logged as %v", recs[1])
	}

	metricsSrv := httptest.NewServer(m.Handler(metrics.Checks{}, nil, nil))
	defer metricsSrv.Close()
	resp, err := metricsSrv.Client().Get(metricsSrv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`redisbot_panics_total{where="slack_command"} 1`,
		`redisbot_panics_total{where="keyscan"} 1`,
		`redisbot_commands_total{outcome="internal",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="ok",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="probe_error",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="usage",verb="diagnose"} 1`,
		`redisbot_commands_total{outcome="usage",verb="unknown"} 1`,
		`redisbot_commands_total{outcome="refused",verb="diagnose"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
