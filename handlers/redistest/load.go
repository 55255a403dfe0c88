package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const batch = 10000

// Fragment reproduces allocator fragmentation: it writes n small strings with
// SETRANGE key 150 "a" (151-byte values share jemalloc's 160-byte bin), then
// deletes every second key so each page keeps half its slots in use and
// jemalloc cannot return it. With n = 500,000 on Redis 7.0 that leaves
// allocator_frag_ratio near 1.9 and mem_fragmentation_ratio near 2.
func Fragment(ctx context.Context, c *redis.Client, n int) error {
	if err := fill(ctx, c, n, func(p redis.Pipeliner, i int) {
		p.SetRange(ctx, "frag:"+strconv.Itoa(i), 150, "a")
	}); err != nil {
		return fmt.Errorf("fragment fill: %w", err)
	}
	if err := fill(ctx, c, n, func(p redis.Pipeliner, i int) {
		if i%2 == 0 {
			p.Del(ctx, "frag:"+strconv.Itoa(i))
		}
	}); err != nil {
		return fmt.Errorf("fragment delete: %w", err)
	}
	// Let jemalloc's background purge settle so the numbers are stable.
	time.Sleep(200 * time.Millisecond)
	return nil
}

// PostPeak fills n keys of size bytes and then flushes them: used_memory
// drops back, while RSS and used_memory_peak stay up.
func PostPeak(ctx context.Context, c *redis.Client, n, size int) error {
	value := strings.Repeat("p", size)
	if err := fill(ctx, c, n, func(p redis.Pipeliner, i int) {
		p.Set(ctx, "peak:"+strconv.Itoa(i), value, 0)
	}); err != nil {
		return fmt.Errorf("post-peak fill: %w", err)
	}
	if err := c.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("post-peak flush: %w", err)
	}
	return nil
}

// FillUntilOOM writes keys of size bytes (with ttl when > 0) until the server
// answers OOM, then makes a few more writes so errorstat_OOM counts them. It
// gives up after max keys.
func FillUntilOOM(ctx context.Context, c *redis.Client, size int, ttl time.Duration, max int) error {
	value := strings.Repeat("o", size)
	for i := 0; i < max; i += 1000 {
		p := c.Pipeline()
		for j := i; j < i+1000; j++ {
			p.Set(ctx, "oom:"+strconv.Itoa(j), value, ttl)
		}
		cmds, err := p.Exec(ctx)
		if err != nil && isOOM(err) {
			return nil
		}
		for _, cmd := range cmds {
			if isOOM(cmd.Err()) {
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("fill until OOM: %w", err)
		}
	}
	return errors.New("fill until OOM: no OOM error after max keys (is maxmemory set?)")
}

func isOOM(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "OOM ") }

// Fill writes n keys of size bytes, each with ttl when ttl > 0.
func Fill(ctx context.Context, c *redis.Client, prefix string, n, size int, ttl time.Duration) error {
	value := strings.Repeat("f", size)
	return fill(ctx, c, n, func(p redis.Pipeliner, i int) {
		p.Set(ctx, prefix+strconv.Itoa(i), value, ttl)
	})
}

func fill(ctx context.Context, c *redis.Client, n int, add func(redis.Pipeliner, int)) error {
	for start := 0; start < n; start += batch {
		p := c.Pipeline()
		for i := start; i < min(start+batch, n); i++ {
			add(p, i)
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the n keys Fill wrote with prefix.
func Delete(ctx context.Context, c *redis.Client, prefix string, n int) error {
	return fill(ctx, c, n, func(p redis.Pipeliner, i int) {
		p.Del(ctx, prefix+strconv.Itoa(i))
	})
}

// WaitQuiet waits until the server's instantaneous_ops_per_sec, a rolling
// sample over about 1.6 s, falls below maxOps after a bulk load.
func WaitQuiet(ctx context.Context, c *redis.Client, maxOps int64) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Info(ctx, "stats").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "instantaneous_ops_per_sec:"); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n < maxOps {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return errors.New("server did not quiet down within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
