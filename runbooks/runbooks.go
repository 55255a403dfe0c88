// Package runbooks holds redisbot's Markdown runbooks, one per finding id,
// and renders them for a finding.
//
// The runbooks are compiled in with go:embed so that a deployed bot always
// has the text that matches its rules; an operator can still point Load at a
// directory to replace a runbook or add one without a rebuild.
//
// Every runbook has the same shape, which Load checks strictly so that a typo
// in an override file fails at startup rather than in front of a user:
//
//	# <id>: <title>
//
//	## What it means
//	## Evidence
//	## Why it happens
//	## How to confirm
//	## Fix
//	## Prevention
//	## Manual checks      (optional)
//	## Sources
//
// Only the Evidence section is a text/template; it is executed with the
// numbers of one probe (Data) so the user sees the values that matter next to
// the explanation. Every other section is plain Markdown.
package runbooks

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/redisbot/redisbot/handlers/regularfile"
)

//go:embed *.md
var embedded embed.FS

// maxRunbookFile bounds each runbook read from a directory: the longest
// built-in one is under 10 KiB.
const maxRunbookFile = 1 << 20

// required are the sections every runbook must have. The order is the order
// they are written in; Load does not enforce it, a reader would not notice.
var required = []string{
	"What it means",
	"Evidence",
	"Why it happens",
	"How to confirm",
	"Fix",
	"Prevention",
	"Sources",
}

// evidence is the one section that is a template.
const evidence = "Evidence"

// Section is one "## " part of a runbook.
type Section struct {
	Heading string // without the leading "## "
	Body    string // Markdown, without blank lines at either end
}

// Runbook is one parsed runbook. Sections keep the order of the file so a
// renderer can show them as written.
type Runbook struct {
	ID       string
	Title    string
	Sections []Section
}

// Section returns the body of the section with the given heading. Headings
// match case-insensitively because callers name sections in prose
// ("how to confirm") and should not have to match the file's capitals.
func (r *Runbook) Section(heading string) (string, bool) {
	for _, s := range r.Sections {
		if strings.EqualFold(s.Heading, heading) {
			return s.Body, true
		}
	}
	return "", false
}

func (r *Runbook) clone() *Runbook {
	c := *r
	c.Sections = slices.Clone(r.Sections)
	return &c
}

// Library maps finding ids to runbooks. It is read-only after Load and safe
// for concurrent use.
type Library struct {
	runbooks map[string]*Runbook
	evidence map[string]*template.Template
}

// Load parses the embedded runbooks and, when dir is not empty, the *.md files
// in dir, which replace embedded runbooks of the same id or add new ones.
// It checks every file and reports all problems at once, each prefixed with
// the file name, so one restart is enough to fix a directory of overrides.
func Load(dir string) (*Library, error) {
	lib := &Library{
		runbooks: map[string]*Runbook{},
		evidence: map[string]*template.Template{},
	}
	names, err := fs.Glob(embedded, "*.md")
	if err != nil {
		return nil, fmt.Errorf("embedded runbooks: %w", err)
	}
	var errs []error
	for _, name := range names {
		text, err := embedded.ReadFile(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("runbooks/%s: %w", name, err))
			continue
		}
		errs = append(errs, lib.add(path.Join("runbooks", name), name, text))
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("runbook directory: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") {
				continue
			}
			file := filepath.Join(dir, e.Name())
			// A FIFO or a huge file named *.md is refused, not waited on
			// or read into memory.
			text, err := regularfile.Read(file, maxRunbookFile)
			if err != nil {
				errs = append(errs, err) // it names the file
				continue
			}
			errs = append(errs, lib.add(file, e.Name(), text))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return lib, nil
}

func (l *Library) add(file, name string, text []byte) error {
	rb, tmpl, err := parse(strings.TrimSuffix(name, ".md"), string(text))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	l.runbooks[rb.ID] = rb
	l.evidence[rb.ID] = tmpl
	return nil
}

