package charts

import (
	"fmt"
	"strings"
	"time"
)

// Window is a span of history a chart can show, by the name a user types.
type Window struct {
	Name string
	Span time.Duration
}

// Windows are the spans /redis trend offers: an incident wants the last
// quarter hour, capacity planning the last month.
var Windows = []Window{
	{"15m", 15 * time.Minute},
	{"1h", time.Hour},
	{"6h", 6 * time.Hour},
	{"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour},
	{"30d", 30 * 24 * time.Hour},
}

// WindowNames lists the windows for a usage message: "15m|1h|...".
func WindowNames() string {
	names := make([]string, len(Windows))
	for i, w := range Windows {
		names[i] = w.Name
	}
	return strings.Join(names, "|")
}

// ParseWindow reads a window's name; "1d" is 24h.
func ParseWindow(name string) (time.Duration, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "1d" {
		name = "24h"
	}
	for _, w := range Windows {
		if w.Name == name {
			return w.Span, nil
		}
	}
	return 0, fmt.Errorf("the window is one of %s", strings.ReplaceAll(WindowNames(), "|", ", "))
}

// Title names a chart by the time its points really cover: "last 6h" when
// they fill the window, "last 11 min (window 6h)" when the history is
// younger than the window, so the title never promises data the chart
// does not have.
func Title(subject string, window time.Duration, pts []Point) string {
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
	for _, w := range Windows {
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
