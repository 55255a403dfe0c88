package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// countingExecutor counts executions around the real executor.
type countingExecutor struct {
	real *remedy.Executor
	n    atomic.Int32
}

func (c *countingExecutor) Execute(ctx context.Context, p remedy.Plan, inst handlers.Instance) remedy.Outcome {
	c.n.Add(1)
	return c.real.Execute(ctx, p, inst)
}

type env struct {
	wf    *approvals.Workflow
	st    *store.Store
	exec  *countingExecutor
	inst  handlers.Instance
	srv   *redistest.Server
	clock *clock
	path  string
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T, fragment bool, cfg approvals.Config) *env {
	t.Helper()
	srv := redistest.StartT(t)
	if fragment {
		c := srv.Client()
		defer c.Close()
		if err := redistest.Fragment(context.Background(), c, 500_000); err != nil {
			t.Fatal(err)
		}
		// instantaneous_ops_per_sec is a rolling sample: let the bulk load
		// leave it, or defrag-on is (rightly) refused for traffic.
		if err := redistest.WaitQuiet(context.Background(), c, 1000); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{srv: srv, clock: &clock{t: time.Now()}, path: filepath.Join(t.TempDir(), "redisbot.db")}
	e.inst = handlers.Instance{Name: "cache-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()}
	p := probe.New(2*time.Second, nil)
	t.Cleanup(func() { p.Close() })
	e.exec = &countingExecutor{real: remedy.NewExecutor(p, 2*time.Second, nil)}
	e.open(t, cfg, p)
	return e
}

func (e *env) open(t *testing.T, cfg approvals.Config, p *probe.Prober) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: e.path, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	lookup := func(name string) (handlers.Instance, error) {
		if name == e.inst.Name {
			return e.inst, nil
		}
		return handlers.Instance{}, fmt.Errorf("unknown instance %q", name)
	}
	e.wf = approvals.New(st, p, e.exec, lookup, cfg, e.clock.now)
}

func kinds(t *testing.T, st *store.Store, id string) []string {
	recs, err := st.AuditLog(context.Background(), "cache-1", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].ApprovalID == id {
			out = append(out, recs[i].Kind)
		}
	}
	return out
}

var purge = remedy.Request{Instance: "cache-1", Action: handlers.ActionMemoryPurge}

