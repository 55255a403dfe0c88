package remedy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// A restart command gets PATH, HOME and the variables restart_env names,
// nothing else of the bot's environment; a named variable that holds a
// configured secret is withheld; and whatever the command prints, the
// outcome carries no secret.
func TestRestartCommandEnvironment(t *testing.T) {
	const (
		ownPW    = "own-S3CRET-pw"
		adminPW  = "admin-S3CRET-pw"
		otherPW  = "other-S3CRET-pw"
		botToken = "xoxb-S3CRET-token"
	)
	srv := redistest.StartT(t, "--requirepass", ownPW)
	// The command lists its environment, then prints what a careless tool
	// might: another instance's password and the Slack token, and fails,
	// so that its output becomes the outcome's message.
	script := filepath.Join(t.TempDir(), "restart.sh")
	body := "#!/bin/sh\necho 'environment:'\nenv | sort\necho 'other: " + otherPW + " token: " + botToken + "'\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PATH": "/usr/bin:/bin", "HOME": "/home/redisbot",
		"SLACK_BOT_TOKEN": botToken, "CACHE_PW": ownPW, "ADMIN_PW": adminPW, "OTHER_PW": otherPW,
		"REDISBOT_INSTANCES_CACHE_1_PASSWORD": ownPW,
		"KUBECONFIG":                          "/etc/redisbot/kubeconfig",
		"UNIT":                                "redis@cache-1",
		"ALIAS":                               "Bearer " + botToken, // named, but holds the token
	}
	inst := handlers.Instance{Name: "cache-1", Addr: srv.Addr, Password: ownPW, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{RestartMethod: "command", RestartCommand: []string{script, "cache-1"},
			RestartEnv: []string{"KUBECONFIG", "UNIT", "ALIAS", "NOT_SET"}}}
	e, _ := executor(t)
	e.Getenv = func(k string) string { return env[k] }
	// Every configured secret: this instance's, another instance's
	// remediation password and the Slack token.
	e.Redactor = handlers.NewRedactor(ownPW, adminPW, otherPW, botToken)

	o := e.Execute(context.Background(), remedy.Plan{Action: handlers.ActionRestart}, inst)
	if o.OK {
		t.Fatalf("a failing restart command succeeded: %+v", o)
	}
	for _, want := range []string{"restart command: exit status 3", "PATH=", "HOME=/home/redisbot", "KUBECONFIG=/etc/redisbot/kubeconfig",
		"UNIT=redis@cache-1", "other: [redacted] token: [redacted]"} {
		if !strings.Contains(o.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, o.Message)
		}
	}
	for _, leak := range []string{ownPW, adminPW, otherPW, botToken, "SLACK_BOT_TOKEN", "CACHE_PW", "ADMIN_PW", "OTHER_PW", "REDISBOT_", "ALIAS="} {
		if strings.Contains(o.Message, leak) {
			t.Errorf("message carries %q:\n%s", leak, o.Message)
		}
	}
	if o.Details["restart_env_withheld"] != "ALIAS" {
		t.Errorf("withheld = %q, want ALIAS", o.Details["restart_env_withheld"])
	}
}
