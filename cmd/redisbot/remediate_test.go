package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers/redistest"
)

const remediationAccess = "access:\n  operators: [U0OP]\n  approvers: [U0LEAD, U0OP, S0LEADS]\n"

// fragmentedBot starts a fragmented, quiet server and a bot with
// operators and approvers.
func fragmentedBot(t *testing.T) (*runningBot, *redistest.Server) {
	t.Helper()
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := redistest.Fragment(ctx, c, 500_000); err != nil {
		t.Fatal(err)
	}
	if err := redistest.WaitQuiet(ctx, c, 1000); err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, instanceYAML("frag-1", srv.Addr), remediationAccess, nil)
	bot.fake.AddUserGroup("S0LEADS", "U0LEAD")
	// Approval messages mention the requester and approvers on purpose.
	bot.fake.AllowMentions("<@U0*>")
	return bot, srv
}

func approvalMessage(t *testing.T, fake *slacktest.Server, n int, action string) slacktest.Post {
	t.Helper()
	posts := fake.WaitPosts(t, n, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.ThreadTS == "" && strings.Contains(p.BlocksText(), action+" on frag-1 · PENDING")
	})
	return posts[n-1]
}

// approveAll has each user click Approve on msg, waits for the action to
// be done and every other click to be answered "already decided", and
// returns how many times the action ran (its "*done* by" lines).
func approveAll(t *testing.T, fake *slacktest.Server, msg slacktest.Post, users []string) int {
	t.Helper()
	approve := button(t, msg, "approve/")
	for _, u := range users {
		fake.Click(u, onCall, msg.TS, approve)
	}
	fake.WaitPosts(t, 1, 30*time.Second, updatedTo(msg.TS, "DONE"))
	doneLine := func(p slacktest.Post) bool {
		return p.ThreadTS == msg.TS && strings.Contains(p.BlocksText(), "*done* by")
	}
	fake.WaitPosts(t, 1, 10*time.Second, doneLine)
	fake.WaitPosts(t, len(users)-1, 30*time.Second, ephemeralTo("already decided"))
	executions := 0
	for _, p := range fake.Posts() {
		if doneLine(p) {
			executions++
		}
	}
	return executions
}

func updatedTo(ts, state string) func(slacktest.Post) bool {
	return func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == ts && strings.Contains(p.BlocksText(), "· "+state)
	}
}

// purgeDecided matches the approval message updated after MEMORY PURGE ran:
// DONE when it gave memory back, NO EFFECT when the allocator held no free
// pages (a fragmented server's excess is in holes, which purge cannot
// return).
func purgeDecided(ts string) func(slacktest.Post) bool {
	done, none := updatedTo(ts, "DONE"), updatedTo(ts, "NO EFFECT")
	return func(p slacktest.Post) bool { return done(p) || none(p) }
}

