package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults for the alertmanager section.
const (
	DefaultAlertmanagerWebhookPath = "/alertmanager"
	DefaultAlertmanagerResend      = time.Minute
	// DefaultRunbookURL points at the built-in runbooks, one Markdown file
	// per finding id.
	DefaultRunbookURL = "https://github.com/redisbot/redisbot/blob/main/runbooks/{finding}.md"
)

// Where sweep alerts go (alertmanager.sweep_alerts).
const (
	SweepAlertsSlack        = "slack"
	SweepAlertsAlertmanager = "alertmanager"
	SweepAlertsBoth         = "both"
)

// Alertmanager connects the bot to a Prometheus Alertmanager: its webhook
// brings alerts in to be diagnosed, its API takes the sweep's alerts out.
type Alertmanager struct {
	// Webhook is the inbound side; off while Webhook.Token is "".
	Webhook AlertmanagerWebhook
	// URL is Alertmanager's base URL (alertmanager.url), where sweep
	// alerts are sent (POST <URL>api/v2/alerts) when SweepAlerts says so.
	// It may carry a password: it is never quoted.
	URL string
	// SweepAlerts is where the sweep's alerts go: "slack" (the default),
	// "alertmanager" or "both" (alertmanager.sweep_alerts).
	SweepAlerts string
	// ResendInterval is how often a firing alert is sent to Alertmanager
	// again (alertmanager.resend_interval, default 1m, at least 1s and
	// under 5m, Alertmanager's default resolve_timeout).
	ResendInterval time.Duration
	// RunbookURL is the runbook_url annotation of sent alerts, with
	// {finding} replaced by the finding id (alertmanager.runbook_url,
	// default DefaultRunbookURL).
	RunbookURL string
}

// ToSlack reports whether sweep alerts are posted in Slack.
func (a Alertmanager) ToSlack() bool { return a.SweepAlerts != SweepAlertsAlertmanager }

// ToAlertmanager reports whether sweep alerts are sent to Alertmanager.
func (a Alertmanager) ToAlertmanager() bool {
	return a.SweepAlerts == SweepAlertsAlertmanager || a.SweepAlerts == SweepAlertsBoth
}

// RunbookFor is the runbook_url of a finding.
func (a Alertmanager) RunbookFor(finding string) string {
	return strings.ReplaceAll(a.RunbookURL, "{finding}", url.PathEscape(finding))
}

// AlertmanagerWebhook is where and how Alertmanager's webhook is taken.
type AlertmanagerWebhook struct {
	// Path is where serve takes the webhook on http.listen
	// (alertmanager.webhook.path, default /alertmanager).
	Path string
	// Token is the bearer token Alertmanager must send
	// (http_config.authorization). From REDISBOT_ALERTMANAGER_WEBHOOK_TOKEN,
	// or alertmanager.webhook.token, token_env or token_file, which are
	// exclusive. "" turns the webhook off.
	Token string
	// Channel is where alerts of receivers not in Receivers are posted
	// (alertmanager.webhook.channel, default alerts.channel).
	Channel string
	// Receivers send each Alertmanager receiver's alerts to a channel of
	// its own.
	Receivers []AlertmanagerReceiver
	// LabelRules map alerts that name no instance or address to an
	// instance, tried in order after redisbot_instance, instance and addr.
	LabelRules []AlertmanagerLabelRule
}

// ChannelFor is the channel for an Alertmanager receiver's alerts.
func (w AlertmanagerWebhook) ChannelFor(receiver string) string {
	for _, r := range w.Receivers {
		if r.Name == receiver {
			return r.Channel
		}
	}
	return w.Channel
}

// AlertmanagerReceiver posts the alerts of one Alertmanager receiver (its
// name in Alertmanager's config) in Channel.
type AlertmanagerReceiver struct {
	Name    string `mapstructure:"name"`
	Channel string `mapstructure:"channel"`
}

// AlertmanagerLabelRule maps alerts whose labels have every value in Match
// to the configured instance Instance.
type AlertmanagerLabelRule struct {
	Match    map[string]string `mapstructure:"match"`
	Instance string            `mapstructure:"instance"`
}

