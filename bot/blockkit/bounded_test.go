package blockkit

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

// hugeDoctor is a 100 KB MEMORY DOCTOR reply, as a proxy or a hostile
// server might send: lines of issues with markup that must stay text.
func hugeDoctor() string {
	var b strings.Builder
	b.WriteString("Sam, I detected a few issues in this Redis instance memory implants:\n\n")
	for i := 0; b.Len() < 100<<10; i++ {
		fmt.Fprintf(&b, " * Issue %d: <!channel> & <http://evil.example|click> %s\n\n", i, strings.Repeat("words ", 20))
	}
	return b.String()
}

// serviceOf is a service over one instance answering snap, and one whose
// probe fails with err.
func serviceOf(snap *handlers.Snapshot, err error) *handlers.Service {
	instances := []handlers.Instance{
		{Name: "cache-1", Addr: "10.0.1.11:6379", MemoryLimit: 150 << 20, Thresholds: handlers.DefaultThresholds()},
		{Name: "legacy", Addr: "10.0.9.9:6379", Thresholds: handlers.DefaultThresholds()},
	}
	prober := fakeProber{snaps: map[string]*handlers.Snapshot{"cache-1": snap}, errs: map[string]error{"legacy": err}}
	return handlers.NewService(instances, prober, nil, 2, func() time.Time { return probed })
}

var doctorMarker = regexp.MustCompile("… \\(truncated, ([0-9,]+) more characters; run `redis-cli MEMORY DOCTOR` for the full text\\)$")

// A 100 KB MEMORY DOCTOR reply takes one section, not dozens, and says
// how much it left out.
func TestHugeDoctorIsOneSection(t *testing.T) {
	snap := fragmented(t)
	snap.Doctor = hugeDoctor()
	r := Render(mustHandle(t, serviceOf(snap, nil), "doctor", "cache-1"), library(t))
	checkReply(t, r, nil)
	checkGolden(t, "doctor-100k", r)

	var doctor []string
	blocks := 0
	for _, m := range r.Messages {
		blocks += len(m.Blocks)
		for _, b := range m.Blocks {
			if s, ok := b.(*slack.SectionBlock); ok && s.Text != nil && strings.HasPrefix(s.Text.Text, "*MEMORY DOCTOR says*") {
				doctor = append(doctor, s.Text.Text)
			}
		}
	}
	if len(r.Messages) != 1 || blocks > 10 {
		t.Errorf("%d messages, %d blocks for one doctor report", len(r.Messages), blocks)
	}
	if len(doctor) != 1 {
		t.Fatalf("%d doctor sections, want 1", len(doctor))
	}
	m := doctorMarker.FindStringSubmatch(doctor[0])
	if m == nil {
		t.Fatalf("doctor section lacks the truncation marker:\n…%s", doctor[0][max(0, len(doctor[0])-300):])
	}
	// What the section shows plus what it says it left out is the reply.
	more, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	total := len([]rune(strings.TrimSpace(snap.Doctor)))
	if more < total-maxSection || more >= total {
		t.Errorf("marker says %d more characters of %d", more, total)
	}
	if !strings.Contains(doctor[0], "&lt;!channel&gt; &amp; &lt;http://evil.example|click&gt;") {
		t.Error("doctor text is not escaped")
	}
}

// doctorSection cuts between runes and counts what it left out exactly,
// for text of any shape: one enormous line, invalid UTF-8, control bytes.
func TestDoctorSectionCounts(t *testing.T) {
	for name, text := range map[string]string{
		"one line":      strings.Repeat("é", 10000),
		"invalid utf-8": strings.Repeat("\xff\xfe<", 3000),
		"escapes":       strings.Repeat("\x1b[2J\n", 2000),
		"short":         "Hi Sam, I can't find any memory issue in your instance.",
	} {
		t.Run(name, func(t *testing.T) {
			got := doctorSection(text)
			if n := textLen(got); n > maxSection {
				t.Fatalf("%d characters, limit %d", n, maxSection)
			}
			m := doctorMarker.FindStringSubmatch(got)
			if name == "short" {
				if m != nil || got != "*MEMORY DOCTOR says*\n> "+Escape(text) {
					t.Errorf("short text changed: %q", got)
				}
				return
			}
			if m == nil {
				t.Fatalf("no marker: …%q", got[max(0, len(got)-200):])
			}
			more, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
			if more <= 0 || more >= len([]rune(text)) {
				t.Errorf("marker says %d more characters of %d", more, len([]rune(text)))
			}
		})
	}
}

