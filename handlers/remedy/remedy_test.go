package remedy_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		verb    string
		args    []string
		action  handlers.Action
		value   string
		wantErr string
	}{
		{verb: "purge", args: []string{"cache-1"}, action: handlers.ActionMemoryPurge},
		{verb: "defrag", args: []string{"cache-1", "on"}, action: handlers.ActionDefragOn},
		{verb: "defrag", args: []string{"cache-1", "off"}, action: handlers.ActionDefragOff},
		{verb: "set", args: []string{"cache-1", "maxmemory", "4gb"}, action: handlers.ActionConfigSet, value: "4294967296"},
		{verb: "set", args: []string{"cache-1", "maxmemory", "500000"}, action: handlers.ActionConfigSet, value: "500000"},
		{verb: "set", args: []string{"cache-1", "policy", "ALLKEYS-LRU"}, action: handlers.ActionConfigSet, value: "allkeys-lru"},
		{verb: "bgsave", args: []string{"cache-1"}, action: handlers.ActionBGSave},
		{verb: "restart", args: []string{"cache-1"}, action: handlers.ActionRestart},
		{verb: "failover", args: []string{"cache-1"}, action: handlers.ActionFailover},
		{verb: "purge", wantErr: "purge needs an instance name (usage: purge <instance>)"},
		{verb: "purge", args: []string{"cache-1", "now"}, wantErr: "purge takes only an instance name"},
		{verb: "defrag", args: []string{"cache-1", "maybe"}, wantErr: "defrag takes on or off"},
		{verb: "set", args: []string{"cache-1", "maxmemory", "lots"}, wantErr: `invalid size "lots"`},
		{verb: "set", args: []string{"cache-1", "maxmemory", "-1gb"}, wantErr: "invalid size"},
		{verb: "set", args: []string{"cache-1", "policy", "lru"}, wantErr: `unknown policy "lru"`},
		{verb: "set", args: []string{"cache-1", "requirepass", "x"}, wantErr: `cannot set "requirepass": only maxmemory and policy`},
		{verb: "set", args: []string{"cache-1", "dir", "/tmp"}, wantErr: `cannot set "dir"`},
	}
	for _, tc := range cases {
		r, err := remedy.ParseRequest(tc.verb, tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !handlers.IsUsage(err) {
				t.Errorf("%s %v: error %v, want %q", tc.verb, tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.Action != tc.action || r.Params["value"] != tc.value {
			t.Errorf("%s %v = %+v, %v", tc.verb, tc.args, r, err)
		}
	}
}

func snapshot(t *testing.T, fields map[string]string, config map[string]string) *handlers.Snapshot {
	b, err := os.ReadFile("../testdata/info/redis-7.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	info := handlers.ParseInfo(string(b))
	// The capture was taken right after a bulk load; a quiet instance is
	// the baseline here.
	info["instantaneous_ops_per_sec"] = "120"
	for k, v := range fields {
		info[k] = v
	}
	cfg := map[string]string{"activedefrag": "no", "save": "", "maxmemory": "0", "maxmemory-policy": "noeviction"}
	for k, v := range config {
		cfg[k] = v
	}
	return &handlers.Snapshot{Instance: "cache-1", Info: info, Config: cfg}
}

func blocked(p remedy.Plan) string {
	var names []string
	for _, c := range p.Blocked() {
		names = append(names, c.Name)
	}
	return strings.Join(names, "; ")
}

func TestPlanChecks(t *testing.T) {
	inst := handlers.Instance{Name: "cache-1", Thresholds: handlers.DefaultThresholds(), MemoryLimit: 1 << 30}
	restartable := inst
	restartable.Remediation = handlers.Remediation{RestartMethod: "command", RestartCommand: []string{"systemctl", "restart", "redis"}, FailoverMethod: "failover"}
	cases := []struct {
		name    string
		req     remedy.Request
		inst    handlers.Instance
		fields  map[string]string
		config  map[string]string
		facts   remedy.Facts
		blocked string // failed blocking checks, joined; "" = runnable
	}{
		{name: "purge on the fragmented capture", req: remedy.Request{Action: handlers.ActionMemoryPurge}, inst: inst},
		{name: "purge on libc", req: remedy.Request{Action: handlers.ActionMemoryPurge}, inst: inst,
			fields: map[string]string{"mem_allocator": "libc"}, blocked: "allocator is jemalloc"},
		{name: "purge with nothing to return (drifted back to normal)", req: remedy.Request{Action: handlers.ActionMemoryPurge}, inst: inst,
			fields: map[string]string{"mem_fragmentation_ratio": "1.1", "allocator_rss_bytes": "1000"}, blocked: "there is memory to return"},
		{name: "defrag on", req: remedy.Request{Action: handlers.ActionDefragOn}, inst: inst},
		{name: "defrag on a build that cannot", req: remedy.Request{Action: handlers.ActionDefragOn}, inst: inst,
			facts: remedy.Facts{handlers.FactDefragSupported: "no"}, blocked: "this build supports active defrag"},
		{name: "defrag under heavy traffic", req: remedy.Request{Action: handlers.ActionDefragOn}, inst: inst,
			fields: map[string]string{"instantaneous_ops_per_sec": "90000"}, blocked: "traffic below the defrag ceiling"},
		{name: "defrag at memory pressure", req: remedy.Request{Action: handlers.ActionDefragOn}, inst: inst,
			fields: map[string]string{"used_memory_rss": strconv.Itoa(1 << 30)}, blocked: "not at critical memory pressure"},
		{name: "defrag on 7.2.4, which crashes when defrag is turned on again", req: remedy.Request{Action: handlers.ActionDefragOn}, inst: inst,
			fields: map[string]string{"redis_version": "7.2.4"}, blocked: "no known active-defrag crash in this version"},
		{name: "defrag on 8.0.1 only warns", req: remedy.Request{Action: handlers.ActionDefragOn}, inst: inst,
			fields: map[string]string{"redis_version": "8.0.1"}},
		{name: "maxmemory below used memory", req: remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": "maxmemory", "value": "1000"}}, inst: inst,
			blocked: "above used memory"},
		{name: "maxmemory over the limit with fragmentation", req: remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": "maxmemory", "value": strconv.Itoa(900 << 20)}}, inst: inst,
			blocked: "fits under memory_limit with fragmentation"},
		{name: "maxmemory that fits", req: remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": "maxmemory", "value": strconv.Itoa(400 << 20)}}, inst: inst},
		{name: "bgsave while one runs", req: remedy.Request{Action: handlers.ActionBGSave}, inst: inst,
			fields: map[string]string{"rdb_bgsave_in_progress": "1"}, blocked: "no fork in progress"},
		{name: "restart without a method", req: remedy.Request{Action: handlers.ActionRestart}, inst: inst, blocked: "a restart method is configured"},
		{name: "restart of a primary without persistence with replicas", req: remedy.Request{Action: handlers.ActionRestart}, inst: restartable,
			fields: map[string]string{"connected_slaves": "1"}, blocked: "replicas will not sync an empty dataset"},
		{name: "restart", req: remedy.Request{Action: handlers.ActionRestart}, inst: restartable},
		{name: "failover without a replica", req: remedy.Request{Action: handlers.ActionFailover}, inst: restartable, blocked: "a replica is online and in sync"},
		{name: "failover with a lagging replica", req: remedy.Request{Action: handlers.ActionFailover}, inst: restartable,
			fields: map[string]string{"connected_slaves": "1", "slave0": "ip=10.0.0.2,port=6379,state=online,offset=100,lag=30"}, blocked: "a replica is online and in sync"},
		{name: "failover", req: remedy.Request{Action: handlers.ActionFailover}, inst: restartable,
			fields: map[string]string{"connected_slaves": "1", "slave0": "ip=10.0.0.2,port=6379,state=online,offset=100,lag=0"}},
		{name: "failover of a replica", req: remedy.Request{Action: handlers.ActionFailover}, inst: restartable,
			fields: map[string]string{"role": "slave"}, blocked: "the instance is a primary; a replica is online and in sync"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := remedy.MakePlan(tc.req, tc.inst, snapshot(t, tc.fields, tc.config), tc.facts, remedy.DefaultPolicy())
			if got := blocked(p); got != tc.blocked {
				t.Errorf("blocked = %q, want %q", got, tc.blocked)
			}
			if (tc.blocked == "" && len(p.Commands) == 0) || len(p.Risks) == 0 {
				t.Errorf("plan lacks commands or risks: %+v", p)
			}
		})
	}
}

func executor(t *testing.T) (*remedy.Executor, *probe.Prober) {
	p := probe.New(2*time.Second, nil)
	t.Cleanup(func() { p.Close() })
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.WaitBack = 20 * time.Second
	return e, p
}

func planFor(t *testing.T, p *probe.Prober, inst handlers.Instance, r remedy.Request) remedy.Plan {
	snap, err := p.Probe(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	return remedy.MakePlan(r, inst, snap, nil, remedy.DefaultPolicy())
}

func TestExecuteOnRealServer(t *testing.T) {
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fragment(ctx, c, 500_000); err != nil {
		t.Fatal(err)
	}
	inst := handlers.Instance{Name: "frag-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	e, p := executor(t)

	t.Run("memory purge", func(t *testing.T) {
		o := e.Execute(ctx, planFor(t, p, inst, remedy.Request{Action: handlers.ActionMemoryPurge}), inst)
		if !o.OK || o.Details["rss_returned"] == "" || len(o.Before) == 0 || len(o.After) == 0 {
			t.Errorf("outcome = %+v", o)
		}
	})
	t.Run("defrag on a build without defrag support", func(t *testing.T) {
		if err := c.ConfigSet(ctx, "active-defrag-cycle-max", "50").Err(); err != nil {
			t.Fatal(err)
		}
		o := e.Execute(ctx, planFor(t, p, inst, remedy.Request{Action: handlers.ActionDefragOn}), inst)
		// Debian's redis-server links the system jemalloc: the server says
		// no, and the bot learns it.
		if o.OK || o.Learned[handlers.FactDefragSupported] != "no" || !strings.Contains(o.Message, "without active defrag support") {
			t.Errorf("outcome = %+v", o)
		}
		if v := c.ConfigGet(ctx, "active-defrag-cycle-max").Val()["active-defrag-cycle-max"]; v != "50" {
			t.Error("defrag parameters were changed although defrag could not be enabled")
		}
	})
	t.Run("config set maxmemory", func(t *testing.T) {
		r := remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": "maxmemory", "value": strconv.Itoa(512 << 20)}}
		plan := planFor(t, p, inst, r)
		if plan.Params["old"] != "0" {
			t.Errorf("old value = %q", plan.Params["old"])
		}
		o := e.Execute(ctx, plan, inst)
		if !o.OK || c.ConfigGet(ctx, "maxmemory").Val()["maxmemory"] != strconv.Itoa(512<<20) {
			t.Errorf("outcome = %+v", o)
		}
	})
	t.Run("config set policy", func(t *testing.T) {
		r := remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": "maxmemory-policy", "value": "allkeys-lru"}}
		if o := e.Execute(ctx, planFor(t, p, inst, r), inst); !o.OK || c.ConfigGet(ctx, "maxmemory-policy").Val()["maxmemory-policy"] != "allkeys-lru" {
			t.Errorf("outcome = %+v", o)
		}
	})
	t.Run("bgsave", func(t *testing.T) {
		o := e.Execute(ctx, planFor(t, p, inst, remedy.Request{Action: handlers.ActionBGSave}), inst)
		if !o.OK || o.Details["rdb_last_bgsave_status"] != "ok" || o.Details["rdb_last_cow_size"] == "" {
			t.Errorf("outcome = %+v", o)
		}
	})
}

// startSupervised starts redis-server through the test supervisor script,
// as restart_command would restart it.
func startSupervised(t *testing.T) (handlers.Instance, *redis.Client) {
	t.Helper()
	dir := t.TempDir()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	script, _ := filepath.Abs("testdata/restart-redis.sh")
	pidfile := filepath.Join(dir, "redis.pid")
	argv := []string{script, pidfile, port, dir}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("start: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
		}
	})
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("supervised redis did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	inst := handlers.Instance{Name: "sup-1", Addr: "127.0.0.1:" + port, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{RestartMethod: "command", RestartCommand: argv}}
	return inst, c
}

func TestRestartThroughSupervisor(t *testing.T) {
	inst, c := startSupervised(t)
	ctx := context.Background()
	if err := redistest.Fragment(ctx, c, 500_000); err != nil {
		t.Fatal(err)
	}
	e, p := executor(t)
	plan := planFor(t, p, inst, remedy.Request{Action: handlers.ActionRestart})
	if b := blocked(plan); b != "" {
		t.Fatalf("restart blocked: %s", b)
	}
	o := e.Execute(ctx, plan, inst)
	if !o.OK || o.Details["time_to_back"] == "" {
		t.Fatalf("outcome = %+v", o)
	}
	before, _ := handlers.Evidence(o.Before).Get("used_memory_rss")
	after, _ := handlers.Evidence(o.After).Get("used_memory_rss")
	// Persistence is off in the test supervisor: the instance comes back
	// empty, with its RSS far below the fragmented one.
	if after.Value.(int64) >= before.Value.(int64)/2 {
		t.Errorf("RSS %s -> %s after restart", before.Text, after.Text)
	}
}

func TestFailoverPrimaryReplica(t *testing.T) {
	primary := redistest.StartT(t)
	replica := redistest.StartT(t, "--replicaof", strings.Replace(primary.Addr, ":", " ", 1))
	pc := primary.Client()
	defer pc.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, pc, "k:", 10_000, 100, 0); err != nil {
		t.Fatal(err)
	}
	rc := replica.Client()
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(pc.Info(ctx, "replication").Val(), "state=online") || rc.DBSize(ctx).Val() < 10_000 {
		if time.Now().After(deadline) {
			t.Fatal("replica not in sync")
		}
		time.Sleep(50 * time.Millisecond)
	}
	inst := handlers.Instance{Name: "primary-1", Addr: primary.Addr, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{FailoverMethod: "failover"}}
	e, p := executor(t)
	plan := planFor(t, p, inst, remedy.Request{Action: handlers.ActionFailover})
	if b := blocked(plan); b != "" {
		t.Fatalf("failover blocked: %s", b)
	}
	o := e.Execute(ctx, plan, inst)
	if !o.OK || !strings.Contains(o.Message, "failed over to") {
		t.Fatalf("outcome = %+v", o)
	}
	// The replica reports its new role a moment after FAILOVER returns.
	deadline = time.Now().Add(10 * time.Second)
	for {
		role, _ := rc.Do(ctx, "ROLE").Val().([]any)
		if len(role) > 0 && role[0] == "master" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica role after failover = %v", role)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The old primary is restarted by its supervisor from its original config,
// so it comes back as an empty standalone primary: the executor must make it
// a replica of the new primary, wait for the full resync, and (with
// failback) hand the primary role back to it.
func TestFailoverRestartRejoinAndFailback(t *testing.T) {
	inst, pc := startSupervised(t)
	ctx := context.Background()
	replica := redistest.StartT(t, "--replicaof", strings.Replace(inst.Addr, ":", " ", 1))
	if err := redistest.Fill(ctx, pc, "k:", 20_000, 100, 0); err != nil {
		t.Fatal(err)
	}
	rc := replica.Client()
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(pc.Info(ctx, "replication").Val(), "state=online") || rc.DBSize(ctx).Val() < 20_000 {
		if time.Now().After(deadline) {
			t.Fatal("replica not in sync")
		}
		time.Sleep(50 * time.Millisecond)
	}
	inst.Remediation.FailoverMethod = "failover"
	inst.Remediation.Failback = true
	e, p := executor(t)
	plan := planFor(t, p, inst, remedy.Request{Action: handlers.ActionFailover})
	if b := blocked(plan); b != "" {
		t.Fatalf("failover blocked: %s", b)
	}
	o := e.Execute(ctx, plan, inst)
	if !o.OK || !strings.Contains(o.Message, "fully resynced") || o.Details["failed_back_to"] != inst.Addr {
		t.Fatalf("outcome = %+v", o)
	}
	// The original node is primary again, with the whole dataset, and the
	// other is its replica.
	deadline = time.Now().Add(10 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: inst.Addr, Protocol: 2})
		role, _ := c.Do(ctx, "ROLE").Val().([]any)
		keys := c.DBSize(ctx).Val()
		c.Close()
		rrole, _ := rc.Do(ctx, "ROLE").Val().([]any)
		if len(role) > 0 && role[0] == "master" && keys == 20_000 && len(rrole) > 0 && rrole[0] == "slave" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after fail-back: primary role %v with %d keys, replica role %v", role, keys, rrole)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
