// Package terminal renders handler responses for a person at a terminal:
// readable without colour, coloured on a TTY. Every string that came from
// Redis is stripped of control characters first, so a hostile server cannot
// send escape sequences to the operator's terminal.
package terminal

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// Renderer writes responses to one writer.
type Renderer struct {
	w        io.Writer
	color    bool
	runbooks *runbooks.Library
	// full shows each finding's whole runbook (WithRunbooks).
	full bool
}

// New returns a renderer. lib provides the runbook text shown with each
// finding; color turns on ANSI colours.
func New(w io.Writer, color bool, lib *runbooks.Library) *Renderer {
	return &Renderer{w: w, color: color, runbooks: lib}
}

// Response renders whatever a verb returned.
func (r *Renderer) Response(resp *handlers.Response) {
	switch {
	case resp.Help != nil:
		r.help(resp.Help)
	case resp.Verb == "list":
		r.list(resp.Instances)
	case resp.Verb == "fleet":
		r.Fleet(resp.Reports)
	default:
		for _, rep := range resp.Reports {
			r.Report(rep)
		}
	}
}

const (
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
	green  = "\x1b[32m"
)

func (r *Renderer) paint(code, s string) string {
	if !r.color {
		return s
	}
	return code + s + reset
}

func (r *Renderer) severity(s handlers.Severity) string {
	label := strings.ToUpper(s.String())
	if s == handlers.SeverityNone {
		label = "OK"
	}
	code := map[handlers.Severity]string{
		handlers.SeverityCritical: bold + red, handlers.SeverityWarning: bold + yellow,
		handlers.SeverityInfo: cyan, handlers.SeverityNone: green,
	}[s]
	return r.paint(code, label)
}

func (r *Renderer) printf(format string, args ...any) { fmt.Fprintf(r.w, format, args...) }

// Report renders one instance's report. By default that is the first
// screen: the summary line, what to do first, one line per finding and how
// to see more. With runbooks on (WithRunbooks) it is everything: the same
// summary line, the key numbers, the decision tree and each finding's full
// runbook.
func (r *Renderer) Report(rep *handlers.Report) {
	r.summary(rep)
	if r.full {
		r.metrics(rep)
	}
	r.firstAction(rep)
	if r.full && len(rep.Path) > 0 {
		r.printf("\n%s\n", r.paint(bold, "Fragmentation decision tree"))
		for i, s := range rep.Path {
			mark := ""
			if s.Finding != "" {
				mark = "  => " + r.paint(bold, s.Finding)
			}
			r.printf("  %d. %s\n     %s%s\n", i+1, Clean(s.Question), Clean(s.Answer), mark)
		}
	}
	if rep.Doctor != "" {
		r.printf("\n%s\n", r.paint(bold, "MEMORY DOCTOR says"))
		r.printf("%s\n", indent(Clean(capDoctor(strings.TrimSpace(rep.Doctor))), "  "))
	}
	if len(rep.Missing) > 0 {
		r.printf("\n%s %s\n", r.paint(dim, "Not available:"), Clean(strings.Join(rep.Missing, "; ")))
	}
	if rep.Keys != nil {
		r.keys(rep.Keys)
	}
	if len(rep.Findings) == 0 {
		if r.full {
			r.printf("\n%s nothing to report for %s.\n", r.severity(handlers.SeverityNone), rep.Verb)
		}
		return
	}
	if !r.full {
		r.findingLines(rep)
		return
	}
	for _, f := range rep.Findings {
		r.finding(rep, f)
	}
}

// summary is the line a report leads with (handlers.Summarize).
func (r *Renderer) summary(rep *handlers.Report) {
	s := handlers.Summarize(rep)
	where := Clean(s.Instance)
	if s.Addr != "" {
		where += " (" + Clean(s.Addr) + ")"
	}
	line := r.severity(s.Severity) + "  " + r.paint(bold, where) + "  " + Clean(s.Headline)
	if !s.First.Nothing() {
		first := "first: " + s.First.Label()
		if s.Gain != "" {
			first += ", " + s.Gain
		}
		line += " · " + r.paint(bold, first)
	}
	r.printf("%s\n", line)
}

// findingLines prints one line per finding (severity, id, the number that
// carries it, title) in aligned columns, then how to read a runbook.
func (r *Renderer) findingLines(rep *handlers.Report) {
	rows := make([][]string, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		rows = append(rows, []string{r.severity(f.Severity), f.ID, Clean(handlers.Headline(f)), Clean(f.Title)})
	}
	r.table("  ", rows)
	if rep.Failed() {
		// Nothing else explains a failed probe: its class's advice.
		for _, f := range rep.Findings {
			r.printf("%s\n", wrap(Clean(f.Summary), runbookWidth, "  "))
		}
	}
	verb := rep.Verb
	if verb == "" {
		verb = "diagnose"
	}
	// The runbook to read first is the one of the finding the first
	// action answers.
	id := handlers.Summarize(rep).Finding
	if id == "" {
		id = rep.Findings[0].ID
	}
	hint := fmt.Sprintf("redisbot diagnose %s %s or --runbook for the full runbook", Clean(rep.Instance), id)
	switch verb {
	case "diagnose":
	case "keys":
		// Key findings come from a scan, which diagnose does not run.
		hint = fmt.Sprintf("redisbot keys %s --runbook for the full runbooks", Clean(rep.Instance))
	default:
		hint = fmt.Sprintf("redisbot diagnose %s %s, or redisbot %s %s --runbook, for the full runbook", Clean(rep.Instance), id, verb, Clean(rep.Instance))
	}
	r.printf("%s\n", r.paint(dim, hint))
}

