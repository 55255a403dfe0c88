package blockkit

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// rawLine bounds a piece of Redis text (a title, an answer, a name) before
// escaping: even at six characters an escaped rune, it fits a section.
const rawLine = 400

// renderReport draws one instance's report: a header with the worst
// severity, the key metrics, the verb's own part (decision tree, MEMORY
// DOCTOR's text), then one group of blocks per finding.
func renderReport(rep *handlers.Report, lib *runbooks.Library) []Message {
	var m messages
	head := []slack.Block{header(rep.Instance + " · " + severityLabel(rep.Severity))}
	if ctx := contextBlock(reportContext(rep)...); len(ctx.ContextElements.Elements) > 0 {
		head = append(head, ctx)
	}
	m.add(head...)
	sum := handlers.Summarize(rep)
	m.add(section(summaryLine(sum)), section(firstActionText(sum.First)))
	if rep.Keys != nil {
		for _, b := range keyBlocks(rep.Keys) {
			m.add(b)
		}
	}
	if len(rep.Path) > 0 {
		for _, text := range lineSections("*Fragmentation decision tree*", pathLines(rep.Path), 1000) {
			m.add(section(text))
		}
	}
	if doctor := strings.TrimSpace(rep.Doctor); doctor != "" {
		m.add(section(doctorSection(doctor)))
	}
	if len(rep.Findings) == 0 {
		m.add(section(severityEmoji(handlers.SeverityNone) + " No memory findings for " + inline(rep.Verb) + "."))
	}
	for i, f := range rep.Findings {
		m.add(findingBlocks(rep, i, f, lib)...)
	}
	return m.finish(reportFallback(rep))
}

// firstActionText is the line at the top of a report: what to do first,
// with the command that requests it when a remediation carries it out.
func firstActionText(a handlers.FirstAction) string {
	icon := ":point_right:"
	if a.Nothing() {
		icon = severityEmoji(handlers.SeverityNone)
	}
	text := icon + " *First:* "
	var command string
	if a.Command != "" {
		command = "\n" + code(truncRaw(a.Command)) + " (approval required)"
	}
	return text + cut(Escape(a.Text), maxSection-textLen(text)-textLen(command)) + command
}

// reportContext is the line under the header: where the instance is, what
// it runs, and the numbers every reader looks at first.
func reportContext(rep *handlers.Report) []string {
	metric := func(name string) (string, bool) {
		f, ok := rep.Metric(name)
		if !ok || f.Text == "" {
			return "", false
		}
		// Some are words a server chose (a 64 KiB redis_version, a
		// policy of markup): none may push the rest of the line out.
		return inline(truncRunes(f.Text, maxServerWord)), true
	}
	var where []string
	if rep.Addr != "" {
		where = append(where, code(rep.Addr))
	}
	var server []string
	for _, name := range []string{"server", "version", "role"} {
		if v, ok := metric(name); ok {
			server = append(server, v)
		}
	}
	if len(server) > 0 {
		where = append(where, strings.Join(server, " "))
	}
	if !rep.ProbedAt.IsZero() {
		where = append(where, "probed "+probedAt(rep.ProbedAt))
	}
	if rep.Error != nil {
		where = append(where, "probe failed: "+inline(string(rep.Error.Class)))
	}

	var numbers []string
	labelled := func(label, name string) {
		if v, ok := metric(name); ok {
			numbers = append(numbers, label+" "+v)
		}
	}
	labelled("used", "used_memory")
	labelled("rss", "used_memory_rss")
	labelled("frag", "mem_fragmentation_ratio")
	numbers = append(numbers, maxmemoryText(rep)...)
	labelled("policy", "maxmemory_policy")
	labelled("limit", "memory_limit")

	var missing string
	if len(rep.Missing) > 0 {
		missing = "not available: " + missingText(rep.Missing)
	}
	return []string{strings.Join(where, " · "), strings.Join(numbers, " · "), missing}
}

// maxmemoryText is "maxmemory 81% of 64.0 MiB", "maxmemory unset", or
// nothing when the probe did not learn it.
func maxmemoryText(rep *handlers.Report) []string {
	usage, okUsage := rep.Metric("maxmemory_usage")
	limit, okLimit := rep.Metric("maxmemory")
	switch {
	case okUsage && okLimit:
		return []string{"maxmemory " + inline(usage.Text) + " of " + inline(limit.Text)}
	case okUsage:
		return []string{"maxmemory " + inline(usage.Text)}
	case okLimit && isZero(limit.Value):
		return []string{"maxmemory unset"}
	}
	return nil
}

func isZero(v any) bool {
	switch n := v.(type) {
	case int64:
		return n == 0
	case int:
		return n == 0
	case float64:
		return n == 0
	}
	return false
}

