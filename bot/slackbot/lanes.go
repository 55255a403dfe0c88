package slackbot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/handlers"
)

// Chat isolation (issue 18). A command about an instance that does not
// answer holds whatever runs it for the whole probe timeout; with one pool
// of workers, a burst of those left commands about healthy instances
// queued behind them. So commands run in two lanes:
//
//   - the main lane, Workers workers over the Queue, for every command;
//   - the slow lane, at most SlowWorkers commands running and SlowQueue
//     waiting, for commands that wait on an instance.
//
// A command gets into the slow lane two ways. A command still running
// after SlowAfter moves there as soon as the lane has room, and its main
// worker takes the next command: this needs no knowledge of the fleet, so
// it also covers the first command about an instance that just died, a
// fleet view that includes one, or a mention in free text. And a command
// about an instance known not to answer goes there from the start, so it
// never takes a main worker at all: one about an instance whose probe by a
// command or by this replica's sweep (Saw) timed out in the last
// suspectFor, or that has a command running longer than SlowAfter right
// now.
//
// Moving a running command only moves what it counts against: the
// goroutine runs on, and while the slow lane is full it keeps its main
// worker, so goroutines, sockets and memory stay bounded by Workers +
// SlowWorkers commands running and Queue + SlowQueue waiting. A command
// for the slow lane that finds its queue full is answered at once that
// commands are waiting on unreachable instances, never dropped silently.
//
// Simpler schemes were weighed. The prober already shares one probe among
// the commands about one instance (handlers/probe), which saves sockets
// but not the workers waiting on it, and a per-instance limit does not
// help when a burst names many dead instances. Answering from the last
// sweep needs a sweep that saw the instance, which a cold burst does not
// have; what the sweep saw (Saw) does send commands to the slow lane from
// the start, with a note of when the instance last timed out.

// suspectFor is how long a probe that timed out keeps its instance's
// commands in the slow lane. A probe that answers clears it at once; a
// stale mark only costs a command a place in the slow lane, which is idle
// unless dead instances fill it.
const suspectFor = 5 * time.Minute

// slowLane holds the slow lane and what the bot has seen of instances
// that do not answer.
type slowLane struct {
	// jobs are commands about suspect instances waiting for a slot.
	jobs chan job
	// slots holds one token per command running in the lane, moved or
	// sent there.
	slots chan struct{}

	mu sync.Mutex
	// running counts, per instance, the commands about it that have run
	// longer than SlowAfter and are still running.
	running map[string]int
	// timedOut is when a probe of the instance by a command last timed
	// out; only names of configured instances (from reports) get in.
	timedOut map[string]time.Time
}

func newSlowLane(workers, queue int) *slowLane {
	return &slowLane{jobs: make(chan job, queue), slots: make(chan struct{}, workers),
		running: map[string]int{}, timedOut: map[string]time.Time{}}
}

