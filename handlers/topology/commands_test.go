package topology

import (
	"context"
	"slices"
	"testing"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/topology/topotest"
)

// TestExpandSendsOnlyItsCommands expands a cluster seed and a Sentinel
// entry reached through a proxy that records every command: each sends
// only what ClusterCommands and SentinelCommands declare.
func TestExpandSendsOnlyItsCommands(t *testing.T) {
	t.Parallel()
	cl := topotest.StartClusterT(t, 2, 0)
	seed := redistest.Record(t, cl.Primaries[0].Addr)
	primary := topotest.StartPrimaryT(t)
	sentinel := topotest.StartSentinelT(t, "mymaster", primary.Addr)
	sent := redistest.Record(t, sentinel.Addr)
	entries := []handlers.Instance{
		{Name: "orders", Addr: seed.Addr, Cluster: true},
		{Name: "sessions", Sentinel: &handlers.Sentinel{Master: "mymaster", Addrs: []string{sent.Addr}}},
	}
	if got, errs := Expand(context.Background(), entries, timeout); len(errs) != 0 || len(got) != 3 {
		t.Fatalf("Expand = %v, %v", got, errs)
	}
	for _, tc := range []struct {
		rec      *redistest.Recorder
		declared []handlers.RedisCommand
	}{{seed, ClusterCommands}, {sent, SentinelCommands}} {
		declared := handlers.CommandNames(tc.declared, probe.ConnectCommands)
		got := tc.rec.Names("default")
		if len(got) == 0 {
			t.Errorf("nothing recorded (declared %q)", declared)
		}
		for _, name := range got {
			if !slices.Contains(declared, name) {
				t.Errorf("sent %s, which is not declared (%q)", name, declared)
			}
		}
	}
}
