package remedy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
	"github.com/redisbot/redisbot/handlers/topology"
	"github.com/redisbot/redisbot/handlers/topology/topotest"
)

// The passwords the tests put in place of the documented placeholders. They
// differ so that an action run with the wrong user cannot pass.
const (
	aclDiagPassword  = "diag-test-password"
	aclAdminPassword = "admin-test-password"
)

// aclDoc is what docs/redis-acl.md documents: the rules after the user
// name, with the password placeholder still in them. The tests apply these
// rules, never a copy, so the page and the bot cannot drift apart.
type aclDoc struct {
	text string
	// diag and admin are the two ACL SETUSER lines; keys is the key-scan
	// addition to redisbot (the one without reset).
	diag, admin, keys []string
	// diagFile and adminFile are the users.acl / redis.conf user lines.
	diagFile, adminFile []string
}

func readACLDoc(t *testing.T) aclDoc {
	t.Helper()
	b, err := os.ReadFile("../../docs/redis-acl.md")
	if err != nil {
		t.Fatal(err)
	}
	d := aclDoc{text: string(b)}
	set := func(dst *[]string, what string, rules []string) {
		if *dst != nil {
			t.Fatalf("docs/redis-acl.md: more than one %q line in code blocks", what)
		}
		*dst = rules
	}
	fenced := false
	for _, line := range strings.Split(d.text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		f := strings.Fields(line)
		if !fenced || len(f) < 3 {
			continue
		}
		switch {
		case f[0] == "ACL" && f[1] == "SETUSER" && f[2] == "redisbot" && slices.Contains(f, "reset"):
			set(&d.diag, "ACL SETUSER redisbot reset", f[3:])
		case f[0] == "ACL" && f[1] == "SETUSER" && f[2] == "redisbot":
			set(&d.keys, "ACL SETUSER redisbot (key scans)", f[3:])
		case f[0] == "ACL" && f[1] == "SETUSER" && f[2] == "redisbot-admin":
			set(&d.admin, "ACL SETUSER redisbot-admin", f[3:])
		case f[0] == "user" && f[1] == "redisbot":
			set(&d.diagFile, "user redisbot", f[2:])
		case f[0] == "user" && f[1] == "redisbot-admin":
			set(&d.adminFile, "user redisbot-admin", f[2:])
		}
	}
	for what, rules := range map[string][]string{
		"ACL SETUSER redisbot reset": d.diag, "ACL SETUSER redisbot-admin": d.admin, "ACL SETUSER redisbot (key scans)": d.keys,
		"user redisbot": d.diagFile, "user redisbot-admin": d.adminFile,
	} {
		if rules == nil {
			t.Fatalf("docs/redis-acl.md: no %q line in a code block", what)
		}
	}
	return d
}

// withPassword returns rules with the password placeholder (">..." or, in
// a users.acl line, "#..." for its SHA-256) replaced by password, and how
// many placeholders there were.
func withPassword(rules []string, password string) ([]string, int) {
	out := slices.Clone(rules)
	n := 0
	for i, r := range out {
		switch {
		case strings.HasPrefix(r, ">"):
			out[i], n = ">"+password, n+1
		case strings.HasPrefix(r, "#"):
			sum := sha256.Sum256([]byte(password))
			out[i], n = "#"+hex.EncodeToString(sum[:]), n+1
		}
	}
	return out, n
}

// setUser runs ACL SETUSER name rules on c, with the password in place of
// the documented placeholder ("" for rules that add to a user and set none).
func setUser(t *testing.T, c *redis.Client, name string, rules []string, password string) {
	t.Helper()
	rules, n := withPassword(rules, password)
	want := 0
	if password != "" {
		want = 1
	}
	if n != want {
		t.Fatalf("ACL SETUSER %s: %d password rules, want %d: %q", name, n, want, rules)
	}
	if err := c.ACLSetUser(context.Background(), name, rules...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s %s: %v", name, strings.Join(rules, " "), err)
	}
}

// startACLServer starts a redis-server with the two documented users. The
// default user stays as it is, for the test's own set-up and checks.
func startACLServer(t *testing.T, d aclDoc, args ...string) *redistest.Server {
	t.Helper()
	srv := redistest.StartT(t, args...)
	c := srv.Client()
	defer c.Close()
	setUser(t, c, "redisbot", d.diag, aclDiagPassword)
	setUser(t, c, "redisbot-admin", d.admin, aclAdminPassword)
	return srv
}

