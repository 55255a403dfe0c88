// Package approvals runs the remediation flow: request -> plan -> approval
// -> re-check -> execute -> verify -> report. Every state change is an
// atomic compare-and-set on the approval record in the shared store, so
// double clicks, two approvers at once, re-delivered envelopes and clicks on
// another replica execute an action exactly once. Every request, decision,
// execution and outcome becomes an audit record.
package approvals

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// Approval states, in the order the flow moves through them.
const (
	StatePending   = "pending"
	StateApproved  = "approved"
	StateExecuting = "executing"
	StateDone      = "done"
	StateFailed    = "failed"
	StateRejected  = "rejected"
	StateExpired   = "expired"
)

// Errors callers branch on to answer the user.
var (
	ErrExpired        = errors.New("this request has expired; request it again")
	ErrSelfApproval   = errors.New("you cannot approve your own request; another approver must")
	ErrAlreadyDecided = errors.New("this request was already decided")
	ErrAlreadyVoted   = errors.New("you already approved this request; it needs another approver")
	ErrBudget         = errors.New("the daily budget for this action on this instance is used up")
	ErrBlocked        = errors.New("preconditions do not hold")
	ErrBusy           = errors.New("another remediation is running on this instance")
)

// Executor carries out an approved plan.
type Executor interface {
	Execute(ctx context.Context, p remedy.Plan, inst handlers.Instance) remedy.Outcome
}

// Config holds the rules of approval.
type Config struct {
	Expiry            time.Duration           // pending requests expire (default 15m)
	AllowSelfApproval bool                    // requester may approve their own request
	Required          map[handlers.Action]int // approvals needed per action (default 1)
	Budget            map[handlers.Action]int // executions per instance per 24h (0 = unlimited)
	Policy            remedy.Policy
	// LockTTL bounds how long one remediation holds its instance.
	LockTTL time.Duration
}

// DefaultConfig: 15 minute expiry, one approval, at most 3 restarts and 3
// failovers per instance a day.
func DefaultConfig() Config {
	return Config{
		Expiry:   15 * time.Minute,
		Required: map[handlers.Action]int{},
		Budget:   map[handlers.Action]int{handlers.ActionRestart: 3, handlers.ActionFailover: 3},
		Policy:   remedy.DefaultPolicy(),
		LockTTL:  15 * time.Minute,
	}
}

// Lookup resolves an instance name from config: an approval stored by one
// replica is executed with the instance as this replica's config has it.
type Lookup func(name string) (handlers.Instance, error)

// Workflow is the remediation flow over a shared store.
type Workflow struct {
	store     *store.Store
	prober    handlers.Prober // fresh snapshots for planning and re-checking
	exec      Executor
	instances Lookup
	cfg       Config
	now       func() time.Time
}

// New returns a Workflow.
func New(s *store.Store, p handlers.Prober, e Executor, instances Lookup, cfg Config, now func() time.Time) *Workflow {
	if now == nil {
		now = time.Now
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 15 * time.Minute
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 15 * time.Minute
	}
	return &Workflow{store: s, prober: p, exec: e, instances: instances, cfg: cfg, now: now}
}

// BlockedError carries the failed preconditions of a plan.
type BlockedError struct {
	Plan remedy.Plan
}

func (e *BlockedError) Error() string {
	var names []string
	for _, c := range e.Plan.Blocked() {
		names = append(names, c.Name+" ("+c.Detail+")")
	}
	return "preconditions do not hold: " + strings.Join(names, "; ")
}

func (e *BlockedError) Unwrap() error { return ErrBlocked }

// PlanOf decodes the plan stored with an approval.
func PlanOf(a store.Approval) (remedy.Plan, error) {
	var p remedy.Plan
	err := json.Unmarshal(a.Plan, &p)
	return p, err
}

// OutcomeOf decodes the outcome stored with an approval.
func OutcomeOf(a store.Approval) (remedy.Outcome, bool) {
	var o remedy.Outcome
	if len(a.Outcome) == 0 || json.Unmarshal(a.Outcome, &o) != nil {
		return o, false
	}
	return o, true
}

