// Package config loads and validates redisbot's configuration: a YAML file
// with REDISBOT_* environment overrides on top.
//
// Loading is strict, in the manner of Alertmanager: an unknown key anywhere is
// an error, every value is checked, and all problems are reported at once, in
// file order, each naming the full key path ("instances[2].addr: missing
// port"). Secrets are resolved while loading (password_env, password_file,
// the remediation passwords, the Slack tokens and their files, the store's
// Redis URL), so the rest of the program only sees handlers.Instance, Slack
// and Store values, and no error text ever carries a password, a token or
// that URL.
//
// The file is parsed once into a yaml.Node (for key positions and the
// secret checks of secretyaml.go), decoded into a map, overridden from the
// environment, and decoded by mapstructure into file, starting from
// defaults(). decodeHook turns strings into durations, sizes and numbers
// and words every type error; unknown keys are errors. The section checks
// then turn file into Config, each problem under its key.
//
// Adding a config section "foo":
//   - a Foo type in its own file, with a mapstructure tag on each field
//     (its key), a doc comment per field naming the key and its default,
//     and a Foo field in Config;
//   - a Foo field tagged "foo" in file, and its defaults in defaults();
//     when some key is not a plain value of Foo (a secret read from a
//     file, a name to look up), give file a fooFile shape instead;
//   - a (l *loader) foo(Foo) Foo method that checks each value with
//     l.p.check(key, bad, msg) or l.p.addf, called from load; a key whose
//     value did not decode keeps its default and gets no second problem;
//   - "foo" in envSections if its scalar keys get REDISBOT_FOO_* overrides;
//   - the keys in config.example.yaml (TestExampleDocumentsEveryKey), and
//     a testdata/bad_foo_*.yml per message in TestLoadErrors.
package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/regularfile"
)

// Defaults for the probe section.
const (
	DefaultProbeTimeout = 2 * time.Second
	// DefaultProbeConcurrency lets a sweep of 1,000 instances with 10% of
	// them blackholed or slow wait out all of them in one probe timeout
	// instead of queueing behind them; 16 took four to five timeouts
	// (docs/benchmarks.md, "Fleet sweep of 1,000 instances"). It is where
	// a fleet probe starts: handlers.Service.Fleet adds workers beside
	// those blocked on servers that do not answer, up to
	// probe.workers_growth times it, which took a sweep of 10,000
	// instances with issue 18's faults from 17 s to about 5 s ("Sweep
	// time with faults (#18)").
	DefaultProbeConcurrency = 128
	// DefaultProbeBlockedAfter and DefaultProbeWorkersGrowth are the
	// service's own (handlers.SetFleetGrowth).
	DefaultProbeBlockedAfter  = handlers.DefaultBlockedAfter
	DefaultProbeWorkersGrowth = handlers.DefaultFleetWorkersGrowth
	// maxProbeWorkersGrowth bounds probe.workers_growth: a fleet probe
	// starts up to growth times probe.concurrency goroutines, each a probe
	// in flight (a descriptor where the CLI dials per probe), and 64 times
	// the default concurrency is already 8,192.
	maxProbeWorkersGrowth = 64
)

// Defaults for the slack section.
const (
	DefaultSlackAPIURL          = "https://slack.com/api/"
	DefaultSlackWorkers         = 16
	DefaultSlackQueue           = 256
	DefaultSlackShutdownTimeout = 10 * time.Second
	DefaultSlackUsergroupTTL    = 5 * time.Minute
	// The slow lane's (bot/slackbot/lanes.go): 32 commands waiting on dead
	// instances at once and 64 queued are more than a burst about a few
	// dead instances needs, and bound the goroutines a burst about many
	// can hold; 500 ms is several times a healthy probe and reply.
	DefaultSlackSlowWorkers = 32
	DefaultSlackSlowQueue   = 64
	DefaultSlackSlowAfter   = 500 * time.Millisecond
)

