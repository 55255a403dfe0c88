package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alertmanager/amtest"
	"github.com/redisbot/redisbot/bot/slacktest"
)

const (
	amChannel = "C0AMDIAG"
	amToken   = "am-webhook-token-7f3a"
)

// amRoutes sends every alert to the bot's webhook at once and again every
// 2s (so that re-sends are seen), except the bot's own oom-rejecting,
// which Alertmanager takes from the bot and routes nowhere, as a team
// would route it to its pager.
func amRoutes(botAddr string) string {
	return fmt.Sprintf(`route:
  receiver: redisbot
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
  routes:
    - matchers: ['alertname="oom-rejecting"']
      receiver: pager
receivers:
  - name: pager
  - name: redisbot
    webhook_configs:
      - url: http://%s/alertmanager
        send_resolved: true
        http_config:
          authorization: {type: Bearer, credentials: %s}
`, botAddr, amToken)
}

// notifies counts the webhook notifications Alertmanager delivered.
func notifies(am *amtest.Server) int {
	return strings.Count(am.Logs(), `msg="Notify success" component=dispatcher receiver=redisbot`)
}

// waitNotifies waits until Alertmanager has delivered more than n
// notifications: proof that it sent the alert again.
func waitNotifies(t *testing.T, am *amtest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for notifies(am) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager sent nothing more than %d notifications in 30s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func diagnosisPosts(fake *slacktest.Server, alertname string) []slacktest.Post {
	var out []slacktest.Post
	for _, p := range fake.Posts() {
		if p.Method == "chat.postMessage" && p.Channel == amChannel && p.ThreadTS == "" && strings.Contains(p.BlocksText(), alertname) {
			out = append(out, p)
		}
	}
	return out
}

// TestAlertmanagerBothWays runs serve beside a real Alertmanager and a real
// redis-server that rejects writes: an alert fired into Alertmanager as
// Prometheus would (redis_exporter's instance label) brings one diagnosis,
// with working buttons, per firing episode, across Alertmanager's re-sends
// and a restart of the bot, and is updated when it resolves; an alert for
// no configured instance gets a reply that says why; one that links to its
// Slack message is diagnosed in that thread (unless the channel is not one
// the bot answers in: then in the receiver's channel); a request without the token
// is refused. The other way, the sweep's oom-rejecting alert reaches
// Alertmanager with its labels.
func TestAlertmanagerBothWays(t *testing.T) {
	srv := fullServer(t)
	botAddr := freeAddr(t)
	am := amtest.Start(t, amRoutes(botAddr))
	fake := slacktest.New(t)
	cfg := writeConfig(t, fmt.Sprintf(`http:
  listen: %s
probe:
  timeout: 2s
slack:
  api_url: %s
  shutdown_timeout: 5s
%s
alertmanager:
  webhook:
    token_env: AM_TOKEN
    receivers:
      - {name: redisbot, channel: %s}
  url: %s
  sweep_alerts: both
  resend_interval: 1s
instances:
%s`, botAddr, fake.APIURL(), sweepYAML("access:\n  channels: [{id: "+amChannel+"}, {id: "+alertsChannel+"}]\n"), amChannel, am.URL, instanceYAML("full-1", srv.Addr)))
	env := map[string]string{"AM_TOKEN": amToken}
	bot := launchBot(t, fake, cfg, env)
	fake.AllowMentions("<!subteam^S0ONCALL>")

	// Without the token: 401, and neither token in the log.
	for _, auth := range []string{"", "Bearer wrong-token-9c1d"} {
		req, _ := http.NewRequest("POST", "http://"+botAddr+"/alertmanager", strings.NewReader(`{"version":"4","alerts":[]}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("webhook with %q: %s, want 401", auth, resp.Status)
		}
	}

	// Fired as Prometheus fires redis_exporter's rule.
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	oom := map[string]any{
		"labels":      map[string]string{"alertname": "RedisRejectingWritesOOM", "instance": "redis://" + srv.Addr, "severity": "critical", "job": "redis_exporter"},
		"annotations": map[string]string{"summary": srv.Addr + ": OOM command not allowed when used memory > 'maxmemory'"},
		"startsAt":    start,
	}
	am.Fire(t, oom)
	diag := fake.WaitPosts(t, 1, 30*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.Channel == amChannel && p.ThreadTS == "" && strings.Contains(p.BlocksText(), "RedisRejectingWritesOOM")
	})[0]
	for _, want := range []string{"FIRING · RedisRejectingWritesOOM · full-1", "receiver `redisbot`", "`oom-rejecting`", "OOM command not allowed"} {
		if !strings.Contains(diag.BlocksText(), want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, diag.BlocksText())
		}
	}
	// Its buttons work: the runbook opens in its thread.
	fake.Click("U0ONCALL", amChannel, diag.TS, button(t, diag, "runbook/oom-rejecting"))
	fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == diag.TS && p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "oom-rejecting")
	})

	// Alertmanager sends it again (repeat_interval 2s): still one diagnosis.
	waitNotifies(t, am, notifies(am))
	if n := len(diagnosisPosts(fake, "RedisRejectingWritesOOM")); n != 1 {
		t.Fatalf("%d diagnoses for one firing episode, want 1", n)
	}
	// Nor after a restart: the episode is in the store.
	if code := bot.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	bot = launchBot(t, fake, cfg, env)
	waitNotifies(t, am, notifies(am))
	if n := len(diagnosisPosts(fake, "RedisRejectingWritesOOM")); n != 1 {
		t.Fatalf("%d diagnoses after a restart, want 1", n)
	}

	// Resolved: the diagnosis says so, and its thread gets a line.
	oom["endsAt"] = time.Now().UTC()
	am.Fire(t, oom)
	fake.WaitPosts(t, 1, 30*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == diag.TS && strings.Contains(p.BlocksText(), "RESOLVED · RedisRejectingWritesOOM · full-1") &&
			strings.Contains(p.BlocksText(), "`oom-rejecting`")
	})
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == diag.TS && strings.Contains(p.Text, "RedisRejectingWritesOOM resolved at")
	})

	// No configured instance: a reply naming the labels tried, no probe.
	am.Fire(t, map[string]any{
		"labels":   map[string]string{"alertname": "RedisDown", "instance": "10.9.9.9:9121"},
		"startsAt": start,
	})
	unmapped := fake.WaitPosts(t, 1, 30*time.Second, func(p slacktest.Post) bool {
		return p.Channel == amChannel && strings.Contains(p.BlocksText(), "RedisDown")
	})[0]
	if !strings.Contains(unmapped.BlocksText(), "no configured instance matches `instance=10.9.9.9:9121`") {
		t.Errorf("unmapped reply:\n%s", unmapped.BlocksText())
	}

	// An alert that links to its own Slack message is diagnosed in its
	// thread.
	am.Fire(t, map[string]any{
		"labels":      map[string]string{"alertname": "RedisMemoryHigh", "redisbot_instance": "full-1"},
		"annotations": map[string]string{"slack_ts": unmapped.TS},
		"startsAt":    start,
	})
	threaded := fake.WaitPosts(t, 1, 30*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == unmapped.TS && strings.Contains(p.BlocksText(), "FIRING · RedisMemoryHigh · full-1")
	})[0]
	if threaded.Channel != amChannel {
		t.Errorf("threaded diagnosis in %s, want %s", threaded.Channel, amChannel)
	}
	// A link into a channel the bot does not answer in (access.channels)
	// is not followed: the diagnosis goes to the receiver's channel.
	am.Fire(t, map[string]any{
		"labels":      map[string]string{"alertname": "RedisElsewhere", "redisbot_instance": "full-1"},
		"annotations": map[string]string{"slack_ts": unmapped.TS, "slack_channel": "C0ELSEWHERE"},
		"startsAt":    start,
	})
	fake.WaitPosts(t, 1, 30*time.Second, func(p slacktest.Post) bool {
		return p.Channel == amChannel && p.ThreadTS == "" && strings.Contains(p.BlocksText(), "FIRING · RedisElsewhere · full-1")
	})

	// The other way: the sweep's own alert is in Alertmanager, labelled for
	// its routes, and in Slack (sweep_alerts: both).
	am.WaitAlerts(t, 30*time.Second, func(alerts []amtest.Alert) bool {
		for _, a := range alerts {
			if a.Labels["alertname"] == "oom-rejecting" && a.Labels["redisbot_instance"] == "full-1" && a.Labels["severity"] == "critical" &&
				strings.HasSuffix(a.Annotations["runbook_url"], "/runbooks/oom-rejecting.md") && a.Annotations["summary"] != "" &&
				a.Status.State == "active" && a.Receivers[0].Name == "pager" {
				return true
			}
		}
		return false
	})
	if n := alertPosts(fake, "full-1", "oom-rejecting"); n != 1 {
		t.Errorf("%d sweep alert messages in Slack, want 1", n)
	}

	if strings.Contains(bot.logs.String(), amToken) || strings.Contains(bot.logs.String(), "wrong-token-9c1d") {
		t.Error("a webhook token is in the log")
	}
	for _, v := range fake.Violations() {
		t.Errorf("Slack violation: %s", v)
	}
}

// TestSweepPeriod: the endsAt of alerts sent to Alertmanager must outlast
// the longest gap between sweeps, weekends of a weekday schedule included.
func TestSweepPeriod(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want time.Duration
	}{
		{"@every 1m", time.Minute},
		{"@every 90s", 90 * time.Second},
		{"*/2 * * * *", 2 * time.Minute},
		{"@hourly", time.Hour},
		{"0 9 * * 1-5", 72 * time.Hour},
	} {
		if got := sweepPeriod(tc.spec, time.UTC); got != tc.want {
			t.Errorf("sweepPeriod(%q) = %v, want %v", tc.spec, got, tc.want)
		}
	}
}
