package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/redisbot/redisbot/bot/charts"
	"github.com/redisbot/redisbot/bot/terminal"
	"github.com/redisbot/redisbot/handlers"
)

// trend answers the trend verb at a terminal: the chart as a PNG file (out,
// or ./trend-<instance>.png) and a text summary; with --json the points,
// and the chart only when --out asks for it.
func (c *cli) trend(t *handlers.Trend, out string) int {
	if c.opts.json {
		if out != "" && len(t.Points) > 0 {
			if code := c.writeChart(t, out); code != exitOK {
				return code
			}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Instance string           `json:"instance"`
			Window   string           `json:"window"`
			Points   []handlers.Point `json:"points"`
		}{t.Instance.Name, t.Window.String(), t.Points}); err != nil {
			fmt.Fprintf(c.stderr, "redisbot: %v\n", err)
			return exitError
		}
		return exitOK
	}
	r := terminal.New(c.stdout, useColor(c.opts.color, c.stdout, c.getenv), nil)
	if len(t.Points) == 0 {
		r.Trend(t, "", "")
		return exitOK
	}
	if out == "" {
		out = "trend-" + fileSafe(t.Instance.Name) + ".png"
	}
	if code := c.writeChart(t, out); code != exitOK {
		return code
	}
	r.Trend(t, trendTitle(t), out)
	return exitOK
}

// trendTitle is the chart's title, for the chart and its summary alike: it
// says how much history there is when it is less than the window.
func trendTitle(t *handlers.Trend) string {
	return charts.Title(t.Instance.Name+": memory", t.Window, charts.SeriesOf(t).Points)
}

func (c *cli) writeChart(t *handlers.Trend, path string) int {
	png, err := charts.Memory(charts.SeriesOf(t), trendTitle(t))
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "redisbot: trend chart: %v\n", err)
		return exitError
	}
	return exitOK
}

// fileSafe keeps an instance name (a cluster member's carries its
// address) to characters every file system takes.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}
