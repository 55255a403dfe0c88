package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// TestDefaultApprovalsMatchRemedy: without an approvals section, defrag-on
// behaves as remedy's own default policy.
func TestDefaultApprovalsMatchRemedy(t *testing.T) {
	a, pol := DefaultApprovals(), remedy.DefaultPolicy()
	if a.DefragMaxOps != pol.DefragMaxOps || !reflect.DeepEqual(a.DefragParams, pol.DefragParams) {
		t.Errorf("DefaultApprovals() defrag = %d %v, remedy.DefaultPolicy() = %d %v",
			a.DefragMaxOps, a.DefragParams, pol.DefragMaxOps, pol.DefragParams)
	}
	// Each call returns maps of its own.
	a.Required[handlers.ActionRestart] = 5
	if DefaultApprovals().Required[handlers.ActionRestart] != 1 {
		t.Errorf("DefaultApprovals() shares its maps")
	}
}

// TestActionsCoverCatalogue: every action a finding can offer can be given
// a required count and a budget.
func TestActionsCoverCatalogue(t *testing.T) {
	for _, spec := range handlers.Catalogue {
		for _, a := range spec.Actions {
			if !slices.Contains(actions, a) {
				t.Errorf("finding %s offers action %s, which approvals does not know", spec.ID, a)
			}
		}
	}
}

func TestApprovalsEnvOverrides(t *testing.T) {
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":                 "env-pw",
		"REDISBOT_APPROVALS_EXPIRY":         "5m",
		"REDISBOT_APPROVALS_DEFRAG_MAX_OPS": "1000",
		"REDISBOT_APPROVALS_REQUIRED":       "3", // maps have no overrides
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if a := cfg.Approvals; a.Expiry != 5*time.Minute || a.DefragMaxOps != 1000 || a.Required[handlers.ActionRestart] != 2 {
		t.Errorf("Approvals = %+v", a)
	}

	_, err = Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":                 "env-pw",
		"REDISBOT_APPROVALS_EXPIRY":         "30s",
		"REDISBOT_APPROVALS_DEFRAG_MAX_OPS": "lots",
	}))
	want := "approvals.expiry: must be between 1m and 24h (from REDISBOT_APPROVALS_EXPIRY)\n" +
		"approvals.defrag_max_ops: invalid integer \"lots\" (from REDISBOT_APPROVALS_DEFRAG_MAX_OPS)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

