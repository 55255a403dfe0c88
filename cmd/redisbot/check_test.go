package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/keyspace"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// jsonCheck mirrors check-config's JSON contract.
type jsonCheck struct {
	Config string `json:"config"`
	Slack  struct {
		Status    string `json:"status"`
		BotToken  string `json:"bot_token"`
		AppToken  string `json:"app_token"`
		Team      string `json:"team"`
		BotUserID string `json:"bot_user_id"`
	} `json:"slack"`
	Store struct {
		Backend  string `json:"backend"`
		Location string `json:"location"`
		Status   string `json:"status"`
		Detail   string `json:"detail"`
	} `json:"store"`
	Instances []struct {
		Name        string         `json:"name"`
		Status      string         `json:"status"`
		ACL         string         `json:"acl"`
		KeyScan     *jsonPermCheck `json:"key_scan"`
		Remediation *jsonPermCheck `json:"remediation"`
	} `json:"instances"`
}

type jsonPermCheck struct {
	User       string   `json:"user"`
	Status     string   `json:"status"`
	Missing    []string `json:"missing"`
	NotChecked []string `json:"not_checked"`
	Error      string   `json:"error"`
}

func checkJSON(t *testing.T, env map[string]string, cfg string) (jsonCheck, result) {
	t.Helper()
	res := runCLI(t, env, "check-config", "--config", cfg, "--json")
	var c jsonCheck
	if err := json.Unmarshal([]byte(res.stdout), &c); err != nil {
		t.Fatalf("bad JSON (%v)\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	return c, res
}

// docACL reads the users of docs/redis-acl.md: the diagnosis rules, its
// key-scan addition and the remediation rules, without reset, on and the
// password, which setUser adds.
func docACL(t *testing.T) (diag, keys, admin []any) {
	strip := func(rules []string) []any {
		var out []any
		for _, r := range rules {
			if r != "reset" && r != "on" && !strings.HasPrefix(r, ">") {
				out = append(out, r)
			}
		}
		return slices.Clip(out)
	}
	const doc = "../../docs/redis-acl.md"
	ro := redistest.ACLRules(t, doc, "redisbot", "x")
	if len(ro) != 2 {
		t.Fatalf("%s: %d ACL SETUSER redisbot lines, want the diagnosis line and the key-scan line", doc, len(ro))
	}
	return strip(ro[0]), strip(ro[1]), strip(redistest.ACLRules(t, doc, "redisbot-admin", "x")[0])
}

func setUser(t *testing.T, c *redis.Client, name, password string, rules ...any) {
	t.Helper()
	args := append([]any{"ACL", "SETUSER", name, "reset", "on", ">" + password}, rules...)
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s: %v", name, err)
	}
}

func without(rules []any, drop ...any) []any {
	var out []any
	for _, r := range rules {
		keep := true
		for _, d := range drop {
			keep = keep && r != d
		}
		if keep {
			out = append(out, r)
		}
	}
	return out
}

func TestCheckConfigKeyScanPermissions(t *testing.T) {
	aclDiagRules, aclKeyRules, _ := docACL(t)
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	setUser(t, c, "full", "full-pass", append(aclDiagRules, aclKeyRules...)...)
	setUser(t, c, "noscan", "noscan-pass", append(aclDiagRules, without(aclKeyRules, "+scan", "+memory|usage")...)...)
	setUser(t, c, "nokeys", "nokeys-pass", append(aclDiagRules, without(aclKeyRules, "%R~*")...)...)
	setUser(t, c, "diagonly", "diagonly-pass", aclDiagRules...)
	env := map[string]string{"FULL": "full-pass", "NOSCAN": "noscan-pass", "NOKEYS": "nokeys-pass", "DIAG": "diagonly-pass"}

	full := writeConfig(t, "instances:\n"+instanceYAML("full-1", srv.Addr, "username: full", "password_env: FULL"))
	res := runCLI(t, env, "check-config", "--config", full)
	if res.code != exitOK {
		t.Errorf("fully permitted user: exit = %d, want %d\n%s%s", res.code, exitOK, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "ok      ok") || strings.Contains(res.stdout, "missing") {
		t.Errorf("fully permitted user:\n%s", res.stdout)
	}

	cfg := writeConfig(t, "instances:\n"+
		instanceYAML("full-1", srv.Addr, "username: full", "password_env: FULL")+
		instanceYAML("noscan-1", srv.Addr, "username: noscan", "password_env: NOSCAN")+
		instanceYAML("nokeys-1", srv.Addr, "username: nokeys", "password_env: NOKEYS")+
		instanceYAML("diag-1", srv.Addr, "username: diagonly", "password_env: DIAG"))
	res = runCLI(t, env, "check-config", "--config", cfg)
	t.Logf("check-config:\n%s", res.stdout)
	if res.code != exitWarning {
		t.Errorf("exit = %d, want %d (missing permissions are a warning)\n%s%s", res.code, exitWarning, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"noscan-1: missing: scan, memory|usage (needed by /redis keys; see docs/redis-acl.md)",
		"nokeys-1: missing: read access to keys (%R~*) (needed by /redis keys; see docs/redis-acl.md)",
		"diag-1: missing: scan, type, memory|usage, pttl, llen, hlen, scard, zcard, xlen (needed by /redis keys",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "full-1: missing") {
		t.Errorf("full-1 reported as missing something:\n%s", res.stdout)
	}

	j, _ := checkJSON(t, env, cfg)
	rows := map[string]int{}
	for i, in := range j.Instances {
		rows[in.Name] = i
	}
	if len(rows) != 4 {
		t.Fatalf("instances = %+v", j.Instances)
	}
	fullRow, noscan := j.Instances[rows["full-1"]], j.Instances[rows["noscan-1"]]
	if k := fullRow.KeyScan; k == nil || k.Status != "ok" || len(k.Missing) != 0 || fullRow.ACL != "ok" {
		t.Errorf("full-1 = %+v", fullRow)
	}
	if k := noscan.KeyScan; k == nil || k.Status != "missing" || strings.Join(k.Missing, ",") != "scan,memory|usage" {
		t.Errorf("noscan-1 key_scan = %+v", k)
	}
	if acl := noscan.ACL; acl != "missing: scan, memory|usage (for /redis keys)" {
		t.Errorf("noscan-1 acl = %q", acl)
	}
}

func TestCheckConfigProbeRefusalsStayInACLColumn(t *testing.T) {
	aclDiagRules, aclKeyRules, _ := docACL(t)
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	setUser(t, c, "ro", "ro-pass", append(without(aclDiagRules, "+config|get"), aclKeyRules...)...)
	cfg := writeConfig(t, "instances:\n"+instanceYAML("ro-1", srv.Addr, "username: ro", "password_env: RO"))
	res := runCLI(t, map[string]string{"RO": "ro-pass"}, "check-config", "--config", cfg)
	// docs/redis-acl.md promises this text in the ACL column.
	if !strings.Contains(res.stdout, "missing: CONFIG GET: noperm (") {
		t.Errorf("ACL column:\n%s", res.stdout)
	}
	if res.code != exitWarning {
		t.Errorf("exit = %d, want %d", res.code, exitWarning)
	}
}

func TestCheckConfigRemediationCredential(t *testing.T) {
	aclDiagRules, aclKeyRules, aclAdmin := docACL(t)
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	setUser(t, c, "diag", "diag-pass", append(aclDiagRules, aclKeyRules...)...)
	setUser(t, c, "admin", "admin-pass", aclAdmin...)
	setUser(t, c, "admin-nomulti", "multi-pass", without(aclAdmin, "+multi", "+discard")...)
	setUser(t, c, "admin-nobgsave", "nobgsave-pass", without(aclAdmin, "+bgsave", "+config|set")...)
	env := map[string]string{
		"DIAG": "diag-pass", "ADMIN": "admin-pass", "MULTI": "multi-pass", "NOBGSAVE": "nobgsave-pass", "WRONG": "wrong-S3CRET",
	}
	remediation := func(user, pwEnv string) []string {
		return []string{"username: diag", "password_env: DIAG", "remediation:",
			"  username: " + user, "  password_env: " + pwEnv,
			"  restart_method: shutdown", "  failover_method: failover", "  persist_config: true"}
	}
	if err := c.ConfigSet(ctx, "maxmemory", "123mb").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	cfg := writeConfig(t, "instances:\n"+
		instanceYAML("docs-1", srv.Addr, remediation("admin", "ADMIN")...)+
		instanceYAML("nomulti-1", srv.Addr, remediation("admin-nomulti", "MULTI")...)+
		instanceYAML("nobgsave-1", srv.Addr, remediation("admin-nobgsave", "NOBGSAVE")...))
	res := runCLI(t, env, "check-config", "--config", cfg)
	t.Logf("check-config:\n%s", res.stdout)
	for _, want := range []string{
		// The documented user has +multi: everything but SHUTDOWN
		// (no-multi in Redis 7) is queued and discarded.
		"docs-1: remediation user admin: ok; not checked: shutdown (the server refuses them inside MULTI",
		// Without +multi the writes (CONFIG SET included) cannot be tested.
		"nomulti-1: remediation user admin-nomulti: ok; not checked: memory|purge, config|set, config|rewrite, bgsave, shutdown, failover, replicaof (a user without +multi cannot test them without running them",
		"nobgsave-1: remediation user admin-nobgsave: missing: config|set, bgsave (needed by approved actions",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	if res.code != exitWarning {
		t.Errorf("exit = %d, want %d\n%s", res.code, exitWarning, res.stdout)
	}

	// Nothing ran: no write command was called, the server still runs, and
	// its settings are unchanged.
	stats, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"bgsave", "memory|purge", "config|rewrite", "failover", "replicaof", "shutdown"} {
		for _, line := range strings.Split(stats, "\r\n") {
			if strings.HasPrefix(line, "cmdstat_"+cmd+":") && !strings.HasPrefix(line, "cmdstat_"+cmd+":calls=0,") {
				t.Errorf("%s ran: %s", cmd, line)
			}
		}
	}
	if v := c.ConfigGet(ctx, "maxmemory").Val()["maxmemory"]; v != "128974848" {
		t.Errorf("maxmemory = %s after check-config", v)
	}
	if info := c.Info(ctx, "persistence", "replication").Val(); infoInt(info, "rdb_bgsave_in_progress") != 0 || !strings.Contains(info, "role:master") {
		t.Errorf("server state changed:\n%s", info)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "redis.conf")); err == nil {
		t.Error("a config file appeared")
	}

	// A wrong remediation password is an error, and is not printed.
	bad := writeConfig(t, "instances:\n"+instanceYAML("bad-1", srv.Addr, remediation("admin", "WRONG")...))
	res = runCLI(t, env, "check-config", "--config", bad)
	if res.code != exitError || !strings.Contains(res.stdout, "bad-1: remediation user admin: error: auth") {
		t.Errorf("exit = %d, want %d\n%s", res.code, exitError, res.stdout)
	}
	j, res := checkJSON(t, env, bad)
	if r := j.Instances[0].Remediation; r == nil || r.Status != "error: auth" || r.User != "admin" {
		t.Errorf("remediation = %+v", r)
	}
	if all := res.stdout + res.stderr; strings.Contains(all, "S3CRET") {
		t.Errorf("output leaks a password:\n%s", all)
	}
}

func TestCheckConfigSlack(t *testing.T) {
	srv := redistest.StartT(t)
	slackSrv := slacktest.New(t)
	slackYAML := func(app, bot, url string) string {
		return "slack:\n  app_token: " + app + "\n  bot_token: " + bot + "\n  api_url: " + url + "\n"
	}
	inst := "instances:\n" + instanceYAML("cache-1", srv.Addr)

	res := runCLI(t, nil, "check-config", "--config", writeConfig(t, inst))
	if !strings.Contains(res.stdout, "slack: not configured (CLI only)\n") || res.code != exitOK {
		t.Errorf("no tokens: exit %d\n%s", res.code, res.stdout)
	}

	good := writeConfig(t, inst+slackYAML(slacktest.AppToken, slacktest.BotToken, slackSrv.APIURL()))
	res = runCLI(t, nil, "check-config", "--config", good)
	if !strings.Contains(res.stdout, "slack: ok: bot user redisbot (UBOT) in team slacktest (T1)") || res.code != exitOK {
		t.Errorf("good tokens: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if slackSrv.Connections() != 0 {
		t.Errorf("check-config dialled Socket Mode %d times", slackSrv.Connections())
	}
	if u := slackSrv.UnknownCalls(); len(u) > 0 {
		t.Errorf("calls the fake does not know: %v", u)
	}

	for _, tc := range []struct {
		name, app, bot, want string
	}{
		{"bad bot token", slacktest.AppToken, "xoxb-wrong-S3CRET", "slack: error: bot token: invalid_auth; app token: ok"},
		{"bad app token", "xapp-wrong-S3CRET", slacktest.BotToken, "slack: error: bot token: ok; app token: invalid_auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, inst+slackYAML(tc.app, tc.bot, slackSrv.APIURL()))
			res := runCLI(t, nil, "check-config", "--config", cfg)
			if !strings.Contains(res.stdout, tc.want) || res.code != exitError {
				t.Errorf("exit %d, want %d and %q\n%s", res.code, exitError, tc.want, res.stdout)
			}
			j, jres := checkJSON(t, nil, cfg)
			if j.Slack.Status != "error" {
				t.Errorf("slack = %+v", j.Slack)
			}
			for _, out := range []string{res.stdout, res.stderr, jres.stdout, jres.stderr} {
				if strings.Contains(out, "S3CRET") || strings.Contains(out, slacktest.BotToken) || strings.Contains(out, slacktest.AppToken) {
					t.Errorf("output leaks a token:\n%s", out)
				}
			}
		})
	}

	t.Run("one token only", func(t *testing.T) {
		cfg := writeConfig(t, inst+"slack:\n  bot_token: "+slacktest.BotToken+"\n  api_url: "+slackSrv.APIURL()+"\n")
		res := runCLI(t, nil, "check-config", "--config", cfg)
		if !strings.Contains(res.stdout, "app token: slack.app_token: required for serve (set SLACK_APP_TOKEN)") || res.code != exitError {
			t.Errorf("exit %d\n%s", res.code, res.stdout)
		}
	})

	t.Run("slack unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String() + "/api/"
		l.Close()
		cfg := writeConfig(t, inst+slackYAML(slacktest.AppToken, slacktest.BotToken, url))
		res := runCLI(t, nil, "check-config", "--config", cfg)
		if !strings.Contains(res.stdout, "slack: error: bot token: network: ") || res.code != exitError {
			t.Errorf("exit %d\n%s", res.code, res.stdout)
		}
	})
}

func TestCheckConfigStore(t *testing.T) {
	srv := redistest.StartT(t)
	inst := "instances:\n" + instanceYAML("cache-1", srv.Addr)

	t.Run("bbolt file not created yet", func(t *testing.T) {
		cfg := writeConfig(t, inst+"store:\n  path: state.db\n")
		db := filepath.Join(filepath.Dir(cfg), "state.db")
		res := runCLI(t, nil, "check-config", "--config", cfg)
		if !strings.Contains(res.stdout, "store: bbolt "+db+": ok: not created yet") || res.code != exitOK {
			t.Errorf("exit %d\n%s", res.code, res.stdout)
		}
		entries, _ := os.ReadDir(filepath.Dir(cfg))
		if len(entries) != 1 {
			t.Errorf("check-config left files behind: %v", entries)
		}
	})

	t.Run("bbolt file", func(t *testing.T) {
		cfg := writeConfig(t, inst+"store:\n  path: state.db\n")
		db := filepath.Join(filepath.Dir(cfg), "state.db")
		st, err := store.Open(context.Background(), store.Options{Path: db})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		res := runCLI(t, nil, "check-config", "--config", cfg)
		if !strings.Contains(res.stdout, "store: bbolt "+db+": ok\n") || res.code != exitOK {
			t.Errorf("exit %d\n%s", res.code, res.stdout)
		}
	})

	t.Run("bbolt file in use", func(t *testing.T) {
		cfg := writeConfig(t, inst+"store:\n  path: state.db\n")
		st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(filepath.Dir(cfg), "state.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		start := time.Now()
		j, res := checkJSON(t, nil, cfg)
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("check-config took %s on a locked file", took)
		}
		if j.Store.Status != "error" || j.Store.Detail != "in use by another process (is redisbot serve running?)" || res.code != exitError {
			t.Errorf("exit %d, store = %+v", res.code, j.Store)
		}
	})

	t.Run("redis store with a password", func(t *testing.T) {
		// With AOF: a store that persists nothing is a warning (exit 1),
		// tested in TestCheckStoreDurability.
		state := redistest.StartT(t, "--requirepass", "store-S3CRET", "--appendonly", "yes")
		for _, tc := range []struct {
			name, password, status string
			code                   int
		}{
			{"right password", "store-S3CRET", "ok", exitOK},
			{"wrong password", "wrong-S3CRET", "error", exitError},
		} {
			t.Run(tc.name, func(t *testing.T) {
				env := map[string]string{"STATE_URL": "redis://:" + tc.password + "@" + state.Addr + "/0"}
				cfg := writeConfig(t, inst+"store:\n  redis_url_env: STATE_URL\n")
				text := runCLI(t, env, "check-config", "--config", cfg)
				j, res := checkJSON(t, env, cfg)
				if j.Store.Backend != "redis" || j.Store.Status != tc.status || res.code != tc.code || text.code != tc.code {
					t.Errorf("exit %d, store = %+v\n%s", res.code, j.Store, text.stdout)
				}
				if !strings.Contains(text.stdout, "store: redis redis://:xxxxx@"+state.Addr+"/0: "+tc.status) {
					t.Errorf("store line:\n%s", text.stdout)
				}
				for _, out := range []string{text.stdout, text.stderr, res.stdout, res.stderr} {
					if strings.Contains(out, "S3CRET") {
						t.Errorf("output leaks the store password:\n%s", out)
					}
				}
			})
		}
		// The round trip leaves nothing that outlives its minute.
		c := redis.NewClient(&redis.Options{Addr: state.Addr, Password: "store-S3CRET"})
		defer c.Close()
		keys, err := c.Keys(context.Background(), "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if ttl := c.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > time.Minute {
				t.Errorf("key %q left with TTL %v", k, ttl)
			}
		}
	})
}

