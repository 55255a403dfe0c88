package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

const keysPassword = "keys-S3CRET"

// keySpace starts a real server holding n session strings of varied sizes
// with a TTL, user hashes without one, a 2 MiB string and keys with
// hostile names.
func keySpace(t *testing.T, n int) *redistest.Server {
	t.Helper()
	srv := redistest.StartT(t, "--requirepass", keysPassword)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: keysPassword, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	p := c.Pipeline()
	for i := range n {
		p.Set(ctx, fmt.Sprintf("session:%d", 100000+i), strings.Repeat("s", 32<<(i%8)), time.Hour)
		if i%10 == 0 {
			p.HSet(ctx, fmt.Sprintf("user:%d:profile", i), "name", "x", "email", "y")
		}
	}
	p.Set(ctx, "<!channel>", strings.Repeat("b", 2<<20), 0)
	p.Set(ctx, "=cmd|' /C calc'!A0", "x", 0)
	p.Set(ctx, "bin:\x00\xff\x1b[2J", "x", 0)
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestCLIKeys(t *testing.T) {
	srv := keySpace(t, 2000)
	cfg := writeConfig(t, "instances:\n"+instanceYAML("cache-1", srv.Addr, "password_env: KEYS_PW"))
	env := map[string]string{"KEYS_PW": keysPassword}

	res := runCLI(t, env, "keys", "cache-1", "--config", cfg, "--top", "3")
	if res.code != exitWarning {
		t.Fatalf("exit %d, want %d (big-keys)\nstdout:\n%s\nstderr:\n%s", res.code, exitWarning, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"Scanned 2,203 keys", "complete", "Biggest keys", "By key pattern", "session:{id}", "user:{id}:profile",
		"<!channel>", "bin:{bin}", "big-keys", "Big keys", "Keys without a TTL",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.ContainsAny(res.stdout, "\x00\x1b") || strings.Contains(res.stdout+res.stderr, keysPassword) {
		t.Error("raw bytes or the password reached the terminal")
	}

	// JSON carries the scan; --limit makes it a sample and says so.
	res = runCLI(t, env, "keys", "cache-1", "--config", cfg, "--json", "--limit", "100")
	var rep struct {
		Keys struct {
			Complete bool   `json:"complete"`
			Stopped  string `json:"stopped"`
			Scanned  int64  `json:"scanned"`
			Top      []struct {
				Name string `json:"name"`
			} `json:"top"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, res.stdout)
	}
	if rep.Keys.Complete || rep.Keys.Stopped != "limit" || rep.Keys.Scanned != 100 || len(rep.Keys.Top) == 0 {
		t.Errorf("limited scan = %+v", rep.Keys)
	}

	for _, tc := range []struct{ args, want string }{
		{"keys cache-1 --top 0", "--top must be a number"},
		{"keys cache-1 --limit lots", "--limit must be a number of keys"},
		{"keys 127.0.0.1:6379", "unknown instance"},
	} {
		res := runCLI(t, env, append(strings.Fields(tc.args), "--config", cfg)...)
		if res.code != exitError || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", tc.args, res.code, res.stderr, tc.want)
		}
	}
}

// The Slack flow: a throttled scan shows a progress message with a Cancel
// button; only its requester or an operator may cancel; the message then
// becomes the report of the sample, with runbooks and CSV files in its
// thread. --fast is for operators.
func TestSlackKeys(t *testing.T) {
	srv := keySpace(t, 3000)
	accessYAML := fmt.Sprintf("keys:\n  budget: 200\naccess:\n  channels:\n    - id: %s\n  viewers: [U0VIEWER, U0OTHER]\n  operators: [U0OP]\n", onCall)
	bot := startBot(t, instanceYAML("cache-1", srv.Addr, "password_env: KEYS_PW"), accessYAML, map[string]string{"KEYS_PW": keysPassword})
	fake := bot.fake
	fake.AllowMentions("<@U0*>") // who started or cancelled a scan

	fake.SlashCommand(slash(onCall, "U0VIEWER", "keys cache-1 --fast"))
	fake.WaitPosts(t, 1, 5*time.Second, ephemeralTo("only operators may use it"))

	// At 200 commands/s, 3,000 keys take about a minute: time to cancel.
	fake.SlashCommand(slash(onCall, "U0VIEWER", "keys cache-1"))
	progress := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "Scanning the keys of")
	})[0]
	fake.SlashCommand(slash(onCall, "U0OP", "keys cache-1"))
	fake.WaitPosts(t, 1, 5*time.Second, ephemeralTo("already running (started by <@U0VIEWER>)"))

	cancel := button(t, progress, "cancel-scan/")
	fake.Click("U0OTHER", onCall, progress.TS, cancel)
	fake.WaitPosts(t, 1, 5*time.Second, ephemeralTo("Only the user who started this scan or an operator"))
	fake.Click("U0VIEWER", onCall, progress.TS, cancel)

	report := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == progress.TS && strings.Contains(p.BlocksText(), "SAMPLE")
	})[0]
	if text := report.BlocksText(); !strings.Contains(text, "(cancelled)") || !strings.Contains(text, "Biggest keys") {
		t.Errorf("report of the cancelled scan:\n%s", text)
	}
	files := fake.WaitPosts(t, 2, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "files.upload" && p.ThreadTS == progress.TS
	})
	if files[0].File.Name != "keys-cache-1.csv" || !strings.HasPrefix(string(files[0].File.Content), "rank,key,type,bytes") {
		t.Errorf("first file %s:\n%.200s", files[0].File.Name, files[0].File.Content)
	}

	// An operator's fast scan of the whole key space: a complete report
	// that names the 2 MiB key without pinging the channel.
	fake.SlashCommand(slash(onCall, "U0OP", "keys cache-1 --fast"))
	fake.WaitPosts(t, 1, 30*time.Second, func(p slacktest.Post) bool {
		return (p.Method == "chat.postMessage" || p.Method == "chat.update") && strings.Contains(p.BlocksText(), "Scanned 3,303 keys") &&
			strings.Contains(p.BlocksText(), "&lt;!channel&gt;")
	})

	for _, p := range fake.Posts() {
		all := p.Text + p.BlocksText()
		if p.File != nil {
			all += string(p.File.Content)
		}
		if strings.Contains(all, "<!channel>") || strings.Contains(all, keysPassword) || strings.ContainsAny(all, "\x00\x1b") {
			t.Errorf("%s carries an unescaped key name or the password: %.300s", p.Method, all)
		}
		if p.File != nil && strings.Contains(string(p.File.Content), "\n=cmd") {
			t.Error("a CSV cell starts with a formula")
		}
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("Block Kit violations: %v", v)
	}
	if strings.Contains(bot.logs.String(), keysPassword) {
		t.Error("logs contain the password")
	}
}

// A managed Redis that renamed MEMORY: the probe degrades, the scan
// cannot measure keys and says which command the server refused.
func TestCLIKeysWithoutMemoryCommand(t *testing.T) {
	srv := redistest.StartT(t, "--rename-command", "MEMORY", "")
	cfg := writeConfig(t, "instances:\n"+instanceYAML("managed-1", srv.Addr))
	c := srv.Client()
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, nil, "keys", "managed-1", "--config", cfg)
	if res.code != exitError || !strings.Contains(res.stdout, "Key scan failed: the server refused a key-scan command") ||
		!strings.Contains(res.stdout, "MEMORY") {
		t.Errorf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestProgressBar(t *testing.T) {
	var b strings.Builder
	bar := &progressBar{w: &b}
	bar.show(handlers.KeyScanProgress{Scanned: 250_000, Estimate: 1_000_000, Elapsed: 65 * time.Second, ETA: 3 * time.Minute})
	bar.clear()
	var none *progressBar
	none.clear() // no terminal: nothing to clear, no panic
	want := "\r\x1b[K[########......................]  25%  250,000 of ~1,000,000 keys  1m5s, ETA 3m0s\r\x1b[K"
	if b.String() != want {
		t.Errorf("bar = %q, want %q", b.String(), want)
	}

	// --match: the bar follows what SCAN walked, with the match rate.
	b.Reset()
	bar.show(handlers.KeyScanProgress{Scanned: 168_000, Walked: 1_200_000, Estimate: 2_000_000, Match: true, Elapsed: time.Minute})
	want = "\r\x1b[K[##################............]  60%  walked 1,200,000 of ~2,000,000 keys, 14% match (168,000)  1m0s"
	if b.String() != want {
		t.Errorf("bar with --match = %q, want %q", b.String(), want)
	}
}
