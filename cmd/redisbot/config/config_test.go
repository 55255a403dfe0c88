package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/topology"
)

// env is a getenv backed by a map, so tests never see the real environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadGood(t *testing.T) {
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{"SESSIONS_PASSWORD": "env-pw"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	global := handlers.DefaultThresholds()
	global.FragWarning = 1.6
	global.FragMinUsedMemory = 64 << 20
	global.ClientBufferAvg = 1 << 20
	global.ReplicaBuffers = 100000
	cache1 := global
	cache1.FragWarning = 1.8
	cache1.MaxmemoryCritical = 0.9
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}

	want := &Config{
		Probe:      Probe{Timeout: 3 * time.Second, Concurrency: 4, BlockedAfter: 50 * time.Millisecond, WorkersGrowth: 2},
		Keys:       Keys{Budget: DefaultKeysBudget, MaxDuration: DefaultKeysMaxDuration, MaxConcurrent: DefaultKeysMaxConcurrent},
		HTTP:       HTTP{Listen: DefaultHTTPListen},
		Runbooks:   Runbooks{Dir: filepath.Join("testdata", "runbooks")},
		Thresholds: global,
		Instances: []handlers.Instance{
			{
				Name:        "cache-1",
				Addr:        "127.0.0.1:6379",
				Username:    "redisbot",
				Password:    "inline-pw",
				DB:          1,
				Tags:        []string{"cache", "team-a"},
				MemoryLimit: 6 << 30,
				Thresholds:  cache1,
				Remediation: handlers.Remediation{
					Username:       "redisbot-admin",
					Password:       "inline-admin-pw",
					RestartMethod:  "command",
					RestartCommand: []string{"systemctl", "restart", "redis@cache-1", "--no-block"},
					FailoverMethod: "failover",
					PersistConfig:  true,
				},
			},
			{
				Name:     "sessions.eu-1",
				Addr:     "[::1]:6380",
				Password: "env-pw",
				TLS: &handlers.TLS{
					CAFile:     filepath.Join("testdata", "tls", "ca.pem"),
					CertFile:   filepath.Join("testdata", "tls", "client.pem"),
					KeyFile:    filepath.Join("testdata", "tls", "client-key.pem"),
					ServerName: "sessions.internal",
				},
				MemoryLimit: 2 << 30,
				Thresholds:  global,
				Remediation: handlers.Remediation{
					Password:      "remediation-file-secret",
					RestartMethod: "shutdown",
				},
			},
			{
				Name:       "queue-1",
				Addr:       "redis.internal:6381",
				Password:   "file-secret", // trailing newline trimmed
				TLS:        &handlers.TLS{},
				Thresholds: global,
				// restart_command: [] is no command.
				Remediation: handlers.Remediation{RestartCommand: []string{}},
			},
		},
		Slack: Slack{
			AppToken:        "xapp-1-A0GOOD-app", // from slack-app-token.txt, newline trimmed
			BotToken:        "xoxb-1-inline-bot",
			APIURL:          "http://127.0.0.1:8080/api/",
			Workers:         4,
			Queue:           8,
			ThreadReplies:   false,
			ShutdownTimeout: 30 * time.Second,
			UsergroupTTL:    time.Minute,
			SlowWorkers:     2,
			SlowQueue:       3,
			SlowAfter:       time.Second,
		},
		Access: Access{
			Channels: []Channel{
				{ID: "C0123ABCD", Tags: []string{"team-a"}},
				{ID: "G0456EFGH"},
				{ID: "D0789IJKL", Tags: []string{"cache", "team-a"}},
			},
			Viewers:           []string{"U0AAAAAAA", "W0BBBBBBB", "S0CCCCCCC"},
			Operators:         []string{"U0AAAAAAA"},
			Approvers:         []string{"S0DDDDDDD"},
			AllowSelfApproval: true,
		},
		Store: Store{
			Path:           filepath.Join("testdata", "state", "redisbot.db"), // need not exist
			RedisURL:       "rediss://redisbot:url%2Fpw@state.internal:6380/2?dial_timeout=3s",
			Retention:      7 * 24 * time.Hour,
			AuditRetention: 90 * 24 * time.Hour,
		},
		Approvals: Approvals{
			Expiry: 30 * time.Minute,
			Required: map[handlers.Action]int{
				"memory-purge": 1, "defrag-on": 1, "defrag-off": 1, "config-set": 1, "bgsave": 1,
				"restart": 2, "failover": 2,
			},
			Budget: map[handlers.Action]int{
				"memory-purge": 0, "defrag-on": 0, "defrag-off": 0, "config-set": 10, "bgsave": 0,
				"restart": 5, "failover": 0,
			},
			DefragMaxOps: 20000,
			DefragParams: [][2]string{
				{"active-defrag-ignore-bytes", "200mb"},
				{"active-defrag-threshold-lower", "15"},
				{"active-defrag-threshold-upper", "100"},
				{"active-defrag-cycle-min", "1"},
				{"active-defrag-cycle-max", "50"},
			},
		},
		Schedule: Schedule{
			Sweep:    "*/2 * * * *",
			Digest:   "0 9 * * mon-fri",
			Location: paris,
			Lease:    45 * time.Second,
		},
		Alerts: Alerts{
			Channel: "C0ALERTS",
			Routes: []Route{
				{Tags: []string{"team-a"}, Channel: "C0TEAMA"},
				{Tags: []string{"cache"}, Channel: "G0CACHE"},
			},
			OnCallGroup:    "S0ONCALL",
			RepeatInterval: 2*time.Hour + 30*time.Minute,
			StormThreshold: 0.75,
			GroupThreshold: 20,
		},
		Remediation:  DefaultRemediation(),
		Alertmanager: defaultAlertmanager(),
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", cfg, want)
	}

	in, ok := cfg.Instance("queue-1")
	if !ok || in.Addr != "redis.internal:6381" {
		t.Errorf(`Instance("queue-1") = %v, %v`, in, ok)
	}
	if _, ok := cfg.Instance("nope"); ok {
		t.Errorf(`Instance("nope") found an instance`)
	}
	if got, want := cfg.Store.String(), "rediss://redisbot:xxxxx@state.internal:6380/2?dial_timeout=3s"; got != want {
		t.Errorf("Store.String() = %q, want %q", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		file    string
		wantErr string
	}{
		{"bad_unknown_key.yml", `instances[2].adress: unknown key`},
		{"bad_unknown_top.yml", "instance: unknown key (did you mean instances?)\ninstances: at least one instance is required"},
		{"bad_unknown_tls.yml", `instances[0].tls.ca: unknown key (did you mean ca_file?)`},
		{"bad_unknown_threshold.yml", "thresholds.frag_warn: unknown key (did you mean frag_warning?)\ninstances[0].thresholds.maxmemory: unknown key (did you mean maxmemory_critical, maxmemory_of_limit, maxmemory_warning?)"},
		{"bad_unknown_probe.yml", `probe.retries: unknown key`},
		{"bad_duplicate_key.yml", `config: testdata/bad_duplicate_key.yml: line 4: mapping key "addr" already defined at line 3`},
		{"bad_case_duplicate_key.yml", `instances[0].addr: duplicate key (keys are not case-sensitive)`},

		{"bad_addr_missing_port.yml", `instances[2].addr: missing port`},
		{"bad_addr_port.yml", `instances[0].addr: invalid port "70000": must be 1-65535`},
		{"bad_addr_host.yml", "instances[0].addr: missing host\n" +
			"instances[1].addr: too many colons (write IPv6 addresses as [::1]:6379)\n" +
			`instances[2].addr: invalid host "cache 3"`},
		{"bad_addr_required.yml", `instances[0].addr: is required`},
		{"bad_addr_ipv6.yml", `instances[0].addr: too many colons (write IPv6 addresses as [::1]:6379)`},

		{"bad_name_pattern.yml", `instances[0].name: "Cache 1" must match [a-z0-9._-]+`},
		{"bad_name_required.yml", `instances[0].name: is required`},
		{"bad_name_duplicate.yml", `instances[3].name: duplicate of instances[1]`},

		{"bad_password_exclusive.yml", `instances[1]: password and password_env are exclusive`},
		{"bad_password_all.yml", `instances[0]: password, password_env and password_file are exclusive`},
		{"bad_password_env.yml", `instances[0].password_env: CACHE1_PASSWORD is not set`},
		{"bad_password_file.yml", `instances[0].password_file: open /nonexistent/redisbot/cache1: no such file or directory`},
		{"bad_password_file_empty.yml", `instances[0].password_file: testdata/empty-secret.txt is empty`},
		{"bad_password_file_dir.yml", `instances[0].password_file: testdata/runbooks is not a regular file (a directory)`},
		{"bad_password_file_device.yml", "instances[0].password_file: /dev/zero is not a regular file (a character device)\n" +
			"instances[0].remediation.password_file: /dev/null is not a regular file (a character device)\n" +
			"slack.bot_token_file: /dev/zero is not a regular file (a character device)"},

		{"bad_memory_limit.yml", "instances[0].memory_limit: invalid size \"6 gigs\"\n" +
			"instances[1].memory_limit: invalid size \"-1\"\n" +
			`instances[2].memory_limit: invalid size "1.5GB"`},
		{"bad_db.yml", `instances[0].db: must not be negative`},
		{"bad_tags.yml", "instances[0].tags[1]: \"Team A\" must match [a-z0-9._-]+\n" +
			`instances[0].tags[2]: "" must match [a-z0-9._-]+`},
		{"bad_tls_pair.yml", `instances[0].tls: cert_file and key_file must be set together`},
		{"bad_tls_missing.yml", `instances[0].tls.ca_file: open testdata/tls/missing.pem: no such file or directory`},
		{"bad_tls_files.yml", "instances[0].tls.ca_file: /dev/zero is not a regular file (a character device)\n" +
			"instances[1].tls.ca_file: testdata/tls is not a regular file (a directory)\n" +
			"instances[2].tls.ca_file: testdata/tls/README.md holds no PEM certificate\n" +
			"instances[3].tls: cert_file and key_file: tls: private key does not match public key\n" +
			"instances[4].tls.key_file: /dev/null is not a regular file (a character device)\n" +
			"instances[5].tls: cert_file and key_file: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched"},

		// Secrets that YAML would read as something else than the text
		// written.
		{"bad_secret_yaml.yml", "base: unknown key\n" +
			"instances[0].password: YAML reads a value starting with * as an alias: quote the value\n" +
			"instances[1].password: YAML reads a value starting with & as an anchor: quote the value\n" +
			"instances[2].password: YAML reads a value starting with & as an anchor: quote the value\n" +
			"instances[3].password: YAML reads # and the rest of the line as a comment: quote the value, or put the comment on a line of its own\n" +
			"instances[4].password: YAML reads # and the rest of the line as a comment: quote the value, or put the comment on a line of its own\n" +
			"instances[5].password: YAML reads this unquoted value as an integer, not as the text written: quote it\n" +
			"instances[5].remediation.password: YAML reads this unquoted value as a boolean, not as the text written: quote it\n" +
			"instances[6].password: YAML reads this unquoted value as null (no value), not as the text written: quote it\n" +
			"instances[7].password: YAML reads a value starting with ! as a tag: quote the value\n" +
			"instances[8].password: YAML reads this unquoted value as a timestamp, not as the text written: quote it\n" +
			"instances[9].password: YAML reads this unquoted value as a number, not as the text written: quote it\n" +
			"slack.bot_token: YAML reads a value starting with ! as a tag: quote the value\n" +
			"slack.app_token: YAML reads # and the rest of the line as a comment: quote the value, or put the comment on a line of its own\n" +
			"store.redis_url: YAML reads # and the rest of the line as a comment: quote the value, or put the comment on a line of its own"},
		{"bad_secret_alias.yml", `config: testdata/bad_secret_alias.yml: line 6: password: YAML reads a value starting with * as an alias: quote the value`},
		{"bad_secret_alias_flow.yml", `config: testdata/bad_secret_alias_flow.yml: line 2: password: YAML reads a value starting with * as an alias: quote the value`},
		{"bad_secret_parse.yml", `config: testdata/bad_secret_parse.yml: yaml: unknown anchor '(not shown)' referenced`},

		{"bad_thresholds_order.yml", `thresholds.frag_critical: must be greater than frag_warning`},
		{"bad_keys.yml", "keys.budget: must be between 100 and 1000000 commands per second\nkeys.max_duration: must be between 1m and 24h\nkeys.max_concurrent: must be between 1 and 64"},
		{"bad_thresholds_pairs.yml", "thresholds.alloc_frag_critical: must be greater than alloc_frag_warning\n" +
			"thresholds.frag_restart: must be at least frag_critical\n" +
			"thresholds.maxmemory_critical: must be greater than maxmemory_warning\n" +
			"thresholds.rss_limit_critical: must be at most 1"},
		{"bad_thresholds_values.yml", "thresholds.frag_warning: must be positive\n" +
			"thresholds.post_peak_factor: must be positive\n" +
			"thresholds.defrag_min_hit_ratio: must be at most 1\n" +
			"thresholds.cow_margin: must be a finite number\n" +
			"thresholds.many_scripts: must not be negative\n" +
			"thresholds.fork_slow_usec: invalid integer \"1.5\"\n" +
			"thresholds.frag_min_used_memory: invalid size \"50 megs\"\n" +
			`thresholds.maxmemory_of_limit: invalid number "high"`},
		{"bad_instance_thresholds.yml", "instances[0].thresholds.frag_warning: must be less than frag_critical\n" +
			"instances[1].thresholds.maxmemory_warning: must be less than maxmemory_critical\n" +
			"instances[1].thresholds.frag_restart: must be at least frag_critical\n" +
			"instances[2].thresholds.rss_limit_critical: must be greater than rss_limit_warning\n" +
			`instances[2].thresholds.swap_min_used_memory: invalid size "lots"`},

		{"bad_probe.yml", "probe.timeout: must be positive\nprobe.concurrency: must be positive\n" +
			"probe.blocked_after: must be positive\nprobe.workers_growth: must be between 1 and 64 (1: never more probes than probe.concurrency)"},
		{"bad_probe_growth.yml", "probe.workers_growth: must be between 1 and 64 (1: never more probes than probe.concurrency)"},
		{"bad_probe_types.yml", "probe.timeout: invalid duration \"2 secs\"\nprobe.concurrency: invalid integer \"many\"\n" +
			"probe.blocked_after: invalid duration 200: add a unit, as in 2s or 500ms\nprobe.workers_growth: invalid integer \"1.5\""},
		{"bad_probe_unit.yml", `probe.timeout: invalid duration 5: add a unit, as in 2s or 500ms`},
		{"bad_runbooks_dir.yml", `runbooks.dir: stat testdata/no-such-runbooks: no such file or directory`},
		{"bad_runbooks_file.yml", `runbooks.dir: testdata/secret.txt is not a directory`},

		{"bad_no_instances.yml", `instances: at least one instance is required`},
		{"empty.yml", `instances: at least one instance is required`},
		{"bad_types.yml", "runbooks: expected a mapping, got a string\n" +
			"thresholds: expected a mapping, got a list\n" +
			"instances[0].name: expected a string, got an integer (quote it)\n" +
			"instances[0].db: invalid integer \"one\"\n" +
			"instances[0].tags: expected a list, got a string\n" +
			"instances[0].tls: expected a mapping, got a boolean\n" +
			"instances[1]: expected a mapping, got a string"},
		{"bad_slack_access_not_mapping.yml", "slack: expected a mapping, got a string\naccess: expected a mapping, got a list"},
		{"bad_not_mapping.yml", `config: testdata/bad_not_mapping.yml: top level must be a mapping`},
		{"bad_yaml.yml", `config: testdata/bad_yaml.yml: yaml: line 1: did not find expected '-' indicator`},

		{"bad_slack_unknown_key.yml", `slack.socket_mode: unknown key`},
		{"bad_slack_token_exclusive.yml", `slack: app_token and app_token_file are exclusive`},
		{"bad_slack_token_prefix.yml", "slack.app_token: must start with xapp-\nslack.bot_token: must start with xoxb-"},
		{"bad_slack_token_file.yml", "slack.app_token_file: open testdata/no-such-token: no such file or directory\n" +
			"slack.bot_token_file: testdata/empty-secret.txt is empty"},
		{"bad_slack_token_file_prefix.yml", `slack.bot_token_file: must start with xoxb-`},
		{"bad_slack_api_url_slash.yml", `slack.api_url: must end with /`},
		{"bad_slack_api_url_http.yml", `slack.api_url: must use https (http only for loopback)`},
		{"bad_slack_api_url_relative.yml", `slack.api_url: must be an absolute http(s) URL`},
		{"bad_slack_api_url_user.yml", `slack.api_url: must not contain a user or password`},
		{"bad_slack_api_url_query.yml", `slack.api_url: must not have a query or fragment`},
		{"bad_slack_api_url_empty.yml", `slack.api_url: is required`},
		{"bad_slack_values.yml", "slack.workers: must be positive\n" +
			"slack.queue: must be positive\n" +
			"slack.shutdown_timeout: must be positive\n" +
			"slack.usergroup_ttl: must be positive\n" +
			"slack.slow_workers: must be positive\n" +
			"slack.slow_queue: must be positive\n" +
			"slack.slow_after: must be positive"},
		// app_token: 123 reads back as written: it is the text "123".
		{"bad_slack_types.yml", "slack.app_token: must start with xapp-\n" +
			"slack.api_url: expected a string, got a list\n" +
			"slack.workers: invalid integer \"many\"\n" +
			"slack.queue: invalid integer \"2.5\"\n" +
			"slack.thread_replies: invalid boolean \"yes\"\n" +
			"slack.shutdown_timeout: invalid duration 10: add a unit, as in 2s or 500ms\n" +
			`slack.usergroup_ttl: invalid duration "5 mins"` + "\n" +
			"slack.slow_workers: invalid integer \"some\"\n" +
			"slack.slow_after: invalid duration 500: add a unit, as in 2s or 500ms"},

		{"bad_access_unknown_key.yml", "access.channels[0].name: unknown key\naccess.admins: unknown key"},
		{"bad_access_channel_id.yml", "access.channels[0].id: \"general\" is not a channel id (C…, G… or D…)\n" +
			"access.channels[1].id: \"#ops\" is not a channel id (C…, G… or D…)\n" +
			"access.channels[2].id: \"c0123abcd\" is not a channel id (C…, G… or D…)\n" +
			"access.channels[3].id: \"U0123ABCD\" is not a channel id (C…, G… or D…)\n" +
			`access.channels[4].id: "C1" is not a channel id (C…, G… or D…)`},
		{"bad_access_channel_id_required.yml", `access.channels[0].id: is required`},
		{"bad_access_channel_duplicate.yml", `access.channels[2].id: duplicate of access.channels[0]`},
		{"bad_access_channel_tags.yml", "access.channels[0].tags[1]: \"Team A\" must match [a-z0-9._-]+\n" +
			`access.channels[0].tags[2]: "" must match [a-z0-9._-]+`},
		{"bad_access_channel_tag_unknown.yml", "access.channels[0].tags[0]: no instance has tag \"team-z\"\n" +
			`access.channels[1].tags[1]: no instance has tag "caches"`},
		{"bad_access_users.yml", "access.viewers[1]: \"bob\" is not a user id (U…, W…) or user-group id (S…)\n" +
			"access.operators[0]: \"@alice\" is not a user id (U…, W…) or user-group id (S…)\n" +
			"access.operators[1]: \"u0aaaaaaa\" is not a user id (U…, W…) or user-group id (S…)\n" +
			`access.approvers[0]: "C0123ABCD" is not a user id (U…, W…) or user-group id (S…)`},
		{"bad_access_types.yml", "access.channels[0]: expected a mapping, got a string\n" +
			"access.viewers: expected a list, got a string\n" +
			"access.operators[0]: expected a string, got an integer (quote it)\n" +
			"access.approvers: expected a list, got a mapping\n" +
			`access.allow_self_approval: invalid boolean "sometimes"`},
		{"bad_access_token_pasted.yml", "access.viewers[0]: (a Slack token, not shown) is not a user id (U…, W…) or user-group id (S…)\n" +
			"access.channels[0].tags[0]: no instance has tag (a Slack token, not shown)\n" +
			"slack: unknown key (a Slack token, not shown)"},

		{"bad_store_unknown_key.yml", `store.url: unknown key`},
		{"bad_store_types.yml", "store.path: expected a string, got an integer (quote it)\n" +
			"store.redis_url: expected a string, got a list\n" +
			"store.retention: expected a duration, got a boolean\n" +
			`store.audit_retention: invalid duration "90 days" (examples: 14d, 336h)`},
		{"bad_store_not_mapping.yml", "store: expected a mapping, got a string\napprovals: expected a mapping, got a list"},
		{"bad_store_path.yml", `store.path: is required when redis_url is not set`},
		{"bad_store_path_dir.yml", `store.path: testdata/runbooks is a directory`},
		{"bad_store_redis_url.yml", `store.redis_url: must be a redis:// or rediss:// URL`},
		{"bad_store_redis_url_host.yml", `store.redis_url: missing host`},
		{"bad_store_redis_url_port.yml", `store.redis_url: invalid port: must be 1-65535`},
		{"bad_store_redis_url_fragment.yml", `store.redis_url: must not have a fragment (percent-encode # in a password as %23)`},
		{"bad_store_redis_url_db.yml", `store.redis_url: path must be a database number, as in redis://host:6379/0`},
		{"bad_store_redis_url_query.yml", `store.redis_url: unknown or invalid query option`},
		{"bad_store_redis_url_exclusive.yml", `store: redis_url and redis_url_env are exclusive`},
		{"bad_store_redis_url_env.yml", `store.redis_url_env: REDIS_STATE_URL is not set`},
		{"bad_store_redis_url_env_name.yml", `store.redis_url_env: must be the name of an environment variable, not its value`},
		{"bad_store_retention.yml", `store.retention: invalid duration "two weeks" (examples: 14d, 336h)`},
		{"bad_store_retention_unit.yml", `store.retention: invalid duration 14: add a unit, as in 14d or 336h`},
		{"bad_store_retention_min.yml", "store.retention: must be at least 1h\nstore.audit_retention: must be at least 1h"},
		{"bad_store_url_pasted.yml", "store: unknown key (a URL with credentials, not shown)\n" +
			"approvals.required: unknown action (a URL with credentials, not shown)\n" +
			"approvals.expiry: invalid duration (a URL with credentials, not shown)"},

		{"bad_approvals_unknown_key.yml", `approvals.timeout: unknown key`},
		{"bad_approvals_action.yml", "approvals.required.reboot: unknown action (valid: memory-purge, defrag-on, defrag-off, config-set, bgsave, restart, failover)\n" +
			"approvals.budget.purge: unknown action (valid: memory-purge, defrag-on, defrag-off, config-set, bgsave, restart, failover)"},
		{"bad_approvals_required.yml", "approvals.required.restart: must be between 1 and 5\n" +
			"approvals.required.failover: must be between 1 and 5"},
		{"bad_approvals_budget.yml", `approvals.budget.restart: must not be negative`},
		{"bad_approvals_values.yml", "approvals.expiry: must be between 1m and 24h\napprovals.defrag_max_ops: must be positive"},
		{"bad_approvals_types.yml", "approvals.expiry: invalid duration \"soon\"\n" +
			"approvals.required: expected a mapping, got a list\n" +
			"approvals.budget.restart: invalid integer \"three\"\n" +
			"approvals.budget.failover: invalid integer \"1.5\"\n" +
			"approvals.defrag_max_ops: invalid integer \"many\"\n" +
			"approvals.defrag.active-defrag-ignore-bytes: invalid size \"lots\"\n" +
			"approvals.defrag.active-defrag-cycle-min: expected an integer, got a boolean"},
		{"bad_approvals_defrag_unknown.yml", `approvals.defrag.active-defrag-speed: unknown key`},
		{"bad_approvals_defrag_range.yml", "approvals.defrag.active-defrag-ignore-bytes: must be positive\n" +
			"approvals.defrag.active-defrag-threshold-lower: must be between 0 and 1000\n" +
			"approvals.defrag.active-defrag-cycle-max: must be between 1 and 99"},
		{"bad_approvals_defrag_order.yml", "approvals.defrag.active-defrag-threshold-upper: must be greater than active-defrag-threshold-lower\n" +
			"approvals.defrag.active-defrag-cycle-min: must be at most active-defrag-cycle-max"},

		{"bad_remediation_unknown_key.yml", `instances[0].remediation.restart: unknown key (did you mean restart_command, restart_env, restart_method?)`},
		{"bad_remediation_types.yml", "instances[0].remediation: expected a mapping, got a boolean\n" +
			"instances[1].remediation.restart_command: expected a list, got a string\n" +
			"instances[2].remediation.restart_command[1]: expected a string, got an integer (quote it)\n" +
			`instances[2].remediation.persist_config: invalid boolean "often"`},
		{"bad_remediation_restart_method.yml", `instances[0].remediation.restart_method: "reboot" is not command, shutdown or empty`},
		{"bad_remediation_command_required.yml", `instances[0].remediation.restart_command: required when restart_method is command`},
		{"bad_remediation_command_only.yml", "instances[0].remediation.restart_command: only with restart_method command\n" +
			"instances[1].remediation.restart_command: only with restart_method command"},
		{"bad_remediation_command_argv0.yml", "instances[0].remediation.restart_command[0]: must be an absolute path or a command name without spaces\n" +
			"instances[1].remediation.restart_command[0]: must be an absolute path or a command name without spaces\n" +
			"instances[2].remediation.restart_command[0]: must be an absolute path or a command name without spaces\n" +
			"instances[3].remediation.restart_command[0]: must be an absolute path or a command name without spaces"},
		{"bad_remediation_command_empty.yml", "instances[0].remediation.restart_command[0]: must not be empty\n" +
			"instances[0].remediation.restart_command[2]: must not be empty"},
		{"bad_remediation_command_nul.yml", "instances[0].remediation.restart_command[0]: must not contain a NUL byte\n" +
			"instances[0].remediation.restart_command[1]: must not contain a NUL byte"},
		{"bad_remediation_failover.yml", "instances[0].remediation.failover_method: \"sentinel\" needs a sentinel section\n" +
			`instances[1].remediation.failover_method: "manual" is not failover, cluster-failover, sentinel or empty`},
		{"bad_http.yml", "http.listen: must be host:port, as in 127.0.0.1:9121 (empty turns the endpoint off)"},
		{"bad_remediation_failback.yml", "instances[0].remediation.failback: needs failover_method failover or cluster-failover and a restart_method (fail-back follows the restart of the old primary)"},
		{"bad_remediation_failover_group.yml", "instances[0].remediation.failover_method: \"failover\" does not work in cluster mode: use cluster-failover\n" +
			"instances[0].remediation.restart_method: \"command\" runs one fixed command, not one per node: use shutdown (a supervisor brings each node back)\n" +
			"instances[1].remediation.failover_method: \"cluster-failover\" needs cluster: true\n" +
			"instances[2].remediation.failover_method: \"failover\" would act behind Sentinel's back: use sentinel\n" +
			`instances[3].remediation.failover_method: "cluster" is not failover, cluster-failover, sentinel or empty`},
		{"bad_group.yml", "instances[0]: cluster and sentinel are exclusive\n" +
			"instances[1].addr: not with sentinel: the sentinels give the master's address\n" +
			"instances[1].sentinel.master: \"my master\" must not contain spaces or control characters\n" +
			"instances[1].sentinel.addrs[1]: missing port\n" +
			"instances[1].sentinel.addrs[2]: duplicate of instances[1].sentinel.addrs[0]\n" +
			"instances[2].sentinel.master: is required\n" +
			"instances[2].sentinel.addrs: at least one sentinel address is required\n" +
			"instances[3].addr: is required\n" +
			"instances[3].db: must be 0 with cluster: Redis Cluster has only database 0"},
		{"bad_group_seeds.yml", "instances[0].addr: not with seeds: list every seed under seeds, in the order to ask them\n" +
			"instances[1].seeds[1]: missing port\n" +
			"instances[1].seeds[2]: duplicate of instances[1].seeds[0]\n" +
			"instances[2].seeds: only with cluster: true (the nodes asked for a cluster's members)\n" +
			"instances[3].seeds: expected a list, got a string\n" +
			"instances[4].seeds: only with cluster: true (the nodes asked for a cluster's members)"},
		{"bad_group_types.yml", "instances[0].cluster: invalid boolean \"maybe\"\n" +
			"instances[1].sentinel: expected a mapping, got a boolean\n" +
			"instances[2].sentinel.master: expected a string, got an integer (quote it)\n" +
			"instances[2].sentinel.addrs: expected a list, got a string\n" +
			"instances[3].sentinel.addr: unknown key (did you mean addrs?)"},
		{"bad_remediation_password_exclusive.yml", `instances[0].remediation: password and password_env are exclusive`},
		{"bad_remediation_password_env.yml", `instances[0].remediation.password_env: CACHE1_ADMIN_PASSWORD is not set`},
		{"bad_remediation_password_env_name.yml", "instances[0].password_env: must be the name of an environment variable, not its value\n" +
			"instances[0].remediation.password_env: must be the name of an environment variable, not its value"},
		{"bad_remediation_password_file.yml", `instances[0].remediation.password_file: open /nonexistent/redisbot/cache1-admin: no such file or directory`},

		{"bad_schedule_unknown_key.yml", "schedule.interval: unknown key\nalerts.route: unknown key (did you mean routes?)"},
		{"bad_schedule_not_mapping.yml", "schedule: expected a mapping, got a string\nalerts: expected a mapping, got a list"},
		{"bad_schedule_types.yml", "schedule.sweep: expected a string, got an integer (quote it)\n" +
			"schedule.digest: expected a string, got a list\n" +
			"schedule.timezone: expected a string, got a boolean (quote it)\n" +
			"schedule.lease: invalid duration 30: add a unit, as in 2s or 500ms"},
		{"bad_schedule_sweep.yml", `schedule.sweep: invalid cron spec "every minute": expected exactly 5 fields, found 2: [every minute]`},
		{"bad_schedule_digest.yml", `schedule.digest: invalid cron spec "0 24 * * 1-5": end of range (24) above maximum (23): 24`},
		{"bad_schedule_cron_tz.yml", `schedule.digest: invalid cron spec "CRON_TZ=Europe/Paris 0 9 * * 1-5": set the time zone with schedule.timezone`},
		{"bad_schedule_cron_tz_nospace.yml", `schedule.sweep: invalid cron spec "TZ=UTC": set the time zone with schedule.timezone`},
		{"bad_schedule_every.yml", `schedule.sweep: invalid cron spec "@every 0s": the interval must be a whole number of seconds, at least 1s`},
		{"bad_schedule_every_fraction.yml", `schedule.sweep: invalid cron spec "@every 1500ms": the interval must be a whole number of seconds, at least 1s`},
		{"bad_schedule_never.yml", `schedule.digest: invalid cron spec "0 9 30 2 *": it never fires`},
		{"bad_schedule_timezone.yml", `schedule.timezone: unknown time zone "Mars/Olympus"`},
		{"bad_schedule_timezone_local.yml", `schedule.timezone: "Local" depends on the host: use an IANA name such as Europe/Paris`},
		{"bad_schedule_timezone_required.yml", `schedule.timezone: is required`},
		{"bad_schedule_lease.yml", `schedule.lease: must be between 3s and 10m`},
		{"bad_schedule_digest_channel.yml", `schedule.digest: needs alerts.channel, where digests are posted`},

		{"bad_alerts_channel.yml", `alerts.channel: "oncall" is not a channel id (C…, G… or D…)`},
		{"bad_alerts_route_channel_required.yml", `alerts.routes[0].channel: is required`},
		{"bad_alerts_route_channel.yml", `alerts.routes[0].channel: "#payments" is not a channel id (C…, G… or D…)`},
		{"bad_alerts_route_tags_required.yml", "alerts.routes[0].tags: at least one tag is required\n" +
			"alerts.routes[1].tags: at least one tag is required"},
		{"bad_alerts_route_tag_unknown.yml", `alerts.routes[1].tags[0]: no instance has tag "team-z"`},
		{"bad_alerts_route_tag_pattern.yml", `alerts.routes[0].tags[0]: "Payments" must match [a-z0-9._-]+`},
		{"bad_alerts_route_tag_routed.yml", "alerts.routes[1].tags[1]: duplicate of alerts.routes[1].tags[0]\n" +
			`alerts.routes[1].tags[2]: "payments" is already routed by alerts.routes[0] (the first match wins)`},
		{"bad_alerts_route_unknown_key.yml", "alerts.routes[0].tag: unknown key (did you mean tags?)\nalerts.routes[0].tags: at least one tag is required"},
		{"bad_alerts_routes_channel.yml", `alerts.channel: is required when routes are set (storm summaries go there)`},
		{"bad_alerts_oncall_group.yml", `alerts.oncall_group: "oncall" is not a user-group id (S…)`},
		{"bad_alerts_repeat_interval.yml", `alerts.repeat_interval: must be between 5m and 168h`},
		{"bad_alerts_storm_threshold.yml", `alerts.storm_threshold: must be greater than 0 and at most 1`},
		{"bad_alerts_group_threshold.yml", `alerts.group_threshold: must be between 0 and 1000 (0 or 1: never group)`},
		{"bad_alerts_types.yml", "alerts.channel: expected a string, got an integer (quote it)\n" +
			"alerts.routes[0].tags: expected a list, got a string\n" +
			"alerts.routes[1]: expected a mapping, got a string\n" +
			"alerts.oncall_group: expected a string, got a list\n" +
			"alerts.repeat_interval: invalid duration 4: add a unit, as in 2s or 500ms\n" +
			`alerts.storm_threshold: invalid number "half"`},

		// All problems at once, in file order.
		{"bad_many.yml", "access.channels[0].id: \"general\" is not a channel id (C…, G… or D…)\n" +
			"access.channels[0].tags[0]: no instance has tag \"team-z\"\n" +
			"access.viewers[0]: \"bob\" is not a user id (U…, W…) or user-group id (S…)\n" +
			"instances[0].name: \"Cache 1\" must match [a-z0-9._-]+\n" +
			"instances[0]: password and password_env are exclusive\n" +
			"instances[0].addr: missing port\n" +
			"instances[0].adress: unknown key\n" +
			"instances[1].password: expected a string, got a list\n" +
			"instances[1].memory_limit: invalid size \"6 gigs\"\n" +
			"instances[1].tls: cert_file and key_file must be set together\n" +
			"instances[1].remediation: password and password_file are exclusive\n" +
			"instances[1].remediation.restart_method: \"reboot\" is not command, shutdown or empty\n" +
			"instances[2].name: duplicate of instances[1]\n" +
			"instances[2]: password and password_file are exclusive\n" +
			"instances[2].addr: invalid port \"0\": must be 1-65535\n" +
			"instances[2].thresholds.frag_warning: must be positive\n" +
			"thresholds.frag_critical: must be greater than frag_warning\n" +
			"probe.timeout: must be positive\n" +
			"slack.app_token: must start with xapp-\n" +
			"slack.api_url: must end with /\n" +
			"slack.workers: must be positive\n" +
			"store.redis_url: must be a redis:// or rediss:// URL\n" +
			"store.retention: invalid duration \"two weeks\" (examples: 14d, 336h)\n" +
			"approvals.required.reboot: unknown action (valid: memory-purge, defrag-on, defrag-off, config-set, bgsave, restart, failover)\n" +
			"approvals.defrag.active-defrag-cycle-max: must be between 1 and 99\n" +
			"schedule.sweep: invalid cron spec \"every minute\": expected exactly 5 fields, found 2: [every minute]\n" +
			"schedule.timezone: unknown time zone \"Mars/Olympus\"\n" +
			"alerts.channel: is required when routes are set (storm summaries go there)\n" +
			"alerts.routes[0].tags[0]: no instance has tag \"team-z\"\n" +
			"alerts.storm_threshold: must be greater than 0 and at most 1"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := Load(t.Context(), filepath.Join("testdata", tc.file), env(nil))
			if err == nil {
				t.Fatalf("Load succeeded: %+v\nwant error:\n%s", cfg, tc.wantErr)
			}
			if cfg != nil {
				t.Errorf("Load returned a config along with an error")
			}
			if err.Error() != tc.wantErr {
				t.Errorf("Load error:\n%s\nwant:\n%s", err, tc.wantErr)
			}
			// Secrets in testdata are spelled SECRET-... (or secret-...).
			if strings.Contains(strings.ToLower(err.Error()), "secret-") {
				t.Errorf("Load error shows a secret from the file:\n%s", err)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	if _, err := Load(t.Context(), "", env(nil)); err == nil || err.Error() != "config: no file given" {
		t.Errorf(`Load("") error = %v, want "config: no file given"`, err)
	}
	_, err := Load(t.Context(), "testdata/does-not-exist.yml", env(nil))
	if want := "config: open testdata/does-not-exist.yml: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Load(missing) error = %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error does not wrap fs.ErrNotExist")
	}
	_, err = Load(t.Context(), "testdata/bad_password_file.yml", env(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing password_file error does not wrap fs.ErrNotExist: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	runbooks := t.TempDir()
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"REDISBOT_PROBE_TIMEOUT":                    "5s",
		"REDISBOT_PROBE_CONCURRENCY":                "32",
		"REDISBOT_PROBE_BLOCKED_AFTER":              "1s",
		"REDISBOT_PROBE_WORKERS_GROWTH":             "16",
		"REDISBOT_RUNBOOKS_DIR":                     runbooks,
		"REDISBOT_THRESHOLDS_FRAG_WARNING":          "1.7",
		"REDISBOT_THRESHOLDS_FRAG_MIN_USED_MEMORY":  "1gb",
		"REDISBOT_THRESHOLDS_FORK_SLOW_USEC":        "20000",
		"REDISBOT_INSTANCES_CACHE_1_PASSWORD":       "env-cache-1",
		"REDISBOT_INSTANCES_SESSIONS_EU_1_PASSWORD": "env-sessions", // SESSIONS_PASSWORD need not be set
		"REDISBOT_INSTANCES_QUEUE_1_PASSWORD":       "env-queue",
		"REDISBOT_INSTANCES_UNKNOWN_PASSWORD":       "ignored",
		"redisbot_probe_timeout":                    "1h", // names are exact
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := (Probe{Timeout: 5 * time.Second, Concurrency: 32, BlockedAfter: time.Second, WorkersGrowth: 16}); cfg.Probe != want {
		t.Errorf("Probe = %+v, want %+v", cfg.Probe, want)
	}
	if cfg.Runbooks.Dir != runbooks {
		t.Errorf("Runbooks.Dir = %q, want %q", cfg.Runbooks.Dir, runbooks)
	}
	if g := cfg.Thresholds; g.FragWarning != 1.7 || g.FragMinUsedMemory != 1<<30 || g.ForkSlowUsec != 20000 {
		t.Errorf("global thresholds = %+v", g)
	}
	for name, want := range map[string]struct {
		password    string
		fragWarning float64
	}{
		"cache-1":       {"env-cache-1", 1.8}, // its own threshold beats the global one
		"sessions.eu-1": {"env-sessions", 1.7},
		"queue-1":       {"env-queue", 1.7},
	} {
		in, _ := cfg.Instance(name)
		if in.Password != want.password || in.Thresholds.FragWarning != want.fragWarning {
			t.Errorf("%s: password %q, frag_warning %v; want %q, %v",
				name, in.Password, in.Thresholds.FragWarning, want.password, want.fragWarning)
		}
		if in.Thresholds.FragMinUsedMemory != 1<<30 {
			t.Errorf("%s: frag_min_used_memory = %d, want the global 1gb", name, in.Thresholds.FragMinUsedMemory)
		}
	}
}

func TestEnvOverrideErrors(t *testing.T) {
	_, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":                     "x",
		"REDISBOT_PROBE_TIMEOUT":                "soon",
		"REDISBOT_PROBE_CONCURRENCY":            "-1",
		"REDISBOT_THRESHOLDS_MAXMEMORY_WARNING": "0.95",
		"REDISBOT_THRESHOLDS_CLIENT_BUFFER_AVG": "a lot",
		"REDISBOT_RUNBOOKS_DIR":                 "relative/not-resolved",
	}))
	want := "probe.timeout: invalid duration \"soon\" (from REDISBOT_PROBE_TIMEOUT)\n" +
		"probe.concurrency: must be positive (from REDISBOT_PROBE_CONCURRENCY)\n" +
		"runbooks.dir: stat relative/not-resolved: no such file or directory (from REDISBOT_RUNBOOKS_DIR)\n" +
		"thresholds.maxmemory_critical: must be greater than maxmemory_warning\n" +
		"thresholds.client_buffer_avg: invalid size \"a lot\" (from REDISBOT_THRESHOLDS_CLIENT_BUFFER_AVG)\n" +
		// cache-1 sets maxmemory_critical: 0.9 itself, below the new global warning.
		"instances[0].thresholds.maxmemory_critical: must be greater than maxmemory_warning"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

// TestEnvDoesNotHideFileErrors: an override of probe.timeout must not paper
// over a probe section that is not a mapping.
func TestEnvDoesNotHideFileErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	doc := "probe: 5\nthresholds: [1]\ninstances: [{name: a, addr: 'x:1'}]\nslack: 5\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(t.Context(), path, env(map[string]string{
		"REDISBOT_PROBE_TIMEOUT":           "5s",
		"REDISBOT_THRESHOLDS_FRAG_WARNING": "1.6",
		"REDISBOT_SLACK_WORKERS":           "4",
		"SLACK_APP_TOKEN":                  "not-an-app-token",
	}))
	want := "probe: expected a mapping, got an integer\nthresholds: expected a mapping, got a list\n" +
		"slack: expected a mapping, got an integer"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

