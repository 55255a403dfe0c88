package blockkit

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

const (
	// fleetInline is the most instances a fleet message lists in full;
	// beyond it the channel gets the riskiest fleetPreview and a CSV.
	fleetInline  = 100
	fleetPreview = 40
	// linesPerSection keeps tables readable: Slack spaces sections apart.
	linesPerSection = 10
	// maxNameShown bounds a name in a table line; config allows 64.
	maxNameShown = 64
	// fleetRowButtons is how many risky rows get a line and a Diagnose
	// button of their own: enough for a bad day, and with the header and
	// the packed rest well inside one message's blocks.
	fleetRowButtons = 20
)

// renderFleet draws one line per instance, riskiest first as the handler
// sorted them, with only the findings of warning and above.
func renderFleet(reports []*handlers.Report) Reply {
	var reps []*handlers.Report
	for _, r := range reports {
		if r != nil {
			reps = append(reps, r)
		}
	}
	crit, warn := 0, 0
	for _, r := range reps {
		switch r.Severity {
		case handlers.SeverityCritical:
			crit++
		case handlers.SeverityWarning:
			warn++
		}
	}
	title := fmt.Sprintf("Fleet · %s · %d critical, %d warning", plural(len(reps), "instance"), crit, warn)

	shown := reps
	var files []File
	if len(reps) > fleetInline {
		shown = reps[:fleetPreview]
		files = []File{{Name: "fleet.csv", Title: title, Content: fleetCSV(reps)}}
	}
	var m messages
	m.add(header(title))
	if len(reps) == 0 {
		m.add(section("No instances to show."))
	}
	// The riskiest rows (warning and worse, first as sorted) each get a
	// Diagnose button; the rest are packed as lines.
	var lines []string
	rows := 0
	for _, r := range shown {
		if rows < fleetRowButtons && (r.Severity >= handlers.SeverityWarning || r.Failed()) && instanceName.MatchString(r.Instance) {
			m.add(slack.NewSectionBlock(mrkdwn(cut(fleetLine(r), maxSection)), nil, slack.NewAccessory(diagnoseButton(r.Instance))))
			rows++
			continue
		}
		lines = append(lines, fleetLine(r))
	}
	for _, text := range lineSections("", lines, linesPerSection) {
		m.add(section(text))
	}
	if len(files) > 0 {
		m.add(contextBlock(fmt.Sprintf("…and %d more: full table attached (%s)", len(reps)-len(shown), code(files[0].Name))))
	}
	return Reply{Messages: m.finish(Escape(title)), Files: files}
}

// fleetLine is "<emoji> *name* used … · rss … · frag … · maxmemory … — ids".
func fleetLine(r *handlers.Report) string {
	line := severityEmoji(r.Severity) + " *" + cut(inline(r.Instance), maxNameShown) + "*"
	var numbers []string
	for _, m := range []struct{ label, name string }{
		{"used", "used_memory"}, {"rss", "used_memory_rss"}, {"frag", "mem_fragmentation_ratio"},
	} {
		if f, ok := r.Metric(m.name); ok && f.Text != "" {
			numbers = append(numbers, m.label+" "+inline(truncRaw(f.Text)))
		}
	}
	if usage, ok := r.Metric("maxmemory_usage"); ok {
		numbers = append(numbers, "maxmemory "+inline(truncRaw(usage.Text)))
	} else if limit, ok := r.Metric("maxmemory"); ok && isZero(limit.Value) {
		numbers = append(numbers, "maxmemory unset")
	}
	if len(numbers) > 0 {
		line += " " + strings.Join(numbers, " · ")
	}
	if ids := riskIDs(r); len(ids) > 0 {
		escaped := make([]string, len(ids))
		for i, id := range ids {
			escaped[i] = inline(truncRaw(id))
		}
		line += " — " + strings.Join(escaped, ", ")
	}
	return line
}

// riskIDs are the findings worth a fleet line: warning and above, or why the
// probe failed.
func riskIDs(r *handlers.Report) []string {
	if r.Error != nil {
		return []string{"unreachable (" + string(r.Error.Class) + ")"}
	}
	var ids []string
	for _, f := range r.Findings {
		if f.Severity >= handlers.SeverityWarning {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// fleetCSV is the full fleet table. Numbers are raw (bytes, ratios,
// fractions) so a spreadsheet can sort them; nothing is mrkdwn-escaped, since
// a file is not mrkdwn, and encoding/csv quotes what needs quoting.
func fleetCSV(reports []*handlers.Report) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"name", "addr", "severity", "used_memory", "used_memory_rss", "mem_fragmentation_ratio", "maxmemory_usage", "findings"})
	for _, r := range reports {
		value := func(name string) string {
			f, ok := r.Metric(name)
			if !ok {
				return ""
			}
			switch v := f.Value.(type) {
			case int64:
				return strconv.FormatInt(v, 10)
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			}
			return f.Text
		}
		sev := r.Severity.String()
		if r.Severity == handlers.SeverityNone {
			sev = "ok"
		}
		_ = w.Write([]string{r.Instance, r.Addr, sev, value("used_memory"), value("used_memory_rss"),
			value("mem_fragmentation_ratio"), value("maxmemory_usage"), strings.Join(riskIDs(r), " ")})
	}
	w.Flush() // writes to a bytes.Buffer cannot fail
	return b.Bytes()
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// renderList shows the configured instances: name, address, tags, limit.
func renderList(instances []handlers.Instance) []Message {
	title := "Instances · " + strconv.Itoa(len(instances))
	var m messages
	m.add(header(title))
	if len(instances) == 0 {
		m.add(section("No instances match."))
	}
	lines := make([]string, len(instances))
	for i, inst := range instances {
		line := "• *" + cut(inline(inst.Name), maxNameShown) + "*  " + code(truncRaw(inst.Addr))
		if len(inst.Tags) > 0 {
			tags := make([]string, len(inst.Tags))
			for j, t := range inst.Tags {
				tags[j] = inline(truncRaw(t))
			}
			line += " · tags " + strings.Join(tags, ", ")
		}
		if inst.MemoryLimit > 0 {
			line += " · limit " + handlers.HumanBytes(inst.MemoryLimit)
		}
		lines[i] = line
	}
	for _, text := range lineSections("", lines, 2*linesPerSection) {
		m.add(section(text))
	}
	return m.finish(title)
}

// renderHelp lists the verbs with their usage.
func renderHelp(verbs []handlers.VerbHelp) []Message {
	var m messages
	m.add(header("redisbot · /redis <verb>"))
	lines := make([]string, len(verbs))
	names := make([]string, len(verbs))
	for i, v := range verbs {
		lines[i] = code("/redis "+truncRaw(v.Usage)) + " — " + inline(truncRaw(v.Summary))
		names[i] = inline(truncRaw(v.Verb))
	}
	for _, text := range lineSections("", lines, 2*linesPerSection) {
		m.add(section(text))
	}
	m.add(contextBlock("Remediations offered with a finding always need an approval."))
	return m.finish("redisbot verbs: " + strings.Join(names, ", "))
}
