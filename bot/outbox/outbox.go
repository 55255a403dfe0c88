// Package outbox is the bot's one way out to Slack: every message, edit,
// ephemeral answer and file the bot sends, and the history reads it makes
// before posting an alert, go through one Outbox. It
//
//   - redacts every configured secret from what it sends, whatever
//     rendered it;
//   - checks the leader's fence (store.WithFence) before every attempt, so
//     a leader that lost its lease while a message waited posts nothing;
//   - paces each of Slack's rate-limit scopes (a lane: chat.postMessage in
//     one channel, or one method's tier) with a client-side limiter, and a
//     429 pauses the whole lane for its Retry-After: no call of that lane
//     is made inside a Retry-After Slack announced;
//   - sends the most urgent message of a lane first: command and button
//     replies, then new alerts, then edits, then thread notes;
//   - coalesces: a newer version of a message (same Key) replaces a queued
//     older one, and a resolve cancels a fire that has not gone out;
//   - bounds its queue, dropping the least urgent message first;
//   - retries 429s, 5xx answers and network errors;
//   - bounds every wait: a message waits at most until its Send context's
//     deadline (MaxWait when it has none), a 429 pauses a lane for at most
//     maxPause, a reply that a pause would keep past its deadline fails
//     at once, and Close ends every wait when the bot shuts down;
//
// and reports its depth, its oldest message's age, its drops and each
// message's wait in /metrics.
//
// Send queues a Message and returns a Delivery at once; Wait on it for the
// new message's ts or the reason it was not sent. Lanes run concurrently,
// each one call at a time, so a storm in one channel does not hold back
// answers in another, and a reply in the storm's channel waits for at most
// the one call in flight.
package outbox

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/handlers"
)

// Priority orders the messages waiting in one lane: the higher goes first;
// equal ones go in the order they were sent.
type Priority int

const (
	// PriorityNote is a note in an alert's thread (escalated, still
	// firing, resolved, a silence ended).
	PriorityNote Priority = iota
	// PriorityUpdate is an edit of a message already in the channel.
	PriorityUpdate
	// PriorityAlert is a new alert.
	PriorityAlert
	// PriorityReply answers someone: a command, a button, a refusal. A
	// person is waiting for it.
	PriorityReply
)

// String is the priority's metric label.
func (p Priority) String() string {
	switch p {
	case PriorityNote:
		return "note"
	case PriorityUpdate:
		return "update"
	case PriorityAlert:
		return "alert"
	case PriorityReply:
		return "reply"
	}
	return "unknown"
}

// Message is one write to Slack. Which call it becomes follows from the
// fields set: User (ephemeral, through ResponseURL when set, else
// chat.postEphemeral), else TS (chat.update), else chat.postMessage, in
// ThreadTS's thread when set.
type Message struct {
	Channel string
	// TS, when set, edits that message instead of posting a new one.
	TS string
	// ThreadTS, when set, posts in that message's thread.
	ThreadTS string
	// User, when set, shows the message to that user only.
	User string
	// ResponseURL, with User, answers through a command's or a click's
	// response_url, which works in channels the bot is not in. The caller
	// checks that it points at Slack.
	ResponseURL string
	Body        blockkit.Message
	Priority    Priority
	// Key names the Slack message this one is a version of ("alert/C1/
	// cache-1/oom", "group/C1/used-memory/sweep-42"). A message sent with
	// the Key of one still queued (not yet on the wire) replaces it: only
	// the newer one is sent, in the older one's place in the queue and at
	// the higher of their priorities, and both Deliveries report its
	// outcome. Keys are the caller's; "" coalesces nothing.
	Key string
	// Resolve marks the message that ends what a new message of the same
	// Key announced (an alert resolved). When that new message is still
	// queued, the two cancel out: neither is sent, and both Deliveries
	// report ErrCancelled, so the caller knows no message exists. When it
	// was already sent, Resolve changes nothing: the message is sent.
	Resolve bool
}

// ErrQueueFull is a message dropped because the queue held Options.MaxQueue
// messages at least as urgent.
var ErrQueueFull = errors.New("slack outbox full: dropped to make room for more urgent messages")

// ErrCancelled is a new message and the resolve that cancelled it before
// either reached Slack.
var ErrCancelled = errors.New("cancelled by a resolve before it was sent")

// ErrRateLimited is a reply (PriorityReply) that Slack's Retry-After would
// keep waiting past its deadline: it fails at once rather than at the
// deadline, so the person waiting for it hears sooner. Other messages wait
// until their deadline, which their senders read as "later" (a sweep
// leaves them to the next one).
var ErrRateLimited = errors.New("Slack is rate-limiting these messages past this one's deadline")