// TestApprovalsMerge: what the file leaves out keeps its default.
func TestApprovalsMerge(t *testing.T) {
	doc := "approvals:\n  required: {defrag-on: 3}\n  budget: {restart: 0}\n" +
		"  defrag: {active-defrag-ignore-bytes: 1000000, active-defrag-cycle-min: 5}\n" + oneInstance
	cfg, err := Load(t.Context(), writeConfig(t, doc), env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := DefaultApprovals()
	want.Required[handlers.ActionDefragOn] = 3
	want.Budget[handlers.ActionRestart] = 0 // unlimited; failover keeps its 3
	want.DefragParams[0][1] = "1000000"     // not a whole number of kb
	want.DefragParams[3][1] = "5"
	if !reflect.DeepEqual(cfg.Approvals, want) {
		t.Errorf("Approvals:\n got %+v\nwant %+v", cfg.Approvals, want)
	}
}

func TestRedisSize(t *testing.T) {
	for n, want := range map[int64]string{
		1:         "1",
		1000:      "1000",
		1024:      "1kb",
		1536:      "1536",
		100 << 20: "100mb",
		3 << 30:   "3gb",
		1 << 40:   "1024gb",
		1000000:   "1000000",
	} {
		if got := redisSize(n); got != want {
			t.Errorf("redisSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCheckArg(t *testing.T) {
	for _, tc := range []struct {
		i    int
		arg  string
		want string
	}{
		{0, "systemctl", ""},
		{0, "/usr/bin/systemctl", ""},
		{0, "redis-restart.sh", ""},
		{1, "restart", ""},
		{2, "redis@cache-1", ""},
		{1, "a b", ""}, // an argument may hold spaces
		{1, "./relative", ""},
		{0, "", "must not be empty"},
		{3, "", "must not be empty"},
		{0, "a\x00b", "must not contain a NUL byte"},
		{1, "\x00", "must not contain a NUL byte"},
		{0, "systemctl restart redis", "must be an absolute path or a command name without spaces"},
		{0, "/usr/bin/systemctl restart", "must be an absolute path or a command name without spaces"},
		{0, "systemctl\trestart", "must be an absolute path or a command name without spaces"},
		{0, "./restart.sh", "must be an absolute path or a command name without spaces"},
		{0, "bin/restart", "must be an absolute path or a command name without spaces"},
		{0, ".", "must be an absolute path or a command name without spaces"},
		{0, "..", "must be an absolute path or a command name without spaces"},
	} {
		if got := checkArg(tc.i, tc.arg); got != tc.want {
			t.Errorf("checkArg(%d, %q) = %q, want %q", tc.i, tc.arg, got, tc.want)
		}
	}
}

// TestRemediationPassword: REDISBOT_INSTANCES_<NAME>_REMEDIATION_PASSWORD
// replaces the section's password, password_env or password_file, and
// leaves the instance's own password alone.
func TestRemediationPassword(t *testing.T) {
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD": "env-pw",
		"REDISBOT_INSTANCES_CACHE_1_REMEDIATION_PASSWORD":       "env-admin-1",
		"REDISBOT_INSTANCES_SESSIONS_EU_1_REMEDIATION_PASSWORD": "env-admin-2",
		"REDISBOT_INSTANCES_QUEUE_1_REMEDIATION_PASSWORD":       "env-admin-3", // no password in the file
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for name, want := range map[string][2]string{
		"cache-1":       {"inline-pw", "env-admin-1"},
		"sessions.eu-1": {"env-pw", "env-admin-2"},
		"queue-1":       {"file-secret", "env-admin-3"},
	} {
		in, _ := cfg.Instance(name)
		if in.Password != want[0] || in.Remediation.Password != want[1] {
			t.Errorf("%s: passwords %q, %q; want %q, %q", name, in.Password, in.Remediation.Password, want[0], want[1])
		}
	}
	for _, pw := range []string{"env-admin-1", "env-admin-2", "env-admin-3"} {
		if !slices.Contains(cfg.Secrets(), pw) {
			t.Errorf("Secrets() lacks %q", pw)
		}
	}

	// From the variable password_env names, and from a file missing but
	// overridden.
	path := writeConfig(t, "instances:\n  - name: cache-1\n    addr: '127.0.0.1:6379'\n"+
		"    remediation: {password_env: CACHE1_ADMIN}\n"+
		"  - name: cache-2\n    addr: '127.0.0.1:6380'\n"+
		"    remediation: {password_file: /nonexistent/admin}\n")
	cfg, err = Load(t.Context(), path, env(map[string]string{
		"CACHE1_ADMIN": "admin-1",
		"REDISBOT_INSTANCES_CACHE_2_REMEDIATION_PASSWORD": "admin-2",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := []string{cfg.Instances[0].Remediation.Password, cfg.Instances[1].Remediation.Password}; !reflect.DeepEqual(got, []string{"admin-1", "admin-2"}) {
		t.Errorf("remediation passwords %q", got)
	}
}

// TestRemediationSecretsNeverInErrors: remediation passwords and a store URL
// with a password, in and out of place, never show in errors.
func TestRemediationSecretsNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-ADMIN"
	getenv := env(map[string]string{
		"CACHE1_ADMIN": secret,
		"REDISBOT_INSTANCES_CACHE_1_REMEDIATION_PASSWORD": secret,
	})
	inst := func(remediation string) string {
		return "instances: [{name: cache-1, addr: 'x:1', remediation: " + remediation + "}]"
	}
	for _, doc := range []string{
		inst("{password: " + secret + ", password_env: CACHE1_ADMIN}"),
		inst("{password: [" + secret + "]}"),
		inst("{password: {" + secret + ": 1}}"),
		inst("{passwd: " + secret + "}"),
		inst("{password_env: CACHE1_ADMIN, restart_method: reboot}"),
		inst("{password: " + secret + ", restart_command: [" + secret + "], restart_method: shutdown}"),
		inst("{password: " + secret + ", restart_method: command}"),
		inst("{password: " + secret + ", failover_method: sentinel}"),
		inst("{password: " + secret + ", persist_config: maybe}"),
		"instances: [{name: cache-1, addr: 'x:1', password: " + secret + ", remediation: " + secret + "}]",
	} {
		checkNoSecret(t, secret, doc, getenv)
	}
	// The password where the name of its variable belongs.
	for _, doc := range []string{
		inst("{password_env: '" + secret + " '}"),
		inst("{password_env: '$" + secret + "'}"),
		"instances: [{name: cache-1, addr: 'x:1', password_env: '" + secret + "!'}]",
	} {
		checkNoSecret(t, secret, doc, env(nil))
	}

	const pw = "SECRET-url-pw"
	for _, u := range []string{
		"https://bot:" + pw + "@state:6379",
		"redis://bot:" + pw + "@:6379",
		"redis://bot:" + pw + "@state:70000",
		"redis://bot:" + pw + "@state:6379/x",
		"redis://bot:" + pw + "@state:6379/0?pool_size=" + pw,
		"redis://bot:" + pw + "@state:6379/0?" + pw + "=1",
		"redis://bot:pw#" + pw + "@state:6379",
		"redis://bot:1/" + pw + "@state:6379",
		"redis://bot:a?" + pw + "@state:6379",
		"redis://bot:a b" + pw + "@state:6379",
	} {
		urlEnv := env(map[string]string{"REDISBOT_STORE_REDIS_URL": u, "STATE_URL": u})
		for _, doc := range []string{
			"store: {redis_url: '" + u + "'}",
			"store: {redis_url: '" + u + "', redis_url_env: STATE_URL}",
			"store: {redis_url_env: '" + u + "'}",
			"store: {redis_url_env: STATE_URL}",
			"store: {path: ''}", // REDISBOT_STORE_REDIS_URL
			"store: {redis_url: ['" + u + "']}",
			"store: {'" + u + "': 1}",
			"store: '" + u + "'",
			"store: {retention: '" + u + "', audit_retention: '" + u + "'}",
			"approvals: {expiry: '" + u + "', required: {'" + u + "': 1}, defrag: {active-defrag-ignore-bytes: '" + u + "'}}",
			inst("{restart_method: '" + u + "', failover_method: '" + u + "'}"),
			inst("{restart_method: command, restart_command: ['" + u + "']}"),
		} {
			if !strings.Contains(doc, "instances:") {
				doc += "\n" + oneInstance
			}
			checkNoSecret(t, pw, doc, urlEnv)
		}
	}
}
