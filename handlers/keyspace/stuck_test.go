package keyspace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/keyspace/scantest"
	"github.com/redisbot/redisbot/handlers/probe"
)

// A SCAN that never comes back to cursor 0 ends the node's scan with a
// partial report that says why, throttled or --fast, long before any limit.
func TestScanStuck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		opts      scantest.Options
		reason    string
		scanned   int64
		maxScans  int64
		minWalked int64
	}{
		{"cursor cycle", scantest.Options{Mode: scantest.Cycle, Keys: 30},
			"SCAN cursor repeated after 4 pages; the server or proxy does not implement SCAN correctly", 30, 4, 0},
		{"same keys", scantest.Options{Mode: scantest.SameKeys, Keys: 10},
			"SCAN returned only keys it had already returned, 100 pages in a row; the server or proxy does not implement SCAN correctly", 10, 101, 0},
		{"endless", scantest.Options{Mode: scantest.Endless, Keys: 10},
			"more than 10 times the 10 keys the server reports; the server or proxy does not implement SCAN correctly", 10_110, 1011, walkFactor*10 + walkSlack},
	} {
		for _, fast := range []bool{false, true} {
			srv := scantest.Start(t, tc.opts)
			opts := options()
			opts.Fast = fast
			start := time.Now()
			scan, err := New(testTimeout).Scan(context.Background(), standalone(srv.Addr), opts)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%s, fast=%v: %v", tc.name, fast, err)
			}
			if scan.Complete || !strings.Contains(scan.Stopped, tc.reason) || scan.Scanned != tc.scanned || scan.Total.Keys != tc.scanned {
				t.Errorf("%s, fast=%v: complete %v, stopped %q, scanned %d, measured %d; want a sample of %d keys stopped with %q",
					tc.name, fast, scan.Complete, scan.Stopped, scan.Scanned, scan.Total.Keys, tc.scanned, tc.reason)
			}
			if got := srv.Scans(); got != tc.maxScans {
				t.Errorf("%s, fast=%v: %d SCANs, want %d", tc.name, fast, got, tc.maxScans)
			}
			if took > 5*time.Second {
				t.Errorf("%s, fast=%v: took %s", tc.name, fast, took)
			}
			rep := handlers.KeyReport{KeyScan: *scan}
			if sum := rep.Summary(); !strings.Contains(sum, "a SAMPLE: stopped early (") || !strings.Contains(sum, tc.reason) {
				t.Errorf("%s, fast=%v: summary %q", tc.name, fast, sum)
			}
		}
	}
}

// MaxDuration ends a scan that SCAN keeps going, slowly, with the keys seen
// so far, within about one round trip of the bound.
func TestScanMaxDuration(t *testing.T) {
	t.Parallel()
	srv := scantest.Start(t, scantest.Options{Mode: scantest.Endless, Keys: 1_000_000, Delay: 50 * time.Millisecond})
	s := New(testTimeout)
	s.MaxDuration = 400 * time.Millisecond
	start := time.Now()
	scan, err := s.Scan(context.Background(), standalone(srv.Addr), options())
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if scan.Complete || scan.Stopped != "deadline" || scan.Scanned == 0 || scan.Estimate != 1_000_000 || len(scan.NodeErrors) > 0 {
		t.Errorf("complete %v, stopped %q, scanned %d, estimate %d, node errors %v", scan.Complete, scan.Stopped, scan.Scanned, scan.Estimate, scan.NodeErrors)
	}
	if took < s.MaxDuration || took > s.MaxDuration+time.Second {
		t.Errorf("took %s with MaxDuration %s", took, s.MaxDuration)
	}
	rep := handlers.KeyReport{KeyScan: *scan}
	if sum := rep.Summary(); !strings.Contains(sum, "a SAMPLE: stopped early (time limit reached) after") {
		t.Errorf("summary %q", sum)
	}
}

// A panic on the SCAN goroutine, or on a --fast measuring worker, fails the
// node's scan with an error instead of the process.
func TestScanPanic(t *testing.T) {
	t.Parallel()
	srv := scantest.Start(t, scantest.Options{Mode: scantest.Endless, Keys: 1000})
	for _, tc := range []struct {
		step string
		fast bool
	}{{"scanned", false}, {"scanned", true}, {"measured", true}} {
		s := New(testTimeout)
		s.between = func(step string, _ []string) {
			if step == tc.step {
				panic("a reply with \x1b[2J in it")
			}
		}
		opts := options()
		opts.Fast = tc.fast
		scan, err := s.Scan(context.Background(), standalone(srv.Addr), opts)
		var pe *handlers.ProbeError
		_, panicked := handlers.AsPanic(err)
		if !errors.As(err, &pe) || pe.Class != handlers.ClassInternal || !panicked ||
			!strings.Contains(err.Error(), "internal error while scanning: panic: a panic with a value of type string") ||
			strings.Contains(err.Error(), "\x1b") {
			t.Errorf("panic at %s (fast=%v): scan %v, error %v", tc.step, tc.fast, scan, err)
		}
	}
}

func TestCursorCycle(t *testing.T) {
	// A cycle of lam cursors entered after mu others is found within
	// 2*max(mu, lam) + lam cursors, whatever their values.
	for _, tc := range []struct{ mu, lam int }{{0, 1}, {1, 2}, {0, 2}, {5, 3}, {100, 1}, {3, 1000}, {1000, 37}} {
		var c cursorCycle
		found := 0
		for i := range 10 * (tc.mu + tc.lam + 10) {
			cursor := uint64(1000 + i) // the tail
			if i >= tc.mu {
				cursor = uint64(1 + (i-tc.mu)%tc.lam) // the cycle
			}
			if c.repeats(cursor) {
				found = i + 1
				break
			}
		}
		if found == 0 || found > 2*max(tc.mu, tc.lam)+tc.lam {
			t.Errorf("mu %d, lam %d: found after %d cursors", tc.mu, tc.lam, found)
		}
	}
	// Redis' own cursors never repeat.
	var c cursorCycle
	for i := range uint64(100_000) {
		if c.repeats(i*2654435761 + 1) {
			t.Fatalf("a cycle in distinct cursors at %d", i)
		}
	}
}

// The keys verb reports a scan that panicked as an internal failure, and
// hands the panic, with its stack, to the service's panic handler once.
func TestKeysReportsScanPanic(t *testing.T) {
	t.Parallel()
	srv := scantest.Start(t, scantest.Options{Mode: scantest.Endless, Keys: 1000})
	p := probe.New(testTimeout, nil)
	defer p.Close()
	svc := handlers.NewService(standalone(srv.Addr), p, nil, 4, nil)
	s := New(testTimeout)
	s.between = func(string, []string) { panic("boom") }
	svc.SetKeyScanner(s)
	var heard []string
	svc.OnPanic(func(_ context.Context, where, instance string, pe *handlers.PanicError) {
		heard = append(heard, where+" "+instance+" "+fmt.Sprint(len(pe.Stack) > 0))
	})
	r, err := svc.Keys(context.Background(), "cache-1", options())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Failed() || r.Error.Class != handlers.ClassInternal || len(heard) != 1 || heard[0] != "keyscan cache-1 true" {
		t.Errorf("report error %+v, panics heard %q", r.Error, heard)
	}
}
