package config

import (
	"math"
	"strconv"
	"strings"
)

// sizeUnits follow redis.conf (and so what operators already write for
// maxmemory): k, m, g are powers of 1000; kb, mb, gb, and the IEC kib, mib,
// gib, are powers of 1024. Units are case-insensitive: 1gb = 1GB = 1GiB.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"k":   1000,
	"kb":  1 << 10,
	"kib": 1 << 10,
	"m":   1000 * 1000,
	"mb":  1 << 20,
	"mib": 1 << 20,
	"g":   1000 * 1000 * 1000,
	"gb":  1 << 30,
	"gib": 1 << 30,
	"t":   1000 * 1000 * 1000 * 1000,
	"tb":  1 << 40,
	"tib": 1 << 40,
}

// parseSize parses a byte size: a whole number of bytes ("100000") or a
// whole number and a unit ("50mb", "6GiB", "512 MB").
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, invalid("size", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, invalid("size", s)
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimLeft(t[i:], " "))]
	if !ok || n > math.MaxInt64/unit {
		return 0, invalid("size", s)
	}
	return n * unit, nil
}
