package remedy_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/keyspace"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// recordedInstance starts a real redis-server with a diagnosis user and a
// remediation user (every permission: this test is about what is sent, the
// ACL tests about what is granted) and returns an instance that reaches it
// through a recording proxy.
func recordedInstance(t *testing.T, name string, args ...string) (handlers.Instance, *redistest.Server, *redistest.Recorder) {
	t.Helper()
	srv := redistest.StartT(t, args...)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	for _, u := range [][]any{{"diag", ">diag-pass"}, {"admin", ">admin-pass"}} {
		if err := c.Do(ctx, "ACL", "SETUSER", u[0], "on", u[1], "+@all", "~*").Err(); err != nil {
			t.Fatal(err)
		}
	}
	rec := redistest.Record(t, srv.Addr)
	inst := handlers.Instance{Name: name, Addr: rec.Addr, Username: "diag", Password: "diag-pass", Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{Username: "admin", Password: "admin-pass"}}
	return inst, srv, rec
}

// checkSent fails the test when the remediation user sent a command that
// remedy.Commands does not declare for the action, or the diagnosis user
// one that the probe does not declare.
func checkSent(t *testing.T, rec *redistest.Recorder, a handlers.Action, r handlers.Remediation) {
	t.Helper()
	declared := handlers.CommandNames(remedy.Commands(a, r), probe.ConnectCommands)
	for _, name := range rec.Names("admin") {
		if !slices.Contains(declared, name) {
			t.Errorf("%s sent %s, which remedy.Commands(%s) does not declare (%q)", a, name, a, declared)
		}
	}
	probed := handlers.CommandNames(probe.Commands, probe.ConnectCommands)
	for _, name := range rec.Names("diag") {
		if !slices.Contains(probed, name) {
			t.Errorf("%s: the diagnosis user sent %s, which the probe does not declare", a, name)
		}
	}
	if len(rec.Names("admin")) == 0 {
		t.Errorf("%s: nothing sent as the remediation user", a)
	}
}

// TestActionsSendOnlyTheirCommands runs each action the executor can carry
// out on one server (and the defrag watch, part of defrag-on) through a
// proxy that records every command, and holds each to its declaration,
// which check-config tests the remediation user against.
func TestActionsSendOnlyTheirCommands(t *testing.T) {
	t.Parallel()
	inst, srv, rec := recordedInstance(t, "rec-actions")
	ctx := context.Background()
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.Poll, e.PurgeSettle, e.WaitBack = 50*time.Millisecond, 0, 500*time.Millisecond
	run := func(inst handlers.Instance, r remedy.Request) remedy.Outcome {
		t.Helper()
		rec.Reset()
		snap, err := p.Probe(ctx, inst)
		if err != nil {
			t.Fatal(err)
		}
		return e.Execute(ctx, remedy.MakePlan(r, inst, snap, nil, remedy.DefaultPolicy()), inst)
	}
	setting := func(name, value string) remedy.Request {
		return remedy.Request{Action: handlers.ActionConfigSet, Params: map[string]string{"setting": name, "value": value}}
	}
	persist := inst
	persist.Remediation.PersistConfig = true
	for _, tc := range []struct {
		inst handlers.Instance
		req  remedy.Request
	}{
		{inst, remedy.Request{Action: handlers.ActionMemoryPurge}},
		{inst, remedy.Request{Action: handlers.ActionDefragOn}},
		{inst, remedy.Request{Action: handlers.ActionDefragOff}},
		{inst, setting("maxmemory", "536870912")},
		// CONFIG REWRITE fails here (no config file), after it was sent.
		{persist, setting("maxmemory-policy", "allkeys-lru")},
		{inst, remedy.Request{Action: handlers.ActionBGSave}},
	} {
		o := run(tc.inst, tc.req)
		t.Logf("%s: %s", tc.req.Action, o.Message)
		checkSent(t, rec, tc.req.Action, tc.inst.Remediation)
	}

	// The defrag watch, which defrag-on starts.
	rec.Reset()
	target, closeTarget := e.Target(inst)
	res := remedy.Watch(ctx, target, remedy.WatchConfig{Interval: time.Second, MaxLatency: time.Hour}, nil, nil, nil)
	closeTarget()
	if res.Err != nil {
		t.Fatalf("watch: %v", res.Err)
	}
	checkSent(t, rec, handlers.ActionDefragOn, inst.Remediation)

	// Last, as it stops the server: restart by SHUTDOWN SAVE, with no
	// supervisor to bring it back.
	shutdown := inst
	shutdown.Remediation.RestartMethod = "shutdown"
	o := run(shutdown, remedy.Request{Action: handlers.ActionRestart})
	if o.OK || !strings.Contains(o.Message, "not back after") {
		t.Errorf("restart: %+v, want SHUTDOWN SAVE sent and no restart", o)
	}
	checkSent(t, rec, handlers.ActionRestart, shutdown.Remediation)
	_ = srv
}

