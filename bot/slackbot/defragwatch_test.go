package slackbot

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/slacktest"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// stepTarget plays INFO samples in turn, the last one repeating: the Debian
// redis-server the tests run cannot defrag, so the watch's end is driven
// by this hand-written fake. It records the INFO it served after TurnOff.
type stepTarget struct {
	mu     sync.Mutex
	steps  []string // "rss used fragBytes ratio running hits"
	next   int
	off    bool
	served int
}

func (f *stepTarget) Snapshot(context.Context) (*handlers.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rss, used, frag, running, hits int64
	var ratio float64
	fmt.Sscan(f.steps[min(f.next, len(f.steps)-1)], &rss, &used, &frag, &ratio, &running, &hits)
	f.next++
	f.served++
	info := fmt.Sprintf("used_memory_rss:%d\r\nused_memory:%d\r\nallocator_frag_bytes:%d\r\nallocator_frag_ratio:%.2f\r\nmem_fragmentation_ratio:%.2f\r\n"+
		"active_defrag_running:%d\r\nactive_defrag_hits:%d\r\nactive_defrag_misses:0\r\n", rss<<20, used<<20, frag<<20, ratio, float64(rss)/float64(used), running, hits)
	return &handlers.Snapshot{Info: handlers.ParseInfo(info)}, nil
}

func (f *stepTarget) Ping(context.Context) (time.Duration, error)          { return time.Millisecond, nil }
func (f *stepTarget) DefragLatency(context.Context) (time.Duration, error) { return 0, nil }
func (f *stepTarget) TurnOff(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.off = true
	return nil
}

type stepDefrag struct{ target *stepTarget }

func (d stepDefrag) Target(handlers.Instance) (remedy.DefragTarget, func() error) {
	return d.target, func() error { return nil }
}

type oneInstance struct{ inst handlers.Instance }

func (r oneInstance) Resolve(name string, _ []string) (handlers.Instance, error) {
	if name != r.inst.Name {
		return handlers.Instance{}, fmt.Errorf("unknown instance %q", name)
	}
	return r.inst, nil
}

// watchBot is a Bot with a local Slack, a store holding one done defrag-on
// approval whose message was posted, and steps as the instance.
func watchBot(t *testing.T, steps []string) (*Bot, *slacktest.Server, *store.Store, store.Approval, *stepTarget) {
	t.Helper()
	fake := slacktest.New(t)
	// The approval message names its requester on purpose.
	fake.AllowMentions("<@U0*>")
	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(fake.APIURL()))
	_, ts, err := api.PostMessage("C0ONCALL", slack.MsgOptionText("defrag-on on cache-1", false))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "redisbot.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	inst := handlers.Instance{Name: "cache-1", Addr: "127.0.0.1:1", Thresholds: handlers.DefaultThresholds()}
	plan := remedy.Plan{Instance: "cache-1", Action: handlers.ActionDefragOn,
		Commands: []string{"CONFIG SET active-defrag-ignore-bytes 100mb", "CONFIG SET activedefrag yes"}}
	rawPlan, _ := json.Marshal(plan)
	rawOutcome, _ := json.Marshal(remedy.Outcome{OK: true, Message: "active defrag is on; the watch reports what it reclaims when it stops"})
	now := time.Now()
	a := store.Approval{Schema: store.SchemaVersion, ID: "0123456789ab", Instance: "cache-1", Action: string(handlers.ActionDefragOn),
		State: approvals.StateDone, RequestedBy: "U0OP", RequestedAt: now, ExpiresAt: now.Add(15 * time.Minute), Required: 1,
		Channel: "C0ONCALL", MessageTS: ts, Plan: rawPlan, Outcome: rawOutcome, UpdatedAt: now}
	if err := st.CreateApproval(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	cfg := remedy.DefaultWatchConfig()
	cfg.Interval, cfg.Settle, cfg.MaxLatency = 20*time.Millisecond, 20*time.Millisecond, time.Second
	target := &stepTarget{steps: steps}
	b := New(Options{Outbox: outbox.New(outbox.Options{API: api}), Store: st, Resolver: oneInstance{inst}, Defrag: stepDefrag{target}, DefragWatch: cfg})
	return b, fake, st, a, target
}

func TestWatchDefragReplacesTheOutcome(t *testing.T) {
	// rss used fragBytes ratio running hits (MiB): the ratio reaches the
	// target, and RSS falls a little more once defrag is off.
	b, fake, st, a, target := watchBot(t, []string{"900 500 380 1.76 20 0", "700 500 180 1.36 20 5000", "560 500 40 1.08 5 9000", "540 500 40 1.08 0 9000"})
	b.watchDefrag(a)

	if !target.off {
		t.Fatal("defrag was not turned off")
	}
	got, err := st.Approval(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := approvals.OutcomeOf(got)
	if !ok || got.State != approvals.StateDone || !o.OK || o.NoEffect || o.Details["stopped"] != remedy.WatchTarget {
		t.Fatalf("state %s, outcome %+v", got.State, o)
	}
	if after, _ := handlers.Evidence(o.After).Get("used_memory_rss"); after.Text != "540.0 MiB" {
		t.Errorf("after RSS %q: want the settled 540.0 MiB", after.Text)
	}
	// The thread says when it will stop and, at the end, what it did.
	fake.WaitPosts(t, 1, 5*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == a.MessageTS && strings.Contains(p.BlocksText(), "when under 100.0 MiB stays fragmented")
	})
	fake.WaitPosts(t, 1, 5*time.Second, func(p slacktest.Post) bool {
		return p.ThreadTS == a.MessageTS && strings.Contains(p.BlocksText(), "RSS 900.0 MiB → 540.0 MiB (-360.0 MiB)")
	})
	// The approval message itself now shows before → after.
	fake.WaitPosts(t, 1, 5*time.Second, func(p slacktest.Post) bool {
		text := p.BlocksText()
		return p.Method == "chat.update" && p.TS == a.MessageTS && strings.Contains(text, "DONE") && strings.Contains(text, "900.0 MiB → 540.0 MiB")
	})
}

func TestWatchDefragRSSGrowthFails(t *testing.T) {
	// RSS climbs while defrag runs and hits: the 7.2 defect.
	b, fake, st, a, _ := watchBot(t, []string{"1400 800 360 1.45 8 0", "1405 800 357 1.44 8 300000", "1440 800 355 1.44 9 600000", "1500 800 352 1.44 9 900000"})
	b.watchDefrag(a)
	got, _ := st.Approval(context.Background(), a.ID)
	o, _ := approvals.OutcomeOf(got)
	if got.State != approvals.StateFailed || o.OK || o.Details["stopped"] != remedy.WatchRSSGrowth || !strings.Contains(o.Message, "Plan a restart or a failover") {
		t.Fatalf("state %s, outcome %+v", got.State, o)
	}
	fake.WaitPosts(t, 1, 5*time.Second, func(p slacktest.Post) bool {
		return p.Method == "chat.update" && p.TS == a.MessageTS && strings.Contains(p.BlocksText(), "FAILED")
	})
	recs, err := st.AuditLog(context.Background(), "cache-1", 10)
	if err != nil || len(recs) == 0 || recs[0].Kind != "defrag-watch" || recs[0].Detail["reason"] != remedy.WatchRSSGrowth {
		t.Errorf("audit %+v, %v", recs, err)
	}
}