// replyError is an error reply as go-redis returns it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// TestJudgeReplies covers the error replies of the server versions the
// tests do not run (the local redis-server is one version).
func TestJudgeReplies(t *testing.T) {
	cases := []struct {
		acl, reply string
		status     string
		missing    []string
	}{
		{"memory|usage", "NOPERM this user has no permissions to run the 'memory|usage' command", "missing", []string{"memory|usage"}},
		{"memory|usage", "NOPERM User ro has no permissions to run the 'memory|usage' command", "missing", []string{"memory|usage"}},               // 7.2
		{"memory|usage", "NOPERM this user has no permissions to run the 'memory' command or its subcommand", "missing", []string{"memory|usage"}}, // 6.x
		{"type", "NOPERM this user has no permissions to access one of the keys used as arguments", "missing", []string{"read access to keys (%R~*)"}},
		{"type", "NOPERM No permissions to access a key", "missing", []string{"read access to keys (%R~*)"}}, // 7.2
		{"failover", "ERR unknown command 'failover', with args beginning with: 'redisbot-check-config' ", "missing", []string{"failover (unknown command)"}},
		{"memory|usage", "ERR Unknown subcommand or wrong number of arguments for 'USAGE'. Try MEMORY HELP.", "missing", []string{"memory|usage (unknown command)"}},
		// Refused after the ACL check: allowed.
		{"config|set", "ERR Unknown option or number of arguments for CONFIG SET - 'redisbot-check-config'", "ok", nil},
		{"config|set", "ERR Unsupported CONFIG parameter: redisbot-check-config", "ok", nil},
		{"type", "MOVED 1234 10.0.0.2:6379", "ok", nil},
		{"bgsave", "OOM command not allowed when used memory > 'maxmemory'.", "ok", nil},
		{"type", "LOADING Redis is loading the dataset in memory", "ok", nil},
		// Not a reply to the command checked: the check failed.
		{"type", "NOPERM this user has no permissions to run the 'select' command", "error: noperm", nil},
		{"ping", "WRONGPASS invalid username-password pair or user is disabled.", "error: auth", nil},
	}
	for _, tc := range cases {
		p := &permCheck{Status: "ok"}
		p.judge(tc.acl, replyError(tc.reply))
		if p.Status != tc.status || strings.Join(p.Missing, ";") != strings.Join(tc.missing, ";") {
			t.Errorf("%s, %q: status %q missing %q; want %q %q", tc.acl, tc.reply, p.Status, p.Missing, tc.status, tc.missing)
		}
	}
	p := &permCheck{Status: "ok"}
	p.judge("ping", context.DeadlineExceeded)
	if p.Status != "error: timeout" {
		t.Errorf("timeout: status %q", p.Status)
	}
}