// hostileInfo is INFO from a server that sends whatever hurts: markup and
// escape sequences in its strings, 64 KiB where a version belongs, and
// numbers that cannot be true.
func hostileInfo(t *testing.T) handlers.Info {
	in := info(t, "redis-7.0.txt")
	in["redis_version"] = strings.Repeat("<!channel>", 6554)
	in["role"] = "master <@U0123> \x1b]0;pwned\a"
	in["server_name"] = "redis\u202e\x1b[2J"
	in["mem_allocator"] = "jemalloc-5.3.0 <http://evil.example|click> " + strings.Repeat("&", 5000)
	in["used_memory_rss"] = "-9223372036854775808"
	in["mem_fragmentation_ratio"] = "1" + strings.Repeat("0", 299) + ".5"
	in["maxmemory"] = "9223372036854775808"
	in["total_system_memory"] = "NaN"
	in["used_memory_peak"] = "<!here>"
	for i := range 40 {
		in[fmt.Sprintf("errorstat_E%02d", i)] = "count=-" + strings.Repeat("9", 25)
	}
	return in
}

// A report whose every string comes from a hostile server stays within
// Slack's limits, escaped, with the numbers it did not believe listed
// (bounded) instead of shown.
func TestHostileReportIsBounded(t *testing.T) {
	snap := fragmented(t)
	snap.Info = hostileInfo(t)
	snap.Config["maxmemory-policy"] = strings.Repeat("<!everyone>", 1000)
	snap.Doctor = hugeDoctor()
	snap.Validate()
	probeErr := &handlers.ProbeError{Instance: "legacy", Class: handlers.ClassProtocol,
		Err: fmt.Errorf("INFO: %s", strings.Repeat("-ERR <!channel> \x1b[2J ", 2000))}
	r := Render(mustHandle(t, serviceOf(snap, probeErr), "diagnose", "cache-1"), library(t))
	r.Messages = append(r.Messages, Render(mustHandle(t, serviceOf(snap, probeErr), "diagnose", "legacy"), library(t)).Messages...)
	checkReply(t, r, nil)
	checkGolden(t, "hostile-report", r)

	js := string(goldenJSON(t, r))
	for _, bad := range []string{"<!channel>", "<@U0123>", "<!here>", "<!everyone>", "<http://evil", "\x1b", "\u202e", "-8.0 EiB", "rss -"} {
		if strings.Contains(js, bad) {
			t.Errorf("reply contains %q", bad)
		}
	}
	for _, want := range []string{
		"INFO used_memory_rss: -9223372036854775808 is not a valid size (negative)",
		"INFO maxmemory: 9223372036854775808 is not a valid size (overflows a 64-bit integer)",
		"more",
	} {
		if !strings.Contains(js, want) {
			t.Errorf("reply lacks %q", want)
		}
	}
	for i, m := range r.Messages {
		if n := len(m.Blocks); n > 12 {
			t.Errorf("message %d has %d blocks", i, n)
		}
	}
}

// hostileScanner reports keys whose type names a server chose: a module
// type can be any string.
type hostileScanner struct{}

func (hostileScanner) Scan(_ context.Context, nodes []handlers.Instance, opts handlers.KeyScanOptions) (*handlers.KeyScan, error) {
	stats := handlers.NewKeyStats(opts.Thresholds, 100)
	for i := range 20 {
		stats.Add(handlers.Key{Name: fmt.Sprintf("k:%d", i), Type: strings.Repeat("<!channel>`", 500), Bytes: int64(1+i) << 20, Elements: 1, TTL: handlers.NoTTL})
	}
	scan := &handlers.KeyScan{Nodes: []string{nodes[0].Name}, Start: probed, Duration: time.Second, Complete: true, Estimate: 20, Scanned: 20}
	stats.Fill(scan)
	return scan, nil
}

// A 5,000-character type name is cut inside its cell: every table stays a
// whole code block within its section.
func TestKeyTablesBoundServerStrings(t *testing.T) {
	svc := fixtureService(t)
	svc.SetKeyScanner(hostileScanner{})
	lib := library(t)
	r := Render(mustHandle(t, svc, "keys", "cache-1"), lib)
	checkReply(t, r, runbookLinks(t, lib, "big-keys", "keys-no-ttl", "defrag-skip-keys", "ttl-size-mix"))
	tables := 0
	for _, b := range r.Messages[0].Blocks {
		s, ok := b.(*slack.SectionBlock)
		if !ok || s.Text == nil || !strings.Contains(s.Text.Text, "```") {
			continue
		}
		tables++
		if n := strings.Count(s.Text.Text, "```"); n != 2 {
			t.Errorf("table section with %d fences (cut inside its code block):\n%.300s", n, s.Text.Text)
		}
	}
	if tables == 0 {
		t.Fatal("no key tables rendered")
	}
}