// alertmanagerFile is the alertmanager section as the file has it: the
// webhook's token comes from one of three places.
type alertmanagerFile struct {
	Webhook        webhookFile   `mapstructure:"webhook"`
	URL            string        `mapstructure:"url"`
	SweepAlerts    string        `mapstructure:"sweep_alerts"`
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	RunbookURL     string        `mapstructure:"runbook_url"`
}

type webhookFile struct {
	Path       string                  `mapstructure:"path"`
	Token      string                  `mapstructure:"token"`
	TokenEnv   string                  `mapstructure:"token_env"`
	TokenFile  string                  `mapstructure:"token_file"`
	Channel    string                  `mapstructure:"channel"`
	Receivers  []AlertmanagerReceiver  `mapstructure:"receivers"`
	LabelRules []AlertmanagerLabelRule `mapstructure:"label_rules"`
}

func defaultAlertmanagerFile() alertmanagerFile {
	return alertmanagerFile{
		Webhook:        webhookFile{Path: DefaultAlertmanagerWebhookPath},
		SweepAlerts:    SweepAlertsSlack,
		ResendInterval: DefaultAlertmanagerResend,
		RunbookURL:     DefaultRunbookURL,
	}
}

// labelNamePattern is Prometheus' label name syntax.
var labelNamePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// webhookTokenEnv overrides the webhook's token, as the Slack tokens'
// variables do theirs.
const webhookTokenEnv = "REDISBOT_ALERTMANAGER_WEBHOOK_TOKEN"

// alertmanager checks the alertmanager section against the rest of cfg:
// rules name configured instances, the webhook needs http.listen and a
// channel the bot answers in.
func (l *loader) alertmanager(f alertmanagerFile, cfg *Config) Alertmanager {
	const key = "alertmanager"
	a := Alertmanager{
		URL: f.URL, SweepAlerts: f.SweepAlerts, ResendInterval: f.ResendInterval, RunbookURL: f.RunbookURL,
		Webhook: AlertmanagerWebhook{Path: f.Webhook.Path, Channel: f.Webhook.Channel, Receivers: f.Webhook.Receivers, LabelRules: f.Webhook.LabelRules},
	}
	switch a.SweepAlerts {
	case SweepAlertsSlack, SweepAlertsAlertmanager, SweepAlertsBoth:
	default:
		l.p.addf(key+".sweep_alerts", "must be slack, alertmanager or both, not %s", quote(a.SweepAlerts))
	}
	switch {
	case a.URL == "" && a.ToAlertmanager():
		l.p.addf(key+".url", "is required when sweep_alerts is %s", a.SweepAlerts)
	case a.URL != "":
		u, err := url.Parse(a.URL)
		l.p.check(key+".url", err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "",
			"must be an absolute http(s) URL without query, as in http://alertmanager:9093/")
	}
	l.p.check(key+".resend_interval", a.ResendInterval < time.Second || a.ResendInterval >= 5*time.Minute,
		"must be at least 1s and under 5m (Alertmanager's default resolve_timeout)")
	if a.RunbookURL != "" {
		u, err := url.Parse(strings.ReplaceAll(a.RunbookURL, "{finding}", "x"))
		l.p.check(key+".runbook_url", err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "",
			"must be an absolute http(s) URL ({finding} stands for the finding id)")
	}
	a.Webhook.Token = l.webhookToken(key+".webhook", f.Webhook)
	l.webhook(key+".webhook", &a.Webhook, cfg)
	return a
}

