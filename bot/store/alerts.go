package store

import (
	"context"
	"time"
)

// Alert is the notification state of one finding on one instance, so the
// bot re-notifies on change or after a repeat interval instead of on every
// probe, and edits the Slack message it posted before.
type Alert struct {
	Schema       int               `json:"schema"`
	Instance     string            `json:"instance"`
	Finding      string            `json:"finding"`
	State        string            `json:"state"`
	Severity     string            `json:"severity"`
	Since        time.Time         `json:"since"`
	LastChange   time.Time         `json:"last_change"`
	LastNotified time.Time         `json:"last_notified"`
	Channel      string            `json:"channel,omitempty"`
	MessageTS    string            `json:"message_ts,omitempty"`
	Fields       map[string]string `json:"fields,omitempty"`
}

// PutAlert writes the alert for (a.Instance, a.Finding), replacing any.
func (s *Store) PutAlert(ctx context.Context, a Alert) error {
	key, err := joinKey("alert", a.Instance, a.Finding)
	if err != nil {
		return err
	}
	a.Schema = SchemaVersion
	return s.putJSON(ctx, kindAlerts, key, a)
}

// Alert returns the alert for (instance, finding), or ErrNotFound.
func (s *Store) Alert(ctx context.Context, instance, finding string) (Alert, error) {
	var a Alert
	key, err := joinKey("alert", instance, finding)
	if err != nil {
		return a, err
	}
	return a, s.getJSON(ctx, kindAlerts, key, &a)
}

// Alerts lists every alert, ordered by instance then finding.
func (s *Store) Alerts(ctx context.Context) ([]Alert, error) {
	return listJSON[Alert](ctx, s, kindAlerts, span{})
}

// DeleteAlert forgets an alert, typically once it has resolved and the
// resolution was posted. A missing alert is ErrNotFound.
func (s *Store) DeleteAlert(ctx context.Context, instance, finding string) error {
	key, err := joinKey("alert", instance, finding)
	if err != nil {
		return err
	}
	return s.deleteOne(ctx, kindAlerts, key)
}

// Silence mutes a finding on an instance until a time. Either field may be
// a pattern; matching is the caller's business, like its state, which
// follows from Until and the clock.
type Silence struct {
	Schema    int       `json:"schema"`
	ID        string    `json:"id"`
	Instance  string    `json:"instance"`
	Finding   string    `json:"finding"`
	CreatedBy string    `json:"created_by"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
	Until     time.Time `json:"until"`
}

// PutSilence writes a silence under x.ID (required), replacing any.
// Expired silences are kept until deleted, so "who silenced this" can
// still be answered.
func (s *Store) PutSilence(ctx context.Context, x Silence) error {
	key, err := joinKey("silence", x.ID)
	if err != nil {
		return err
	}
	x.Schema = SchemaVersion
	return s.putJSON(ctx, kindSilences, key, x)
}

// Silences lists every silence, ordered by ID.
func (s *Store) Silences(ctx context.Context) ([]Silence, error) {
	return listJSON[Silence](ctx, s, kindSilences, span{})
}

// DeleteSilence removes a silence; a missing one is ErrNotFound, so
// "unsilence" with a mistyped ID says so.
func (s *Store) DeleteSilence(ctx context.Context, id string) error {
	key, err := joinKey("silence", id)
	if err != nil {
		return err
	}
	return s.deleteOne(ctx, kindSilences, key)
}
