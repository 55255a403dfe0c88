package handlers

import (
	"slices"
	"strings"
	"testing"
)

// defectSnapshot is a server as INFO describes it, with only the fields the
// defect table reads.
func defectSnapshot(fields ...string) *Snapshot {
	info := Info{"pubsub_channels": "0", "number_of_cached_scripts": "0", "cluster_enabled": "0", "role": "master"}
	for i := 0; i+1 < len(fields); i += 2 {
		info[fields[i]] = fields[i+1]
	}
	return &Snapshot{Info: info}
}

func TestMatchDefragDefects(t *testing.T) {
	cases := []struct {
		name   string
		snap   *Snapshot
		blocks []string // ids of blocking matches, in order
		warns  []string
	}{
		{name: "7.0 has none", snap: defectSnapshot("redis_version", "7.0.15")},
		{name: "7.2.4 crashes when defrag is turned on again", snap: defectSnapshot("redis_version", "7.2.4"),
			blocks: []string{"redis-7.2-reenable-crash"}, warns: []string{"redis-7.2-expires-crawl"}},
		{name: "7.2.4 in cluster mode", snap: defectSnapshot("redis_version", "7.2.4", "cluster_enabled", "1"),
			blocks: []string{"redis-7.2-cluster-flush-crash", "redis-7.2-reenable-crash"}, warns: []string{"redis-7.2-expires-crawl"}},
		// The runbooks' 7.2 warning: RSS can keep growing while defrag is on.
		// defrag-on runs, watched.
		{name: "7.2.6 only warns", snap: defectSnapshot("redis_version", "7.2.6"), warns: []string{"redis-7.2-expires-crawl"}},
		{name: "7.2.12 still warns: the backport's release is not confirmed", snap: defectSnapshot("redis_version", "7.2.12"),
			warns: []string{"redis-7.2-expires-crawl"}},
		{name: "7.4.1 without pub/sub or scripts warns", snap: defectSnapshot("redis_version", "7.4.1"),
			warns: []string{"redis-lua-pubsub-defrag-crash"}},
		{name: "7.4.1 with pub/sub channels blocks", snap: defectSnapshot("redis_version", "7.4.1", "pubsub_channels", "3"),
			blocks: []string{"redis-lua-pubsub-defrag-crash"}},
		{name: "7.4.1 with cached scripts blocks", snap: defectSnapshot("redis_version", "7.4.1", "number_of_cached_scripts", "12"),
			blocks: []string{"redis-lua-pubsub-defrag-crash"}},
		{name: "7.4.1 whose INFO hides the counts blocks", snap: &Snapshot{Info: Info{"redis_version": "7.4.1"}},
			blocks: []string{"redis-lua-pubsub-defrag-crash"}},
		{name: "7.4.6 has none", snap: defectSnapshot("redis_version", "7.4.6", "pubsub_channels", "3")},
		{name: "8.0.1", snap: defectSnapshot("redis_version", "8.0.1"),
			warns: []string{"redis-lua-pubsub-defrag-crash", "redis-8.0-cron-twice", "redis-8.0-expires-skipped"}},
		{name: "8.0.3 replica", snap: defectSnapshot("redis_version", "8.0.3", "role", "slave"),
			blocks: []string{"redis-8-replica-flush-crash"}, warns: []string{"redis-lua-pubsub-defrag-crash"}},
		{name: "8.2.0", snap: defectSnapshot("redis_version", "8.2.0"),
			blocks: []string{"redis-8.2-stream-hfe-defrag-crash"}, warns: []string{"redis-lua-pubsub-defrag-crash"}},
		{name: "8.2.2 has none", snap: defectSnapshot("redis_version", "8.2.2", "role", "slave", "pubsub_channels", "3")},
		{name: "the 8.0 development line reports 7.9", snap: defectSnapshot("redis_version", "7.9.224")},
		{name: "valkey 7.2 reports redis_version 7.2.4: its own version counts",
			snap: defectSnapshot("redis_version", "7.2.4", "server_name", "valkey", "valkey_version", "7.2.11")},
		{name: "valkey 7.2.11 in cluster mode", snap: defectSnapshot("redis_version", "7.2.4", "server_name", "valkey", "valkey_version", "7.2.11", "cluster_enabled", "1"),
			blocks: []string{"valkey-7.2-cluster-flush-crash"}},
		{name: "valkey 8.0.1", snap: defectSnapshot("redis_version", "7.2.4", "server_name", "valkey", "valkey_version", "8.0.1"),
			blocks: []string{"valkey-large-alloc-assert", "valkey-8.0.0-script-evict-crash"}, warns: []string{"valkey-sparse-pages"}},
		{name: "valkey 8.1.4 has none", snap: defectSnapshot("redis_version", "7.2.4", "server_name", "valkey", "valkey_version", "8.1.4")},
		{name: "an unreadable version matches nothing", snap: defectSnapshot("redis_version", "unstable")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var blocks, warns []string
			for _, m := range MatchDefragDefects(tc.snap) {
				if m.Effect == DefectBlocks {
					blocks = append(blocks, m.Defect.ID)
				} else {
					warns = append(warns, m.Defect.ID)
				}
			}
			if !slices.Equal(blocks, tc.blocks) || !slices.Equal(warns, tc.warns) {
				t.Errorf("blocks %q, warns %q; want %q, %q", blocks, warns, tc.blocks, tc.warns)
			}
		})
	}
}

func TestDefragDefectsCiteSources(t *testing.T) {
	ids := map[string]bool{}
	for _, d := range DefragDefects {
		if ids[d.ID] {
			t.Errorf("duplicate id %s", d.ID)
		}
		ids[d.ID] = true
		if d.Server != "redis" && d.Server != "valkey" {
			t.Errorf("%s: server %q", d.ID, d.Server)
		}
		if len(d.Sources) == 0 || d.Note == "" || d.Ref == "" || len(d.Versions) == 0 {
			t.Errorf("%s: an entry needs a note, a reference, versions and sources", d.ID)
		}
		for _, src := range d.Sources {
			if !strings.HasPrefix(src, "https://") {
				t.Errorf("%s: source %q is not a link", d.ID, src)
			}
		}
		for _, r := range d.Versions {
			if r.Before != [3]int{} && !versionLess(r.From, r.Before) {
				t.Errorf("%s: empty range %v", d.ID, r)
			}
		}
	}
}

// The trigger says what INFO showed, so a warning can explain why it does
// not block.
func TestDefectTriggerSays(t *testing.T) {
	ms := MatchDefragDefects(defectSnapshot("redis_version", "7.4.3", "pubsub_channels", "2", "number_of_cached_scripts", "5"))
	if len(ms) != 1 || ms[0].Seen != "pubsub_channels 2, number_of_cached_scripts 5" {
		t.Fatalf("matches %+v", ms)
	}
	ms = MatchDefragDefects(defectSnapshot("redis_version", "7.4.3"))
	if len(ms) != 1 || ms[0].Effect != DefectWarns || !strings.Contains(ms[0].Seen, "no pub/sub channels") {
		t.Fatalf("matches %+v", ms)
	}
}