// TestSecretsNeverInErrors loads configs full of mistakes around a password
// and checks that the password never shows in the error.
func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-PW"
	getenv := env(map[string]string{
		"CACHE1_PASSWORD":                     secret,
		"REDISBOT_INSTANCES_CACHE_2_PASSWORD": secret,
	})
	_, err := Load(t.Context(), "testdata/bad_many.yml", getenv)
	if err == nil {
		t.Fatal("bad_many.yml loaded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error contains the password:\n%s", err)
	}

	for _, doc := range []string{
		"instances: [{name: a, addr: 'x:1', password: [" + secret + "]}]",
		"instances: [{name: a, addr: 'x:1', password: {" + secret + ": 1}}]",
		"instances: [{name: a, addr: 'x:1', password: " + secret + ", password_env: " + secret + "}]",
		"instances: [{name: a, addr: 'x:1', passwd: " + secret + "}]",
		"instances: [{name: a, addr: 'x:1', password: '" + secret + "', thresholds: 1}]\nprobe: 2",
		"instances:\n  - name: a\n    password: \"" + secret + "\n",
		"instances: [{name: a, addr: 'x:1', password: " + secret + "}, {name: a, addr: 'x:1', password: " + secret + "}]",
	} {
		checkNoSecret(t, secret, doc, getenv)
	}

	// Slack tokens, in and out of place.
	const token = "xoxb-SECRET-123"
	tokenEnv := env(map[string]string{"SLACK_APP_TOKEN": token, "REDISBOT_SLACK_QUEUE": token})
	for _, doc := range []string{
		"slack: {app_token: " + token + "}",
		"slack: {app_token: " + token + ", app_token_file: x}",
		"slack: {bot_token: [" + token + "]}",
		"slack: {bot_token: {" + token + ": 1}}",
		"slack: {" + token + ": 1}",
		"slack: " + token,
		"slack: {workers: " + token + ", usergroup_ttl: " + token + ", thread_replies: " + token + "}",
		"slack: {api_url: 'https://" + token + "@slack.com/api/'}",
		"slack: {api_url: 'http://slack.com/" + token + "'}",
		"slack: {api_url: 'https://slack.com/" + token + "?'}",
		"access: {viewers: [" + token + "], operators: [" + strings.ToUpper(token) + "], approvers: [' " + token + "']}",
		"access: {channels: [{id: " + token + ", tags: [" + token + ", " + strings.ToLower(token) + "]}]}",
		"access: {" + token + ": 1, channels: [{" + token + ": 1}]}",
		"instances: [{name: " + token + ", addr: 'x:1', tags: [" + token + "]}]\nprobe: {timeout: " + token + "}",
		"schedule: {sweep: " + token + ", digest: '0 9 * * " + token + "', timezone: " + token + ", lease: " + token + "}",
		"schedule: {sweep: '@every " + token + "', digest: 'TZ=" + token + " 0 9 * * *'}",
		"schedule: {" + token + ": 1}\nalerts: {" + token + ": 1}",
		"alerts: {channel: " + token + ", oncall_group: " + token + ", repeat_interval: " + token + ", storm_threshold: " + token + ", group_threshold: " + token + "}",
		"alerts: {channel: C0A, routes: [{tags: [" + token + "], channel: " + token + "}, {" + token + ": 1}]}",
	} {
		if !strings.Contains(doc, "instances:") {
			doc += "\ninstances: [{name: a, addr: 'x:1'}]"
		}
		checkNoSecret(t, token, doc, tokenEnv)
	}
}

