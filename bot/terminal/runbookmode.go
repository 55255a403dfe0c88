package terminal

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/glamour"
	glamouransi "github.com/charmbracelet/glamour/ansi"
	"github.com/charmbracelet/glamour/styles"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// WithRunbooks switches between the first screen (off, the default: the
// summary and one line per finding) and the full report with every
// finding's runbook (on: --runbook, or diagnose X FINDING).
func (r *Renderer) WithRunbooks(on bool) *Renderer {
	r.full = on
	return r
}

// runbookWidth is where runbook text wraps: a terminal of 100 columns
// shows it without the terminal's own wrapping.
const runbookWidth = 96

// finding prints one finding in full: its line, its summary, its actions,
// then its runbook as Markdown rendered for the terminal.
func (r *Renderer) finding(rep *handlers.Report, f handlers.Finding) {
	r.printf("\n%s  %s  %s\n", r.severity(f.Severity), r.paint(bold, f.ID), Clean(f.Title))
	r.printf("%s\n", wrap(Clean(f.Summary), runbookWidth, "  "))
	if len(f.Actions) > 0 {
		acts := make([]string, len(f.Actions))
		for i, a := range f.Actions {
			acts[i] = string(a)
		}
		r.printf("  %s %s (approval-gated)\n", r.paint(bold, "Actions:"), strings.Join(acts, ", "))
	}
	rb, err := r.runbook(rep, f)
	if err == nil {
		var text string
		text, err = r.markdown(runbookMarkdown(rb))
		if err == nil {
			r.printf("%s\n", strings.TrimRight(text, "\n "))
			return
		}
	}
	// The facts themselves when no runbook could be shown.
	var ev []string
	for _, e := range f.Evidence {
		ev = append(ev, e.Name+"="+Clean(e.Text))
	}
	r.printf("  %s\n%s\n", r.paint(bold, "Evidence:"), wrap(strings.Join(ev, "  "), runbookWidth-4, "    "))
	r.printf("  %s %v\n", r.paint(dim, "Runbook unavailable:"), err)
}

func (r *Renderer) runbook(rep *handlers.Report, f handlers.Finding) (*runbooks.Runbook, error) {
	if r.runbooks == nil {
		return nil, fmt.Errorf("no runbook library loaded")
	}
	return r.runbooks.Render(f.Runbook, runbooks.DataFor(rep, f))
}

// runbookMarkdown puts a rendered runbook back together as one Markdown
// document, its headings one level down so the finding line stays on top.
// Clean runs first: the Evidence section holds values from Redis, and the
// renderer adds its own escape codes only after.
func runbookMarkdown(rb *runbooks.Runbook) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Runbook %s: %s\n\n", rb.ID, rb.Title)
	for _, s := range rb.Sections {
		fmt.Fprintf(&b, "### %s\n\n%s\n\n", s.Heading, s.Body)
	}
	return Clean(b.String())
}

// markdown renders Markdown for this renderer's terminal: glamour's dark
// style on a colour terminal, and without colour the same layout as plain
// text, without the ** and backticks a reader would otherwise see.
func (r *Renderer) markdown(md string) (string, error) {
	style := plainStyle()
	if r.color {
		style = styles.DarkStyleConfig
	}
	tr, err := glamour.NewTermRenderer(glamour.WithStyles(style), glamour.WithWordWrap(runbookWidth))
	if err != nil {
		return "", fmt.Errorf("markdown renderer: %w", err)
	}
	out, err := tr.Render(md)
	if err != nil {
		return "", fmt.Errorf("render runbook: %w", err)
	}
	if !r.color {
		// glamour pads every line to the wrap width; in a file or a pipe
		// that is only trailing blanks.
		lines := strings.Split(out, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimRight(l, " ")
		}
		out = strings.Join(lines, "\n")
	}
	return out, nil
}

// plainStyle is glamour's ASCII style with no marks left of the Markdown:
// headings, emphasis and code read as plain text, code blocks indented.
func plainStyle() glamouransi.StyleConfig {
	s := styles.ASCIIStyleConfig
	for _, h := range []*glamouransi.StyleBlock{&s.H1, &s.H2, &s.H3, &s.H4, &s.H5, &s.H6} {
		h.Prefix = ""
	}
	s.Emph, s.Strong = glamouransi.StylePrimitive{}, glamouransi.StylePrimitive{}
	s.Code = glamouransi.StyleBlock{}
	return s
}
