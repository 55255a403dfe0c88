package blockkit

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
)

// FuzzRender feeds hostile text to every renderer through every field that
// can carry it. Whatever the input, nothing panics, every message stays
// within Slack's limits, and no '<' from the input reaches mrkdwn: the only
// links are those the renderer made from the runbook's own Markdown.
func FuzzRender(f *testing.F) {
	f.Add("1.91", "cache-1", doctorText, "RSS is 120.6 MiB for 58.1 MiB of data.")
	f.Add("<!channel>", "<@U123>", "> <#C42|general>\n```\n", "<http://evil.example|click> & more")
	f.Add("```\ncode\n```", "*bold* _it_ ~s~", strings.Repeat("* Peak memory: x\n", 300), strings.Repeat("<", 4000))
	f.Add("\xff\xfe\x1b[2J\a", "\u202eevil", "\r\n\x00", "[x](https://evil.example) https://evil.example")
	f.Add(strings.Repeat("&", 3000), strings.Repeat("a", 200), strings.Repeat("🔥", 2000), strings.Repeat("long ", 1000))

	lib := library(f)
	runbookIDs := []string{"frag-high", "memory-doctor", "defrag-version-risk"}
	allowed := map[string]map[string]bool{}
	for _, id := range runbookIDs {
		allowed[id] = runbookLinks(f, lib, id)
	}
	f.Fuzz(func(t *testing.T, evidence, instance, doctor, summary string) {
		base := fragmented(t)
		snap := &handlers.Snapshot{Instance: instance, ProbedAt: probed, Info: maps.Clone(base.Info), Config: maps.Clone(base.Config), Doctor: doctor,
			Missing: []string{evidence}}
		for _, k := range []string{"redis_version", "mem_allocator", "role", "used_memory_peak", "allocator_frag_ratio", "mem_fragmentation_bytes"} {
			snap.Info[k] = evidence
		}
		snap.Config["activedefrag"] = summary

		facts := handlers.Evidence{}
		for i := range 12 {
			facts = append(facts, handlers.Fact{Name: evidence, Value: summary, Text: []string{evidence, summary, instance, doctor}[i%4]})
		}
		var findings []handlers.Finding
		for i, spec := range handlers.Catalogue[:6] {
			findings = append(findings, handlers.Finding{ID: spec.ID, Severity: handlers.Severity(i % 4), Title: evidence, Summary: summary,
				Evidence: facts, Runbook: spec.ID, Actions: []handlers.Action{handlers.Action(instance), handlers.ActionMemoryPurge}})
		}
		metrics := handlers.Evidence{
			{Name: "server", Value: summary, Text: summary}, {Name: "version", Value: evidence, Text: evidence}, {Name: "role", Value: instance, Text: instance},
			{Name: "used_memory", Value: int64(1), Text: evidence}, {Name: "used_memory_rss", Value: int64(2), Text: summary},
			{Name: "mem_fragmentation_ratio", Value: 2.0, Text: doctor}, {Name: "maxmemory", Value: int64(0), Text: evidence},
			{Name: "maxmemory_usage", Value: 0.9, Text: summary}, {Name: "maxmemory_policy", Value: evidence, Text: evidence},
		}
		rep := &handlers.Report{Verb: "diagnose", Instance: instance, Addr: evidence, Tags: []string{summary}, ProbedAt: probed,
			Severity: handlers.SeverityCritical, Metrics: metrics, Findings: findings, Doctor: doctor, Missing: []string{evidence},
			Path:     []handlers.Step{{Question: evidence, Answer: summary, Finding: "frag-high"}, {Question: doctor, Answer: instance}},
			Snapshot: snap, MemoryLimit: 1 << 30}
		failed := &handlers.Report{Verb: "diagnose", Instance: instance, Addr: summary, ProbedAt: probed, Severity: handlers.SeverityWarning,
			Error:    &handlers.ReportError{Class: handlers.ErrorClass(evidence), Message: summary},
			Findings: []handlers.Finding{{ID: "unreachable", Severity: handlers.SeverityWarning, Title: "x", Summary: summary, Evidence: facts, Runbook: "unreachable"}}}
		empty := &handlers.Report{Verb: instance, Instance: instance, ProbedAt: probed}

		fleet := []*handlers.Report{rep, failed, empty}
		big := make([]*handlers.Report, fleetInline+1)
		for i := range big {
			big[i] = fleet[i%3]
		}
		responses := []*handlers.Response{
			{Verb: "diagnose", Reports: []*handlers.Report{rep}},
			{Verb: "doctor", Reports: []*handlers.Report{rep, failed, empty}},
			{Verb: "fleet", Reports: fleet},
			{Verb: "fleet", Reports: big},
			{Verb: "list", Instances: []handlers.Instance{{Name: instance, Addr: evidence, Tags: []string{summary, doctor}, MemoryLimit: 1}}},
			{Verb: "help", Help: []handlers.VerbHelp{{Verb: instance, Usage: evidence, Summary: summary}}},
			{Verb: instance},
		}
		for _, resp := range responses {
			checkReply(t, Render(resp, lib), nil)
		}
		for _, id := range runbookIDs {
			for _, r := range []*handlers.Report{rep, failed} {
				rb, err := RenderRunbook(r, id, lib)
				if err != nil {
					t.Fatal(err)
				}
				checkReply(t, rb, allowed[id])
			}
		}
		for _, err := range []error{
			&handlers.UsageError{Verb: instance, Msg: summary},
			&handlers.UnknownInstanceError{Name: instance, Closest: []string{evidence, doctor}},
			errors.New(summary),
		} {
			checkReply(t, Reply{Messages: []Message{RenderError(err)}}, nil)
		}
		checkReply(t, Reply{Messages: []Message{RenderRefusal(doctor)}}, nil)

		if _, _, err := ParseAction(evidence, summary); err == nil {
			if _, ok := handlers.SpecFor(strings.Split(evidence, "/")[1]); !ok {
				t.Errorf("ParseAction accepted %q", evidence)
			}
		}
	})
}
