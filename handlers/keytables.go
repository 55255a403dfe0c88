package handlers

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KeyTable is one table of a key report as display text, for any renderer:
// the terminal aligns it, Slack puts it in a code block. Key names are
// already through Printable; renderers still escape for their medium.
type KeyTable struct {
	Title  string
	Header []string
	Rows   [][]string
	// More counts the rows kept but not shown ("patterns" or "keys" says
	// More of what): each transport says where they are (the CSV files in
	// Slack, --top and --json at a terminal).
	More     int
	MoreWhat string
}

// keyCell is how wide a key name or pattern may be in a table.
const keyCell = 60

// tableRows bounds the rows of the tables other than the top keys.
const tableRows = 10

// Summary is one line on how the scan went: how much it saw, whether it is
// a sample, and how it was paced.
func (k *KeyReport) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scanned %s", keys(k.Scanned))
	// A cancelled or failed scan stops between SCAN and the measuring of
	// its last page: those keys were seen, not measured.
	if unmeasured := k.Scanned - k.Total.Keys - k.Vanished; unmeasured > 0 {
		fmt.Fprintf(&b, ", measured %s", Thousands(k.Total.Keys))
	}
	if k.Match != "" {
		fmt.Fprintf(&b, " matching %s", Printable(k.Match, keyCell))
	}
	if len(k.Nodes) > 1 {
		fmt.Fprintf(&b, " on %d primaries", len(k.Nodes))
	}
	fmt.Fprintf(&b, " (%s) in %s", HumanBytes(k.Total.Bytes), k.Duration.Round(100*time.Millisecond))
	switch {
	case k.Complete:
		b.WriteString(", complete")
	default:
		fmt.Fprintf(&b, ", a SAMPLE: stopped early (%s)", k.stopReason())
		if k.Estimate > 0 {
			fmt.Fprintf(&b, " after %s of about %s keys", Thousands(k.Scanned), Thousands(k.Estimate))
		}
	}
	if k.Vanished > 0 {
		fmt.Fprintf(&b, "; %s vanished during the scan", keys(k.Vanished))
	}
	if k.Throttle.Fast {
		b.WriteString("; --fast: not throttled")
	} else if k.Throttle.Budget > 0 {
		fmt.Fprintf(&b, "; throttled to %s commands/s per server", Thousands(int64(k.Throttle.Budget)))
		if k.Throttle.Backoffs > 0 {
			fmt.Fprintf(&b, ", slowed down %d times as the server's latency rose", k.Throttle.Backoffs)
		}
	}
	for _, e := range k.NodeErrors {
		fmt.Fprintf(&b, "; %s not scanned (%s)", e.Node, e.Class)
	}
	return b.String()
}

func (k *KeyReport) stopReason() string {
	switch k.Stopped {
	case "limit":
		return "--limit reached"
	case "cancelled":
		return "cancelled"
	case "deadline":
		return "time limit reached"
	case "":
		return "incomplete"
	}
	return Printable(k.Stopped, 200)
}

// Tables are the report's tables, in reading order; empty ones are left out.
func (k *KeyReport) Tables() []KeyTable {
	var out []KeyTable
	add := func(t KeyTable) {
		if len(t.Rows) > 0 {
			out = append(out, t)
		}
	}
	cluster := len(k.Nodes) > 1
	shown := min(max(k.Shown, 1), len(k.Top))
	top := KeyTable{Title: "Biggest keys", Header: []string{"#", "size", "type", "elements", "ttl", "key"}}
	if cluster {
		top.Header = append(top.Header, "node")
	}
	for i, key := range k.Top[:shown] {
		row := []string{strconv.Itoa(i + 1), HumanBytes(key.Bytes), key.Type, elements(key.Elements), ttlText(key), Printable(key.Name, keyCell)}
		if cluster {
			row = append(row, key.Node)
		}
		top.Rows = append(top.Rows, row)
	}
	top.More, top.MoreWhat = len(k.Top)-shown, "keys"
	add(top)

	types := KeyTable{Title: "By type", Header: []string{"type", "keys", "size", "share", "elements", "biggest"}}
	for _, t := range k.Types {
		count := Thousands(t.Elements)
		if t.Type == "string" {
			count = "-" // strings are measured by size alone
		}
		types.Rows = append(types.Rows, []string{t.Type, Thousands(t.Keys), HumanBytes(t.Bytes), k.share(t.Bytes), count,
			Printable(t.Biggest.Name, keyCell/2) + " (" + HumanBytes(t.Biggest.Bytes) + ")"})
	}
	add(types)

	prefixes := KeyTable{Title: "By key pattern", Header: []string{"pattern", "keys", "size", "share", "with ttl", "size without ttl"}}
	for _, p := range k.Prefixes[:min(len(k.Prefixes), tableRows)] {
		prefixes.Rows = append(prefixes.Rows, []string{Printable(p.Pattern, keyCell), Thousands(p.Keys), HumanBytes(p.Bytes), k.share(p.Bytes),
			Percent(ratio(p.WithTTL.Keys, p.Keys)), HumanBytes(p.NoTTL.Bytes)})
	}
	prefixes.More, prefixes.MoreWhat = max(len(k.Prefixes)-tableRows, 0), "patterns"
	add(prefixes)

	if k.NoTTL.Keys > 0 {
		noTTL := KeyTable{Title: fmt.Sprintf("Keys without a TTL: %s, %s (%s of the scanned memory)", keys(k.NoTTL.Keys), HumanBytes(k.NoTTL.Bytes), k.share(k.NoTTL.Bytes)),
			Header: []string{"pattern", "keys without ttl", "size without ttl", "share of pattern"}}
		for _, p := range topByNoTTL(k.Prefixes, 5) {
			noTTL.Rows = append(noTTL.Rows, []string{Printable(p.Pattern, keyCell), Thousands(p.NoTTL.Keys), HumanBytes(p.NoTTL.Bytes), Percent(ratio(p.NoTTL.Bytes, p.Bytes))})
		}
		add(noTTL)
	}

	big := KeyTable{Title: fmt.Sprintf("Big keys: %s strings, %s collections", Thousands(k.BigStrings.Keys), Thousands(k.BigCollections.Keys)),
		Header: []string{"size", "type", "elements", "key"}}
	for _, key := range k.Big[:min(len(k.Big), tableRows)] {
		big.Rows = append(big.Rows, []string{HumanBytes(key.Bytes), key.Type, elements(key.Elements), Printable(key.Name, keyCell)})
	}
	add(big)

	skip := KeyTable{Title: fmt.Sprintf("Collections over active-defrag-max-scan-fields (%s): %s, %s", Thousands(k.DefragMaxScanFields), keys(k.DefragSkip.Keys), HumanBytes(k.DefragSkip.Bytes)),
		Header: []string{"elements", "size", "type", "key"}}
	for _, key := range k.DefragSkipKeys[:min(len(k.DefragSkipKeys), tableRows)] {
		skip.Rows = append(skip.Rows, []string{Thousands(key.Elements), HumanBytes(key.Bytes), key.Type, Printable(key.Name, keyCell)})
	}
	add(skip)

	sizes := KeyTable{Title: fmt.Sprintf("Sizes of the %s with a TTL", keys(k.WithTTL.Keys)), Header: []string{"size", "keys", "share", ""}}
	for _, c := range k.TTLSizes {
		share := ratio(c.Keys, k.WithTTL.Keys)
		sizes.Rows = append(sizes.Rows, []string{HumanBytes(c.Min) + "–" + HumanBytes(c.Max), Thousands(c.Keys), Percent(share), strings.Repeat("█", int(share*40+0.5))})
	}
	add(sizes)
	return out
}