// suspect reports whether a command about instance should go to the slow
// lane from the start, and when a probe of it last timed out, if that is
// among the reasons (zero otherwise).
func (l *slowLane) suspect(instance string, now time.Time) (bool, time.Time) {
	if instance == "" {
		return false, time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.timedOut[instance]
	if !ok || now.Sub(at) >= suspectFor {
		at = time.Time{}
	}
	return l.running[instance] > 0 || !at.IsZero(), at
}

// waiting is how many commands are in the slow lane, running or queued.
func (l *slowLane) waiting() int { return len(l.jobs) + len(l.slots) }

// saw records what a command's probes found: a timeout marks the
// instance suspect, any other outcome clears it (a refused connection
// fails fast and holds nobody).
func (l *slowLane) saw(reports []*handlers.Report, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range reports {
		if r.Failed() && r.Error.Class == handlers.ClassTimeout {
			l.timedOut[r.Instance] = now
		} else {
			delete(l.timedOut, r.Instance)
		}
	}
}

// Saw hands the bot probes made outside it (the sweep's), so that a
// command about an instance the last sweep saw time out goes to the slow
// lane from the start, without first holding a main worker for SlowAfter.
func (b *Bot) Saw(reports []*handlers.Report) { b.lane.saw(reports, b.now()) }

// timeoutNote tells the user at once what is known of the instance a
// command waits on, when a probe of it timed out lately: the answer
// itself waits for the probe timeout.
func (b *Bot) timeoutNote(ctx context.Context, j job) {
	if j.timedOut.IsZero() {
		return
	}
	note := fmt.Sprintf("%s did not answer a probe %s ago (timeout); probing again, the answer follows.", j.instance, b.now().Sub(j.timedOut).Round(time.Second))
	if err := b.ephemeral(ctx, j, blockkit.RenderNote(note)); err != nil {
		b.log.WarnContext(ctx, "timeout note not sent", "instance", j.instance, "error", err)
	}
}

// slow marks a command about instance as running longer than SlowAfter
// until the returned func is called.
func (l *slowLane) slow(instance string) (done func()) {
	if instance == "" {
		return func() {}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running[instance]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.running[instance]--; l.running[instance] <= 0 {
			delete(l.running, instance)
		}
	}
}

// work runs j for a main worker and returns when the worker is free
// again: when j is done, or once j has run SlowAfter and moved to the
// slow lane.
func (b *Bot) work(ctx context.Context, j job, running *sync.WaitGroup) {
	done := make(chan struct{})
	running.Go(func() {
		defer close(done)
		b.safely(ctx, "slack_command", func() { b.process(ctx, j) })
	})
	timer := time.NewTimer(b.opts.SlowAfter)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	unmark := b.lane.slow(j.instance)
	select {
	case b.lane.slots <- struct{}{}:
		running.Go(func() {
			<-done
			unmark()
			<-b.lane.slots
		})
	case <-done:
		unmark()
	}
}

// serveSlowLane runs the commands sent to the slow lane, each as soon as
// it has a slot, until the lane's queue is closed. It takes a slot before
// it takes a command, so that a command waiting for a slot stays in the
// queue, where it counts against SlowQueue.
func (b *Bot) serveSlowLane(ctx context.Context, running *sync.WaitGroup) {
	for {
		b.lane.slots <- struct{}{}
		j, ok := <-b.lane.jobs
		if !ok {
			<-b.lane.slots
			return
		}
		running.Go(func() {
			defer func() { <-b.lane.slots }()
			b.safely(ctx, "slack_command", func() { b.process(ctx, j) })
		})
	}
}

// admit queues an acked job in its lane without blocking, or tells the
// user at once why it cannot be queued: acks must not wait, and a command
// is never dropped silently.
func (b *Bot) admit(j job, jobs chan<- job) {
	if slow, timedOut := b.lane.suspect(j.instance, b.now()); slow {
		j.timedOut = timedOut
		select {
		case b.lane.jobs <- j:
		default:
			n := b.lane.waiting()
			waiting := fmt.Sprintf("%d commands are", n)
			if n == 1 {
				waiting = "1 command is"
			}
			b.refuseBusy(j, waiting+" already waiting on unreachable instances; try again in a minute.")
		}
		return
	}
	select {
	case jobs <- j:
	default:
		b.refuseBusy(j, "redisbot is busy with other commands right now; try again in a minute.")
	}
}

// refuseBusy answers a command no lane has room for, from a goroutine of
// its own since dispatch must not wait on Slack.
func (b *Bot) refuseBusy(j job, why string) {
	b.goSafely(context.Background(), "slack_busy_reply", func() {
		_ = b.ephemeral(context.Background(), j, blockkit.RenderRefusal(why))
	})
}

// instanceOf is the instance a job waits on, as the verb table reads its
// arguments, or "" for a job about none (fleet, help, Home) or one whose
// text is not a command (a mention in free text).
func instanceOf(j job) string {
	switch j.kind {
	case kindCommand, kindMention:
		cmd, err := handlers.ParseCommand(j.text)
		if err != nil {
			return ""
		}
		if v, ok := handlers.LookupVerb(cmd.Verb); ok && v.Probes && len(cmd.Args) > 0 {
			return cmd.Args[0]
		}
	case kindClick:
		click, err := blockkit.ParseClick(j.action.ActionID, j.action.Value)
		if err != nil {
			return ""
		}
		switch click.Kind {
		case blockkit.ActionRunbook:
			return click.Runbook.Instance
		case blockkit.ActionDiagnose, blockkit.ActionRequest:
			return click.Instance
		}
	}
	return ""
}
