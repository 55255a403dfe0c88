package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestOpenRedisHidesPassword: whatever goes wrong, the error names the
// server but never the password, even when the URL does not parse.
func TestOpenRedisHidesPassword(t *testing.T) {
	srv := redistest.StartT(t, "--requirepass", "right-horse-battery")
	host := srv.Addr
	const secret = "s3cret-staple"
	for _, tc := range []struct {
		name, url, want string
	}{
		{"wrong password", "redis://bot:" + secret + "@" + host + "/0", host},
		{"refused", "redis://bot:" + secret + "@127.0.0.1:1/0", "127.0.0.1:1"},
		{"bad escape", "redis://bot:" + secret + "%zz@" + host + "/0", "invalid redis URL (not shown"},
		{"bad db", "redis://bot:" + secret + "@" + host + "/zero", "bot:xxxxx@" + host + "/zero: redis: invalid database number"},
		{"bad scheme", "http://bot:" + secret + "@" + host + "/0", "invalid URL scheme: http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := Open(ctx, Options{RedisURL: tc.url})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the password: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}

	s, err := Open(context.Background(), Options{RedisURL: "redis://:right-horse-battery@" + host + "/3"})
	if err != nil {
		t.Fatalf("Open with the right password: %v", err)
	}
	defer s.Close()
	if s.Backend() != "redis" {
		t.Errorf("Backend() = %q", s.Backend())
	}
	if ok, err := s.Once(context.Background(), "k", time.Minute); err != nil || !ok {
		t.Errorf("Once on database 3 = %v, %v", ok, err)
	}
	keys, err := s.raw.(*redisBackend).c.Keys(context.Background(), "redisbot:once:*").Result()
	if err != nil || len(keys) != 1 {
		t.Errorf("keys under the default prefix = %v, %v", keys, err)
	}
}

// TestBoltReopen: what one run wrote, the next run reads.
func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "redisbot.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if s.Backend() != "bbolt" {
		t.Errorf("Backend() = %q", s.Backend())
	}
	if err := s.CreateApproval(ctx, newApproval("keep", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Approval(ctx, "keep"); err != nil {
		t.Errorf("after reopening: %v", err)
	}
}

// TestBoltSweep: Prune removes expired Once markers and leases from the
// file, not only from view, while lease tokens keep counting.
func TestBoltSweep(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "redisbot.db"), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Once(ctx, "env-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Once(ctx, "env-2", time.Hour); err != nil {
		t.Fatal(err)
	}
	first, _, err := s.AcquireLease(ctx, "cron", "r1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(bucketName string) int {
		n := 0
		_ = s.raw.(*boltBackend).db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket([]byte(bucketName)).Stats().KeyN
			return nil
		})
		return n
	}
	if n := count(kindOnce); n != 1 {
		t.Errorf("%d Once markers left, want 1 (the unexpired one)", n)
	}
	if n := count(bucketLeases); n != 0 {
		t.Errorf("%d leases left, want 0", n)
	}
	next, ok, err := s.AcquireLease(ctx, "cron", "r2", time.Minute)
	if err != nil || !ok || next.Token <= first.Token {
		t.Errorf("lease after the sweep = %+v, %v, %v; want a token above %d", next, ok, err, first.Token)
	}
}