// ErrClosed is a message still waiting when the outbox was closed (the bot
// shutting down).
var ErrClosed = errors.New("slack outbox closed: the bot is shutting down")

// Delivery is the outcome of one Send, known once the message was sent,
// dropped or given up on.
type Delivery struct {
	done chan struct{}
	ts   string
	err  error
}

func newDelivery() *Delivery { return &Delivery{done: make(chan struct{})} }

// Done is closed when the outcome is known.
func (d *Delivery) Done() <-chan struct{} { return d.done }

// Wait returns the ts of the message posted or edited ("" for an ephemeral
// answer or a file) or why it was not, or ctx's error if ctx ends first
// (the message stays queued while its Send context lives).
func (d *Delivery) Wait(ctx context.Context) (string, error) {
	select {
	case <-d.done:
		return d.ts, d.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (d *Delivery) finish(ts string, err error) {
	d.ts, d.err = ts, err
	close(d.done)
}

// Options configure an Outbox.
type Options struct {
	API *slack.Client
	// Redactor removes every configured secret from what is sent; nil
	// sends text as rendered.
	Redactor *handlers.Redactor
	// Limits are the client-side rates; nil is DefaultLimits.
	Limits Limits
	// MaxQueue bounds the messages waiting (default 1000).
	MaxQueue int
	// AttemptTimeout bounds one call to Slack (default 15s).
	AttemptTimeout time.Duration
	// MaxWait bounds the wait of a message whose Send context has no
	// deadline (default 10 minutes): no message waits forever, whatever
	// its sender forgot.
	MaxWait time.Duration
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Outbox sends to Slack; see the package comment.
type Outbox struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	lanes  map[string]*lane
	byKey  map[string]*item // queued items by Key
	queued int
	seq    uint64
	// shutdown ends with Close: it wakes the lanes waiting out a pause
	// and cuts the calls in flight.
	shutdown context.Context
	closeAll context.CancelFunc
	closed   bool
}

// New returns an Outbox. Its lanes start and stop with the work queued.
func New(o Options) *Outbox {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Limits == nil {
		o.Limits = DefaultLimits
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 1000
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 15 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 10 * time.Minute
	}
	out := &Outbox{o: o, log: o.Logger, lanes: map[string]*lane{}, byKey: map[string]*item{}}
	out.shutdown, out.closeAll = context.WithCancel(context.Background())
	o.Metrics.OutboxQueue(out.depth)
	return out
}

// call is one attempt at what an item sends. maybeSent says an earlier
// attempt may have reached Slack (a network error, a 5xx; never a 429,
// which Slack answers without acting).
type call func(ctx context.Context, maybeSent bool) (ts string, err error)

// item is one queued Send.
type item struct {
	ctx context.Context
	// cancel releases the MaxWait deadline enqueue gave ctx, if any.
	cancel context.CancelFunc
	method string // the Slack method, for metrics and logs
	lane   string
	prio   Priority
	// seq orders a lane's items of equal priority: a replacement and a
	// retried item keep their first one.
	seq uint64
	// version tells which of two items of one Key is the newer.
	version uint64
	queued  time.Time
	key     string
	resolve bool
	// fresh is a new top-level message: what a Resolve cancels.
	fresh      bool
	call       call
	deliveries []*Delivery

	attempts  int // failed attempts other than 429s
	maybeSent bool
	index     int // in its lane's heap; -1 when not queued
}

// Send queues m and returns at once.
func (o *Outbox) Send(ctx context.Context, m Message) *Delivery {
	body := o.redact(m.Body)
	it := &item{ctx: ctx, prio: m.Priority, key: m.Key, resolve: m.Resolve}
	switch {
	case m.User != "" && m.ResponseURL != "":
		it.method, it.call = "response_url", o.webhookCall(m.ResponseURL, body)
	case m.User != "":
		it.method, it.call = "chat.postEphemeral", o.ephemeralCall(m.Channel, m.User, m.ThreadTS, body)
	case m.TS != "":
		it.method, it.call = "chat.update", o.updateCall(m.Channel, m.TS, body)
	default:
		it.method, it.call = "chat.postMessage", o.postCall(m.Channel, m.ThreadTS, body, m.Priority)
		it.fresh = m.ThreadTS == ""
	}
	it.lane = laneOf(it.method, m.Channel)
	return o.enqueue(it)
}

// Upload shares f in a thread (or the channel when threadTS is ""), its
// Comment as the message.
func (o *Outbox) Upload(ctx context.Context, channel, threadTS string, f blockkit.File, p Priority) *Delivery {
	r := o.o.Redactor
	name, title, comment, content := r.Redact(f.Name), r.Redact(f.Title), r.Redact(f.Comment), r.Redact(string(f.Content))
	return o.enqueue(&item{ctx: ctx, method: "files.upload", lane: "files.upload", prio: p,
		call: func(ctx context.Context, _ bool) (string, error) {
			_, err := o.o.API.UploadFileContext(ctx, slack.UploadFileParameters{
				Filename: name, Title: title, InitialComment: comment, Content: content, FileSize: len(content),
				Channel: channel, ThreadTimestamp: threadTS,
			})
			if err != nil {
				return "", fmt.Errorf("upload %s: %w", name, err)
			}
			return "", nil
		}})
}

// PublishHome sets user's App Home tab to view (views.publish). A newer
// view for the same user replaces one still queued: only the latest Home
// is worth sending.
func (o *Outbox) PublishHome(ctx context.Context, user string, view slack.HomeTabViewRequest, p Priority) *Delivery {
	view.Blocks.BlockSet = o.redact(blockkit.Message{Blocks: view.Blocks.BlockSet}).Blocks
	return o.enqueue(&item{ctx: ctx, method: "views.publish", lane: "views.publish", prio: p, key: "home/" + user,
		call: func(ctx context.Context, _ bool) (string, error) {
			_, err := o.o.API.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view})
			return "", err
		}})
}

