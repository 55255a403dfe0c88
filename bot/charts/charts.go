// Package charts draws the memory charts the bot uploads to Slack with alerts
// and digests, as PNG images rendered with gonum/plot, and the text
// sparkline it posts instead when an upload fails.
//
// A memory chart is two stacked panels that share the time axis: bytes on
// top (used_memory, RSS, maxmemory, memory_limit), the fragmentation ratio
// below, each with its own y axis. A second y axis on one panel would put two
// unrelated scales on the same lines, and a reader at 3 a.m. has to work out
// which line belongs to which side; two aligned panels say it with position.
package charts

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/redisbot/redisbot/handlers"
)

// Size of the PNGs, in pixels.
const (
	Width  = 1200
	Height = 600
)

// ErrNoData means there is nothing to draw: no points, or none with a usable
// value. Callers fall back to text.
var ErrNoData = errors.New("charts: no data to draw")

// Series is one instance's history points, in any order. A zero (or
// negative, or non-finite) value of a point is "unknown" and leaves a gap,
// except that zero Maxmemory and MemoryLimit mean "not set" and draw no
// line.
type Series struct {
	Instance string
	Points   []handlers.Point
	// MemoryLimit is the instance's container limit, drawn as a line and
	// what RSS is measured against.
	MemoryLimit int64
	// FragWarning and FragCritical are the instance's fragmentation
	// thresholds, drawn on the ratio panel; zero means the defaults
	// (handlers.DefaultThresholds).
	FragWarning, FragCritical float64
}

// MaxFleetLines is how many instances Fleet draws; more lines than this are
// a tangle no one can follow to its legend entry.
const MaxFleetLines = 8

// Colours: a colour-blind-safe palette (Tableau 10) without its red, which
// is kept for thresholds and limits.
var (
	colorUsed     = color.RGBA{31, 119, 180, 255}
	colorRSS      = color.RGBA{255, 127, 14, 255}
	colorMaxmem   = color.RGBA{214, 39, 40, 255}
	colorLimit    = color.RGBA{40, 40, 40, 255}
	colorRatio    = color.RGBA{44, 160, 44, 255}
	colorWarning  = color.RGBA{230, 159, 0, 255}
	colorCritical = color.RGBA{214, 39, 40, 255}
	colorGrid     = color.Gray{Y: 225}
	colorNote     = color.Gray{Y: 90}
	fleetPalette  = []color.Color{
		color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
		color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255}, color.RGBA{227, 119, 194, 255},
		color.RGBA{127, 127, 127, 255}, color.RGBA{23, 190, 207, 255},
	}
)

var (
	sans     = font.Font{Typeface: "Liberation", Variant: "Sans"}
	sansBold = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: 700}
)

// Memory renders one instance's memory over the series' time span: bytes on
// the upper panel (MiB or GiB, from zero so heights compare honestly),
// fragmentation ratio on the lower one with its warning and critical lines.
// Legends sit to the right of the panels, never over the data.
func Memory(s Series, title string) ([]byte, error) {
	c, err := memoryChart(s, title)
	if err != nil {
		return nil, err
	}
	return c.render()
}

