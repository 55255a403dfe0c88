package handlers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// KeyScanner walks the key space of one or more servers (a standalone
// instance, or every primary of a cluster) and measures each key. The
// keyspace package implements it against real servers.
type KeyScanner interface {
	Scan(ctx context.Context, nodes []Instance, opts KeyScanOptions) (*KeyScan, error)
}

// Defaults of a key scan.
const (
	DefaultKeyLimit = 1_000_000
	DefaultKeyTop   = 20
	// KeepKeys is how many of the biggest keys a scan keeps: the report
	// shows the first Top, the CSV file all of them.
	KeepKeys = 1000
	// KeepListed is how many keys a scan keeps for each of its short lists
	// (big keys, collections that active defrag skips).
	KeepListed = 20
	// DefaultDefragMaxScanFields is Redis' default for
	// active-defrag-max-scan-fields, used when CONFIG GET is denied.
	DefaultDefragMaxScanFields = 1000
)

// KeyScanOptions say what to scan and how gently.
type KeyScanOptions struct {
	// Match is a SCAN MATCH glob ("session:*"); "" scans every key.
	Match string
	// Top is how many of the biggest keys the report shows.
	Top int
	// Limit stops the scan after this many distinct keys; the result is
	// then a sample (KeyScan.Complete is false).
	Limit int64
	// Fast lifts the throttle: no command budget, no adaptive pause, bigger
	// batches. An operator's choice, paid for in the server's latency.
	Fast bool
	// Budget is the throttle's commands per second on each server (SCAN and
	// every per-key command count); 0 means the scanner's default.
	Budget int
	// Count is SCAN's COUNT hint; 0 means the scanner's default.
	Count int
	// Thresholds classify big keys (BigString, BigCollection,
	// BigCollectionElements).
	Thresholds Thresholds
	// Progress, when set, is called from the scanning goroutine about once
	// a second and once at the end. It must not block.
	Progress func(KeyScanProgress)
}

// KeyScanProgress is how far a running scan has got. Progress is what SCAN
// has walked, not what it found: with --match SCAN still walks the whole
// key space, and most of it matches nothing.
type KeyScanProgress struct {
	Scanned int64 // distinct keys found so far (those that match), over all nodes
	// Walked is how many keys SCAN has gone past, over all nodes, when
	// there is a MATCH pattern: estimated from the cursor (the share of
	// the hash table it has covered) times the node's key count. Without
	// one it is Scanned.
	Walked int64
	// Estimate is the number of keys SCAN walks in all: the sum of INFO
	// keyspace's keys= for the database at the start (0 when unknown),
	// capped by Limit when there is no MATCH pattern.
	Estimate int64
	// Match: the scan has a MATCH pattern, so Scanned counts matches
	// among Walked.
	Match   bool
	Elapsed time.Duration
	// ETA is the estimated time left; 0 when unknown.
	ETA  time.Duration
	Done bool
}

// Share is the part of the key space walked, from 0 to 1; ok is false
// when the key count is unknown.
func (p KeyScanProgress) Share() (float64, bool) {
	if p.Estimate <= 0 {
		return 0, false
	}
	walked := p.Walked
	if !p.Match {
		walked = p.Scanned // every key walked is measured
	}
	return min(float64(walked)/float64(p.Estimate), 1), true
}

// Text says how far the scan has got, for the terminal and Slack alike:
// "walked 1,200,000 of ~2,000,000 keys, 14% match (168,000)", or without a
// MATCH pattern "450,000 of ~1,000,000 keys".
func (p KeyScanProgress) Text() string {
	var text string
	switch _, known := p.Share(); {
	case p.Match && known:
		text = fmt.Sprintf("walked %s of ~%s keys", Thousands(p.Walked), Thousands(p.Estimate))
	case p.Match:
		text = fmt.Sprintf("walked %s keys", Thousands(p.Walked))
	case known:
		return fmt.Sprintf("%s of ~%s keys", Thousands(p.Scanned), Thousands(p.Estimate))
	default:
		return Thousands(p.Scanned) + " keys"
	}
	if p.Walked > 0 {
		rate := Percent(min(float64(p.Scanned)/float64(p.Walked), 1))
		if p.Scanned > 0 && p.Scanned*100 < p.Walked {
			rate = "<1%"
		}
		text += fmt.Sprintf(", %s match (%s)", rate, Thousands(p.Scanned))
	}
	return text
}