// enqueue stamps a new item and admits it.
func (o *Outbox) enqueue(it *item) *Delivery {
	d := newDelivery()
	it.deliveries = []*Delivery{d}
	it.call = o.fenced(it.method, it.call)
	if _, ok := it.ctx.Deadline(); !ok {
		it.ctx, it.cancel = context.WithTimeout(it.ctx, o.o.MaxWait)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	it.seq, it.version, it.queued, it.index = o.seq, o.seq, o.o.Now(), -1
	o.admitLocked(it)
	return d
}

// admitLocked queues it (new, or back after a failed attempt): coalesced
// with a queued version of its Key, within the bound, unless it can no
// longer be sent.
func (o *Outbox) admitLocked(it *item) {
	if o.closed {
		o.finishLocked(it, "", fmt.Errorf("%s: not sent: %w", it.method, ErrClosed), "closed")
		return
	}
	if other, ok := o.byKey[it.key]; ok && it.key != "" {
		older, newer := other, it
		if other.version > it.version {
			older, newer = it, other
		}
		if older.index >= 0 {
			o.removeLocked(older)
		}
		if newer.resolve && older.fresh {
			if newer.index >= 0 {
				o.removeLocked(newer)
			}
			o.finishLocked(older, "", ErrCancelled, "cancelled")
			o.finishLocked(newer, "", ErrCancelled, "cancelled")
			return
		}
		o.o.Metrics.OutboxDropped(older.prio.String(), "replaced")
		older.release()
		newer.deliveries = append(older.deliveries, newer.deliveries...)
		newer.seq = min(newer.seq, older.seq)
		if older.queued.Before(newer.queued) {
			newer.queued = older.queued
		}
		newer.prio = max(newer.prio, older.prio)
		newer.maybeSent = newer.maybeSent || older.maybeSent
		if newer.index >= 0 {
			heap.Fix(&o.lanes[newer.lane].queue, newer.index)
			return
		}
		it = newer
	}
	if o.queued >= o.o.MaxQueue {
		victim := o.leastUrgentLocked()
		if victim == nil || victim.prio >= it.prio {
			o.finishLocked(it, "", ErrQueueFull, "queue_full")
			return
		}
		o.removeLocked(victim)
		o.finishLocked(victim, "", ErrQueueFull, "queue_full")
	}
	l := o.laneLocked(it.lane, it.method)
	if reason, err := o.unsendableLocked(l, it); err != nil {
		o.finishLocked(it, "", err, reason)
		return
	}
	heap.Push(&l.queue, it)
	o.queued++
	if it.key != "" {
		o.byKey[it.key] = it
	}
	if !l.running {
		l.running = true
		go o.work(l)
	}
}

func (o *Outbox) removeLocked(it *item) {
	heap.Remove(&o.lanes[it.lane].queue, it.index)
	o.queued--
	if o.byKey[it.key] == it {
		delete(o.byKey, it.key)
	}
}

// leastUrgentLocked is the item to drop first: the lowest priority, and
// of those the last sent.
func (o *Outbox) leastUrgentLocked() *item {
	var victim *item
	for _, l := range o.lanes {
		for _, it := range l.queue {
			if victim == nil || it.prio < victim.prio || (it.prio == victim.prio && it.seq > victim.seq) {
				victim = it
			}
		}
	}
	return victim
}

// finishLocked reports the outcome to every Delivery of it. reason labels
// a message that was not sent.
func (o *Outbox) finishLocked(it *item, ts string, err error, reason string) {
	if err == nil {
		o.o.Metrics.OutboxSent(it.prio.String(), o.o.Now().Sub(it.queued))
	} else {
		o.o.Metrics.OutboxDropped(it.prio.String(), reason)
	}
	for _, d := range it.deliveries {
		d.finish(ts, err)
	}
	it.release()
}

// release frees the deadline enqueue gave the item's context.
func (it *item) release() {
	if it.cancel != nil {
		it.cancel()
	}
}

// Close ends the outbox when the bot shuts down: every message still
// queued fails with ErrClosed, and so does every later Send; a call in
// flight is cut and not retried (Slack may have taken it). Without it a
// message queued behind a long pause would hold whoever waits for it
// (shutdown waiting for a command, a command for its answer).
func (o *Outbox) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	o.closeAll()
	for _, l := range o.lanes {
		o.dropUnsendableLocked(l)
	}
}

