package blockkit

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// fence is how a code block opens and closes in mrkdwn.
const fence = "```"

// RenderRunbook shows the whole runbook of one finding, its Evidence section
// filled from the report's snapshot, as mrkdwn. A long runbook is split over
// sections and, past 50 blocks, over several messages (for the thread).
// rep may be nil, in which case the evidence reads "unknown".
func RenderRunbook(rep *handlers.Report, findingID string, lib *runbooks.Library) (Reply, error) {
	if lib == nil {
		return Reply{}, errors.New("no runbook library loaded")
	}
	var f handlers.Finding
	found := false
	if rep != nil {
		f, found = rep.Finding(findingID)
	}
	rb, err := lib.Render(findingID, runbookData(rep, f))
	if err != nil {
		return Reply{}, err
	}

	var m messages
	m.add(header(rb.Title))
	about := []string{"runbook " + code(rb.ID)}
	if rep != nil {
		about = append(about, "instance "+code(truncRaw(rep.Instance)))
		if !rep.ProbedAt.IsZero() {
			about = append(about, "evidence from the probe at "+probedAt(rep.ProbedAt))
		}
		if !found {
			about = append(about, "this finding is not in that probe")
		}
	}
	m.add(contextBlock(strings.Join(about, " · ")))
	for _, s := range rb.Sections {
		// The Evidence section holds values from Redis: nothing in it may
		// become a link.
		links := !strings.EqualFold(s.Heading, "Evidence")
		lines := append([]string{"*" + inline(s.Heading) + "*"}, convertMarkdown(s.Body, links)...)
		for _, text := range splitFenced(lines, maxSection) {
			m.add(section(text))
		}
	}
	text := "Runbook " + inline(rb.ID)
	if rep != nil {
		text += " for " + inline(truncRaw(rep.Instance))
	}
	return Reply{Messages: m.finish(text)}, nil
}

// maxDataValue bounds one templated value: INFO values are short, and a
// server that sends a megabyte in a field gets it cut.
const maxDataValue = 256

// runbookData is what a runbook's Evidence template sees for a finding, as in
// bot/terminal. Values are kept to one line so that a value cannot start a
// heading, list item or code fence of its own.
func runbookData(rep *handlers.Report, f handlers.Finding) runbooks.Data {
	d := runbooks.DataFor(rep, f)
	// Values come from Redis: one line each, so a template line cannot be
	// broken into new mrkdwn blocks.
	clean := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = oneLine(v)
		}
		return out
	}
	d.Instance, d.Addr, d.Info, d.Config, d.Extra = oneLine(d.Instance), oneLine(d.Addr), clean(d.Info), clean(d.Config), clean(d.Extra)
	return d
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if pieces := splitRunes(s, maxDataValue); len(pieces) > 1 {
		return pieces[0] + ellipsis
	}
	return s
}

var (
	headingLine = regexp.MustCompile(`^#{1,6}\s+(.*)$`)
	bulletLine  = regexp.MustCompile(`^(\s*)[-*+]\s+(.*)$`)
	orderedLine = regexp.MustCompile(`^(\s*)(\d{1,9})[.)]\s+(.*)$`)
	quoteLine   = regexp.MustCompile(`^\s*>\s?(.*)$`)
	tableRule   = regexp.MustCompile(`^\s*:?-+:?\s*$`)
)

// convertMarkdown turns a runbook section's Markdown into mrkdwn lines.
// Headings become bold lines, **bold** becomes *bold*, bullets become "• ",
// tables become one line per row, links become <url|text> when links is set
// and the URL is http or https; code spans and fenced blocks are kept.
// Everything else is escaped: runbooks contain literal <host>.
func convertMarkdown(body string, links bool) []string {
	var out []string
	inFence, inTable := false, false
	for line := range strings.SplitSeq(body, "\n") {
		line = strings.TrimRight(line, " \t\r")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			out = append(out, fence)
			inFence, inTable = !inFence, false
			continue
		}
		if inFence {
			// A fence inside a code line would end Slack's block early.
			out = append(out, strings.ReplaceAll(Escape(line), fence, "`\u200b``"))
			continue
		}
		if strings.HasPrefix(trimmed, "|") {
			if row, ok := tableRow(trimmed, !inTable, links); ok {
				out = append(out, row)
			}
			inTable = true
			continue
		}
		inTable = false
		var m []string
		switch {
		case trimmed == "":
			out = append(out, "")
		case headingLine.MatchString(trimmed):
			out = append(out, "*"+inline(headingLine.FindStringSubmatch(trimmed)[1])+"*")
		case bulletLine.MatchString(line):
			m = bulletLine.FindStringSubmatch(line)
			out = append(out, indent(m[1])+"• "+convertInline(m[2], links))
		case orderedLine.MatchString(line):
			m = orderedLine.FindStringSubmatch(line)
			out = append(out, indent(m[1])+m[2]+". "+convertInline(m[3], links))
		case quoteLine.MatchString(line):
			out = append(out, "> "+convertInline(quoteLine.FindStringSubmatch(line)[1], links))
		default:
			out = append(out, convertInline(trimmed, links))
		}
	}
	if inFence {
		out = append(out, fence) // runbooks.Load refuses this; be safe anyway
	}
	return out
}