// Defaults for the store section.
const (
	DefaultStorePath      = "redisbot.db"
	DefaultRetention      = 14 * 24 * time.Hour
	DefaultAuditRetention = 90 * 24 * time.Hour
)

// Defaults for the approvals section; the rest are in DefaultApprovals.
const (
	DefaultApprovalExpiry = 15 * time.Minute
	DefaultDefragMaxOps   = 50000
)

// Defaults for the schedule and alerts sections.
const (
	DefaultSweep          = "@every 1m"
	DefaultLease          = 30 * time.Second
	DefaultRepeatInterval = 4 * time.Hour
	DefaultStormThreshold = 0.5
	// DefaultGroupThreshold: five alerts of one finding in one sweep are
	// most likely one cause (a deploy, a traffic spike, a shared host),
	// and five pages in five seconds already read as noise; fewer are
	// read one by one and keep their own buttons (diagnose, acknowledge,
	// snooze). It is also the smallest fleet the unreachable storm rule
	// (alerts.MinStormFleet) treats as a storm.
	DefaultGroupThreshold = 5
	// maxGroupThreshold bounds alerts.group_threshold: beyond it grouping
	// would never start before a storm had paged for minutes.
	maxGroupThreshold = 1000
)

// Config is redisbot's validated configuration.
type Config struct {
	Probe Probe
	// Keys paces key scans (/redis keys).
	Keys Keys
	// HTTP is the operations endpoint (metrics and health) of serve.
	HTTP     HTTP
	Runbooks Runbooks
	// Instances are in file order, with secrets read and thresholds merged
	// (defaults < global thresholds < the instance's own thresholds).
	// Cluster seeds (cluster: true) and Sentinel entries (a sentinel
	// section, no addr) are listed as written: topology.Expand turns them
	// into the servers they stand for.
	Instances []handlers.Instance
	// Thresholds are the global thresholds: handlers.DefaultThresholds with
	// the file's thresholds section applied.
	Thresholds handlers.Thresholds
	// Slack configures the Slack bot. Load does not require its tokens, as
	// only the serve command needs them: it calls RequireSlack.
	Slack Slack
	// Access says where the Slack bot answers and who may do what.
	Access Access
	// Store says where the bot keeps approvals, audit and history.
	Store Store
	// Approvals are the rules of approval-gated remediations.
	Approvals Approvals
	// Schedule says when the cron work of serve runs: sweeps and digests.
	Schedule Schedule
	// Alerts says where sweeps post alerts and digests.
	Alerts Alerts
	// Remediation says how remediations measure their effect and when the
	// defrag watch turns defrag off.
	Remediation Remediation
	// Alertmanager takes Alertmanager's webhook and sends sweep alerts to
	// its API (alertmanager.go).
	Alertmanager Alertmanager
	// AlertTiming overrides when alerts post and repeat, per finding and
	// per instance.
	AlertTiming AlertTiming
}

// Schedule says when the cron work of serve runs. Specs are robfig/cron
// standard specs: five fields ("0 9 * * 1-5") or a descriptor ("@hourly",
// "@every 1m"), evaluated in Location. Load rejects what the scheduler would
// silently change or never run: a spec with its own zone (CRON_TZ=...), an
// @every under 1s or with a fraction of a second, a day that no month has.
// Replicas share the work through a leader lease, so that each sweep and
// digest runs once.
type Schedule struct {
	// Sweep is when the fleet is probed and alerts are updated
	// (schedule.sweep, default "@every 1m"); "" disables sweeps. An empty
	// REDISBOT_SCHEDULE_SWEEP counts as unset, so only the file disables
	// them.
	Sweep string
	// Digest is when the digest is posted to Alerts.Channel
	// (schedule.digest, default ""); "" means no digest.
	Digest string
	// Location is the time zone both specs are evaluated in
	// (schedule.timezone, an IANA name, default UTC).
	Location *time.Location
	// Lease is the TTL of the leader lease, renewed every Lease/3
	// (schedule.lease, default 30s, between 3s and 10m).
	Lease time.Duration
}

