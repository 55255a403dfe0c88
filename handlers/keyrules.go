package handlers

import (
	"fmt"
	"strings"
	"time"
)

// keyNameWidth bounds a key name quoted in a finding: names are untrusted
// and may be megabytes long.
const keyNameWidth = 80

// hugeKey is where one key becomes critical on its own: Redis' default
// proto-max-bulk-len, the biggest string a client may even send; a
// collection this size blocks the server for seconds when deleted.
const hugeKey = 512 << 20

// KeyFindings judges a key scan. snap is the instance's snapshot taken with
// the scan (policy, maxmemory, allocator fragmentation); nil when the probe
// failed, and then only the rules that need nothing from it run. A scan
// that stopped early is a sample: the shares still hold, the counts are
// lower bounds, and the report says so.
func KeyFindings(scan *KeyScan, snap *Snapshot, t Thresholds) []Finding {
	if scan == nil || scan.Total.Keys == 0 {
		return []Finding{}
	}
	if snap == nil {
		snap = &Snapshot{}
	}
	var out []Finding
	for _, rule := range []func(*KeyScan, *Snapshot, Thresholds) []Finding{ruleBigKeys, ruleKeysNoTTL, ruleDefragSkipKeys, ruleTTLSizeMix} {
		out = append(out, rule(scan, snap, t)...)
	}
	if out == nil {
		out = []Finding{}
	}
	SortFindings(out)
	return out
}

// lazyfreeSettings are the settings the big-keys runbook cites, shown as
// evidence when the probe read them (probe.ConfigPatterns).
var lazyfreeSettings = []string{"lazyfree-lazy-user-del", "lazyfree-lazy-expire", "lazyfree-lazy-eviction", "lazyfree-lazy-server-del", "lazyfree-lazy-user-flush"}

func ruleBigKeys(scan *KeyScan, snap *Snapshot, t Thresholds) []Finding {
	n := scan.BigStrings.Keys + scan.BigCollections.Keys
	if n == 0 || len(scan.Big) == 0 {
		return nil
	}
	big := scan.Big[0]
	sev := SeverityWarning
	if big.Bytes >= hugeKey {
		sev = SeverityCritical
	}
	name := Printable(big.Name, keyNameWidth)
	summary := fmt.Sprintf("%d big keys hold %s; the biggest, %s (%s), is %s.",
		n, HumanBytes(scan.BigStrings.Bytes+scan.BigCollections.Bytes), name, big.Type, HumanBytes(big.Bytes))
	ev := []Fact{
		factInt("big_keys", n),
		factBytes("big_keys_bytes", scan.BigStrings.Bytes+scan.BigCollections.Bytes),
		factInt("big_strings", scan.BigStrings.Keys),
		factInt("big_collections", scan.BigCollections.Keys),
		factText("biggest_key", name),
		factText("biggest_key_type", big.Type),
		factBytes("biggest_key_bytes", big.Bytes),
		factInt("biggest_key_elements", big.Elements),
		factBytes("big_string", t.BigString),
		factBytes("big_collection", t.BigCollection),
		factInt("big_collection_elements", t.BigCollectionElements),
		factInt("scanned_keys", scan.Total.Keys),
	}
	for _, name := range lazyfreeSettings {
		if v, ok := snap.Config[name]; ok {
			ev = append(ev, factText(strings.ReplaceAll(name, "-", "_"), v))
		}
	}
	return []Finding{newFinding("big-keys", sev, summary, ev...)}
}

func ruleKeysNoTTL(scan *KeyScan, snap *Snapshot, t Thresholds) []Finding {
	if scan.Total.Bytes == 0 || scan.NoTTL.Keys == 0 {
		return nil
	}
	share := float64(scan.NoTTL.Bytes) / float64(scan.Total.Bytes)
	if share < t.NoTTLShare {
		return nil
	}
	policy, _ := snap.Policy()
	var sev Severity
	var why string
	switch {
	case strings.HasPrefix(policy, "volatile-"):
		sev = SeverityWarning
		if u, ok := MaxmemoryUsage(snap); ok && u.Share >= t.MaxmemoryWarning {
			sev = SeverityCritical
		}
		why = fmt.Sprintf("policy %s can evict only keys with a TTL, so at maxmemory this memory cannot be freed", policy)
	case policy == "noeviction":
		sev = SeverityInfo
		why = "under noeviction nothing frees them but the application"
	default:
		// allkeys-* evicts them like any other key: nothing to say.
		return nil
	}
	ev := []Fact{
		factShare("no_ttl_share", share),
		factInt("no_ttl_keys", scan.NoTTL.Keys),
		factBytes("no_ttl_bytes", scan.NoTTL.Bytes),
		factInt("scanned_keys", scan.Total.Keys),
		factText("maxmemory_policy", policy),
	}
	if len(snap.Info) > 0 {
		ev = append(ev, oomRejections(snap))
	}
	if top := topByNoTTL(scan.Prefixes, 1); len(top) == 1 {
		p := top[0]
		ev = append(ev, factText("top_no_ttl_prefix", Printable(p.Pattern, keyNameWidth)), factBytes("top_no_ttl_prefix_bytes", p.NoTTL.Bytes))
		why += fmt.Sprintf("; most of it is %s (%s)", Printable(p.Pattern, keyNameWidth), HumanBytes(p.NoTTL.Bytes))
	}
	summary := fmt.Sprintf("%s of the scanned memory (%s in %d keys) has no TTL: %s.",
		Percent(share), HumanBytes(scan.NoTTL.Bytes), scan.NoTTL.Keys, why)
	return []Finding{newFinding("keys-no-ttl", sev, summary, ev...)}
}

