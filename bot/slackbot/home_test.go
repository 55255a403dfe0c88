package slackbot_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slackbot"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
	"github.com/redisbot/redisbot/runbooks"
)

// Opening the App Home publishes the fleet as the last sweep recorded it
// and the approval the user asked for; a direct message is answered like
// a mention. Real slack-go client, local Slack, real redis-server.
func TestAppHomeAndDirectMessage(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartT(t)
	instances := []handlers.Instance{{Name: "orders-primary", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}}
	p := probe.New(5*time.Second, nil)
	t.Cleanup(func() { p.Close() })
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(t.TempDir(), "redisbot.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	snap, err := p.Probe(ctx, instances[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordFleetSweep(ctx, time.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	plan, err := json.Marshal(remedy.Plan{Action: "memory-purge"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateApproval(ctx, store.Approval{ID: "ap-1", Instance: "orders-primary", Action: "memory-purge", State: "pending",
		RequestedBy: "U0ASK", ExpiresAt: time.Now().Add(time.Hour), Required: 1, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateApproval(ctx, store.Approval{ID: "ap-other", Instance: "orders-primary", Action: "bgsave", State: "pending",
		RequestedBy: "U0OTHER", ExpiresAt: time.Now().Add(time.Hour), Required: 1}); err != nil {
		t.Fatal(err)
	}

	fake := slacktest.New(t)
	lib, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	svc := handlers.NewService(instances, p, st, 4, nil)
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(fake.APIURL()))
	bot := slackbot.New(slackbot.Options{
		Outbox: outbox.New(outbox.Options{API: api}), Socket: socketmode.New(api),
		Router: svc, Fleet: svc, Store: st,
		// U0ASK may view but not approve: only what U0ASK asked for is theirs.
		Access:   access.New(access.Rules{Approvers: []string{"U0APPROVER"}}, nil, time.Minute, nil),
		Runbooks: lib, APIURL: fake.APIURL(), Workers: 2, Queue: 8, ShutdownTimeout: 5 * time.Second,
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bot.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	fake.AppHomeOpened("U0ASK")
	home := unescapeJSON(fake.WaitHome(t, "U0ASK", 20*time.Second).View)
	for _, want := range []string{"orders-primary", "Last sweep", "`ap-1` memory-purge on `orders-primary`, requested by <@U0ASK>"} {
		if !strings.Contains(home, want) {
			t.Errorf("Home tab lacks %q:\n%s", want, home)
		}
	}
	if strings.Contains(home, "ap-other") {
		t.Errorf("Home tab shows another user's request to a non-approver:\n%s", home)
	}
	// An approver sees every request still waiting for a decision.
	fake.AppHomeOpened("U0APPROVER")
	if home := unescapeJSON(fake.WaitHome(t, "U0APPROVER", 20*time.Second).View); !strings.Contains(home, "ap-other") || !strings.Contains(home, "ap-1") {
		t.Errorf("approver's Home tab lacks the pending requests:\n%s", home)
	}

	fake.DirectMessage("D1", "U0ASK", "list")
	posts := fake.WaitPosts(t, 1, 20*time.Second, func(p slacktest.Post) bool { return p.Channel == "D1" })
	if !strings.Contains(posts[0].Text+string(posts[0].Blocks), "orders-primary") {
		t.Errorf("direct message answer lacks the instance: %+v", posts[0])
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("Slack contract violations: %q", v)
	}
}

// unescapeJSON undoes encoding/json's escaping of < and >, so a mention
// reads as Slack shows it.
func unescapeJSON(js []byte) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(js))
}
