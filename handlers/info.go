package handlers

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Info is the parsed text of an INFO reply: every "field:value" line, keyed
// by field name. Field names are unique across INFO sections in every Redis
// and Valkey version we support, so a flat map is enough. Values stay raw
// text; the typed accessors decide what a missing or malformed value means,
// which keeps the parser tolerant of fields that versions add, rename or drop.
type Info map[string]string

// ParseInfo parses INFO text. It never fails: lines it does not understand
// (section headers, blanks, garbage) are skipped. Both \r\n and \n line ends
// are accepted.
//
// The map keeps no part of text: a value that outlives the map (in a
// report's metrics or a finding's evidence) would otherwise hold the whole
// reply, several KiB, for each of thousands of instances in a fleet view.
// Names and values are plain copies: interning the names (unique.Make)
// cost 20 times the parse over a hostile megabyte of distinct names.
func ParseInfo(text string) Info {
	info := Info{}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok || key == "" {
			continue
		}
		info[strings.Clone(key)] = strings.Clone(value)
	}
	return info
}

// Has reports whether the field was present.
func (in Info) Has(key string) bool { _, ok := in[key]; return ok }

// String returns the raw value of a field.
func (in Info) String(key string) (string, bool) { v, ok := in[key]; return v, ok }

// Int returns a field as an integer. Values written as floats ("1.00") are
// truncated; anything else reports false.
func (in Info) Int(key string) (int64, bool) {
	v, ok := in[key]
	if !ok {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/2 {
		return 0, false
	}
	return int64(f), true
}

// Float returns a field as a float; NaN and infinities report false so that
// rules never compare against them.
func (in Info) Float(key string) (float64, bool) {
	v, ok := in[key]
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Sub parses a field whose value is a comma-separated list of k=v pairs, as
// in "db0:keys=10,expires=2,avg_ttl=0" or "errorstat_OOM:count=3".
func (in Info) Sub(key string) map[string]string {
	v, ok := in[key]
	if !ok {
		return nil
	}
	out := map[string]string{}
	for pair := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(pair, "=")
		if ok {
			out[k] = val
		}
	}
	return out
}

// KeyspaceDB is one "dbN:" line of the Keyspace section.
type KeyspaceDB struct {
	DB      int
	Keys    int64
	Expires int64
}

// Keyspace returns the dbN lines in database order.
func (in Info) Keyspace() []KeyspaceDB {
	var dbs []KeyspaceDB
	for key := range in {
		n, ok := strings.CutPrefix(key, "db")
		if !ok || n == "" || strings.Trim(n, "0123456789") != "" || (len(n) > 1 && n[0] == '0') {
			continue // only "db<digits>", as servers print it
		}
		id, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		sub := in.Sub(key)
		keys, err1 := strconv.ParseInt(sub["keys"], 10, 64)
		expires, err2 := strconv.ParseInt(sub["expires"], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		dbs = append(dbs, KeyspaceDB{DB: id, Keys: keys, Expires: expires})
	}
	slices.SortFunc(dbs, func(a, b KeyspaceDB) int { return a.DB - b.DB })
	return dbs
}

// ErrorCount returns the count of one error prefix from the Errorstats
// section (Redis >= 6.2), e.g. ErrorCount("OOM").
func (in Info) ErrorCount(prefix string) (int64, bool) {
	sub := in.Sub("errorstat_" + prefix)
	if sub == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(sub["count"], 10, 64)
	return n, err == nil
}
