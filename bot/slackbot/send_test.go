package slackbot

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// Nothing in the transport talks to Slack's message and file methods: the
// outbox does, so that no path skips its redaction, pacing and retries.
func TestOnlyTheOutboxTalksToSlack(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "slack" && (strings.HasPrefix(sel.Sel.Name, "Post") || strings.HasPrefix(sel.Sel.Name, "Send")) {
				t.Errorf("%s: slack.%s outside the outbox", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

const (
	tokenSecret = "xoxb-9999-S3CRET"
	// A password with every character mrkdwn and JSON escape.
	pwSecret = `pw<&>"\S3CRET`
)

// secretBot is a Bot on a local Slack that redacts the two secrets.
func secretBot(t *testing.T) (*Bot, *slacktest.Server) {
	fake := slacktest.New(t)
	fake.AllowMentions("<@U0*>") // who requested an approval
	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(fake.APIURL()))
	return New(Options{Outbox: outbox.New(outbox.Options{API: api, Redactor: handlers.NewRedactor(tokenSecret, pwSecret)}), APIURL: fake.APIURL()}), fake
}

// Every way the bot sends text, the sweep's Poster and Uploader among them,
// leaves the secrets out, however the renderer escaped them.
func TestSendRedacts(t *testing.T) {
	b, fake := secretBot(t)
	ctx := context.Background()
	leak := "restart command: exit status 1: token " + tokenSecret + ", password " + pwSecret
	outcome := &remedy.Outcome{Message: leak, Details: map[string]string{"output": leak}}
	approval := blockkit.RenderApproval(blockkit.ApprovalView{ID: "a1", Instance: "cache-1", State: "failed", RequestedBy: "U0OP",
		Plan: remedy.Plan{Action: handlers.ActionRestart, Commands: []string{"/usr/local/bin/restart " + pwSecret}}, Outcome: outcome}, time.Now())

	ts, err := b.Post(ctx, "C0ALERTS", blockkit.RenderNote(leak))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		b.Update(ctx, "C0ALERTS", ts, approval),
		b.Reply(ctx, "C0ALERTS", ts, blockkit.RenderError(&handlers.UsageError{Msg: leak})),
		b.Upload(ctx, "C0ALERTS", ts, "keys-"+pwSecret+".csv", leak, []byte("rank,key\n1,"+pwSecret+"\n")),
		b.ephemeral(ctx, job{channel: "C0ALERTS", user: "U0OP"}, blockkit.RenderRefusal(leak)),
		b.post(ctx, job{channel: "C0ALERTS"}, blockkit.Reply{Messages: []blockkit.Message{blockkit.RenderNote(leak)},
			Files: []blockkit.File{{Name: "out.txt", Title: "output", Content: []byte(leak)}}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	posts := fake.Posts()
	if len(posts) != 7 {
		t.Fatalf("%d posts, want 7: %v", len(posts), posts)
	}
	var all strings.Builder
	for _, p := range posts {
		all.WriteString(p.Text + string(p.Blocks) + p.BlocksText())
		if p.File != nil {
			all.WriteString(p.File.Name + p.File.Title + string(p.File.Content))
		}
	}
	for _, form := range []string{tokenSecret, "S3CRET", "pw&lt;"} {
		if strings.Contains(all.String(), form) {
			t.Errorf("Slack received %q:\n%s", form, all.String())
		}
	}
	if n := strings.Count(all.String(), handlers.Redacted); n < 14 {
		t.Errorf("%d redactions; the messages did not reach Slack with their text:\n%s", n, all.String())
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("Block Kit violations: %v", v)
	}
}
