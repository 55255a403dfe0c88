package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// buttonLabels maps every button of a message, by action id, to its label.
func buttonLabels(t *testing.T, p slacktest.Post) map[string]string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			Type     string          `json:"type"`
			ActionID string          `json:"action_id"`
			Text     json.RawMessage `json:"text"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range blocks {
		for _, e := range b.Elements {
			var text slack.TextBlockObject
			if e.Type == "button" && json.Unmarshal(e.Text, &text) == nil {
				out[e.ActionID] = text.Text
			}
		}
	}
	return out
}

// requestLabels are the labels of a message's remediation buttons, by the
// action each requests.
func requestLabels(t *testing.T, p slacktest.Post) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for id, label := range buttonLabels(t, p) {
		if parts := strings.Split(id, "/"); parts[0] == "request" {
			out[parts[1]] = append(out[parts[1]], label)
		}
	}
	return out
}

// A diagnosis shows a button only for what the instance can carry out:
// failover and restart only with their method configured (and a replica to
// fail over to), purge only when the allocator holds pages to give back,
// each labelled with what it is expected to give.
func TestSlackButtonsOnlyWhenTheyCanWork(t *testing.T) {
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
	instances := instanceYAML("plain-1", srv.Addr) +
		instanceYAML("methods-1", srv.Addr, "remediation:", "  restart_method: shutdown", "  failover_method: failover")
	bot := startBot(t, instances, remediationAccess, nil)
	fake := bot.fake

	diagnose := func(name string) slacktest.Post {
		fake.SlashCommand(slash(onCall, "U0OP", "diagnose "+name))
		return fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
			return p.Method == "chat.postMessage" && p.ThreadTS == "" && strings.Contains(p.BlocksText(), name+" · ")
		})[0]
	}
	gain := regexp.MustCompile(`^(Purge: about|Defrag: up to|Failover: about|Restart: about) \d+\.\d (MiB|GiB) back$|^Restart$`)

	plain := requestLabels(t, diagnose("plain-1"))
	if len(plain["failover"]) > 0 || len(plain["restart"]) > 0 {
		t.Errorf("failover or restart offered without a method: %v", plain)
	}
	// Whether purge is worth a button depends on the pages the allocator
	// holds after the deletes; the button follows the number.
	info, err := c.InfoMap(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	held, _ := strconv.ParseInt(info["Memory"]["allocator_rss_bytes"], 10, 64)
	t.Logf("plain-1 buttons %v with %d bytes of free allocator pages", plain, held)
	if purge := len(plain["memory-purge"]) > 0; purge != (held >= 10<<20) {
		t.Errorf("purge button %v with %d bytes of free allocator pages: %v", purge, held, plain)
	}

	methods := requestLabels(t, diagnose("methods-1"))
	if len(methods["restart"]) == 0 {
		t.Errorf("no restart button with restart_method configured: %v", methods)
	}
	if len(methods["failover"]) > 0 {
		t.Errorf("failover offered with no replica to take over: %v", methods)
	}
	for action, labels := range methods {
		for _, l := range labels {
			if !gain.MatchString(l) {
				t.Errorf("%s button labelled %q, without its gain", action, l)
			}
		}
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// A finding that implies a setting offers it with its value, and the
// button requests exactly that (an approval for CONFIG SET of it).
func TestSlackSettingButtonRequestsItsValue(t *testing.T) {
	srv := fullServer(t)
	bot := startBot(t, instanceYAML("full-1", srv.Addr), remediationAccess, nil)
	fake := bot.fake
	fake.AllowMentions("<@U0*>")

	fake.SlashCommand(slash(onCall, "U0OP", "diagnose full-1"))
	post := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.ThreadTS == "" && strings.Contains(p.BlocksText(), "full-1 · ")
	})[0]
	labels := requestLabels(t, post)
	found := false
	for _, l := range labels["config-set"] {
		found = found || l == "Set policy allkeys-lru"
	}
	if !found {
		t.Fatalf("no Set policy allkeys-lru button on a full noeviction server: %v\n%s", labels, post.BlocksText())
	}
	var id string
	for a, l := range buttonLabels(t, post) {
		if l == "Set policy allkeys-lru" {
			id = a
		}
	}
	fake.Click("U0OP", onCall, post.TS, button(t, post, id))
	approval := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "config-set on full-1 · PENDING")
	})[0]
	if !strings.Contains(approval.BlocksText(), "CONFIG SET maxmemory-policy allkeys-lru") {
		t.Errorf("approval does not set the policy:\n%s", approval.BlocksText())
	}
}

// An alert's own buttons through the local Slack: Diagnose answers in its
// thread (as it does from a fleet row), Acknowledge and Snooze say who (a
// mention) and mark the message, and the silence list names id, owner and
// expiry.
func TestSlackAlertAckDiagnoseAndSilences(t *testing.T) {
	bot, alert := alertingBot(t)
	fake := bot.fake

	fake.Click("U0VIEWER", alertsChannel, alert.TS, button(t, alert, "diagnose/full-1"))
	fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.ThreadTS == alert.TS && strings.Contains(p.BlocksText(), "full-1 · CRITICAL")
	})

	fake.Click("U0OP", alertsChannel, alert.TS, button(t, alert, "ack/oom-rejecting"))
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == alert.TS && strings.Contains(p.BlocksText(), "Acknowledged by <@U0OP>")
	})
	marked := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == alert.TS && strings.Contains(p.BlocksText(), "Acknowledged by <@U0OP> at")
	})[0]
	if strings.Contains(string(marked.Blocks), `"ack/`) {
		t.Error("Acknowledge still offered after the acknowledgement")
	}

	fake.Click("U0OP", alertsChannel, alert.TS, button(t, alert, "silence/oom-rejecting/24h"))
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == alert.TS && strings.Contains(p.BlocksText(), "silenced by <@U0OP> for 1d")
	})

	fake.SlashCommand(slash(onCall, "U0OP", "silences"))
	list := fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), "1 active silence")
	})[0]
	if !regexp.MustCompile("`[0-9a-f]{12}` · `oom-rejecting` on `full-1` · by <@U0OP> · until 20\\d\\d-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC \\((23h 59m|1d) more\\)").MatchString(list.BlocksText()) {
		t.Errorf("silence list:\n%s", list.BlocksText())
	}
	fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == alert.TS && strings.Contains(p.BlocksText(), "Silenced by <@U0OP> until")
	})

	// A fleet row at risk has its own Diagnose button.
	fake.SlashCommand(slash(onCall, "U0VIEWER", "fleet"))
	fleet := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.Channel == onCall && strings.Contains(p.BlocksText(), "Fleet ·")
	})[0]
	fake.Click("U0VIEWER", onCall, fleet.TS, button(t, fleet, "diagnose/full-1"))
	fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.ThreadTS == fleet.TS && strings.Contains(p.BlocksText(), "full-1 · CRITICAL")
	})
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// Alert timing comes from config: globally an OOM alert must last an hour
// before it posts, but one instance overrides it to post at once.
func TestSlackAlertTimingFromConfig(t *testing.T) {
	srv := fullServer(t)
	timing := "alert_timing:\n  findings:\n    oom-rejecting: {for: 1h}\n  instances:\n    full-2:\n      oom-rejecting: {for: 0s}\n"
	bot := startBot(t, instanceYAML("full-1", srv.Addr)+instanceYAML("full-2", srv.Addr), sweepYAML(timing), nil)
	fake := bot.fake
	fake.AllowMentions("<!subteam^S0ONCALL>")

	fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Channel == alertsChannel && p.ThreadTS == "" && strings.Contains(p.BlocksText(), "full-2 · Writes rejected")
	})
	time.Sleep(3 * time.Second) // three more sweeps
	if n := alertPosts(fake, "full-1 ·", "oom-rejecting"); n != 0 {
		t.Errorf("full-1 posted %d OOM alerts within its 1h for", n)
	}
}