// checkNoSecret loads doc, which must fail, and checks that the error does
// not show secret, in any case.
func checkNoSecret(t *testing.T, secret, doc string, getenv func(string) string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(t.Context(), path, getenv)
	if err == nil {
		t.Errorf("%q loaded", doc)
		return
	}
	if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(secret)) {
		t.Errorf("error for %q contains the secret:\n%s", doc, err)
	}
}

// TestSlackDefaults: absent or empty sections give the defaults and no
// access rules.
func TestSlackDefaults(t *testing.T) {
	for _, doc := range []string{"", "slack:\naccess:\n", "slack: {}\naccess: {}\n"} {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, []byte(doc+"instances: [{name: a, addr: 'x:1'}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(t.Context(), path, env(nil))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if cfg.Slack != defaultSlack() {
			t.Errorf("%q: Slack = %+v, want %+v", doc, cfg.Slack, defaultSlack())
		}
		if !reflect.DeepEqual(cfg.Access, Access{}) {
			t.Errorf("%q: Access = %+v, want none", doc, cfg.Access)
		}
	}
}

// TestProbeDefaults: an absent or empty probe section gives every
// default, the fleet's growth beside blocked probes included.
func TestProbeDefaults(t *testing.T) {
	for _, doc := range []string{"", "probe:\n", "probe: {}\n"} {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, []byte(doc+"instances: [{name: a, addr: 'x:1'}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(t.Context(), path, env(nil))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if cfg.Probe != defaultProbe() {
			t.Errorf("%q: Probe = %+v, want %+v", doc, cfg.Probe, defaultProbe())
		}
	}
	if DefaultProbeBlockedAfter != 200*time.Millisecond || DefaultProbeWorkersGrowth != 8 {
		t.Errorf("defaults changed: blocked_after %v, workers_growth %d; want 200ms and 8 as before the keys", DefaultProbeBlockedAfter, DefaultProbeWorkersGrowth)
	}
}

