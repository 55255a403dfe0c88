package remedy_test

import (
	"context"
	"errors"
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
	"github.com/redisbot/redisbot/handlers/topology"
	"github.com/redisbot/redisbot/handlers/topology/topotest"
)

// planWithFacts plans on a fresh probe with the cluster facts merged in, as
// the approval workflow must.
func planWithFacts(t *testing.T, e probeFunc, inst handlers.Instance, facts remedy.Facts) remedy.Plan {
	t.Helper()
	snap, err := e(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	return remedy.MakePlan(remedy.Request{Action: handlers.ActionFailover}, inst, snap, facts, remedy.DefaultPolicy())
}

type probeFunc func(context.Context, handlers.Instance) (*handlers.Snapshot, error)

func check(p remedy.Plan, name string) (remedy.Check, bool) {
	for _, c := range p.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return remedy.Check{}, false
}

func waitRole(t *testing.T, addr, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), topotest.Timeout)
	defer cancel()
	err := topotest.Wait(ctx, func() error {
		role, err := topotest.Role(ctx, addr)
		if err == nil && role != want {
			err = errors.New("role " + role)
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s: want role %s: %v", addr, want, err)
	}
}

func TestClusterFailover(t *testing.T) {
	t.Parallel()
	cl := topotest.StartClusterT(t, 1, 1)
	primary, replica := cl.Primaries[0].Addr, cl.Replicas[0].Addr
	ctx := context.Background()
	inst := handlers.Instance{Name: "orders.primary", Addr: primary, Cluster: true, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverCluster}}
	e, p := executor(t)

	facts, err := remedy.ClusterFacts(ctx, inst, 2*time.Second)
	if err != nil || facts[remedy.FactSlotsMigrating] != "no" {
		t.Fatalf("ClusterFacts = %v, %v", facts, err)
	}
	plan := planWithFacts(t, p.Probe, inst, facts)
	if b := blocked(plan); b != "" {
		t.Fatalf("cluster failover blocked: %s", b)
	}
	if c, ok := check(plan, "no slot migration in progress"); !ok || !c.OK || !c.Blocking {
		t.Errorf("migration check = %+v, %v", c, ok)
	}
	if plan.Commands[0] != "promote the compact replica "+replica+" ("+facts[remedy.FactReplicaMemory]+")" || plan.Commands[1] != "CLUSTER FAILOVER on it, then wait until it reports role master" {
		t.Errorf("commands = %q", plan.Commands)
	}
	// Without the facts, the approver is warned that migrations were not
	// checked when planning.
	if c, ok := check(planWithFacts(t, p.Probe, inst, nil), "slot migrations checked"); !ok || c.OK || c.Blocking {
		t.Errorf("unchecked migration warning = %+v, %v", c, ok)
	}

	o := e.Execute(ctx, plan, inst)
	if !o.OK || o.Details["new_primary"] != replica || o.Details["failover_time"] == "" || !strings.Contains(o.Message, "failed over to "+replica) {
		t.Fatalf("outcome = %+v", o)
	}
	waitRole(t, replica, "master")
	waitRole(t, primary, "slave")
}

