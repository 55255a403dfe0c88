package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers/redistest"
)

// clock is the injected clock. It starts at the real time so TTLs that
// Redis measures on its own clock stay meaningful.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Round(0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is one backend under the contract tests.
type fixture struct {
	name  string
	s     *Store
	clock *clock
	// serverClock: the backend expires Once markers and leases on the
	// server's clock (Redis), so elapse must really wait.
	serverClock bool
	// replica opens another Store on the same state, as a second bot
	// replica would; nil for bbolt, which one process owns.
	replica func(t *testing.T) *Store
}

// elapse lets d pass for everything the store measures time with.
func (f *fixture) elapse(d time.Duration) {
	f.clock.Advance(d)
	if f.serverClock {
		time.Sleep(d)
	}
}

// backends returns a bbolt store in t.TempDir() and a Redis store on a
// fresh redis-server, each with its own injected clock.
func backends(t *testing.T) []*fixture {
	t.Helper()
	ctx := context.Background()

	boltClock := newClock()
	bs, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "redisbot.db"), Now: boltClock.Now})
	if err != nil {
		t.Fatalf("open bbolt: %v", err)
	}
	t.Cleanup(func() { _ = bs.Close() })

	srv := redistest.StartT(t)
	redisClock := newClock()
	url := "redis://" + srv.Addr + "/0"
	openRedis := func(t *testing.T) *Store {
		t.Helper()
		rs, err := Open(ctx, Options{RedisURL: url, Now: redisClock.Now})
		if err != nil {
			t.Fatalf("open redis: %v", err)
		}
		t.Cleanup(func() { _ = rs.Close() })
		return rs
	}
	return []*fixture{
		{name: "bbolt", s: bs, clock: boltClock},
		{name: "redis", s: openRedis(t), clock: redisClock, serverClock: true, replica: openRedis},
	}
}

// contract runs fn against every backend as subtests.
func contract(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	for _, f := range backends(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			fn(t, f)
		})
	}
}

// sameJSON compares through JSON, which is what the store keeps: times
// lose their monotonic reading, maps compare by content.
func sameJSON(t *testing.T, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("got\n  %s\nwant\n  %s", g, w)
	}
}