func TestSlackEnvOverrides(t *testing.T) {
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":                   "env-pw",
		"SLACK_APP_TOKEN":                     "xapp-env",
		"SLACK_BOT_TOKEN":                     "xoxb-env",
		"REDISBOT_SLACK_API_URL":              "https://slack-gov.com/api/",
		"REDISBOT_SLACK_WORKERS":              "32",
		"REDISBOT_SLACK_QUEUE":                "1024",
		"REDISBOT_SLACK_THREAD_REPLIES":       "true",
		"REDISBOT_SLACK_SHUTDOWN_TIMEOUT":     "1m",
		"REDISBOT_SLACK_USERGROUP_TTL":        "30s",
		"REDISBOT_SLACK_SLOW_WORKERS":         "8",
		"REDISBOT_SLACK_SLOW_QUEUE":           "16",
		"REDISBOT_SLACK_SLOW_AFTER":           "250ms",
		"REDISBOT_ACCESS_ALLOW_SELF_APPROVAL": "false", // access has no overrides
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Slack{
		AppToken:        "xapp-env",
		BotToken:        "xoxb-env",
		APIURL:          "https://slack-gov.com/api/",
		Workers:         32,
		Queue:           1024,
		ThreadReplies:   true,
		ShutdownTimeout: time.Minute,
		UsergroupTTL:    30 * time.Second,
		SlowWorkers:     8,
		SlowQueue:       16,
		SlowAfter:       250 * time.Millisecond,
	}
	if cfg.Slack != want {
		t.Errorf("Slack:\n got %+v\nwant %+v", cfg.Slack, want)
	}
	if !cfg.Access.AllowSelfApproval {
		t.Errorf("REDISBOT_ACCESS_ALLOW_SELF_APPROVAL changed access")
	}
}