// Request plans a remediation from a fresh probe and records it as pending.
// A plan whose blocking preconditions fail is refused with a *BlockedError
// (and audited), so approvers only ever see actions that can run.
func (w *Workflow) Request(ctx context.Context, user string, r remedy.Request, inst handlers.Instance) (store.Approval, remedy.Plan, error) {
	snap, err := w.prober.Probe(ctx, inst)
	if err != nil {
		return store.Approval{}, remedy.Plan{}, fmt.Errorf("probe %s: %w", inst.Name, err)
	}
	facts, err := w.facts(ctx, inst, r.Action)
	if err != nil {
		return store.Approval{}, remedy.Plan{}, err
	}
	plan := remedy.MakePlan(r, inst, snap, facts, w.cfg.Policy)
	if len(plan.Blocked()) > 0 {
		w.audit(ctx, inst.Name, user, "request-refused", "", map[string]string{"action": string(r.Action), "reason": (&BlockedError{plan}).Error()})
		return store.Approval{}, plan, &BlockedError{Plan: plan}
	}
	if err := w.checkBudget(ctx, inst.Name, r.Action); err != nil {
		w.audit(ctx, inst.Name, user, "request-refused", "", map[string]string{"action": string(r.Action), "reason": err.Error()})
		return store.Approval{}, plan, err
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		return store.Approval{}, plan, err
	}
	now := w.now()
	a := store.Approval{
		Schema: store.SchemaVersion, ID: newID(), Instance: inst.Name, Action: string(r.Action), Params: r.Params,
		State: StatePending, RequestedBy: user, RequestedAt: now, ExpiresAt: now.Add(w.cfg.Expiry),
		Required: max(1, w.cfg.Required[r.Action]), Plan: raw, UpdatedAt: now,
	}
	if err := w.store.CreateApproval(ctx, a); err != nil {
		return store.Approval{}, plan, err
	}
	w.audit(ctx, inst.Name, user, "requested", a.ID, map[string]string{"action": a.Action, "commands": strings.Join(plan.Commands, "; ")})
	return a, plan, nil
}

// SetMessage records where the approval message was posted, so any replica
// can update it.
func (w *Workflow) SetMessage(ctx context.Context, id, channel, ts string) error {
	_, err := w.store.UpdateApproval(ctx, id, func(a *store.Approval) error {
		a.Channel, a.MessageTS = channel, ts
		return nil
	})
	return err
}

// Approve records user's approval. When it completes the required count,
// the action runs (re-check, execute, verify) before Approve returns; the
// returned approval is then done or failed. Only the caller that moves the
// record to executing runs it.
func (w *Workflow) Approve(ctx context.Context, id, user string) (store.Approval, error) {
	now := w.now()
	a, err := w.store.UpdateApproval(ctx, id, func(a *store.Approval) error {
		switch {
		case a.State != StatePending:
			return ErrAlreadyDecided
		case now.After(a.ExpiresAt):
			a.State, a.UpdatedAt = StateExpired, now
			return nil
		case a.RequestedBy == user && !w.cfg.AllowSelfApproval:
			return ErrSelfApproval
		case slices.ContainsFunc(a.Approvals, func(d store.Decision) bool { return d.User == user }):
			return ErrAlreadyVoted
		}
		a.Approvals = append(a.Approvals, store.Decision{User: user, At: now})
		if len(a.Approvals) >= a.Required {
			a.State = StateApproved
		}
		a.UpdatedAt = now
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrAlreadyDecided) {
			cur, gerr := w.store.Approval(ctx, id)
			if gerr == nil {
				return cur, fmt.Errorf("%w (%s)", ErrAlreadyDecided, cur.State)
			}
		}
		return a, err
	}
	switch a.State {
	case StateExpired:
		w.audit(ctx, a.Instance, user, "expired", a.ID, nil)
		return a, ErrExpired
	case StatePending:
		w.audit(ctx, a.Instance, user, "approved-partly", a.ID, map[string]string{"approvals": fmt.Sprintf("%d of %d", len(a.Approvals), a.Required)})
		return a, nil
	}
	w.audit(ctx, a.Instance, user, "approved", a.ID, nil)
	return w.execute(ctx, a)
}

// Reject declines a pending request; the requester may withdraw their own.
func (w *Workflow) Reject(ctx context.Context, id, user, note string) (store.Approval, error) {
	now := w.now()
	a, err := w.store.UpdateApproval(ctx, id, func(a *store.Approval) error {
		if a.State != StatePending {
			return ErrAlreadyDecided
		}
		a.State, a.UpdatedAt = StateRejected, now
		a.Rejection = &store.Decision{User: user, At: now, Note: note}
		return nil
	})
	if err != nil {
		return a, err
	}
	w.audit(ctx, a.Instance, user, "rejected", a.ID, map[string]string{"note": note})
	return a, nil
}

// ExpireStale moves pending requests past their expiry to expired and
// returns them, so their messages can be updated.
func (w *Workflow) ExpireStale(ctx context.Context) ([]store.Approval, error) {
	pending, err := w.store.Approvals(ctx, StatePending)
	if err != nil {
		return nil, err
	}
	now := w.now()
	var expired []store.Approval
	for _, p := range pending {
		if !now.After(p.ExpiresAt) {
			continue
		}
		a, err := w.store.UpdateApproval(ctx, p.ID, func(a *store.Approval) error {
			if a.State != StatePending || !now.After(a.ExpiresAt) {
				return ErrAlreadyDecided
			}
			a.State, a.UpdatedAt = StateExpired, now
			return nil
		})
		if err == nil {
			w.audit(ctx, a.Instance, "redisbot", "expired", a.ID, nil)
			expired = append(expired, a)
		}
	}
	return expired, nil
}