// NoTTL is Key.TTL for a key without an expiry.
const NoTTL time.Duration = -1

// Key is one key as measured. Name holds the key's raw bytes: it may be
// any binary string and must go through Printable before it is shown.
type Key struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Bytes is MEMORY USAGE (with its default sampling of collections).
	Bytes int64 `json:"bytes"`
	// Elements is the number of elements of a collection (LLEN, HLEN,
	// SCARD, ZCARD, XLEN); -1 for a string, whose size is Bytes, and for
	// types without a count (module types).
	Elements int64 `json:"elements"`
	// TTL is the time to live, or NoTTL; JSON has it as ttl_ms.
	TTL time.Duration `json:"-"`
	// Node is the cluster node that holds the key; "" on a standalone
	// instance.
	Node string `json:"node,omitempty"`
}

// HasTTL reports whether the key expires.
func (k Key) HasTTL() bool { return k.TTL >= 0 }

// MarshalJSON writes the TTL in milliseconds (-1: none) and, for a name
// that is not valid UTF-8 (encoding/json would replace its bytes with
// U+FFFD), the exact bytes in name_base64 too.
func (k Key) MarshalJSON() ([]byte, error) {
	ttl := int64(-1)
	if k.HasTTL() {
		ttl = k.TTL.Milliseconds()
	}
	out := struct {
		Name       string `json:"name"`
		NameBase64 string `json:"name_base64,omitempty"`
		Type       string `json:"type"`
		Bytes      int64  `json:"bytes"`
		Elements   int64  `json:"elements"`
		TTLMillis  int64  `json:"ttl_ms"`
		Node       string `json:"node,omitempty"`
	}{Name: k.Name, Type: k.Type, Bytes: k.Bytes, Elements: k.Elements, TTLMillis: ttl, Node: k.Node}
	if !utf8.ValidString(k.Name) {
		out.NameBase64 = base64.StdEncoding.EncodeToString([]byte(k.Name))
	}
	return json.Marshal(out)
}

// KeyGroup counts keys and their bytes.
type KeyGroup struct {
	Keys  int64 `json:"keys"`
	Bytes int64 `json:"bytes"`
}

// Add counts one key.
func (g *KeyGroup) Add(bytes int64) { g.Keys++; g.Bytes += bytes }

// TypeStats sums the keys of one type.
type TypeStats struct {
	Type string `json:"type"`
	KeyGroup
	// Elements sums Key.Elements over keys that have a count.
	Elements int64 `json:"elements"`
	// Biggest is the type's biggest key.
	Biggest Key `json:"biggest"`
}

// PrefixStats sums the keys whose names fold to one pattern
// ("session:{id}"; see KeyPattern).
type PrefixStats struct {
	Pattern string `json:"pattern"`
	KeyGroup
	WithTTL KeyGroup `json:"with_ttl"`
	NoTTL   KeyGroup `json:"no_ttl"`
	// Example is one real key of the pattern, raw like Key.Name.
	Example string `json:"example"`
}

// SizeClass is one bucket of a histogram of key sizes: keys whose bytes are
// in [Min, Max).
type SizeClass struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
	KeyGroup
}