// depth is what /metrics shows of the queue: messages by priority, and
// when the oldest was sent.
func (o *Outbox) depth() (map[string]int, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	byPrio := map[string]int{}
	for p := PriorityNote; p <= PriorityReply; p++ {
		byPrio[p.String()] = 0
	}
	var oldest time.Time
	for _, l := range o.lanes {
		for _, it := range l.queue {
			byPrio[it.prio.String()]++
			if oldest.IsZero() || it.queued.Before(oldest) {
				oldest = it.queued
			}
		}
	}
	return byPrio, oldest
}

// lane is one rate-limit scope, worked by one goroutine while it has items.
type lane struct {
	name    string
	limiter *rate.Limiter
	// pausedUntil is the end of the Retry-After Slack last announced.
	pausedUntil time.Time
	queue       itemHeap
	running     bool
}

// laneOf names the rate-limit scope of a call: chat.postMessage is limited
// per channel, the other methods per app and workspace.
func laneOf(method, channel string) string {
	if method == "chat.postMessage" {
		return method + " " + channel
	}
	return method
}

func (o *Outbox) laneLocked(name, method string) *lane {
	l, ok := o.lanes[name]
	if !ok {
		l = &lane{name: name, limiter: o.o.Limits.limiter(method)}
		o.lanes[name] = l
	}
	return l
}

// work sends a lane's items one at a time until it is empty.
func (o *Outbox) work(l *lane) {
	for {
		it := o.next(l)
		if it == nil {
			return
		}
		o.attempt(l, it)
	}
}

// next waits out the lane's pause and its limiter, then takes its most
// urgent item: one that came while it waited goes first. nil: the lane is
// empty and its goroutine ends.
func (o *Outbox) next(l *lane) *item {
	for {
		o.mu.Lock()
		o.dropUnsendableLocked(l)
		if len(l.queue) == 0 {
			l.running = false
			o.mu.Unlock()
			return nil
		}
		pause := l.pausedUntil.Sub(o.o.Now())
		wake := pause
		// A message whose deadline comes first fails on time, not when
		// the pause ends.
		for _, it := range l.queue {
			if deadline, ok := it.ctx.Deadline(); ok {
				wake = min(wake, max(time.Until(deadline), time.Millisecond))
			}
		}
		o.mu.Unlock()
		if pause > 0 {
			o.sleep(wake)
			continue
		}
		if d := l.limiter.Reserve().Delay(); d > 0 {
			o.sleep(d)
		}
		o.mu.Lock()
		o.dropUnsendableLocked(l)
		if len(l.queue) == 0 {
			l.running = false
			o.mu.Unlock()
			return nil
		}
		it := l.queue[0]
		o.removeLocked(it)
		o.mu.Unlock()
		return it
	}
}

// sleep waits d or until the outbox is closed.
func (o *Outbox) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-o.shutdown.Done():
	}
}

// dropUnsendableLocked ends the queued items of l that can no longer be
// sent (see unsendableLocked).
func (o *Outbox) dropUnsendableLocked(l *lane) {
	for i := 0; i < len(l.queue); {
		it := l.queue[i]
		if reason, err := o.unsendableLocked(l, it); err != nil {
			o.removeLocked(it)
			o.finishLocked(it, "", err, reason)
			continue
		}
		i++
	}
}