// indent keeps a nested list nested: Slack collapses leading spaces, so
// each level of two spaces becomes an em space pair.
func indent(lead string) string {
	n := len(strings.ReplaceAll(lead, "\t", "  ")) / 2
	return strings.Repeat("\u2003\u2003", n)
}

// tableRow renders a Markdown table row as one line, cells separated by
// " · "; the header row is bold and the |---| rule is dropped.
func tableRow(row string, first, links bool) (string, bool) {
	row = strings.TrimSuffix(strings.TrimPrefix(row, "|"), "|")
	cells := strings.Split(row, "|")
	rule := true
	for _, c := range cells {
		if !tableRule.MatchString(c) {
			rule = false
		}
	}
	if rule {
		return "", false
	}
	out := make([]string, len(cells))
	for i, c := range cells {
		c = strings.TrimSpace(c)
		if first {
			out[i] = "*" + inline(c) + "*"
		} else {
			out[i] = convertInline(c, links)
		}
	}
	if first {
		return strings.Join(out, " · "), true
	}
	return "• " + strings.Join(out, " · "), true
}

var bareURL = regexp.MustCompile(`^https?://[^\s<>"|\x60]+`)

// convertInline converts one line's inline Markdown: `code`, **bold**,
// [text](url) and bare http(s) URLs. Everything else is escaped.
func convertInline(s string, links bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		rest := s[i:]
		switch {
		case rest[0] == '`':
			ticks := len(rest) - len(strings.TrimLeft(rest, "`"))
			closing := strings.Index(rest[ticks:], rest[:ticks])
			if closing < 0 {
				b.WriteString(Escape(rest[:ticks]))
				i += ticks
				continue
			}
			content := strings.TrimSpace(rest[ticks : ticks+closing])
			b.WriteString(code(content))
			i += 2*ticks + closing
		case strings.HasPrefix(rest, "**"):
			closing := strings.Index(rest[2:], "**")
			if closing <= 0 {
				b.WriteString("**")
				i += 2
				continue
			}
			b.WriteString("*" + convertInline(strings.ReplaceAll(rest[2:2+closing], "*", ""), links) + "*")
			i += 4 + closing
		case rest[0] == '[':
			text, target, n, ok := markdownLink(rest)
			if !ok {
				b.WriteString("[")
				i++
				continue
			}
			if u, ok := linkURL(target); ok && links {
				b.WriteString("<" + u + "|" + strings.ReplaceAll(inline(text), "|", "¦") + ">")
			} else {
				b.WriteString(inline(text) + " (" + inline(target) + ")")
			}
			i += n
		case links && strings.HasPrefix(rest, "<http"):
			// A Markdown autolink: <https://...>.
			end := strings.IndexByte(rest, '>')
			if u, ok := linkURL(rest[1:max(end, 1)]); ok && end > 0 {
				b.WriteString("<" + u + ">")
				i += end + 1
				continue
			}
			b.WriteString("&lt;")
			i++
		case links && (strings.HasPrefix(rest, "http://") || strings.HasPrefix(rest, "https://")) && wordStart(s, i):
			raw := trimURL(bareURL.FindString(rest))
			if u, ok := linkURL(raw); ok {
				b.WriteString("<" + u + ">")
				i += len(raw)
				continue
			}
			b.WriteString(Escape(rest[:1]))
			i++
		default:
			j := strings.IndexAny(rest[1:], "`*[h<")
			if j < 0 {
				j = len(rest) - 1
			}
			b.WriteString(Escape(rest[:j+1]))
			i += j + 1
		}
	}
	return b.String()
}

