package keyspace

import (
	"context"
	"slices"
	"testing"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestScanSendsOnlyItsCommands scans a key space of every type on a real
// redis-server through a proxy that records every command, throttled and
// fast: what was sent must be exactly what Commands declares (with the
// connection's HELLO), since check-config tests the diagnosis user's
// permissions from that list.
func TestScanSendsOnlyItsCommands(t *testing.T) {
	t.Parallel()
	srv, _, want := mixedServer(t)
	rec := redistest.Record(t, srv.Addr)
	declared := handlers.CommandNames(Commands, probe.ConnectCommands)
	for _, fast := range []bool{false, true} {
		rec.Reset()
		opts := options()
		opts.Fast = fast
		scan, err := New(testTimeout).Scan(context.Background(), standalone(rec.Addr), opts)
		if err != nil || scan.Total.Keys != want {
			t.Fatalf("fast=%v: %v keys, %v", fast, scan.Total.Keys, err)
		}
		got := rec.Names("default")
		if extra := notIn(got, declared); len(extra) > 0 {
			t.Errorf("fast=%v: sent %q, which Commands does not declare", fast, extra)
		}
		// Every declared command is used on a key space of every type:
		// none is declared (and so required by check-config) for nothing.
		if unused := notIn(declared, got); !slices.Equal(unused, []string{"auth", "select"}) {
			t.Errorf("fast=%v: declared but not sent: %q (sent %q)", fast, unused, got)
		}
	}
}

// notIn is what a holds that b does not.
func notIn(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
