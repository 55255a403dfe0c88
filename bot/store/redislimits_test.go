package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/resplimit"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// TestRedisStoreFitsItsLimits: the largest values the store reads pass
// storeLimits on a real server: a record bigger than any snapshot the
// probe's limits let through, and a full listing page of records.
func TestRedisStoreFitsItsLimits(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := context.Background()
	r, err := openRedis(ctx, "redis://"+srv.Addr+"/0", "limits:")
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()

	big := bytes.Repeat([]byte("i"), 20<<20)
	if err := r.put(ctx, kindSnapshots, "big", big, 0); err != nil {
		t.Fatal(err)
	}
	got, err := r.get(ctx, kindSnapshots, "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("GET of a 20 MiB record: %d bytes, %v", len(got), err)
	}

	record := bytes.Repeat([]byte("a"), 4<<10)
	for i := range 2 * listPage {
		if err := r.put(ctx, kindAudit, fmt.Sprintf("%06d", i), record, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err = r.list(ctx, kindAudit, span{}, func(string, []byte) bool { n++; return true })
	if err != nil || n != 2*listPage {
		t.Errorf("listing %d records of 4 KiB: %d, %v", 2*listPage, n, err)
	}
}

// TestRedisStoreRefusesHostileReplies: a store URL that points at a
// server answering with hostile lengths gets errors, never a crash.
func TestRedisStoreRefusesHostileReplies(t *testing.T) {
	ctx := context.Background()
	for _, h := range resptest.Hostilities {
		t.Run(h.String(), func(t *testing.T) {
			srv, err := resptest.StartHostile(h) // PING, for Open, is answered
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			r, err := openRedis(ctx, "redis://"+srv.Addr+"/0", "hostile:")
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			_, err = r.get(ctx, kindSnapshots, "cache-1")
			if err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("GET from a %s server: %v, want an error", h, err)
			}
			// GET reads a string: go-redis refuses DeepNesting's first
			// "*1" line itself; the limits stop every other answer (the
			// store's aggregate limit is below Amplify's million).
			limited := errors.Is(err, resplimit.ErrLimit) || errors.Is(err, resplimit.ErrProtocol)
			if want := h != resptest.DeepNesting; limited != want {
				t.Errorf("GET from a %s server: %v; a resplimit error: %v, want %v", h, err, limited, want)
			}
		})
	}
}
