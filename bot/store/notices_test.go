package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNotices(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const key, stale, ttl = "am/fp1/2026-12-07T16:00:00Z/firing", time.Minute, time.Hour

		// Racing replicas: one claim wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ok, err := f.s.ClaimNotice(ctx, key, stale, ttl); err != nil {
					t.Error(err)
				} else if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d racing claims won, want 1", wins.Load())
		}

		// A claimer that died mid-post is taken over once its claim is stale.
		f.clock.Advance(2 * stale)
		if ok, err := f.s.ClaimNotice(ctx, key, stale, ttl); err != nil || !ok {
			t.Fatalf("stale claim not taken over: %v, %v", ok, err)
		}
		posted := Notice{Key: key, State: NoticePosted, ClaimedAt: f.clock.Now(), Channel: "C1", MessageTS: "1.000001", Fields: map[string]string{"alertname": "RedisMaxmemoryNear"}}
		if err := f.s.PutNotice(ctx, posted, ttl); err != nil {
			t.Fatal(err)
		}
		// Posted is final, however old.
		f.clock.Advance(10 * stale)
		if ok, err := f.s.ClaimNotice(ctx, key, stale, ttl); err != nil || ok {
			t.Fatalf("posted notice claimed again: %v, %v", ok, err)
		}
		got, err := f.s.Notice(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		posted.Schema = SchemaVersion
		sameJSON(t, got, posted)

		// A failed post gives its claim up at once.
		const other = "am/fp2/2026-12-07T16:00:00Z/firing"
		if ok, _ := f.s.ClaimNotice(ctx, other, stale, ttl); !ok {
			t.Fatal("fresh key not claimed")
		}
		if err := f.s.DeleteNotice(ctx, other); err != nil {
			t.Fatal(err)
		}
		if ok, _ := f.s.ClaimNotice(ctx, other, stale, ttl); !ok {
			t.Fatal("given-up claim not claimable")
		}
		if _, err := f.s.Notice(ctx, "am/none"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing notice: %v, want ErrNotFound", err)
		}
		if _, err := f.s.ClaimNotice(ctx, "a\x00b", stale, ttl); err == nil {
			t.Error("key with NUL accepted")
		}

		// Notices expire with their ttl.
		if err := f.s.PutNotice(ctx, Notice{Key: "am/short", State: NoticePosted}, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		f.elapse(3 * time.Second)
		if _, err := f.s.Notice(ctx, "am/short"); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired notice: %v, want ErrNotFound", err)
		}
	})
}
