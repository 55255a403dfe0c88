package charts

import (
	"fmt"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// Title names a chart by the time its points really cover: "last 6h" when
// they fill the window, "last 11 min (window 6h)" when the history is
// younger than the window, so the title never promises data the chart
// does not have.
func Title(subject string, window time.Duration, pts []handlers.Point) string {
	if len(pts) == 0 {
		return fmt.Sprintf("%s, last %s", subject, spanText(window))
	}
	first, last := pts[0].At, pts[0].At
	for _, p := range pts {
		if p.At.Before(first) {
			first = p.At
		}
		if p.At.After(last) {
			last = p.At
		}
	}
	covered := last.Sub(first)
	// Sweeps run every few minutes: a window filled to within a tenth
	// is full.
	if covered >= window-window/10 {
		return fmt.Sprintf("%s, last %s", subject, spanText(window))
	}
	return fmt.Sprintf("%s, last %s (window %s)", subject, spanText(covered), spanText(window))
}

// spanText writes a span as a person says it: "11 min", "5h 20m", "6h",
// "3 days", "30d" for the windows' own names.
func spanText(d time.Duration) string {
	for _, w := range handlers.TrendWindows {
		if d == w.Span {
			return w.Name
		}
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}
