package blockkit

import "github.com/redisbot/redisbot/handlers"

// summaryLine leads a report under its header (which names the instance
// and severity): the number that matters and what to do first with its
// gain, as handlers.Summarize puts them for every transport. The first
// action follows in full in its own section.
func summaryLine(s handlers.Summary) string {
	line := "*" + inline(truncRaw(s.Headline)) + "*"
	if !s.First.Nothing() {
		first := "first: " + s.First.Label()
		if s.Gain != "" {
			first += ", " + s.Gain
		}
		line += " · " + inline(first)
	}
	return line
}
