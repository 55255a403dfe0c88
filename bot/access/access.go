// Package access decides who may ask redisbot what, and where: which
// channels it answers in (and which instances each channel sees), and which
// users hold the viewer, operator and approver roles, directly or through a
// Slack user group. It fails closed: when group membership cannot be read,
// the answer is a refusal, never a grant.
package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Role is what a user may do.
type Role string

// Roles, from reading to approving.
const (
	Viewer   Role = "viewer"   // diagnosis verbs
	Operator Role = "operator" // may request remediations
	Approver Role = "approver" // may approve remediations
)

// GroupMembers lists the user ids in a Slack user group (usergroups.users.list).
type GroupMembers interface {
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Channel is one channel the bot answers in. Tags, when set, limit the
// instances that channel sees.
type Channel struct {
	ID   string
	Tags []string
}

// Rules is the access section of the config.
type Rules struct {
	Channels  []Channel
	Viewers   []string // user ids (U..., W...) or user-group ids (S...); empty = everyone
	Operators []string
	Approvers []string
}

// Refusal is an access denial; its Reason is shown to the user.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// Policy applies Rules.
type Policy struct {
	rules  Rules
	groups GroupMembers
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedGroup
}

type cachedGroup struct {
	members []string
	fetched time.Time
}

// New returns a policy. Group memberships are cached for ttl.
func New(rules Rules, groups GroupMembers, ttl time.Duration, now func() time.Time) *Policy {
	if now == nil {
		now = time.Now
	}
	return &Policy{rules: rules, groups: groups, ttl: ttl, now: now, cache: map[string]cachedGroup{}}
}

// Channel returns the channel's settings, or a Refusal when the bot does
// not answer there. With no channels configured, every channel is allowed
// and sees every instance.
func (p *Policy) Channel(id string) (Channel, error) {
	if len(p.rules.Channels) == 0 {
		return Channel{ID: id}, nil
	}
	for _, c := range p.rules.Channels {
		if c.ID == id {
			return c, nil
		}
	}
	return Channel{}, &Refusal{Reason: "redisbot does not answer in this channel. Ask an admin to add it to access.channels, or use an on-call channel where redisbot is enabled."}
}

// Require returns nil when user holds role, else a Refusal that names the
// role and where it is granted.
func (p *Policy) Require(ctx context.Context, user string, role Role) error {
	var lists [][]string
	switch role {
	case Viewer:
		if len(p.rules.Viewers) == 0 {
			return nil // everyone in an allowed channel may diagnose
		}
		// Those who may act may also look.
		lists = [][]string{p.rules.Viewers, p.rules.Operators, p.rules.Approvers}
	case Operator:
		lists = [][]string{p.rules.Operators}
	case Approver:
		lists = [][]string{p.rules.Approvers}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	var groupErr error
	for _, list := range lists {
		ok, err := p.member(ctx, user, list)
		if ok {
			return nil
		}
		if err != nil {
			groupErr = err
		}
	}
	if groupErr != nil {
		return &Refusal{Reason: "redisbot could not check your Slack user groups right now; try again in a minute."}
	}
	return &Refusal{Reason: fmt.Sprintf("This needs the %s role. Ask an admin to add you, or a user group you are in, to access.%ss.", role, role)}
}

// member reports whether user is listed directly or via a group in ids.
func (p *Policy) member(ctx context.Context, user string, ids []string) (bool, error) {
	if slices.Contains(ids, user) {
		return true, nil
	}
	var firstErr error
	for _, id := range ids {
		if !strings.HasPrefix(id, "S") {
			continue
		}
		members, err := p.groupMembers(ctx, id)
		if err != nil {
			firstErr = err
			continue
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, firstErr
}

func (p *Policy) groupMembers(ctx context.Context, id string) ([]string, error) {
	p.mu.Lock()
	c, ok := p.cache[id]
	p.mu.Unlock()
	if ok && p.now().Sub(c.fetched) < p.ttl {
		return c.members, nil
	}
	if p.groups == nil {
		return nil, fmt.Errorf("user group %s: no Slack client to look it up", id)
	}
	members, err := p.groups.GroupMembers(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("user group %s: %w", id, err)
	}
	p.mu.Lock()
	p.cache[id] = cachedGroup{members: members, fetched: p.now()}
	p.mu.Unlock()
	return members, nil
}
