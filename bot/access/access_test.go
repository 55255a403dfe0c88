package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// groups is a canned usergroups.users.list: group id -> members.
type groups struct {
	members map[string][]string
	calls   int
	fail    bool
}

func (g *groups) GroupMembers(_ context.Context, id string) ([]string, error) {
	g.calls++
	if g.fail {
		return nil, errors.New("slack: ratelimited")
	}
	return g.members[id], nil
}

func TestChannels(t *testing.T) {
	p := New(Rules{Channels: []Channel{{ID: "C1"}, {ID: "C2", Tags: []string{"team-a"}}}}, nil, time.Minute, nil)
	if c, err := p.Channel("C2"); err != nil || c.Tags[0] != "team-a" {
		t.Errorf("C2 = %+v, %v", c, err)
	}
	var r *Refusal
	if _, err := p.Channel("C9"); !errors.As(err, &r) || !strings.Contains(r.Reason, "access.channels") {
		t.Errorf("C9: %v", err)
	}
	open := New(Rules{}, nil, time.Minute, nil)
	if _, err := open.Channel("C9"); err != nil {
		t.Errorf("no channels configured: %v", err)
	}
}

func TestRoles(t *testing.T) {
	g := &groups{members: map[string][]string{"SOPS": {"U_OPS"}, "SAPP": {"U_LEAD"}}}
	clock := time.Unix(0, 0)
	p := New(Rules{Viewers: []string{"U_VIEW"}, Operators: []string{"SOPS", "U_OP"}, Approvers: []string{"SAPP"}}, g, time.Minute, func() time.Time { return clock })
	ctx := context.Background()
	cases := []struct {
		user string
		role Role
		ok   bool
	}{
		{"U_VIEW", Viewer, true},
		{"U_OPS", Viewer, true}, // operators may also look
		{"U_LEAD", Viewer, true},
		{"U_OTHER", Viewer, false},
		{"U_OP", Operator, true},
		{"U_OPS", Operator, true},
		{"U_VIEW", Operator, false},
		{"U_LEAD", Approver, true},
		{"U_OPS", Approver, false},
	}
	for _, tc := range cases {
		err := p.Require(ctx, tc.user, tc.role)
		if (err == nil) != tc.ok {
			t.Errorf("Require(%s, %s) = %v, want ok=%v", tc.user, tc.role, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "needs the "+string(tc.role)+" role") {
			t.Errorf("refusal does not name the role: %v", err)
		}
	}
	calls := g.calls
	p.Require(ctx, "U_OPS", Operator)
	if g.calls != calls {
		t.Errorf("group looked up again within the TTL")
	}
	clock = clock.Add(2 * time.Minute)
	p.Require(ctx, "U_OPS", Operator)
	if g.calls == calls {
		t.Errorf("group not refreshed after the TTL")
	}
}

func TestEveryoneViewsWhenNoViewersListed(t *testing.T) {
	p := New(Rules{Operators: []string{"U_OP"}}, nil, time.Minute, nil)
	if err := p.Require(context.Background(), "U_ANY", Viewer); err != nil {
		t.Error(err)
	}
	if err := p.Require(context.Background(), "U_ANY", Operator); err == nil {
		t.Error("anyone became an operator")
	}
}

func TestFailsClosedWhenGroupsUnreadable(t *testing.T) {
	g := &groups{fail: true}
	p := New(Rules{Operators: []string{"SOPS"}}, g, time.Minute, nil)
	err := p.Require(context.Background(), "U_OPS", Operator)
	if err == nil || !strings.Contains(err.Error(), "could not check your Slack user groups") {
		t.Errorf("err = %v", err)
	}
}