func (k *KeyReport) share(n int64) string { return Percent(ratio(n, k.Total.Bytes)) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func topByNoTTL(prefixes []PrefixStats, n int) []PrefixStats {
	var out []PrefixStats
	for _, p := range prefixes {
		if p.NoTTL.Keys > 0 {
			out = append(out, p)
		}
	}
	// Stable: the prefixes come sorted by total bytes, a fair tie-break.
	slices.SortStableFunc(out, func(a, b PrefixStats) int { return cmp.Compare(b.NoTTL.Bytes, a.NoTTL.Bytes) })
	return out[:min(len(out), n)]
}

func elements(n int64) string {
	if n < 0 {
		return "-"
	}
	return Thousands(n)
}

func ttlText(k Key) string {
	if !k.HasTTL() {
		return "none"
	}
	return humanDuration(k.TTL)
}

// keys is "1 key" or "1,234 keys".
func keys(n int64) string {
	if n == 1 {
		return "1 key"
	}
	return Thousands(n) + " keys"
}

// Thousands writes 1234567 as "1,234,567".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// KeysCSV is every kept top key, for a spreadsheet: raw numbers, key names
// through Printable (binary names stay readable and one cell each), and
// cells that a spreadsheet would run as a formula defused.
func (k *KeyReport) KeysCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"rank", "key", "type", "bytes", "elements", "ttl_seconds", "pattern", "node"})
	for i, key := range k.Top {
		ttl := ""
		if key.HasTTL() {
			ttl = strconv.FormatInt(int64(key.TTL/time.Second), 10)
		}
		_ = w.Write([]string{strconv.Itoa(i + 1), csvCell(Printable(key.Name, 1024)), csvCell(key.Type), strconv.FormatInt(key.Bytes, 10),
			strconv.FormatInt(key.Elements, 10), ttl, csvCell(Printable(KeyPattern(key.Name), 1024)), csvCell(key.Node)})
	}
	w.Flush() // writes to a bytes.Buffer cannot fail
	return b.Bytes()
}

// PatternsCSV is every key pattern with its totals.
func (k *KeyReport) PatternsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"pattern", "keys", "bytes", "keys_with_ttl", "bytes_with_ttl", "keys_without_ttl", "bytes_without_ttl", "example"})
	for _, p := range k.Prefixes {
		_ = w.Write([]string{csvCell(Printable(p.Pattern, 1024)), strconv.FormatInt(p.Keys, 10), strconv.FormatInt(p.Bytes, 10),
			strconv.FormatInt(p.WithTTL.Keys, 10), strconv.FormatInt(p.WithTTL.Bytes, 10), strconv.FormatInt(p.NoTTL.Keys, 10),
			strconv.FormatInt(p.NoTTL.Bytes, 10), csvCell(Printable(p.Example, 1024))})
	}
	w.Flush()
	return b.Bytes()
}

// csvCell defuses formula injection: a key named "=HYPERLINK(...)" would
// run in the spreadsheet of whoever opens the file. OWASP's advice: prefix
// such cells with a quote.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