// markdownLink parses "[text](target)" at the start of s and returns its
// length in bytes.
func markdownLink(s string) (text, target string, n int, ok bool) {
	end := strings.Index(s, "](")
	if end < 0 || strings.Contains(s[1:end], "[") {
		return "", "", 0, false
	}
	close := strings.IndexByte(s[end+2:], ')')
	if close < 0 {
		return "", "", 0, false
	}
	return s[1:end], s[end+2 : end+2+close], end + 3 + close, true
}

func wordStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	c := s[i-1]
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-')
}

// trimURL drops punctuation that ends the sentence rather than the URL.
func trimURL(u string) string {
	for u != "" {
		last := u[len(u)-1]
		switch {
		case strings.IndexByte(".,;:!?'", last) >= 0:
			u = u[:len(u)-1]
		case last == ')' && strings.Count(u, "(") < strings.Count(u, ")"):
			u = u[:len(u)-1]
		default:
			return u
		}
	}
	return u
}

// linkURL returns the URL as it can go in <url|text>: http or https with a
// host, no characters that would end the link early, & escaped.
func linkURL(raw string) (string, bool) {
	if raw == "" || len(raw) > 2000 || strings.ContainsAny(raw, " \t\n<>|\"`") {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	for _, r := range raw {
		if r < 0x21 || r > 0x7e {
			return "", false
		}
	}
	return strings.ReplaceAll(raw, "&", "&amp;"), true
}

// splitFenced packs mrkdwn lines into section texts of at most max
// characters, breaking only between lines. A code block that does not fit
// where it starts moves to the next section whole when it fits there;
// otherwise the section closes the fence and the next one reopens it. Lines
// too long for any section are broken.
func splitFenced(lines []string, max int) []string {
	const closing = len("\n" + fence)
	var (
		out    []string
		cur    []string
		curLen int // textLen of cur joined by newlines
		open   bool
	)
	flush := func() {
		text := strings.Join(cur, "\n")
		if open {
			text += "\n" + fence
		}
		if text = strings.Trim(text, "\n"); text != "" {
			out = append(out, text)
		}
		cur, curLen = nil, 0
		if open {
			cur, curLen = []string{fence}, len(fence)
		}
	}
	fits := func(n int, openAfter bool) bool {
		total := curLen + n
		if len(cur) > 0 {
			total++
		}
		if openAfter {
			total += closing
		}
		return total <= max
	}
	for i, line := range lines {
		if line == fence && !open && len(cur) > 1 {
			// Move a whole code block to a fresh section when that avoids
			// splitting it.
			if block := blockLen(lines[i:]); block >= 0 && block <= max && !fits(block, false) {
				flush()
			}
		}
		// Each piece fits a section that reopens a fence and closes it again.
		for _, piece := range breakLine(line, max-len(fence)-1-closing) {
			openAfter := open != (piece == fence)
			reopenedOnly := open && len(cur) == 1
			if len(cur) > 0 && !reopenedOnly && !fits(textLen(piece), openAfter) {
				flush()
			}
			if len(cur) > 0 {
				curLen++
			}
			cur = append(cur, piece)
			curLen += textLen(piece)
			open = openAfter
		}
	}
	if len(cur) > 0 && !(open && len(cur) == 1) {
		flush()
	}
	return out
}

// blockLen is the length of the code block starting at lines[0] (a fence)
// up to and including its closing fence, or -1 when it is not closed.
func blockLen(lines []string) int {
	n := textLen(lines[0])
	for _, l := range lines[1:] {
		n += 1 + textLen(l)
		if l == fence {
			return n
		}
	}
	return -1
}

// breakLine splits a line longer than max characters, at a space where it
// can, never inside an entity or a link.
func breakLine(line string, max int) []string {
	var out []string
	for textLen(line) > max {
		head := safePrefix(line, max)
		if sp := strings.LastIndexByte(head, ' '); sp > len(head)/2 {
			head = head[:sp+1]
		}
		if head == "" { // a link longer than max: cut it as text
			head = line[:len(safePrefixRaw(line, max))]
		}
		out = append(out, head)
		line = line[len(head):]
	}
	return append(out, line)
}

// safePrefixRaw is the longest prefix of at most max characters, cut only
// on rune boundaries.
func safePrefixRaw(s string, max int) string {
	n := 0
	for i, r := range s {
		if n+utf16Len(r) > max {
			return s[:i]
		}
		n += utf16Len(r)
	}
	return s
}
