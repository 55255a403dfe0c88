package handlers_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// A server answering garbage INFO, probed over the wire by the real prober
// and diagnosed by the real service: the report names every number it did
// not believe, shows none of them, and computes nothing from them.
func TestDiagnoseGarbageServer(t *testing.T) {
	garbage := map[string]string{
		"used_memory_rss":         "-9223372036854775808",
		"mem_fragmentation_ratio": "1" + strings.Repeat("0", 299) + ".5",
		"maxmemory":               "9223372036854775808",
		"used_memory_peak":        "NaN",
		"evicted_keys":            "-3",
	}
	text := resptest.DefaultInfo
	for field, value := range garbage {
		line := regexp.MustCompile(`(?m)^` + field + `:.*$`)
		if !line.MatchString(text) {
			t.Fatalf("the capture has no %s line", field)
		}
		text = line.ReplaceAllLiteralString(text, field+":"+value+"\r")
	}
	s, err := resptest.Start(resptest.Healthy, text, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	p := probe.New(2*time.Second, nil)
	t.Cleanup(func() { _ = p.Close() })
	inst := handlers.Instance{Name: "garbage-1", Addr: s.Addr, MemoryLimit: 1 << 30, Thresholds: handlers.DefaultThresholds()}
	svc := handlers.NewService([]handlers.Instance{inst}, p, nil, 1, nil)
	rep, err := svc.Diagnose(context.Background(), "garbage-1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatalf("probe failed: %+v", rep.Error)
	}

	missing := strings.Join(rep.Missing, "\n")
	for _, want := range []string{
		"INFO used_memory_rss: -9223372036854775808 is not a valid size (negative)",
		"INFO mem_fragmentation_ratio: 1000000000000000000000000000000… is not a valid ratio (too long for a number)",
		"INFO maxmemory: 9223372036854775808 is not a valid size (overflows a 64-bit integer)",
		// resptest answers CONFIG GET maxmemory with what INFO says.
		"CONFIG maxmemory: 9223372036854775808 is not a valid size (overflows a 64-bit integer)",
		"INFO used_memory_peak: NaN is not a valid size (not finite)",
		"INFO evicted_keys: -3 is not a valid count (negative)",
	} {
		if !strings.Contains(missing, want) {
			t.Errorf("report's unknown list lacks %q; it has:\n%s", want, missing)
		}
	}
	for _, name := range []string{"used_memory_rss", "used_memory_peak", "maxmemory", "maxmemory_usage", "evicted_keys"} {
		if m, ok := rep.Metric(name); ok {
			t.Errorf("metric %s = %s, from a value that cannot be true", name, m.Text)
		}
	}
	if m, ok := rep.Metric("used_memory"); !ok || m.Text != "58.1 MiB" {
		t.Errorf("used_memory = %+v: the believable numbers must stay", m)
	}
	negative := regexp.MustCompile(`-\d+(\.\d+)? (B|KiB|MiB|GiB|TiB|PiB|EiB)\b|EiB|PiB`)
	for _, f := range rep.Findings {
		texts := []string{f.Summary}
		for _, e := range f.Evidence {
			texts = append(texts, e.Text)
		}
		for _, text := range texts {
			if m := negative.FindString(text); m != "" {
				t.Errorf("%s shows %q: %s", f.ID, m, text)
			}
			for _, v := range garbage {
				if strings.Contains(text, v) {
					t.Errorf("%s quotes the garbage %q", f.ID, v)
				}
			}
		}
	}
	// The ratio is computed from the sizes the server did report right;
	// with RSS garbage too, there is none: no fragmentation finding.
	for _, f := range rep.Findings {
		if strings.HasPrefix(f.ID, "frag-") {
			t.Errorf("%s from a ratio nobody knows: %s", f.ID, f.Summary)
		}
	}
}

// A real redis-server with data, a peak and active defrag settings answers
// only believable numbers: validation adds no note to a healthy probe.
func TestRealServerIsBelievable(t *testing.T) {
	srv := redistest.StartT(t, "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru")
	c := srv.Client()
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	for i := range 2000 {
		if err := c.Set(ctx, "k:"+strconv.Itoa(i), strings.Repeat("v", 200), time.Duration(i%2)*time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Do(ctx, "FLUSHDB").Err(); err != nil { // a peak above what is left
		t.Fatal(err)
	}
	p := probe.New(2*time.Second, nil)
	t.Cleanup(func() { _ = p.Close() })
	snap, err := p.Probe(ctx, handlers.Instance{Name: "real-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()})
	if err != nil {
		t.Fatal(err)
	}
	for _, note := range snap.Missing {
		if strings.Contains(note, "is not a valid") {
			t.Errorf("a real server's number was not believed: %s", note)
		}
	}
	if len(snap.MemoryStats) == 0 || !snap.Info.Has("used_memory_rss") {
		t.Error("the probe read no MEMORY STATS or no RSS")
	}
}
