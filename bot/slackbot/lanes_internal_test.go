package slackbot

import (
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/handlers"
)

func TestInstanceOf(t *testing.T) {
	cases := []struct {
		j    job
		want string
	}{
		{job{kind: kindCommand, text: "diagnose cache-1"}, "cache-1"},
		{job{kind: kindCommand, text: "oom cache-1"}, "cache-1"},
		{job{kind: kindCommand, text: "purge cache-1"}, "cache-1"},
		{job{kind: kindMention, text: "frag 'cache-1'"}, "cache-1"},
		// Verbs that probe no instance while the user waits, or none.
		{job{kind: kindCommand, text: "trend cache-1"}, ""},
		{job{kind: kindCommand, text: "keys cache-1"}, ""},
		{job{kind: kindCommand, text: "fleet"}, ""},
		{job{kind: kindCommand, text: "diagnose"}, ""},
		{job{kind: kindCommand, text: "nonsense cache-1"}, ""},
		{job{kind: kindCommand, text: "diagnose \"cache-1"}, ""},
		{job{kind: kindMention, text: "why is cache-1 so big?"}, ""},
		{job{kind: kindHome}, ""},
		{job{kind: kindClick, action: slack.BlockAction{ActionID: "diagnose/cache-1", Value: "cache-1"}}, "cache-1"},
		{job{kind: kindClick, action: slack.BlockAction{ActionID: "approve/0123456789ab"}}, ""},
		{job{kind: kindClick, action: slack.BlockAction{ActionID: "bogus"}}, ""},
	}
	for _, c := range cases {
		if got := instanceOf(c.j); got != c.want {
			t.Errorf("instanceOf(%d %q %q) = %q, want %q", c.j.kind, c.j.text, c.j.action.ActionID, got, c.want)
		}
	}
}

func report(name string, class handlers.ErrorClass) *handlers.Report {
	r := &handlers.Report{Instance: name}
	if class != "" {
		r.Error = &handlers.ReportError{Class: class}
	}
	return r
}

// TestSuspect: what sends a command to the slow lane from the start, and
// what ends it.
func TestSuspect(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := New(Options{Now: func() time.Time { return now }})
	l := b.lane
	suspect := func(name string, at time.Time) bool { ok, _ := l.suspect(name, at); return ok }
	if suspect("cache-1", now) || suspect("", now) {
		t.Fatal("suspect before anything was seen")
	}

	// The sweep saw cache-1 time out and cache-2 refuse (which fails
	// fast and holds nobody).
	b.Saw([]*handlers.Report{report("cache-1", handlers.ClassTimeout), report("cache-2", handlers.ClassRefused)})
	if ok, at := l.suspect("cache-1", now.Add(suspectFor-time.Second)); !ok || !at.Equal(now) {
		t.Errorf("cache-1 timed out at %v: suspect %v, timed out at %v", now, ok, at)
	}
	if suspect("cache-1", now.Add(suspectFor)) {
		t.Errorf("cache-1 still suspect %v after its timeout", suspectFor)
	}
	if suspect("cache-2", now) {
		t.Error("cache-2 refused: suspect")
	}
	// A probe that answers clears it at once.
	l.saw([]*handlers.Report{report("cache-1", "")}, now.Add(time.Second))
	if suspect("cache-1", now.Add(time.Second)) {
		t.Error("cache-1 answered: still suspect")
	}

	// Commands running longer than SlowAfter make their instance suspect
	// while they run, whatever was seen before.
	done1, done2 := l.slow("cache-3"), l.slow("cache-3")
	if !suspect("cache-3", now) {
		t.Error("cache-3 has slow commands running: not suspect")
	}
	done1()
	if !suspect("cache-3", now) {
		t.Error("cache-3 has a slow command running: not suspect")
	}
	done2()
	if suspect("cache-3", now) || len(l.running) != 0 {
		t.Errorf("cache-3's slow commands ended: suspect, or still counted (%v)", l.running)
	}
}

// TestSlowLaneBounds: a slot each for SlowWorkers commands, a place for
// SlowQueue more, and a slot that frees goes to the first queued one.
func TestSlowLaneBounds(t *testing.T) {
	l := newSlowLane(1, 1)
	if run, _ := l.enter(job{text: "a"}); !run {
		t.Fatal("a: no slot in an empty lane")
	}
	if run, queued := l.enter(job{text: "b"}); run || !queued {
		t.Fatalf("b: run %v queued %v, want queued", run, queued)
	}
	if run, queued := l.enter(job{text: "c"}); run || queued || l.move() {
		t.Fatalf("c: run %v queued %v, or a slot to move to, in a full lane", run, queued)
	}
	if n := l.waiting(); n != 2 {
		t.Errorf("waiting = %d, want 2", n)
	}
	if j, ok := l.next(); !ok || j.text != "b" {
		t.Fatalf("a ended: next = %q %v, want b", j.text, ok)
	}
	if _, ok := l.next(); ok {
		t.Fatal("b ended: a queued command that was never queued")
	}
	if n := l.waiting(); n != 0 || !l.move() {
		t.Errorf("empty lane: waiting %d, or no slot to move to", n)
	}
}

// A follower hears from the store which instances the leader's sweeps
// found timing out (Unanswered): they are suspect from then, a probe that
// answers clears one, and a mark that lapsed is dropped when the next
// names come, so names no longer stored do not stay for good.
func TestUnanswered(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := now
	b := New(Options{Now: func() time.Time { return clock }})
	l := b.lane
	b.Unanswered([]string{"cache-1", "cache-2"})
	for _, name := range []string{"cache-1", "cache-2"} {
		if ok, at := l.suspect(name, now); !ok || !at.Equal(now) {
			t.Errorf("%s: suspect %v since %v, want since %v", name, ok, at, now)
		}
	}
	l.saw([]*handlers.Report{report("cache-2", "")}, now)
	if ok, _ := l.suspect("cache-2", now); ok {
		t.Error("cache-2 answered a command: still suspect")
	}
	clock = now.Add(suspectFor)
	b.Unanswered([]string{"cache-3"})
	l.mu.Lock()
	_, kept := l.timedOut["cache-1"]
	l.mu.Unlock()
	if kept {
		t.Error("cache-1's lapsed mark kept after the next names")
	}
	if ok, _ := l.suspect("cache-3", clock); !ok {
		t.Error("cache-3 not suspect")
	}
}
