package handlers

import (
	"strconv"
	"strings"
	"time"
)

// Snapshot is what one probe of one instance captured. It is plain data:
// rules read it and never do I/O. Parts the server would not give (CONFIG
// renamed or denied by ACL, MEMORY DOCTOR missing) are absent and listed in
// Missing, so a rule can tell "off" from "unknown".
type Snapshot struct {
	Instance string    `json:"instance"`
	ProbedAt time.Time `json:"probed_at"`
	// RoundTrip is INFO's round trip on an open connection: from sending
	// it to reading its whole reply. It is the server's reply latency as a
	// client sees it: the network, the wait behind whatever the server was
	// doing, and the answer.
	RoundTrip time.Duration `json:"round_trip_ns"`
	// Connect is how long opening the connection took (TCP, TLS, and the
	// HELLO and AUTH of the client library), when the probe opened one; 0
	// when it reused a pooled connection.
	Connect time.Duration `json:"connect_ns,omitempty"`
	Info    Info          `json:"info"`
	// Config holds the CONFIG GET answers the server gave; a key is absent
	// when it is unknown (denied, renamed, or not in that version).
	Config map[string]string `json:"config,omitempty"`
	// MemoryStats is MEMORY STATS flattened ("db.0.overhead.hashtable.main").
	MemoryStats map[string]float64 `json:"memory_stats,omitempty"`
	// Doctor is MEMORY DOCTOR's text, when the server gave it.
	Doctor string `json:"doctor,omitempty"`
	// Missing says which parts of the probe the server refused, and why
	// ("CONFIG GET: noperm"), and which numbers it reported that cannot be
	// true and were dropped ("INFO used_memory_rss: -5 is not a valid size
	// (negative)"; see Validate).
	Missing []string `json:"missing,omitempty"`
}

// ConfigValue returns a CONFIG GET value, or what INFO says about the same
// setting when CONFIG was not available (maxmemory and the policy are in INFO
// since Redis 4).
func (s *Snapshot) ConfigValue(key string) (string, bool) {
	if v, ok := s.Config[key]; ok {
		return v, true
	}
	infoKey := map[string]string{
		"maxmemory":        "maxmemory",
		"maxmemory-policy": "maxmemory_policy",
	}[key]
	if infoKey == "" {
		return "", false
	}
	return s.Info.String(infoKey)
}

// Maxmemory returns the maxmemory limit in bytes (0 = unlimited).
func (s *Snapshot) Maxmemory() (int64, bool) {
	v, ok := s.ConfigValue("maxmemory")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// Policy returns maxmemory-policy.
func (s *Snapshot) Policy() (string, bool) { return s.ConfigValue("maxmemory-policy") }

// ServerName is "redis" or "valkey" (Valkey reports server_name:valkey).
func (s *Snapshot) ServerName() string {
	if v, ok := s.Info.String("server_name"); ok && v != "" {
		return v
	}
	return "redis"
}

// Version returns the server version as reported; for Valkey that is
// valkey_version, since its redis_version is frozen at 7.2.4 for clients.
func (s *Snapshot) Version() string {
	if s.ServerName() == "valkey" {
		if v, ok := s.Info.String("valkey_version"); ok {
			return v
		}
	}
	v, _ := s.Info.String("redis_version")
	return v
}

// Role is "master", "slave" (as INFO says) or "" when unknown.
func (s *Snapshot) Role() string { v, _ := s.Info.String("role"); return v }

// IsReplica reports whether the instance replicates from a primary.
func (s *Snapshot) IsReplica() bool { return s.Role() == "slave" }

// Jemalloc reports whether the allocator is jemalloc, and whether that is known.
func (s *Snapshot) Jemalloc() (bool, bool) {
	v, ok := s.Info.String("mem_allocator")
	if !ok {
		return false, false
	}
	return strings.HasPrefix(v, "jemalloc"), true
}

// Persistence reports whether RDB snapshots or AOF are enabled, and whether
// that is known. INFO tells AOF; only CONFIG tells the save schedule.
func (s *Snapshot) Persistence() (on bool, known bool) {
	if n, ok := s.Info.Int("aof_enabled"); ok && n == 1 {
		return true, true
	}
	save, ok := s.Config["save"]
	if !ok {
		return false, false
	}
	return strings.TrimSpace(save) != "", true
}

// Keys returns the total keys and keys with a TTL over all databases. The
// sums stop at maxCount: sixteen databases of validated lines cannot
// overflow them into negative counts.
func (s *Snapshot) Keys() (keys, expires int64) {
	for _, db := range s.Info.Keyspace() {
		keys = min(keys+max(db.Keys, 0), maxCount)
		expires = min(expires+max(db.Expires, 0), maxCount)
	}
	return keys, expires
}

// KeysKnown reports whether every keyspace line was believable. Validate
// marks one that was not, and Keys leaves it out, so without it the totals
// are a floor and "no keys" or "few keys with a TTL" cannot be concluded.
func (s *Snapshot) KeysKnown() bool {
	for field, v := range s.Info {
		if v == unknownValue && isKeyspaceField(field) {
			return false
		}
	}
	return true
}

// Int is a shortcut for s.Info.Int.
func (s *Snapshot) Int(key string) (int64, bool) { return s.Info.Int(key) }

// Float is a shortcut for s.Info.Float.
func (s *Snapshot) Float(key string) (float64, bool) { return s.Info.Float(key) }

// VersionAtLeast compares the reported version with major.minor.patch.
// Unknown versions compare as false.
func (s *Snapshot) VersionAtLeast(major, minor, patch int) bool {
	v, ok := parseVersion(s.Version())
	if !ok {
		return false
	}
	want := [3]int{major, minor, patch}
	for i := range v {
		if v[i] != want[i] {
			return v[i] > want[i]
		}
	}
	return true
}

func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return v, false
	}
	for i, p := range parts {
		// Drop suffixes such as "-rc1".
		if j := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			p = p[:j]
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}
