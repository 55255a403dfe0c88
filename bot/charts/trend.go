package charts

import "github.com/redisbot/redisbot/handlers"

// SeriesOf is the trend verb's history as a chart series.
func SeriesOf(t *handlers.Trend) Series {
	return Series{Instance: t.Instance.Name, Points: t.Points, MemoryLimit: t.Instance.MemoryLimit}
}

// RSS is the trend's RSS samples, for a sparkline.
func RSS(t *handlers.Trend) []float64 {
	out := make([]float64, len(t.Points))
	for i, p := range t.Points {
		out[i] = float64(p.RSS)
	}
	return out
}