func memoryChart(s Series, title string) (chart, error) {
	pts := sorted(s.Points)
	if len(pts) == 0 {
		return chart{}, ErrNoData
	}
	gaps := gapAfter(pts)
	loc := pts[0].At.Location()

	type line struct {
		name  string
		value func(handlers.Point) float64
		color color.Color
		dash  []vg.Length
		step  bool
	}
	bytesLines := []line{
		{"used_memory", func(p handlers.Point) float64 { return float64(p.UsedMemory) }, colorUsed, nil, false},
		{"RSS", func(p handlers.Point) float64 { return float64(p.RSS) }, colorRSS, nil, false},
		{"maxmemory", func(p handlers.Point) float64 { return float64(p.Maxmemory) }, colorMaxmem, []vg.Length{vg.Points(6), vg.Points(3)}, true},
		{"memory_limit", func(handlers.Point) float64 { return float64(s.MemoryLimit) }, colorLimit, []vg.Length{vg.Points(2), vg.Points(2)}, true},
	}
	var top float64
	for _, l := range bytesLines {
		for _, p := range pts {
			if v := l.value(p); valid(v) {
				top = max(top, v)
			}
		}
	}
	hasRatio := slices.ContainsFunc(pts, func(p handlers.Point) bool { return valid(drawnRatio(p)) })
	if top == 0 && !hasRatio {
		return chart{}, ErrNoData
	}
	unit, unitName := memoryUnit(top)

	mem := newPanel(loc, 0.62)
	mem.plot.Y.Min, mem.plot.Y.Max = 0, max(top/unit*1.08, 1)
	mem.plot.Y.Tick.Marker = unitTicks(unitName)
	for _, l := range bytesLines {
		segs, last := segments(pts, gaps, func(p handlers.Point) float64 { return l.value(p) / unit })
		if len(segs) == 0 {
			continue
		}
		style := lineStyle(l.color, l.dash)
		if err := mem.addSeries(l.name, fmt.Sprintf("%s  %s", l.name, formatBytes(last*unit)), segs, style, l.step, len(pts) == 1); err != nil {
			return chart{}, err
		}
	}
	if top == 0 {
		mem.plot.Add(note("no memory numbers in these samples"))
	}

	ratio := newPanel(loc, 0.38)
	ratio.plot.X.Label.Text = timeLabel(pts[0].At, pts[len(pts)-1].At)
	ratio.plot.Y.Label.Text = "fragmentation ratio"
	ratio.plot.Y.Tick.Marker = ratioTicks()
	warn, crit := s.FragWarning, s.FragCritical
	if def := handlers.DefaultThresholds(); warn <= 0 || crit <= 0 {
		warn, crit = def.FragWarning, def.FragCritical
	}
	if segs, last := segments(pts, gaps, drawnRatio); len(segs) > 0 {
		// Threshold lines go under the data; their legend entries after it.
		dash := []vg.Length{vg.Points(4), vg.Points(3)}
		thresholds := []hline{{y: warn, style: lineStyle(colorWarning, dash)}, {y: crit, style: lineStyle(colorCritical, dash)}}
		for i := range thresholds {
			thresholds[i].style.Width = vg.Points(1)
			ratio.plot.Add(thresholds[i])
		}
		lo, hi := math.Min(1, warn), crit
		for _, seg := range segs {
			for _, xy := range seg {
				lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
			}
		}
		pad := (hi - lo) * 0.1
		ratio.plot.Y.Min, ratio.plot.Y.Max = math.Max(0, lo-pad), hi+pad
		style := lineStyle(colorRatio, nil)
		if err := ratio.addSeries("mem_fragmentation_ratio", fmt.Sprintf("frag ratio  %.2f", last), segs, style, false, len(pts) == 1); err != nil {
			return chart{}, err
		}
		ratio.addEntry(fmt.Sprintf("warning  %.2f", warn), thresholds[0].style)
		ratio.addEntry(fmt.Sprintf("critical  %.2f", crit), thresholds[1].style)
	} else {
		ratio.plot.Y.Min, ratio.plot.Y.Max = 1, crit
		msg := "no fragmentation ratio in these samples"
		if slices.ContainsFunc(pts, func(p handlers.Point) bool { return valid(p.FragRatio) }) {
			// The server reported ratios, all of them noise: saying
			// nothing would read as a gap in the data.
			msg = "fragmentation ratio not drawn: too little memory beyond the data to mean anything"
		}
		ratio.plot.Add(note(msg))
	}

	setTimeRange([]*plot.Plot{mem.plot, ratio.plot}, pts[0].At, pts[len(pts)-1].At)
	if len(pts) == 1 {
		title += "  (one sample so far)"
	}
	return chart{title: title, panels: []*panel{mem, ratio}}, nil
}

// drawnRatio is the point's fragmentation ratio, or 0 (a gap) where it is
// noise: a few MiB of RSS beyond a few MiB of data reads as a ratio of 10
// and would sit far above the critical line (handlers.FragRatioOf).
func drawnRatio(p handlers.Point) float64 {
	r, _ := handlers.FragRatioOf(p.FragRatio, p.UsedMemory, p.RSS, handlers.DefaultThresholds())
	return r
}

// Fleet renders the riskiest instances' memory usage in percent of their
// limit. Each instance is one line of one metric, named in its legend
// entry: used_memory / maxmemory, or RSS / memory_limit when that is the
// tighter of the two over the window (an instance without maxmemory is
// still killed at its container limit). A line never switches metric from
// one point to the next: RSS at 60% of the limit drawn after used memory
// at 90% of maxmemory would read as one number falling. At most
// MaxFleetLines instances are drawn, ranked by their latest usage.
func Fleet(series []Series, title string) ([]byte, error) {
	c, err := fleetChart(series, title)
	if err != nil {
		return nil, err
	}
	return c.render()
}