// Alerts says where sweeps post alerts and digests, and how often.
type Alerts struct {
	// Channel is the Slack channel id (C..., G... or D...) for alerts that
	// no route takes, fleet-wide storm summaries and digests
	// (alerts.channel). "" with no routes: sweeps record history but post
	// nothing.
	Channel string `mapstructure:"channel"`
	// Routes send an instance's alerts elsewhere by its tags; the first
	// route with one of the instance's tags wins (alerts.routes).
	Routes []Route `mapstructure:"routes"`
	// OnCallGroup is the user-group id (S...) mentioned on critical alerts
	// (alerts.oncall_group); "" mentions nobody.
	OnCallGroup string `mapstructure:"oncall_group"`
	// RepeatInterval is how often a still-firing alert is posted again
	// (alerts.repeat_interval, default 4h, between 5m and 7 days).
	RepeatInterval time.Duration `mapstructure:"repeat_interval"`
	// StormThreshold is the share of the fleet unreachable in one sweep
	// above which one summary replaces the per-instance alerts
	// (alerts.storm_threshold, default 0.5, greater than 0 and at most 1;
	// 1 never storms).
	StormThreshold float64 `mapstructure:"storm_threshold"`
	// GroupThreshold is how many alerts of one finding firing in one
	// channel in one sweep are posted as one message listing the
	// instances, with one on-call mention (alerts.group_threshold, default
	// 5, 0 to 1000; 0 or 1 posts each alert by itself).
	GroupThreshold int `mapstructure:"group_threshold"`
}

// Route sends the alerts of instances with one of Tags to Channel.
type Route struct {
	// Tags are instance tags, at least one, each on some instance. No tag
	// is in two routes: the second could never match.
	Tags []string `mapstructure:"tags"`
	// Channel is the Slack channel id (C..., G... or D...).
	Channel string `mapstructure:"channel"`
}

// ChannelFor returns the channel for an instance's tags: the channel of the
// first route with one of tags, else Channel. "" means the alert is not
// posted.
func (a Alerts) ChannelFor(tags []string) string {
	for _, r := range a.Routes {
		for _, t := range r.Tags {
			if slices.Contains(tags, t) {
				return r.Channel
			}
		}
	}
	return a.Channel
}

// Store says where the bot keeps its state: pending and past approvals, the
// audit log and history.
type Store struct {
	// Path is the embedded bbolt file, used when RedisURL is empty
	// (store.path, default redisbot.db). A relative path in the file is
	// resolved against the directory of the config file.
	Path string
	// RedisURL, when set, keeps the state in that Redis instead, so that
	// several replicas of the bot share it: redis://[user:pass@]host:port/db
	// or rediss://... for TLS. From REDISBOT_STORE_REDIS_URL,
	// store.redis_url or the variable store.redis_url_env names. It may
	// carry a password: log it with String, never as is.
	RedisURL string
	// Retention is how long history is kept (store.retention, default 14
	// days, at least 1h).
	Retention time.Duration
	// AuditRetention is how long the audit log is kept
	// (store.audit_retention, default 90 days, at least 1h).
	AuditRetention time.Duration
}

// String says where the state lives, with the URL's password hidden, for
// logs.
func (s Store) String() string {
	if s.RedisURL == "" {
		return s.Path
	}
	u, err := url.Parse(s.RedisURL)
	if err != nil {
		return "redis (invalid URL)"
	}
	return u.Redacted()
}

// Approvals are the rules of approval-gated remediations. The maps have an
// entry for every action.
type Approvals struct {
	// Expiry is how long a request waits for approval (approvals.expiry,
	// default 15m, between 1m and 24h).
	Expiry time.Duration
	// Required is how many approvals each action needs
	// (approvals.required, default 1, at most 5).
	Required map[handlers.Action]int
	// Budget is how many times each action may run on one instance in 24
	// hours, 0 for no limit (approvals.budget; by default 3 restarts and 3
	// failovers, the rest unlimited).
	Budget map[handlers.Action]int
	// DefragMaxOps: defrag-on is refused above this
	// instantaneous_ops_per_sec (approvals.defrag_max_ops, default 50000).
	DefragMaxOps int64
	// DefragParams are the CONFIG SET name and value pairs defrag-on sets
	// before activedefrag yes, always the five active-defrag-* parameters
	// in the same order (approvals.defrag; the defaults are the runbook's
	// conservative profile).
	DefragParams [][2]string
}