// execute runs an approved request exactly once.
func (w *Workflow) execute(ctx context.Context, a store.Approval) (store.Approval, error) {
	lock := "remediation/" + a.Instance
	if _, ok, err := w.store.AcquireLease(ctx, lock, a.ID, w.cfg.LockTTL); err != nil || !ok {
		if err == nil {
			err = ErrBusy
		}
		return w.finish(ctx, a, remedy.Outcome{Message: err.Error()}, err)
	}
	defer w.store.ReleaseLease(context.WithoutCancel(ctx), lock, a.ID)

	a, err := w.store.UpdateApproval(ctx, a.ID, func(x *store.Approval) error {
		if x.State != StateApproved {
			return ErrAlreadyDecided
		}
		x.State, x.UpdatedAt = StateExecuting, w.now()
		return nil
	})
	if err != nil {
		return a, err // someone else is executing it
	}
	plan, err := PlanOf(a)
	if err != nil {
		return w.finish(ctx, a, remedy.Outcome{Message: "stored plan unreadable: " + err.Error()}, err)
	}
	inst, err := w.instances(a.Instance)
	if err != nil {
		return w.finish(ctx, a, remedy.Outcome{Message: err.Error()}, err)
	}
	// Re-check on fresh numbers: refuse when the state drifted since the
	// request (fragmentation already normal, a BGSAVE running...).
	snap, err := w.prober.Probe(ctx, inst)
	if err != nil {
		return w.finish(ctx, a, remedy.Outcome{Message: "re-check probe failed: " + err.Error()}, err)
	}
	facts, _ := w.facts(ctx, inst, plan.Action)
	fresh := remedy.MakePlan(remedy.Request{Instance: a.Instance, Action: plan.Action, Params: a.Params}, inst, snap, facts, w.cfg.Policy)
	if len(fresh.Blocked()) > 0 {
		berr := &BlockedError{Plan: fresh}
		return w.finish(ctx, a, remedy.Outcome{Message: "refused at approval time, the state drifted: " + berr.Error()}, berr)
	}
	w.audit(ctx, a.Instance, "redisbot", "executing", a.ID, map[string]string{"commands": strings.Join(fresh.Commands, "; ")})
	o := w.exec.Execute(ctx, fresh, inst)
	for k, v := range o.Learned {
		_ = w.store.SetFact(ctx, inst.Name, k, v)
	}
	return w.finish(ctx, a, o, nil)
}

// finish records the outcome and the final state.
func (w *Workflow) finish(ctx context.Context, a store.Approval, o remedy.Outcome, cause error) (store.Approval, error) {
	raw, _ := json.Marshal(o)
	state := StateDone
	if !o.OK {
		state = StateFailed
	}
	final, err := w.store.UpdateApproval(context.WithoutCancel(ctx), a.ID, func(x *store.Approval) error {
		x.State, x.Outcome, x.UpdatedAt = state, raw, w.now()
		return nil
	})
	if err != nil {
		return a, err
	}
	detail := map[string]string{"message": o.Message, "ok": fmt.Sprint(o.OK), "duration": o.Duration.String()}
	for _, e := range o.Before {
		detail["before."+e.Name] = e.Text
	}
	for _, e := range o.After {
		detail["after."+e.Name] = e.Text
	}
	for k, v := range o.Details {
		detail[k] = v
	}
	w.audit(ctx, a.Instance, "redisbot", state, a.ID, detail)
	return final, cause
}

// facts are what the store learned about the instance, plus, for a cluster
// failover, whether any slot is migrating right now (asked of the cluster,
// never stored: it changes by the minute).
func (w *Workflow) facts(ctx context.Context, inst handlers.Instance, action handlers.Action) (remedy.Facts, error) {
	stored, err := w.store.Facts(ctx, inst.Name)
	if err != nil {
		return nil, err
	}
	facts := remedy.Facts(stored)
	if action == handlers.ActionFailover && inst.Remediation.FailoverMethod == remedy.FailoverCluster {
		if live, err := remedy.ClusterFacts(ctx, inst, 2*time.Second); err == nil {
			for k, v := range live {
				facts[k] = v
			}
		}
	}
	return facts, nil
}

// checkBudget counts executions of the action on the instance in the last
// 24 hours.
func (w *Workflow) checkBudget(ctx context.Context, instance string, action handlers.Action) error {
	limit := w.cfg.Budget[action]
	if limit <= 0 {
		return nil
	}
	all, err := w.store.Approvals(ctx, StateExecuting, StateDone, StateFailed, StateApproved)
	if err != nil {
		return err
	}
	since := w.now().Add(-24 * time.Hour)
	n := 0
	for _, a := range all {
		if a.Instance == instance && a.Action == string(action) && a.RequestedAt.After(since) {
			n++
		}
	}
	if n >= limit {
		return fmt.Errorf("%w (%d %s in 24h)", ErrBudget, n, action)
	}
	return nil
}

func (w *Workflow) audit(ctx context.Context, instance, actor, kind, approvalID string, detail map[string]string) {
	_ = w.store.Audit(context.WithoutCancel(ctx), store.AuditRecord{
		Schema: store.SchemaVersion, At: w.now(), Instance: instance, Actor: actor, Kind: kind, ApprovalID: approvalID, Detail: detail,
	})
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
