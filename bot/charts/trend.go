package charts

import "github.com/redisbot/redisbot/handlers"

// SeriesOf is the trend verb's history as a chart series, with the
// instance's memory limit on every point.
func SeriesOf(t *handlers.Trend) Series {
	s := Series{Instance: t.Instance.Name, Points: make([]Point, len(t.Points))}
	for i, p := range t.Points {
		s.Points[i] = Point{At: p.At, UsedMemory: p.UsedMemory, RSS: p.RSS, Maxmemory: p.Maxmemory, MemoryLimit: t.Instance.MemoryLimit, FragRatio: p.FragRatio}
	}
	return s
}

// RSS is the trend's RSS samples, for a sparkline.
func RSS(t *handlers.Trend) []float64 {
	out := make([]float64, len(t.Points))
	for i, p := range t.Points {
		out[i] = float64(p.RSS)
	}
	return out
}
