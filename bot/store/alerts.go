package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/handlers"
)

// Alert is what the bot remembers of one finding on one instance between
// sweeps: its lifecycle (alerts.Alert, times and all, as the sweep steps
// it) and the Slack message it posted, so the bot re-notifies on change or
// after a repeat interval instead of on every probe, and edits the message
// it posted before.
type Alert struct {
	alerts.Alert
	Schema    int    `json:"schema"`
	Channel   string `json:"channel,omitempty"`
	MessageTS string `json:"message_ts,omitempty"`
	// Mark is what the open message shows of who handles the alert (a
	// silence, an acknowledgement): when that changes, it is redrawn.
	Mark string `json:"mark,omitempty"`
	// Group says MessageTS is a group message: one message for the alerts
	// of one finding that fired together in one channel, which every
	// member points at (the sweep draws it from them). A member keeps
	// pointing at it once resolved, so the message can show it resolved;
	// it is a field added, not changed, so records without it read as
	// alerts with a message of their own, as they were written.
	Group bool `json:"group,omitempty"`
	// ErrorClass is, for an instance's unreachable alert, the class of the
	// failed probe the last sweep that counted one saw ("timeout",
	// "refused"...), and "" once the instance answered: a replica that
	// takes the lease gives the instances whose alert says timeout a
	// short first probe (see sweep's observe). Added, not changed: a
	// record without it reads as a class not known, whose instance gets
	// the whole timeout, as every instance did before.
	ErrorClass handlers.ErrorClass `json:"error_class,omitempty"`
}

// UnmarshalJSON reads an alert in either encoding: today's, and the one
// of versions before 2026-12, which kept the lifecycle's times beside
// "since" and "last_change" as RFC 3339 strings in a "fields" map, so a
// store written by an older version still loads.
func (a *Alert) UnmarshalJSON(b []byte) error {
	type plain Alert // without this method
	var legacy struct {
		Since      time.Time         `json:"since"`
		LastChange time.Time         `json:"last_change"`
		Fields     map[string]string `json:"fields"`
	}
	if err := json.Unmarshal(b, (*plain)(a)); err != nil {
		return err
	}
	// Most records are today's: a sweep reads every alert, so the second
	// decode is made only for a record that may be legacy (a false
	// positive, such text in a summary, only costs the decode).
	if !bytes.Contains(b, []byte(`"since"`)) && !bytes.Contains(b, []byte(`"last_change"`)) && !bytes.Contains(b, []byte(`"fields"`)) {
		return nil
	}
	if err := json.Unmarshal(b, &legacy); err != nil {
		return err
	}
	if legacy.Since.IsZero() && legacy.LastChange.IsZero() && legacy.Fields == nil {
		return nil
	}
	at := func(name string) (time.Time, error) {
		if legacy.Fields[name] == "" {
			return time.Time{}, nil
		}
		return time.Parse(time.RFC3339Nano, legacy.Fields[name])
	}
	var err error
	a.PendingSince, a.FiringSince = legacy.Since, legacy.LastChange
	a.Summary, a.Mark = legacy.Fields["summary"], legacy.Fields["mark"]
	if a.ClearSince, err = at("clear_since"); err != nil {
		return fmt.Errorf("alert %s/%s: clear_since: %w", a.Instance, a.Finding, err)
	}
	if a.LowerSince, err = at("lower_since"); err != nil {
		return fmt.Errorf("alert %s/%s: lower_since: %w", a.Instance, a.Finding, err)
	}
	if a.ResolvedAt, err = at("resolved_at"); err != nil {
		return fmt.Errorf("alert %s/%s: resolved_at: %w", a.Instance, a.Finding, err)
	}
	if n := legacy.Fields["notified"]; n != "" {
		v, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("alert %s/%s: notified: %w", a.Instance, a.Finding, err)
		}
		a.Notified = handlers.Severity(v)
	}
	return nil
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

// PutAlerts writes every alert as PutAlert does, in one batch (bbolt: one
// transaction, so one fsync; Redis: shared round trips). A sweep that
// changes thousands of alerts, its first over a fleet or a storm's, pays
// for one write instead of one each: 20,000 fsyncs took most of the first
// sweep of 10,000 instances. An alert that cannot be written is named in
// the error and the others are still written; an error of the batch
// itself (I/O, the fence) leaves each written or not.
func (s *Store) PutAlerts(ctx context.Context, list []Alert) error {
	var (
		writes []pendingWrite
		errs   []error
	)
	for _, a := range list {
		key, err := joinKey("alert", a.Instance, a.Finding)
		if err == nil {
			a.Schema = SchemaVersion
			var w pendingWrite
			if w, err = putJSONWrite(kindAlerts, key, a); err == nil {
				writes = append(writes, w)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(writes) > 0 {
		failed, err := s.writeBatch(ctx, writes)
		if err != nil {
			return fmt.Errorf("store: put %d alerts: %w", len(writes), err)
		}
		errs = append(errs, failed...)
	}
	return errors.Join(errs...)
}

// AlertKey names one alert.
type AlertKey struct{ Instance, Finding string }

// DeleteAlerts forgets alerts in one batch, as DeleteAlert does each; an
// alert already gone is not an error.
func (s *Store) DeleteAlerts(ctx context.Context, list []AlertKey) error {
	var (
		keys []string
		errs []error
	)
	for _, k := range list {
		key, err := joinKey("alert", k.Instance, k.Finding)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keys = append(keys, key)
	}
	for len(keys) > 0 {
		n := min(len(keys), deleteBatch)
		if _, err := s.b.delete(ctx, kindAlerts, keys[:n]...); err != nil {
			return fmt.Errorf("store: delete %d alerts: %w", len(keys), err)
		}
		keys = keys[n:]
	}
	return errors.Join(errs...)
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

// Ack records that someone acknowledged a firing alert: reminders stop
// until the episode it was given for (FiringSince) ends. It is a record of
// its own, not a field of Alert, so a sweep that rewrites the alert cannot
// lose it.
type Ack struct {
	Schema   int       `json:"schema"`
	Instance string    `json:"instance"`
	Finding  string    `json:"finding"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	// Episode is the FiringSince of the alert when it was acknowledged.
	Episode time.Time `json:"episode"`
}

// PutAck writes the acknowledgement of (x.Instance, x.Finding), replacing
// any.
func (s *Store) PutAck(ctx context.Context, x Ack) error {
	key, err := joinKey("ack", x.Instance, x.Finding)
	if err != nil {
		return err
	}
	x.Schema = SchemaVersion
	return s.putJSON(ctx, kindAcks, key, x)
}

// Acks lists every acknowledgement, ordered by instance then finding.
func (s *Store) Acks(ctx context.Context) ([]Ack, error) {
	return listJSON[Ack](ctx, s, kindAcks, span{})
}

// DeleteAck forgets an acknowledgement once its episode ended; a missing
// one is ErrNotFound.
func (s *Store) DeleteAck(ctx context.Context, instance, finding string) error {
	key, err := joinKey("ack", instance, finding)
	if err != nil {
		return err
	}
	return s.deleteOne(ctx, kindAcks, key)
}