func fleetChart(series []Series, title string) (chart, error) {
	type usage struct {
		name   string
		pts    []handlers.Point
		limit  int64 // the instance's memory limit
		gaps   []bool
		metric usageMetric
		latest float64
		peak   float64
	}
	var all []usage
	for _, s := range series {
		pts := sorted(s.Points)
		u := usage{name: s.Instance, pts: pts, limit: s.MemoryLimit, gaps: gapAfter(pts), latest: math.NaN()}
		// The metric whose peak is higher is the tighter limit.
		for _, m := range usageMetrics {
			var peak float64
			for _, p := range pts {
				if v := m.percent(p, s.MemoryLimit); valid(v) {
					peak = max(peak, v)
				}
			}
			if peak > u.peak {
				u.metric, u.peak = m, peak
			}
		}
		if u.peak == 0 {
			continue
		}
		for _, p := range pts {
			if v := u.metric.percent(p, u.limit); valid(v) {
				u.latest = v
			}
		}
		all = append(all, u)
	}
	if len(all) == 0 {
		return chart{}, ErrNoData
	}
	slices.SortStableFunc(all, func(a, b usage) int {
		if a.latest != b.latest {
			return cmpDesc(a.latest, b.latest)
		}
		return cmpDesc(a.peak, b.peak)
	})
	if len(all) > MaxFleetLines {
		title += fmt.Sprintf("  (riskiest %d of %d)", MaxFleetLines, len(all))
		all = all[:MaxFleetLines]
	}

	var first, last time.Time
	var peak float64
	for _, u := range all {
		for _, p := range u.pts {
			if !valid(u.metric.percent(p, u.limit)) {
				continue
			}
			if first.IsZero() || p.At.Before(first) {
				first = p.At
			}
			if p.At.After(last) {
				last = p.At
			}
		}
		peak = max(peak, u.peak)
	}

	pn := newPanel(first.Location(), 1)
	p := pn.plot
	p.X.Label.Text = timeLabel(first, last)
	p.Y.Min, p.Y.Max = 0, math.Max(105, peak*1.05)
	p.Y.Tick.Marker = percentTicks()
	// Reference lines go under the data; their legend entries after it.
	def := handlers.DefaultThresholds()
	var refs []hline
	for _, th := range []struct {
		v     float64
		color color.Color
		dash  []vg.Length
	}{
		{def.MaxmemoryWarning * 100, colorWarning, []vg.Length{vg.Points(4), vg.Points(3)}},
		{def.MaxmemoryCritical * 100, colorCritical, []vg.Length{vg.Points(4), vg.Points(3)}},
		{100, colorLimit, nil},
	} {
		h := hline{y: th.v, style: lineStyle(th.color, th.dash)}
		h.style.Width = vg.Points(1)
		p.Add(h)
		refs = append(refs, h)
	}
	for i, u := range all {
		segs, _ := segments(u.pts, u.gaps, func(p handlers.Point) float64 { return u.metric.percent(p, u.limit) })
		style := lineStyle(fleetPalette[i%len(fleetPalette)], nil)
		label := fmt.Sprintf("%s  %.0f%% %s", shorten(u.name, 22), u.latest, u.metric.name)
		if err := pn.addSeries(u.name+" "+u.metric.name, label, segs, style, false, len(u.pts) == 1); err != nil {
			return chart{}, err
		}
	}
	for i, name := range []string{"warning", "critical", "limit"} {
		pn.addEntry(fmt.Sprintf("%s  %.0f%%", name, refs[i].y), refs[i].style)
	}
	setTimeRange([]*plot.Plot{p}, first, last)
	return chart{title: title, panels: []*panel{pn}}, nil
}

// usageMetric is one way to express memory as a percentage of a limit.
type usageMetric struct {
	name    string
	percent func(p handlers.Point, memoryLimit int64) float64 // NaN when the point lacks a number
}