// unsilence lifts a silence by its id, or an instance's, and only an
// operator may; the alert message drops the mark.
func TestSlackUnsilence(t *testing.T) {
	bot, alert := alertingBot(t)
	fake := bot.fake
	waitNew := func(match func(slacktest.Post) bool, do func()) slacktest.Post {
		t.Helper()
		n := 0
		for _, p := range fake.Posts() {
			if match(p) {
				n++
			}
		}
		do()
		return fake.WaitPosts(t, n+1, 15*time.Second, match)[n]
	}
	fake.SlashCommand(slash(onCall, "U0OP", "silence full-1 oom-rejecting 2h"))
	note := fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("silenced by <@U0OP> for 2h"))[0]
	id := regexp.MustCompile("silence `([0-9a-f]{12})`").FindStringSubmatch(note.BlocksText())
	if id == nil {
		t.Fatalf("silence note: %s", note.BlocksText())
	}
	fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == alert.TS && strings.Contains(p.BlocksText(), "Silenced by <@U0OP>")
	})
	fake.SlashCommand(slash(onCall, "U0VIEWER", "unsilence "+id[1]))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("needs the operator role"))
	waitNew(func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == alert.TS && !strings.Contains(p.BlocksText(), "Silenced by")
	}, func() {
		fake.SlashCommand(slash(onCall, "U0OP", "unsilence "+id[1]))
		fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("no longer silenced: silence `"+id[1]+"` lifted by <@U0OP>"))
	})
	fake.SlashCommand(slash(onCall, "U0OP", "unsilence full-1"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("No active silence matches full-1"))
}

