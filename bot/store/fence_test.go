package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// fencedStores opens a bbolt and a Redis store that report fenced writes
// to the returned recorder.
func fencedStores(t *testing.T) (stores map[string]*Store, heard func() []string) {
	t.Helper()
	var (
		mu  sync.Mutex
		ops []string
	)
	onFenced := func(op string) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op)
	}
	ctx := context.Background()
	bs, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "redisbot.db"), OnFenced: onFenced})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	srv := redistest.StartT(t)
	rs, err := Open(ctx, Options{RedisURL: "redis://" + srv.Addr + "/0", OnFenced: onFenced})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	return map[string]*Store{"bbolt": bs, "redis": rs}, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ops)
	}
}

// A leader's writes carry its fence: once another holder took the lease,
// every kind of write the leader's work makes (alerts, history, facts,
// the fleet sweep stamp, Once markers, deletes) is refused with ErrFenced
// and changes nothing, and the refusal is reported.
func TestFencedWritesRefusedAfterTakeover(t *testing.T) {
	stores, heard := fencedStores(t)
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			const ttl = 200 * time.Millisecond
			old, ok, err := s.AcquireLease(ctx, "scheduler", "r1", ttl)
			if err != nil || !ok {
				t.Fatalf("acquire: %v %v", ok, err)
			}
			stale := s.WithFence(ctx, Fence{Lease: "scheduler", Token: old.Token})
			// While r1 leads, its fenced writes go through.
			if err := s.PutAlert(stale, Alert{Alert: alerts.Alert{Instance: "cache-1", Finding: "frag-high", State: alerts.StatePending}}); err != nil {
				t.Fatalf("leader's own write: %v", err)
			}
			if err := CheckFence(stale); err != nil {
				t.Fatalf("CheckFence while leading: %v", err)
			}

			// r1 pauses past its lease; r2 takes it.
			time.Sleep(ttl + 50*time.Millisecond)
			if err := CheckFence(stale); !errors.Is(err, ErrFenced) {
				t.Errorf("CheckFence of an expired lease = %v, want ErrFenced", err)
			}
			// Expired but nobody took it: no newer token, the write is no
			// one else's business.
			if err := s.SetFact(stale, "cache-1", "k", "v"); err != nil {
				t.Errorf("write after expiry, before any takeover: %v", err)
			}
			cur, ok, err := s.AcquireLease(ctx, "scheduler", "r2", time.Minute)
			if err != nil || !ok || cur.Token <= old.Token {
				t.Fatalf("takeover: %+v %v %v", cur, ok, err)
			}
			before := len(heard())
			writes := map[string]func(context.Context) error{
				"put alert": func(ctx context.Context) error {
					return s.PutAlert(ctx, Alert{Alert: alerts.Alert{Instance: "cache-1", Finding: "frag-high", State: alerts.StateFiring}})
				},
				"delete alert": func(ctx context.Context) error { return s.DeleteAlert(ctx, "cache-1", "frag-high") },
				"set fact":     func(ctx context.Context) error { return s.SetFact(ctx, "cache-1", "k", "stale") },
				"fleet sweep":  func(ctx context.Context) error { return s.RecordFleetSweep(ctx, time.Now(), "r1") },
				"once": func(ctx context.Context) error {
					_, err := s.Once(ctx, "stale-marker", time.Minute)
					return err
				},
				"record sweep": func(ctx context.Context) error {
					return s.RecordSweep(ctx, []SweepRecord{{Instance: "cache-1", Snapshot: &handlers.Snapshot{Instance: "cache-1", ProbedAt: time.Now(), Info: handlers.Info{"used_memory": "1"}}, Point: handlers.Point{At: time.Now(), UsedMemory: 1}}})
				},
			}
			for what, write := range writes {
				if err := write(stale); !errors.Is(err, ErrFenced) || errors.Is(err, ErrUnavailable) {
					t.Errorf("%s with a stale token: %v, want ErrFenced (and not 'unavailable')", what, err)
				}
			}
			if got := heard()[before:]; len(got) < len(writes) {
				t.Errorf("OnFenced heard %v for %d refused writes", got, len(writes))
			}
			// Nothing was written.
			if a, err := s.Alert(ctx, "cache-1", "frag-high"); err != nil || a.State != "pending" {
				t.Errorf("alert after refused writes: %+v %v, want the leader's pending one", a, err)
			}
			if f, _ := s.Facts(ctx, "cache-1"); f["k"] != "v" {
				t.Errorf("fact after a refused write: %q", f["k"])
			}
			if last, err := s.LastFleetSweep(ctx); err != nil || !last.At.IsZero() {
				t.Errorf("fleet sweep after a refused write: %+v %v", last, err)
			}
			if first, err := s.Once(ctx, "stale-marker", time.Minute); err != nil || !first {
				t.Errorf("the refused Once left a marker: first=%v err=%v", first, err)
			}
			if snap, ok := s.Last(ctx, "cache-1"); ok {
				t.Errorf("the refused sweep stored a snapshot: %+v", snap)
			}
			// The new holder's fenced writes go through.
			fresh := s.WithFence(ctx, Fence{Lease: "scheduler", Token: cur.Token})
			if err := s.PutAlert(fresh, Alert{Alert: alerts.Alert{Instance: "cache-1", Finding: "frag-high", State: alerts.StateFiring}}); err != nil {
				t.Errorf("new leader's write: %v", err)
			}
			if err := CheckFence(fresh); err != nil {
				t.Errorf("CheckFence of the new leader: %v", err)
			}
			// Renewals do not change the token, so they never refuse the
			// holder's own writes.
			if _, ok, err := s.AcquireLease(ctx, "scheduler", "r2", time.Minute); err != nil || !ok {
				t.Fatal(err)
			}
			if err := s.SetFact(fresh, "cache-1", "k", "new"); err != nil {
				t.Errorf("write after a renewal: %v", err)
			}
		})
	}
}

