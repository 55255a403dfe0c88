package sweep

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/store"
)

// Exactly one message per alert transition, across crashes and store
// failures: the channel is the record of what was posted. Every alert
// message carries metadata (alertMetaType: instance, finding, state,
// firing since), set when it is posted and updated when it escalates or
// resolves. Before posting a new alert the sweep reads the channel's
// recent messages of that type (one conversations.history read per
// channel and sweep, only when something fires) and, if the alert's
// message is there and still firing, uses it instead of posting again.
//
// That covers every way the store's record of a post can go missing: a
// leader killed between the post and the write, a store that failed or
// restarted between them (the write is lost, the post is not), a store
// that restarted empty, and a paused leader whose successor posted first
// (fencing then stops the old leader's own attempt). What it cannot cover
// is a message older than alertLookback whose record was lost: that alert
// is posted again.

const (
	alertMetaType = "redisbot_alert"
	stateFiring   = "firing"
	stateResolved = "resolved"
	// alertLookback is how far back the channel is read for an alert's
	// message. A record is lost in the seconds between a post and its
	// write, or with a store that lost everything; a week covers the
	// second case for any alert someone is still looking at.
	alertLookback = 7 * 24 * time.Hour
)

// alertMeta is what an alert message carries to be found again.
func alertMeta(instance, finding, state string, since time.Time) *blockkit.Meta {
	return &blockkit.Meta{Type: alertMetaType, Fields: map[string]string{
		"instance": instance, "finding": finding, "state": state,
		"since": since.UTC().Format(time.RFC3339),
	}}
}

// groupMeta is what a group message carries: its finding and the
// instances still firing in it, comma-separated (instance names have no
// commas: config holds them to [a-z0-9._-]), so an alert whose record was lost is
// found in it as in a message of its own.
func groupMeta(instances []string, finding, state string, since time.Time) *blockkit.Meta {
	return &blockkit.Meta{Type: alertMetaType, Fields: map[string]string{
		"instances": strings.Join(instances, ","), "finding": finding, "state": state,
		"since": since.UTC().Format(time.RFC3339),
	}}
}

// maxGroupMeta bounds the instance names of one group message's metadata
// (Slack takes 16 KiB of metadata): a group of more is posted as several.
const maxGroupMeta = 12 << 10

// postedMessage is an alert's message found in a channel.
type postedMessage struct {
	ts    string
	group bool
}

func alertKey(instance, finding string) string { return instance + "\x00" + finding }

// alreadyPosted looks for a firing alert message of (instance, finding)
// in channel. An error means the channel could not be read: the caller
// must not post (the next sweep tries again), or a message whose record
// was lost would be posted twice.
func (s *Sweeper) alreadyPosted(ctx context.Context, channel, instance, finding string, now time.Time) (postedMessage, bool, error) {
	if s.o.Finder == nil {
		return postedMessage{}, false, nil
	}
	found, ok := s.posted[channel]
	if !ok {
		tagged, err := s.o.Finder.Tagged(ctx, channel, alertMetaType, now.Add(-alertLookback))
		var permanent interface{ Permanent() bool }
		switch {
		case errors.Is(err, store.ErrFenced):
			return postedMessage{}, false, err
		case errors.As(err, &permanent) && permanent.Permanent():
			// Slack will not show this channel (a missing
			// channels:history scope): alert as before, at least once,
			// rather than never.
			s.o.Log.WarnContext(ctx, "cannot read the alert channel to check for alerts already posted: posting without the check (give the app channels:history, or groups:history for a private channel)", "channel", channel, "error", err)
			tagged = nil
		case err != nil:
			return postedMessage{}, false, fmt.Errorf("read %s for alert messages already posted: %w", channel, err)
		}
		found = firingByKey(tagged)
		if s.posted == nil {
			s.posted = map[string]map[string]postedMessage{}
		}
		s.posted[channel] = found
	}
	m, ok := found[alertKey(instance, finding)]
	return m, ok, nil
}

// remember records a message posted (or found) during this sweep.
func (s *Sweeper) remember(channel, instance, finding string, m postedMessage) {
	if s.posted == nil {
		s.posted = map[string]map[string]postedMessage{}
	}
	if s.posted[channel] == nil {
		s.posted[channel] = map[string]postedMessage{}
	}
	s.posted[channel][alertKey(instance, finding)] = m
}

// firingByKey keeps, for each alert key, the newest message whose
// metadata says firing: a resolved one is history, and a later recurrence
// has a message of its own. A group message stands for each instance it
// names as firing.
func firingByKey(tagged map[string]blockkit.Meta) map[string]postedMessage {
	out := map[string]postedMessage{}
	for ts, m := range tagged {
		if m.Type != alertMetaType || m.Fields["state"] != stateFiring || m.Fields["finding"] == "" {
			continue
		}
		instances, group := []string{m.Fields["instance"]}, m.Fields["instances"] != ""
		if group {
			instances = strings.Split(m.Fields["instances"], ",")
		}
		for _, inst := range instances {
			if inst == "" {
				continue
			}
			key := alertKey(inst, m.Fields["finding"])
			if prev, ok := out[key]; !ok || tsAfter(ts, prev.ts) {
				out[key] = postedMessage{ts: ts, group: group}
			}
		}
	}
	return out
}

// tsAfter compares Slack message timestamps ("1700000000.000100"):
// seconds, then the fraction, as numbers.
func tsAfter(a, b string) bool {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	ai, _ := strconv.ParseInt(as, 10, 64)
	bi, _ := strconv.ParseInt(bs, 10, 64)
	if ai != bi {
		return ai > bi
	}
	afi, _ := strconv.ParseInt(af, 10, 64)
	bfi, _ := strconv.ParseInt(bf, 10, 64)
	return afi > bfi
}