// Typed silences: one that names neither a finding nor all, outside an
// alert's thread, is refused rather than hiding every later finding; one
// longer than a day asks first and silences only from its button; all
// names every finding; only an operator may silence.
func TestSlackTypedSilence(t *testing.T) {
	bot, alert := alertingBot(t)
	fake := bot.fake
	// silences lists the active silences once one more list says want.
	silences := func(want string) slacktest.Post {
		t.Helper()
		match := func(p slacktest.Post) bool {
			return p.Method == "chat.postMessage" && strings.Contains(p.BlocksText(), want)
		}
		n := 0
		for _, p := range fake.Posts() {
			if match(p) {
				n++
			}
		}
		fake.SlashCommand(slash(onCall, "U0OP", "silences"))
		return fake.WaitPosts(t, n+1, 15*time.Second, match)[n]
	}

	fake.SlashCommand(slash(onCall, "U0OP", "silence full-1 4h"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("name the finding to silence, or all for every finding on the instance"))
	fake.SlashCommand(slash(onCall, "U0VIEWER", "silence full-1 oom-rejecting 1h"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("needs the operator role"))

	fake.SlashCommand(slash(onCall, "U0OP", "silence full-1 oom-rejecting 72h"))
	ask := fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("would stay quiet for 3d"))[0]
	silences("No active silences")
	fake.Click("U0OP", onCall, "", button(t, ask, "silence/oom-rejecting/72h"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("oom-rejecting on full-1 silenced by <@U0OP> for 3d"))
	list := silences("1 active silence")
	if !regexp.MustCompile("`[0-9a-f]{12}` · `oom-rejecting` on `full-1` · by <@U0OP>").MatchString(list.BlocksText()) {
		t.Errorf("silence list:\n%s", list.BlocksText())
	}
	fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == alert.TS && strings.Contains(p.BlocksText(), "Silenced by <@U0OP>")
	})

	fake.SlashCommand(slash(onCall, "U0OP", "silence full-1 all 2h"))
	fake.WaitPosts(t, 1, 10*time.Second, ephemeralTo("every finding on full-1, those that fire later included, silenced by <@U0OP> for 2h"))
	silences("2 active silences")

	// In the alert's thread, the finding left out is the alert's.
	fake.AppMentionInThread(alertsChannel, "U0OP", alert.TS, "<@UBOT> silence full-1 3h")
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == alert.TS && strings.Contains(p.BlocksText(), "`oom-rejecting` on `full-1` silenced by <@U0OP> for 3h")
	})
	silences("3 active silences")
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// Alerts that fire together are one group message (here alerts.
// group_threshold 2): its Acknowledge all acknowledges every member, says
// so in its thread, and the next sweep redraws the message with the marks
// and without the button.
func TestGroupAcknowledgeAll(t *testing.T) {
	a, b := fullServer(t), fullServer(t)
	bot := startBot(t, instanceYAML("full-1", a.Addr)+instanceYAML("full-2", b.Addr),
		sweepYAML("  group_threshold: 2\naccess:\n  operators: [U0OP]\n"), nil)
	fake := bot.fake
	fake.AllowMentions("<!subteam^S0ONCALL>", "<@U0*>")
	group := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Channel == alertsChannel && p.ThreadTS == "" && strings.HasPrefix(p.Text, "CRITICAL · 2 instances")
	})[0]
	if n := alertPosts(fake, "full-1", "oom-rejecting"); n != 1 {
		t.Errorf("%d messages name full-1, want the group alone", n)
	}
	// The sweep that posted the group saves its members' records after
	// posting: a click before that finds nothing to acknowledge.
	saved := func() bool {
		for _, rec := range logRecords(t, bot.logs) {
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"]))
			if rec["msg"] == "sweep done" && !at.Before(group.At) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !saved(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no sweep finished after the group was posted")
		}
	}

	fake.Click("U0OP", alertsChannel, group.TS, button(t, group, "ackgroup/oom-rejecting"))
	fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == group.TS && strings.Contains(p.BlocksText(), "Acknowledged by <@U0OP> for 2 instances")
	})
	marked := fake.WaitPosts(t, 1, 15*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == group.TS && strings.Count(p.BlocksText(), ":eyes: acknowledged by <@U0OP>") == 2
	})[0]
	if strings.Contains(string(marked.Blocks), `"ackgroup/`) {
		t.Error("Acknowledge all still offered after every member was acknowledged")
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}
