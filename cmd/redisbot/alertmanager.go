package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/alertmanager"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// withAlertmanagerWebhook serves Alertmanager's webhook on its path beside
// the operations endpoint h, when a token turns it on. A diagnosis posted
// in a channel shows what a command typed there may see (policy).
func withAlertmanagerWebhook(h http.Handler, cfg *config.Config, svc *handlers.Service, bot *slackbot.Bot, policy *access.Policy, st *store.Store, lib *runbooks.Library, log *slog.Logger) http.Handler {
	w := cfg.Alertmanager.Webhook
	if w.Token == "" {
		return h
	}
	rules := make([]alertmanager.LabelRule, len(w.LabelRules))
	for i, r := range w.LabelRules {
		rules[i] = alertmanager.LabelRule(r)
	}
	mux := http.NewServeMux()
	mux.Handle(w.Path, alertmanager.NewReceiver(alertmanager.ReceiverOptions{
		Token:      w.Token,
		Mapper:     alertmanager.NewMapper(func() []handlers.Instance { return svc.Instances("") }, rules),
		Router:     svc,
		Poster:     bot,
		Store:      st,
		Runbooks:   lib,
		ChannelFor: w.ChannelFor,
		Scope: func(channel string) ([]string, error) {
			c, err := policy.Channel(channel)
			return c.Tags, err
		},
		Log: log.With("component", "alertmanager-webhook"),
	}))
	mux.Handle("/", h)
	log.Info("alertmanager webhook", "path", w.Path, "listen", cfg.HTTP.Listen)
	return mux
}

// alertmanagerForwarder is the sweep's Forwarder when sweep alerts go to
// Alertmanager, else nil.
func alertmanagerForwarder(cfg *config.Config, log *slog.Logger) (sweep.Forwarder, error) {
	if !cfg.Alertmanager.ToAlertmanager() {
		return nil, nil // a nil interface, not a nil *Forwarder in one
	}
	f, err := alertmanager.NewForwarder(alertmanager.ForwarderOptions{
		URL:        cfg.Alertmanager.URL,
		Resend:     cfg.Alertmanager.ResendInterval,
		Every:      sweepPeriod(cfg.Schedule.Sweep, cfg.Schedule.Location),
		RunbookURL: cfg.Alertmanager.RunbookFor,
		Log:        log.With("component", "alertmanager-forward"),
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// sweepPeriod is the longest gap between two of the next few sweeps of
// spec (a cron spec that config has checked), which the endsAt of alerts
// sent to Alertmanager must outlast.
func sweepPeriod(spec string, loc *time.Location) time.Duration {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return 0
	}
	var longest time.Duration
	t := sched.Next(time.Now().In(loc))
	for range 8 {
		n := sched.Next(t)
		longest = max(longest, n.Sub(t))
		t = n
	}
	return longest
}
