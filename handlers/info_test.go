package handlers

import (
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// infoCapturesDir holds INFO replies of each server format; its README says
// which are real captures and which were written from the server's source.
const infoCapturesDir = "testdata/info"

// readInfoCapture returns a capture from testdata/info as the server sent it.
func readInfoCapture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(infoCapturesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// infoIntWant and infoFloatWant are what an accessor should answer; ok is
// false for a field the format does not have.
type (
	infoIntWant struct {
		v  int64
		ok bool
	}
	infoFloatWant struct {
		v  float64
		ok bool
	}
)

func infoInt(v int64) infoIntWant       { return infoIntWant{v, true} }
func infoFloat(v float64) infoFloatWant { return infoFloatWant{v, true} }
func infoVersion(a, b, c int) [3]int    { return [3]int{a, b, c} }

// infoCaptureCases is one row per file in testdata/info; the coverage test
// fails when a capture is added without a row. The real captures of each
// supported version are in testdata/versions (versions_test.go).
var infoCaptureCases = []struct {
	file    string
	version string
	server  string
	role    string
	// jemalloc and jemallocKnown are what Snapshot.Jemalloc answers.
	jemalloc, jemallocKnown bool
	maxmemory               infoIntWant
	policy                  string // "" means unknown
	keys, expires           int64
	usedMemory, rss         infoIntWant
	fragRatio, allocFrag    infoFloatWant
	// atLeast must hold for VersionAtLeast and notAtLeast must not.
	atLeast, notAtLeast [3]int
}{
	{
		file: "redis-6.2-replica.txt", version: "6.2.14", server: "redis", role: "slave",
		jemalloc: true, jemallocKnown: true, maxmemory: infoInt(2147483648), policy: "allkeys-lru",
		keys: 9845123, expires: 2281934,
		usedMemory: infoInt(2415957315), rss: infoInt(2557796352),
		fragRatio: infoFloat(1.06), allocFrag: infoFloat(1.04),
		atLeast: infoVersion(6, 0, 0), notAtLeast: infoVersion(7, 0, 0),
	},
	{
		file: "redis-7.0.txt", version: "7.0.15", server: "redis", role: "master",
		jemalloc: true, jemallocKnown: true, maxmemory: infoInt(0), policy: "noeviction",
		keys: 250000, expires: 0,
		usedMemory: infoInt(60883424), rss: infoInt(126472192),
		fragRatio: infoFloat(2.08), allocFrag: infoFloat(1.91),
		atLeast: infoVersion(7, 0, 15), notAtLeast: infoVersion(7, 1, 0),
	},
	{
		file: "redis-7.0-loading.txt", version: "7.0.15", server: "redis", role: "master",
		jemalloc: true, jemallocKnown: true, maxmemory: infoInt(0), policy: "noeviction",
		keys: 1204877, expires: 233012,
		usedMemory: infoInt(1312456704), rss: infoInt(1341181952),
		fragRatio: infoFloat(1.02), allocFrag: infoFloat(1.01),
		atLeast: infoVersion(7, 0, 0), notAtLeast: infoVersion(7, 0, 16),
	},
	{
		file: "redis-7.2-oom.txt", version: "7.2.4", server: "redis", role: "master",
		jemalloc: true, jemallocKnown: true, maxmemory: infoInt(1073741824), policy: "noeviction",
		keys: 2981345, expires: 0,
		usedMemory: infoInt(1075183624), rss: infoInt(1129447424),
		fragRatio: infoFloat(1.05), allocFrag: infoFloat(1.03),
		atLeast: infoVersion(7, 2, 0), notAtLeast: infoVersion(7, 4, 0),
	},
	{
		// A libc build still prints the allocator fields, faked from RSS,
		// so allocator_frag_ratio is present and says nothing.
		file: "redis-7.4-libc.txt", version: "7.4.5", server: "redis", role: "master",
		jemalloc: false, jemallocKnown: true, maxmemory: infoInt(0), policy: "noeviction",
		keys: 1601234, expires: 0,
		usedMemory: infoInt(401293312), rss: infoInt(493592576),
		fragRatio: infoFloat(1.23), allocFrag: infoFloat(1.00),
		atLeast: infoVersion(7, 4, 5), notAtLeast: infoVersion(7, 4, 6),
	},
	{
		file: "redis-8.0.txt", version: "8.0.3", server: "redis", role: "master",
		jemalloc: true, jemallocKnown: true, maxmemory: infoInt(0), policy: "noeviction",
		keys: 1712345 + 23456, expires: 23456,
		usedMemory: infoInt(471236608), rss: infoInt(518713344),
		fragRatio: infoFloat(1.10), allocFrag: infoFloat(1.03),
		atLeast: infoVersion(8, 0, 0), notAtLeast: infoVersion(8, 2, 0),
	},
	{
		file: "redis-8.2.txt", version: "8.2.1", server: "redis", role: "master",
		jemalloc: true, jemallocKnown: true, maxmemory: infoInt(0), policy: "noeviction",
		keys: 1923456, expires: 612345,
		usedMemory: infoInt(488112128), rss: infoInt(537014272),
		fragRatio: infoFloat(1.10), allocFrag: infoFloat(1.04),
		atLeast: infoVersion(8, 2, 1), notAtLeast: infoVersion(8, 10, 0),
	},
	{
		file: "valkey-8.1.txt", version: "8.1.4", server: "valkey", role: "master",
		jemalloc: true, jemallocKnown: true, maxmemory: infoInt(0), policy: "noeviction",
		keys: 1598765, expires: 398765,
		usedMemory: infoInt(427824131), rss: infoInt(465506304),
		fragRatio: infoFloat(1.09), allocFrag: infoFloat(1.05),
		atLeast: infoVersion(7, 4, 0), notAtLeast: infoVersion(9, 0, 0),
	},
	{
		// Not an INFO reply at all: everything is unknown, nothing fails.
		file: "garbage.txt", version: "", server: "redis", role: "",
		jemalloc: false, jemallocKnown: false, maxmemory: infoIntWant{}, policy: "",
		keys: 0, expires: 0,
		notAtLeast: infoVersion(0, 0, 0),
	},
}

func TestParseInfoCaptures(t *testing.T) {
	for _, tc := range infoCaptureCases {
		t.Run(tc.file, func(t *testing.T) {
			text := readInfoCapture(t, tc.file)
			s := Snapshot{Info: ParseInfo(text)}

			if got := s.Version(); got != tc.version {
				t.Errorf("Version() = %q, want %q", got, tc.version)
			}
			if got := s.ServerName(); got != tc.server {
				t.Errorf("ServerName() = %q, want %q", got, tc.server)
			}
			if got := s.Role(); got != tc.role {
				t.Errorf("Role() = %q, want %q", got, tc.role)
			}
			if je, known := s.Jemalloc(); je != tc.jemalloc || known != tc.jemallocKnown {
				t.Errorf("Jemalloc() = %v, %v; want %v, %v", je, known, tc.jemalloc, tc.jemallocKnown)
			}
			if v, ok := s.Maxmemory(); v != tc.maxmemory.v || ok != tc.maxmemory.ok {
				t.Errorf("Maxmemory() = %d, %v; want %d, %v", v, ok, tc.maxmemory.v, tc.maxmemory.ok)
			}
			if p, ok := s.Policy(); p != tc.policy || ok != (tc.policy != "") {
				t.Errorf("Policy() = %q, %v; want %q", p, ok, tc.policy)
			}
			if keys, expires := s.Keys(); keys != tc.keys || expires != tc.expires {
				t.Errorf("Keys() = %d, %d; want %d, %d", keys, expires, tc.keys, tc.expires)
			}
			for _, f := range []struct {
				key  string
				want infoIntWant
			}{{"used_memory", tc.usedMemory}, {"used_memory_rss", tc.rss}} {
				if v, ok := s.Int(f.key); v != f.want.v || ok != f.want.ok {
					t.Errorf("Int(%q) = %d, %v; want %d, %v", f.key, v, ok, f.want.v, f.want.ok)
				}
			}
			for _, f := range []struct {
				key  string
				want infoFloatWant
			}{{"mem_fragmentation_ratio", tc.fragRatio}, {"allocator_frag_ratio", tc.allocFrag}} {
				if v, ok := s.Float(f.key); v != f.want.v || ok != f.want.ok {
					t.Errorf("Float(%q) = %v, %v; want %v, %v", f.key, v, ok, f.want.v, f.want.ok)
				}
			}
			if tc.atLeast != [3]int{} && !s.VersionAtLeast(tc.atLeast[0], tc.atLeast[1], tc.atLeast[2]) {
				t.Errorf("VersionAtLeast(%v) = false for %q", tc.atLeast, s.Version())
			}
			if s.VersionAtLeast(tc.notAtLeast[0], tc.notAtLeast[1], tc.notAtLeast[2]) {
				t.Errorf("VersionAtLeast(%v) = true for %q", tc.notAtLeast, s.Version())
			}
			if tc.file == "garbage.txt" {
				return
			}

			// Every "field:value" line of a real reply reaches the map.
			fields := map[string]bool{}
			for line := range strings.SplitSeq(text, "\r\n") {
				if line != "" && !strings.HasPrefix(line, "#") {
					key, _, ok := strings.Cut(line, ":")
					if !ok {
						t.Fatalf("capture line without a colon: %q", line)
					}
					fields[key] = true
				}
			}
			if len(s.Info) != len(fields) {
				t.Errorf("ParseInfo kept %d fields, the capture has %d", len(s.Info), len(fields))
			}
			// The captures must agree with the server's own formula, or the
			// rules tested on them prove nothing.
			used, _ := s.Int("used_memory")
			rss, _ := s.Int("used_memory_rss")
			frag, _ := s.Float("mem_fragmentation_ratio")
			if math.Abs(frag-float64(rss)/float64(used)) > 0.01 {
				t.Errorf("mem_fragmentation_ratio %.2f, but rss/used = %.4f", frag, float64(rss)/float64(used))
			}
		})
	}
}

func TestParseInfoCapturesAllListed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(infoCapturesDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tc := range infoCaptureCases {
		listed[tc.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no row in infoCaptureCases", f)
		}
		delete(listed, filepath.Base(f))
	}
	for f := range listed {
		t.Errorf("infoCaptureCases lists %s, which is not in %s", f, infoCapturesDir)
	}
}

// ParseInfo's names and values are copies: none points into the reply,
// which a kept value would otherwise hold in memory whole.
func TestParseInfoKeepsNoPartOfTheReply(t *testing.T) {
	b, err := os.ReadFile("testdata/info/redis-7.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	lo := uintptr(unsafe.Pointer(unsafe.StringData(text)))
	hi := lo + uintptr(len(text))
	info := ParseInfo(text)
	if len(info) < 100 {
		t.Fatalf("parsed %d fields", len(info))
	}
	for k, v := range info {
		for _, s := range []string{k, v} {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); s != "" && p >= lo && p < hi {
				t.Errorf("%s:%s points into the reply", k, v)
			}
		}
	}
}

func TestParseInfoLineEnds(t *testing.T) {
	crlf := "# Server\r\nredis_version:7.2.4\r\nrole:master\r\n\r\n# Memory\r\nused_memory:100\r\n"
	want := Info{"redis_version": "7.2.4", "role": "master", "used_memory": "100"}
	for name, text := range map[string]string{
		"crlf":                   crlf,
		"lf":                     strings.ReplaceAll(crlf, "\r\n", "\n"),
		"mixed":                  "# Server\nredis_version:7.2.4\r\nrole:master\n\n# Memory\r\nused_memory:100",
		"no final line end":      strings.TrimSuffix(crlf, "\r\n"),
		"doubled cr":             strings.ReplaceAll(crlf, "\r\n", "\r\r\n"),
		"blank lines at the end": strings.ReplaceAll(crlf, "\r\n", "\n") + "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			if got := ParseInfo(text); !maps.Equal(got, want) {
				t.Errorf("ParseInfo = %v, want %v", got, want)
			}
		})
	}
	// The real capture parses the same with its \r\n turned into \n.
	capture := readInfoCapture(t, "redis-7.0.txt")
	if got, want := ParseInfo(strings.ReplaceAll(capture, "\r\n", "\n")), ParseInfo(capture); !maps.Equal(got, want) {
		t.Errorf("\\n and \\r\\n versions of redis-7.0.txt parse differently")
	}
}