func TestClusterSlotsMigrating(t *testing.T) {
	t.Parallel()
	cl := topotest.StartClusterT(t, 2, 1)
	a, b := cl.Primaries[0], cl.Primaries[1]
	ca, cb := a.Client(), b.Client()
	defer ca.Close()
	defer cb.Close()
	ctx := context.Background()
	inst := handlers.Instance{Name: "orders.a", Addr: a.Addr, Cluster: true, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverCluster}}
	instB := inst
	instB.Addr = b.Addr
	e, p := executor(t)

	migrating := func(c *redis.Client) bool {
		t.Helper()
		m, err := remedy.SlotsMigrating(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	facts := func(in handlers.Instance) string {
		t.Helper()
		f, err := remedy.ClusterFacts(ctx, in, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return f[remedy.FactSlotsMigrating]
	}
	if migrating(ca) || migrating(cb) || facts(inst) != "no" {
		t.Fatal("slots migrating in a fresh cluster")
	}

	// Slot 100 belongs to a: a migrates it to b, b imports it from a.
	if err := ca.Do(ctx, "CLUSTER", "SETSLOT", 100, "MIGRATING", cl.IDs[b.Addr]).Err(); err != nil {
		t.Fatal(err)
	}
	if !migrating(ca) || migrating(cb) {
		t.Error("after SETSLOT MIGRATING, only a should show a migration")
	}
	// b's own CLUSTER NODES shows nothing, but the cluster check asks a.
	if facts(instB) != "yes" {
		t.Error("ClusterFacts through b misses a's migration")
	}
	if err := cb.Do(ctx, "CLUSTER", "SETSLOT", 100, "IMPORTING", cl.IDs[a.Addr]).Err(); err != nil {
		t.Fatal(err)
	}
	if !migrating(cb) {
		t.Error("after SETSLOT IMPORTING, b should show a migration")
	}

	f, err := remedy.ClusterFacts(ctx, inst, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	plan := planWithFacts(t, p.Probe, inst, f)
	if b := blocked(plan); b != "no slot migration in progress" {
		t.Errorf("blocked = %q, want the migration check", b)
	}
	// The executor checks again: a plan from before the migration is
	// refused too.
	if o := e.Execute(ctx, plan, inst); o.OK || !strings.Contains(o.Message, "refused: slots are migrating") {
		t.Errorf("outcome during a migration = %+v", o)
	}
	if role, _ := topotest.Role(ctx, a.Addr); role != "master" {
		t.Errorf("a is %s after a refused failover", role)
	}

	for _, c := range []*redis.Client{ca, cb} {
		if err := c.Do(ctx, "CLUSTER", "SETSLOT", 100, "STABLE").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if migrating(ca) || migrating(cb) || facts(inst) != "no" {
		t.Error("after SETSLOT STABLE, no migration should show")
	}
}

func TestClusterFailoverRestartsOldPrimary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The supervisor restarts the node with its cluster flags; it keeps its
	// nodes.conf in dir and rejoins the cluster.
	script, err := filepath.Abs("testdata/restart-redis.sh")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	pidfile := filepath.Join(dir, "redis.pid")
	argv := []string{script, pidfile, port, dir,
		"--cluster-enabled", "yes", "--cluster-node-timeout", "5000", "--repl-diskless-sync-delay", "0"}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("start: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
		}
	})
	primary := "127.0.0.1:" + port
	ctx, cancel := context.WithTimeout(context.Background(), topotest.Timeout)
	defer cancel()
	if err := topotest.Wait(ctx, func() error { _, err := topotest.Role(ctx, primary); return err }); err != nil {
		t.Fatalf("supervised node did not start: %v", err)
	}
	replica := redistest.StartT(t, topotest.NodeArgs...)
	topotest.FormClusterT(t, []string{primary}, []string{replica.Addr})

	inst := handlers.Instance{Name: "orders.primary", Addr: primary, Cluster: true, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverCluster, RestartMethod: "command", RestartCommand: argv}}
	e, p := executor(t)
	facts, err := remedy.ClusterFacts(ctx, inst, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	plan := planWithFacts(t, p.Probe, inst, facts)
	if b := blocked(plan); b != "" {
		t.Fatalf("blocked: %s", b)
	}
	o := e.Execute(context.Background(), plan, inst)
	if !o.OK || o.Details["new_primary"] != replica.Addr || o.Details["time_to_back"] == "" || !strings.Contains(o.Message, "old primary restarted") {
		t.Fatalf("outcome = %+v", o)
	}
	// Restarted from its nodes.conf, the old primary follows the new one.
	waitRole(t, primary, "slave")
	waitRole(t, replica.Addr, "master")
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	primary := topotest.StartPrimaryT(t)
	replica := topotest.StartReplicaT(t, primary)
	sentinel := topotest.StartSentinelT(t, "mymaster", primary.Addr)
	sentinel.WaitReplicas(t, "mymaster", 1)
	ctx := context.Background()

	entry := handlers.Instance{Name: "sessions", Thresholds: handlers.DefaultThresholds(),
		Sentinel:    &handlers.Sentinel{Master: "mymaster", Addrs: []string{sentinel.Addr}},
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverSentinel}}
	insts, errs := topology.Expand(ctx, []handlers.Instance{entry}, 2*time.Second)
	if len(errs) != 0 || len(insts) != 2 || insts[0].Addr != primary.Addr {
		t.Fatalf("Expand = %v, %v", insts, errs)
	}
	master := insts[0]
	e, p := executor(t)
	plan := planWithFacts(t, p.Probe, master, nil)
	if b := blocked(plan); b != "" {
		t.Fatalf("sentinel failover blocked: %s", b)
	}
	if plan.Commands[1] != "SENTINEL FAILOVER mymaster on the first sentinel that answers, then wait until it names a new master" ||
		!strings.HasPrefix(plan.Commands[0], "CLIENT PAUSE 30000 WRITE on this master") {
		t.Errorf("commands = %q", plan.Commands)
	}
	// The replica cannot be failed over: it is not the master.
	if b := blocked(planWithFacts(t, p.Probe, insts[1], nil)); b != "the instance is a primary; a replica is online and in sync" {
		t.Errorf("replica plan blocked = %q", b)
	}

	o := e.Execute(ctx, plan, master)
	if !o.OK || o.Details["new_primary"] != replica.Addr || o.Details["sentinel"] != sentinel.Addr {
		t.Fatalf("outcome = %+v", o)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr, Protocol: 2})
	defer sc.Close()
	if got, err := topology.MasterAddr(ctx, sc, "mymaster"); err != nil || got != replica.Addr {
		t.Errorf("GET-MASTER-ADDR-BY-NAME = %q, %v; want %s", got, err, replica.Addr)
	}
	waitRole(t, replica.Addr, "master")

	// The stale master instance is refused: Sentinel's master moved.
	if o := e.Execute(ctx, plan, master); o.OK || !strings.Contains(o.Message, "refused: Sentinel's master mymaster is "+replica.Addr) {
		t.Errorf("outcome on the old master = %+v", o)
	}
}

