package resptest

import (
	"strconv"

	"github.com/redisbot/redisbot/handlers"
)

// replies are a server's answers, encoded once when it starts: a thousand
// servers answering a sweep then only copy bytes.
type replies struct {
	info    []byte
	configs map[string][]byte // lower-case key -> *2 [key, value]
	stats   []byte
	doctor  []byte
}

// emptyArray is CONFIG GET's answer for a key the server does not know.
var emptyArray = []byte("*0\r\n")

// Doctor is MEMORY DOCTOR's answer: Redis's text for an instance it finds
// nothing wrong with.
const Doctor = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."

func buildReplies(info string) *replies {
	in := handlers.ParseInfo(info)
	r := &replies{
		info:    appendBulk(nil, info),
		configs: map[string][]byte{},
		doctor:  appendBulk(nil, Doctor),
	}
	for key, value := range configValues(in) {
		b := []byte("*2\r\n")
		b = appendBulk(b, key)
		b = appendBulk(b, value)
		r.configs[key] = b
	}
	r.stats = memoryStats(in)
	return r
}

// config answers CONFIG GET for one exact key (no glob patterns: the probe
// asks for each key by name).
func (r *replies) config(key []byte) []byte {
	var buf [64]byte
	if len(key) > len(buf) {
		return emptyArray
	}
	lower := buf[:len(key)]
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	if b, ok := r.configs[string(lower)]; ok {
		return b
	}
	return emptyArray
}

// configValues are the settings a Redis 7 server with this INFO would report:
// what INFO tells (maxmemory, the policy, AOF, defrag running) and Redis's
// defaults for the rest. requirepass is deliberately absent.
func configValues(in handlers.Info) map[string]string {
	str := func(key, def string) string {
		if v, ok := in.String(key); ok && v != "" {
			return v
		}
		return def
	}
	yesNo := func(key string) string {
		if n, ok := in.Int(key); ok && n > 0 {
			return "yes"
		}
		return "no"
	}
	return map[string]string{
		"maxmemory":                     str("maxmemory", "0"),
		"maxmemory-policy":              str("maxmemory_policy", "noeviction"),
		"maxmemory-samples":             "5",
		"activedefrag":                  yesNo("active_defrag_running"),
		"active-defrag-ignore-bytes":    "104857600",
		"active-defrag-threshold-lower": "10",
		"active-defrag-threshold-upper": "100",
		"active-defrag-cycle-min":       "1",
		"active-defrag-cycle-max":       "25",
		"active-defrag-max-scan-fields": "1000",
		"save":                          "3600 1 300 100 60 10000",
		"appendonly":                    yesNo("aof_enabled"),
		"jemalloc-bg-thread":            "yes",
		"replica-ignore-maxmemory":      "yes",
		"lazyfree-lazy-eviction":        "no",
	}
}

// memoryStats is a short flat MEMORY STATS reply (RESP2: alternating names
// and values, ratios as bulk strings) consistent with the INFO text.
func memoryStats(in handlers.Info) []byte {
	num := func(key string) int64 { n, _ := in.Int(key); return n }
	ratio := func(key string) string {
		f, ok := in.Float(key)
		if !ok {
			f = 1
		}
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	var keys int64
	for _, db := range in.Keyspace() {
		keys += db.Keys
	}
	type field struct {
		name string
		n    int64
		text string // a bulk string when set
	}
	fields := []field{
		{name: "peak.allocated", n: num("used_memory_peak")},
		{name: "total.allocated", n: num("used_memory")},
		{name: "startup.allocated", n: num("used_memory_startup")},
		{name: "replication.backlog", n: num("mem_replication_backlog")},
		{name: "clients.slaves", n: num("mem_clients_slaves")},
		{name: "clients.normal", n: num("mem_clients_normal")},
		{name: "aof.buffer", n: num("mem_aof_buffer")},
		{name: "keys.count", n: keys},
		{name: "dataset.bytes", n: num("used_memory_dataset")},
		{name: "allocator.allocated", n: num("allocator_allocated")},
		{name: "allocator.active", n: num("allocator_active")},
		{name: "allocator.resident", n: num("allocator_resident")},
		{name: "allocator-fragmentation.ratio", text: ratio("allocator_frag_ratio")},
		{name: "allocator-fragmentation.bytes", n: num("allocator_frag_bytes")},
		{name: "fragmentation", text: ratio("mem_fragmentation_ratio")},
		{name: "fragmentation.bytes", n: num("mem_fragmentation_bytes")},
	}
	b := []byte("*" + strconv.Itoa(2*len(fields)) + "\r\n")
	for _, f := range fields {
		b = appendBulk(b, f.name)
		if f.text != "" {
			b = appendBulk(b, f.text)
			continue
		}
		b = append(b, ':')
		b = strconv.AppendInt(b, f.n, 10)
		b = append(b, "\r\n"...)
	}
	return b
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "\r\n"...)
	b = append(b, s...)
	return append(b, "\r\n"...)
}
