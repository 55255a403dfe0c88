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
// after SlowAfter moves there if the lane has a free slot (else it keeps
// its worker to the end), and its main worker takes the next command: this needs no knowledge of the fleet, so
// it also covers the first command about an instance that just died, a
// fleet view that includes one, or a mention in free text. And a command
// about an instance known not to answer goes there from the start, so it
// never takes a main worker at all: one about an instance whose probe by a
// command or by this replica's sweep (Saw) timed out in the last
// suspectFor, or that has a command running longer than SlowAfter right
// now.
//
// Moving a running command only moves what it counts against: the
// goroutine runs on, and when the slow lane is full it keeps its main
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
	workers, maxQueue int

	mu sync.Mutex
	// busy counts the commands running in the lane, moved or sent there;
	// queue holds those waiting for one of them to end, which then runs
	// the first in its place.
	busy  int
	queue []job
	// running counts, per instance, the commands about it that have run
	// longer than SlowAfter and are still running.
	running map[string]int
	// timedOut is when a probe of the instance by a command last timed
	// out; only names of configured instances (from reports) get in.
	timedOut map[string]time.Time
}

func newSlowLane(workers, queue int) *slowLane {
	return &slowLane{workers: workers, maxQueue: queue, running: map[string]int{}, timedOut: map[string]time.Time{}}
}

// enter takes a place in the lane for a command: a slot to run in (run),
// else a place in the queue (queued), else neither: the lane is full.
func (l *slowLane) enter(j job) (run, queued bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy < l.workers {
		l.busy++
		return true, false
	}
	if len(l.queue) < l.maxQueue {
		l.queue = append(l.queue, j)
		return false, true
	}
	return false, false
}

// move takes a slot for a command already running, if one is free.
func (l *slowLane) move() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy < l.workers {
		l.busy++
		return true
	}
	return false
}

// next is called when a command in the lane ends: its slot goes to the
// first queued command, returned, or is freed.
func (l *slowLane) next() (job, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 {
		j := l.queue[0]
		l.queue[0] = job{}
		l.queue = l.queue[1:]
		return j, true
	}
	l.busy--
	return job{}, false
}

// waiting is how many commands are in the slow lane, running or queued.
func (l *slowLane) waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy + len(l.queue)
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

// Unanswered marks instances another replica's sweep found timing out
// (sweep.Sweeper.Follow on a replica that does not lead) as suspect now,
// as Saw does for this replica's own sweep; a command's probe that
// answers clears the mark, and it lapses after suspectFor.
func (b *Bot) Unanswered(names []string) {
	now := b.now()
	b.lane.mu.Lock()
	defer b.lane.mu.Unlock()
	for _, name := range names {
		b.lane.timedOut[name] = now
	}
	// Marks that lapsed are dropped here: a follower hears names
	// from the store, and a name no longer there would stay for good.
	for name, at := range b.lane.timedOut {
		if now.Sub(at) >= suspectFor {
			delete(b.lane.timedOut, name)
		}
	}
}

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
// slow lane. When the lane is full, j keeps its worker to the end, as
// every command did before the lane.
func (b *Bot) work(ctx context.Context, j job) {
	done := make(chan struct{})
	b.commands.Go(func() {
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
	if !b.lane.move() {
		b.opts.Metrics.SlowLane("held")
		<-done
		unmark()
		return
	}
	b.opts.Metrics.SlowLane("moved")
	b.commands.Go(func() {
		<-done
		unmark()
		b.runQueued(ctx)
	})
}

// runSlow runs j in a slot of the slow lane, then, in the same slot, the
// commands queued for the lane, until none waits.
func (b *Bot) runSlow(ctx context.Context, j job) {
	b.safely(ctx, "slack_command", func() { b.process(ctx, j) })
	b.runQueued(ctx)
}

// runQueued runs the commands queued for the slow lane in a slot that has
// just been freed, one after another, and frees the slot when none waits.
func (b *Bot) runQueued(ctx context.Context) {
	for {
		j, ok := b.lane.next()
		if !ok {
			return
		}
		b.safely(ctx, "slack_command", func() { b.process(ctx, j) })
	}
}

// admit queues an acked job in its lane without blocking, or tells the
// user at once why it cannot be queued: acks must not wait, and a command
// is never dropped silently.
func (b *Bot) admit(j job, jobs chan<- job) {
	slow, timedOut := b.lane.suspect(j.instance, b.now())
	if !slow {
		select {
		case jobs <- j:
		default:
			b.refuseBusy(j, "redisbot is busy with other commands right now; try again in a minute.")
		}
		return
	}
	j.timedOut = timedOut
	switch run, queued := b.lane.enter(j); {
	case run:
		b.opts.Metrics.SlowLane("sent")
		b.commands.Go(func() { b.runSlow(b.workCtx, j) })
	case queued:
		b.opts.Metrics.SlowLane("sent")
	default:
		b.opts.Metrics.SlowLane("refused")
		n := b.lane.waiting()
		waiting := fmt.Sprintf("%d commands are", n)
		if n == 1 {
			waiting = "1 command is"
		}
		b.refuseBusy(j, waiting+" already waiting on unreachable instances; try again in a minute.")
	}
}

// refuseBusy answers a command no lane has room for, from a goroutine of
// its own since dispatch must not wait on Slack.
func (b *Bot) refuseBusy(j job, why string) {
	b.goSafely(context.Background(), "slack_busy_reply", func() {
		ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
		defer cancel()
		_ = b.ephemeral(ctx, j, blockkit.RenderRefusal(why))
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