func TestPlanGroupFailoverChecks(t *testing.T) {
	base := handlers.Instance{Name: "cache-1", Thresholds: handlers.DefaultThresholds()}
	inSync := map[string]string{"connected_slaves": "1", "slave0": "ip=10.0.0.2,port=6379,state=online,offset=100,lag=0"}
	withFields := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range inSync {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	clusterInst := base
	clusterInst.Remediation.FailoverMethod = remedy.FailoverCluster
	sentinelInst := base
	sentinelInst.Remediation.FailoverMethod = remedy.FailoverSentinel
	sentinelInst.Sentinel = &handlers.Sentinel{Master: "mymaster", Addrs: []string{"10.0.0.9:26379"}}
	noSection := sentinelInst
	noSection.Sentinel = nil
	rebuilds := clusterInst
	rebuilds.Remediation.RestartMethod = "shutdown"
	failsBack := rebuilds
	failsBack.Remediation.Failback = true
	replicaFacts := func(fragmented string) remedy.Facts {
		return remedy.Facts{remedy.FactSlotsMigrating: "no", remedy.FactReplica: "10.0.0.2:6379",
			remedy.FactReplicaMemory: "mem_fragmentation_ratio 2.10", remedy.FactReplicaFragmented: fragmented}
	}
	for _, tc := range []struct {
		name    string
		inst    handlers.Instance
		fields  map[string]string
		facts   remedy.Facts
		blocked string
	}{
		{name: "cluster", inst: clusterInst, fields: withFields(map[string]string{"cluster_enabled": "1"}), facts: remedy.Facts{remedy.FactSlotsMigrating: "no"}},
		{name: "cluster, migrations not checked", inst: clusterInst, fields: withFields(map[string]string{"cluster_enabled": "1"})},
		{name: "cluster, compact replica", inst: clusterInst, fields: withFields(map[string]string{"cluster_enabled": "1"}), facts: replicaFacts("no")},
		{name: "cluster, fragmented replica", inst: clusterInst, fields: withFields(map[string]string{"cluster_enabled": "1"}), facts: replicaFacts("yes"),
			blocked: "the primary after the failover is compact"},
		{name: "cluster, fragmented replica restarted first", inst: rebuilds, fields: withFields(map[string]string{"cluster_enabled": "1"}), facts: replicaFacts("yes")},
		{name: "cluster, fragmented replica, fail-back", inst: failsBack, fields: withFields(map[string]string{"cluster_enabled": "1"}), facts: replicaFacts("yes")},
		{name: "cluster while slots migrate", inst: clusterInst, fields: withFields(map[string]string{"cluster_enabled": "1"}),
			facts: remedy.Facts{remedy.FactSlotsMigrating: "yes"}, blocked: "no slot migration in progress"},
		{name: "cluster-failover on a standalone server", inst: clusterInst, fields: inSync, facts: remedy.Facts{remedy.FactSlotsMigrating: "no"}, blocked: "cluster mode"},
		{name: "cluster-failover on a replica", inst: clusterInst, fields: map[string]string{"cluster_enabled": "1", "role": "slave"},
			blocked: "the instance is a primary; a replica is online and in sync"},
		{name: "sentinel", inst: sentinelInst, fields: inSync},
		{name: "sentinel without a sentinel section", inst: noSection, fields: inSync, blocked: "monitored by Sentinel"},
		{name: "sentinel on a cluster node", inst: sentinelInst, fields: withFields(map[string]string{"cluster_enabled": "1"}), blocked: "not cluster mode"},
		{name: "sentinel without a replica", inst: sentinelInst, blocked: "a replica is online and in sync"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := remedy.MakePlan(remedy.Request{Action: handlers.ActionFailover}, tc.inst, snapshot(t, tc.fields, nil), tc.facts, remedy.DefaultPolicy())
			if got := blocked(p); got != tc.blocked {
				t.Errorf("blocked = %q, want %q", got, tc.blocked)
			}
			if len(p.Commands) == 0 || len(p.Risks) < 2 || strings.HasPrefix(p.Commands[0], "FAILOVER") {
				t.Errorf("plan = %+v", p)
			}
		})
	}
}

