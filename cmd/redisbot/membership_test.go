package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/handlers/topology/topotest"
)

func sentinelYAML(name, master string, sentinels []string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    sentinel:\n      master: %s\n      addrs: [%s]\n", name, master, strings.Join(sentinels, ", "))
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

// After a SENTINEL FAILOVER the bot ran, /redis diagnose <entry>.master
// reaches the new master at once: serve re-reads the membership right
// after the failover, not at the next sweep (there is none here) or when
// the cache ages.
func TestSlackSentinelFailoverThenDiagnose(t *testing.T) {
	primary := topotest.StartPrimaryT(t)
	replica := topotest.StartReplicaT(t, primary)
	sentinel := topotest.StartSentinelT(t, "mymaster", primary.Addr)
	sentinel.WaitReplicas(t, "mymaster", 1)

	bot := startBot(t, sentinelYAML("sessions", "mymaster", []string{sentinel.Addr}, "remediation:", "  failover_method: sentinel"), remediationAccess, nil)
	bot.fake.AddUserGroup("S0LEADS", "U0LEAD")
	bot.fake.AllowMentions("<@U0*>")
	fake := bot.fake

	// A report's context line: the address, the server and its role.
	diagnosed := func(n int, addr string) {
		t.Helper()
		fake.SlashCommand(slash(onCall, "U0VIEWER", "diagnose sessions.master"))
		posts := fake.WaitPosts(t, n, 10*time.Second, func(p slacktest.Post) bool {
			return p.Method == "chat.postMessage" && p.ThreadTS == "" && strings.Contains(p.BlocksText(), "sessions.master") && strings.Contains(p.BlocksText(), "probed ")
		})
		if text := posts[n-1].BlocksText(); !strings.Contains(text, "`"+addr+"`") || !strings.Contains(text, " master") || strings.Contains(text, " slave") {
			t.Fatalf("diagnose sessions.master #%d does not show the master at %s:\n%s", n, addr, text)
		}
	}
	diagnosed(1, primary.Addr)

	fake.SlashCommand(slash(onCall, "U0OP", "failover sessions.master"))
	msg := fake.WaitPosts(t, 1, 10*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.postMessage" && p.ThreadTS == "" && strings.Contains(p.BlocksText(), "failover on sessions.master · PENDING")
	})[0]
	fake.Click("U0LEAD", onCall, msg.TS, button(t, msg, "approve/"))
	done := fake.WaitPosts(t, 1, 60*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == msg.TS && (strings.Contains(p.BlocksText(), "DONE") || strings.Contains(p.BlocksText(), "NO EFFECT") || strings.Contains(p.BlocksText(), "FAILED"))
	})[0]
	if text := done.BlocksText(); !strings.Contains(text, "failed over to "+replica.Addr) || strings.Contains(text, "FAILED") {
		t.Fatalf("failover outcome:\n%s", text)
	}
	diagnosed(2, replica.Addr)
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// With every sentinel down, the report of the entry says why and which
// sentinels were asked, at a terminal as in Slack.
func TestCLISentinelsDown(t *testing.T) {
	sentinels := freeAddrs(t, 2)
	cfg := writeConfig(t, "probe:\n  timeout: 1s\ninstances:\n"+sentinelYAML("sessions", "mymaster", sentinels))
	res := runCLI(t, nil, "diagnose", "sessions", "--config", cfg, "--json")
	if res.code != exitError || !strings.Contains(res.stderr, "redisbot: expand sessions: no sentinel answered: sentinel "+sentinels[0]) {
		t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, res.stdout)
	}
	f := wantFinding(t, rep, "unreachable", "critical")
	evidence := map[string]string{}
	for k, v := range f.Evidence {
		evidence[k] = fmt.Sprint(v)
	}
	if !strings.HasPrefix(f.Summary, "Members unknown (refused): the Sentinel master mymaster behind sessions could not be read") ||
		!strings.Contains(evidence["error"], "sentinel "+sentinels[1]+": ") || !strings.Contains(evidence["error"], "connection refused") ||
		evidence["addr"] != strings.Join(sentinels, ", ") {
		t.Errorf("finding = %+v", f)
	}
}