// Slack configures the Slack bot run by the serve command.
type Slack struct {
	// AppToken is the app-level token (xapp-...) that opens the Socket Mode
	// connection. From REDISBOT_SLACK_APP_TOKEN, SLACK_APP_TOKEN,
	// REDISBOT_SLACK_APP_TOKEN_FILE, slack.app_token or
	// slack.app_token_file, in that order of precedence.
	AppToken string `mapstructure:"app_token"`
	// BotToken is the bot token (xoxb-...) for Web API calls, from the
	// same kinds of sources as AppToken (SLACK_BOT_TOKEN and so on).
	BotToken string `mapstructure:"bot_token"`
	// APIURL is the base URL of the Web API, ending in "/"
	// (slack.api_url, default https://slack.com/api/; GovSlack is
	// https://slack-gov.com/api/).
	APIURL string `mapstructure:"api_url"`
	// Workers is how many commands run at once (slack.workers, default 16).
	Workers int `mapstructure:"workers"`
	// Queue is how many commands may wait for a worker before new ones are
	// turned away (slack.queue, default 256).
	Queue int `mapstructure:"queue"`
	// ThreadReplies, when true, posts the first message of a result in the
	// channel and the rest of a long result in its thread; when false,
	// everything goes to the channel (slack.thread_replies, default true).
	ThreadReplies bool `mapstructure:"thread_replies"`
	// ShutdownTimeout is how long a SIGTERM waits for commands in flight
	// (slack.shutdown_timeout, default 10s).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// UsergroupTTL is how long the members of a user group are cached
	// (slack.usergroup_ttl, default 5m).
	UsergroupTTL time.Duration `mapstructure:"usergroup_ttl"`
	// SlowWorkers is how many commands waiting on instances that do not
	// answer run at once in the slow lane, beside Workers
	// (slack.slow_workers, default 32).
	SlowWorkers int `mapstructure:"slow_workers"`
	// SlowQueue is how many commands may wait for the slow lane before
	// new ones are turned away (slack.slow_queue, default 64).
	SlowQueue int `mapstructure:"slow_queue"`
	// SlowAfter is how long a command runs on a worker before it moves to
	// the slow lane (slack.slow_after, default 500ms).
	SlowAfter time.Duration `mapstructure:"slow_after"`
}

// Access says where the Slack bot answers and who may do what. Users and
// groups are Slack ids: users U... or W..., user groups S... (a group stands
// for its members).
type Access struct {
	// Channels are where the bot answers; empty means every channel it is
	// in.
	Channels []Channel `mapstructure:"channels"`
	// Viewers may diagnose, as may operators and approvers; empty means
	// everyone in an allowed channel.
	Viewers []string `mapstructure:"viewers"`
	// Operators may request remediations; empty means nobody.
	Operators []string `mapstructure:"operators"`
	// Approvers may approve remediations; empty means nobody.
	Approvers []string `mapstructure:"approvers"`
	// AllowSelfApproval lets an approver approve a remediation they
	// requested themselves.
	AllowSelfApproval bool `mapstructure:"allow_self_approval"`
}

// Channel is a channel the bot answers in.
type Channel struct {
	// ID is the Slack channel id: C... (public), G... (private) or D...
	// (direct message).
	ID string `mapstructure:"id"`
	// Tags, when not empty, limit the channel to instances with at least
	// one of these tags.
	Tags []string `mapstructure:"tags"`
}

// DefaultHTTPListen is where serve exposes /metrics, /healthz and /readyz.
const DefaultHTTPListen = "127.0.0.1:9121"

