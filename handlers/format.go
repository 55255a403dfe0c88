package handlers

import (
	"fmt"
	"math"
	"strconv"
)

// HumanBytes formats a byte count with binary units, as redis-cli users read
// them: 1536 -> "1.5 KiB", 60881680 -> "58.1 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	suffix := "KMGTPE"
	i := -1
	for (f >= unit || f <= -unit) && i < len(suffix)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, suffix[i])
}

// knownBytes is HumanBytes for a value that may be unknown: an unknown one
// reads "unknown", never "0 B".
func knownBytes(n int64, ok bool) string {
	if !ok {
		return "unknown"
	}
	return HumanBytes(n)
}

// knownRatio is Ratio for a value that may be unknown.
func knownRatio(f float64, ok bool) string {
	if !ok {
		return "unknown"
	}
	return Ratio(f)
}

// bytesOf turns a byte count computed in floating point back into an
// int64, reporting false when it is not one any machine has (an overflowed
// product would otherwise print as a negative size).
func bytesOf(f float64) (int64, bool) {
	if math.IsNaN(f) || f < -maxSize || f > maxSize {
		return 0, false
	}
	return int64(f), true
}

// Percent formats a fraction as "87%".
func Percent(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// Ratio formats a ratio with two decimals, as INFO does.
func Ratio(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func factBytes(name string, n int64) Fact { return Fact{Name: name, Value: n, Text: HumanBytes(n)} }

// factUnknown is an evidence line for a value the server did not report or
// reported as something that cannot be true (see Snapshot.Validate).
func factUnknown(name string) Fact { return Fact{Name: name, Text: "unknown"} }

func factKnownBytes(name string, n int64, ok bool) Fact {
	if !ok {
		return factUnknown(name)
	}
	return factBytes(name, n)
}
func factKnownRatio(name string, f float64, ok bool) Fact {
	if !ok {
		return factUnknown(name)
	}
	return factRatio(name, f)
}
func factRatio(name string, f float64) Fact {
	return Fact{Name: name, Value: round2(f), Text: Ratio(f)}
}
func factShare(name string, f float64) Fact {
	return Fact{Name: name, Value: round2(f), Text: Percent(f)}
}
func factInt(name string, n int64) Fact {
	return Fact{Name: name, Value: n, Text: strconv.FormatInt(n, 10)}
}
func factText(name, s string) Fact { return Fact{Name: name, Value: s, Text: s} }

func round2(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 4, 64), 64)
	return v
}
