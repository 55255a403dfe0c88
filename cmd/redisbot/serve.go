package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/records"
	"github.com/redisbot/redisbot/bot/requestid"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/bot/sweep"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/remedy"
	"github.com/redisbot/redisbot/runbooks"
)

// serve runs the Slack bot until ctx is cancelled (SIGTERM, SIGINT). The
// service probes through serviceProber (prober itself, unless a test wraps
// it); remediations use prober.
func serve(ctx context.Context, cfg *config.Config, svc *handlers.Service, serviceProber handlers.Prober, prober *probe.Prober, lib *runbooks.Library, stderr io.Writer, jsonLogs bool) int {
	// One redactor of every configured secret, built once, for the logs,
	// Slack and remediation outcomes alike.
	redactor := handlers.NewRedactor(cfg.Secrets()...)
	log := newLogger(stderr, redactor, jsonLogs)
	if err := cfg.RequireSlack(); err != nil {
		log.Error("cannot serve", "error", err)
		return exitError
	}
	// The port first: a bot that cannot be monitored (another process on
	// the port, a typo) fails its start-up, before it connects to Slack or
	// sweeps, rather than run on without /metrics, /healthz and /readyz.
	var m *metrics.Metrics
	var ln net.Listener
	if cfg.HTTP.Listen != "" {
		var err error
		if ln, err = metrics.Listen(ctx, cfg.HTTP.Listen); err != nil {
			log.Error("cannot serve /metrics, /healthz and /readyz on http.listen "+cfg.HTTP.Listen+": is another process using it?", "listen", cfg.HTTP.Listen, "error", err)
			return exitError
		}
		defer ln.Close() // ServeListener closes it too; this covers the early returns
		m = metrics.New()
	}
	st, err := store.Open(ctx, store.Options{
		Path: cfg.Store.Path, RedisURL: cfg.Store.RedisURL,
		Retention: cfg.Store.Retention, AuditRetention: cfg.Store.AuditRetention,
		OnError: m.StoreError,
		// A stale leader's writes refused by its fencing token.
		OnFenced: func(string) { m.Fenced("store") },
	})
	if err != nil {
		log.Error("cannot open the state store", "store", cfg.Store.String(), "error", err)
		return exitError
	}
	defer st.Close()
	// The bot's own service reads the previous snapshot and the history
	// window from the store, so rules can compare with the last sweep.
	svc = handlers.NewService(svc.Instances(""), serviceProber, st, cfg.Probe.Concurrency, nil)
	// The sweep probes the instances it found down with a short first
	// timeout, which the service derives from the prober's.
	svc.SetProbeTimeout(cfg.Probe.Timeout)
	svc.SetFleetGrowth(cfg.Probe.BlockedAfter, cfg.Probe.WorkersGrowth)
	setMembership(svc, cfg)
	svc.SetKeyScanner(keyScanner(cfg))
	svc.SetRecords(records.New(st))
	svc.OnPanic(func(ctx context.Context, where, instance string, pe *handlers.PanicError) {
		m.Panicked(ctx, log.With("instance", instance), where, pe)
	})
	executor := remedy.NewExecutor(prober, cfg.Probe.Timeout, nil)
	executor.PurgeSettle = cfg.Remediation.PurgeSettle
	executor.Redactor = redactor
	workflow := approvals.New(st, prober, refreshAfterFailover{Executor: executor, svc: svc, log: log},
		func(name string) (handlers.Instance, error) { return svc.ResolveFresh(ctx, name, nil) },
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

	// Names of cluster and Sentinel members are resolved on a current list.
	resolver := resolverFunc(func(name string, scope []string) (handlers.Instance, error) {
		return svc.ResolveFresh(ctx, name, scope)
	})
	// One outbox for every Slack write, commands' and sweeps' alike: one
	// pace per rate-limit scope, replies first.
	out := outbox.New(outbox.Options{API: api, Redactor: redactor, Metrics: m, Logger: log})
	// Last, after the sweeps stopped: thread notes nobody waits for end
	// here instead of outliving serve.
	defer out.Close()
	bot := slackbot.New(slackbot.Options{
		Outbox: out, Socket: socket, Router: svc, Fleet: svc, Access: policy, Runbooks: lib,
		APIURL:          cfg.Slack.APIURL,
		Workers:         cfg.Slack.Workers,
		Queue:           cfg.Slack.Queue,
		SlowWorkers:     cfg.Slack.SlowWorkers,
		SlowQueue:       cfg.Slack.SlowQueue,
		SlowAfter:       cfg.Slack.SlowAfter,
		ThreadReplies:   cfg.Slack.ThreadReplies,
		ShutdownTimeout: cfg.Slack.ShutdownTimeout,
		Logger:          log,
		Workflow:        workflow,
		Store:           st,
		Resolver:        resolver,
		Dedupe:          st,
		Defrag:          executor,
		DefragWatch:     cfg.Remediation.DefragWatch,
		Metrics:         m,
		KeyScans:        slackbot.KeyScanOptions{MaxConcurrent: cfg.Keys.MaxConcurrent, MaxDuration: cfg.Keys.MaxDuration},
		Redactor:        redactor,
	})
	if cfg.Schedule.Sweep != "" {
		stopCron, err := schedule(ctx, cfg, svc, st, bot, lib, m, log)
		if err != nil {
			log.Error("cannot schedule sweeps", "error", err)
			return exitError
		}
		defer stopCron()
	}
	if m != nil {
		// Ready means "can serve commands", on a follower as on the
		// leader; the fleet's sweep age is in /metrics (see metrics.Checks).
		checks := metrics.Checks{
			SlackConnected: bot.Connected,
			StorePing:      func(ctx context.Context) error { _, err := st.Facts(ctx, "*readyz*"); return err },
		}
		handler := withAlertmanagerWebhook(m.Handler(checks, log, time.Now), cfg, svc, bot, policy, st, lib, log)
		goSafely(ctx, log, m, "http", func() {
			if err := metrics.ServeListener(ctx, ln, handler); err != nil {
				log.Error("metrics endpoint", "error", err)
			}
		})
		log.Info("metrics and health endpoint", "listen", cfg.HTTP.Listen)
	}
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
func newLogger(w io.Writer, secrets *handlers.Redactor, jsonLogs bool) *slog.Logger {
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		switch a.Value.Kind() {
		case slog.KindString:
			a.Value = slog.StringValue(secrets.Redact(a.Value.String()))
		case slog.KindAny:
			if err, ok := a.Value.Any().(error); ok {
				a.Value = slog.StringValue(secrets.Redact(err.Error()))
			} else if s, ok := a.Value.Any().(fmt.Stringer); ok {
				a.Value = slog.StringValue(secrets.Redact(s.String()))
			}
		}
		return a
	}}
	if jsonLogs {
		return slog.New(requestid.Handler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(requestid.Handler(slog.NewTextHandler(w, opts)))
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

// schedule starts the cron jobs. Every replica runs the scheduler, but only
// the one holding the leader lease does the work.
func schedule(ctx context.Context, cfg *config.Config, svc *handlers.Service, st *store.Store, bot *slackbot.Bot, lib *runbooks.Library, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	forward, err := alertmanagerForwarder(cfg, log)
	if err != nil {
		return nil, err
	}
	leader := sweep.NewLeader(st, "scheduler", replicaID(), cfg.Schedule.Lease, log, m)
	leaderCtx, cancelLeader := context.WithCancel(ctx)
	done := make(chan struct{})
	goSafely(ctx, log, m, "leader", func() { defer close(done); leader.Run(leaderCtx) })
	channelFor := cfg.Alerts.ChannelFor
	if !cfg.Alertmanager.ToSlack() {
		channelFor = func([]string) string { return "" } // alertmanager.sweep_alerts: alertmanager
	}
	sw := sweep.New(sweep.Options{
		Fleet: sweptFleet{svc, bot}, Store: st, Poster: bot, Finder: bot, Leader: leader, Runbooks: lib,
		ChannelFor: channelFor, OnCallGroup: cfg.Alerts.OnCallGroup,
		RepeatInterval: cfg.Alerts.RepeatInterval, StormThreshold: cfg.Alerts.StormThreshold, Log: log,
		GroupThreshold: cfg.Alerts.GroupThreshold, Interval: sweepInterval(cfg.Schedule.Sweep, time.Now()),
		Timing: func(inst handlers.Instance, finding string) alerts.Timing {
			return cfg.AlertTiming.Timing(inst, finding, cfg.Alerts.RepeatInterval)
		},
		Metrics: m, Forward: forward,
		// Expand cluster and Sentinel entries again before each sweep: after
		// a failover, <name>.master must point at the new primary.
		Refresh: func(ctx context.Context) {
			for _, err := range svc.Refresh(ctx) {
				log.Warn("expand instances", "error", err)
			}
		},
	})
	// The fleet verb probes the instances the last sweep saw time out with
	// a short first timeout, as the sweep and the digest do.
	svc.SetTimedOut(sw.TimedOut)
	// Each job recovers its own panics (a sweep, a digest); recoverJobs is
	// there for anything that does not, so no tick takes the scheduler,
	// or the process, down.
	c := cron.New(cron.WithLocation(cfg.Schedule.Location), cron.WithChain(recoverJobs(log, m)))
	if _, err := c.AddFunc(cfg.Schedule.Sweep, func() {
		sw.Tick(ctx)
		// A replica that does not lead learns from the store which
		// instances the leader's sweeps found not answering.
		names, err := sw.Follow(ctx)
		if err != nil {
			log.Warn("read the leader's unreachable instances", "error", err)
			return
		}
		bot.Unanswered(names)
	}); err != nil {
		cancelLeader()
		return nil, fmt.Errorf("schedule.sweep: %w", err)
	}
	if cfg.Schedule.Digest != "" {
		if _, err := c.AddFunc(cfg.Schedule.Digest, func() { sw.Digest(ctx, bot) }); err != nil {
			cancelLeader()
			return nil, fmt.Errorf("schedule.digest: %w", err)
		}
	}
	if _, err := c.AddFunc("@hourly", func() {
		if fenced, _, ok := leader.Fence(ctx); ok {
			if err := st.Prune(fenced); err != nil {
				log.Warn("prune", "error", err)
			}
		}
	}); err != nil {
		cancelLeader()
		return nil, err
	}
	c.Start()
	log.Info("sweeps scheduled", "spec", cfg.Schedule.Sweep, "timezone", cfg.Schedule.Location.String(), "lease", cfg.Schedule.Lease)
	return func() {
		<-c.Stop().Done()
		cancelLeader()
		<-done
	}, nil
}

// sweepInterval is the time between the next two sweeps of spec (the
// sweep's delivery deadline follows from it), 0 when spec does not parse
// (AddFunc then reports it).
func sweepInterval(spec string, now time.Time) time.Duration {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return 0
	}
	next := s.Next(now)
	return s.Next(next).Sub(next)
}

// recoverJobs is a cron wrapper that logs and counts a job's panic
// (where="cron"): that run is lost, the next runs on schedule.
func recoverJobs(log *slog.Logger, m *metrics.Metrics) cron.JobWrapper {
	return func(j cron.Job) cron.Job {
		return cron.FuncJob(func() {
			if pe, ok := handlers.AsPanic(handlers.Safely(func() error { j.Run(); return nil })); ok {
				m.Panicked(context.Background(), log, "cron", pe)
			}
		})
	}
}

// goSafely runs f in a goroutine whose panic is logged and counted under
// where instead of ending the process.
func goSafely(ctx context.Context, log *slog.Logger, m *metrics.Metrics, where string, f func()) {
	go func() {
		if pe, ok := handlers.AsPanic(handlers.Safely(func() error { f(); return nil })); ok {
			m.Panicked(ctx, log, where, pe)
		}
	}()
}

// replicaID names this process in the leader lease.
func replicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// sweptFleet is the fleet the sweep probes; the bot hears what each sweep
// found, so a command about an instance the sweep saw time out does not
// hold one of the bot's main workers first (issue 18).
type sweptFleet struct {
	*handlers.Service
	bot *slackbot.Bot
}

func (f sweptFleet) Fleet(ctx context.Context, tag string, timedOut map[string]bool) ([]*handlers.Report, error) {
	reports, err := f.Service.Fleet(ctx, tag, timedOut)
	f.bot.Saw(reports)
	return reports, err
}