func probedAt(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// pathLines numbers the decision tree's steps: question → answer ⇒ finding.
func pathLines(path []handlers.Step) []string {
	lines := make([]string, len(path))
	for i, s := range path {
		line := fmt.Sprintf("%d. %s → %s", i+1, inline(truncRaw(s.Question)), inline(truncRaw(s.Answer)))
		if s.Finding != "" {
			line += "  =&gt; " + code(truncRaw(s.Finding))
		}
		lines[i] = line
	}
	return lines
}

const (
	// maxServerWord bounds one value in a report's context line.
	maxServerWord = 64
	// doctorMarkerRoom is the room doctorSection keeps for its marker.
	doctorMarkerRoom = 150
	// missingRoom is the room missingText leaves in a context element
	// for "not available: " and the count of notes not shown.
	missingRoom = 100
)

// doctorSection shows MEMORY DOCTOR's text as one section, a block quote
// line for line. Redis's own reports fit with room to spare; a longer text
// (a proxy's, a hostile server's 100 KB) is cut where the section ends,
// with a marker saying how much was left out and where to read it all,
// instead of filling the message with dozens of sections.
func doctorSection(text string) string {
	var b strings.Builder
	b.WriteString("*MEMORY DOCTOR says*")
	size, budget := textLen(b.String()), maxSection-doctorMarkerRoom
	shown := 0 // bytes of text shown
	for line := range strings.SplitSeq(text, "\n") {
		quoted := "\n> " + Escape(strings.TrimRight(line, "\r"))
		if size+textLen(quoted) <= budget {
			b.WriteString(quoted)
			size += textLen(quoted)
			shown += len(line) + 1
			continue
		}
		// The line that does not fit is shown as far as it goes, rune by
		// rune: an escaped rune is never split.
		b.WriteString("\n> ")
		size += 3
		cutAt := len(line)
		for i, r := range line {
			e := Escape(string(r))
			if size+textLen(e) > budget {
				cutAt = i
				break
			}
			b.WriteString(e)
			size += textLen(e)
		}
		shown += cutAt
		more := utf8.RuneCountInString(text[min(shown, len(text)):])
		fmt.Fprintf(&b, "\n%s (truncated, %s more characters; run %s for the full text)", ellipsis, handlers.Thousands(int64(more)), code("redis-cli MEMORY DOCTOR"))
		return b.String()
	}
	return b.String()
}

// missingText lists what the probe could not learn or did not believe,
// each note bounded, as many as fit a context element, then how many more.
func missingText(notes []string) string {
	var b strings.Builder
	for i, note := range notes {
		part := inline(truncRaw(note))
		if i > 0 && textLen(b.String())+2+textLen(part) > maxContextText-missingRoom {
			fmt.Fprintf(&b, "; and %d more", len(notes)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String()
}

// truncRaw bounds raw text before escaping.
func truncRaw(s string) string { return truncRunes(s, rawLine) }

// truncRunes cuts raw text to n runes, marking the cut with an ellipsis.
func truncRunes(s string, n int) string {
	if pieces := splitRunes(s, n); len(pieces) > 1 {
		return pieces[0] + ellipsis
	}
	return s
}

// findingBlocks is one finding: a divider, the title and summary with the
// evidence as fields, the runbook and actions line, and the runbook button.
func findingBlocks(rep *handlers.Report, i int, f handlers.Finding, lib *runbooks.Library) []slack.Block {
	head := cut(fmt.Sprintf("%s *%s*  %s", severityEmoji(f.Severity), inline(truncRaw(f.Title)), code(truncRaw(f.ID))), maxSection/3)
	text := head
	if summary := strings.TrimSpace(f.Summary); summary != "" {
		text += "\n" + cut(Escape(summary), maxSection-textLen(head)-1)
	}
	var fields []*slack.TextBlockObject
	for _, fact := range f.Evidence {
		if len(fields) == maxFields {
			break
		}
		value := fact.Text
		if value == "" {
			value = "(empty)"
		}
		name := "*" + inline(truncRaw(fact.Name)) + "*"
		fields = append(fields, mrkdwn(cut(name+"\n"+Escape(value), maxField)))
	}
	sec := slack.NewSectionBlock(mrkdwn(text), fields, nil, slack.SectionBlockOptionBlockID(fmt.Sprintf("finding-%d", i)))

	about := []string{"runbook " + code(truncRaw(f.Runbook))}
	// The actions named are those this instance can carry out now, as
	// its buttons are: a catalogue list would name refused ones.
	switch opts := handlers.ActionOptions(rep, f); {
	case len(opts) > 0:
		var acts []string
		for _, o := range opts {
			if a := inline(string(o.Action)); !slices.Contains(acts, a) {
				acts = append(acts, a)
			}
		}
		about = append(about, "actions: "+strings.Join(acts, ", ")+" (approval required)")
	case len(f.Actions) > 0 && !rep.Failed():
		about = append(about, "no bot action can help on this instance now")
	default:
		about = append(about, "no bot actions")
	}
	if extra := len(f.Evidence) - maxFields; extra > 0 {
		about = append(about, fmt.Sprintf("%d more facts in the runbook", extra))
	}
	blocks := []slack.Block{slack.NewDividerBlock(), sec, contextBlock(strings.Join(about, " · "))}
	var buttons []slack.BlockElement
	if btn, ok := runbookButton(rep, i, f, lib); ok {
		buttons = append(buttons, btn)
	}
	buttons = append(buttons, requestButtons(rep, i, f)...)
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock(fmt.Sprintf("actions-%d", i), buttons...))
	}
	return blocks
}

// reportFallback is the notification text: instance, severity and the ids
// that made it.
func reportFallback(rep *handlers.Report) string {
	text := inline(rep.Instance) + " · " + severityLabel(rep.Severity)
	switch {
	case rep.Error != nil:
		text += " · unreachable (" + inline(string(rep.Error.Class)) + ")"
	case len(rep.Findings) == 0:
		text += " · no memory findings"
	default:
		ids := make([]string, len(rep.Findings))
		for i, f := range rep.Findings {
			ids[i] = inline(f.ID)
		}
		text += " · " + strings.Join(ids, ", ")
	}
	return text
}
