package charts

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/plot"

	"github.com/redisbot/redisbot/handlers"
)

var examples = flag.String("examples", "", "write example PNGs (chart-6h.png, chart-24h.png, chart-7d.png, chart-fleet.png) to this directory")

var start = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// rising is an instance whose fragmentation climbs from 1.1 to 2.3 over the
// window: RSS grows while the data shrinks, under a 3 GiB maxmemory and a
// 4 GiB container limit. It misses 40 minutes of sweeps at 60% of a window
// of 6h or more.
func rising(window, step time.Duration) Series {
	n := int(window / step)
	s := Series{Instance: "cache-eu-1", MemoryLimit: 4 << 30}
	for i := 0; i <= n; i++ {
		f := float64(i) / float64(n)
		if window >= 6*time.Hour && f > 0.6 && f < 0.6+float64(40*time.Minute)/float64(window) {
			continue
		}
		wobble := 1 + 0.02*math.Sin(float64(i)/7)
		rss := (2.0 + 1.4*f*f) * (1 << 30) * wobble
		ratio := 1.1 + 1.2*f + 0.03*math.Sin(float64(i)/5)
		s.Points = append(s.Points, handlers.Point{
			At:         start.Add(time.Duration(i) * step),
			UsedMemory: int64(rss / ratio),
			RSS:        int64(rss),
			Maxmemory:  3 << 30,
			FragRatio:  ratio,
		})
	}
	return s
}

func fleet(n int) []Series {
	var out []Series
	for k := range n {
		s := Series{Instance: fmt.Sprintf("cache-eu-%02d", k)}
		if k == n-1 {
			s.Instance = "sessions-primary.prod.eu-west-1.example.internal"
		}
		base := 0.3 + 0.6*float64(k)/float64(n)
		for i := 0; i <= 24*12; i++ {
			f := float64(i) / (24 * 12)
			used := (base + 0.15*f*float64(k%3) + 0.03*math.Sin(float64(i+k*11)/9)) * (2 << 30)
			p := handlers.Point{At: start.Add(time.Duration(i) * 5 * time.Minute), UsedMemory: int64(used), Maxmemory: 2 << 30, RSS: int64(used * 1.2)}
			if k%4 == 0 { // no maxmemory: judged by RSS against the container
				p.Maxmemory = 0
				s.MemoryLimit = 3 << 30
			}
			s.Points = append(s.Points, p)
		}
		out = append(out, s)
	}
	return out
}

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got != (image.Point{Width, Height}) {
		t.Fatalf("size = %v, want %dx%d", got, Width, Height)
	}
	return img
}

// inkIn counts the pixels of a rectangle that are not background white, and
// those close to a colour.
func inkIn(img image.Image, r image.Rectangle, want color.Color) (ink, matching int) {
	wr, wg, wb, _ := want.RGBA()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cr < 0xf000 || cg < 0xf000 || cb < 0xf000 {
				ink++
			}
			if absDiff(cr, wr) < 0x1800 && absDiff(cg, wg) < 0x1800 && absDiff(cb, wb) < 0x1800 {
				matching++
			}
		}
	}
	return ink, matching
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// plotArea is the middle of the chart, away from title, axes and legend.
var plotArea = image.Rect(150, 60, 900, 520)