// HTTP configures the operations endpoint of serve.
type HTTP struct {
	// Listen is the address of /metrics, /healthz and /readyz
	// (http.listen, default 127.0.0.1:9121; empty: off).
	Listen string `mapstructure:"listen"`
}

// Probe bounds how redisbot talks to Redis.
type Probe struct {
	// Timeout bounds connecting to and reading from one instance
	// (probe.timeout, default 2s).
	Timeout time.Duration `mapstructure:"timeout"`
	// Concurrency is how many instances are probed at once, at first: a
	// fleet probe adds probes beside those waiting on servers that do
	// not answer, up to WorkersGrowth times it (probe.concurrency, default
	// 128).
	Concurrency int `mapstructure:"concurrency"`
	// BlockedAfter is how long a fleet probe waits on its server before
	// another starts beside it (probe.blocked_after, default 200ms).
	BlockedAfter time.Duration `mapstructure:"blocked_after"`
	// WorkersGrowth bounds a fleet probe's probes in flight to this many
	// times Concurrency (probe.workers_growth, default 8, 1 to 64; 1:
	// never more than Concurrency).
	WorkersGrowth int `mapstructure:"workers_growth"`
}

// Runbooks says where runbooks come from.
type Runbooks struct {
	// Dir, when set, is a directory of Markdown runbooks that override the
	// built-in ones (runbooks.dir). A relative path in the file is resolved
	// against the directory of the config file.
	Dir string `mapstructure:"dir"`
}

// Instance returns the configured instance called name.
func (c *Config) Instance(name string) (handlers.Instance, bool) {
	for _, in := range c.Instances {
		if in.Name == name {
			return in, true
		}
	}
	return handlers.Instance{}, false
}

// RequireSlack reports what serve is missing: both tokens, each with the
// right prefix. Every problem is reported (errors.Join); no token is ever
// quoted.
func (c *Config) RequireSlack() error {
	var errs []error
	for _, t := range []struct{ key, token, prefix, env string }{
		{"slack.app_token", c.Slack.AppToken, appTokenPrefix, "SLACK_APP_TOKEN"},
		{"slack.bot_token", c.Slack.BotToken, botTokenPrefix, "SLACK_BOT_TOKEN"},
	} {
		switch {
		case t.token == "":
			errs = append(errs, fmt.Errorf("%s: required for serve (set %s)", t.key, t.env))
		case !strings.HasPrefix(t.token, t.prefix):
			errs = append(errs, fmt.Errorf("%s: must start with %s", t.key, t.prefix))
		}
	}
	return errors.Join(errs...)
}

// Secrets returns every secret value loaded, instance and remediation
// passwords, Slack tokens and the password of the store's Redis URL, each
// once and none empty, for the logger to redact.
func (c *Config) Secrets() []string {
	var secrets []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			secrets = append(secrets, s)
		}
	}
	for _, in := range c.Instances {
		add(in.Password)
		add(in.Remediation.Password)
	}
	add(c.Slack.AppToken)
	add(c.Slack.BotToken)
	add(c.Alertmanager.Webhook.Token)
	for _, pw := range urlPasswords(c.Alertmanager.URL) {
		add(pw)
	}
	for _, pw := range urlPasswords(c.Store.RedisURL) {
		add(pw)
	}
	return secrets
}