var usageMetrics = []usageMetric{
	{"used/maxmemory", func(p handlers.Point, _ int64) float64 {
		if p.Maxmemory > 0 && p.UsedMemory > 0 {
			return float64(p.UsedMemory) / float64(p.Maxmemory) * 100
		}
		return math.NaN()
	}},
	{"RSS/limit", func(p handlers.Point, memoryLimit int64) float64 {
		if memoryLimit > 0 && p.RSS > 0 {
			return float64(p.RSS) / float64(memoryLimit) * 100
		}
		return math.NaN()
	}},
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func valid(v float64) bool { return v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }

func sorted(pts []handlers.Point) []handlers.Point {
	out := slices.Clone(pts)
	slices.SortStableFunc(out, func(a, b handlers.Point) int { return a.At.Compare(b.At) })
	return out
}

// gapAfter marks the points after which the sweep missed samples (the
// instance was unreachable, the bot was down): more than three median
// intervals. Lines break there instead of drawing a slope through the
// unknown.
func gapAfter(pts []handlers.Point) []bool {
	gaps := make([]bool, len(pts))
	if len(pts) < 3 {
		return gaps
	}
	steps := make([]time.Duration, 0, len(pts)-1)
	for i := 1; i < len(pts); i++ {
		steps = append(steps, pts[i].At.Sub(pts[i-1].At))
	}
	sortedSteps := slices.Clone(steps)
	slices.Sort(sortedSteps)
	median := sortedSteps[len(sortedSteps)/2]
	if median <= 0 {
		return gaps
	}
	for i, d := range steps {
		gaps[i] = d > 3*median
	}
	return gaps
}

// segments splits one value of the points into runs without gaps or unknown
// values, as plot coordinates, and returns the latest known value.
func segments(pts []handlers.Point, gaps []bool, value func(handlers.Point) float64) ([]plotter.XYs, float64) {
	var segs []plotter.XYs
	var cur plotter.XYs
	last := math.NaN()
	flush := func() {
		if len(cur) > 0 {
			segs = append(segs, cur)
			cur = nil
		}
	}
	for i, p := range pts {
		v := value(p)
		if !valid(v) {
			flush()
			continue
		}
		cur = append(cur, plotter.XY{X: unixSeconds(p.At), Y: v})
		last = v
		if gaps[i] {
			flush()
		}
	}
	flush()
	return segs, last
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func addSegments(p *plot.Plot, segs []plotter.XYs, style draw.LineStyle, step, dots bool) error {
	for _, seg := range segs {
		l, err := plotter.NewLine(seg)
		if err != nil {
			return fmt.Errorf("charts: %w", err)
		}
		l.LineStyle = style
		if step {
			l.StepStyle = plotter.PreStep
		}
		p.Add(l)
		if dots || len(seg) == 1 {
			// A lone sample has no line to draw: show it as a dot.
			sc, err := plotter.NewScatter(seg)
			if err != nil {
				return fmt.Errorf("charts: %w", err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: style.Color, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
			p.Add(sc)
		}
	}
	return nil
}

func lineStyle(c color.Color, dash []vg.Length) draw.LineStyle {
	return draw.LineStyle{Color: c, Width: vg.Points(1.6), Dashes: dash}
}

// thumb is a legend thumbnail for a line style.
type thumb draw.LineStyle

func (t thumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(draw.LineStyle(t), c.Min.X, y, c.Max.X, y)
}

// hline is a horizontal reference line across the whole panel; it does not
// widen the time axis.
type hline struct {
	y     float64
	style draw.LineStyle
}

func (h hline) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(h.y)
	if y < c.Min.Y || y > c.Max.Y {
		return
	}
	c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
}

func (h hline) DataRange() (xmin, xmax, ymin, ymax float64) {
	return math.Inf(1), math.Inf(-1), h.y, h.y
}

// note writes a line of text in the middle of an otherwise empty panel.
type note string

func (n note) Plot(c draw.Canvas, _ *plot.Plot) {
	sty := textStyle(12, colorNote)
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
	c.FillText(sty, c.Center(), string(n))
}

func textStyle(size vg.Length, c color.Color) text.Style {
	return text.Style{Color: c, Font: font.From(sans, size), Handler: plot.DefaultTextHandler}
}

func newPlot(loc *time.Location) *plot.Plot {
	p := plot.New()
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Tick.Label.Font = font.From(sans, 10)
		ax.Label.TextStyle.Font = font.From(sans, 10.5)
		ax.Tick.Color = color.Gray{Y: 120}
		ax.Color = color.Gray{Y: 120}
	}
	p.X.Tick.Marker = timeTicks{loc: loc}
	grid := plotter.NewGrid()
	grid.Vertical = draw.LineStyle{Color: colorGrid, Width: vg.Points(0.6)}
	grid.Horizontal = grid.Vertical
	p.Add(grid)
	return p
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sans, 10.5)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(24)
	l.Padding = vg.Points(3)
	return l
}

// setTimeRange gives every panel the same time axis; a lone sample gets an
// hour around it.
func setTimeRange(ps []*plot.Plot, first, last time.Time) {
	lo, hi := unixSeconds(first), unixSeconds(last)
	if hi-lo < 60 {
		lo, hi = lo-1800, hi+1800
	}
	for _, p := range ps {
		p.X.Min, p.X.Max = lo, hi
	}
}

func timeLabel(first, last time.Time) string {
	zone := first.Format("MST")
	if first.Year() == last.Year() && first.YearDay() == last.YearDay() {
		return fmt.Sprintf("%s, %s", first.Format("Mon 2 Jan 2006"), zone)
	}
	return fmt.Sprintf("%s – %s, %s", first.Format("Mon 2 Jan 15:04"), last.Format("Mon 2 Jan 15:04"), zone)
}

// panel is one plot and its legend, and its share of the chart's height.
// series and entries record what was drawn, for tests to read: gonum's
// plot and legend keep theirs unexported.
type panel struct {
	plot    *plot.Plot
	legend  plot.Legend
	weight  float64
	series  []string // one name per drawn series: one metric each
	entries []string // legend entries, in order
}

func newPanel(loc *time.Location, weight float64) *panel {
	return &panel{plot: newPlot(loc), legend: newLegend(), weight: weight}
}

// addSeries draws one metric's segments with one legend entry.
func (p *panel) addSeries(name, label string, segs []plotter.XYs, style draw.LineStyle, step, dots bool) error {
	if err := addSegments(p.plot, segs, style, step, dots); err != nil {
		return err
	}
	p.series = append(p.series, name)
	p.addEntry(label, style)
	return nil
}

func (p *panel) addEntry(label string, style draw.LineStyle) {
	p.legend.Add(label, thumb(style))
	p.entries = append(p.entries, label)
}

// chart is a title over panels that share the time axis.
type chart struct {
	title  string
	panels []*panel
}

func (c chart) render() ([]byte, error) { return render(c.title, c.panels) }

// render lays out a title, the panels stacked with their data areas aligned
// (the same time is at the same x in every panel) and each legend to the
// right of its panel, and encodes the PNG.
func render(title string, panels []*panel) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, Width, Height))
	c := vgimg.NewWith(vgimg.UseImage(img))
	dc := draw.New(c) // white background: vgimg's default

	margin := vg.Points(10)
	area := draw.Crop(dc, margin, -margin, margin, -margin)
	titleStyle := text.Style{Color: color.Black, Font: font.From(sansBold, 14), XAlign: draw.XLeft, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	dc.FillText(titleStyle, vg.Point{X: area.Min.X, Y: area.Max.Y}, title)
	area.Max.Y -= titleStyle.Rectangle(title).Size().Y + vg.Points(8)

	var legendW vg.Length
	for _, p := range panels {
		r := p.legend.Rectangle(area)
		legendW = max(legendW, r.Size().X)
	}
	gap := vg.Points(14)
	plots := draw.Crop(area, 0, -(legendW + gap), 0, 0)

	// Split the height by weight, top to bottom.
	canvases := make([]draw.Canvas, len(panels))
	var total float64
	for _, p := range panels {
		total += p.weight
	}
	y := plots.Max.Y
	h := plots.Max.Y - plots.Min.Y
	for i, p := range panels {
		ph := vg.Length(p.weight / total * float64(h))
		cv := plots
		cv.Max.Y, cv.Min.Y = y, y-ph
		canvases[i] = cv
		y -= ph
	}
	// Only the bottom panel labels the shared time axis; the others keep
	// its ticks and grid.
	for _, p := range panels[:len(panels)-1] {
		p.plot.X.Tick.Marker = blankLabels{p.plot.X.Tick.Marker}
	}

	// Align the data areas: crop each panel by how much narrower its axes
	// are than the widest.
	var left, right vg.Length
	inner := make([]draw.Canvas, len(panels))
	for i, p := range panels {
		inner[i] = p.plot.DataCanvas(canvases[i])
		left = max(left, inner[i].Min.X-canvases[i].Min.X)
		right = max(right, canvases[i].Max.X-inner[i].Max.X)
	}
	for i, p := range panels {
		cv := draw.Crop(canvases[i], left-(inner[i].Min.X-canvases[i].Min.X), -(right - (canvases[i].Max.X - inner[i].Max.X)), 0, 0)
		p.plot.Draw(cv)
		data := p.plot.DataCanvas(cv)
		lc := area
		lc.Min.X = area.Max.X - legendW
		lc.Max.Y, lc.Min.Y = data.Max.Y, canvases[i].Min.Y
		p.legend.Draw(lc)
	}

	var buf bytes.Buffer
	if err := png.Encode(&buf, c.Image()); err != nil {
		return nil, fmt.Errorf("charts: encode png: %w", err)
	}
	return buf.Bytes(), nil
}
