package store_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// writesFleet is the fleet of the store-writes benchmark (issue 18: at most
// 2 MB of disk writes per sweep per 1,000 instances).
const writesFleet = 1000

// BenchmarkStoreWritesPerSweep measures what one sweep of 1,000 instances
// writes to a bbolt store: every instance's snapshot and history sample, as
// the sweep records them, one sweep a minute by an injected clock. The
// snapshot is a real probe's (of resptest's captured Redis 7.0 INFO, with
// CONFIG GET and MEMORY STATS), and every sweep moves what a live server
// moves (uptime, memory, counters), so no two snapshots are equal.
//
// The file first gets 12 hours of history, a minute apart, for every
// instance (an instance's blocks then fill pages of their own, as in a
// store that has run for a while); then a first sweep and an hour of
// sweeps, not measured, so each measured sweep is steady state. Bytes come from /proc/self/io: write_bytes is what the kernel
// sends to the disk for this process (page cache dirtied), wchar what it
// passed to write(2) and friends. scripts/bench-store-writes.sh runs it
// beside the code before the change.
func BenchmarkStoreWritesPerSweep(b *testing.B) {
	srv, err := resptest.Start(resptest.Healthy, "", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	p := probe.New(5*time.Second, nil)
	defer p.Close()
	snap, err := p.Probe(context.Background(), handlers.Instance{Name: "template", Addr: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}

	clock := time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)
	path := filepath.Join(b.TempDir(), "writes.db")
	st, err := store.Open(context.Background(), store.Options{Path: path, Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	sweepNo := 0
	sweep := func() {
		sweepNo++
		records := make([]store.SweepRecord, writesFleet)
		for i := range records {
			records[i] = benchRecord(liveSnapshot(snap, i, sweepNo, clock))
		}
		if err := recordSweep(st, records); err != nil {
			b.Fatal(err)
		}
		clock = clock.Add(time.Minute)
	}
	const prefill = 12 * 60
	for i := range writesFleet {
		records := make([]store.SweepRecord, prefill)
		for j := range records {
			r := benchRecord(liveSnapshot(snap, i, j-prefill, clock.Add(time.Duration(j-prefill)*time.Minute)))
			r.Snapshot = nil
			records[j] = r
		}
		if err := st.RecordSweep(context.Background(), records); err != nil {
			b.Fatal(err)
		}
	}
	sweep()
	// An hour of history and the first hour's page splits behind it.
	for range 60 {
		sweep()
	}

	b.ResetTimer()
	start := readIO(b)
	for range b.N {
		sweep()
	}
	b.StopTimer()
	d := readIO(b).sub(start)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	n := float64(b.N)
	b.ReportMetric(float64(d.writeBytes)/n/1e6, "disk-MB/sweep")
	b.ReportMetric(float64(d.wchar)/n/1e6, "written-MB/sweep")
	b.ReportMetric(float64(fi.Size())/1e6, "file-MB")
}

// liveSnapshot is template as instance i shows it in sweep k: its own
// name and probe time, and the numbers a live server moves between two
// probes a minute apart.
func liveSnapshot(template *handlers.Snapshot, i, k int, at time.Time) *handlers.Snapshot {
	s := *template
	s.Instance = fmt.Sprintf("cache-%04d", i)
	s.ProbedAt = at
	s.Info = maps.Clone(template.Info)
	bump := func(key string, by int64) {
		v, _ := strconv.ParseInt(s.Info[key], 10, 64)
		s.Info[key] = strconv.FormatInt(v+by, 10)
	}
	bump("uptime_in_seconds", int64(60*k))
	bump("used_memory", int64((k*7919+i*104729)%(1<<20)))
	bump("used_memory_rss", int64((k*7907+i*104723)%(1<<20)))
	bump("total_commands_processed", int64(k*1000+i))
	bump("total_net_input_bytes", int64(k*52000+i))
	bump("total_net_output_bytes", int64(k*61000+i))
	bump("keyspace_hits", int64(k*400+i))
	bump("keyspace_misses", int64(k*35+i))
	bump("instantaneous_ops_per_sec", int64(k%13))
	return &s
}

// ioCounters are /proc/self/io's write counters.
type ioCounters struct{ wchar, writeBytes int64 }

func (a ioCounters) sub(b ioCounters) ioCounters {
	return ioCounters{a.wchar - b.wchar, a.writeBytes - b.writeBytes}
}

func readIO(b *testing.B) ioCounters {
	b.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Skipf("no /proc/self/io on this system: %v", err)
	}
	defer f.Close()
	var c ioCounters
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, _ := strings.Cut(sc.Text(), ": ")
		n, _ := strconv.ParseInt(val, 10, 64)
		switch name {
		case "wchar":
			c.wchar = n
		case "write_bytes":
			c.writeBytes = n
		}
	}
	return c
}