// Load reads the YAML file at path, applies REDISBOT_* environment overrides
// looked up through getenv, resolves secrets and validates the result.
//
// Environment overrides: every scalar key of the sections in envSections
// (probe, runbooks, http, keys, thresholds, slack, store, approvals,
// schedule, alerts) has its REDISBOT_<SECTION>_<KEY>: REDISBOT_PROBE_TIMEOUT,
// REDISBOT_THRESHOLDS_FRAG_WARNING. Lists and maps (alerts.routes,
// approvals.required) come from the file only. Secrets have their own:
//   - REDISBOT_INSTANCES_<NAME>_PASSWORD, where NAME is the instance name
//     upper-cased with '-' and '.' turned into '_' (cache-1 ->
//     REDISBOT_INSTANCES_CACHE_1_PASSWORD), replaces whatever password,
//     password_env or password_file the file gives;
//     REDISBOT_INSTANCES_<NAME>_REMEDIATION_PASSWORD does the same for the
//     instance's remediation section;
//   - REDISBOT_STORE_REDIS_URL replaces redis_url and redis_url_env;
//   - REDISBOT_SLACK_APP_TOKEN beats SLACK_APP_TOKEN (the name Slack's
//     documentation uses), which beats REDISBOT_SLACK_APP_TOKEN_FILE, which
//     beats the file's app_token or app_token_file; the same goes for the
//     bot token.
//
// An empty variable counts as unset.
//
// Relative paths in the file (password_file, tls files, runbooks.dir,
// slack.*_token_file, store.path) are resolved against the directory of the
// config file.
//
// Every file is read through regularfile.Read, which refuses at once what is
// not a regular file (/dev/zero, a FIFO, a directory) and what is over its
// cap: maxConfigFile for the config file, maxSecretFile for password and token
// files, maxTLSFile for TLS files. The TLS files are checked as well: the
// ca_file must hold a certificate and cert_file and key_file must be a pair,
// so that a mistake is reported at start-up with its key, not at the first
// connection.
//
// A secret value that YAML would read as something other than the text
// written (an alias, an anchor, a tag, a comment after an unquoted value, a
// number that does not read back as written) is a problem that asks for
// quotes; see checkSecretValues.
//
// Loading stops between two files once ctx is done, and Load then returns an
// error that wraps the context's cause instead of the problems found.
//
// A file that cannot be read or parsed gives a single error prefixed
// "config: ", which never shows a secret value from the file. Otherwise every
// problem is reported, one per line (errors.Join), in file order.
func Load(ctx context.Context, path string, getenv func(string) string) (*Config, error) {
	if path == "" {
		return nil, errors.New("config: no file given")
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if ctx.Err() != nil {
		return nil, stopped(ctx, path)
	}
	data, err := regularfile.Read(path, maxConfigFile)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}

	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, parseError(path, data, err)
	}
	if !isMappingOrEmpty(&root) {
		return nil, fmt.Errorf("config: %s: top level must be a mapping", path)
	}
	dups := foldKeys(&root)
	l := &loader{
		ctx:          ctx,
		dir:          filepath.Dir(path),
		getenv:       getenv,
		p:            newProblems(positions(&root)),
		plainSecrets: map[int]int{},
	}
	// The decoder gets the checked tree: a refused secret is "" there, an
	// unquoted 123456 the text "123456".
	l.checkSecretValues(&root)
	doc := map[string]any{}
	if len(root.Content) > 0 {
		if err := root.Decode(&doc); err != nil {
			return nil, parseError(path, data, err)
		}
	}
	for _, key := range dups {
		l.p.addf(key, "duplicate key (keys are not case-sensitive)")
	}
	cfg := l.load(doc)
	if ctx.Err() != nil {
		return nil, stopped(ctx, path)
	}
	if err := l.p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// stopped is Load's error once ctx is done: a signal during loading, say.
func stopped(ctx context.Context, path string) error {
	return fmt.Errorf("config: loading %s stopped: %w", path, context.Cause(ctx))
}

// parseError reports a file that YAML cannot decode, on one line, with the
// values of secret keys taken out (redactYAMLError). yaml.v3's error is not
// wrapped: its text may hold them.
func parseError(path string, data []byte, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	return fmt.Errorf("config: %s: %s", path, redactYAMLError(msg, data))
}

// isMappingOrEmpty reports whether a parsed document is a mapping, or has no
// content at all (an empty file or a lone null).
func isMappingOrEmpty(doc *yaml.Node) bool {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	switch n.Kind {
	case yaml.MappingNode:
		return true
	case yaml.ScalarNode:
		return n.Tag == "!!null"
	}
	return false
}