// TestSlackTokenPrecedence: REDISBOT_SLACK_<TOKEN> > SLACK_<TOKEN> >
// REDISBOT_SLACK_<TOKEN>_FILE > the file's token or token file.
func TestSlackTokenPrecedence(t *testing.T) {
	botFile := filepath.Join("testdata", "slack-bot-token.txt") // xoxb-1-from-file
	for _, tc := range []struct {
		name          string
		env           map[string]string
		wantApp, want string // app and bot tokens
	}{
		{"file", nil, "xapp-1-A0GOOD-app", "xoxb-1-inline-bot"},
		{"slack names", map[string]string{
			"SLACK_APP_TOKEN": "xapp-slack",
			"SLACK_BOT_TOKEN": "xoxb-slack",
		}, "xapp-slack", "xoxb-slack"},
		{"redisbot names win", map[string]string{
			"REDISBOT_SLACK_APP_TOKEN": "xapp-redisbot",
			"SLACK_APP_TOKEN":          "xapp-slack",
			"REDISBOT_SLACK_BOT_TOKEN": "xoxb-redisbot",
			"SLACK_BOT_TOKEN":          "xoxb-slack",
		}, "xapp-redisbot", "xoxb-redisbot"},
		{"token file from env beats the file", map[string]string{
			"REDISBOT_SLACK_BOT_TOKEN_FILE": botFile,
		}, "xapp-1-A0GOOD-app", "xoxb-1-from-file"},
		{"token beats token file from env", map[string]string{
			"SLACK_BOT_TOKEN":               "xoxb-slack",
			"REDISBOT_SLACK_BOT_TOKEN_FILE": "/nonexistent/not-read",
		}, "xapp-1-A0GOOD-app", "xoxb-slack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"SESSIONS_PASSWORD": "env-pw"}
			for k, v := range tc.env {
				m[k] = v
			}
			cfg, err := Load(t.Context(), "testdata/good.yml", env(m))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Slack.AppToken != tc.wantApp || cfg.Slack.BotToken != tc.want {
				t.Errorf("tokens %q, %q; want %q, %q", cfg.Slack.AppToken, cfg.Slack.BotToken, tc.wantApp, tc.want)
			}
		})
	}

	// A token from the environment replaces a token file that is missing.
	cfg, err := Load(t.Context(), "testdata/bad_slack_token_file.yml", env(map[string]string{
		"SLACK_APP_TOKEN": "xapp-env",
		"SLACK_BOT_TOKEN": "xoxb-env",
	}))
	if err != nil {
		t.Fatalf("Load with tokens from the environment: %v", err)
	}
	if cfg.Slack.AppToken != "xapp-env" || cfg.Slack.BotToken != "xoxb-env" {
		t.Errorf("tokens %q, %q", cfg.Slack.AppToken, cfg.Slack.BotToken)
	}
}

