package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// cannedProber answers every probe with the same snapshot: the router tests
// are about routing, the probe has its own tests against real servers.
type cannedProber struct{ snap *Snapshot }

func (p cannedProber) Probe(_ context.Context, inst Instance) (*Snapshot, error) {
	s := *p.snap
	s.Instance = inst.Name
	return &s, nil
}

func testService(t *testing.T) *Service {
	snap := fixture(t, "redis-7.0.txt", nil, nil)
	mk := func(name string, tags ...string) Instance {
		return Instance{Name: name, Addr: "127.0.0.1:6379", Tags: tags, Thresholds: DefaultThresholds()}
	}
	return NewService([]Instance{mk("cache-1", "team-a"), mk("cache-2", "team-a"), mk("queue-1", "team-b")},
		cannedProber{snap}, nil, 4, func() time.Time { return time.Unix(0, 0) })
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		text    string
		verb    string
		args    []string
		wantErr string
	}{
		{text: "diagnose cache-1", verb: "diagnose", args: []string{"cache-1"}},
		{text: "  DIAGNOSE   cache-1  ", verb: "diagnose", args: []string{"cache-1"}},
		{text: "", verb: "help"},
		{text: `fleet "team a"`, verb: "fleet", args: []string{"team a"}},
		{text: "fleet “team a”", verb: "fleet", args: []string{"team a"}},
		{text: "keys cache-1 --match 'session:*'", verb: "keys", args: []string{"cache-1", "--match", "session:*"}},
		{text: `diagnose "cache-1`, wantErr: "unbalanced quotes in command"},
		{text: "diagnose cache-1\x00", wantErr: "command contains control characters"},
		{text: "diagnose cache-1\x1b[31m", wantErr: "command contains control characters"},
		{text: "diagnose \xff", wantErr: "command contains invalid UTF-8"},
		{text: strings.Repeat("a", 1001), wantErr: "command is 1001 characters long; the limit is 1000"},
	}
	for _, tc := range cases {
		cmd, err := ParseCommand(tc.text)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr || !IsUsage(err) {
				t.Errorf("ParseCommand(%q) error = %v, want %q", tc.text, err, tc.wantErr)
			}
			continue
		}
		if err != nil || cmd.Verb != tc.verb || strings.Join(cmd.Args, "|") != strings.Join(tc.args, "|") {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %s %v", tc.text, cmd, err, tc.verb, tc.args)
		}
	}
}

