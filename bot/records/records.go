// Package records reads the bot's state store for the store-backed verbs
// (audit, approvals, silences, trend): it is handlers.Records over a
// store.Store, in serve and at the terminal alike.
package records

import (
	"context"
	"time"

	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
)

// Reader is the store as the verbs read it.
type Reader struct{ st *store.Store }

// New returns a Reader over st.
func New(st *store.Store) Reader { return Reader{st} }

var _ handlers.Records = Reader{}

// AuditLog returns up to limit records, newest first.
func (r Reader) AuditLog(ctx context.Context, instance string, limit int) ([]handlers.AuditEntry, error) {
	list, err := r.st.AuditLog(ctx, instance, limit)
	if err != nil {
		return nil, err
	}
	out := make([]handlers.AuditEntry, len(list))
	for i, x := range list {
		out[i] = handlers.AuditEntry{At: x.At, Instance: x.Instance, Actor: x.Actor, Kind: x.Kind, ApprovalID: x.ApprovalID, Summary: summary(x)}
	}
	return out, nil
}

// summary is an audit record's one line: the first of its details that
// says what happened.
func summary(r store.AuditRecord) string {
	for _, k := range []string{"message", "reason", "commands", "action", "approvals"} {
		if v, ok := r.Detail[k]; ok {
			return v
		}
	}
	return ""
}

// PendingApprovals returns the requests waiting for approvers.
func (r Reader) PendingApprovals(ctx context.Context) ([]handlers.PendingApproval, error) {
	list, err := r.st.Approvals(ctx, approvals.StatePending)
	if err != nil {
		return nil, err
	}
	out := make([]handlers.PendingApproval, len(list))
	for i, a := range list {
		out[i] = handlers.PendingApproval{ID: a.ID, Instance: a.Instance, RequestedBy: a.RequestedBy, Action: handlers.Action(a.Action),
			RequestedAt: a.RequestedAt, ExpiresAt: a.ExpiresAt}
	}
	return out, nil
}

// Silences returns every silence the store holds, expired ones included:
// the verb decides what is active.
func (r Reader) Silences(ctx context.Context) ([]handlers.SilenceEntry, error) {
	list, err := r.st.Silences(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]handlers.SilenceEntry, len(list))
	for i, x := range list {
		out[i] = handlers.SilenceEntry{ID: x.ID, Instance: x.Instance, Finding: x.Finding, CreatedBy: x.CreatedBy, Until: x.Until}
	}
	return out, nil
}

// Window returns an instance's history.
func (r Reader) Window(ctx context.Context, instance string, from, to time.Time) ([]handlers.Point, error) {
	return r.st.Window(ctx, instance, from, to)
}