// table prints rows in columns padded by their visible width: colour
// codes take bytes but no room on screen, so tabwriter would misalign a
// coloured column. The last column is not padded.
func (r *Renderer) table(prefix string, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], ansi.StringWidth(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		b.WriteString(prefix)
		for i, cell := range row {
			b.WriteString(cell)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-ansi.StringWidth(cell)+2))
			}
		}
		r.printf("%s\n", strings.TrimRight(b.String(), " "))
	}
}

// metrics prints the numbers every full report shows under its summary.
func (r *Renderer) metrics(rep *handlers.Report) {
	// Three lines, each a question the reader asks first: what is it, where
	// is its memory, and what limits it.
	lines := [][]string{
		{"server", "version", "role", "mem_allocator", "activedefrag"},
		{"used_memory", "used_memory_rss", "used_memory_peak", "mem_fragmentation_ratio", "allocator_frag_ratio", "allocator_frag_bytes"},
		{"maxmemory", "maxmemory_usage", "maxmemory_policy", "memory_limit", "keys", "expires", "evicted_keys", "errorstat_OOM"},
	}
	for _, names := range lines {
		var parts []string
		for _, name := range names {
			m, ok := rep.Metric(name)
			if !ok {
				continue
			}
			if label := metricLabel(name); label != "" {
				parts = append(parts, r.paint(dim, label)+" "+Clean(m.Text))
			} else {
				parts = append(parts, Clean(m.Text))
			}
		}
		if len(parts) > 0 {
			r.printf("  %s\n", strings.Join(parts, "  "))
		}
	}
}

// firstAction prints what to do first, under the summary and before the
// findings: the one line a reader under pressure needs.
func (r *Renderer) firstAction(rep *handlers.Report) {
	a := handlers.ChooseFirstAction(rep)
	label := r.paint(bold, "First:")
	if a.Nothing() {
		label = r.paint(bold+green, "First:")
	}
	text := Clean(a.Text)
	if a.Command != "" {
		text += " In Slack: " + Clean(a.Command) + " (approval-gated)."
	}
	r.printf("  %s %s\n", label, strings.TrimPrefix(wrap(text, 88, "         "), "         "))
}

// metricLabel shortens INFO names for the header; JSON keeps the originals.
func metricLabel(name string) string {
	labels := map[string]string{
		"server": "", "version": "", "role": "", "mem_allocator": "", "activedefrag": "activedefrag",
		"used_memory": "used", "used_memory_rss": "rss", "used_memory_peak": "peak",
		"mem_fragmentation_ratio": "frag", "allocator_frag_ratio": "allocator frag", "allocator_frag_bytes": "/",
		"maxmemory": "maxmemory", "maxmemory_usage": "in use", "maxmemory_policy": "policy",
		"memory_limit": "limit", "keys": "keys", "expires": "with TTL", "evicted_keys": "evicted", "errorstat_OOM": "OOM errors",
	}
	if l, ok := labels[name]; ok {
		return l
	}
	return name
}

// keys prints a key scan: how it went, then its tables aligned in columns.
// Key names are Printable already; Clean is the terminal's own guard.
func (r *Renderer) keys(k *handlers.KeyReport) {
	summary := k.Summary()
	if !k.Complete {
		summary = r.paint(bold+yellow, summary)
	}
	r.printf("\n%s\n", wrap(Clean(summary), 96, ""))
	for _, t := range k.Tables() {
		r.printf("\n%s\n", r.paint(bold, Clean(t.Title)))
		rows := [][]string{make([]string, len(t.Header))}
		for i, h := range t.Header {
			rows[0][i] = Clean(strings.ToUpper(h))
		}
		for _, row := range t.Rows {
			cells := make([]string, len(row))
			for i, c := range row {
				cells[i] = Clean(c)
			}
			rows = append(rows, cells)
		}
		r.table("  ", rows)
		if t.More > 0 {
			hint := "--json lists them all"
			if t.MoreWhat == "keys" {
				hint = "--top shows up to 1000, --json lists them all"
			}
			r.printf("  %s\n", r.paint(dim, fmt.Sprintf("%d more %s: %s", t.More, Clean(t.MoreWhat), hint)))
		}
	}
}