// Get returns the runbook for id with its Evidence section still a template.
// The result is a copy: callers may change it.
func (l *Library) Get(id string) (*Runbook, bool) {
	rb, ok := l.runbooks[id]
	if !ok {
		return nil, false
	}
	return rb.clone(), true
}

// IDs returns the ids of all runbooks, sorted.
func (l *Library) IDs() []string {
	return slices.Sorted(maps.Keys(l.runbooks))
}

// Data is what the Evidence template sees. The values come from a Redis
// server the bot does not control, so they are shown as they are (the
// transport escapes them) and no value can make the template fail.
type Data struct {
	Instance string
	Addr     string            // host:port from the config; never credentials
	Info     map[string]string // raw INFO fields (used_memory, mem_fragmentation_ratio, ...)
	Config   map[string]string // CONFIG GET answers (maxmemory-policy, activedefrag, save, ...)
	Extra    map[string]string // values the caller adds (memory_limit, finding evidence)
}

// Render returns a copy of the runbook for id with its Evidence section
// executed against data and, in every section, the placeholders the data
// knows filled in (Fill).
func (l *Library) Render(id string, data Data) (*Runbook, error) {
	rb, ok := l.runbooks[id]
	if !ok {
		return nil, fmt.Errorf("no runbook for finding %q", id)
	}
	text, err := execute(l.evidence[id], data)
	if err != nil {
		// Load ran the template once, so only a template whose failure
		// depends on the data gets here.
		return nil, fmt.Errorf("runbook %s: %w", id, err)
	}
	out := rb.clone()
	values := data.Placeholders()
	for i := range out.Sections {
		if strings.EqualFold(out.Sections[i].Heading, evidence) {
			out.Sections[i].Body = text
		}
		out.Sections[i].Body = Fill(out.Sections[i].Body, values)
	}
	return out, nil
}

// Placeholders are the values for the runbooks' <name> placeholders that
// this data knows: <instance>, <host> and <port> from the config, <pid>
// from INFO. A password is never one of them: runbooks show commands to
// copy, and a copied command ends up in shell history and chat.
func (d Data) Placeholders() map[string]string {
	values := map[string]string{}
	if d.Instance != "" {
		values["instance"] = d.Instance
	}
	// Only a plain host:port: a Sentinel group or a unix socket has no
	// -h/-p to give redis-cli.
	if host, port, err := net.SplitHostPort(d.Addr); err == nil && host != "" {
		if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65536 {
			values["host"], values["port"] = host, port
		}
	}
	if pid, ok := d.Info["process_id"]; ok {
		if n, err := strconv.Atoi(pid); err == nil && n > 0 {
			values["pid"] = pid
		}
	}
	return values
}

// placeholder is a runbook's <name>: lower case, digits, - and _.
var placeholder = regexp.MustCompile(`<([a-z][a-z0-9_-]*)>`)

