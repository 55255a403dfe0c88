package handlers

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// cannedRecords is a state store with fixed contents.
type cannedRecords struct {
	audit     []AuditEntry
	approvals []PendingApproval
	silences  []SilenceEntry
	points    map[string][]Point
}

func (c cannedRecords) AuditLog(_ context.Context, instance string, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	for _, a := range c.audit {
		if (instance == "" || a.Instance == instance) && len(out) < limit {
			out = append(out, a)
		}
	}
	return out, nil
}

func (c cannedRecords) PendingApprovals(context.Context) ([]PendingApproval, error) {
	return c.approvals, nil
}

func (c cannedRecords) Silences(context.Context) ([]SilenceEntry, error) { return c.silences, nil }

func (c cannedRecords) Window(_ context.Context, instance string, from, to time.Time) ([]Point, error) {
	var out []Point
	for _, p := range c.points[instance] {
		if !p.At.Before(from) && !p.At.After(to) {
			out = append(out, p)
		}
	}
	return out, nil
}

// recordingChanger remembers what the transport was asked to change.
type recordingChanger struct {
	remediations []Command
	silences     []SilenceRequest
	unsilences   [][]string
}

func (r *recordingChanger) RequestRemediation(_ context.Context, cmd Command) error {
	r.remediations = append(r.remediations, cmd)
	return nil
}

func (r *recordingChanger) Silence(_ context.Context, req SilenceRequest) error {
	r.silences = append(r.silences, req)
	return nil
}

func (r *recordingChanger) Unsilence(_ context.Context, args []string) error {
	r.unsilences = append(r.unsilences, args)
	return nil
}

// TestStoreVerbs: the store-backed verbs read the records, show a team
// channel only its own instances, and say when there is no store.
func TestStoreVerbs(t *testing.T) {
	ctx := context.Background()
	svc := testService(t) // its clock is the Unix epoch
	now := time.Unix(0, 0)
	if _, err := svc.Handle(ctx, Command{Verb: "audit"}); err == nil || !strings.Contains(err.Error(), "audit reads the bot's state store, and none is open") {
		t.Errorf("audit without a store: %v", err)
	}
	svc.SetRecords(cannedRecords{
		audit: []AuditEntry{{Instance: "cache-1", Kind: "requested"}, {Instance: "queue-1", Kind: "silenced"}},
		approvals: []PendingApproval{{ID: "a1", Instance: "cache-2", Action: ActionMemoryPurge},
			{ID: "a2", Instance: "queue-1", Action: ActionBGSave}},
		silences: []SilenceEntry{{ID: "s1", Instance: "cache-1", Until: now.Add(time.Hour)}, {ID: "s2", Instance: "cache-2", Until: now.Add(-time.Hour)},
			{ID: "s3", Instance: "queue-1", Until: now.Add(time.Hour)}},
		points: map[string][]Point{"cache-1": {{At: now.Add(-30 * time.Hour)}, {At: now.Add(-5 * time.Hour)}, {At: now.Add(-time.Minute)}}},
	})
	teamA := []string{"team-a"}
	cases := []struct {
		cmd     Command
		check   func(*Response) bool
		wantErr string
	}{
		{cmd: Command{Verb: "audit"}, check: func(r *Response) bool { return len(r.Audit) == 2 && r.AuditOf == "all instances" }},
		{cmd: Command{Verb: "audit", Scope: teamA}, check: func(r *Response) bool { return len(r.Audit) == 1 && r.Audit[0].Instance == "cache-1" }},
		{cmd: Command{Verb: "audit", Args: []string{"queue-1"}}, check: func(r *Response) bool { return len(r.Audit) == 1 && r.AuditOf == "queue-1" }},
		{cmd: Command{Verb: "audit", Args: []string{"queue-1"}, Scope: teamA}, wantErr: `unknown instance "queue-1"`},
		{cmd: Command{Verb: "audit", Args: []string{"a", "b"}}, wantErr: "audit takes at most one instance name (usage: audit [instance])"},
		{cmd: Command{Verb: "approvals", Scope: teamA}, check: func(r *Response) bool { return len(r.Approvals) == 1 && r.Approvals[0].ID == "a1" }},
		{cmd: Command{Verb: "silences"}, check: func(r *Response) bool {
			return slices.Equal([]string{r.Silences[0].ID, r.Silences[1].ID}, []string{"s1", "s3"}) && len(r.Silences) == 2
		}},
		{cmd: Command{Verb: "silences", Scope: teamA}, check: func(r *Response) bool { return len(r.Silences) == 1 }},
		{cmd: Command{Verb: "trend", Args: []string{"cache-1"}}, check: func(r *Response) bool { return len(r.Trend.Points) == 2 && r.Trend.Window == 24*time.Hour }},
		{cmd: Command{Verb: "trend", Args: []string{"cache-1", "7d"}}, check: func(r *Response) bool { return len(r.Trend.Points) == 3 }},
		{cmd: Command{Verb: "trend", Args: []string{"cache-1", "6h"}}, check: func(r *Response) bool { return len(r.Trend.Points) == 2 }},
		{cmd: Command{Verb: "trend", Args: []string{"cache-1", "2w"}}, wantErr: "the window is one of 15m, 1h, 6h, 24h, 7d, 30d (usage: trend <instance> [15m|1h|6h|24h|7d|30d])"},
		{cmd: Command{Verb: "trend"}, wantErr: "trend takes an instance and a window (usage: trend <instance> [15m|1h|6h|24h|7d|30d])"},
	}
	for _, tc := range cases {
		resp, err := svc.Handle(ctx, tc.cmd)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s %v: error %v, want %q", tc.cmd.Verb, tc.cmd.Args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s %v: %v", tc.cmd.Verb, tc.cmd.Args, err)
		case !tc.check(resp):
			t.Errorf("%s %v scope %v: %+v", tc.cmd.Verb, tc.cmd.Args, tc.cmd.Scope, resp)
		}
	}
}