// fragKeys fills a shard enough that both its nodes are fragmented as the
// rules judge it: mem_fragmentation_ratio near 2 with about 50 MiB beyond
// the data, above frag_noise_bytes (32 MiB).
const fragKeys = 300000

// fragmentedShard starts a one-shard cluster of supervised nodes (SHUTDOWN
// restarts them, as restart_method shutdown expects), fragments its
// memory and waits until the replica has applied every write, so that
// both nodes are fragmented.
func fragmentedShard(t *testing.T, p *probe.Prober) (primary, replica *topotest.Supervised) {
	t.Helper()
	primary = topotest.StartSupervisedT(t, topotest.NodeArgs...)
	replica = topotest.StartSupervisedT(t, topotest.NodeArgs...)
	topotest.FormClusterT(t, []string{primary.Addr}, []string{replica.Addr})
	c := primary.Client()
	defer c.Close()
	topotest.FragmentT(t, c, fragKeys)
	topotest.WaitCaughtUpT(t, primary.Addr)
	for _, addr := range []string{primary.Addr, replica.Addr} {
		if ratio := fragRatio(t, p, addr); ratio < 1.5 {
			t.Fatalf("setup: %s has mem_fragmentation_ratio %.2f after fragmenting, want at least 1.5", addr, ratio)
		}
	}
	return primary, replica
}

