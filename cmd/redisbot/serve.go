package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/remedy"
	"github.com/redisbot/redisbot/runbooks"
)

// serve runs the Slack bot until ctx is cancelled (SIGTERM, SIGINT).
func serve(ctx context.Context, cfg *config.Config, svc *handlers.Service, prober *probe.Prober, lib *runbooks.Library, stderr io.Writer, jsonLogs bool) int {
	log := newLogger(stderr, cfg.Secrets(), jsonLogs)
	if err := cfg.RequireSlack(); err != nil {
		log.Error("cannot serve", "error", err)
		return exitError
	}
	st, err := store.Open(ctx, store.Options{
		Path: cfg.Store.Path, RedisURL: cfg.Store.RedisURL,
		Retention: cfg.Store.Retention, AuditRetention: cfg.Store.AuditRetention,
	})
	if err != nil {
		log.Error("cannot open the state store", "store", cfg.Store.String(), "error", err)
		return exitError
	}
	defer st.Close()
	workflow := approvals.New(st, prober, remedy.NewExecutor(prober, cfg.Probe.Timeout, nil),
		func(name string) (handlers.Instance, error) { return svc.Resolve(name, nil) },
		approvals.Config{
			Expiry:            cfg.Approvals.Expiry,
			AllowSelfApproval: cfg.Access.AllowSelfApproval,
			Required:          cfg.Approvals.Required,
			Budget:            cfg.Approvals.Budget,
			Policy:            remedy.Policy{DefragMaxOps: cfg.Approvals.DefragMaxOps, DefragParams: cfg.Approvals.DefragParams},
		}, nil)

	api := slack.New(cfg.Slack.BotToken,
		slack.OptionAppLevelToken(cfg.Slack.AppToken),
		slack.OptionAPIURL(cfg.Slack.APIURL))
	socket := socketmode.New(api)
	channels := make([]access.Channel, len(cfg.Access.Channels))
	for i, c := range cfg.Access.Channels {
		channels[i] = access.Channel{ID: c.ID, Tags: c.Tags}
	}
	policy := access.New(access.Rules{
		Channels:  channels,
		Viewers:   cfg.Access.Viewers,
		Operators: cfg.Access.Operators,
		Approvers: cfg.Access.Approvers,
	}, slackGroups{api}, cfg.Slack.UsergroupTTL, nil)

	bot := slackbot.New(slackbot.Options{
		API: api, Socket: socket, Router: svc, Access: policy, Runbooks: lib,
		APIURL:          cfg.Slack.APIURL,
		Workers:         cfg.Slack.Workers,
		Queue:           cfg.Slack.Queue,
		ThreadReplies:   cfg.Slack.ThreadReplies,
		ShutdownTimeout: cfg.Slack.ShutdownTimeout,
		Logger:          log,
		Workflow:        workflow,
		Store:           st,
		Resolver:        svc,
		Dedupe:          st,
	})
	log.Info("redisbot serving", "version", version, "instances", len(cfg.Instances), "api_url", cfg.Slack.APIURL, "store", cfg.Store.String())
	if err := bot.Run(ctx); err != nil {
		log.Error("slack bot stopped", "error", err)
		return exitError
	}
	log.Info("redisbot stopped")
	return exitOK
}

// slackGroups reads user-group members for the access policy.
type slackGroups struct{ api *slack.Client }

func (g slackGroups) GroupMembers(ctx context.Context, id string) ([]string, error) {
	return g.api.GetUserGroupMembersContext(ctx, id)
}

// newLogger logs JSON (or text for a person at a terminal) and replaces
// every secret the config holds, wherever it would appear.
func newLogger(w io.Writer, secrets []string, jsonLogs bool) *slog.Logger {
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		switch a.Value.Kind() {
		case slog.KindString:
			a.Value = slog.StringValue(handlers.Redact(a.Value.String(), secrets...))
		case slog.KindAny:
			if err, ok := a.Value.Any().(error); ok {
				a.Value = slog.StringValue(handlers.Redact(err.Error(), secrets...))
			} else if s, ok := a.Value.Any().(fmt.Stringer); ok {
				a.Value = slog.StringValue(handlers.Redact(s.String(), secrets...))
			}
		}
		return a
	}}
	if jsonLogs {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// wantJSONLogs picks the log format: JSON for machines, text for a person
// at a terminal, unless --log-format says otherwise.
func wantJSONLogs(format string, w io.Writer, getenv func(string) string) bool {
	switch strings.ToLower(format) {
	case "json":
		return true
	case "text":
		return false
	}
	return !useColor("auto", w, func(k string) string {
		if k == "NO_COLOR" {
			return "" // colour preference does not decide the log format
		}
		return getenv(k)
	})
}
