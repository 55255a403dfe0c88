package blockkit

import (
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// TestExternalAlert renders an alert from Alertmanager whose labels and
// annotations try to mention and link: everything is escaped, the
// diagnosis keeps its buttons under the alert's header, and the resolved
// redraw replaces the header only.
func TestExternalAlert(t *testing.T) {
	hostile := ExternalAlert{
		Source: "Alertmanager", Name: "RedisDown <!channel>", Status: "firing", Receiver: "team <@U123>",
		Instance: "cache-1", Severity: "critical", Summary: "see <http://evil.example|here> & <!here>",
		StartsAt: probed.Add(-time.Hour),
	}
	rep := &handlers.Report{Verb: "diagnose", Instance: "cache-1", Addr: "10.0.1.11:6379", ProbedAt: probed, Snapshot: fragmented(t)}
	rep.Findings = handlers.Evaluate(handlers.Input{Cur: rep.Snapshot, T: handlers.DefaultThresholds()})
	rep.Severity = handlers.Worst(rep.Findings)
	lib := library(t)
	diag := Render(&handlers.Response{Verb: "diagnose", Reports: []*handlers.Report{rep}}, lib)

	r := RenderExternalDiagnosis(hostile, diag)
	checkReply(t, r, nil)
	if len(r.Messages) != len(diag.Messages) {
		t.Errorf("%d messages, want the diagnosis' %d", len(r.Messages), len(diag.Messages))
	}
	js := string(goldenJSON(t, r))
	// The alertname is raw only in the header, plain_text, which Slack
	// does not parse.
	for _, bad := range []string{"<@U123>", "<!here>", "<http://evil", "`RedisDown <!channel>`"} {
		if strings.Contains(js, bad) {
			t.Errorf("reply contains raw %q", bad)
		}
	}
	first := string(goldenJSON(t, Reply{Messages: r.Messages[:1]}))
	for _, want := range []string{`"type": "header"`, "FIRING · RedisDown", "alert `RedisDown &lt;!channel&gt;`", "receiver `team &lt;@U123&gt;`", "&lt;!here&gt;"} {
		if !strings.Contains(first, want) {
			t.Errorf("first message lacks %s", want)
		}
	}
	if !strings.Contains(js, `"type": "actions"`) {
		t.Error("the diagnosis lost its buttons")
	}

	stored, err := EncodeMessage(r.Messages[0])
	if err != nil {
		t.Fatal(err)
	}
	hostile.Status, hostile.EndsAt = "resolved", probed
	resolved, err := RenderExternalResolved(hostile, stored, probed.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, Reply{Messages: []Message{resolved}}, nil)
	if len(resolved.Blocks) != len(r.Messages[0].Blocks) {
		t.Errorf("resolved message has %d blocks, want %d (the header replaced, the diagnosis kept)", len(resolved.Blocks), len(r.Messages[0].Blocks))
	}
	rjs := string(goldenJSON(t, Reply{Messages: []Message{resolved}}))
	if !strings.Contains(rjs, "RESOLVED · RedisDown") || strings.Contains(rjs, "FIRING") || !strings.Contains(rjs, "resolved at "+probed.UTC().Format("2006-01-02 15:04 UTC")) {
		t.Errorf("resolved header:\n%s", rjs)
	}
	if _, err := RenderExternalResolved(hostile, []byte("{"), probed); err == nil {
		t.Error("a damaged stored message was redrawn")
	}

	unmapped := RenderExternalUnmapped(hostile, []string{"instance=10.9.9.9:9121", "addr=<!channel>"})
	checkReply(t, Reply{Messages: []Message{unmapped}}, nil)
	if ujs := string(goldenJSON(t, Reply{Messages: []Message{unmapped}})); strings.Contains(ujs, "<!channel>") || !strings.Contains(ujs, "`instance=10.9.9.9:9121`") {
		t.Errorf("unmapped reply:\n%s", ujs)
	}
}