func TestSlackPurgeApprovedByAnotherUser(t *testing.T) {
	bot, _ := fragmentedBot(t)
	fake := bot.fake

	// Only operators may request.
	fake.SlashCommand(slash(onCall, "U0VIEWER", "purge frag-1"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("needs the operator role"))

	fake.SlashCommand(slash(onCall, "U0OP", "purge frag-1"))
	msg := approvalMessage(t, fake, 1, "memory-purge")
	for _, want := range []string{"MEMORY PURGE", "Risks", "allocator is jemalloc", "Approve", "Reject"} {
		if !strings.Contains(msg.BlocksText(), want) {
			t.Errorf("approval message lacks %q", want)
		}
	}
	approve := button(t, msg, "approve/")

	// The requester cannot approve; a viewer cannot either.
	fake.Click("U0OP", onCall, msg.TS, approve)
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("cannot approve your own request"))
	fake.Click("U0VIEWER", onCall, msg.TS, approve)
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("needs the approver role"))

	fake.Click("U0LEAD", onCall, msg.TS, approve)
	done := fake.WaitPosts(t, 1, 30*time.Second, purgeDecided(msg.TS))[0]
	text := done.BlocksText()
	for _, want := range []string{"MEMORY PURGE", "used_memory_rss:", "→", "approved by"} {
		if !strings.Contains(text, want) {
			t.Errorf("updated message lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(string(done.Blocks), `"approve/`) {
		t.Error("buttons left on a decided request")
	}
	// The trail says what happened: done, or that it changed nothing.
	kind := "*done* by"
	if strings.Contains(text, "NO EFFECT") {
		kind = "*no effect* by"
	}
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == msg.TS && strings.Contains(p.BlocksText(), kind)
	})
	// The audit trail is in the thread.
	fake.WaitPosts(t, 3, 10*time.Second, func(p slacktest.Post) bool { return p.ThreadTS == msg.TS })

	fake.SlashCommand(slash(onCall, "U0VIEWER", "audit frag-1"))
	audit := fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "Audit · frag-1")
	})[0]
	for _, kind := range []string{"requested", "approved", "executing", "done"} {
		if !strings.Contains(audit.BlocksText(), "*"+kind+"*") {
			t.Errorf("audit lacks %s:\n%s", kind, audit.BlocksText())
		}
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

func TestSlackFiftyApproveClicksRunOnce(t *testing.T) {
	bot, _ := fragmentedBot(t)
	fake := bot.fake
	var leads []string
	for i := range 50 {
		leads = append(leads, fmt.Sprintf("U0LEAD%02d", i))
	}
	fake.AddUserGroup("S0LEADS", leads...)
	fake.SlashCommand(slash(onCall, "U0OP", "bgsave frag-1"))
	msg := approvalMessage(t, fake, 1, "bgsave")
	// The other 49 clicks are answered, none of them by running it again.
	if executions := approveAll(t, fake, msg, leads); executions != 1 {
		t.Errorf("%d executions for 50 clicks, want 1", executions)
	}
}

func TestSlackDefragOnABuildWithoutDefrag(t *testing.T) {
	bot, _ := fragmentedBot(t)
	fake := bot.fake
	fake.SlashCommand(slash(onCall, "U0OP", "defrag frag-1 on"))
	msg := approvalMessage(t, fake, 1, "defrag-on")
	fake.Click("U0LEAD", onCall, msg.TS, button(t, msg, "approve/"))
	failed := fake.WaitPosts(t, 1, 30*time.Second, updatedTo(msg.TS, "FAILED"))[0]
	if !strings.Contains(failed.BlocksText(), "without active defrag support") {
		t.Errorf("failed message:\n%s", failed.BlocksText())
	}
	// The bot remembers: the next request is refused, with the plan's
	// failed check. Neither failover nor restart is configured for frag-1,
	// so neither is offered instead.
	fake.SlashCommand(slash(onCall, "U0OP", "defrag frag-1 on"))
	refused := fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("this build supports active defrag — the server refused"))[0]
	if text := refused.BlocksText(); !strings.Contains(text, "REFUSED") || strings.Contains(text, "Consider instead") || strings.Contains(text, "approval ``") {
		t.Errorf("refusal:\n%s", text)
	}
}

// retainedBot starts a server whose allocator retains free pages a purge
// returns (keys written, then deleted by one script with jemalloc's
// background thread off), and a bot with operators and approvers.
func retainedBot(t *testing.T) *runningBot {
	t.Helper()
	srv := redistest.StartT(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	if err := c.ConfigSet(ctx, "jemalloc-bg-thread", "no").Err(); err != nil {
		t.Fatal(err)
	}
	const keys = 150_000
	if err := redistest.Fill(ctx, c, "purge:", keys, 400, 0); err != nil {
		t.Fatal(err)
	}
	del := "for i = 0, tonumber(ARGV[1]) - 1 do redis.call('DEL', 'purge:' .. i) end return 1"
	if err := c.Eval(ctx, del, nil, keys).Err(); err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, instanceYAML("frag-1", srv.Addr), remediationAccess, nil)
	bot.fake.AddUserGroup("S0LEADS", "U0LEAD")
	bot.fake.AllowMentions("<@U0*>")
	return bot
}

func TestSlackRequestButtonAndRestartBetweenRequestAndApproval(t *testing.T) {
	bot := retainedBot(t)
	fake := bot.fake
	fake.SlashCommand(slash(onCall, "U0OP", "diagnose frag-1"))
	diag := fake.WaitPosts(t, 1, 10*time.Second, inChannel(onCall))[0]
	purge := button(t, diag, "request/memory-purge/")
	if labels := buttonLabels(t, diag); !strings.HasPrefix(labels[purge.ActionID], "Purge: about ") {
		t.Errorf("purge button labelled %q", labels[purge.ActionID])
	}
	fake.Click("U0OP", onCall, diag.TS, purge)
	msg := approvalMessage(t, fake, 1, "memory-purge")

	// The bot restarts before anyone approves.
	if code := bot.stop(); code != exitOK {
		t.Fatalf("exit = %d", code)
	}
	launchBot(t, fake, bot.cfg, nil)
	fake.Click("U0LEAD", onCall, msg.TS, button(t, msg, "approve/"))
	fake.WaitPosts(t, 1, 30*time.Second, purgeDecided(msg.TS))

	fake.SlashCommand(slash(onCall, "U0VIEWER", "approvals"))
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "No pending approval requests")
	})
}

func TestSlackConfigSetAndRevert(t *testing.T) {
	bot, srv := fragmentedBot(t)
	fake := bot.fake
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()

	fake.SlashCommand(slash(onCall, "U0OP", "set frag-1 policy allkeys-lru"))
	msg := approvalMessage(t, fake, 1, "config-set")
	if !strings.Contains(msg.BlocksText(), "CONFIG SET maxmemory-policy allkeys-lru") || !strings.Contains(msg.BlocksText(), "noeviction → allkeys-lru") {
		t.Errorf("plan:\n%s", msg.BlocksText())
	}
	fake.Click("U0LEAD", onCall, msg.TS, button(t, msg, "approve/"))
	done := fake.WaitPosts(t, 1, 30*time.Second, updatedTo(msg.TS, "DONE"))[0]
	if got := c.ConfigGet(ctx, "maxmemory-policy").Val()["maxmemory-policy"]; got != "allkeys-lru" {
		t.Fatalf("policy = %s", got)
	}

	// Revert is itself a request that needs an approval.
	fake.Click("U0OP", onCall, done.TS, button(t, done, "revert/"))
	rev := approvalMessage(t, fake, 2, "config-set")
	if !strings.Contains(rev.BlocksText(), "CONFIG SET maxmemory-policy noeviction") {
		t.Errorf("revert plan:\n%s", rev.BlocksText())
	}
	fake.Click("U0LEAD", onCall, rev.TS, button(t, rev, "approve/"))
	fake.WaitPosts(t, 1, 30*time.Second, updatedTo(rev.TS, "DONE"))
	if got := c.ConfigGet(ctx, "maxmemory-policy").Val()["maxmemory-policy"]; got != "noeviction" {
		t.Errorf("policy after revert = %s", got)
	}
}