// KeyScan is the result of a key scan: totals, the biggest keys and the
// groupings the key-space findings read. It is built by KeyStats and holds
// no more than a few thousand keys whatever the size of the key space.
type KeyScan struct {
	// Nodes are the names of the servers scanned: one for a standalone
	// instance, every primary for a cluster.
	Nodes []string  `json:"nodes"`
	Match string    `json:"match,omitempty"`
	Start time.Time `json:"start"`
	// Duration is the wall time of the scan.
	Duration time.Duration `json:"duration"`
	// Complete is true when SCAN went round every node's whole key space.
	// Otherwise the numbers are a sample and Stopped says why.
	Complete bool `json:"complete"`
	// Stopped is "" for a complete scan, else "limit", "cancelled",
	// "deadline" (keys.max_duration), or why the scan gave up on a server
	// whose SCAN made no progress ("SCAN cursor repeated after 4 pages;
	// ..."), prefixed with the node's name on a cluster.
	Stopped string `json:"stopped,omitempty"`
	// Estimate is the key count INFO keyspace reported at the start.
	Estimate int64 `json:"estimate"`
	// Scanned counts distinct keys that SCAN returned (duplicates that SCAN
	// may return while the server rehashes are counted once).
	Scanned int64 `json:"scanned"`
	// Vanished counts keys deleted or expired between SCAN and measuring.
	Vanished int64 `json:"vanished"`
	// Total sums every measured key.
	Total KeyGroup `json:"total"`
	// Top are the biggest keys, biggest first, at most KeepKeys.
	Top []Key `json:"top"`
	// Types are the totals by type, most bytes first.
	Types []TypeStats `json:"types"`
	// Prefixes are the totals by key pattern, most bytes first. Patterns
	// past the cap of distinct patterns are counted under "(other)".
	Prefixes []PrefixStats `json:"prefixes"`
	WithTTL  KeyGroup      `json:"with_ttl"`
	NoTTL    KeyGroup      `json:"no_ttl"`
	// DefragMaxScanFields is the server's active-defrag-max-scan-fields.
	DefragMaxScanFields int64 `json:"defrag_max_scan_fields"`
	// DefragSkip are collections that active defrag defers to its
	// time-bounded later pass: more than DefragMaxScanFields elements of a
	// hash, set or zset, or (estimated) quicklist nodes of a list and radix
	// tree nodes of a stream.
	DefragSkip     KeyGroup `json:"defrag_skip"`
	DefragSkipKeys []Key    `json:"defrag_skip_keys"`
	// BigStrings and BigCollections are keys over the big-key thresholds;
	// Big lists the biggest of them, at most KeepListed.
	BigStrings     KeyGroup `json:"big_strings"`
	BigCollections KeyGroup `json:"big_collections"`
	Big            []Key    `json:"big"`
	// TTLSizes is the histogram of the sizes of keys with a TTL, by
	// power-of-two classes; TTLs the histogram of their TTLs in seconds.
	TTLSizes []SizeClass `json:"ttl_sizes"`
	TTLs     []SizeClass `json:"ttls"`
	// Throttle says how the scan was paced.
	Throttle Throttle `json:"throttle"`
	// NodeErrors are nodes of a cluster that could not be scanned; the
	// others' results stand.
	NodeErrors []NodeError `json:"node_errors,omitempty"`
}

// Throttle reports how a scan was paced.
type Throttle struct {
	Fast bool `json:"fast"`
	// Budget is the commands per second allowed on each node.
	Budget int `json:"budget"`
	// Commands counts the commands sent.
	Commands int64 `json:"commands"`
	// Paused is the total time spent waiting: for the budget and for the
	// server's latency to come back down.
	Paused time.Duration `json:"paused"`
	// Backoffs counts the times the scan slowed down because the server's
	// latency rose.
	Backoffs int64 `json:"backoffs"`
	// BaselineRTT and MaxRTT are the fastest and slowest round trips of one
	// batch seen.
	BaselineRTT time.Duration `json:"baseline_rtt"`
	MaxRTT      time.Duration `json:"max_rtt"`
}

// NodeError is a node whose scan failed.
type NodeError struct {
	Node  string     `json:"node"`
	Class ErrorClass `json:"class"`
	Error string     `json:"error"`
}
