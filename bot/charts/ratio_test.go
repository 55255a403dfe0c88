package charts

import (
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// A ratio that is noise (a few MiB beyond a few MiB of data) is a gap on
// the ratio panel, not a point far above the critical line; the memory it
// describes is still drawn.
func TestNoisyRatioIsNotDrawn(t *testing.T) {
	noisy := handlers.Point{At: start, UsedMemory: 900 << 10, RSS: 7 << 20, FragRatio: 7.75}
	real := handlers.Point{At: start.Add(time.Minute), UsedMemory: 6 << 20, RSS: 228 << 20, FragRatio: 35.25}
	if r := drawnRatio(noisy); r != 0 {
		t.Errorf("noisy ratio drawn as %v", r)
	}
	if r := drawnRatio(real); r != 35.25 {
		t.Errorf("ratio over 222 MiB beyond the data drawn as %v", r)
	}
	// Sizes unknown: the ratio as the server gave it.
	if r := drawnRatio(handlers.Point{FragRatio: 2.1}); r != 2.1 {
		t.Errorf("ratio without sizes drawn as %v", r)
	}
	c, err := memoryChart(Series{Instance: "tiny", Points: []handlers.Point{noisy, {At: start.Add(time.Minute), UsedMemory: 1 << 20, RSS: 8 << 20, FragRatio: 8}}}, "tiny")
	if err != nil {
		t.Fatalf("a chart of noise only: %v", err)
	}
	// No ratio series and no threshold lines to sit above: nothing on the
	// ratio panel reads as danger.
	if len(c.panels[1].series) != 0 || len(c.panels[1].entries) != 0 || len(c.panels[0].series) != 2 {
		t.Errorf("noise chart: ratio series %q, legend %q; memory series %q", c.panels[1].series, c.panels[1].entries, c.panels[0].series)
	}
	if _, err := c.render(); err != nil {
		t.Error(err)
	}
}
