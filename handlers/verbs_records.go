package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redisbot/redisbot/handlers/redact"
)

// Records is the bot's state store as the store-backed verbs read it:
// bot/records implements it over the store, for serve and, reading the
// same file or Redis, for the terminal.
type Records interface {
	// AuditLog returns up to limit records, newest first, of one instance
	// ("" for all).
	AuditLog(ctx context.Context, instance string, limit int) ([]AuditEntry, error)
	PendingApprovals(ctx context.Context) ([]PendingApproval, error)
	Silences(ctx context.Context) ([]SilenceEntry, error)
	// Window returns an instance's history between from and to, oldest
	// first.
	Window(ctx context.Context, instance string, from, to time.Time) ([]Point, error)
}

// AuditEntry is one audit record: something requested, decided or done.
type AuditEntry struct {
	At                                         time.Time
	Instance, Actor, Kind, ApprovalID, Summary string
}

// PendingApproval is a remediation request waiting for its approvers.
type PendingApproval struct {
	ID          string    `json:"id"`
	Instance    string    `json:"instance"`
	Action      Action    `json:"action"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// SilenceEntry is a silence: alerts of an instance (of one finding, or
// all) are not posted until Until.
type SilenceEntry struct {
	ID        string    `json:"id"`
	Instance  string    `json:"instance"`
	Finding   string    `json:"finding,omitempty"` // empty: every finding
	CreatedBy string    `json:"created_by"`
	Until     time.Time `json:"until"`
}

// Trend is an instance's recorded history over a window, for a chart.
type Trend struct {
	Instance Instance
	Window   time.Duration
	Points   []Point
}

// Changer carries out the verbs that change something and must know who
// asks: a remediation request, which someone else approves, and a silence.
// The Slack transport supplies one with each command; the terminal has none.
type Changer interface {
	RequestRemediation(ctx context.Context, cmd Command) error
	Silence(ctx context.Context, req SilenceRequest) error
	// Unsilence lifts the silence with the id args[0], or the active ones
	// on the instance args[0] (of the finding args[1], when given).
	Unsilence(ctx context.Context, args []string) error
}

// SilenceRequest is a checked silence command.
type SilenceRequest struct {
	Instance string
	// Finding is the finding to silence; "" every finding of the
	// instance (typed "all"), those that fire later included.
	Finding string
	// FindingLeftOut: the command named neither a finding nor all. The
	// transport takes the finding from where it was typed (an alert's
	// thread) or asks for one: silencing every finding would hide the
	// next, different alert on the instance.
	FindingLeftOut bool
	Duration       time.Duration
}

// SilenceAll is what a silence command names instead of a finding to
// silence every finding of an instance.
const SilenceAll = "all"

// The bounds of a silence: shorter is noise, longer is forgetting.
const (
	minSilence = time.Minute
	maxSilence = 30 * 24 * time.Hour
)

// auditLimit is how many audit records the audit verb shows.
const auditLimit = 30

// SetRecords gives the store-backed verbs their store; nil: they say that
// the bot has none.
func (s *Service) SetRecords(r Records) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = r
}

// recordsFor returns the store, or the error a verb answers without one.
func (s *Service) recordsFor(verb string) (Records, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.records == nil {
		return nil, &UsageError{Verb: verb, Msg: verb + " reads the bot's state store, and none is open: configure store (store.path or store.redis_url)"}
	}
	return s.records, nil
}

// inScope reports whether an instance named in a record is one this
// (possibly scoped) service knows: a team channel sees only its own.
func (s *Service) inScope(name string) bool {
	_, err := s.Lookup(name)
	return err == nil
}

func approvalsVerb(ctx context.Context, s *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if len(cmd.Args) != 0 {
		return nil, v.UsageError("approvals takes no arguments")
	}
	records, err := s.recordsFor(cmd.Verb)
	if err != nil {
		return nil, err
	}
	list, err := records.PendingApprovals(ctx)
	if err != nil {
		return nil, err
	}
	resp := &Response{Verb: cmd.Verb, Approvals: []PendingApproval{}}
	for _, a := range list {
		if s.inScope(a.Instance) {
			resp.Approvals = append(resp.Approvals, a)
		}
	}
	return resp, nil
}

func auditVerb(ctx context.Context, s *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if len(cmd.Args) > 1 {
		return nil, v.UsageError("audit takes at most one instance name")
	}
	name, title := "", "all instances"
	if len(cmd.Args) == 1 {
		inst, err := s.Lookup(cmd.Args[0])
		if err != nil {
			return nil, err
		}
		name, title = inst.Name, inst.Name
	}
	records, err := s.recordsFor(cmd.Verb)
	if err != nil {
		return nil, err
	}
	list, err := records.AuditLog(ctx, name, auditLimit)
	if err != nil {
		return nil, err
	}
	resp := &Response{Verb: cmd.Verb, AuditOf: title, Audit: []AuditEntry{}}
	for _, r := range list {
		if s.inScope(r.Instance) {
			resp.Audit = append(resp.Audit, r)
		}
	}
	return resp, nil
}

func silencesVerb(ctx context.Context, s *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if len(cmd.Args) != 0 {
		return nil, v.UsageError("silences takes no arguments")
	}
	records, err := s.recordsFor(cmd.Verb)
	if err != nil {
		return nil, err
	}
	list, err := records.Silences(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	resp := &Response{Verb: cmd.Verb, Silences: []SilenceEntry{}}
	for _, x := range list {
		if now.Before(x.Until) && s.inScope(x.Instance) {
			resp.Silences = append(resp.Silences, x)
		}
	}
	return resp, nil
}

// TrendWindow is a span of history the trend verb reads, by the name a
// user types.
type TrendWindow struct {
	Name string
	Span time.Duration
}

// TrendWindows are the spans trend offers: an incident wants the last
// quarter hour, capacity planning the last month.
var TrendWindows = []TrendWindow{
	{"15m", 15 * time.Minute},
	{"1h", time.Hour},
	{"6h", 6 * time.Hour},
	{"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour},
	{"30d", 30 * 24 * time.Hour},
}

// TrendWindowNames lists the windows for a usage message: "15m|1h|...".
func TrendWindowNames() string {
	names := make([]string, len(TrendWindows))
	for i, w := range TrendWindows {
		names[i] = w.Name
	}
	return strings.Join(names, "|")
}

// ParseTrendWindow reads a window's name; "1d" is 24h.
func ParseTrendWindow(name string) (time.Duration, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "1d" {
		name = "24h"
	}
	for _, w := range TrendWindows {
		if w.Name == name {
			return w.Span, nil
		}
	}
	return 0, fmt.Errorf("the window is one of %s", strings.ReplaceAll(TrendWindowNames(), "|", ", "))
}

func trendVerb(ctx context.Context, s *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if len(cmd.Args) < 1 || len(cmd.Args) > 2 {
		return nil, v.UsageError("trend takes an instance and a window")
	}
	window := 24 * time.Hour
	if len(cmd.Args) == 2 {
		w, err := ParseTrendWindow(cmd.Args[1])
		if err != nil {
			return nil, v.UsageError(err.Error())
		}
		window = w
	}
	inst, err := s.Lookup(cmd.Args[0])
	if err != nil {
		return nil, err
	}
	records, err := s.recordsFor(cmd.Verb)
	if err != nil {
		return nil, err
	}
	now := s.now()
	points, err := records.Window(ctx, inst.Name, now.Add(-window), now)
	if err != nil {
		return nil, err
	}
	return &Response{Verb: cmd.Verb, Trend: &Trend{Instance: inst, Window: window, Points: points}}, nil
}

// requestRemediation hands a remediation request to the approval flow of
// the transport that asked (Slack); the flow answers the user itself.
func requestRemediation(ctx context.Context, _ *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if cmd.Changes == nil {
		return nil, v.NotHere(cmd.Args)
	}
	return &Response{Verb: cmd.Verb, Answered: true}, cmd.Changes.RequestRemediation(ctx, cmd)
}

// silenceVerb checks a silence command and hands it to the transport that
// knows who asks.
func silenceVerb(ctx context.Context, _ *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if cmd.Changes == nil {
		return nil, v.NotHere(cmd.Args)
	}
	if len(cmd.Args) < 2 || len(cmd.Args) > 3 {
		return nil, v.UsageError("silence takes an instance, a finding or all, and a duration")
	}
	d, err := time.ParseDuration(cmd.Args[len(cmd.Args)-1])
	if err != nil || d < minSilence || d > maxSilence {
		return nil, &UsageError{Verb: cmd.Verb, Msg: fmt.Sprintf("the duration must be between %s and %s, as in 30m, 4h or 72h", "1m", "720h")}
	}
	req := SilenceRequest{Instance: cmd.Args[0], Duration: d}
	switch {
	case len(cmd.Args) == 2:
		req.FindingLeftOut = true
	case cmd.Args[1] == SilenceAll:
	default:
		req.Finding = cmd.Args[1]
		if _, ok := SpecFor(req.Finding); !ok {
			return nil, &UsageError{Verb: cmd.Verb, Msg: fmt.Sprintf("unknown finding %q", redact.Truncate(req.Finding, 40))}
		}
	}
	return &Response{Verb: cmd.Verb, Answered: true}, cmd.Changes.Silence(ctx, req)
}

func unsilenceVerb(ctx context.Context, _ *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if cmd.Changes == nil {
		return nil, v.NotHere(cmd.Args)
	}
	if len(cmd.Args) < 1 || len(cmd.Args) > 2 {
		return nil, v.UsageError("unsilence takes a silence id, or an instance and an optional finding")
	}
	return &Response{Verb: cmd.Verb, Answered: true}, cmd.Changes.Unsilence(ctx, cmd.Args)
}
