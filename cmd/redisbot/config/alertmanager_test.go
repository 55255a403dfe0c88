package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaultAlertmanager is the alertmanager section when the file has none.
func defaultAlertmanager() Alertmanager {
	return Alertmanager{
		Webhook:        AlertmanagerWebhook{Path: DefaultAlertmanagerWebhookPath},
		SweepAlerts:    SweepAlertsSlack,
		ResendInterval: DefaultAlertmanagerResend,
		RunbookURL:     DefaultRunbookURL,
	}
}

// amConfig writes a config with two instances, alerts.channel and the
// alertmanager section given.
func amConfig(t *testing.T, section string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "redisbot.yml")
	text := "instances:\n  - {name: cache-1, addr: 127.0.0.1:6379}\n  - {name: payments-1, addr: 10.0.0.5:6379}\nalerts:\n  channel: C0ALERTS\n" + section
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAlertmanagerSection(t *testing.T) {
	path := amConfig(t, `alertmanager:
  webhook:
    token_env: AM_TOKEN
    receivers:
      - {name: redis-payments, channel: C0PAY}
    label_rules:
      - match: {service: payments-cache}
        instance: payments-1
  url: http://user:s3cret@alertmanager:9093/
  sweep_alerts: both
  resend_interval: 30s
`)
	cfg, err := Load(t.Context(), path, env(map[string]string{"AM_TOKEN": "webhook-token-1"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Alertmanager{
		Webhook: AlertmanagerWebhook{
			Path: "/alertmanager", Token: "webhook-token-1", Channel: "C0ALERTS",
			Receivers:  []AlertmanagerReceiver{{Name: "redis-payments", Channel: "C0PAY"}},
			LabelRules: []AlertmanagerLabelRule{{Match: map[string]string{"service": "payments-cache"}, Instance: "payments-1"}},
		},
		URL: "http://user:s3cret@alertmanager:9093/", SweepAlerts: SweepAlertsBoth, ResendInterval: 30 * time.Second, RunbookURL: DefaultRunbookURL,
	}
	if !reflect.DeepEqual(cfg.Alertmanager, want) {
		t.Errorf("got  %+v\nwant %+v", cfg.Alertmanager, want)
	}
	if !cfg.Alertmanager.ToSlack() || !cfg.Alertmanager.ToAlertmanager() {
		t.Error("both should go to Slack and Alertmanager")
	}
	if got := cfg.Alertmanager.Webhook.ChannelFor("redis-payments"); got != "C0PAY" {
		t.Errorf("receiver channel %q", got)
	}
	if got := cfg.Alertmanager.Webhook.ChannelFor("other"); got != "C0ALERTS" {
		t.Errorf("fallback channel %q", got)
	}
	if got := cfg.Alertmanager.RunbookFor("frag-high"); got != "https://github.com/redisbot/redisbot/blob/main/runbooks/frag-high.md" {
		t.Errorf("runbook url %q", got)
	}
	secrets := strings.Join(cfg.Secrets(), " ")
	for _, s := range []string{"webhook-token-1", "s3cret"} {
		if !strings.Contains(secrets, s) {
			t.Errorf("Secrets() misses %s", s)
		}
	}

	// Scalar keys have REDISBOT_ALERTMANAGER_* overrides.
	cfg, err = Load(t.Context(), path, env(map[string]string{"AM_TOKEN": "x", "REDISBOT_ALERTMANAGER_SWEEP_ALERTS": "alertmanager"}))
	if err != nil || cfg.Alertmanager.ToSlack() {
		t.Errorf("REDISBOT_ALERTMANAGER_SWEEP_ALERTS=alertmanager: %+v, %v", cfg.Alertmanager, err)
	}
	// The variable beats the file's token.
	cfg, err = Load(t.Context(), path, env(map[string]string{"AM_TOKEN": "x", "REDISBOT_ALERTMANAGER_WEBHOOK_TOKEN": "from-env"}))
	if err != nil || cfg.Alertmanager.Webhook.Token != "from-env" {
		t.Errorf("token from REDISBOT_ALERTMANAGER_WEBHOOK_TOKEN: %v, %v", cfg.Alertmanager.Webhook.Token, err)
	}
}

func TestAlertmanagerSectionProblems(t *testing.T) {
	for _, tc := range []struct{ name, section, want string }{
		{"sweep_alerts", "alertmanager:\n  sweep_alerts: pagerduty\n",
			`alertmanager.sweep_alerts: must be slack, alertmanager or both, not "pagerduty"`},
		{"url required", "alertmanager:\n  sweep_alerts: alertmanager\n",
			"alertmanager.url: is required when sweep_alerts is alertmanager"},
		{"url", "alertmanager:\n  url: alertmanager:9093\n",
			"alertmanager.url: must be an absolute http(s) URL without query, as in http://alertmanager:9093/"},
		{"resend", "alertmanager:\n  resend_interval: 10m\n",
			"alertmanager.resend_interval: must be at least 1s and under 5m (Alertmanager's default resolve_timeout)"},
		{"runbook", "alertmanager:\n  runbook_url: runbooks/{finding}.md\n",
			"alertmanager.runbook_url: must be an absolute http(s) URL ({finding} stands for the finding id)"},
		{"no token", "alertmanager:\n  webhook:\n    channel: C0AM\n",
			"alertmanager.webhook: token, token_env or token_file is required to take Alertmanager's webhook (or set REDISBOT_ALERTMANAGER_WEBHOOK_TOKEN)"},
		{"exclusive", "alertmanager:\n  webhook:\n    token: a\n    token_env: B\n",
			"alertmanager.webhook: token and token_env are exclusive"},
		{"token_env unset", "alertmanager:\n  webhook:\n    token_env: NOT_SET\n",
			"alertmanager.webhook.token_env: NOT_SET is not set"},
		{"path", "alertmanager:\n  webhook:\n    token: t0k3n-abc\n    path: /metrics\n",
			`alertmanager.webhook.path: "/metrics" is taken by the operations endpoint`},
		{"rules", "alertmanager:\n  webhook:\n    token: t0k3n-abc\n    label_rules:\n      - match: {}\n        instance: nope\n      - match: {\"bad-name\": x}\n",
			"alertmanager.webhook.label_rules[0].match: at least one label is required\n" +
				`alertmanager.webhook.label_rules[0].instance: no instance is called "nope"` + "\n" +
				`alertmanager.webhook.label_rules[1].match: "bad-name" is not a Prometheus label name` + "\n" +
				"alertmanager.webhook.label_rules[1].instance: is required"},
		{"receivers", "alertmanager:\n  webhook:\n    token: t0k3n-abc\n    receivers:\n      - {name: a, channel: nope}\n      - {name: a, channel: C0X}\n",
			`alertmanager.webhook.receivers[0].channel: "nope" is not a channel id (C…, G… or D…)` + "\n" +
				"alertmanager.webhook.receivers[1].name: duplicate of alertmanager.webhook.receivers[0]"},
		{"unknown key", "alertmanager:\n  webhook:\n    tokn: x\n", "alertmanager.webhook.tokn: unknown key (did you mean token?)"},
		{"access", "access:\n  channels: [{id: C0ALERTS}]\nalertmanager:\n  webhook:\n    token: t0k3n-abc\n    receivers: [{name: a, channel: C0ELSE}]\n",
			`alertmanager.webhook.receivers[0].channel: "C0ELSE" is not in access.channels, where the bot answers (its buttons would not work there)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(t.Context(), amConfig(t, tc.section), env(nil))
			if err == nil {
				t.Fatal("loaded")
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", err, tc.want)
			}
		})
	}
	// No http.listen: nowhere to serve the webhook. The token is never
	// quoted in a problem.
	_, err := Load(t.Context(), amConfig(t, "http:\n  listen: \"\"\nalertmanager:\n  webhook:\n    token: t0k3n-abc\n"), env(nil))
	if err == nil || err.Error() != "alertmanager.webhook: needs http.listen, where the webhook is served" {
		t.Errorf("no http.listen: %v", err)
	}
}