// Fleet renders one line per instance, riskiest first (the order given).
func (r *Renderer) Fleet(reports []*handlers.Report) {
	rows := [][]string{{"SEVERITY", "INSTANCE", "USED", "RSS", "FRAG", "MAXMEMORY", "FINDINGS"}}
	for _, rep := range reports {
		metric := func(name string) string {
			if m, ok := rep.Metric(name); ok {
				return Clean(m.Text)
			}
			return "-"
		}
		maxmem := metric("maxmemory_usage")
		if maxmem != "-" {
			maxmem += " of " + metric("maxmemory")
		} else if metric("maxmemory") == "0 B" {
			maxmem = "unset"
		}
		var ids []string
		for _, f := range rep.Findings {
			if f.Severity >= handlers.SeverityWarning || f.ID == "unreachable" {
				ids = append(ids, f.ID)
			}
		}
		if rep.Failed() {
			ids = []string{"unreachable (" + string(rep.Error.Class) + ")"}
		}
		frag := metric("mem_fragmentation_ratio")
		if rep.Has("frag-noise") {
			// A ratio of 13 over a few MiB is no danger; say so beside it.
			frag += " " + r.paint(dim, "(noise)")
		}
		rows = append(rows, []string{r.severity(rep.Severity), Clean(rep.Instance), metric("used_memory"), metric("used_memory_rss"),
			frag, maxmem, strings.Join(ids, ", ")})
	}
	r.table("", rows)
}

func (r *Renderer) list(instances []handlers.Instance) {
	tw := tabwriter.NewWriter(r.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tADDR\tTAGS\tMEMORY LIMIT")
	for _, inst := range instances {
		limit := "-"
		if inst.MemoryLimit > 0 {
			limit = handlers.HumanBytes(inst.MemoryLimit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", inst.Name, inst.Addr, strings.Join(inst.Tags, ","), limit)
	}
	tw.Flush()
}

func (r *Renderer) help(verbs []handlers.VerbHelp) {
	r.printf("Usage: redisbot <verb> [args] [--config FILE] [--json]\n\n")
	tw := tabwriter.NewWriter(r.w, 0, 4, 2, ' ', 0)
	for _, v := range verbs {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Usage, v.Summary)
	}
	fmt.Fprintf(tw, "  check-config\tvalidate the config and probe every instance\n")
	fmt.Fprintf(tw, "  serve\tconnect to Slack (Socket Mode) and answer /redis commands\n")
	fmt.Fprintf(tw, "  version\tprint the version\n")
	tw.Flush()
	r.printf("\nExit codes: 0 nothing above info, 1 warning, 2 critical, 3 probe or config error.\n")
}

const (
	// doctorLines and doctorLineRunes bound MEMORY DOCTOR's text at a
	// terminal: Redis's own report is a few dozen lines, and a server that
	// sends 100 KB must not scroll the findings off the screen.
	doctorLines     = 200
	doctorLineRunes = 1000
)

// capDoctor keeps the first doctorLines lines of MEMORY DOCTOR's text, each
// cut at doctorLineRunes, and says how much it left out and where to read
// it all.
func capDoctor(text string) string {
	lines := strings.Split(text, "\n")
	hidden := 0
	if len(lines) > doctorLines {
		for _, l := range lines[doctorLines:] {
			hidden += utf8.RuneCountInString(l) + 1
		}
		lines = lines[:doctorLines]
	}
	for i, l := range lines {
		n, cut := 0, len(l)
		for j := range l {
			if n == doctorLineRunes {
				cut = j
				break
			}
			n++
		}
		if cut < len(l) {
			lines[i] = l[:cut] + "…"
			hidden += utf8.RuneCountInString(l[cut:])
		}
	}
	if hidden == 0 {
		return text
	}
	return strings.Join(lines, "\n") + fmt.Sprintf("\n… (truncated, %d more characters; run `redis-cli MEMORY DOCTOR` for the full text)", hidden)
}

// Clean makes text from Redis or a user safe to print: control characters
// other than newline and tab are shown as Go escapes instead of executed.
func Clean(s string) string {
	if !strings.ContainsFunc(s, isUnsafe) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isUnsafe(r) {
			q := fmt.Sprintf("%q", string(r))
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isUnsafe(r rune) bool {
	return (unicode.IsControl(r) && r != '\n' && r != '\t') || r == unicode.ReplacementChar ||
		slices.Contains([]rune{'\u202e', '\u202d', '\u2066', '\u2067', '\u2068', '\u2069'}, r) // bidi overrides
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// wrap breaks text into lines of at most width runes, each starting with
// prefix.
func wrap(s string, width int, prefix string) string {
	var lines []string
	line := prefix
	for _, word := range strings.Fields(s) {
		if len(line) > len(prefix) && len(line)+1+len(word) > width+len(prefix) {
			lines = append(lines, line)
			line = prefix
		}
		if len(line) > len(prefix) {
			line += " "
		}
		line += word
	}
	lines = append(lines, line)
	return strings.Join(lines, "\n")
}
