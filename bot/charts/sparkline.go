package charts

import (
	"math"
	"strconv"
	"strings"
)

// sparkLevels are the eight block heights, lowest first.
var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// NoData is what Sparkline returns when there is nothing to draw.
const NoData = "no data"

// Sparkline is the text fallback for a chart when an upload fails: one block
// rune per value ("▁▂▃▅▇"), scaled between the smallest and largest value,
// then that range ("▁▃▅▇█ 1.1–2.3"). More values than width runes are
// downsampled by keeping each bucket's maximum, since the peak is what an
// alert is about; fewer are drawn one rune each. width <= 0 draws every
// value. NaN and infinite values are unknown: a space, left out of the range.
func Sparkline(values []float64, width int) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if finite(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return NoData
	}
	if width <= 0 || width > len(values) {
		width = len(values)
	}
	var b strings.Builder
	for i := range width {
		v := bucketMax(values[i*len(values)/width : (i+1)*len(values)/width])
		switch {
		case !finite(v):
			b.WriteRune(' ')
		case hi == lo:
			b.WriteRune(sparkLevels[len(sparkLevels)/2-1])
		default:
			level := int(math.Round((v - lo) / (hi - lo) * float64(len(sparkLevels)-1)))
			b.WriteRune(sparkLevels[level])
		}
	}
	b.WriteByte(' ')
	b.WriteString(compact(lo))
	if hi != lo {
		b.WriteString("–")
		b.WriteString(compact(hi))
	}
	return b.String()
}

func bucketMax(vs []float64) float64 {
	m := math.NaN()
	for _, v := range vs {
		if finite(v) && (math.IsNaN(m) || v > m) {
			m = v
		}
	}
	return m
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// compact formats a number in at most three significant digits, with k, M,
// G, T for thousands and up: "2.3", "0.00123", "512", "1.5k", "3.2G".
func compact(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	suffix := ""
	for _, s := range []string{"k", "M", "G", "T"} {
		if v < 999.5 {
			break
		}
		v /= 1000
		suffix = s
	}
	return sign + strconv.FormatFloat(v, 'g', 3, 64) + suffix
}
