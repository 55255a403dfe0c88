package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers/redact"
)

// scanOf aggregates keys the way a scanner does and returns the result.
func scanOf(keys []Key) *KeyScan {
	stats := NewKeyStats(DefaultThresholds(), 0)
	for _, k := range keys {
		stats.Add(k)
	}
	scan := &KeyScan{Complete: true, Scanned: int64(len(keys))}
	stats.Fill(scan)
	return scan
}

// many returns n keys named prefix:<i> of the given type, sizes and TTL.
func many(n int, prefix, typ string, size func(i int) int64, ttl time.Duration) []Key {
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = Key{Name: fmt.Sprintf("%s:%d", prefix, i), Type: typ, Bytes: size(i), Elements: 1, TTL: ttl}
	}
	return keys
}

func fixed(n int64) func(int) int64 { return func(int) int64 { return n } }

func TestKeyFindings(t *testing.T) {
	policy := func(p string, extra ...string) *Snapshot {
		cfg := map[string]string{"maxmemory-policy": p}
		fields := map[string]string{}
		for i := 0; i+1 < len(extra); i += 2 {
			fields[extra[i]] = extra[i+1]
		}
		return fixture(t, "redis-7.0.txt", fields, cfg)
	}
	// Sizes spread over 64 B to 64 KiB: ten power-of-two classes.
	spread := func(i int) int64 { return 64 << (i % 11) }
	cases := []struct {
		name string
		keys []Key
		snap *Snapshot
		want map[string]Severity
	}{
		{
			name: "small uniform cache with TTLs",
			keys: many(2000, "session", "string", fixed(100), time.Hour),
			snap: policy("allkeys-lru"),
			want: map[string]Severity{},
		},
		{
			name: "one big string and one huge hash",
			keys: append(many(100, "user", "string", fixed(100), NoTTL),
				Key{Name: "blob:1", Type: "string", Bytes: 2 << 20, Elements: 2 << 20, TTL: NoTTL},
				Key{Name: "idx:all", Type: "hash", Bytes: 600 << 20, Elements: 5_000_000, TTL: NoTTL}),
			snap: policy("allkeys-lru", "allocator_frag_ratio", "1.01"),
			want: map[string]Severity{"big-keys": SeverityCritical, "defrag-skip-keys": SeverityInfo},
		},
		{
			// Active defrag counts a list's quicklist nodes, not its
			// elements, against max-scan-fields: LLEN says nothing of it.
			name: "big list by elements only",
			keys: []Key{{Name: "q", Type: "list", Bytes: 1 << 20, Elements: 20_000, TTL: NoTTL}},
			snap: policy("allkeys-lru"),
			want: map[string]Severity{"big-keys": SeverityWarning},
		},
		{
			name: "volatile policy, most bytes without TTL",
			keys: append(many(100, "cache", "string", fixed(100), time.Minute), many(100, "user", "string", fixed(1000), NoTTL)...),
			snap: policy("volatile-lru"),
			want: map[string]Severity{"keys-no-ttl": SeverityWarning},
		},
		{
			name: "volatile policy near maxmemory",
			keys: many(100, "user", "string", fixed(1000), NoTTL),
			snap: policy("volatile-lru", "used_memory", "900", "maxmemory", "1000"),
			want: map[string]Severity{"keys-no-ttl": SeverityCritical},
		},
		{
			name: "noeviction with keys without TTL",
			keys: many(100, "user", "string", fixed(1000), NoTTL),
			snap: policy("noeviction"),
			want: map[string]Severity{"keys-no-ttl": SeverityInfo},
		},
		{
			name: "allkeys policy: TTL-less keys are evictable",
			keys: many(100, "user", "string", fixed(1000), NoTTL),
			snap: policy("allkeys-lfu"),
			want: map[string]Severity{},
		},
		{
			name: "collections over max-scan-fields hold most bytes, allocator fragmented",
			keys: append(many(10, "feed", "zset", fixed(5<<20), NoTTL), many(100, "k", "string", fixed(100), NoTTL)...),
			snap: policy("allkeys-lru", "allocator_frag_ratio", "1.4"),
			want: map[string]Severity{"big-keys": SeverityWarning, "defrag-skip-keys": SeverityWarning},
		},
		{
			name: "variable sizes with TTLs",
			keys: many(5000, "page", "string", spread, 10*time.Minute),
			snap: policy("allkeys-lru", "allocator_frag_ratio", "1.02"),
			want: map[string]Severity{"ttl-size-mix": SeverityInfo},
		},
		{
			name: "variable sizes with TTLs and fragmentation already there",
			keys: many(5000, "page", "string", spread, 10*time.Minute),
			snap: policy("allkeys-lru", "allocator_frag_ratio", "1.6"),
			want: map[string]Severity{"ttl-size-mix": SeverityWarning},
		},
		{
			name: "variable sizes but too few keys with TTL to judge",
			keys: many(500, "page", "string", spread, 10*time.Minute),
			snap: policy("allkeys-lru", "allocator_frag_ratio", "1.6"),
			want: map[string]Severity{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The fixture's collections in the elements fields need the
			// elements set; many() sets 1, which is what a string has.
			for i := range tc.keys {
				if tc.keys[i].Type == "zset" {
					tc.keys[i].Elements = 50_000
				}
			}
			got := map[string]Severity{}
			for _, f := range KeyFindings(scanOf(tc.keys), tc.snap, DefaultThresholds()) {
				got[f.ID] = f.Severity
				if spec, _ := SpecFor(f.ID); spec.Area != AreaKeys {
					t.Errorf("%s is not in the keys area", f.ID)
				}
				if f.Summary == "" || len(f.Evidence) == 0 {
					t.Errorf("%s has no summary or evidence", f.ID)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("findings = %v, want %v", got, tc.want)
			}
		})
	}
}

// Key names in findings are untrusted: a newline or a terminal escape in a
// key comes out as text, and a megabyte name is cut.
func TestKeyFindingsQuoteNames(t *testing.T) {
	name := "evil\n\x1b[31m<!channel>" + strings.Repeat("x", 1<<20)
	scan := scanOf([]Key{{Name: name, Type: "string", Bytes: 4 << 20, Elements: 4 << 20, TTL: NoTTL}})
	fs := KeyFindings(scan, fixture(t, "redis-7.0.txt", nil, nil), DefaultThresholds())
	if len(fs) == 0 {
		t.Fatal("no findings")
	}
	for _, f := range fs {
		if strings.ContainsAny(f.Summary, "\n\x1b") || len(f.Summary) > 2000 {
			t.Errorf("%s summary carries the raw name: %q", f.ID, redact.Truncate(f.Summary, 200))
		}
		for _, e := range f.Evidence {
			if strings.ContainsAny(e.Text, "\n\x1b") || len(e.Text) > 400 {
				t.Errorf("%s fact %s carries the raw name", f.ID, e.Name)
			}
		}
	}
}

func TestParseKeysArgs(t *testing.T) {
	cases := []struct {
		args    string
		name    string
		want    KeyScanOptions
		wantErr string
	}{
		{args: "cache-1", name: "cache-1", want: KeyScanOptions{Top: 20, Limit: 1_000_000}},
		{args: "cache-1 --match session:* --top 5 --limit 500k --fast", name: "cache-1",
			want: KeyScanOptions{Match: "session:*", Top: 5, Limit: 500_000, Fast: true}},
		{args: "--limit=2m cache-1 --top=1000", name: "cache-1", want: KeyScanOptions{Top: 1000, Limit: 2_000_000}},
		{args: "", wantErr: "keys takes one instance name"},
		{args: "a b", wantErr: "keys takes one instance name"},
		{args: "cache-1 --top 0", wantErr: `--top must be a number from 1 to 1000, not "0"`},
		{args: "cache-1 --top 1001", wantErr: `--top must be a number from 1 to 1000`},
		{args: "cache-1 --limit -5", wantErr: `--limit must be a number of keys`},
		{args: "cache-1 --limit 1g", wantErr: `--limit must be a number of keys`},
		{args: "cache-1 --limit 200m", wantErr: `--limit must be a number of keys`},
		{args: "cache-1 --match", wantErr: "--match needs a value"},
		{args: "cache-1 --fast=yes", wantErr: "--fast takes no value"},
		{args: "cache-1 --count 5", wantErr: `unknown option "--count"`},
		{args: "cache-1 --match " + strings.Repeat("a", 257), wantErr: "--match needs a pattern of 1 to 256 characters"},
	}
	for _, tc := range cases {
		name, opts, err := ParseKeysArgs(strings.Fields(tc.args))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsUsage(err) {
				t.Errorf("ParseKeysArgs(%q) error = %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || name != tc.name || fmt.Sprint(opts) != fmt.Sprint(tc.want) {
			t.Errorf("ParseKeysArgs(%q) = %q %+v %v; want %q %+v", tc.args, name, opts, err, tc.name, tc.want)
		}
	}
}

// recordingScanner answers with a canned scan and records what it was
// asked; the real scanner has its own tests against real servers.
type recordingScanner struct {
	nodes []string
	opts  KeyScanOptions
	err   error
}

func (r *recordingScanner) Scan(_ context.Context, nodes []Instance, opts KeyScanOptions) (*KeyScan, error) {
	for _, n := range nodes {
		r.nodes = append(r.nodes, n.Name)
	}
	r.opts = opts
	if r.err != nil {
		return nil, r.err
	}
	return scanOf(many(50, "user", "string", fixed(2<<20), NoTTL)), nil
}

func TestServiceKeys(t *testing.T) {
	snap := fixture(t, "redis-7.0.txt", nil, nil)
	insts := []Instance{
		{Name: "cache-1", Addr: "127.0.0.1:1", Thresholds: DefaultThresholds(), Tags: []string{"team-a"}},
		{Name: "shop/10.0.0.1-7000", Addr: "10.0.0.1:7000", Cluster: true, Origin: "shop", Tags: []string{"cluster-shop", "primary"}},
		{Name: "shop/10.0.0.2-7000", Addr: "10.0.0.2:7000", Cluster: true, Origin: "shop", Tags: []string{"cluster-shop", "replica"}},
		{Name: "shop/10.0.0.3-7000", Addr: "10.0.0.3:7000", Cluster: true, Origin: "shop", Tags: []string{"cluster-shop", "primary"}},
	}
	svc := NewService(insts, cannedProber{snap}, nil, 4, nil)
	if _, err := svc.Handle(context.Background(), Command{Verb: "keys", Args: []string{"cache-1"}}); err == nil || !strings.Contains(err.Error(), "not enabled") {
		t.Fatalf("keys without a scanner: %v", err)
	}
	rec := &recordingScanner{}
	svc.SetKeyScanner(rec)

	resp, err := svc.Handle(context.Background(), Command{Verb: "keys", Args: []string{"cache-1", "--top", "3"}})
	if err != nil {
		t.Fatal(err)
	}
	rep := resp.Reports[0]
	if rep.Keys == nil || rep.Keys.Shown != 3 || !rep.Has("big-keys") || rep.Severity != SeverityWarning {
		t.Fatalf("report = %+v", rep)
	}
	if rec.opts.Thresholds.BigString != DefaultThresholds().BigString {
		t.Errorf("the instance's thresholds did not reach the scanner: %+v", rec.opts.Thresholds)
	}

	// A cluster seed's name scans every primary, not the replicas.
	rec.nodes = nil
	resp, err = svc.Handle(context.Background(), Command{Verb: "keys", Args: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.nodes, ","); got != "shop/10.0.0.1-7000,shop/10.0.0.3-7000" || resp.Reports[0].Instance != "shop" {
		t.Errorf("cluster scan covered %s as %q", got, resp.Reports[0].Instance)
	}

	if _, err := svc.Handle(context.Background(), Command{Verb: "keys", Args: []string{"shop/10.0.0.2-7000"}}); !IsUsage(err) || !strings.Contains(err.Error(), "cluster replica") {
		t.Errorf("scan of a cluster replica: %v", err)
	}

	// Scope: a channel that sees team-a cannot name the cluster.
	if _, err := svc.Handle(context.Background(), Command{Verb: "keys", Args: []string{"shop"}, Scope: []string{"team-a"}}); !errors.Is(err, ErrUnknownInstance) {
		t.Errorf("out-of-scope cluster: %v", err)
	}
	if _, err := svc.Handle(context.Background(), Command{Verb: "keys", Args: []string{"nope"}}); !errors.Is(err, ErrUnknownInstance) {
		t.Errorf("unknown instance: %v", err)
	}

	// A scan that fails reports the instance unreachable, password redacted.
	insts[0].Password = "s3cret"
	svc.SetInstances(insts)
	rec.err = &ProbeError{Instance: "cache-1", Class: ClassNoPerm, Err: errors.New("NOPERM user redisbot s3cret has no permissions to run the 'scan' command")}
	resp, err = svc.Handle(context.Background(), Command{Verb: "keys", Args: []string{"cache-1"}})
	if err != nil {
		t.Fatal(err)
	}
	rep = resp.Reports[0]
	if !rep.Failed() || rep.Error.Class != ClassNoPerm || strings.Contains(rep.Error.Message, "s3cret") || !rep.Has("unreachable") {
		t.Errorf("failed scan report: %+v", rep.Error)
	}
	if f, _ := rep.Finding("unreachable"); !strings.Contains(f.Summary, "key-scan rules") {
		t.Errorf("a refused scan does not point at the ACL rules: %q", f.Summary)
	}
}

func TestKeyJSON(t *testing.T) {
	for _, tc := range []struct {
		key  Key
		want string
	}{
		{Key{Name: "session:1", Type: "string", Bytes: 80, Elements: 5, TTL: 90 * time.Second},
			`{"name":"session:1","type":"string","bytes":80,"elements":5,"ttl_ms":90000}`},
		{Key{Name: "bin:\x00\xff", Type: "hash", Bytes: 100, Elements: -1, TTL: NoTTL, Node: "shop/a"},
			`{"name":"bin:\u0000\ufffd","name_base64":"YmluOgD/","type":"hash","bytes":100,"elements":-1,"ttl_ms":-1,"node":"shop/a"}`},
	} {
		b, err := json.Marshal(tc.key)
		if err != nil || string(b) != tc.want {
			t.Errorf("json.Marshal(%q) = %s, %v; want %s", tc.key.Name, b, err, tc.want)
		}
	}
}

// TestKeyFindingsEvidenceFromTheProbe: the big-keys evidence shows the
// lazy-freeing settings the probe read, and keys-no-ttl the OOM count,
// "none" on a Redis 7.0 whose INFO has no errorstat_OOM line (no
// rejection), "unknown" only where there is no errorstats section.
func TestKeyFindingsEvidenceFromTheProbe(t *testing.T) {
	snap := fixture(t, "redis-7.0.txt", nil, map[string]string{"maxmemory-policy": "volatile-lru",
		"lazyfree-lazy-user-del": "yes", "lazyfree-lazy-expire": "no", "lazyfree-lazy-eviction": "no",
		"lazyfree-lazy-server-del": "no", "lazyfree-lazy-user-flush": "no"})
	if _, has := snap.Info["errorstat_OOM"]; has {
		t.Fatal("the fixture has OOM rejections; this test wants none")
	}
	keys := append(many(100, "cache", "string", fixed(100), time.Minute), many(100, "user", "string", fixed(1000), NoTTL)...)
	keys = append(keys, Key{Name: "blob:1", Type: "string", Bytes: 2 << 20, Elements: -1, TTL: NoTTL})
	found := map[string]Finding{}
	for _, f := range KeyFindings(scanOf(keys), snap, DefaultThresholds()) {
		found[f.ID] = f
	}
	big, ok := found["big-keys"]
	if !ok {
		t.Fatalf("no big-keys finding: %v", found)
	}
	for name, want := range map[string]string{"lazyfree_lazy_user_del": "yes", "lazyfree_lazy_expire": "no", "lazyfree_lazy_user_flush": "no"} {
		if f, ok := big.Evidence.Get(name); !ok || f.Text != want {
			t.Errorf("big-keys evidence %s = %+v, %v; want %q", name, f, ok, want)
		}
	}
	noTTL, ok := found["keys-no-ttl"]
	if !ok {
		t.Fatalf("no keys-no-ttl finding: %v", found)
	}
	if f, ok := noTTL.Evidence.Get("errorstat_OOM"); !ok || f.Text != "none" {
		t.Errorf("keys-no-ttl errorstat_OOM = %+v, %v; want none", f, ok)
	}
}