// TestChangeVerbs: remediation requests and silences go to the
// transport's Changer, checked first; without one they need Slack.
func TestChangeVerbs(t *testing.T) {
	ctx := context.Background()
	svc := testService(t)
	if _, err := svc.Handle(ctx, Command{Verb: "silence", Args: []string{"cache-1", "4h"}}); err == nil || !strings.Contains(err.Error(), "silence runs only in Slack") {
		t.Errorf("silence without a transport that knows who asks: %v", err)
	}
	changes := &recordingChanger{}
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"cache-1", "4h"}},
		{args: []string{"cache-1", "frag-high", "30m"}},
		{args: []string{"cache-1", "all", "2h"}},
		{args: []string{"cache-1", "frag-high", "10s"}, wantErr: "the duration must be between 1m and 720h, as in 30m, 4h or 72h"},
		{args: []string{"cache-1", "no-such-finding", "1h"}, wantErr: `unknown finding "no-such-finding"`},
		{args: []string{"cache-1"}, wantErr: "silence takes an instance, a finding or all, and a duration (usage: silence <instance> <finding>|all <duration>)"},
	} {
		resp, err := svc.Handle(ctx, Command{Verb: "silence", Args: tc.args, Changes: changes})
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("silence %v: %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !resp.Answered {
			t.Errorf("silence %v: %v %+v", tc.args, err, resp)
		}
	}
	// Left out, the finding is the transport's to find (an alert's
	// thread), never every finding: that is "all".
	want := []SilenceRequest{{Instance: "cache-1", FindingLeftOut: true, Duration: 4 * time.Hour},
		{Instance: "cache-1", Finding: "frag-high", Duration: 30 * time.Minute}, {Instance: "cache-1", Duration: 2 * time.Hour}}
	if !slices.Equal(changes.silences, want) {
		t.Errorf("silences = %+v, want %+v", changes.silences, want)
	}
	resp, err := svc.Handle(ctx, Command{Verb: "defrag", Args: []string{"cache-1", "on"}, Changes: changes})
	if err != nil || !resp.Answered || len(changes.remediations) != 1 || changes.remediations[0].Verb != "defrag" {
		t.Errorf("defrag: %v %+v %+v", err, resp, changes.remediations)
	}
}

func TestTrendWindows(t *testing.T) {
	for _, w := range TrendWindows {
		if d, err := ParseTrendWindow(w.Name); err != nil || d != w.Span {
			t.Errorf("ParseTrendWindow(%q) = %v, %v", w.Name, d, err)
		}
	}
	if d, err := ParseTrendWindow("1d"); err != nil || d != 24*time.Hour {
		t.Errorf("ParseTrendWindow(1d) = %v, %v", d, err)
	}
	if _, err := ParseTrendWindow("2h"); err == nil || err.Error() != "the window is one of 15m, 1h, 6h, 24h, 7d, 30d" {
		t.Errorf("ParseTrendWindow(2h) err = %v", err)
	}
}

// TestUnknownVerb names the closest verbs.
func TestUnknownVerb(t *testing.T) {
	_, err := testService(t).Handle(context.Background(), Command{Verb: "silenses"})
	if err == nil || !strings.HasPrefix(err.Error(), `unknown verb "silenses" (did you mean silences, silence?)`) || !IsUsage(err) {
		t.Errorf("silenses: %v", err)
	}
}