// TestFailoverSendsOnlyItsCommands fails a primary over to its replica
// (failover_method failover, no restart) through the recording proxy.
func TestFailoverSendsOnlyItsCommands(t *testing.T) {
	t.Parallel()
	inst, primary, rec := recordedInstance(t, "rec-primary", "--repl-diskless-sync-delay", "0")
	replica := redistest.StartT(t, "--replicaof", strings.Replace(primary.Addr, ":", " ", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, rc := primary.Client(), replica.Client()
	defer pc.Close()
	defer rc.Close()
	for _, u := range [][]any{{"diag", ">diag-pass"}, {"admin", ">admin-pass"}} {
		if err := rc.Do(ctx, "ACL", "SETUSER", u[0], "on", u[1], "+@all", "~*").Err(); err != nil {
			t.Fatal(err)
		}
	}
	for !strings.Contains(pc.Info(ctx, "replication").Val(), "state=online") {
		if ctx.Err() != nil {
			t.Fatal("replica not in sync")
		}
		time.Sleep(50 * time.Millisecond)
	}
	inst.Remediation.FailoverMethod = "failover"
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	e := remedy.NewExecutor(p, 2*time.Second, nil)
	e.WaitBack, e.Poll = 10*time.Second, 50*time.Millisecond
	snap, err := p.Probe(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	plan := remedy.MakePlan(remedy.Request{Action: handlers.ActionFailover}, inst, snap, nil, remedy.DefaultPolicy())
	if b := plan.Blocked(); len(b) > 0 {
		t.Fatalf("failover blocked: %+v", b)
	}
	rec.Reset()
	if o := e.Execute(ctx, plan, inst); !o.OK {
		t.Fatalf("outcome = %+v", o)
	}
	checkSent(t, rec, handlers.ActionFailover, inst.Remediation)
}

// TestDeclaredCommandsAreDocumented: every command a sender declares is
// granted by the users docs/redis-acl.md documents (the probe's and the
// key scan's to redisbot, every action's under every method to
// redisbot-admin), so the page tells operators all the bot sends.
func TestDeclaredCommandsAreDocumented(t *testing.T) {
	t.Parallel()
	d := readACLDoc(t)
	granted := func(rules []string, name string) bool {
		return slices.Contains(rules, "+"+name) || slices.Contains(rules, "+"+strings.Split(name, "|")[0])
	}
	diag := slices.Concat(d.diag, d.keys)
	for _, c := range slices.Concat(probe.Commands, keyspace.Commands) {
		if !granted(diag, c.ACL) {
			t.Errorf("redisbot is not granted %s, which the probe or the key scan sends", c.ACL)
		}
	}
	for _, failover := range []string{"", "failover", remedy.FailoverCluster, remedy.FailoverSentinel} {
		for _, restart := range []string{"", "command", "shutdown"} {
			r := handlers.Remediation{FailoverMethod: failover, RestartMethod: restart, PersistConfig: true}
			for _, a := range handlers.Actions {
				for _, c := range remedy.Commands(a, r) {
					if !granted(d.admin, c.ACL) {
						t.Errorf("redisbot-admin is not granted %s, which %s sends (failover %q, restart %q)", c.ACL, a, failover, restart)
					}
				}
			}
		}
	}
}
