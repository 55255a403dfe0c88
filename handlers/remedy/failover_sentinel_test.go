package remedy_test

import (
	"context"
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

// sentinelFailoverUnderWrites is failoverUnderWrites for failover_method
// sentinel: a master (old) with one replica, monitored by a real
// sentinel, filled with keys keys; a pinned and a following writer run
// while the Executor has Sentinel fail it over and restarts it. The final
// primary is the new master, where every acknowledged write must be.
func sentinelFailoverUnderWrites(t *testing.T, keys int, old oldPrimary) switchRun {
	t.Helper()
	ctx := context.Background()
	replica := redistest.StartT(t, "--replicaof", strings.Replace(old.addr, ":", " ", 1), "--repl-diskless-sync-delay", "0")
	oc := redis.NewClient(&redis.Options{Addr: old.addr, Protocol: 2})
	defer oc.Close()
	if err := redistest.Fill(ctx, oc, "k:", keys, 100, 0); err != nil {
		t.Fatal(err)
	}
	waitInSync(t, old.addr, replica.Addr)
	sentinel := topotest.StartSentinelT(t, "mymaster", old.addr)
	sentinel.WaitReplicas(t, "mymaster", 1)

	entry := handlers.Instance{Name: "sessions", Thresholds: handlers.DefaultThresholds(),
		Sentinel: &handlers.Sentinel{Master: "mymaster", Addrs: []string{sentinel.Addr}}, Remediation: old.remediation}
	entry.Remediation.FailoverMethod = remedy.FailoverSentinel
	insts, errs := topology.Expand(ctx, []handlers.Instance{entry}, 2*time.Second)
	if len(errs) != 0 || len(insts) != 2 || insts[0].Addr != old.addr {
		t.Fatalf("Expand = %v, %v", insts, errs)
	}
	inst := insts[0]
	// Expand drops restart_method command from a group's members (one
	// command restarts one server); the executor still honours it on an
	// instance that has it, as here.
	inst.Remediation = entry.Remediation
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.WaitBack = 60 * time.Second
	plan := planWithFacts(t, p.Probe, inst, nil)
	if b := blocked(plan); b != "" {
		t.Fatalf("sentinel failover blocked: %s", b)
	}

	run := executeUnderWriters(ctx, t, e, plan, inst, old, replica.Addr)
	if run.outcome.Details["new_primary"] != replica.Addr {
		t.Fatalf("outcome = %+v", run.outcome)
	}

	// The new master serves; the restarted old one follows it.
	waitInSync(t, replica.Addr, old.addr)
	rc := replica.Client()
	defer rc.Close()
	if n := rc.DBSize(ctx).Val(); n < int64(keys) {
		t.Errorf("the new master holds %d keys, fewer than the %d loaded", n, keys)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr, Protocol: 2})
	defer sc.Close()
	if got, err := topology.MasterAddr(ctx, sc, "mymaster"); err != nil || got != replica.Addr {
		t.Errorf("GET-MASTER-ADDR-BY-NAME = %q, %v; want %s", got, err, replica.Addr)
	}
	run.lost = map[string][]ackedWrite{}
	for _, w := range []*writer{run.pinned, run.follower} {
		run.lost[w.name] = missing(t, rc, w.acked)
	}
	return run
}

// Issue 14 on Sentinel: SENTINEL FAILOVER and the old master's restart
// lose no write a client saw acknowledged, whether it keeps the old
// master's address or follows the new master. Before, Sentinel's failover
// let the old master take writes until Sentinel demoted it about 8 s
// later, and the restart command got no REDISBOT_REPLICAOF, so a server
// without a config file came back as a primary until Sentinel demoted it
// again; the sync then discarded both.
func TestSentinelFailoverLosesNoAcknowledgedWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  func(t *testing.T) oldPrimary
		// sync is the sync phase: a server restarted from its SHUTDOWN
		// SAVE RDB may continue with a partial resync.
		sync string
	}{
		{"restart command returns once the server is up",
			func(t *testing.T) oldPrimary { return scriptedPrimary(t, func(argv []string) []string { return argv }) }, "full sync"},
		{"restart command returns a second after the server is up",
			func(t *testing.T) oldPrimary { return scriptedPrimary(t, slowRestart) }, "full sync"},
		{"shutdown, restarted from its config file", func(t *testing.T) oldPrimary {
			s := superviseFromFile(t)
			return oldPrimary{addr: s.addr, remediation: handlers.Remediation{RestartMethod: "shutdown"}, log: s.log}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := sentinelFailoverUnderWrites(t, 50_000, tc.old(t))
			report(t, run)
			o := run.outcome
			if !o.OK || o.Details["restart_contract"] != "" || o.Details["config_rewrite"] != "" ||
				!strings.Contains(o.Message, "old primary restarted as its replica") {
				t.Fatalf("outcome = %+v", o)
			}
			checkNoneLost(t, run)
			got := phaseNames(o)
			want := "SENTINEL FAILOVER, old primary restart, replica connected, " + tc.sync + ", catch-up"
			if tc.sync == "" && got != strings.Replace(want, ", ,", ", full sync,", 1) {
				want = strings.Replace(want, ", ,", ", partial resync,", 1)
			}
			if got != want {
				t.Errorf("phases %q, want %q", got, want)
			}
			if p, _ := phase(o, "old primary restart"); p.Note != "back as a replica" {
				t.Errorf("restart phase %+v, want back as a replica", p)
			}
			if !strings.Contains(o.Message, remedy.PhasesText(o.Phases)) || !strings.Contains(o.Message, "serving primary "+run.replica) {
				t.Errorf("message %q", o.Message)
			}
		})
	}
}

// restart_method shutdown on a Sentinel master without a config file is
// refused before Sentinel is asked: its supervisor would start it as a
// primary.
func TestSentinelFailoverByShutdownWithoutConfigFile(t *testing.T) {
	primary := topotest.StartPrimaryT(t)
	topotest.StartReplicaT(t, primary)
	sentinel := topotest.StartSentinelT(t, "mymaster", primary.Addr)
	sentinel.WaitReplicas(t, "mymaster", 1)
	inst := handlers.Instance{Name: "sessions.master", Addr: primary.Addr, Thresholds: handlers.DefaultThresholds(),
		Sentinel:    &handlers.Sentinel{Master: "mymaster", Addrs: []string{sentinel.Addr}},
		Remediation: handlers.Remediation{FailoverMethod: remedy.FailoverSentinel, RestartMethod: "shutdown"}}
	e, p := executor(t)
	o := e.Execute(context.Background(), planWithFacts(t, p.Probe, inst, nil), inst)
	if o.OK || !strings.HasPrefix(o.Message, "refused: restart_method shutdown") || !strings.HasSuffix(o.Message, "nothing was changed") {
		t.Errorf("outcome = %+v", o)
	}
	if role, _ := topotest.Role(context.Background(), primary.Addr); role != "master" {
		t.Errorf("role after the refusal = %s, want master", role)
	}
}
