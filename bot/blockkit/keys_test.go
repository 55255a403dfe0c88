package blockkit

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

// fixtureScanner answers every scan with the same key space: a mix of
// types, sizes and TTLs, with hostile key names among the biggest. The
// scanner itself is tested against real servers in handlers/keyspace.
type fixtureScanner struct{}

func (fixtureScanner) Scan(_ context.Context, nodes []handlers.Instance, opts handlers.KeyScanOptions) (*handlers.KeyScan, error) {
	stats := handlers.NewKeyStats(opts.Thresholds, 1000)
	add := func(k handlers.Key) { stats.Add(k) }
	for i := range 3000 {
		add(handlers.Key{Name: fmt.Sprintf("session:%d", 100000+i), Type: "string", Bytes: int64(64 << (i % 9)), Elements: 10, TTL: 30 * time.Minute})
	}
	for i := range 400 {
		add(handlers.Key{Name: fmt.Sprintf("user:%d:profile", i), Type: "hash", Bytes: 2048, Elements: 20, TTL: handlers.NoTTL})
	}
	add(handlers.Key{Name: "<!channel> ping", Type: "string", Bytes: 3 << 20, Elements: 3 << 20, TTL: handlers.NoTTL})
	add(handlers.Key{Name: "=HYPERLINK(\"http://evil.example\")", Type: "string", Bytes: 1 << 20, Elements: 1 << 20, TTL: handlers.NoTTL})
	add(handlers.Key{Name: "bin:\x00\xff\x1b[2J`tick`", Type: "zset", Bytes: 12 << 20, Elements: 90000, TTL: handlers.NoTTL})
	add(handlers.Key{Name: "feed:global", Type: "stream", Bytes: 5 << 20, Elements: 50000, TTL: handlers.NoTTL})
	scan := &handlers.KeyScan{Nodes: []string{nodes[0].Name}, Start: probed, Duration: 12*time.Second + 340*time.Millisecond,
		Complete: false, Stopped: "limit", Estimate: 10000, Scanned: 3404, Vanished: 2,
		Throttle: handlers.Throttle{Budget: 20000, Commands: 14000, Paused: 9 * time.Second, Backoffs: 1}}
	stats.Fill(scan)
	return scan, nil
}

func keysReply(t *testing.T) Reply {
	svc := fixtureService(t)
	svc.SetKeyScanner(fixtureScanner{})
	return Render(mustHandle(t, svc, "keys", "cache-1", "--top", "5"), library(t))
}

func TestKeysReply(t *testing.T) {
	r := keysReply(t)
	first := strings.Join(mrkdwnTexts(r.Messages[0]), "\n")
	for _, want := range []string{
		"a SAMPLE: stopped early (--limit reached) after 3,404 of about 10,000 keys",
		"*Biggest keys*",
		"*By key pattern*",
		"session:{id}",
		"user:{id}:profile",
		"&lt;!channel&gt; ping",
		"*Keys without a TTL:",
		"`big-keys`",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if strings.Contains(first, "<!channel>") || strings.Contains(first, "\x1b") || strings.Contains(first, "\x00") {
		t.Error("a raw key name reached the message")
	}
	// Key findings have no "Full runbook" button (a click cannot repeat the
	// scan): their runbooks follow in the thread, with the scan's numbers.
	for _, b := range r.Messages[0].Blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if id := e.(*slack.ButtonBlockElement).ActionID; strings.HasPrefix(id, ActionRunbook) {
					t.Errorf("key finding has a runbook button %s", id)
				}
			}
		}
	}
	var thread string
	for _, m := range r.Messages[1:] {
		thread += strings.Join(mrkdwnTexts(m), "\n")
	}
	if !strings.Contains(thread, "runbook `big-keys`") || !strings.Contains(thread, "12.0 MiB") {
		t.Errorf("the thread lacks the big-keys runbook with the scan's numbers")
	}

	if len(r.Files) != 2 || r.Files[0].Name != "keys-cache-1.csv" || r.Files[1].Name != "key-patterns-cache-1.csv" {
		t.Fatalf("files = %+v", r.Files)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Files[0].Content))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+handlers.KeepKeys {
		t.Errorf("keys CSV has %d rows, want the header and %d keys", len(rows), handlers.KeepKeys)
	}
	for _, row := range rows[1:] {
		if name := row[1]; strings.HasPrefix(name, "=") || strings.ContainsAny(name, "\x00\x1b") {
			t.Errorf("unsafe CSV cell %q", name)
		}
	}
	if got := rows[1][1]; got != `bin:\x00\xff\x1b[2J`+"`tick`" {
		t.Errorf("biggest key in the CSV = %q, want the binary name escaped", got)
	}
}

