package outbox

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

const (
	tokenSecret = "xoxb-9999-S3CRET"
	// A password with every character mrkdwn and JSON escape.
	pwSecret = `pw<&>"\S3CRET`
)

// A redacted message is the rendered one with the secret replaced, buttons
// and all; a clean one is sent exactly as rendered.
func TestRedactKeepsBlocks(t *testing.T) {
	r := handlers.NewRedactor(tokenSecret, pwSecret)
	o := New(Options{Redactor: r})
	for _, m := range []blockkit.Message{
		blockkit.RenderApproval(blockkit.ApprovalView{ID: "a1", Instance: "cache-1", State: "pending", RequestedBy: "U0OP",
			Required: 1, Plan: remedy.Plan{Action: handlers.ActionRestart, Commands: []string{"restart " + pwSecret}}}, time.Now()),
		blockkit.RenderKeyProgress("cache-1", "s1", handlers.KeyScanProgress{Scanned: 10, Estimate: 100}, ""),
		blockkit.RenderNote("token " + tokenSecret),
	} {
		raw, _ := json.Marshal(m.Blocks)
		want := r.Redact(string(raw))
		got, _ := json.Marshal(o.redact(m).Blocks)
		if string(got) != want {
			t.Errorf("redacted blocks:\n%s\nwant:\n%s", got, want)
		}
	}
	clean := blockkit.RenderNote("nothing secret")
	if got := o.redact(clean); len(got.Blocks) != 1 || got.Blocks[0] != clean.Blocks[0] {
		t.Error("a clean message was rebuilt")
	}
}
