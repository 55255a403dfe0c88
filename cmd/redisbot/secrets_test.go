package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestNoSecretAnywhere runs the CLI and the Slack bot through every path
// that handles a credential (diagnosis, a wrong password, key scans, an
// approved remediation with its own user, an approved restart whose
// command prints its environment, another instance's password and the
// Slack token, sweeps and alerts, check-config, a store on a
// password-protected Redis, the metrics endpoint) and then searches
// everything they wrote (stdout, stderr, logs, every Slack post, every
// uploaded file, /metrics) for every password and token it used.
func TestNoSecretAnywhere(t *testing.T) {
	const (
		diagPW  = "diag-S3CRET-pw"
		adminPW = "admin-S3CRET-pw"
		wrongPW = "wrong-S3CRET-pw"
		storePW = "store-S3CRET-pw"
	)
	ctx := context.Background()
	srv := redistest.StartT(t, "--requirepass", diagPW)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: diagPW, Protocol: 2})
	defer c.Close()
	if err := c.Do(ctx, "ACL", "SETUSER", "redisbot-admin", "on", ">"+adminPW, "+@all", "~*").Err(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.Fill(ctx, c, "session:", 2000, 200, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Writes rejected with OOM: the sweep's alert fires at once.
	if err := c.ConfigSet(ctx, "maxmemory", "4mb").Err(); err != nil {
		t.Fatal(err)
	}
	if err := redistest.FillUntilOOM(ctx, c, 1000, 0, 100_000); err != nil {
		t.Fatal(err)
	}
	storeSrv := redistest.StartT(t, "--requirepass", storePW)

	// A restart command that prints what a careless tool might (another
	// instance's password, the Slack token), lists its environment and
	// fails, so that its output becomes the outcome Slack shows. The
	// bot's own environment holds the tokens and passwords too: the
	// command must not inherit them.
	script := filepath.Join(t.TempDir(), "restart-cache-1.sh")
	restart := "#!/bin/sh\necho 'bad-1: " + wrongPW + ", slack: " + slacktest.BotToken + "'\nenv | sort\nexit 1\n"
	if err := os.WriteFile(script, []byte(restart), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"SLACK_BOT_TOKEN": slacktest.BotToken, "SLACK_APP_TOKEN": slacktest.AppToken,
		"CACHE_PW": diagPW, "ADMIN_PW": adminPW, "BAD_PW": wrongPW, "KUBECONFIG": "/etc/redisbot/kubeconfig"} {
		t.Setenv(k, v)
	}

	metricsAddr := freeAddr(t)

	fake := slacktest.New(t)
	fake.AllowMentions("<@U0*>")
	cfg := writeConfig(t, fmt.Sprintf(`http:
  listen: %s
probe:
  timeout: 1s
slack:
  api_url: %s
  shutdown_timeout: 5s
store:
  redis_url_env: STORE_URL
schedule:
  sweep: "@every 1s"
alerts:
  channel: C0ALERTS
access:
  operators: [U0OP]
  approvers: [U0LEAD]
instances:
%s%s`, metricsAddr, fake.APIURL(),
		instanceYAML("cache-1", srv.Addr, "password_env: CACHE_PW", "remediation:", "  username: redisbot-admin", "  password_env: ADMIN_PW",
			"  restart_method: command", "  restart_command: ["+script+"]", "  restart_env: [KUBECONFIG]"),
		instanceYAML("bad-1", srv.Addr, "password_env: BAD_PW")))
	env := map[string]string{
		"CACHE_PW": diagPW, "ADMIN_PW": adminPW, "BAD_PW": wrongPW,
		"STORE_URL":       fmt.Sprintf("redis://:%s@%s/0", storePW, storeSrv.Addr),
		"SLACK_APP_TOKEN": slacktest.AppToken, "SLACK_BOT_TOKEN": slacktest.BotToken,
	}

	var seen []string // everything the runs wrote
	for _, args := range [][]string{
		{"diagnose", "cache-1"}, {"diagnose", "bad-1"}, {"keys", "cache-1"}, {"keys", "bad-1"},
		{"fleet", "--json"}, {"check-config"}, {"check-config", "--json"}, {"diagnose", "cache-1", "--json"},
	} {
		res := runCLI(t, env, append(args, "--config", cfg)...)
		seen = append(seen, res.stdout, res.stderr)
	}

	bot := launchBot(t, fake, cfg, env)
	for _, text := range []string{"diagnose cache-1", "diagnose bad-1", "keys cache-1", "keys bad-1", "fleet", "oom bad-1"} {
		fake.SlashCommand(slash(onCall, "U0OP", text))
	}
	fake.WaitPosts(t, 6, 30*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.Channel == onCall && p.ThreadTS == ""
	})
	// An approved MEMORY PURGE runs as the remediation user.
	fake.SlashCommand(slash(onCall, "U0OP", "purge cache-1"))
	msg := fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "memory-purge on cache-1 · PENDING")
	})[0]
	fake.Click("U0LEAD", onCall, msg.TS, button(t, msg, "approve/"))
	fake.WaitPosts(t, 1, 30*time.Second, purgeDecided(msg.TS))
	// An approved restart runs the command, which fails with its output.
	fake.SlashCommand(slash(onCall, "U0OP", "restart cache-1"))
	msg = fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "restart on cache-1 · PENDING")
	})[0]
	fake.Click("U0LEAD", onCall, msg.TS, button(t, msg, "approve/"))
	failed := fake.WaitPosts(t, 1, 30*time.Second, updatedTo(msg.TS, "FAILED"))[0].BlocksText()
	for _, want := range []string{"restart command: exit status 1", "KUBECONFIG=/etc/redisbot/kubeconfig", "bad-1: [redacted], slack: [redacted]"} {
		if !strings.Contains(failed, want) {
			t.Errorf("the failed restart's message lacks %q:\n%s", want, failed)
		}
	}
	for _, name := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "CACHE_PW", "ADMIN_PW", "BAD_PW"} {
		if strings.Contains(failed, name) {
			t.Errorf("the restart command got %s:\n%s", name, failed)
		}
	}
	// A sweep (which also probes bad-1 with its wrong password) alerts on
	// cache-1's OOM rejections.
	fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Channel == "C0ALERTS" && strings.Contains(p.BlocksText(), "oom-rejecting")
	})
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	seen = append(seen, string(body))
	if code := bot.stop(); code != exitOK {
		t.Errorf("serve exit = %d", code)
	}
	seen = append(seen, bot.logs.String())
	for _, p := range fake.Posts() {
		seen = append(seen, p.Text, string(p.Blocks))
		if p.File != nil {
			seen = append(seen, p.File.Name, p.File.Title, string(p.File.Content))
		}
	}

	all := strings.Join(seen, "\n")
	if !strings.Contains(all, "auth") || !strings.Contains(all, "MEMORY PURGE") || !strings.Contains(all, "restart command: exit status 1") {
		t.Fatal("the runs did not reach the auth failure, the purge and the restart: the search below would prove nothing")
	}
	for _, secret := range []string{diagPW, adminPW, wrongPW, storePW, slacktest.AppToken, slacktest.BotToken} {
		if i := strings.Index(all, secret); i >= 0 {
			t.Errorf("secret %q found in output: …%s…", secret, all[max(0, i-200):min(len(all), i+len(secret)+50)])
		}
	}
}