// TestKeyProgressMatch: with --match the bar is what SCAN has walked,
// and the text gives the match rate, not matches against the key space.
func TestKeyProgressMatch(t *testing.T) {
	p := handlers.KeyScanProgress{Scanned: 168_000, Walked: 1_200_000, Estimate: 2_000_000, Match: true, Elapsed: time.Minute}
	m := RenderKeyProgress("cache-1", "0123456789ab", p, "")
	if err := validate(m); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(mrkdwnTexts(m), "\n")
	if !strings.Contains(text, "walked 1,200,000 of ~2,000,000 keys, 14% match (168,000)") || !strings.Contains(text, "60% walked") {
		t.Errorf("progress text %q", text)
	}
}

func TestKeyProgress(t *testing.T) {
	p := handlers.KeyScanProgress{Scanned: 400_000, Estimate: 1_000_000, Elapsed: 80 * time.Second, ETA: 2 * time.Minute}
	m := RenderKeyProgress("cache-1", "0123456789ab", p, "")
	if err := validate(m); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(mrkdwnTexts(m), "\n")
	if !strings.Contains(text, "400,000 of ~1,000,000 keys") || !strings.Contains(text, "40% walked") || !strings.Contains(text, "about 2m0s left") {
		t.Errorf("progress text %q", text)
	}
	var button *slack.ButtonBlockElement
	for _, b := range m.Blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			button = a.Elements.ElementSet[0].(*slack.ButtonBlockElement)
		}
	}
	if button == nil {
		t.Fatal("no Cancel button")
	}
	click, err := ParseClick(button.ActionID, button.Value)
	if err != nil || click.Kind != ActionCancelScan || click.ScanID != "0123456789ab" {
		t.Errorf("Cancel click parses as %+v, %v", click, err)
	}
	for _, bad := range [][2]string{{"cancel-scan/0123456789ab", "ffffffffffff"}, {"cancel-scan/../../x", "../../x"}} {
		if _, err := ParseClick(bad[0], bad[1]); err == nil {
			t.Errorf("ParseClick(%q, %q) accepted", bad[0], bad[1])
		}
	}

	m = RenderKeyProgress("cache-1", "0123456789ab", p, "U0LEAD")
	text = strings.Join(mrkdwnTexts(m), "\n")
	if !strings.Contains(text, "Cancelling (asked by <@U0LEAD>)") {
		t.Errorf("cancelled progress %q", text)
	}
	for _, b := range m.Blocks {
		if _, ok := b.(*slack.ActionBlock); ok {
			t.Error("a cancelled scan still offers Cancel")
		}
	}
}

// --top 1000 in Slack: the table keeps within a section and says how many
// rows went to the CSV instead.
func TestKeysReplyCutsLongTables(t *testing.T) {
	svc := fixtureService(t)
	svc.SetKeyScanner(fixtureScanner{})
	r := Render(mustHandle(t, svc, "keys", "cache-1", "--top", "1000"), library(t))
	checkReply(t, r, runbookLinks(t, library(t), "big-keys", "keys-no-ttl", "defrag-skip-keys", "ttl-size-mix"))
	text := strings.Join(mrkdwnTexts(r.Messages[0]), "\n")
	if !strings.Contains(text, "more keys in the CSV files in the thread_") {
		t.Errorf("cut table does not say where the rest is:\n%.2000s", text)
	}
}
