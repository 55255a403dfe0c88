package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// Failed operations reach OnError by name; a missing key and a refusal
// from the caller's own update function do not.
func TestOnErrorCountsStoreFailures(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var ops []string
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "redisbot.db"), OnError: func(op string) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approval(ctx, "0123456789ab"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing approval: %v", err)
	}
	if err := s.CreateApproval(ctx, Approval{ID: "0123456789ab", Instance: "cache-1", State: "pending", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	refusal := errors.New("already decided")
	if _, err := s.UpdateApproval(ctx, "0123456789ab", func(*Approval) error { return refusal }); !errors.Is(err, refusal) {
		t.Fatalf("refused update: %v", err)
	}
	if len(ops) != 0 {
		t.Fatalf("errors counted before any failure: %v", ops)
	}

	// A closed file fails every operation.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFact(ctx, "cache-1", "k", "v"); err == nil {
		t.Fatal("SetFact on a closed store succeeded")
	}
	if _, err := s.Facts(ctx, "cache-1"); err == nil {
		t.Fatal("Facts on a closed store succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(ops, "update_facts") || !slices.Contains(ops, "get_facts") {
		t.Errorf("ops = %v, want update_facts and get_facts", ops)
	}
}