func TestRequestApproveExecute(t *testing.T) {
	e := setup(t, true, approvals.DefaultConfig())
	ctx := context.Background()
	a, plan, err := e.wf.Request(ctx, "U0OPERATOR", purge, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != approvals.StatePending || plan.Commands[0] != "MEMORY PURGE" {
		t.Fatalf("request = %+v", a)
	}
	if _, err := e.wf.Approve(ctx, a.ID, "U0OPERATOR"); !errors.Is(err, approvals.ErrSelfApproval) {
		t.Errorf("self approval: %v", err)
	}
	done, err := e.wf.Approve(ctx, a.ID, "U0LEAD")
	if err != nil || done.State != approvals.StateDone {
		t.Fatalf("approve = %+v, %v", done.State, err)
	}
	o, ok := approvals.OutcomeOf(done)
	if !ok || !o.OK || o.Details["rss_returned"] == "" {
		t.Errorf("outcome = %+v", o)
	}
	if got := fmt.Sprint(kinds(t, e.st, a.ID)); got != "[requested approved executing done]" {
		t.Errorf("audit trail = %s", got)
	}
	if _, err := e.wf.Approve(ctx, a.ID, "U0OTHER"); !errors.Is(err, approvals.ErrAlreadyDecided) {
		t.Errorf("approve after done: %v", err)
	}
}

func TestSelfApprovalAllowedByConfig(t *testing.T) {
	cfg := approvals.DefaultConfig()
	cfg.AllowSelfApproval = true
	e := setup(t, true, cfg)
	a, _, err := e.wf.Request(context.Background(), "U0OPERATOR", purge, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := e.wf.Approve(context.Background(), a.ID, "U0OPERATOR"); err != nil || done.State != approvals.StateDone {
		t.Errorf("self approval with allow_self_approval: %v, %v", done.State, err)
	}
}

func TestExpiry(t *testing.T) {
	e := setup(t, true, approvals.DefaultConfig())
	ctx := context.Background()
	a, _, err := e.wf.Request(ctx, "U0OPERATOR", purge, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := e.wf.Request(ctx, "U0OPERATOR", purge, e.inst)
	e.clock.add(16 * time.Minute)
	if _, err := e.wf.Approve(ctx, a.ID, "U0LEAD"); !errors.Is(err, approvals.ErrExpired) {
		t.Errorf("approve after expiry: %v", err)
	}
	expired, err := e.wf.ExpireStale(ctx)
	if err != nil || len(expired) != 1 || expired[0].ID != b.ID {
		t.Errorf("ExpireStale = %v, %v", expired, err)
	}
	if e.exec.n.Load() != 0 {
		t.Error("an expired request ran")
	}
}

func TestConcurrentApprovalsRunOnce(t *testing.T) {
	e := setup(t, true, approvals.DefaultConfig())
	ctx := context.Background()
	a, _, err := e.wf.Request(ctx, "U0OPERATOR", purge, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var dones atomic.Int32
	for i := range 50 {
		wg.Go(func() {
			got, err := e.wf.Approve(ctx, a.ID, "U0APPROVER"+strconv.Itoa(i))
			if err == nil && got.State == approvals.StateDone {
				dones.Add(1)
			}
		})
	}
	wg.Wait()
	if n := e.exec.n.Load(); n != 1 {
		t.Errorf("%d executions, want exactly 1", n)
	}
	if dones.Load() != 1 {
		t.Errorf("%d callers saw it done", dones.Load())
	}
}

func TestTwoApprovalsRequired(t *testing.T) {
	cfg := approvals.DefaultConfig()
	cfg.Required[handlers.ActionMemoryPurge] = 2
	e := setup(t, true, cfg)
	ctx := context.Background()
	a, _, _ := e.wf.Request(ctx, "U0OPERATOR", purge, e.inst)
	first, err := e.wf.Approve(ctx, a.ID, "U0LEAD1")
	if err != nil || first.State != approvals.StatePending {
		t.Fatalf("first approval: %v, %v", first.State, err)
	}
	if _, err := e.wf.Approve(ctx, a.ID, "U0LEAD1"); !errors.Is(err, approvals.ErrAlreadyVoted) {
		t.Errorf("same approver twice: %v", err)
	}
	if done, err := e.wf.Approve(ctx, a.ID, "U0LEAD2"); err != nil || done.State != approvals.StateDone {
		t.Errorf("second approval: %v, %v", done.State, err)
	}
}

func TestDriftRefusedAtApproval(t *testing.T) {
	e := setup(t, false, approvals.DefaultConfig())
	ctx := context.Background()
	c := e.srv.Client()
	defer c.Close()
	if err := redistest.Fill(ctx, c, "a:", 20_000, 1000, 0); err != nil { // ~25 MB
		t.Fatal(err)
	}
	req := remedy.Request{Instance: "cache-1", Action: handlers.ActionConfigSet, Params: map[string]string{"setting": "maxmemory", "value": strconv.Itoa(64 << 20)}}
	a, _, err := e.wf.Request(ctx, "U0OPERATOR", req, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	// The data grows past the requested limit before anyone approves.
	if err := redistest.Fill(ctx, c, "b:", 60_000, 1000, 0); err != nil {
		t.Fatal(err)
	}
	got, err := e.wf.Approve(ctx, a.ID, "U0LEAD")
	var blocked *approvals.BlockedError
	if !errors.As(err, &blocked) || got.State != approvals.StateFailed {
		t.Fatalf("approve after drift: %v, %v", got.State, err)
	}
	if e.exec.n.Load() != 0 || c.ConfigGet(ctx, "maxmemory").Val()["maxmemory"] != "0" {
		t.Error("the drifted action ran")
	}
}

func TestBudget(t *testing.T) {
	cfg := approvals.DefaultConfig()
	cfg.Budget[handlers.ActionBGSave] = 1
	e := setup(t, false, cfg)
	ctx := context.Background()
	bgsave := remedy.Request{Instance: "cache-1", Action: handlers.ActionBGSave}
	a, _, err := e.wf.Request(ctx, "U0OPERATOR", bgsave, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.wf.Approve(ctx, a.ID, "U0LEAD"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.wf.Request(ctx, "U0OPERATOR", bgsave, e.inst); !errors.Is(err, approvals.ErrBudget) {
		t.Errorf("second bgsave within 24h: %v", err)
	}
	e.clock.add(25 * time.Hour)
	if _, _, err := e.wf.Request(ctx, "U0OPERATOR", bgsave, e.inst); err != nil {
		t.Errorf("bgsave the next day: %v", err)
	}
}

func TestApprovalSurvivesBotRestart(t *testing.T) {
	e := setup(t, true, approvals.DefaultConfig())
	ctx := context.Background()
	a, _, err := e.wf.Request(ctx, "U0OPERATOR", purge, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	// The bot restarts: a new store handle and workflow on the same file.
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	p := probe.New(2*time.Second, nil)
	defer p.Close()
	e.open(t, approvals.DefaultConfig(), p)
	if done, err := e.wf.Approve(ctx, a.ID, "U0LEAD"); err != nil || done.State != approvals.StateDone {
		t.Errorf("approve after restart: %v, %v", done.State, err)
	}
}

func TestOneRemediationAtATime(t *testing.T) {
	e := setup(t, true, approvals.DefaultConfig())
	ctx := context.Background()
	a, _, _ := e.wf.Request(ctx, "U0OPERATOR", purge, e.inst)
	// Another remediation holds the instance.
	if _, ok, err := e.st.AcquireLease(ctx, "remediation/cache-1", "other", time.Minute); err != nil || !ok {
		t.Fatal(err)
	}
	got, err := e.wf.Approve(ctx, a.ID, "U0LEAD")
	if !errors.Is(err, approvals.ErrBusy) || got.State != approvals.StateFailed || e.exec.n.Load() != 0 {
		t.Errorf("approve while busy: %v, %v, %d executions", got.State, err, e.exec.n.Load())
	}
}

func TestLearnsDefragUnsupported(t *testing.T) {
	e := setup(t, true, approvals.DefaultConfig())
	ctx := context.Background()
	defrag := remedy.Request{Instance: "cache-1", Action: handlers.ActionDefragOn}
	a, _, err := e.wf.Request(ctx, "U0OPERATOR", defrag, e.inst)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := e.wf.Approve(ctx, a.ID, "U0LEAD")
	if got.State != approvals.StateFailed {
		t.Fatalf("defrag on Debian's build: %s", got.State)
	}
	facts, _ := e.st.Facts(ctx, "cache-1")
	if facts[handlers.FactDefragSupported] != "no" {
		t.Errorf("facts = %v", facts)
	}
	// The next request is refused up front, with the alternatives that
	// would run here: restart, configured now; not failover, which is not.
	e.inst.Remediation.RestartMethod = "shutdown"
	_, plan, err := e.wf.Request(ctx, "U0OPERATOR", defrag, e.inst)
	var blocked *approvals.BlockedError
	if !errors.As(err, &blocked) || len(plan.Alternatives) != 1 || plan.Alternatives[0] != handlers.ActionRestart {
		t.Errorf("second defrag request: %v, alternatives %v", err, plan.Alternatives)
	}
}