// unsendableLocked is why it, in lane l, can no longer be sent, and the
// metric label of the reason: the outbox is closed, its Send context
// ended, or it is a reply and the lane's pause outlasts its deadline
// (then it fails now rather than at its deadline: nothing would be sent
// before).
func (o *Outbox) unsendableLocked(l *lane, it *item) (reason string, err error) {
	if o.closed {
		return "closed", fmt.Errorf("%s: not sent: %w", it.method, ErrClosed)
	}
	if err := it.ctx.Err(); err != nil {
		return "expired", fmt.Errorf("%s: not sent: %w", it.method, err)
	}
	if deadline, ok := it.ctx.Deadline(); ok && it.prio == PriorityReply && l.pausedUntil.After(deadline) {
		return "rate_limited", fmt.Errorf("%s: not sent: Slack asked to wait until %s, past its deadline %s: %w",
			it.method, l.pausedUntil.UTC().Format(time.TimeOnly), deadline.UTC().Format(time.TimeOnly), ErrRateLimited)
	}
	return "", nil
}

// maxAttempts bounds the attempts at an item that fail with a 5xx or a
// network error; 429s are waited out for as long as the item's context
// lives (at most MaxWait).
const maxAttempts = 5

// maxPause bounds the pause one 429 imposes on a lane. Slack's Retry-After
// is in seconds and, for the methods the bot calls, about a minute at
// most (https://api.slack.com/apis/rate-limits); a longer one comes from
// a broken proxy or a fake, and honouring a Retry-After of 3600 would
// hold every message of the lane for an hour. After maxPause the lane
// asks again: a Slack still closed answers 429 again, one call later.
const maxPause = 2 * time.Minute

// attempt makes one call for it and queues it again when the failure is
// worth another try.
func (o *Outbox) attempt(l *lane, it *item) {
	ctx, cancel := context.WithTimeout(it.ctx, o.o.AttemptTimeout)
	stop := context.AfterFunc(o.shutdown, cancel)
	var ts string
	err := handlers.Safely(func() error {
		var err error
		ts, err = it.call(ctx, it.maybeSent)
		return err
	})
	stop()
	cancel()
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		o.finishLocked(it, ts, nil, "")
		return
	}
	if pe, ok := handlers.AsPanic(err); ok {
		o.o.Metrics.Panicked(it.ctx, o.log, "slack_outbox", pe)
		o.finishLocked(it, "", err, "failed")
		return
	}
	if o.closed {
		o.finishLocked(it, "", fmt.Errorf("%s: %w (the call in flight: %v)", it.method, ErrClosed, err), "closed")
		return
	}
	var fe *fenceError
	if errors.As(err, &fe) {
		o.finishLocked(it, "", err, "fenced") // not Slack's error, and no later attempt would pass
		return
	}
	var rl *slack.RateLimitedError
	limited := errors.As(err, &rl)
	o.o.Metrics.SlackError(it.method, limited)
	if it.ctx.Err() != nil {
		o.finishLocked(it, "", fmt.Errorf("%s: gave up: %w (last error: %v)", it.method, it.ctx.Err(), err), "gave_up")
		return
	}
	var status slack.StatusCodeError
	var netErr net.Error
	switch {
	case limited:
		// The whole lane waits: Slack announced the scope closed, not
		// just this call.
		wait := min(max(rl.RetryAfter, time.Second), maxPause)
		l.pausedUntil = o.o.Now().Add(wait)
		o.o.Metrics.SlackPaused(it.method)
		o.log.WarnContext(it.ctx, "slack rate limit", "method", it.method, "lane", l.name, "retry_after", wait)
	case (errors.As(err, &status) && status.Code >= 500) || errors.As(err, &netErr):
		it.attempts++
		it.maybeSent = true
		if it.attempts >= maxAttempts {
			o.finishLocked(it, "", fmt.Errorf("%s: gave up after %d attempts: %w", it.method, it.attempts, err), "gave_up")
			return
		}
		wait := 200 * time.Millisecond << (it.attempts - 1)
		l.pausedUntil = o.o.Now().Add(wait)
		o.log.WarnContext(it.ctx, "slack call failed, retrying", "method", it.method, "error", err, "in", wait)
	default:
		o.finishLocked(it, "", err, "failed")
		return
	}
	// Who waits for a message the pause outlasts hears now, not at its
	// deadline.
	o.dropUnsendableLocked(l)
	o.admitLocked(it)
}

// itemHeap orders a lane's items: the highest priority first, then the
// first sent.
type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }

func (h itemHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].seq < h[j].seq
}

func (h itemHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *itemHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*h = old[:len(old)-1]
	return it
}