func TestParseInfoValues(t *testing.T) {
	info := ParseInfo("# Server\r\n" +
		"executable:/usr/bin/redis-server\r\n" +
		"config_file:C:\\redis.conf\r\n" +
		"listener0:name=tcp,bind=*,bind=-::*,port=6379\r\n" +
		"availability_zone:\r\n" +
		"used_memory:1\r\n" +
		"used_memory:2\r\n" +
		":no key\r\n" +
		"no colon at all\r\n" +
		"#commented_out:1\r\n")

	for key, want := range map[string]string{
		"executable":        "/usr/bin/redis-server",
		"config_file":       `C:\redis.conf`, // split at the first colon only
		"listener0":         "name=tcp,bind=*,bind=-::*,port=6379",
		"availability_zone": "",  // present, empty
		"used_memory":       "2", // the last duplicate wins
	} {
		if got, ok := info.String(key); !ok || got != want {
			t.Errorf("String(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	if !info.Has("availability_zone") {
		t.Error("an empty value must still count as present")
	}
	if _, ok := info.Int("availability_zone"); ok {
		t.Error("Int of an empty value must report false")
	}
	if _, ok := info.Float("availability_zone"); ok {
		t.Error("Float of an empty value must report false")
	}
	if n, ok := info.Int("used_memory"); !ok || n != 2 {
		t.Errorf("Int(used_memory) = %d, %v; want the last duplicate, 2", n, ok)
	}
	for _, key := range []string{"", "no colon at all", "#commented_out"} {
		if info.Has(key) {
			t.Errorf("ParseInfo kept %q", key)
		}
	}
	if len(info) != 5 {
		t.Errorf("ParseInfo kept %d fields, want 5: %v", len(info), info)
	}
}

func TestInfoKeyspace(t *testing.T) {
	info := ParseInfo("# Keyspace\r\n" +
		"db10:keys=10,expires=1,avg_ttl=0\r\n" +
		"db2:keys=2,expires=2,avg_ttl=100\r\n" +
		"db0:keys=1,expires=0,avg_ttl=0,subexpiry=0\r\n" +
		// Malformed lines are skipped, not fatal.
		"db3:keys=abc,expires=1,avg_ttl=0\r\n" +
		"db4:expires=1,avg_ttl=0\r\n" +
		"db5:keys=5\r\n" +
		"db6:garbage\r\n" +
		"dbx:keys=1,expires=0\r\n" +
		"db-1:keys=1,expires=1\r\n" +
		"db:keys=1,expires=1\r\n" +
		// Redis 8's Keysizes section also starts with "db".
		"db0_distrib_strings_sizes:8=1,16=2\r\n")

	got := info.Keyspace()
	want := []KeyspaceDB{{DB: 0, Keys: 1}, {DB: 2, Keys: 2, Expires: 2}, {DB: 10, Keys: 10, Expires: 1}}
	if !slices.Equal(got, want) {
		t.Errorf("Keyspace() = %+v, want %+v (db10 after db2)", got, want)
	}
	s := Snapshot{Info: info}
	if keys, expires := s.Keys(); keys != 13 || expires != 3 {
		t.Errorf("Keys() = %d, %d; want 13, 3", keys, expires)
	}
	if got := (Info{}).Keyspace(); len(got) != 0 {
		t.Errorf("Keyspace() of an empty reply = %v", got)
	}
}

func TestInfoErrorCount(t *testing.T) {
	info := ParseInfo("# Errorstats\r\n" +
		"errorstat_ERR:count=37\r\n" +
		"errorstat_OOM:count=3\r\n" +
		"errorstat_BROKEN:count=many\r\n" +
		"errorstat_EMPTY:\r\n")
	for _, tc := range []struct {
		prefix string
		want   int64
		ok     bool
	}{
		{"OOM", 3, true},
		{"ERR", 37, true},
		{"WRONGTYPE", 0, false}, // no such error yet
		{"BROKEN", 0, false},
		{"EMPTY", 0, false},
		{"oom", 0, false}, // prefixes are case sensitive, as Redis prints them
	} {
		if n, ok := info.ErrorCount(tc.prefix); n != tc.want || ok != tc.ok {
			t.Errorf("ErrorCount(%q) = %d, %v; want %d, %v", tc.prefix, n, ok, tc.want, tc.ok)
		}
	}
	oom := Snapshot{Info: ParseInfo(readInfoCapture(t, "redis-7.2-oom.txt"))}
	if n, ok := oom.Info.ErrorCount("OOM"); n != 1523 || !ok {
		t.Errorf("redis-7.2-oom.txt: ErrorCount(OOM) = %d, %v; want 1523", n, ok)
	}
	// Before 6.2 there is no Errorstats section: unknown, not zero.
	if _, ok := ParseInfo("# Stats\r\ntotal_commands_processed:1\r\n").ErrorCount("OOM"); ok {
		t.Error("ErrorCount without an Errorstats section must report false")
	}
}

func TestInfoFloat(t *testing.T) {
	for value, want := range map[string]infoFloatWant{
		"1.05":     infoFloat(1.05),
		"2.08":     infoFloat(2.08),
		"0":        infoFloat(0),
		"-0.5":     infoFloat(-0.5),
		"1e3":      infoFloat(1000),
		"nan":      {},
		"NaN":      {},
		"inf":      {},
		"+Inf":     {},
		"-inf":     {},
		"Infinity": {},
		"1e400":    {}, // overflows to +Inf
		"-1e400":   {},
		"":         {},
		"1.5%":     {},
		"abc":      {},
		" 1.0":     {},
	} {
		info := Info{"x": value}
		if got, ok := info.Float("x"); ok != want.ok || (ok && got != want.v) {
			t.Errorf("Float(%q) = %v, %v; want %v, %v", value, got, ok, want.v, want.ok)
		}
	}
	if _, ok := (Info{}).Float("missing"); ok {
		t.Error("Float of a missing field must report false")
	}
}

func TestInfoInt(t *testing.T) {
	for value, want := range map[string]infoIntWant{
		"42":                   infoInt(42),
		"-3":                   infoInt(-3),
		"1.00":                 infoInt(1), // some versions print counters as floats
		"1.99":                 infoInt(1), // truncated, as documented
		"1e3":                  infoInt(1000),
		"9223372036854775807":  infoInt(math.MaxInt64),
		"9223372036854775808":  {}, // does not fit an int64
		"-9223372036854775808": infoInt(math.MinInt64),
		"1e300":                {},
		"NaN":                  {},
		"inf":                  {},
		"":                     {},
		"12abc":                {},
		"0.00%":                {},
	} {
		info := Info{"x": value}
		if got, ok := info.Int("x"); ok != want.ok || (ok && got != want.v) {
			t.Errorf("Int(%q) = %d, %v; want %d, %v", value, got, ok, want.v, want.ok)
		}
	}
	if _, ok := (Info{}).Int("missing"); ok {
		t.Error("Int of a missing field must report false")
	}
}

func TestSnapshotVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		name    string
		info    string
		version string
		yes, no [][3]int
	}{
		{
			name:    "unstable build",
			info:    "redis_version:255.255.255\r\n",
			version: "255.255.255",
			yes:     [][3]int{{8, 2, 0}, {255, 255, 255}},
			no:      [][3]int{{256, 0, 0}, {255, 256, 0}},
		},
		{
			name:    "release candidate",
			info:    "redis_version:7.2.4-rc1\r\n",
			version: "7.2.4-rc1",
			yes:     [][3]int{{7, 2, 4}, {7, 2, 0}, {6, 9, 9}},
			no:      [][3]int{{7, 2, 5}, {7, 3, 0}, {8, 0, 0}},
		},
		{
			name:    "valkey reports its own version",
			info:    "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.4\r\n",
			version: "8.1.4",
			yes:     [][3]int{{8, 1, 4}, {7, 4, 0}},
			no:      [][3]int{{8, 1, 5}, {9, 0, 0}},
		},
		{
			name:    "valkey without valkey_version falls back to redis_version",
			info:    "redis_version:7.2.4\r\nserver_name:valkey\r\n",
			version: "7.2.4",
			yes:     [][3]int{{7, 2, 4}},
			no:      [][3]int{{7, 2, 5}},
		},
		{
			name:    "two parts",
			info:    "redis_version:7.2\r\n",
			version: "7.2",
			yes:     [][3]int{{7, 2, 0}},
			no:      [][3]int{{7, 2, 1}},
		},
		{
			name:    "numbers compare as numbers",
			info:    "redis_version:7.10.0\r\n",
			version: "7.10.0",
			yes:     [][3]int{{7, 9, 0}, {7, 10, 0}},
			no:      [][3]int{{7, 11, 0}},
		},
		{name: "one part", info: "redis_version:7\r\n", version: "7", no: [][3]int{{0, 0, 0}}},
		{name: "not a version", info: "redis_version:seven\r\n", version: "seven", no: [][3]int{{0, 0, 0}}},
		{name: "empty parts", info: "redis_version:7..2\r\n", version: "7..2", no: [][3]int{{0, 0, 0}}},
		{name: "absent", info: "# Server\r\n", version: "", no: [][3]int{{0, 0, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Snapshot{Info: ParseInfo(tc.info)}
			if got := s.Version(); got != tc.version {
				t.Errorf("Version() = %q, want %q", got, tc.version)
			}
			for _, v := range tc.yes {
				if !s.VersionAtLeast(v[0], v[1], v[2]) {
					t.Errorf("VersionAtLeast(%v) = false for %q", v, tc.version)
				}
			}
			for _, v := range tc.no {
				if s.VersionAtLeast(v[0], v[1], v[2]) {
					t.Errorf("VersionAtLeast(%v) = true for %q", v, tc.version)
				}
			}
		})
	}
}

// FuzzParseInfo checks that no input makes the parser or its accessors fail:
// a probe may get any bytes back from something listening on a Redis port.
func FuzzParseInfo(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(infoCapturesDir, "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	real, err := filepath.Glob(filepath.Join(versionsDir, "*", "info-everything.txt"))
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, real...)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, seed := range []string{
		"",
		":",
		"\r\n",
		"#",
		"a:b:c\r\n",
		"db0:keys=1,expires=0\r\ndb1:keys=,expires=\r\n",
		"db9999999999999999999:keys=1,expires=1\n",
		"db+1:keys=1,expires=1\n",
		"errorstat_OOM:count=3\nerrorstat_:count=\n",
		"used_memory:1e400\nmem_fragmentation_ratio:NaN\n",
		"redis_version:7.2.4-rc1\nserver_name:valkey\nvalkey_version:..\n",
		"maxmemory:-1\nmaxmemory_policy:\n",
		"\xff\xfe:\x00\r\r\n",
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, text string) {
		info := ParseInfo(text)
		for key, value := range info {
			if key == "" {
				t.Fatalf("empty key (value %q)", value)
			}
			if strings.ContainsRune(key, '\n') || strings.ContainsRune(value, '\n') {
				t.Fatalf("line end inside %q:%q", key, value)
			}
			if key[0] == '#' {
				t.Fatalf("section header kept as key %q", key)
			}
			n, intOK := info.Int(key)
			fl, floatOK := info.Float(key)
			if floatOK && (math.IsNaN(fl) || math.IsInf(fl, 0)) {
				t.Fatalf("Float(%q) = %v accepted", value, fl)
			}
			if intOK && !floatOK {
				t.Fatalf("Int(%q) = %d but Float rejects it", value, n)
			}
			info.Sub(key)
			if prefix, ok := strings.CutPrefix(key, "errorstat_"); ok {
				info.ErrorCount(prefix)
			}
		}
		dbs := info.Keyspace()
		if !slices.IsSortedFunc(dbs, func(a, b KeyspaceDB) int { return a.DB - b.DB }) {
			t.Fatalf("Keyspace() not in database order: %+v", dbs)
		}
		for _, db := range dbs {
			if db.DB < 0 {
				t.Fatalf("negative database %+v", db)
			}
		}
		info.ErrorCount("OOM")
		s := Snapshot{Info: info}
		s.Keys()
		s.Maxmemory()
		s.Policy()
		s.Jemalloc()
		s.Role()
		s.VersionAtLeast(7, 0, 0)
		if s.ServerName() == "" {
			t.Fatal("ServerName() is empty")
		}
	})
}