// aclInstance is an instance configured as the page says: redisbot for
// diagnosis, redisbot-admin for remediation.
func aclInstance(name, addr string) handlers.Instance {
	return handlers.Instance{Name: name, Addr: addr, Username: "redisbot", Password: aclDiagPassword,
		Thresholds:  handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{Username: "redisbot-admin", Password: aclAdminPassword}}
}

// aclClient connects as user, the way the bot's clients do (RESP2, no
// CLIENT SETINFO, no retries).
func aclClient(t *testing.T, addr, user, password string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: password, Protocol: 2,
		DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// wantNoPerm checks that the ACL, not something else, refused a command.
func wantNoPerm(t *testing.T, err error, cmd ...any) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
		t.Errorf("%v: error %v, want NOPERM", cmd, err)
	}
}

// aclNoDenials fails the test when the server logged refused commands, then
// clears its log. It catches denials the bot works around quietly, such as
// a CLUSTER SHARDS that falls back to CLUSTER NODES.
func aclNoDenials(t *testing.T, name string, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	entries, err := c.ACLLog(ctx, 20).Result()
	if err != nil {
		t.Fatalf("%s: ACL LOG: %v", name, err)
	}
	for _, e := range entries {
		t.Errorf("%s: ACL LOG: user %s was refused %s (%s), %d times", name, e.Username, e.Object, e.Reason, e.Count)
	}
	if err := c.ACLLogReset(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// aclPlan plans r on a fresh probe, as the approval workflow does.
func aclPlan(t *testing.T, p *probe.Prober, inst handlers.Instance, r remedy.Request) remedy.Plan {
	t.Helper()
	snap, err := p.Probe(context.Background(), inst)
	if err != nil {
		t.Fatalf("probe as %s: %v", inst.Username, err)
	}
	return remedy.MakePlan(r, inst, snap, nil, remedy.DefaultPolicy())
}

func TestACLDocLinesAgree(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	strip := func(rules []string) []string {
		return slices.DeleteFunc(slices.Clone(rules), func(r string) bool { return strings.HasPrefix(r, ">") || strings.HasPrefix(r, "#") })
	}
	if !slices.Equal(strip(d.diag), strip(d.diagFile)) {
		t.Errorf("user redisbot rules %q differ from ACL SETUSER's %q", d.diagFile, d.diag)
	}
	if !slices.Equal(strip(d.admin), strip(d.adminFile)) {
		t.Errorf("user redisbot-admin rules %q differ from ACL SETUSER's %q", d.adminFile, d.admin)
	}
	for _, r := range d.keys {
		if r == "reset" || r == "-@all" || strings.HasPrefix(r, ">") {
			t.Errorf("the key-scan line must add to redisbot, not replace it or its password: %q", d.keys)
		}
	}

	// The users.acl lines load, and make the same users as ACL SETUSER.
	dir := t.TempDir()
	diagFile, n1 := withPassword(d.diagFile, aclDiagPassword)
	adminFile, n2 := withPassword(d.adminFile, aclAdminPassword)
	if n1 != 1 || n2 != 1 {
		t.Fatalf("users.acl lines need one #sha256 password each: %q, %q", d.diagFile, d.adminFile)
	}
	file := "user default on nopass ~* &* +@all\n" +
		"user redisbot " + strings.Join(diagFile, " ") + "\n" +
		"user redisbot-admin " + strings.Join(adminFile, " ") + "\n"
	path := filepath.Join(dir, "users.acl")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := redistest.StartT(t, "--aclfile", path)
	fromSetUser := startACLServer(t, d)
	list := func(s *redistest.Server) []string {
		c := s.Client()
		defer c.Close()
		users, err := c.ACLList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		users = slices.DeleteFunc(users, func(u string) bool { return !strings.HasPrefix(u, "user redisbot") })
		// ACL LIST orders a user's commands as its command table does,
		// which differs from server to server.
		for i, u := range users {
			f := strings.Fields(u)
			slices.Sort(f[2:])
			users[i] = strings.Join(f, " ")
		}
		return users
	}
	if a, b := list(fromFile), list(fromSetUser); len(a) != 2 || !slices.Equal(a, b) {
		t.Errorf("ACL LIST from users.acl:\n%s\nfrom ACL SETUSER:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if err := aclClient(t, fromFile.Addr, "redisbot", aclDiagPassword).Info(context.Background(), "server").Err(); err != nil {
		t.Errorf("INFO as redisbot from users.acl: %v", err)
	}
}

func TestACLDiagnosisUser(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	srv := startACLServer(t, d)
	root := srv.Client()
	defer root.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, root, "k:", 1000, 100, 0); err != nil {
		t.Fatal(err)
	}
	inst := aclInstance("acl-diag", srv.Addr)
	p := probe.New(2*time.Second, nil)
	defer p.Close()

	snap, err := p.Probe(ctx, inst)
	if err != nil {
		t.Fatalf("probe as redisbot: %v", err)
	}
	if len(snap.Missing) != 0 {
		t.Errorf("probe as redisbot is missing %q", snap.Missing)
	}
	if _, ok := snap.Config["activedefrag"]; !ok || len(snap.MemoryStats) == 0 || snap.Doctor == "" {
		t.Errorf("probe as redisbot: config %v, %d MEMORY STATS fields, doctor %q", snap.Config, len(snap.MemoryStats), snap.Doctor)
	}
	svc := handlers.NewService([]handlers.Instance{inst}, p, nil, 1, nil)
	rep, err := svc.Diagnose(ctx, inst.Name)
	if err != nil || rep.Failed() || len(rep.Missing) != 0 {
		t.Fatalf("diagnose as redisbot: %+v, %v", rep, err)
	}
	aclNoDenials(t, "diagnosis", root)

	t.Run("read-only", func(t *testing.T) {
		c := aclClient(t, srv.Addr, "redisbot", aclDiagPassword)
		for _, cmd := range [][]any{
			{"MEMORY", "PURGE"}, {"CONFIG", "SET", "maxmemory", "1gb"}, {"BGSAVE"}, {"SHUTDOWN"}, {"FLUSHALL"}, {"SET", "k:1", "x"},
		} {
			wantNoPerm(t, c.Do(ctx, cmd...).Err(), cmd...)
		}
		if n := root.DBSize(ctx).Val(); n != 1000 {
			t.Errorf("%d keys after the refused commands, want 1000", n)
		}
	})

	t.Run("CONFIG GET denied", func(t *testing.T) {
		setUser(t, root, "redisbot", []string{"-config|get"}, "")
		p := probe.New(2*time.Second, nil)
		defer p.Close()
		snap, err := p.Probe(ctx, inst)
		want := "CONFIG GET: noperm (NOPERM this user has no permissions to run the 'config|get' command)"
		if err != nil || !slices.Equal(snap.Missing, []string{want}) {
			t.Fatalf("probe without CONFIG GET = missing %q, %v; want %q", snap.Missing, err, want)
		}
		if !strings.Contains(d.text, want) {
			t.Errorf("docs/redis-acl.md does not quote what the bot says: %q", want)
		}
		svc := handlers.NewService([]handlers.Instance{inst}, p, nil, 1, nil)
		if rep, err := svc.Diagnose(ctx, inst.Name); err != nil || rep.Failed() || !slices.Equal(rep.Missing, []string{want}) {
			t.Errorf("diagnose without CONFIG GET: %+v, %v", rep, err)
		}
	})
}

func TestACLRemediationUser(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	// DEBUG is refused to every user by default; enabled, only the ACL
	// stands between it and redisbot-admin.
	srv := startACLServer(t, d, "--enable-debug-command", "yes")
	root := srv.Client()
	defer root.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, root, "k:", 1000, 100, 0); err != nil {
		t.Fatal(err)
	}
	inst := aclInstance("acl-admin", srv.Addr)
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.Poll = 50 * time.Millisecond
	execute := func(t *testing.T, inst handlers.Instance, r remedy.Request) remedy.Outcome {
		t.Helper()
		o := e.Execute(ctx, aclPlan(t, p, inst, r), inst)
		if strings.Contains(o.Message, "NOPERM") {
			t.Errorf("%s refused by the ACL: %s", r.Action, o.Message)
		}
		return o
	}
	config := func(name string) string { return root.ConfigGet(ctx, name).Val()[name] }
	setting := func(name, value string) remedy.Request {
		return remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": name, "value": value}}
	}

	t.Run("memory-purge", func(t *testing.T) {
		if o := execute(t, inst, remedy.Request{Action: handlers.ActionMemoryPurge}); !o.OK {
			t.Errorf("outcome = %+v", o)
		}
	})
	t.Run("config-set maxmemory", func(t *testing.T) {
		v := strconv.Itoa(512 << 20)
		if o := execute(t, inst, setting("maxmemory", v)); !o.OK || config("maxmemory") != v {
			t.Errorf("outcome = %+v, maxmemory %s", o, config("maxmemory"))
		}
	})
	t.Run("config-set policy", func(t *testing.T) {
		if o := execute(t, inst, setting("maxmemory-policy", "allkeys-lru")); !o.OK || config("maxmemory-policy") != "allkeys-lru" {
			t.Errorf("outcome = %+v, policy %s", o, config("maxmemory-policy"))
		}
	})
	t.Run("config-set with persist_config", func(t *testing.T) {
		// CONFIG REWRITE is granted; this server just has no file to
		// rewrite (redistest passes its settings as arguments).
		persist := inst
		persist.Remediation.PersistConfig = true
		o := execute(t, persist, setting("maxmemory-policy", "allkeys-lfu"))
		if o.OK || !strings.Contains(o.Message, "running without a config file") || config("maxmemory-policy") != "allkeys-lfu" {
			t.Errorf("outcome = %+v, policy %s", o, config("maxmemory-policy"))
		}
	})
	t.Run("bgsave", func(t *testing.T) {
		if o := execute(t, inst, remedy.Request{Action: handlers.ActionBGSave}); !o.OK || o.Details["rdb_last_bgsave_status"] != "ok" {
			t.Errorf("outcome = %+v", o)
		}
	})
	t.Run("defrag-on", func(t *testing.T) {
		// Debian's redis-server links the system jemalloc and refuses
		// activedefrag for that reason; a build that can defrag succeeds.
		o := execute(t, inst, remedy.Request{Action: handlers.ActionDefragOn})
		if !o.OK && !strings.Contains(o.Message, "without active defrag support") {
			t.Errorf("outcome = %+v", o)
		}
	})
	t.Run("defrag-off", func(t *testing.T) {
		if o := execute(t, inst, remedy.Request{Action: handlers.ActionDefragOff}); !o.OK || config("activedefrag") != "no" {
			t.Errorf("outcome = %+v", o)
		}
	})
	t.Run("defrag watcher", func(t *testing.T) {
		target, closeTarget := e.Target(inst)
		defer closeTarget()
		if _, err := target.Snapshot(ctx); err != nil {
			t.Error(err)
		}
		if _, err := target.Ping(ctx); err != nil {
			t.Error(err)
		}
		if _, err := target.DefragLatency(ctx); err != nil {
			t.Error(err)
		}
		if err := target.TurnOff(ctx); err != nil {
			t.Error(err)
		}
		// A whole watch of one sample: a refused LATENCY LATEST or TIME
		// would only show as a warning.
		watched, closeWatched := e.Target(inst)
		defer closeWatched()
		cfg := remedy.WatchConfig{Interval: time.Second, MaxDuration: 0, TargetRatio: 0, MaxLatency: time.Hour}
		res := remedy.Watch(ctx, watched, cfg, nil, nil, nil)
		if res.Reason != remedy.WatchMaxDuration || res.Err != nil || len(res.Warnings) > 0 || !res.TurnedOff {
			t.Errorf("watch = %+v", res)
		}
	})
	aclNoDenials(t, "remediation", root)

	t.Run("least privilege", func(t *testing.T) {
		c := aclClient(t, srv.Addr, "redisbot-admin", aclAdminPassword)
		for _, cmd := range [][]any{
			{"FLUSHALL"}, {"SET", "k:1", "x"}, {"GET", "k:1"}, {"DEBUG", "SLEEP", "0"}, {"KEYS", "*"},
			{"ACL", "SETUSER", "redisbot-admin", "+@all"}, {"CONFIG", "GET", "requirepass"},
		} {
			wantNoPerm(t, c.Do(ctx, cmd...).Err(), cmd...)
		}
		// Redis' protected configs keep CONFIG SET away from where BGSAVE
		// writes.
		if err := c.ConfigSet(ctx, "dir", os.TempDir()).Err(); err == nil || !strings.Contains(err.Error(), "can't set protected config") {
			t.Errorf("CONFIG SET dir: %v, want a protected config", err)
		}
		if n := root.DBSize(ctx).Val(); n != 1000 {
			t.Errorf("%d keys after the refused commands, want 1000", n)
		}
	})

	t.Run("CONFIG SET denied", func(t *testing.T) {
		setUser(t, root, "redisbot-admin", []string{"-config|set"}, "")
		before := config("maxmemory")
		o := e.Execute(ctx, aclPlan(t, p, inst, setting("maxmemory", strconv.Itoa(256<<20))), inst)
		want := "NOPERM this user has no permissions to run the 'config|set' command"
		if o.OK || o.Message != want || config("maxmemory") != before {
			t.Errorf("outcome = %+v, maxmemory %s; want %q and no change", o, config("maxmemory"), want)
		}
		if !strings.Contains(d.text, want) {
			t.Errorf("docs/redis-acl.md does not quote what the bot says: %q", want)
		}
	})
}

func TestACLRestartByShutdown(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	srv := startACLServer(t, d)
	ctx := context.Background()
	inst := aclInstance("acl-restart", srv.Addr)
	inst.Remediation.RestartMethod = "shutdown"
	p := probe.New(time.Second, nil)
	defer p.Close()
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.WaitBack, e.Poll = 500*time.Millisecond, 50*time.Millisecond

	// No supervisor brings this server back: SHUTDOWN SAVE is granted when
	// the server goes away and the executor then waits in vain.
	o := e.Execute(ctx, aclPlan(t, p, inst, remedy.Request{Action: handlers.ActionRestart}), inst)
	if o.OK || !strings.Contains(o.Message, "not back after") {
		t.Errorf("outcome = %+v, want SHUTDOWN SAVE accepted and no restart", o)
	}
	var reply redis.Error
	if err := aclClient(t, srv.Addr, "", "").Ping(ctx).Err(); err == nil || errors.As(err, &reply) {
		t.Errorf("PING after SHUTDOWN SAVE as redisbot-admin: %v, want the server gone", err)
	}
}

func TestACLFailover(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	// Without the delay the replica syncs at once instead of after 5 s.
	primary := startACLServer(t, d, "--repl-diskless-sync-delay", "0")
	replica := startACLServer(t, d, "--replicaof", strings.Replace(primary.Addr, ":", " ", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pc, rc := primary.Client(), replica.Client()
	defer pc.Close()
	defer rc.Close()
	for !strings.Contains(pc.Info(ctx, "replication").Val(), "state=online") {
		if ctx.Err() != nil {
			t.Fatal("replica not in sync")
		}
		time.Sleep(50 * time.Millisecond)
	}

	inst := aclInstance("acl-primary", primary.Addr)
	inst.Remediation.FailoverMethod = "failover"
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.WaitBack, e.Poll = 10*time.Second, 50*time.Millisecond
	plan := aclPlan(t, p, inst, remedy.Request{Action: handlers.ActionFailover})
	if b := plan.Blocked(); len(b) > 0 {
		t.Fatalf("failover blocked: %+v", b)
	}
	if o := e.Execute(ctx, plan, inst); !o.OK || !strings.Contains(o.Message, "failed over to") {
		t.Fatalf("outcome = %+v", o)
	}
	aclNoDenials(t, "old primary", pc)
	aclNoDenials(t, "old replica", rc)
}

func TestACLClusterFailover(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	cl := topotest.StartClusterT(t, 1, 1)
	primary := cl.Primaries[0].Addr
	servers := map[string]*redis.Client{}
	for _, s := range append(slices.Clone(cl.Primaries), cl.Replicas...) {
		c := s.Client()
		t.Cleanup(func() { c.Close() })
		setUser(t, c, "redisbot", d.diag, aclDiagPassword)
		setUser(t, c, "redisbot-admin", d.admin, aclAdminPassword)
		servers[s.Addr] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	seed := aclInstance("orders", primary)
	seed.Cluster = true
	seed.Remediation.FailoverMethod = remedy.FailoverCluster
	nodes, errs := topology.Expand(ctx, []handlers.Instance{seed}, 2*time.Second)
	if len(errs) > 0 || len(nodes) != 2 {
		t.Fatalf("expand as redisbot = %v, %v", nodes, errs)
	}
	i := slices.IndexFunc(nodes, func(n handlers.Instance) bool { return n.Addr == primary })
	if i < 0 {
		t.Fatalf("expanded nodes %v lack the primary %s", nodes, primary)
	}
	node := nodes[i]

	facts, err := remedy.ClusterFacts(ctx, node, 2*time.Second)
	if err != nil {
		t.Fatalf("ClusterFacts as redisbot-admin: %v", err)
	}
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	snap, err := p.Probe(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	plan := remedy.MakePlan(remedy.Request{Action: handlers.ActionFailover}, node, snap, facts, remedy.DefaultPolicy())
	if b := plan.Blocked(); len(b) > 0 {
		t.Fatalf("cluster failover blocked: %+v", b)
	}
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.WaitBack, e.Poll = 10*time.Second, 50*time.Millisecond
	if o := e.Execute(ctx, plan, node); !o.OK || !strings.Contains(o.Message, "failed over to") {
		t.Fatalf("outcome = %+v", o)
	}
	for addr, c := range servers {
		aclNoDenials(t, addr, c)
	}

	// Servers before 7.0 have no CLUSTER SHARDS: +cluster|nodes is the
	// fallback that then expands the seed.
	setUser(t, servers[primary], "redisbot", []string{"-cluster|shards"}, "")
	if nodes, errs := topology.Expand(ctx, []handlers.Instance{seed}, 2*time.Second); len(errs) > 0 || len(nodes) != 2 {
		t.Errorf("expand as redisbot through CLUSTER NODES = %v, %v", nodes, errs)
	}
}

func TestACLKeyScanRules(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	srv := startACLServer(t, d)
	root := srv.Client()
	defer root.Close()
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"SET", "s", "v"}, {"RPUSH", "l", "a"}, {"HSET", "h", "f", "v"}, {"SADD", "set", "a"},
		{"ZADD", "z", "1", "a"}, {"XADD", "x", "*", "f", "v"},
	} {
		if err := root.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := aclClient(t, srv.Addr, "redisbot", aclDiagPassword)

	// Key permissions apply to MEMORY USAGE: the command alone is not enough.
	commandsOnly := slices.DeleteFunc(slices.Clone(d.keys), func(r string) bool { return strings.Contains(r, "~") })
	setUser(t, root, "redisbot", commandsOnly, "")
	wantNoPerm(t, c.Do(ctx, "MEMORY", "USAGE", "s").Err(), "MEMORY USAGE without a key pattern")

	setUser(t, root, "redisbot", d.keys, "")
	for _, cmd := range [][]any{
		{"SCAN", "0", "COUNT", "100"}, {"TYPE", "s"}, {"MEMORY", "USAGE", "s"}, {"TTL", "s"}, {"PTTL", "s"},
		{"STRLEN", "s"}, {"LLEN", "l"}, {"HLEN", "h"}, {"SCARD", "set"}, {"ZCARD", "z"}, {"XLEN", "x"},
		{"OBJECT", "ENCODING", "s"},
	} {
		if err := c.Do(ctx, cmd...).Err(); err != nil {
			t.Errorf("%v as redisbot with the key-scan rules: %v", cmd, err)
		}
	}
	// Sizes and types, never values, and still no writes.
	for _, cmd := range [][]any{{"GET", "s"}, {"HGETALL", "h"}, {"SET", "s", "x"}, {"DEL", "s"}, {"KEYS", "*"}} {
		wantNoPerm(t, c.Do(ctx, cmd...).Err(), cmd...)
	}
	// The probe is unaffected by the addition.
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	if snap, err := p.Probe(ctx, aclInstance("acl-keys", srv.Addr)); err != nil || len(snap.Missing) > 0 {
		t.Errorf("probe with the key-scan rules: %v, %v", snap, err)
	}
}