func write(t *testing.T, name string, b []byte) {
	t.Helper()
	if *examples == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(*examples, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMemory(t *testing.T) {
	for _, w := range []struct {
		name         string
		window, step time.Duration
	}{
		{"6h", 6 * time.Hour, time.Minute},
		{"24h", 24 * time.Hour, 2 * time.Minute},
		{"7d", 7 * 24 * time.Hour, 15 * time.Minute},
	} {
		t.Run(w.name, func(t *testing.T) {
			b, err := Memory(rising(w.window, w.step), "cache-eu-1: memory, last "+w.name)
			if err != nil {
				t.Fatal(err)
			}
			img := decode(t, b)
			ink, _ := inkIn(img, plotArea, color.Black)
			if area := plotArea.Dx() * plotArea.Dy(); ink < area/50 {
				t.Errorf("%d inked pixels of %d in the plot area: chart looks empty", ink, area)
			}
			for name, c := range map[string]color.Color{"RSS": colorRSS, "used_memory": colorUsed, "ratio": colorRatio} {
				if _, n := inkIn(img, plotArea, c); n < 300 {
					t.Errorf("%s line: %d pixels of its colour", name, n)
				}
			}
			write(t, "chart-"+w.name+".png", b)
		})
	}
}

func TestMemoryEdgeCases(t *testing.T) {
	if _, err := Memory(Series{Instance: "x"}, "empty"); !errors.Is(err, ErrNoData) {
		t.Errorf("empty series: err = %v, want ErrNoData", err)
	}
	if _, err := Memory(Series{Points: []handlers.Point{{At: start}, {At: start.Add(time.Minute), FragRatio: math.NaN()}}}, "unknown values"); !errors.Is(err, ErrNoData) {
		t.Errorf("only unknown values: err = %v, want ErrNoData", err)
	}
	one := Series{Points: []handlers.Point{{At: start, UsedMemory: 100 << 20, RSS: 150 << 20, FragRatio: 1.5}}}
	b, err := Memory(one, "one sample")
	if err != nil {
		t.Fatalf("single point: %v", err)
	}
	decode(t, b)
	write(t, "chart-one.png", b)

	// No ratio, no limits, out of order, a NaN: drawn, never a panic.
	odd := Series{Points: []handlers.Point{
		{At: start.Add(2 * time.Hour), UsedMemory: 300 << 20, RSS: 320 << 20},
		{At: start, UsedMemory: 200 << 20, RSS: 260 << 20, FragRatio: math.NaN()},
		{At: start.Add(time.Hour), UsedMemory: 250 << 20, RSS: 0, FragRatio: math.Inf(1)},
	}}
	b, err = Memory(odd, "odd")
	if err != nil {
		t.Fatal(err)
	}
	decode(t, b)
	write(t, "chart-odd.png", b)

	// Only ratios.
	ratios := Series{Points: []handlers.Point{{At: start, FragRatio: 1.2}, {At: start.Add(time.Hour), FragRatio: 1.4}}}
	if b, err := Memory(ratios, "ratios only"); err != nil {
		t.Error(err)
	} else {
		decode(t, b)
	}

	// Same timestamps everywhere.
	same := Series{Points: []handlers.Point{{At: start, UsedMemory: 1 << 30, FragRatio: 1.2}, {At: start, UsedMemory: 1 << 30, FragRatio: 1.2}}}
	if b, err := Memory(same, "same time"); err != nil {
		t.Error(err)
	} else {
		decode(t, b)
	}
}

func TestFleet(t *testing.T) {
	b, err := Fleet(fleet(12), "Fleet memory usage, last 24h")
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, b)
	ink, _ := inkIn(img, plotArea, color.Black)
	if area := plotArea.Dx() * plotArea.Dy(); ink < area/50 {
		t.Errorf("%d inked pixels of %d in the plot area", ink, area)
	}
	for i := range MaxFleetLines {
		if _, n := inkIn(img, plotArea, fleetPalette[i]); n < 100 {
			t.Errorf("line %d: %d pixels of its colour", i, n)
		}
	}
	write(t, "chart-fleet.png", b)

	if _, err := Fleet(nil, "empty"); !errors.Is(err, ErrNoData) {
		t.Errorf("no series: err = %v, want ErrNoData", err)
	}
	// Without maxmemory or a limit there is no percentage.
	noLimits := []Series{{Instance: "a", Points: []handlers.Point{{At: start, UsedMemory: 1 << 20, RSS: 2 << 20}}}}
	if _, err := Fleet(noLimits, "no limits"); !errors.Is(err, ErrNoData) {
		t.Errorf("no limits: err = %v, want ErrNoData", err)
	}
	one := []Series{{Instance: "a", Points: []handlers.Point{{At: start, UsedMemory: 1 << 20, Maxmemory: 2 << 20}}}}
	if b, err := Fleet(one, "one"); err != nil {
		t.Error(err)
	} else {
		decode(t, b)
	}
}

// A fleet line is one metric from end to end, named in its own legend
// entry: an instance whose RSS share of the limit and used share of
// maxmemory cross is drawn by the tighter one, never by whichever is higher
// at each point.
func TestFleetOneMetricPerSeries(t *testing.T) {
	var crossing, cache Series
	crossing.Instance, cache.Instance, crossing.MemoryLimit = "orders-primary", "cache-1", 100<<20
	for i := range 60 {
		at := start.Add(time.Duration(i) * time.Minute)
		// used/maxmemory steady at 90%; RSS/limit alternating 60% and 95%.
		rss := int64(60 << 20)
		if i%2 == 1 {
			rss = 95 << 20
		}
		crossing.Points = append(crossing.Points, handlers.Point{At: at, UsedMemory: 90 << 20, Maxmemory: 100 << 20, RSS: rss})
		cache.Points = append(cache.Points, handlers.Point{At: at, UsedMemory: 40 << 20, Maxmemory: 100 << 20, RSS: 50 << 20})
	}
	c, err := fleetChart([]Series{cache, crossing}, "Riskiest instances, last 1h")
	if err != nil {
		t.Fatal(err)
	}
	pn := c.panels[0]
	if want := []string{"orders-primary RSS/limit", "cache-1 used/maxmemory"}; !slices.Equal(pn.series, want) {
		t.Errorf("series %q, want %q", pn.series, want)
	}
	want := []string{"orders-primary  95% RSS/limit", "cache-1  40% used/maxmemory", "warning  75%", "critical  85%", "limit  100%"}
	if !slices.Equal(pn.entries, want) {
		t.Errorf("legend %q, want %q", pn.entries, want)
	}
	if labels := tickLabels(pn.plot.X); len(labels) < 4 {
		t.Errorf("x labels %q: want several over an hour", labels)
	}
	b, err := c.render()
	if err != nil {
		t.Fatal(err)
	}
	decode(t, b)
	write(t, "chart-fleet-crossing.png", b)
}

// The memory chart: four byte metrics on top, the ratio below, one legend
// entry each (and the thresholds'), and time labels that fit the span.
func TestMemoryChartModel(t *testing.T) {
	for _, w := range handlers.TrendWindows {
		step := max(w.Span/300, 15*time.Second)
		c, err := memoryChart(rising(w.Span, step), Title("cache-eu-1: memory", w.Span, rising(w.Span, step).Points))
		if err != nil {
			t.Fatal(err)
		}
		if want := "cache-eu-1: memory, last " + w.Name; c.title != want {
			t.Errorf("title %q, want %q", c.title, want)
		}
		if want := []string{"used_memory", "RSS", "maxmemory", "memory_limit"}; !slices.Equal(c.panels[0].series, want) {
			t.Errorf("%s: top series %q, want %q", w.Name, c.panels[0].series, want)
		}
		if want := []string{"mem_fragmentation_ratio"}; !slices.Equal(c.panels[1].series, want) {
			t.Errorf("%s: ratio series %q, want %q", w.Name, c.panels[1].series, want)
		}
		if n := len(c.panels[0].entries) + len(c.panels[1].entries); n != 4+3 {
			t.Errorf("%s: %d legend entries, want 7", w.Name, n)
		}
		labels := tickLabels(c.panels[1].plot.X)
		if len(labels) < 4 || len(labels) > 12 {
			t.Errorf("%s: x labels %q, want 4 to 12", w.Name, labels)
		}
		if w.Name == "15m" {
			b, err := c.render()
			if err != nil {
				t.Fatal(err)
			}
			decode(t, b)
			write(t, "chart-15m.png", b)
		}
	}
}

func tickLabels(ax plot.Axis) []string {
	var labels []string
	for _, tk := range ax.Tick.Marker.Ticks(ax.Min, ax.Max) {
		if strings.TrimSpace(tk.Label) != "" {
			labels = append(labels, tk.Label)
		}
	}
	return labels
}

// The title says how much history there is when it is less than the
// window asked for.
func TestTitle(t *testing.T) {
	pts := func(span time.Duration) []handlers.Point {
		return []handlers.Point{{At: start}, {At: start.Add(span / 2)}, {At: start.Add(span)}}
	}
	cases := []struct {
		window time.Duration
		pts    []handlers.Point
		want   string
	}{
		{6 * time.Hour, pts(11 * time.Minute), "cache-1: memory, last 11 min (window 6h)"},
		{6 * time.Hour, pts(6*time.Hour - 5*time.Minute), "cache-1: memory, last 6h"},
		{7 * 24 * time.Hour, pts(50 * time.Hour), "cache-1: memory, last 2.1 days (window 7d)"},
		{24 * time.Hour, pts(5*time.Hour + 20*time.Minute), "cache-1: memory, last 5h 20m (window 24h)"},
		{time.Hour, nil, "cache-1: memory, last 1h"},
	}
	for _, c := range cases {
		if got := Title("cache-1: memory", c.window, c.pts); got != c.want {
			t.Errorf("Title = %q, want %q", got, c.want)
		}
	}
}

func TestTimeTicks(t *testing.T) {
	tests := []struct {
		window    time.Duration
		wantFirst string
		minLabels int
		maxLabels int
	}{
		{11 * time.Minute, "09:00", 5, 7},
		{15 * time.Minute, "09:00", 4, 4},
		{time.Hour, "09:00", 4, 7},
		{6 * time.Hour, "09:00", 6, 8},
		{24 * time.Hour, "09:00", 8, 10},
		{7 * 24 * time.Hour, "Sun 2 Mar", 6, 8},
		{30 * 24 * time.Hour, "Tue 4 Mar", 4, 5},
	}
	for _, tt := range tests {
		ticks := timeTicks{loc: time.UTC}.Ticks(unixSeconds(start), unixSeconds(start.Add(tt.window)))
		var labels []string
		for _, tk := range ticks {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if len(labels) < tt.minLabels || len(labels) > tt.maxLabels || labels[0] != tt.wantFirst {
			t.Errorf("%v: labels %q, want %d..%d starting %q", tt.window, labels, tt.minLabels, tt.maxLabels, tt.wantFirst)
		}
	}
	// A 24h window crossing midnight names the new day.
	ticks := timeTicks{loc: time.UTC}.Ticks(unixSeconds(start), unixSeconds(start.Add(24*time.Hour)))
	found := false
	for _, tk := range ticks {
		found = found || tk.Label == "Sun 2 Mar"
	}
	if !found {
		t.Errorf("24h ticks do not name the day at midnight: %v", ticks)
	}
}

func TestSparkline(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		values []float64
		width  int
		want   string
	}{
		{"empty", nil, 10, "no data"},
		{"all unknown", []float64{nan, math.Inf(1)}, 10, "no data"},
		{"ramp", []float64{1, 2, 3, 4, 5, 6, 7, 8}, 8, "▁▂▃▄▅▆▇█ 1–8"},
		{"fewer values than width", []float64{1.1, 2.3}, 20, "▁█ 1.1–2.3"},
		{"width 0 draws all", []float64{0, 10, 5}, 0, "▁█▅ 0–10"},
		{"flat", []float64{3, 3, 3}, 3, "▄▄▄ 3"},
		{"downsampled by max keeps the spike", []float64{1, 1, 1, 9, 1, 1, 1, 1}, 4, "▁█▁▁ 1–9"},
		{"unknown is a space", []float64{1, nan, 2}, 3, "▁ █ 1–2"},
		{"bytes", []float64{1.5e9, 3.2e9}, 2, "▁█ 1.5G–3.2G"},
		{"small ratios", []float64{0.001234, 0.002}, 2, "▁█ 0.00123–0.002"},
		{"negative", []float64{-5, 5}, 2, "▁█ -5–5"},
	}
	for _, tt := range tests {
		if got := Sparkline(tt.values, tt.width); got != tt.want {
			t.Errorf("%s: Sparkline = %q, want %q", tt.name, got, tt.want)
		}
	}
	// Downsampling a long series gives exactly width runes.
	long := make([]float64, 1000)
	for i := range long {
		long[i] = float64(i % 97)
	}
	got := []rune(Sparkline(long, 30))
	if n := len(got) - len([]rune(" 0–96")); n != 30 {
		t.Errorf("1000 values at width 30: %d runes", n)
	}
}

func TestNiceTicks(t *testing.T) {
	labels := func(tk plot.Ticker, lo, hi float64) []string {
		var out []string
		for _, x := range tk.Ticks(lo, hi) {
			if x.Label != "" {
				out = append(out, x.Label)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		ticker plot.Ticker
		lo, hi float64
		want   string
	}{
		{"GiB", unitTicks("GiB"), 0, 4.32, "0 GiB,1 GiB,2 GiB,3 GiB,4 GiB"},
		{"MiB", unitTicks("MiB"), 0, 345, "0 MiB,100 MiB,200 MiB,300 MiB"},
		{"ratio", ratioTicks(), 0.9, 2.5, "1.0,1.5,2.0,2.5"},
		{"small ratio range", ratioTicks(), 1.0, 1.3, "1.0,1.1,1.2,1.3"},
		{"percent", percentTicks(), 0, 124, "0%,25%,50%,75%,100%"},
		{"empty range", ratioTicks(), 1, 1, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(labels(tt.ticker, tt.lo, tt.hi), ","); got != tt.want {
			t.Errorf("%s: labels %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestConcurrentRendering: the digest renders charts for several instances
// at once.
func TestConcurrentRendering(t *testing.T) {
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := Memory(rising(6*time.Hour, 30*time.Minute), "concurrent"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