// Fill replaces each <name> in text whose name values holds; the others
// (<key>, <pod>) stay for the reader to fill.
func Fill(text string, values map[string]string) string {
	if len(values) == 0 {
		return text
	}
	return placeholder.ReplaceAllStringFunc(text, func(m string) string {
		if v, ok := values[m[1:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// The heading is "# <id>: <title>"; ids are the finding ids, lower case with
// hyphens.
var headingLine = regexp.MustCompile(`^# ([a-z0-9][a-z0-9-]*): (\S.*)$`)

// parse reads one runbook; want is the id the file name promises. Errors do
// not name the file: the caller knows it.
func parse(want, text string) (*Runbook, *template.Template, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	first, rest, _ := strings.Cut(text, "\n")
	m := headingLine.FindStringSubmatch(strings.TrimRight(first, " \t"))
	if m == nil {
		return nil, nil, errors.New("first line must be '# <id>: <title>'")
	}
	rb := &Runbook{ID: m[1], Title: strings.TrimSpace(m[2])}
	if rb.ID != want {
		return nil, nil, fmt.Errorf("id %q in heading does not match file name %q", rb.ID, want+".md")
	}

	var (
		current *Section
		lines   []string
		fenced  bool
	)
	flush := func() {
		if current != nil {
			current.Body = trimBlankLines(lines)
			rb.Sections = append(rb.Sections, *current)
		}
	}
	for line := range strings.SplitSeq(rest, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fenced = !fenced
		}
		// A "## " line inside a code block is a shell comment, not a heading.
		if !fenced && strings.HasPrefix(line, "## ") {
			flush()
			heading := strings.TrimSpace(line[len("## "):])
			if _, dup := rb.Section(heading); dup {
				return nil, nil, fmt.Errorf("duplicate '## %s' section", heading)
			}
			current, lines = &Section{Heading: heading}, nil
			continue
		}
		if current == nil {
			if trimmed != "" {
				return nil, nil, errors.New("text before the first '## ' section")
			}
			continue
		}
		lines = append(lines, line)
	}
	if fenced {
		return nil, nil, errors.New("code block not closed")
	}
	flush()

	for _, h := range required {
		body, ok := rb.Section(h)
		if !ok {
			return nil, nil, fmt.Errorf("missing '## %s' section", h)
		}
		if strings.TrimSpace(body) == "" {
			return nil, nil, fmt.Errorf("empty '## %s' section", h)
		}
	}

	src, _ := rb.Section(evidence)
	tmpl, err := template.New(rb.ID).
		Option("missingkey=zero"). // .Info.nope renders "", never "<no value>"
		Funcs(templateFuncs(Data{})).
		Parse(src)
	if err != nil {
		return nil, nil, fmt.Errorf("'## %s' template: %w", evidence, err)
	}
	// Parse accepts calls it cannot check (unknown fields of Data, wrong
	// argument counts); running the template once catches those at load.
	if _, err := execute(tmpl, Data{}); err != nil {
		return nil, nil, fmt.Errorf("'## %s' template: %w", evidence, err)
	}
	return rb, tmpl, nil
}

func trimBlankLines(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// execute runs a clone so that each call binds the functions to its own
// data; the parsed tree is shared, which text/template allows concurrently.
func execute(t *template.Template, d Data) (string, error) {
	c, err := t.Clone()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := c.Funcs(templateFuncs(d)).Execute(&b, d); err != nil {
		return "", err
	}
	return trimBlankLines(strings.Split(b.String(), "\n")), nil
}

// unknown is what a template shows for a value the probe did not get, so a
// reader can tell "not reported" from zero.
const unknown = "unknown"

// templateFuncs are the functions the Evidence template may call. Each takes
// a field name and returns text; none can fail.
func templateFuncs(d Data) template.FuncMap {
	return template.FuncMap{
		// metric is an INFO field, or a value the caller added.
		"metric": func(key string) string { return show(d.metric(key)) },
		// bytes is a size in bytes from INFO, the caller or CONFIG, as "55.9 MiB".
		"bytes": func(key string) string {
			v, ok := d.metric(key)
			if !ok {
				v, ok = d.Config[key]
			}
			if !ok {
				return unknown
			}
			return humanBytes(v)
		},
		"config": func(key string) string { v, ok := d.Config[key]; return show(v, ok) },
		"extra":  func(key string) string { v, ok := d.Extra[key]; return show(v, ok) },
	}
}

func (d Data) metric(key string) (string, bool) {
	if v, ok := d.Info[key]; ok {
		return v, true
	}
	v, ok := d.Extra[key]
	return v, ok
}

func show(v string, ok bool) string {
	switch {
	case !ok:
		return unknown
	case v == "":
		// An empty answer is meaningful (save "" means no snapshots) but
		// would read as a rendering bug.
		return "(empty)"
	}
	return v
}

var units = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// humanBytes formats a byte count 1024-based with one decimal ("55.9 MiB").
// Negative counts are kept: mem_fragmentation_bytes is negative when RSS is
// below used memory, which is itself the evidence of swapping.
func humanBytes(raw string) string {
	n, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return unknown
	}
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return sign + strconv.FormatFloat(n, 'f', 0, 64) + " B"
	}
	// 1023.97 KiB would print as "1024.0 KiB".
	if n >= 1023.95 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return sign + strconv.FormatFloat(n, 'f', 1, 64) + " " + units[i]
}
