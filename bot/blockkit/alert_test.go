package blockkit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

func alertView() AlertView {
	f := handlers.Finding{ID: "oom-rejecting", Title: "Writes rejected with OOM errors", Severity: handlers.SeverityCritical, Summary: "12 writes rejected"}
	return AlertView{Instance: "cache-1", Finding: f, State: "firing", Since: probed}
}

// buttonsOf maps a message's buttons by action id.
func buttonsOf(m Message) map[string]*slack.ButtonBlockElement {
	out := map[string]*slack.ButtonBlockElement{}
	for _, b := range m.Blocks {
		var elems []slack.BlockElement
		switch b := b.(type) {
		case *slack.ActionBlock:
			elems = b.Elements.ElementSet
		case *slack.SectionBlock:
			if b.Accessory != nil && b.Accessory.ButtonElement != nil {
				elems = []slack.BlockElement{b.Accessory.ButtonElement}
			}
		}
		for _, e := range elems {
			if btn, ok := e.(*slack.ButtonBlockElement); ok {
				out[btn.ActionID] = btn
			}
		}
	}
	return out
}

func messageJSON(t *testing.T, m Message) string {
	t.Helper()
	b, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	_ = json.Unmarshal(b, &v)
	var texts []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["text"].(string); ok {
				texts = append(texts, s)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
	return strings.Join(texts, "\n")
}

// A firing alert offers its runbook-free handling: Diagnose, Acknowledge,
// snoozes, and a 7-day silence behind a confirmation. Once someone
// silenced or acknowledged it, the message says who (a mention) and until
// when, and Acknowledge is gone.
func TestAlertHandling(t *testing.T) {
	now := probed.Add(time.Hour)
	m := RenderAlert(alertView(), nil, now)
	buttons := buttonsOf(m)
	for _, id := range []string{"diagnose/cache-1", "ack/oom-rejecting", "silence/oom-rejecting/1h", "silence/oom-rejecting/24h", "silence/oom-rejecting/168h"} {
		if buttons[id] == nil {
			t.Errorf("no %s button: %v", id, buttons)
		}
	}
	if buttons["silence/oom-rejecting/168h"].Confirm == nil || buttons["silence/oom-rejecting/24h"].Confirm != nil {
		t.Error("only the silence longer than a day asks for a confirmation")
	}

	v := alertView()
	v.Silence = &SilenceMark{ID: "0123456789ab", By: "U0OP", Until: now.Add(4 * time.Hour)}
	v.Ack = &AckMark{By: "U0LEAD", At: now}
	m = RenderAlert(v, nil, now)
	text := messageJSON(t, m)
	for _, want := range []string{"Silenced by <@U0OP> until 2025-03-14 14:26 UTC · silence `0123456789ab`", "Acknowledged by <@U0LEAD> at 2025-03-14 10:26 UTC"} {
		if !strings.Contains(text, want) {
			t.Errorf("message lacks %q:\n%s", want, text)
		}
	}
	if buttonsOf(m)["ack/oom-rejecting"] != nil {
		t.Error("Acknowledge offered again after an acknowledgement")
	}
	// A forged user id is shown as code, never as a ping.
	v.Ack.By = "<!channel>"
	if text := messageJSON(t, RenderAlert(v, nil, now)); strings.Contains(text, "<!channel>") {
		t.Errorf("raw user id rendered: %s", text)
	}
	// Resolved: green, no buttons, no marks.
	v.State = "resolved"
	if m := RenderAlert(v, nil, now); len(buttonsOf(m)) != 0 || strings.Contains(messageJSON(t, m), "Silenced") {
		t.Errorf("resolved alert: %s", messageJSON(t, m))
	}
}

func TestParseAlertClicks(t *testing.T) {
	ok := []struct {
		id, value string
		want      Click
	}{
		{"ack/oom-rejecting", `{"instance":"cache-1","finding":"oom-rejecting"}`, Click{Kind: ActionAck, Instance: "cache-1", Finding: "oom-rejecting"}},
		{"diagnose/cache-1", "cache-1", Click{Kind: ActionDiagnose, Instance: "cache-1"}},
		{"silence/frag-high/72h0m0s", `{"instance":"cache-1","finding":"frag-high","duration":"72h0m0s"}`,
			Click{Kind: ActionSilence, Instance: "cache-1", Finding: "frag-high", Duration: 72 * time.Hour}},
		{"silence/*/4h0m0s", `{"instance":"cache-1","finding":"*","duration":"4h0m0s"}`,
			Click{Kind: ActionSilence, Instance: "cache-1", Duration: 4 * time.Hour}},
	}
	for _, tc := range ok {
		got, err := ParseClick(tc.id, tc.value)
		if err != nil || got != tc.want {
			t.Errorf("ParseClick(%q, %q) = %+v, %v", tc.id, tc.value, got, err)
		}
	}
	for _, b := range [][2]string{
		{"ack/oom-rejecting", `{"instance":"cache-2","finding":"frag-high"}`},
		{"ack/no-such", `{"instance":"cache-1","finding":"no-such"}`},
		{"diagnose/cache-1", "cache-2"},
		{"diagnose/10.0.0.1:6379", "10.0.0.1:6379"},
		{"silence/frag-high/721h", `{"instance":"cache-1","finding":"frag-high","duration":"721h"}`},
		{"silence/frag-high/30s", `{"instance":"cache-1","finding":"frag-high","duration":"30s"}`},
		{"silence/**/1h", `{"instance":"cache-1","finding":"**","duration":"1h"}`},
	} {
		if _, err := ParseClick(b[0], b[1]); err == nil {
			t.Errorf("ParseClick(%q, %q) accepted", b[0], b[1])
		}
	}
}

// The silence list names each silence's id (for unsilence), what it
// covers, its owner as a mention and when it ends.
func TestRenderSilences(t *testing.T) {
	now := probed
	msgs := RenderSilences([]SilenceView{
		{ID: "0123456789ab", Instance: "cache-1", Finding: "frag-high", CreatedBy: "U0OP", Until: now.Add(3*time.Hour + 30*time.Minute)},
		{ID: "ba9876543210", Instance: "cache-2", CreatedBy: "U0LEAD", Until: now.Add(50 * time.Hour)},
	}, now)
	text := messageJSON(t, msgs[0])
	for _, want := range []string{
		"`0123456789ab` · `frag-high` on `cache-1` · by <@U0OP> · until 2025-03-14 12:56 UTC (3h 30m more)",
		"`ba9876543210` · every finding on `cache-2` · by <@U0LEAD> · until 2025-03-16 11:26 UTC (2d 2h more)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("silences lack %q:\n%s", want, text)
		}
	}
}

// A typed silence longer than a day is a question with a button, which
// names what would be silenced and until when.
func TestRenderSilenceConfirm(t *testing.T) {
	m := RenderSilenceConfirm("cache-1", "", 72*time.Hour, probed)
	text := messageJSON(t, m)
	if !strings.Contains(text, "Every finding on `cache-1`, those that fire later included, would stay quiet for 3d, until 2025-03-17 09:26 UTC") {
		t.Errorf("confirmation: %s", text)
	}
	btn := buttonsOf(m)["silence/*/72h0m0s"]
	if btn == nil {
		t.Fatalf("no confirm button: %v", buttonsOf(m))
	}
	if c, err := ParseClick(btn.ActionID, btn.Value); err != nil || c.Duration != 72*time.Hour || c.Finding != "" {
		t.Errorf("confirm button parses as %+v, %v", c, err)
	}
}