func TestSlackEnvErrors(t *testing.T) {
	_, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":               "env-pw",
		"SLACK_APP_TOKEN":                 "xoxb-SECRET-123", // the bot token in the wrong place
		"REDISBOT_SLACK_BOT_TOKEN_FILE":   "/nonexistent/slack-bot-token",
		"REDISBOT_SLACK_API_URL":          "http://slack.com/api",
		"REDISBOT_SLACK_WORKERS":          "lots",
		"REDISBOT_SLACK_QUEUE":            "0",
		"REDISBOT_SLACK_THREAD_REPLIES":   "maybe",
		"REDISBOT_SLACK_SHUTDOWN_TIMEOUT": "-1s",
	}))
	// Keys that good.yml does not have sort where the slack section starts.
	want := "slack.app_token: must start with xapp- (from SLACK_APP_TOKEN)\n" +
		"slack.bot_token_file: open /nonexistent/slack-bot-token: no such file or directory (from REDISBOT_SLACK_BOT_TOKEN_FILE)\n" +
		"slack.api_url: must use https (http only for loopback) (from REDISBOT_SLACK_API_URL)\n" +
		"slack.workers: invalid integer \"lots\" (from REDISBOT_SLACK_WORKERS)\n" +
		"slack.queue: must be positive (from REDISBOT_SLACK_QUEUE)\n" +
		"slack.thread_replies: invalid boolean \"maybe\" (from REDISBOT_SLACK_THREAD_REPLIES)\n" +
		"slack.shutdown_timeout: must be positive (from REDISBOT_SLACK_SHUTDOWN_TIMEOUT)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Load error shows the token:\n%s", err)
	}
}

func TestRequireSlack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		app, bot string
		want     string
	}{
		{"none", "", "", "slack.app_token: required for serve (set SLACK_APP_TOKEN)\n" +
			"slack.bot_token: required for serve (set SLACK_BOT_TOKEN)"},
		{"no bot token", "xapp-1-A", "", "slack.bot_token: required for serve (set SLACK_BOT_TOKEN)"},
		{"swapped", "xoxb-SECRET-123", "xapp-SECRET-456", "slack.app_token: must start with xapp-\n" +
			"slack.bot_token: must start with xoxb-"},
		{"user token", "xapp-1-A", "xoxp-SECRET-789", "slack.bot_token: must start with xoxb-"},
		{"both", "xapp-1-A", "xoxb-1-B", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Slack: Slack{AppToken: tc.app, BotToken: tc.bot}}
			err := cfg.RequireSlack()
			if tc.want == "" {
				if err != nil {
					t.Errorf("RequireSlack: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("RequireSlack error:\n%v\nwant:\n%s", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("RequireSlack error shows a token: %s", err)
			}
		})
	}

	// Load itself does not require the tokens: the CLI verbs do without.
	cfg, err := Load(t.Context(), "testdata/bad_slack_api_url_empty.yml", env(map[string]string{"REDISBOT_SLACK_API_URL": DefaultSlackAPIURL}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := cfg.RequireSlack(); err == nil {
		t.Errorf("RequireSlack accepted a config without tokens")
	}
}

func TestSecrets(t *testing.T) {
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{"SESSIONS_PASSWORD": "env-pw"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		"inline-pw", "inline-admin-pw", "env-pw", "remediation-file-secret", "file-secret",
		"xapp-1-A0GOOD-app", "xoxb-1-inline-bot",
		"url/pw", "url%2Fpw", // the URL's password, decoded and as written
	}
	if got := cfg.Secrets(); !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}

	cfg = &Config{
		Instances: []handlers.Instance{
			{Name: "a"},
			{Name: "b", Password: "pw"},
			{Name: "c", Password: "pw", Remediation: handlers.Remediation{Password: "admin-pw"}},
		},
		Slack: Slack{BotToken: "xoxb-1"},
		Store: Store{RedisURL: "redis://state:6379/0"}, // no password: nothing to hide
	}
	if got, want := cfg.Secrets(), []string{"pw", "admin-pw", "xoxb-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q, want %q (no empty values, each once)", got, want)
	}
	if got := (&Config{}).Secrets(); len(got) != 0 {
		t.Errorf("Secrets() of an empty config = %q", got)
	}
}

func TestCheckAPIURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://slack.com/api/":          "",
		"https://slack-gov.com/api/":      "",
		"HTTPS://slack.com/api/":          "",
		"https://slack.example.com:8443/": "",
		"http://127.0.0.1:8080/api/":      "",
		"http://localhost:8080/":          "",
		"http://[::1]:8080/api/":          "",
		"http://127.0.0.2/":               "",

		"":                              "is required",
		"slack.com/api/":                "must be an absolute http(s) URL",
		"/api/":                         "must be an absolute http(s) URL",
		"ftp://slack.com/api/":          "must be an absolute http(s) URL",
		"https:slack.com/api/":          "must be an absolute http(s) URL",
		"https:///api/":                 "must be an absolute http(s) URL",
		"https://:443/api/":             "must be an absolute http(s) URL",
		"https://slack .com/api/":       "must be an absolute http(s) URL",
		"https://xoxb-1@slack.com/api/": "must not contain a user or password",
		"https://slack.com/api/?x=1":    "must not have a query or fragment",
		"https://slack.com/api/?":       "must not have a query or fragment",
		"https://slack.com/api/#":       "must not have a query or fragment",
		"http://slack.com/api/":         "must use https (http only for loopback)",
		"http://10.0.0.1/api/":          "must use https (http only for loopback)",
		"http://localhost.example.com/": "must use https (http only for loopback)",
		"https://slack.com/api":         "must end with /",
		"https://slack.com":             "must end with /",
	} {
		if got := checkAPIURL(in); got != want {
			t.Errorf("checkAPIURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := Load(t.Context(), "../../../config.example.yaml", env(nil))
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if cfg.Thresholds != handlers.DefaultThresholds() {
		t.Errorf("the example's thresholds should document the defaults:\n got %+v\nwant %+v",
			cfg.Thresholds, handlers.DefaultThresholds())
	}
	if cfg.Probe != defaultProbe() {
		t.Errorf("the example's probe section should document the defaults: %+v", cfg.Probe)
	}
	in, ok := cfg.Instance("cache-1")
	if !ok || in.Addr != "127.0.0.1:6379" || !in.HasTag("cache") || in.MemoryLimit != 6<<30 {
		t.Errorf("cache-1 = %+v, %v", in, ok)
	}
	if len(cfg.Instances) < 2 {
		t.Errorf("the example defines %d instances, want at least 2", len(cfg.Instances))
	}
	if cfg.Slack != defaultSlack() {
		t.Errorf("the example's slack section should document the defaults, without tokens:\n got %+v\nwant %+v",
			cfg.Slack, defaultSlack())
	}
	a := cfg.Access
	if len(a.Channels) != 1 || len(a.Channels[0].Tags) == 0 {
		t.Errorf("the example should show one channel with tags: %+v", a.Channels)
	}
	if len(a.Viewers)+len(a.Operators)+len(a.Approvers) != 0 || a.AllowSelfApproval {
		t.Errorf("the example should leave the roles empty and self-approval off: %+v", a)
	}
	if err := cfg.RequireSlack(); err == nil {
		t.Errorf("the example's empty tokens satisfy RequireSlack")
	}
	wantStore := Store{
		Path:           filepath.Join("..", "..", "..", DefaultStorePath),
		Retention:      DefaultRetention,
		AuditRetention: DefaultAuditRetention,
	}
	if cfg.Store != wantStore {
		t.Errorf("the example's store section should document the defaults:\n got %+v\nwant %+v", cfg.Store, wantStore)
	}
	if !reflect.DeepEqual(cfg.Approvals, DefaultApprovals()) {
		t.Errorf("the example's approvals section should document the defaults:\n got %+v\nwant %+v",
			cfg.Approvals, DefaultApprovals())
	}
	if r := in.Remediation; r.RestartMethod != "shutdown" || r.Password != "" || r.FailoverMethod != "" {
		t.Errorf("cache-1 should show a remediation section that restarts by shutdown, without a password: %+v", r)
	}
	if !reflect.DeepEqual(cfg.Schedule, defaultSchedule()) {
		t.Errorf("the example's schedule section should document the defaults:\n got %+v\nwant %+v",
			cfg.Schedule, defaultSchedule())
	}
	if !reflect.DeepEqual(cfg.Alerts, defaultAlerts()) {
		t.Errorf("the example's alerts section should document the defaults, posting nothing:\n got %+v\nwant %+v",
			cfg.Alerts, defaultAlerts())
	}
}

// defaultSlack is the slack section with every default and no tokens.
func defaultSlack() Slack {
	return Slack{
		APIURL:          DefaultSlackAPIURL,
		Workers:         DefaultSlackWorkers,
		Queue:           DefaultSlackQueue,
		ThreadReplies:   true,
		ShutdownTimeout: DefaultSlackShutdownTimeout,
		UsergroupTTL:    DefaultSlackUsergroupTTL,
		SlowWorkers:     DefaultSlackSlowWorkers,
		SlowQueue:       DefaultSlackSlowQueue,
		SlowAfter:       DefaultSlackSlowAfter,
	}
}

// defaultProbe is the probe section with every default.
func defaultProbe() Probe {
	return Probe{Timeout: DefaultProbeTimeout, Concurrency: DefaultProbeConcurrency,
		BlockedAfter: DefaultProbeBlockedAfter, WorkersGrowth: DefaultProbeWorkersGrowth}
}

// TestExampleDocumentsEveryKey keeps config.example.yaml in step with the
// keys the loader accepts.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	keys := thresholdKeys()
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		keys = append(keys, tags(t)...)
		for f := range t.Fields() {
			switch ft := f.Type; ft.Kind() {
			case reflect.Pointer, reflect.Slice:
				ft = ft.Elem()
				fallthrough
			default:
				if ft.Kind() == reflect.Struct && ft.PkgPath() == reflect.TypeFor[file]().PkgPath() {
					walk(ft)
				}
			}
		}
	}
	walk(reflect.TypeFor[file]())
	for _, p := range defragParams {
		keys = append(keys, p.name)
	}
	for _, k := range keys {
		if !strings.Contains(text, k+":") {
			t.Errorf("config.example.yaml does not document %s", k)
		}
	}
	// The keys of approvals.required and approvals.budget.
	for _, a := range actions {
		if !strings.Contains(text, " "+string(a)) {
			t.Errorf("config.example.yaml does not name action %s", a)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"100000", 100000},
		{"0", 0},
		{"1b", 1},
		{"1k", 1000},
		{"1kb", 1024},
		{"1KiB", 1024},
		{"1m", 1000000},
		{"1mb", 1048576}, // as in redis.conf
		{"50MB", 50 << 20},
		{"50MiB", 50 << 20},
		{"6GiB", 6 << 30},
		{"6gb", 6 << 30},
		{"2g", 2000000000},
		{"1tb", 1 << 40},
		{"512 MB", 512 << 20},
		{" 7mb ", 7 << 20},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "mb", "6 gigs", "-1", "1.5GB", "1e9", "0x10", "1 2", "9223372036854775808", "8388608tb"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		} else if want := `invalid size "` + in + `"`; err.Error() != want {
			t.Errorf("parseSize(%q) error = %q, want %q", in, err, want)
		}
	}
}

func TestPasswordEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"cache-1":       "REDISBOT_INSTANCES_CACHE_1_PASSWORD",
		"sessions.eu-1": "REDISBOT_INSTANCES_SESSIONS_EU_1_PASSWORD",
		"q_2":           "REDISBOT_INSTANCES_Q_2_PASSWORD",
	} {
		if got := passwordEnvName(name); got != want {
			t.Errorf("passwordEnvName(%q) = %q, want %q", name, got, want)
		}
	}
	if got, want := remediationPasswordEnvName("sessions.eu-1"), "REDISBOT_INSTANCES_SESSIONS_EU_1_REMEDIATION_PASSWORD"; got != want {
		t.Errorf("remediationPasswordEnvName = %q, want %q", got, want)
	}
}

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yml")
	seeds = append(seeds, "../../../config.example.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(t.Context(), path, env(nil))
		if err != nil {
			if cfg != nil {
				t.Fatalf("Load returned a config and an error: %v", err)
			}
			return
		}
		if len(cfg.Instances) == 0 {
			t.Fatal("Load succeeded without instances")
		}
		seen := map[string]bool{}
		for _, in := range cfg.Instances {
			if !namePattern.MatchString(in.Name) || seen[in.Name] {
				t.Errorf("Load accepted instance name %q", in.Name)
			}
			seen[in.Name] = true
			checkGroupInvariants(t, in)
		}
		if cfg.Probe.Timeout <= 0 || cfg.Probe.Concurrency <= 0 {
			t.Errorf("Load accepted probe %+v", cfg.Probe)
		}
		s := cfg.Slack
		if s.Workers <= 0 || s.Queue <= 0 || s.ShutdownTimeout <= 0 || s.UsergroupTTL <= 0 {
			t.Errorf("Load accepted slack %+v", s)
		}
		if msg := checkAPIURL(s.APIURL); msg != "" {
			t.Errorf("Load accepted api_url %q: %s", s.APIURL, msg)
		}
		if s.AppToken != "" && !strings.HasPrefix(s.AppToken, "xapp-") || s.BotToken != "" && !strings.HasPrefix(s.BotToken, "xoxb-") {
			t.Errorf("Load accepted a token with the wrong prefix")
		}
		tags := map[string]bool{}
		for _, in := range cfg.Instances {
			for _, tag := range in.Tags {
				tags[tag] = true
			}
			for _, tag := range topology.GeneratedTags(in) {
				tags[tag] = true
			}
		}
		channels := map[string]bool{}
		for _, ch := range cfg.Access.Channels {
			if !channelIDPattern.MatchString(ch.ID) || channels[ch.ID] {
				t.Errorf("Load accepted channel id %q", ch.ID)
			}
			channels[ch.ID] = true
			for _, tag := range ch.Tags {
				if !tags[tag] {
					t.Errorf("Load accepted channel tag %q that no instance has", tag)
				}
			}
		}
		for _, ids := range [][]string{cfg.Access.Viewers, cfg.Access.Operators, cfg.Access.Approvers} {
			for _, id := range ids {
				if !userIDPattern.MatchString(id) && !groupIDPattern.MatchString(id) {
					t.Errorf("Load accepted user id %q", id)
				}
			}
		}
		checkStoreInvariants(t, cfg.Store)
		checkScheduleInvariants(t, cfg.Schedule, cfg.Alerts)
		checkAlertsInvariants(t, cfg.Alerts, tags)
		checkApprovalsInvariants(t, cfg.Approvals)
		for _, in := range cfg.Instances {
			checkRemediationInvariants(t, in)
		}
	})
}

func checkScheduleInvariants(t *testing.T, s Schedule, a Alerts) {
	t.Helper()
	for _, spec := range []string{s.Sweep, s.Digest} {
		if spec != "" && checkCron(spec) != "" {
			t.Errorf("Load accepted cron spec %q: %s", spec, checkCron(spec))
		}
	}
	if s.Location == nil || s.Location == time.Local {
		t.Errorf("Load accepted time zone %v", s.Location)
	}
	if s.Lease < 3*time.Second || s.Lease > 10*time.Minute {
		t.Errorf("Load accepted lease %v", s.Lease)
	}
	if s.Digest != "" && a.Channel == "" {
		t.Errorf("Load accepted digest %q without alerts.channel", s.Digest)
	}
}

func checkAlertsInvariants(t *testing.T, a Alerts, instanceTags map[string]bool) {
	t.Helper()
	if a.Channel != "" && !channelIDPattern.MatchString(a.Channel) {
		t.Errorf("Load accepted alerts.channel %q", a.Channel)
	}
	if len(a.Routes) > 0 && a.Channel == "" {
		t.Errorf("Load accepted routes without alerts.channel")
	}
	routed := map[string]bool{}
	for _, r := range a.Routes {
		if !channelIDPattern.MatchString(r.Channel) || len(r.Tags) == 0 {
			t.Errorf("Load accepted route %+v", r)
		}
		for _, tag := range r.Tags {
			if !instanceTags[tag] || routed[tag] {
				t.Errorf("Load accepted route tag %q (on no instance, or in an earlier route)", tag)
			}
			routed[tag] = true
			// Each tag reaches its own route: none is shadowed.
			if got := a.ChannelFor([]string{tag}); got != r.Channel {
				t.Errorf("ChannelFor([%q]) = %q, want its route's %q", tag, got, r.Channel)
			}
		}
	}
	if got := a.ChannelFor(nil); got != a.Channel {
		t.Errorf("ChannelFor(nil) = %q, want alerts.channel %q", got, a.Channel)
	}
	if a.OnCallGroup != "" && !groupIDPattern.MatchString(a.OnCallGroup) {
		t.Errorf("Load accepted oncall_group %q", a.OnCallGroup)
	}
	if a.RepeatInterval < 5*time.Minute || a.RepeatInterval > 7*24*time.Hour {
		t.Errorf("Load accepted repeat_interval %v", a.RepeatInterval)
	}
	if !(a.StormThreshold > 0 && a.StormThreshold <= 1) {
		t.Errorf("Load accepted storm_threshold %v", a.StormThreshold)
	}
	if a.GroupThreshold < 0 || a.GroupThreshold > 1000 {
		t.Errorf("Load accepted group_threshold %v", a.GroupThreshold)
	}
}

func checkStoreInvariants(t *testing.T, st Store) {
	t.Helper()
	if st.RedisURL == "" && st.Path == "" {
		t.Errorf("Load accepted a store without path or redis_url")
	}
	if st.RedisURL != "" && checkRedisURL(st.RedisURL) != "" {
		t.Errorf("Load accepted redis_url: %s", checkRedisURL(st.RedisURL))
	}
	if st.Retention < time.Hour || st.AuditRetention < time.Hour {
		t.Errorf("Load accepted retention %v, audit %v", st.Retention, st.AuditRetention)
	}
	for _, pw := range urlPasswords(st.RedisURL) {
		if strings.Contains(st.String(), pw) {
			t.Errorf("Store.String() shows the URL's password")
		}
	}
}

func checkApprovalsInvariants(t *testing.T, a Approvals) {
	t.Helper()
	if a.Expiry < time.Minute || a.Expiry > 24*time.Hour || a.DefragMaxOps <= 0 {
		t.Errorf("Load accepted expiry %v, defrag_max_ops %d", a.Expiry, a.DefragMaxOps)
	}
	if len(a.Required) != len(actions) || len(a.Budget) != len(actions) {
		t.Errorf("Load gave required %v, budget %v; want every action once", a.Required, a.Budget)
	}
	for _, act := range actions {
		if n, ok := a.Required[act]; !ok || n < 1 || n > 5 {
			t.Errorf("Load accepted required %s: %d", act, n)
		}
		if n, ok := a.Budget[act]; !ok || n < 0 {
			t.Errorf("Load accepted budget %s: %d", act, n)
		}
	}
	if len(a.DefragParams) != len(defragParams) {
		t.Fatalf("Load gave %d defrag params", len(a.DefragParams))
	}
	values := map[string]int64{}
	for i, p := range defragParams {
		kv := a.DefragParams[i]
		if kv[0] != p.name {
			t.Errorf("defrag param %d is %q, want %q", i, kv[0], p.name)
		}
		n, err := parseDefragValue(p, kv[1])
		if err != nil || n < p.min || n > p.max {
			t.Errorf("Load accepted %s %q", kv[0], kv[1])
		}
		values[p.name] = n
	}
	if values["active-defrag-threshold-lower"] >= values["active-defrag-threshold-upper"] ||
		values["active-defrag-cycle-min"] > values["active-defrag-cycle-max"] {
		t.Errorf("Load accepted defrag params out of order: %v", a.DefragParams)
	}
}

func checkRemediationInvariants(t *testing.T, in handlers.Instance) {
	t.Helper()
	r := in.Remediation
	switch r.RestartMethod {
	case "command":
		if len(r.RestartCommand) == 0 {
			t.Errorf("%s: Load accepted restart_method command without a command", in.Name)
		}
	case "shutdown", "":
		if len(r.RestartCommand) != 0 {
			t.Errorf("%s: Load accepted a restart_command with restart_method %q", in.Name, r.RestartMethod)
		}
	default:
		t.Errorf("%s: Load accepted restart_method %q", in.Name, r.RestartMethod)
	}
	for i, arg := range r.RestartCommand {
		if arg == "" || strings.ContainsRune(arg, 0) || i == 0 && checkArg(0, arg) != "" {
			t.Errorf("%s: Load accepted restart_command[%d] %q", in.Name, i, arg)
		}
	}
	switch r.FailoverMethod {
	case "":
	case "failover":
		if in.Cluster || in.Sentinel != nil {
			t.Errorf("%s: Load accepted failover_method failover on a cluster or sentinel entry", in.Name)
		}
	case "cluster-failover":
		if !in.Cluster {
			t.Errorf("%s: Load accepted failover_method cluster-failover without cluster", in.Name)
		}
	case "sentinel":
		if in.Sentinel == nil {
			t.Errorf("%s: Load accepted failover_method sentinel without a sentinel section", in.Name)
		}
	default:
		t.Errorf("%s: Load accepted failover_method %q", in.Name, r.FailoverMethod)
	}
	if r.RestartMethod == "command" && (in.Cluster || in.Sentinel != nil) {
		t.Errorf("%s: Load accepted restart_method command on a cluster or sentinel entry", in.Name)
	}
}