// A Redis store that restarts empty (no persistence) must not hand out a
// token a stale leader still holds: the counter restarts from the clock,
// and the stale token's writes are refused even before anyone leads again.
func TestTokensGrowAcrossAnEmptiedStore(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := context.Background()
	s, err := Open(ctx, Options{RedisURL: "redis://" + srv.Addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var tokens []int64
	for i := range 3 {
		l, ok, err := s.AcquireLease(ctx, "scheduler", "r"+string(rune('1'+i)), time.Minute)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		tokens = append(tokens, l.Token)
		if err := s.ReleaseLease(ctx, "scheduler", l.Holder); err != nil {
			t.Fatal(err)
		}
	}
	if tokens[1] != tokens[0]+1 || tokens[2] != tokens[1]+1 {
		t.Errorf("tokens %v do not count up by one", tokens)
	}
	if start := time.UnixMicro(tokens[0]); time.Since(start) > time.Minute || time.Since(start) < 0 {
		t.Errorf("first token %d is not the clock in microseconds (%v)", tokens[0], start)
	}
	stale := s.WithFence(ctx, Fence{Lease: "scheduler", Token: tokens[2]})

	c := srv.Client()
	defer c.Close()
	if err := c.FlushAll(ctx).Err(); err != nil { // what a restart without persistence leaves
		t.Fatal(err)
	}
	if err := s.PutAlert(stale, Alert{Alert: alerts.Alert{Instance: "cache-1", Finding: "frag-high"}}); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "restarted empty") {
		t.Errorf("stale write to an emptied store: %v", err)
	}
	l, ok, err := s.AcquireLease(ctx, "scheduler", "r9", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if l.Token <= tokens[2] {
		t.Errorf("token after the store emptied: %d, not above the stale %d", l.Token, tokens[2])
	}
	if err := s.PutAlert(stale, Alert{Alert: alerts.Alert{Instance: "cache-1", Finding: "frag-high"}}); !errors.Is(err, ErrFenced) {
		t.Errorf("stale write after a new leader: %v", err)
	}
	if err := CheckFence(stale); !errors.Is(err, ErrFenced) {
		t.Errorf("CheckFence of the stale token: %v", err)
	}
}

// A store that does not answer is ErrUnavailable, never ErrNotFound, so
// nothing tells a user their approval is gone; answers stay answers.
func TestUnavailableIsNotNotFound(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := context.Background()
	s, err := Open(ctx, Options{RedisURL: "redis://" + srv.Addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateApproval(ctx, newApproval("apr-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approval(ctx, "apr-missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Errorf("missing approval: %v", err)
	}
	if _, err := s.UpdateApproval(ctx, "apr-1", func(*Approval) error { return errNotPending }); !errors.Is(err, errNotPending) || errors.Is(err, ErrUnavailable) {
		t.Errorf("refusal of the update function: %v", err)
	}
	if err := s.CreateApproval(ctx, newApproval("apr-1", time.Now())); !errors.Is(err, ErrExists) || errors.Is(err, ErrUnavailable) {
		t.Errorf("duplicate approval: %v", err)
	}

	srv.Stop()
	checks := map[string]error{}
	_, checks["get"] = s.Approval(ctx, "apr-1")
	_, checks["update"] = s.UpdateApproval(ctx, "apr-1", func(*Approval) error { return nil })
	_, checks["list"] = s.Approvals(ctx, "pending")
	_, checks["once"] = s.Once(ctx, "envelope/1", time.Minute)
	checks["put"] = s.PutAlert(ctx, Alert{Alert: alerts.Alert{Instance: "cache-1", Finding: "frag-high"}})
	_, _, checks["lease"] = s.AcquireLease(ctx, "scheduler", "r1", time.Minute)
	for op, err := range checks {
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s on a stopped server: %v, want ErrUnavailable", op, err)
		}
	}
}

func TestDurability(t *testing.T) {
	ctx := context.Background()
	bs, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "redisbot.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if d, err := bs.Durability(ctx); err != nil || !d.Known || !d.Persistent() {
		t.Errorf("bbolt durability: %+v %v", d, err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		persistent bool
		aof        bool
	}{
		{"nothing", nil, false, false},
		{"aof", []string{"--appendonly", "yes"}, true, true},
		{"rdb", []string{"--save", "3600 1"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.StartT(t, tc.args...)
			s, err := Open(ctx, Options{RedisURL: "redis://" + srv.Addr + "/0"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d, err := s.Durability(ctx)
			if err != nil || !d.Known || d.Persistent() != tc.persistent || d.AOF != tc.aof {
				t.Errorf("durability = %+v, %v; want persistent=%v aof=%v", d, err, tc.persistent, tc.aof)
			}
		})
	}
	t.Run("config denied", func(t *testing.T) {
		srv := redistest.StartT(t)
		c := srv.Client()
		defer c.Close()
		if err := c.Do(ctx, "ACL", "SETUSER", "bot", "on", ">pw", "~*", "+@all", "-config").Err(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, Options{RedisURL: "redis://bot:pw@" + srv.Addr + "/0"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if d, err := s.Durability(ctx); err != nil || d.Known {
			t.Errorf("durability without CONFIG: %+v %v, want unknown", d, err)
		}
	})
}

func TestLastFleetSweep(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if last, err := f.s.LastFleetSweep(ctx); err != nil || !last.At.IsZero() {
			t.Fatalf("before any sweep: %+v %v", last, err)
		}
		at := time.Date(2026, 11, 21, 9, 0, 0, 123, time.UTC)
		if err := f.s.RecordFleetSweep(ctx, at, "host/42/ab"); err != nil {
			t.Fatal(err)
		}
		if last, err := f.s.LastFleetSweep(ctx); err != nil || !last.At.Equal(at) || last.By != "host/42/ab" {
			t.Errorf("last sweep: %+v %v", last, err)
		}
	})
}
