package handlers

import (
	"cmp"
	"slices"
)

// Input is what a rule sees: the current snapshot, the previous one of the
// same instance when there is history (nil otherwise), the instance's memory
// limit and its thresholds. Rules are pure functions of it.
type Input struct {
	Cur         *Snapshot
	Prev        *Snapshot
	MemoryLimit int64
	T           Thresholds
	// Window holds recent samples of the instance, oldest first, for the
	// rules that judge trends (history.go). It may or may not end with the
	// current sample: the rules take Cur as the latest point either way.
	Window []Point
}

// Rule draws zero or more findings from an input.
type Rule func(Input) []Finding

// Evaluate runs the fragmentation decision tree and every other rule, and
// returns the findings worst first (catalogue order within a severity).
func Evaluate(in Input) []Finding {
	findings := FragTree(in).Findings
	for _, r := range oomRules {
		findings = append(findings, r(in)...)
	}
	for _, r := range historyRules {
		findings = append(findings, r(in)...)
	}
	findings = append(findings, doctorFinding(in)...)
	findings = append(findings, ruleSlowServer(in)...)
	SortFindings(findings)
	return findings
}

// SortFindings orders findings by severity (worst first), then by their
// place in the catalogue, so output is stable.
func SortFindings(fs []Finding) {
	order := map[string]int{}
	for i, s := range Catalogue {
		order[s.ID] = i
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
			return c
		}
		return cmp.Compare(order[a.ID], order[b.ID])
	})
}

// newFinding fills the fields every finding shares from the catalogue.
func newFinding(id string, sev Severity, summary string, ev ...Fact) Finding {
	spec, ok := SpecFor(id)
	if !ok {
		panic("finding id not in catalogue: " + id) // programming error, caught by tests
	}
	actions := spec.Actions
	if actions == nil {
		actions = []Action{}
	}
	return Finding{ID: id, Severity: sev, Title: spec.Title, Summary: summary, Evidence: ev, Runbook: id, Actions: actions}
}

// Worst returns the highest severity among findings.
func Worst(fs []Finding) Severity {
	w := SeverityNone
	for _, f := range fs {
		w = max(w, f.Severity)
	}
	return w
}

// level returns warning or critical by comparing v with two thresholds, or
// none below the first.
func level(v, warning, critical float64) Severity {
	switch {
	case v >= critical:
		return SeverityCritical
	case v >= warning:
		return SeverityWarning
	}
	return SeverityNone
}