// webhookToken resolves the webhook's token: REDISBOT_ALERTMANAGER_WEBHOOK_TOKEN,
// else token, token_env or token_file. Its value never goes into a problem.
func (l *loader) webhookToken(key string, rw webhookFile) string {
	if t := l.getenv(webhookTokenEnv); t != "" {
		l.p.fromEnv[key+".token"] = webhookTokenEnv
		return t
	}
	var set []string
	for _, s := range []struct{ name, val string }{{"token", rw.Token}, {"token_env", rw.TokenEnv}, {"token_file", rw.TokenFile}} {
		if s.val != "" {
			set = append(set, s.name)
		}
	}
	switch {
	case len(set) > 1:
		l.p.addf(key, "%s are exclusive", joinAnd(set))
		return ""
	case len(set) == 0:
		return ""
	}
	switch set[0] {
	case "token":
		return rw.Token
	case "token_env":
		if !envNamePattern.MatchString(rw.TokenEnv) {
			l.p.addf(key+".token_env", notEnvName)
			return ""
		}
		t := l.getenv(rw.TokenEnv)
		if t == "" {
			l.p.addf(key+".token_env", "%s is not set", rw.TokenEnv)
		}
		return t
	}
	t, err := l.readSecretFile(l.resolve(rw.TokenFile))
	if err != nil {
		l.p.add(key+".token_file", err)
	}
	return t
}

// webhook checks the inbound side. Without a token it is off, and the
// rest of it must not be set: a webhook configured but never served would
// fail silently.
func (l *loader) webhook(key string, w *AlertmanagerWebhook, cfg *Config) {
	configured := w.Channel != "" || len(w.Receivers) > 0 || len(w.LabelRules) > 0
	if w.Token == "" {
		if configured && !l.p.hasUnder(key) {
			l.p.addf(key, "token, token_env or token_file is required to take Alertmanager's webhook (or set %s)", webhookTokenEnv)
		}
		return
	}
	l.p.check(key, cfg.HTTP.Listen == "", "needs http.listen, where the webhook is served")
	switch p := w.Path; {
	case !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " ?#{}") || strings.Contains(p, "//"):
		l.p.addf(key+".path", "must be a path such as /alertmanager")
	case p == "/metrics" || p == "/healthz" || p == "/readyz" || p == "/":
		l.p.addf(key+".path", "%s is taken by the operations endpoint", quote(p))
	}
	// Where access.channels lists the channels the bot answers in, a
	// diagnosis goes to one of them: its buttons work there only.
	allowed := func(k, id string) {
		if len(cfg.Access.Channels) == 0 {
			return
		}
		for _, c := range cfg.Access.Channels {
			if c.ID == id {
				return
			}
		}
		l.p.addf(k, "%s is not in access.channels, where the bot answers (its buttons would not work there)", quote(id))
	}
	if w.Channel == "" {
		w.Channel = cfg.Alerts.Channel
	}
	switch k := key + ".channel"; {
	case w.Channel == "":
		l.p.addf(k, "is required when alerts.channel is not set (alerts of receivers not listed go there)")
	case w.Channel != cfg.Alerts.Channel && l.badChannelID(k, w.Channel):
	default:
		allowed(k, w.Channel)
	}
	seen := map[string]int{}
	for i, r := range w.Receivers {
		k := fmt.Sprintf("%s.receivers[%d]", key, i)
		if j, dup := seen[r.Name]; dup {
			l.p.addf(k+".name", "duplicate of %s.receivers[%d]", key, j)
		} else if r.Name == "" {
			l.p.addf(k+".name", "is required (the receiver's name in Alertmanager's config)")
		}
		seen[r.Name] = i
		if r.Channel == "" {
			l.p.addf(k+".channel", "is required")
		} else if !l.badChannelID(k+".channel", r.Channel) {
			allowed(k+".channel", r.Channel)
		}
	}
	names := map[string]bool{}
	for _, in := range cfg.Instances {
		names[in.Name] = true
	}
	for i, r := range w.LabelRules {
		k := fmt.Sprintf("%s.label_rules[%d]", key, i)
		l.p.check(k+".match", len(r.Match) == 0, "at least one label is required")
		for _, name := range slices.Sorted(maps.Keys(r.Match)) {
			if !labelNamePattern.MatchString(name) {
				l.p.addf(k+".match", "%s is not a Prometheus label name", quote(name))
			}
		}
		switch {
		case r.Instance == "":
			l.p.addf(k+".instance", "is required")
		case !names[r.Instance] && !l.p.isFailed("instances"):
			l.p.addf(k+".instance", "no instance is called %s", quote(r.Instance))
		}
	}
}