// TestCheckConfigReadsTheDeclarations takes, for every command the
// remediations declare (remedy.Commands of every action under these
// settings) and the key scan declares (keyspace.Commands), a user that has
// everything but that command, and expects check-config to name it: a
// command added to a sender's declaration is checked with no change here.
// SHUTDOWN is the exception Redis makes: refused inside MULTI before the
// ACL check, it is listed as not checked. A diagnosis user without INFO
// cannot be probed at all, which other tests cover.
func TestCheckConfigReadsTheDeclarations(t *testing.T) {
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	settings := handlers.Remediation{RestartMethod: "shutdown", FailoverMethod: "failover", PersistConfig: true}
	var remediation []handlers.RedisCommand
	for _, a := range handlers.Actions {
		remediation = handlers.MergeCommands(remediation, remedy.Commands(a, settings))
	}
	env := map[string]string{"FULL": "full-pass"}
	yaml := "instances:\n"
	var names []string
	scan := slices.DeleteFunc(slices.Clone(keyspace.Commands), func(c handlers.RedisCommand) bool { return c.ACL == "info" })
	for i, cmd := range slices.Concat(remediation, scan) {
		user := fmt.Sprintf("no-%d", i)
		setUser(t, c, user, "pass-"+user, "+@all", "~*", "-"+cmd.ACL)
		env["PW"+strconv.Itoa(i)] = "pass-" + user
		name := fmt.Sprintf("lacks-%d", i)
		names = append(names, cmd.ACL)
		if i < len(remediation) {
			yaml += instanceYAML(name, srv.Addr, "password_env: FULL", "username: full", "remediation:", "  username: "+user,
				"  password_env: PW"+strconv.Itoa(i), "  restart_method: shutdown", "  failover_method: failover", "  persist_config: true")
		} else {
			yaml += instanceYAML(name, srv.Addr, "username: "+user, "password_env: PW"+strconv.Itoa(i))
		}
	}
	setUser(t, c, "full", "full-pass", "+@all", "~*")
	j, res := checkJSON(t, env, writeConfig(t, yaml))
	rows := map[string]int{}
	for i, in := range j.Instances {
		rows[in.Name] = i
	}
	for i, acl := range names {
		row, ok := rows[fmt.Sprintf("lacks-%d", i)]
		if !ok {
			t.Fatalf("no row for lacks-%d:\n%s", i, res.stdout)
		}
		p := j.Instances[row].KeyScan
		if i < len(remediation) {
			p = j.Instances[row].Remediation
		}
		switch {
		case p == nil:
			t.Errorf("without %s: no permission check", acl)
		case acl == "shutdown":
			if !slices.Contains(p.NotChecked, acl) {
				t.Errorf("without %s: %+v, want it not checked", acl, p)
			}
		case !slices.Equal(p.Missing, []string{acl}):
			t.Errorf("without %s: %+v, want it and only it missing", acl, p)
		}
	}
}