// oomRejections is errorstat_OOM for the key findings' evidence, which
// reads "OOM rejections since start: ...": "none" where the server reports
// none (no errorstat_OOM line on 6.2 and later), unknown before 6.2.
func oomRejections(snap *Snapshot) Fact {
	n, known := OOMErrors(snap)
	if known && n == 0 {
		return Fact{Name: "errorstat_OOM", Value: int64(0), Text: "none"}
	}
	return factOOM(n, known)
}

func ruleDefragSkipKeys(scan *KeyScan, snap *Snapshot, t Thresholds) []Finding {
	if scan.DefragSkip.Keys == 0 || scan.Total.Bytes == 0 {
		return nil
	}
	share := float64(scan.DefragSkip.Bytes) / float64(scan.Total.Bytes)
	sev := SeverityInfo
	allocFrag, fragKnown := snap.Float("allocator_frag_ratio")
	if share >= t.DefragSkipShare && fragKnown && allocFrag >= t.AllocFragWarning {
		sev = SeverityWarning
	}
	ev := []Fact{
		factInt("defrag_skip_keys", scan.DefragSkip.Keys),
		factBytes("defrag_skip_bytes", scan.DefragSkip.Bytes),
		factShare("defrag_skip_share", share),
		factInt("active_defrag_max_scan_fields", scan.DefragMaxScanFields),
	}
	if len(scan.DefragSkipKeys) > 0 {
		k := scan.DefragSkipKeys[0]
		ev = append(ev, factText("biggest_defrag_skip_key", Printable(k.Name, keyNameWidth)), factInt("biggest_defrag_skip_elements", k.Elements))
	}
	if fragKnown {
		ev = append(ev, factRatio("allocator_frag_ratio", allocFrag))
	}
	ev = append(ev, factInt("scanned_keys", scan.Total.Keys))
	summary := fmt.Sprintf("%d collections (%s, %s of the scanned memory) are over active-defrag-max-scan-fields (%d): active defrag does not move them inline but queues them and walks their elements in time-bounded steps, so a pass over them is slow.",
		scan.DefragSkip.Keys, HumanBytes(scan.DefragSkip.Bytes), Percent(share), scan.DefragMaxScanFields)
	return []Finding{newFinding("defrag-skip-keys", sev, summary, ev...)}
}

func ruleTTLSizeMix(scan *KeyScan, snap *Snapshot, t Thresholds) []Finding {
	if scan.WithTTL.Keys < max(t.TTLSizeMinKeys, 1) {
		return nil
	}
	p10, p50, p90 := SizeQuantile(scan.TTLSizes, 0.1), SizeQuantile(scan.TTLSizes, 0.5), SizeQuantile(scan.TTLSizes, 0.9)
	if p10 <= 0 {
		return nil
	}
	spread := float64(p90) / float64(p10)
	if spread < t.TTLSizeSpread {
		return nil
	}
	sev := SeverityInfo
	allocFrag, fragKnown := snap.Float("allocator_frag_ratio")
	if fragKnown && allocFrag >= t.AllocFragWarning {
		sev = SeverityWarning
	}
	classes := 0
	for _, c := range scan.TTLSizes {
		// Classes with at least 1% of the keys: a stray outlier is not a mix.
		if c.Keys*100 >= scan.WithTTL.Keys {
			classes++
		}
	}
	ttl10, ttl90 := SizeQuantile(scan.TTLs, 0.1), SizeQuantile(scan.TTLs, 0.9)
	ev := []Fact{
		factInt("ttl_keys", scan.WithTTL.Keys),
		factBytes("ttl_size_p10", p10),
		factBytes("ttl_size_p50", p50),
		factBytes("ttl_size_p90", p90),
		factRatio("ttl_size_spread", spread),
		factDuration("ttl_p10", time.Duration(ttl10)*time.Second),
		factDuration("ttl_p90", time.Duration(ttl90)*time.Second),
		factInt("size_classes", int64(classes)),
	}
	if fragKnown {
		ev = append(ev, factRatio("allocator_frag_ratio", allocFrag))
	}
	ev = append(ev, factInt("scanned_keys", scan.Total.Keys))
	summary := fmt.Sprintf("%d keys with a TTL range from %s (p10) to %s (p90), %.0fx apart across %d size classes: as they expire at different times they leave holes in the allocator's pages that values of other sizes cannot fill.",
		scan.WithTTL.Keys, HumanBytes(p10), HumanBytes(p90), spread, classes)
	return []Finding{newFinding("ttl-size-mix", sev, summary, ev...)}
}
