package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/topology"
	"github.com/redisbot/redisbot/handlers/topology/topotest"
)

// keys <entry> on a Sentinel entry scans the entry's current master, as
// the sentinels name it when the command runs: before a failover the
// first master, after it the promoted replica. With every sentinel down
// it says why the members are unknown, not that the name is unknown.
func TestCLIKeysSentinelEntry(t *testing.T) {
	primary := topotest.StartPrimaryT(t)
	c := primary.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fill(ctx, c, "session:", 500, 64, 0); err != nil {
		t.Fatal(err)
	}
	replica := topotest.StartReplicaT(t, primary)
	sentinel := topotest.StartSentinelT(t, "mymaster", primary.Addr)
	sentinel.WaitReplicas(t, "mymaster", 1)
	cfg := writeConfig(t, "instances:\n"+sentinelYAML("sessions", "mymaster", []string{sentinel.Addr}))

	scanned := func(wantAddr string) {
		t.Helper()
		res := runCLI(t, nil, "keys", "sessions", "--config", cfg, "--json")
		var rep struct {
			Instance string `json:"instance"`
			Addr     string `json:"addr"`
			Keys     *struct {
				Complete bool  `json:"complete"`
				Scanned  int64 `json:"scanned"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("exit %d, JSON: %v\nstdout:\n%s\nstderr:\n%s", res.code, err, res.stdout, res.stderr)
		}
		if rep.Instance != "sessions" || rep.Addr != wantAddr || rep.Keys == nil || !rep.Keys.Complete || rep.Keys.Scanned != 500 {
			t.Fatalf("keys sessions = %+v (keys %+v), want a complete scan of 500 keys on %s\nstderr:\n%s", rep, rep.Keys, wantAddr, res.stderr)
		}
	}
	scanned(primary.Addr)

	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr, Protocol: 2})
	defer sc.Close()
	if err := sc.Failover(ctx, "mymaster").Err(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, topotest.Timeout)
	defer cancel()
	if err := topotest.Wait(wctx, func() error {
		addr, err := topology.MasterAddr(wctx, sc, "mymaster")
		if err == nil && addr != replica.Addr {
			err = errors.New("master still " + addr)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	topotest.WaitCaughtUpT(t, replica.Addr)
	scanned(replica.Addr)

	sentinel.Stop()
	res := runCLI(t, nil, "keys", "sessions", "--config", cfg)
	if strings.Contains(res.stdout+res.stderr, "unknown instance") || !strings.Contains(res.stdout+res.stderr, "no sentinel answered") {
		t.Errorf("with the sentinel down: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
}