// fragRatio is the effective fragmentation ratio of the server at addr, 1
// when the excess is noise.
func fragRatio(t *testing.T, p *probe.Prober, addr string) float64 {
	t.Helper()
	snap, err := p.Probe(context.Background(), handlers.Instance{Name: "measure." + addr, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	ratio, ok := handlers.EffectiveFragRatio(snap, handlers.DefaultThresholds())
	if !ok {
		return 1
	}
	return ratio
}

// checkReclaimed checks that the outcome's After numbers are those of
// serving, the node that serves the slots now, and that it is compact: its
// RSS beyond the data is noise (a restarted 7.0 node holding 25 MiB shows
// a ratio near 1.4 from the process's own pages) and its RSS well under
// the fragmented primary's Before.
func checkReclaimed(t *testing.T, p *probe.Prober, o remedy.Outcome, serving string) {
	t.Helper()
	if r := fragRatio(t, p, serving); r >= 1.5 {
		t.Errorf("serving primary %s is fragmented after the failover: %.2f", serving, r)
	}
	rssBefore, rssAfter := fact(t, o.Before, "used_memory_rss").Value.(int64), fact(t, o.After, "used_memory_rss").Value.(int64)
	if float64(rssAfter) > 0.6*float64(rssBefore) {
		t.Errorf("outcome RSS %s → %s: want the compact serving primary's", handlers.HumanBytes(rssBefore), handlers.HumanBytes(rssAfter))
	}
	snap, err := p.Probe(context.Background(), handlers.Instance{Name: "measure." + serving, Addr: serving})
	if err != nil {
		t.Fatal(err)
	}
	if rss, _ := snap.Int("used_memory_rss"); float64(rss) > 1.2*float64(rssAfter) || float64(rss) < 0.8*float64(rssAfter) {
		t.Errorf("outcome After RSS %s, but %s holds %s: After is not the serving primary's", handlers.HumanBytes(rssAfter), serving, handlers.HumanBytes(rss))
	}
}

func fact(t *testing.T, facts []handlers.Fact, name string) handlers.Fact {
	t.Helper()
	f, ok := handlers.Evidence(facts).Get(name)
	if !ok {
		t.Fatalf("no %s in %+v", name, facts)
	}
	return f
}

// restartByHand restarts a supervised replica as an operator would
// (SHUTDOWN SAVE; its supervisor brings it back) and waits until it is in
// sync again.
func restartByHand(t *testing.T, s *topotest.Supervised, primary string) {
	t.Helper()
	c := s.Client()
	defer c.Close()
	starts := s.Starts()
	_ = c.Do(context.Background(), "SHUTDOWN", "SAVE").Err()
	ctx, cancel := context.WithTimeout(context.Background(), topotest.Timeout)
	defer cancel()
	if err := topotest.Wait(ctx, func() error {
		if s.Starts() == starts {
			return errors.New("not restarted yet")
		}
		_, err := topotest.Role(ctx, s.Addr)
		return err
	}); err != nil {
		t.Fatalf("restart %s: %v", s.Addr, err)
	}
	topotest.WaitCaughtUpT(t, primary)
}

// TestClusterFailoverJudgesTheReplica: on a fragmented shard the replica
// is as fragmented as its primary, so promoting it would reclaim nothing.
// Without a way to rebuild it the plan and the executor refuse, saying
// so. Once the replica is compact (restarted by hand), the failover runs
// and its outcome measures the node that serves the slots afterwards, not
// the old primary, which is still fragmented.
func TestClusterFailoverJudgesTheReplica(t *testing.T) {
	t.Parallel()
	e, p := executor(t)
	primary, replica := fragmentedShard(t, p)
	ctx := context.Background()
	inst := handlers.Instance{Name: "orders.primary", Addr: primary.Addr, Cluster: true, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverCluster}}

	facts, err := remedy.ClusterFacts(ctx, inst, 2*time.Second)
	if err != nil || facts[remedy.FactReplica] != replica.Addr || facts[remedy.FactReplicaFragmented] != "yes" ||
		!strings.HasPrefix(facts[remedy.FactReplicaMemory], "mem_fragmentation_ratio ") {
		t.Fatalf("ClusterFacts = %v, %v", facts, err)
	}
	plan := planWithFacts(t, p.Probe, inst, facts)
	if b := blocked(plan); b != "the primary after the failover is compact" {
		t.Errorf("blocked = %q", b)
	}
	if c, _ := check(plan, "the primary after the failover is compact"); !strings.Contains(c.Detail, "promoting it would reclaim nothing") ||
		!strings.Contains(c.Hint, "restart_method: shutdown") {
		t.Errorf("check = %+v", c)
	}

	// The executor judges the replica itself: a plan made without the
	// facts is refused too, and nothing changes.
	o := e.Execute(ctx, planWithFacts(t, p.Probe, inst, nil), inst)
	if o.OK || !strings.HasPrefix(o.Message, "refused: the replica "+replica.Addr+" is as fragmented as this primary (mem_fragmentation_ratio ") {
		t.Fatalf("outcome = %+v", o)
	}
	if role, _ := topotest.Role(ctx, primary.Addr); role != "master" || replica.Starts() != 1 {
		t.Fatalf("after a refusal: primary is %s, replica started %d times", role, replica.Starts())
	}

	restartByHand(t, replica, primary.Addr)
	if r := fragRatio(t, p, replica.Addr); r >= 1.5 {
		t.Fatalf("replica still fragmented after its restart: %.2f", r)
	}
	facts, err = remedy.ClusterFacts(ctx, inst, 2*time.Second)
	if err != nil || facts[remedy.FactReplicaFragmented] != "no" {
		t.Fatalf("ClusterFacts after the replica's restart = %v, %v", facts, err)
	}
	plan = planWithFacts(t, p.Probe, inst, facts)
	if b := blocked(plan); b != "" {
		t.Fatalf("blocked: %s", b)
	}
	o = e.Execute(ctx, plan, inst)
	if !o.OK || o.NoEffect || o.Details["serving_primary"] != replica.Addr || !strings.Contains(o.Message, "serving primary "+replica.Addr+": RSS ") {
		t.Fatalf("outcome = %+v", o)
	}
	waitRole(t, replica.Addr, "master")
	// Before is the old primary while it served, After the new one.
	checkReclaimed(t, p, o, replica.Addr)
	// The old primary was not restarted (no restart method): it still
	// holds its fragmented memory, which the outcome must not report.
	if r := fragRatio(t, p, primary.Addr); r < 1.5 {
		t.Errorf("old primary's ratio %.2f: it was not restarted and should still be fragmented", r)
	}
	t.Logf("outcome: %s", o.Message)
}

// TestClusterFailoverRebuildsTheReplica: with restart_method shutdown the
// fragmented replica is restarted first, reloads compact and is promoted;
// the old primary is restarted after it, and the serving primary is
// compact.
func TestClusterFailoverRebuildsTheReplica(t *testing.T) {
	t.Parallel()
	e, p := executor(t)
	primary, replica := fragmentedShard(t, p)
	ctx := context.Background()
	inst := handlers.Instance{Name: "orders.primary", Addr: primary.Addr, Cluster: true, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverCluster, RestartMethod: "shutdown"}}

	facts, err := remedy.ClusterFacts(ctx, inst, 2*time.Second)
	if err != nil || facts[remedy.FactReplicaFragmented] != "yes" {
		t.Fatalf("ClusterFacts = %v, %v", facts, err)
	}
	plan := planWithFacts(t, p.Probe, inst, facts)
	if b := blocked(plan); b != "" {
		t.Fatalf("blocked: %s", b)
	}
	if c, _ := check(plan, "the primary after the failover is compact"); !c.OK || !strings.Contains(c.Detail, "it is restarted first") {
		t.Errorf("check = %+v", c)
	}
	if !strings.HasPrefix(plan.Commands[0], "restart the fragmented replica "+replica.Addr+" first (mem_fragmentation_ratio ") {
		t.Errorf("commands = %q", plan.Commands)
	}

	o := e.Execute(ctx, plan, inst)
	if !o.OK || o.NoEffect || o.Details["serving_primary"] != replica.Addr || o.Details["replica_restarted_in"] == "" ||
		!strings.HasPrefix(o.Message, "replica "+replica.Addr+" restarted first (mem_fragmentation_ratio ") ||
		!strings.Contains(o.Details["replica_memory"], " → ") || !strings.Contains(o.Message, "old primary restarted") {
		t.Fatalf("outcome = %+v", o)
	}
	if replica.Starts() != 2 || primary.Starts() != 2 {
		t.Errorf("starts: replica %d, primary %d; want each restarted once", replica.Starts(), primary.Starts())
	}
	waitRole(t, replica.Addr, "master")
	waitRole(t, primary.Addr, "slave")
	checkReclaimed(t, p, o, replica.Addr)
	t.Logf("outcome: %s", o.Message)
}

