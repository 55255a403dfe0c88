package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Approval is the state of one remediation request: what would run, who
// asked, who approved or rejected, and what happened. The approval flow
// owns the states; the store only keeps the record consistent across
// replicas.
type Approval struct {
	Schema      int               `json:"schema"`
	ID          string            `json:"id"`
	Instance    string            `json:"instance"`
	Action      string            `json:"action"`
	Params      map[string]string `json:"params,omitempty"`
	State       string            `json:"state"`
	RequestedBy string            `json:"requested_by"`
	RequestedAt time.Time         `json:"requested_at"`
	ExpiresAt   time.Time         `json:"expires_at"`
	// Required is how many distinct approvers the action needs.
	Required  int        `json:"required"`
	Approvals []Decision `json:"approvals,omitempty"`
	Rejection *Decision  `json:"rejection,omitempty"`
	// Channel and MessageTS locate the Slack message to update as the
	// state changes, whichever replica handles the next click.
	Channel   string `json:"channel,omitempty"`
	MessageTS string `json:"message_ts,omitempty"`
	// Plan and Outcome are the remediation's own JSON, opaque here.
	Plan      json.RawMessage `json:"plan,omitempty"`
	Outcome   json.RawMessage `json:"outcome,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
	// Revision is 1 when created and grows by one with every update, so a
	// renderer can tell a stale copy from the current one.
	Revision int64 `json:"revision"`
}

// Decision is one user's approval or rejection.
type Decision struct {
	User string    `json:"user"`
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"`
}

// CreateApproval stores a new approval with Revision 1. It returns
// ErrExists when the id is taken, so a retried request cannot overwrite an
// approval that has moved on.
func (s *Store) CreateApproval(ctx context.Context, a Approval) error {
	if _, err := joinKey("approval", a.ID); err != nil {
		return err
	}
	now := s.now()
	a.Schema, a.Revision = SchemaVersion, 1
	if a.RequestedAt.IsZero() {
		a.RequestedAt = now
	}
	a.UpdatedAt = now
	val, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: approval %q: encode: %w", a.ID, err)
	}
	created, err := s.b.putIfAbsent(ctx, kindApprovals, a.ID, val, 0)
	if err != nil {
		return fmt.Errorf("store: create approval %q: %w", a.ID, err)
	}
	if !created {
		return fmt.Errorf("store: approval %q: %w", a.ID, ErrExists)
	}
	return nil
}

// Approval returns one approval, or ErrNotFound.
func (s *Store) Approval(ctx context.Context, id string) (Approval, error) {
	var a Approval
	b, err := s.b.get(ctx, kindApprovals, id)
	if err != nil {
		return a, fmt.Errorf("store: approval %q: %w", id, err)
	}
	return a, decodeRecord(kindApprovals, id, b, &a)
}

// UpdateApproval is an atomic read-modify-write of one approval. Concurrent
// calls, from this replica or others sharing the Redis backend, are
// serialised: fn always sees the latest record, so "approve only if still
// pending" is safe. An error from fn aborts the update and is returned
// unchanged (errors.Is works). fn may run more than once on Redis, where a
// conflicting write makes the update retry: keep side effects out of it.
// The store sets Schema, Revision and UpdatedAt; fn cannot change the id.
func (s *Store) UpdateApproval(ctx context.Context, id string, fn func(*Approval) error) (Approval, error) {
	var (
		out   Approval
		fnErr error
	)
	err := s.b.update(ctx, kindApprovals, id, 0, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, ErrNotFound
		}
		var a Approval
		if err := decodeRecord(kindApprovals, id, old, &a); err != nil {
			return nil, err
		}
		rev := a.Revision
		if err := fn(&a); err != nil {
			fnErr = err
			return nil, err
		}
		if a.ID != id {
			return nil, fmt.Errorf("store: approval %q: update must not change the id (to %q)", id, a.ID)
		}
		a.Schema, a.Revision, a.UpdatedAt = SchemaVersion, rev+1, s.now()
		out = a
		return keepUnknown(old, a)
	})
	if fnErr != nil {
		return Approval{}, fnErr
	}
	if err != nil {
		return Approval{}, fmt.Errorf("store: update approval %q: %w", id, err)
	}
	return out, nil
}

// Approvals lists approvals in the given states (all when none), newest
// RequestedAt first: the pending ones a user asked for last come first.
func (s *Store) Approvals(ctx context.Context, states ...string) ([]Approval, error) {
	var (
		out    []Approval
		decErr error
	)
	err := s.b.list(ctx, kindApprovals, span{}, func(key string, val []byte) bool {
		var a Approval
		if decErr = decodeRecord(kindApprovals, key, val, &a); decErr != nil {
			return false
		}
		if len(states) == 0 || slices.Contains(states, a.State) {
			out = append(out, a)
		}
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return nil, fmt.Errorf("store: list approvals: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Approval) int {
		if c := b.RequestedAt.Compare(a.RequestedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out, nil
}
