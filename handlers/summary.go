package handlers

import (
	"fmt"
	"strings"
)

// Summary is the line a report leads with, in every transport: how bad it
// is, the one number that shows it, and what to do first with what that
// should gain. It is built from the findings and ChooseFirstAction, so it
// can never disagree with them.
type Summary struct {
	Instance string
	Addr     string
	Severity Severity
	// Finding is the finding whose number is the headline: the one the
	// first action answers, else the worst. Empty when there are none.
	Finding string
	// Headline is that finding's number, with the bytes beside a ratio or
	// share ("fragmentation 2.31 (1.1 GiB beyond the data)"), or a
	// sentence when there is nothing above info.
	Headline string
	First    FirstAction
	// Gain is the first action's expected gain in words ("about 120 MiB
	// back", "+196 MiB of maxmemory"); empty when the numbers do not tell.
	Gain string
}

// Summarize builds a report's summary.
func Summarize(r *Report) Summary {
	s := Summary{First: ChooseFirstAction(r)}
	if r == nil {
		s.Headline = "no report"
		return s
	}
	s.Instance, s.Addr, s.Severity = r.Instance, r.Addr, r.Severity
	s.Gain = s.First.Gain()
	f, ok := r.Finding(s.First.Finding)
	if !ok && len(r.Findings) > 0 {
		f, ok = r.Findings[0], true // sorted worst first
	}
	switch {
	case ok && f.Severity >= SeverityWarning || ok && f.ID == "unreachable":
		s.Finding, s.Headline = f.ID, f.ID+" "+Headline(f)
	case ok:
		s.Headline = fmt.Sprintf("nothing above info (%d %s)", len(r.Findings), plural(len(r.Findings), "finding", "findings"))
	default:
		s.Headline = "no findings"
	}
	if used, ok := r.Metric("used_memory"); ok && s.Finding == "" {
		s.Headline = "used " + used.Text + ", " + s.Headline
	}
	return s
}

// Gain says what the action should give back, from GainBytes: more
// maxmemory for the actions that raise it, memory returned for the rest.
func (a FirstAction) Gain() string {
	if a.GainBytes <= 0 {
		return ""
	}
	if a.ID == "raise-maxmemory" {
		return "+" + HumanBytes(a.GainBytes) + " of maxmemory"
	}
	return "about " + HumanBytes(a.GainBytes) + " back"
}

// Label is the action's id as words ("raise maxmemory"), short enough for
// the summary line; Text is the sentence.
func (a FirstAction) Label() string { return strings.ReplaceAll(a.ID, "-", " ") }

// factLabels name a finding's headline facts in words; a fact not listed
// shows its own name with spaces.
var factLabels = map[string]string{
	"mem_fragmentation_ratio": "fragmentation",
	"allocator_frag_ratio":    "allocator fragmentation",
	"rss_overhead_ratio":      "RSS overhead",
	"allocator_rss_ratio":     "retained pages",
	"usage":                   "of maxmemory",
	"maxmemory_of_limit":      "maxmemory of the limit",
	"ttl_share":               "of keys with a TTL",
	"oom_errors":              "OOM errors",
}

// bytesSuffix says what the bytes beside a ratio are.
var bytesSuffix = map[string]string{
	"mem_fragmentation_bytes": " beyond the data",
	"allocator_frag_bytes":    " in holes",
	"allocator_rss_bytes":     " retained",
	"rss_overhead_bytes":      " outside the allocator",
}

// Headline is the number that carries a finding: its first evidence fact
// (rules put the most telling number first), and beside a ratio the bytes
// it stands for, beside a share the two sizes it divides, so a reader
// never has to guess whether 2.31 is 3 MiB or 3 GiB.
func Headline(f Finding) string {
	if len(f.Evidence) == 0 {
		return ""
	}
	for _, tmpl := range headlines[f.ID] {
		if h, ok := fillHeadline(tmpl, f.Evidence); ok {
			return h
		}
	}
	first := f.Evidence[0]
	label := factLabels[first.Name]
	if label == "" {
		label = strings.ReplaceAll(first.Name, "_", " ")
	}
	var sizes []Fact
	for _, e := range f.Evidence[1:] {
		if _, ok := e.Value.(int64); !ok || len(sizes) == 2 || !isBytes(e) {
			break
		}
		sizes = append(sizes, e)
	}
	if _, ratio := first.Value.(float64); !ratio {
		return label + " " + first.Text
	}
	if strings.HasPrefix(label, "of ") { // a share: "94% of maxmemory"
		out := first.Text + " " + label
		if len(sizes) == 2 {
			out += fmt.Sprintf(" (%s of %s)", sizes[0].Text, sizes[1].Text)
		}
		return out
	}
	out := label + " " + first.Text
	if len(sizes) > 0 {
		out += " (" + sizes[0].Text + bytesSuffix[sizes[0].Name] + ")"
	}
	return out
}

// isBytes tells a size from a count: factBytes writes sizes with a unit.
func isBytes(f Fact) bool { return strings.HasSuffix(f.Text, "B") }

// headlines phrase the findings whose first fact is not the number that
// carries them alone: RSS means something against the limit, and an OOM
// count of 0 under oom-rejecting is explained by the usage beside it, and
// an unreachable instance's number is the error.
// {name} is the text of the fact of that name; the first phrasing whose
// facts are all known is used.
var headlines = map[string][]string{
	"rss-near-limit":         {"RSS {used_memory_rss} of the {memory_limit} limit ({rss_share})"},
	"maxmemory-headroom":     {"maxmemory {maxmemory} of the {memory_limit} limit ({maxmemory_of_limit})"},
	"maxmemory-unset":        {"no maxmemory, {used_memory} in use, limit {memory_limit}", "no maxmemory, {used_memory} in use"},
	"oom-rejecting":          {"{usage} of maxmemory ({used_memory_counted} of {maxmemory}), {errorstat_OOM} OOM errors", "{errorstat_OOM} OOM errors"},
	"replica-over-maxmemory": {"{usage} of maxmemory ({used_memory_counted} of {maxmemory})"},
	"unreachable":            {"{error}"},
	"volatile-no-ttl":        {"{expires} of {keys} keys have a TTL ({ttl_share}) under {maxmemory_policy}"},
	"keys-no-ttl":            {"{no_ttl_bytes} without a TTL ({no_ttl_share} of the scanned memory)"},
	"big-keys":               {"{big_keys} big keys hold {big_keys_bytes}"},
}

// fillHeadline replaces each {name} in tmpl with that fact's text; it
// fails when a fact is missing or unknown, and the generic headline is
// used instead.
func fillHeadline(tmpl string, ev Evidence) (string, bool) {
	if tmpl == "" {
		return "", false
	}
	var b strings.Builder
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			return b.String(), true
		}
		end := strings.IndexByte(tmpl[open:], '}')
		fact, ok := ev.Get(tmpl[open+1 : open+end])
		if !ok || fact.Text == "unknown" {
			return "", false
		}
		b.WriteString(tmpl[:open] + fact.Text)
		tmpl = tmpl[open+end+1:]
	}
}
