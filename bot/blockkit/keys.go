package blockkit

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// renderKeys is the reply to /redis keys: the report with the scan's
// tables in the channel; in its thread, the runbook of each finding (a key
// finding cannot be re-probed by a button: its evidence is this scan) and
// the CSV files of the biggest keys and of every key pattern.
func renderKeys(rep *handlers.Report, lib *runbooks.Library) Reply {
	r := Reply{Messages: renderReport(rep, lib)}
	if rep.Keys == nil {
		return r
	}
	for _, f := range rep.Findings {
		if rb, err := RenderRunbook(rep, f.ID, lib); err == nil {
			r.Messages = append(r.Messages, rb.Messages...)
		}
	}
	name := fileSafe(rep.Instance)
	r.Files = []File{
		{Name: "keys-" + name + ".csv", Title: fmt.Sprintf("Biggest keys of %s", rep.Instance), Content: rep.Keys.KeysCSV()},
		{Name: "key-patterns-" + name + ".csv", Title: fmt.Sprintf("Key patterns of %s", rep.Instance), Content: rep.Keys.PatternsCSV()},
	}
	return r
}

// keyBlocks are the scan's summary and tables, one section each.
func keyBlocks(k *handlers.KeyReport) []slack.Block {
	summary := Escape(k.Summary())
	if !k.Complete {
		summary = ":warning: " + summary
	}
	blocks := []slack.Block{section(summary)}
	for _, t := range k.Tables() {
		lines := alignRows(append([][]string{upper(t.Header)}, boundCells(t.Rows)...))
		title := "*" + inline(t.Title) + "*"
		table := func() string { return title + "\n```" + Escape(strings.Join(lines, "\n")) + "```" }
		// Drop rows from the end rather than cut inside the code block;
		// the dropped ones are in the CSV files like the rest.
		more := t.More
		for len(lines) > 2 && textLen(table()) > maxSection-100 {
			lines = lines[:len(lines)-1]
			more++
		}
		body := table()
		if more > 0 {
			what := t.MoreWhat
			if what == "" {
				what = "rows"
			}
			body += fmt.Sprintf("\n_%d more %s in the CSV files in the thread_", more, inline(what))
		}
		blocks = append(blocks, section(body))
	}
	return blocks
}

// maxCell bounds one cell of a key table. Key names arrive cut to fit
// (handlers.Printable), but a type or a node is whatever the server said:
// one cell must not take the whole section.
const maxCell = 80

func boundCells(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, row := range rows {
		out[i] = make([]string, len(row))
		for j, c := range row {
			out[i][j] = truncRunes(c, maxCell)
		}
	}
	return out
}

func upper(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = strings.ToUpper(c)
	}
	return out
}

// alignRows pads cells to their column's width in runes: Slack shows code
// blocks in a monospace font. Escaping afterwards changes no width on
// screen (&lt; shows as one character).
func alignRows(rows [][]string) []string {
	var width []int
	for _, row := range rows {
		for i, c := range row {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	lines := make([]string, len(rows))
	for j, row := range rows {
		var b strings.Builder
		for i, c := range row {
			c = strings.Map(func(r rune) rune {
				if r == '`' {
					return 'ˋ' // a backtick would end the code block
				}
				return r
			}, c)
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
			}
		}
		lines[j] = strings.TrimRight(b.String(), " ")
	}
	return lines
}

// fileSafe makes an instance name usable in a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

// RenderKeyScanBusy refuses a second scan of an instance, naming who
// started the one running.
func RenderKeyScanBusy(instance, startedBy string) Message {
	return textMessage(fmt.Sprintf(":no_entry: A key scan of %s is already running (started by %s); its progress message has a Cancel button.",
		code(truncRaw(instance)), user(startedBy)))
}

// ActionCancelScan is the kind of a running key scan's Cancel button;
// its value is the scan id.
const ActionCancelScan = "cancel-scan"

// RenderKeyProgress is the message a running key scan keeps updating: a
// progress bar, keys scanned, the ETA, and a Cancel button. cancelledBy is
// set once someone pressed it.
func RenderKeyProgress(instance, scanID string, p handlers.KeyScanProgress, cancelledBy string) Message {
	// The bar is what SCAN has walked: with --match it walks every key
	// to find the few that match. Text holds only numbers.
	text := fmt.Sprintf(":mag: Scanning the keys of %s: %s", code(truncRaw(instance)), p.Text())
	bar := ""
	if done, ok := p.Share(); ok {
		cells := int(done*20 + 0.5)
		bar = fmt.Sprintf("`%s%s` %.0f%% walked", strings.Repeat("█", cells), strings.Repeat("░", 20-cells), done*100)
	}
	about := []string{"running for " + p.Elapsed.Round(time.Second).String()}
	if p.ETA > 0 {
		about = append(about, "about "+p.ETA.Round(time.Second).String()+" left")
	}
	blocks := []slack.Block{section(text), contextBlock(bar, strings.Join(about, " · "))}
	if cancelledBy != "" {
		blocks = append(blocks, contextBlock("Cancelling (asked by "+user(cancelledBy)+"): the keys seen so far will be reported as a sample."))
	} else if approvalID.MatchString(scanID) { // scan ids have the approval ids' form
		blocks = append(blocks, slack.NewActionBlock("keyscan",
			slack.NewButtonBlockElement(ActionCancelScan+"/"+scanID, scanID, plainText("Cancel", maxButtonText)).WithStyle(slack.StyleDanger)))
	}
	return Message{Text: cut(Escape(fmt.Sprintf("Scanning the keys of %s: %s", instance, p.Text())), maxFallback), Blocks: blocks}
}