func TestHandle(t *testing.T) {
	svc := testService(t)
	ctx := context.Background()
	cases := []struct {
		cmd     Command
		wantErr string
		check   func(*testing.T, *Response)
	}{
		{cmd: Command{Verb: "diagnose", Args: []string{"cache-1"}}, check: func(t *testing.T, r *Response) {
			if len(r.Reports) != 1 || !r.Reports[0].Has("frag-high") {
				t.Errorf("reports = %+v", r.Reports)
			}
		}},
		{cmd: Command{Verb: "frag", Args: []string{"cache-1"}}, check: func(t *testing.T, r *Response) {
			if len(r.Reports[0].Path) == 0 {
				t.Error("frag without a path")
			}
		}},
		{cmd: Command{Verb: "fleet"}, check: func(t *testing.T, r *Response) {
			if len(r.Reports) != 3 {
				t.Errorf("fleet has %d reports", len(r.Reports))
			}
		}},
		{cmd: Command{Verb: "fleet", Args: []string{"team-b"}}, check: func(t *testing.T, r *Response) {
			if len(r.Reports) != 1 || r.Reports[0].Instance != "queue-1" {
				t.Errorf("fleet team-b = %+v", r.Reports)
			}
		}},
		{cmd: Command{Verb: "list", Args: []string{"--tag", "team-a"}}, check: func(t *testing.T, r *Response) {
			if len(r.Instances) != 2 {
				t.Errorf("list = %+v", r.Instances)
			}
		}},
		{cmd: Command{Verb: "help", Args: []string{"frag"}}, check: func(t *testing.T, r *Response) {
			if len(r.Help) != 1 || r.Help[0].Verb != "frag" {
				t.Errorf("help = %+v", r.Help)
			}
		}},
		{cmd: Command{Verb: "diagnose"}, wantErr: "diagnose takes an instance name and, for its runbook, a finding (usage: diagnose <instance> [finding])"},
		{cmd: Command{Verb: "diagnose", Args: []string{"a", "b", "c"}}, wantErr: "diagnose takes an instance name and, for its runbook, a finding (usage: diagnose <instance> [finding])"},
		{cmd: Command{Verb: "diagnose", Args: []string{"cache-1", "frag-hihg"}}, wantErr: `unknown finding "frag-hihg" (usage: diagnose <instance> [finding])`},
		{cmd: Command{Verb: "diagnose", Args: []string{"cache-1", "frag-high"}}, check: func(t *testing.T, r *Response) {
			if r.Runbook != "frag-high" || len(r.Reports) != 1 {
				t.Errorf("diagnose cache-1 frag-high = %+v", r)
			}
		}},
		{cmd: Command{Verb: "oom", Args: []string{"a", "b"}}, wantErr: "oom takes exactly one instance name (usage: oom <instance>)"},
		{cmd: Command{Verb: "fleet", Args: []string{"a", "b"}}, wantErr: "fleet takes at most one tag (usage: fleet [tag])"},
		{cmd: Command{Verb: "fleet", Args: []string{"nope"}}, wantErr: `no instance has tag "nope"`},
		{cmd: Command{Verb: "help", Args: []string{"nope"}}, wantErr: `unknown verb "nope"`},
		{cmd: Command{Verb: "rm", Args: []string{"-rf"}}, wantErr: `unknown verb "rm" (did you mean oom?); verbs: diagnose, frag, oom, doctor, keys, fleet, list, purge, defrag, set, bgsave, restart, failover, approvals, audit, trend, silence, unsilence, silences, help`},
		{cmd: Command{Verb: "diagnos", Args: []string{"cache-1"}}, wantErr: `unknown verb "diagnos" (did you mean diagnose?); verbs: diagnose, frag, oom, doctor, keys, fleet, list, purge, defrag, set, bgsave, restart, failover, approvals, audit, trend, silence, unsilence, silences, help`},
		{cmd: Command{Verb: "diagnose", Args: []string{"cache-3"}}, wantErr: `unknown instance "cache-3" (did you mean cache-1, cache-2?)`},
		{cmd: Command{Verb: "diagnose", Args: []string{"10.0.0.1:6379"}}, wantErr: `unknown instance "10.0.0.1:6379"`},
		// A team channel sees only its own instances, and does not learn
		// the names of the others.
		{cmd: Command{Verb: "diagnose", Args: []string{"queue-1"}, Scope: []string{"team-a"}}, wantErr: `unknown instance "queue-1"`},
		{cmd: Command{Verb: "diagnose", Args: []string{"queue-2"}, Scope: []string{"team-a"}}, wantErr: `unknown instance "queue-2"`},
		{cmd: Command{Verb: "fleet", Scope: []string{"team-b"}}, check: func(t *testing.T, r *Response) {
			if len(r.Reports) != 1 {
				t.Errorf("scoped fleet = %d reports", len(r.Reports))
			}
		}},
	}
	for _, tc := range cases {
		resp, err := svc.Handle(ctx, tc.cmd)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%+v: error = %v, want %q", tc.cmd, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc.cmd, err)
			continue
		}
		tc.check(t, resp)
	}
	_, err := svc.Handle(ctx, Command{Verb: "oom", Args: []string{"nope"}})
	if !errors.Is(err, ErrUnknownInstance) {
		t.Errorf("errors.Is(%v, ErrUnknownInstance) = false", err)
	}
}

func TestClosest(t *testing.T) {
	names := []string{"cache-1", "cache-2", "session-store", "queue-1"}
	cases := map[string]string{
		"cache-3":  "cache-1,cache-2",
		"cach-1":   "cache-1,cache-2",
		"session":  "session-store",
		"zzzzzzzz": "",
		"queue1":   "queue-1",
	}
	for in, want := range cases {
		if got := strings.Join(Closest(in, names, 3), ","); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRemediationVerbsNeedSlack(t *testing.T) {
	_, err := testService(t).Handle(context.Background(), Command{Verb: "purge", Args: []string{"cache-1"}})
	if err == nil || !strings.Contains(err.Error(), "runs only in Slack, where it needs an approver") {
		t.Errorf("purge from the CLI: %v", err)
	}
}

func TestResolveScoped(t *testing.T) {
	svc := testService(t)
	if inst, err := svc.Resolve("queue-1", nil); err != nil || inst.Name != "queue-1" {
		t.Errorf("Resolve without scope = %v, %v", inst.Name, err)
	}
	if _, err := svc.Resolve("queue-1", []string{"team-a"}); !errors.Is(err, ErrUnknownInstance) {
		t.Errorf("Resolve out of scope = %v", err)
	}
}