// TestClusterFailoverFailsBack: with fail-back the replica's memory does
// not matter: the old primary is restarted, resyncs compact and takes its
// slots back, and the outcome measures it.
func TestClusterFailoverFailsBack(t *testing.T) {
	t.Parallel()
	e, p := executor(t)
	primary, replica := fragmentedShard(t, p)
	ctx := context.Background()
	inst := handlers.Instance{Name: "orders.primary", Addr: primary.Addr, Cluster: true, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverCluster, RestartMethod: "shutdown", Failback: true}}
	facts, err := remedy.ClusterFacts(ctx, inst, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	plan := planWithFacts(t, p.Probe, inst, facts)
	if c, _ := check(plan, "the primary after the failover is compact"); !c.OK || !strings.Contains(c.Detail, "fail-back hands the role back") {
		t.Errorf("check = %+v", c)
	}
	if last := plan.Commands[len(plan.Commands)-1]; !strings.HasPrefix(last, "then, once it is in sync, CLUSTER FAILOVER on the old primary") {
		t.Errorf("commands = %q", plan.Commands)
	}
	o := e.Execute(ctx, plan, inst)
	if !o.OK || o.NoEffect || o.Details["serving_primary"] != primary.Addr || o.Details["failed_back_to"] != primary.Addr ||
		!strings.Contains(o.Message, "; failed back to "+primary.Addr) {
		t.Fatalf("outcome = %+v", o)
	}
	if replica.Starts() != 1 || primary.Starts() != 2 {
		t.Errorf("starts: replica %d, primary %d; want only the primary restarted", replica.Starts(), primary.Starts())
	}
	waitRole(t, primary.Addr, "master")
	waitRole(t, replica.Addr, "slave")
	checkReclaimed(t, p, o, primary.Addr)
	t.Logf("outcome: %s", o.Message)
}
