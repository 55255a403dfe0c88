package probe_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestProbeSendsOnlyItsCommands probes a real redis-server through a proxy
// that records every command, as a user with a password (so HELLO carries
// AUTH) and in database 2 (so SELECT is sent): what the probe sent must be
// exactly what probe.Commands and probe.ConnectCommands declare, since
// check-config and docs/redis-acl.md rely on that list.
func TestProbeSendsOnlyItsCommands(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := context.Background()
	c := srv.Client()
	defer c.Close()
	if err := c.Do(ctx, "ACL", "SETUSER", "prober", "on", ">probe-pass", "+@all", "~*").Err(); err != nil {
		t.Fatal(err)
	}
	rec := redistest.Record(t, srv.Addr)
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	inst := handlers.Instance{Name: "rec", Addr: rec.Addr, Username: "prober", Password: "probe-pass", DB: 2}
	snap, err := p.Probe(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Missing) > 0 {
		t.Fatalf("missing parts %q: the probe did not get everything", snap.Missing)
	}
	got := rec.Names("prober")
	want := handlers.CommandNames(probe.Commands, probe.ConnectCommands)
	// AUTH alone is only for servers without HELLO.
	want = slices.DeleteFunc(want, func(s string) bool { return s == "auth" })
	if !slices.Equal(got, want) {
		t.Errorf("the probe sent %q, it declares %q", got, want)
	}
	if other := rec.Names("default"); len(other) > 0 {
		t.Errorf("sent before logging in: %q", other)
	}
}

// TestProbeReadsLazyfree: the settings the big-keys evidence cites come
// with every probe, in the same round trip as the other settings.
func TestProbeReadsLazyfree(t *testing.T) {
	srv := redistest.StartT(t, "--lazyfree-lazy-user-del", "yes")
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	snap, err := p.Probe(context.Background(), instance(srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range lazyfree70 {
		if _, ok := snap.Config[k]; !ok {
			t.Errorf("%s not fetched: %v", k, snap.Config)
		}
	}
	if v := snap.Config["lazyfree-lazy-user-del"]; v != "yes" {
		t.Errorf("lazyfree-lazy-user-del = %q, want yes", v)
	}
}
