package charts

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
)

// timeTicks labels the time axis at round local times, with a spacing that
// gives four to ten labels for spans from a few minutes to a month: every
// 2 minutes for 10 minutes, 5 for 15m, hourly for 6h, every 3h for 24h,
// daily for 7d, weekly for 30d. Midnight is labelled with the date, so a
// 24h window shows where the day changes.
type timeTicks struct{ loc *time.Location }

// tickSteps are (window up to, major, minor).
var tickSteps = []struct{ span, major, minor time.Duration }{
	{12 * time.Minute, 2 * time.Minute, time.Minute},
	{25 * time.Minute, 5 * time.Minute, time.Minute},
	{50 * time.Minute, 10 * time.Minute, 2 * time.Minute},
	{90 * time.Minute, 15 * time.Minute, 5 * time.Minute},
	{3 * time.Hour, 30 * time.Minute, 10 * time.Minute},
	{9 * time.Hour, time.Hour, 15 * time.Minute},
	{18 * time.Hour, 2 * time.Hour, 30 * time.Minute},
	{36 * time.Hour, 3 * time.Hour, time.Hour},
	{3 * 24 * time.Hour, 6 * time.Hour, time.Hour},
	{5 * 24 * time.Hour, 12 * time.Hour, 3 * time.Hour},
	{14 * 24 * time.Hour, 24 * time.Hour, 6 * time.Hour},
	{70 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour},
}

func (tt timeTicks) Ticks(lo, hi float64) []plot.Tick {
	loc := tt.loc
	if loc == nil {
		loc = time.UTC
	}
	from, to := fromSeconds(lo).In(loc), fromSeconds(hi).In(loc)
	span := to.Sub(from)
	major, minor := 30*24*time.Hour, 7*24*time.Hour
	for _, s := range tickSteps {
		if span <= s.span {
			major, minor = s.major, s.minor
			break
		}
	}
	// Count from local midnight so ticks fall on round hours; days are
	// stepped by the calendar so DST days still tick at midnight.
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc)
	var ticks []plot.Tick
	for d := day; !d.After(to); d = d.AddDate(0, 0, 1) {
		for t := d; t.Before(d.AddDate(0, 0, 1)) && !t.After(to); t = t.Add(minor) {
			if t.Before(from) {
				continue
			}
			label := ""
			if onStep(t, d, major) {
				label = tt.label(t, major)
			}
			ticks = append(ticks, plot.Tick{Value: unixSeconds(t), Label: label})
		}
	}
	return ticks
}

// onStep reports whether t, within the day starting at day, is a major tick.
func onStep(t, day time.Time, major time.Duration) bool {
	if major >= 24*time.Hour {
		if !t.Equal(day) {
			return false
		}
		days := int(major / (24 * time.Hour))
		return days == 1 || day.YearDay()%days == 0
	}
	return t.Sub(day)%major == 0
}

func (timeTicks) label(t time.Time, major time.Duration) string {
	switch {
	case major >= 24*time.Hour:
		return t.Format("Mon 2 Jan")
	case t.Hour() == 0 && t.Minute() == 0:
		return t.Format("Mon 2 Jan")
	}
	return t.Format("15:04")
}

func fromSeconds(s float64) time.Time {
	sec, frac := math.Modf(s)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// blankLabels keeps another ticker's ticks, and so the grid lines, but blanks
// the labels: panels above the bottom one share its time labels.
type blankLabels struct{ plot.Ticker }

func (b blankLabels) Ticks(lo, hi float64) []plot.Tick {
	ticks := b.Ticker.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = " " // still major: keeps its grid line
		}
	}
	return ticks
}

// memoryUnit picks MiB or GiB for the largest value so tick labels stay short.
func memoryUnit(top float64) (float64, string) {
	if top >= 1<<30 {
		return 1 << 30, "GiB"
	}
	return 1 << 20, "MiB"
}

// niceTicks labels about target round values (steps of 1, 2, 2.5 or 5
// times a power of ten) with an unlabelled minor tick between them; gonum's
// default gives as few as three labels on a tall panel.
func niceTicks(target int, format func(v float64, decimals int) string) plot.Ticker {
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		span := hi - lo
		if !(span > 0) || math.IsInf(span, 0) {
			return nil
		}
		mag := math.Pow(10, math.Floor(math.Log10(span/float64(target))))
		step, decimals := 10*mag, 0
		for _, m := range []float64{1, 2, 2.5, 5, 10} {
			if span/(m*mag) <= float64(target) {
				step = m * mag
				break
			}
		}
		// As many decimals as the step needs: 25 -> 0, 0.5 -> 1, 0.25 -> 2.
		for decimals < 6 {
			if scaled := step * math.Pow(10, float64(decimals)); math.Abs(scaled-math.Round(scaled)) < 1e-6 {
				break
			}
			decimals++
		}
		var ticks []plot.Tick
		for i := math.Ceil(lo / step * 2); i/2*step <= hi+step*1e-9; i++ {
			v := i / 2 * step
			if math.Mod(i, 2) == 0 {
				ticks = append(ticks, plot.Tick{Value: v, Label: format(v, decimals)})
			} else {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
		return ticks
	})
}

// unitTicks label memory with its unit on every tick ("1.5 GiB"), so the
// reader never has to find an axis title.
func unitTicks(unit string) plot.Ticker {
	return niceTicks(6, func(v float64, d int) string { return strconv.FormatFloat(v, 'f', d, 64) + " " + unit })
}

func ratioTicks() plot.Ticker {
	return niceTicks(5, func(v float64, d int) string { return strconv.FormatFloat(v, 'f', max(d, 1), 64) })
}

func percentTicks() plot.Ticker {
	return niceTicks(6, func(v float64, d int) string { return strconv.FormatFloat(v, 'f', d, 64) + "%" })
}

// formatBytes is a byte count in the unit a Redis operator reads ("3.20 GiB").
func formatBytes(b float64) string {
	if math.IsNaN(b) {
		return "?"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.2f %s", b, units[i])
}
