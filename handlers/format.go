package handlers

import (
	"fmt"
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

// Percent formats a fraction as "87%".
func Percent(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// Ratio formats a ratio with two decimals, as INFO does.
func Ratio(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func factBytes(name string, n int64) Fact { return Fact{Name: name, Value: n, Text: HumanBytes(n)} }
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
