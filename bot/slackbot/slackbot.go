// Package slackbot is the Slack transport: it takes Socket Mode envelopes
// (the /redis slash command, @redisbot mentions, button clicks), acks each
// one at once, before any Redis I/O, and processes it in a bounded worker
// pool: access check, router, Block Kit rendering, posting. A command that
// waits on a slow or dead instance runs in a slow lane of its own
// (lanes.go), so it does not hold the workers other commands need.
package slackbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/outbox"
	"github.com/redisbot/redisbot/bot/requestid"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
	"github.com/redisbot/redisbot/runbooks"
)

// Router answers commands; handlers.Service implements it.
type Router interface {
	Handle(ctx context.Context, cmd handlers.Command) (*handlers.Response, error)
}

// Options wires a Bot.
type Options struct {
	// Outbox sends everything the bot posts (see send.go). Run closes it
	// when its shutdown timeout expires.
	Outbox   *outbox.Outbox
	Socket   *socketmode.Client
	Router   Router
	Access   *access.Policy
	Runbooks *runbooks.Library
	// APIURL is the Web API base the clients use; response_url posts are
	// only sent to Slack's own hosts or to this one.
	APIURL string
	// Workers bounds concurrent commands; Queue bounds those waiting.
	Workers, Queue int
	// The slow lane (lanes.go): a command still running after SlowAfter,
	// or one about an instance that does not answer, runs there, at most
	// SlowWorkers at once and SlowQueue waiting, so that it does not hold
	// one of the Workers (slack.slow_workers, slack.slow_queue,
	// slack.slow_after; 0 takes the same defaults as the config).
	SlowWorkers, SlowQueue int
	SlowAfter              time.Duration
	// ThreadReplies puts the continuation of a long reply in a thread under
	// its first message instead of the channel.
	ThreadReplies bool
	// ShutdownTimeout bounds how long Run waits for in-flight commands,
	// key scans and defrag watches after its context is cancelled.
	ShutdownTimeout time.Duration
	// CommandTimeout bounds one command, posting included.
	CommandTimeout time.Duration
	Logger         *slog.Logger
	Now            func() time.Time

	// The remediation flow; nil disables remediation verbs and buttons.
	Workflow *approvals.Workflow
	Store    *store.Store
	Resolver Resolver
	// Defrag provides the instance handle the defrag watcher uses after an
	// approved defrag-on (remedy.Executor implements it).
	Defrag interface {
		Target(inst handlers.Instance) (remedy.DefragTarget, func() error)
	}
	DefragWatch remedy.WatchConfig
	// Metrics records commands and ack latency; nil records nothing.
	Metrics *metrics.Metrics
	// Dedupe, when set, records handled envelope ids in the shared store so
	// a re-delivery to another replica is not handled twice.
	Dedupe interface {
		Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	}
	// Fleet gives the App Home its fleet from the last sweep; nil shows
	// none.
	Fleet Fleet
	// KeyScans bounds /redis keys.
	KeyScans KeyScanOptions
	// Redactor removes every configured secret from remediation outcomes
	// before they are stored (the outbox has its own for what it sends);
	// nil keeps text as rendered.
	Redactor *handlers.Redactor
}

// Bot is a running Slack transport.
type Bot struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // envelope ids handled recently

	// background is cancelled when the bot stops: long watches (defrag)
	// end with it, turning defrag off.
	background context.Context
	watches    sync.WaitGroup

	connected atomic.Bool

	scans keyScans
	lane  *slowLane
	// commands has every command's goroutine, whichever lane it runs in;
	// workCtx is their context (Run).
	commands sync.WaitGroup
	workCtx  context.Context
}

// Connected reports whether the Socket Mode connection is up (/readyz).
func (b *Bot) Connected() bool { return b.connected.Load() }

// New returns a Bot.
func New(o Options) *Bot {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.SlowWorkers <= 0 {
		o.SlowWorkers = 32
	}
	if o.SlowQueue <= 0 {
		o.SlowQueue = 64
	}
	if o.SlowAfter <= 0 {
		// Several times a healthy probe and reply, short enough that a
		// burst about dead instances holds the main workers only briefly.
		o.SlowAfter = 500 * time.Millisecond
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 2 * time.Minute
	}
	if o.KeyScans.MaxConcurrent <= 0 {
		o.KeyScans.MaxConcurrent = 2
	}
	if o.KeyScans.MaxDuration <= 0 {
		o.KeyScans.MaxDuration = 30 * time.Minute
	}
	if o.KeyScans.ProgressEvery <= 0 {
		o.KeyScans.ProgressEvery = 3 * time.Second
	}
	if o.DefragWatch.Interval <= 0 {
		o.DefragWatch = remedy.DefaultWatchConfig()
	}
	return &Bot{opts: o, log: o.Logger, now: o.Now, seen: map[string]time.Time{}, background: context.Background(),
		lane: newSlowLane(o.SlowWorkers, o.SlowQueue)}
}

// kind of work an envelope carries.
type kind int

const (
	kindCommand kind = iota // /redis slash command
	kindMention             // @redisbot in a channel
	kindClick               // a button in one of our messages
	kindHome                // the App Home tab opened
)

// job is an acked envelope converted to what the workers need.
type job struct {
	kind kind
	// instance is the instance the job waits on (instanceOf), or "".
	instance string
	// timedOut is when a probe of instance last timed out, if that sent
	// the job to the slow lane.
	timedOut    time.Time
	envelope    string
	channel     string
	user        string
	text        string
	responseURL string
	// threadTS is where replies go: the mention's thread, or the thread of
	// the clicked message.
	threadTS string
	action   slack.BlockAction
	received time.Time
}

// Run connects to Slack and serves until ctx is cancelled; then it stops
// taking envelopes, lets in-flight commands, key scans and defrag watches
// finish (bounded by ShutdownTimeout: then it cancels the commands and
// closes the outbox, so nothing waits on Slack any longer) and returns
// nil. It returns an error only when Slack
// refuses the connection for good (bad token, app without Socket Mode).
func (b *Bot) Run(ctx context.Context) error {
	b.background = ctx // before any worker can start a watch
	jobs := make(chan job, b.opts.Queue)
	// Work outlives ctx so SIGTERM lets commands finish; cancelWork cuts it
	// when the shutdown timeout expires.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	b.workCtx = workCtx // before any command can start
	var wg sync.WaitGroup
	for range b.opts.Workers {
		wg.Go(func() {
			for j := range jobs {
				b.work(workCtx, j)
			}
		})
	}

	sockCtx, cancelSock := context.WithCancel(ctx)
	defer cancelSock()
	sockErr := make(chan error, 1)
	go func() {
		err := handlers.Safely(func() error { return b.opts.Socket.RunContext(sockCtx) })
		if pe, ok := handlers.AsPanic(err); ok {
			// No connection without it: Run ends with the error and serve
			// exits, for its supervisor to restart it.
			b.opts.Metrics.Panicked(ctx, b.log, "slack_socket", pe)
		}
		sockErr <- err
	}()

	expiry := time.NewTicker(30 * time.Second)
	defer expiry.Stop()
	var runErr error
loop:
	for {
		select {
		case <-expiry.C:
			b.goSafely(workCtx, "approval_expiry", func() { b.expireStale(workCtx) })
		case <-ctx.Done():
			break loop
		case err := <-sockErr:
			if ctx.Err() == nil {
				runErr = fmt.Errorf("slack socket mode: %w", err)
			}
			break loop
		case evt := <-b.opts.Socket.Events:
			// This loop is the bot: a panic while taking one envelope
			// loses that envelope, not the loop.
			b.safely(ctx, "slack_dispatch", func() { b.dispatch(evt, jobs) })
		}
	}
	cancelSock()
	close(jobs)
	b.log.Info("stopping: waiting for in-flight commands", "timeout", b.opts.ShutdownTimeout)
	done := make(chan struct{})
	// The workers first: until they end, they may move commands to the
	// slow lane. Key scans and defrag watches run on ctx, so they are
	// already ending; what they still post is bounded like a command's.
	go func() { wg.Wait(); b.commands.Wait(); b.watches.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(b.opts.ShutdownTimeout):
		// A command, a scan or a watch still waiting is waiting on Slack
		// (a long Retry-After) or on an instance: cancel the commands and
		// end every wait in the outbox, or shutdown would wait with them.
		b.log.Warn("shutdown timeout: cancelling unfinished commands and unsent messages")
		cancelWork()
		b.opts.Outbox.Close()
		<-done
	}
	return runErr
}

// dispatch acks an envelope and hands it to the workers. It never blocks on
// work: the ack must reach Slack within its 3-second window.
func (b *Bot) dispatch(evt socketmode.Event, jobs chan<- job) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.connected.Store(false)
		b.log.Info("connecting to slack")
		return
	case socketmode.EventTypeConnected:
		b.connected.Store(true)
		b.log.Info("connected to slack")
		return
	case socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		b.log.Warn("slack connection error", "error", fmt.Sprint(evt.Data))
		return
	case socketmode.EventTypeDisconnect:
		b.connected.Store(false)
		b.log.Info("slack asked to reconnect")
		return
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("slack rejected the app token")
		return
	case socketmode.EventTypeHello, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		if evt.Type != socketmode.EventTypeHello {
			b.log.Warn("slack socket error", "type", evt.Type, "error", fmt.Sprint(evt.Data))
		}
		return
	}
	if evt.Request == nil {
		return
	}
	arrived := b.now()
	if err := b.opts.Socket.Ack(*evt.Request); err != nil {
		b.log.Warn("ack failed", "envelope", evt.Request.EnvelopeID, "error", err)
	}
	b.opts.Metrics.Ack(b.now().Sub(arrived))
	if b.duplicate(evt.Request.EnvelopeID) {
		b.log.Debug("duplicate envelope", "envelope", evt.Request.EnvelopeID)
		return
	}
	j, ok := toJob(evt)
	if !ok {
		return
	}
	j.envelope, j.received, j.instance = evt.Request.EnvelopeID, b.now(), instanceOf(j)
	b.admit(j, jobs)
}

func toJob(evt socketmode.Event) (job, bool) {
	switch data := evt.Data.(type) {
	case slack.SlashCommand:
		return job{kind: kindCommand, channel: data.ChannelID, user: data.UserID, text: data.Text, responseURL: data.ResponseURL}, true
	case slackevents.EventsAPIEvent:
		switch m := data.InnerEvent.Data.(type) {
		case *slackevents.AppMentionEvent:
			if m.BotID != "" {
				return job{}, false
			}
			thread := m.ThreadTimeStamp
			if thread == "" {
				thread = m.TimeStamp
			}
			return job{kind: kindMention, channel: m.Channel, user: m.User, text: stripMentions(m.Text), threadTS: thread}, true
		case *slackevents.MessageEvent:
			// A direct message reads as a mention. Edits, joins and the
			// bot's own answers (subtypes, a bot id) are not questions.
			if m.ChannelType != "im" || m.BotID != "" || m.SubType != "" || m.User == "" {
				return job{}, false
			}
			return job{kind: kindMention, channel: m.Channel, user: m.User, text: stripMentions(m.Text), threadTS: m.ThreadTimeStamp}, true
		case *slackevents.AppHomeOpenedEvent:
			if m.Tab != "home" {
				return job{}, false
			}
			return job{kind: kindHome, user: m.User}, true
		}
	case slack.InteractionCallback:
		if data.Type != slack.InteractionTypeBlockActions || len(data.ActionCallback.BlockActions) == 0 {
			return job{}, false
		}
		thread := data.Message.ThreadTimestamp
		if thread == "" {
			thread = data.Message.Timestamp
		}
		return job{kind: kindClick, channel: data.Channel.ID, user: data.User.ID, responseURL: data.ResponseURL,
			threadTS: thread, action: *data.ActionCallback.BlockActions[0]}, true
	}
	return job{}, false
}

// metricVerb is a bounded label: a known verb, "click", "home", or "unknown" (what
// users type must not become a metric series).
func metricVerb(j job) string {
	switch j.kind {
	case kindClick:
		return "click"
	case kindHome:
		return "home"
	}
	cmd, err := handlers.ParseCommand(j.text)
	if err == nil {
		if v, ok := handlers.LookupVerb(cmd.Verb); ok {
			return v.Name
		}
	}
	return "unknown"
}

// stripMentions removes the leading "<@U123>" that an app mention starts with.
func stripMentions(text string) string {
	text = strings.TrimSpace(text)
	for strings.HasPrefix(text, "<@") {
		end := strings.IndexByte(text, '>')
		if end < 0 {
			break
		}
		text = strings.TrimSpace(text[end+1:])
	}
	return text
}

// duplicate records an envelope id and reports whether it was seen in the
// last 15 minutes: Slack re-delivers envelopes whose ack it did not get.
func (b *Bot) duplicate(id string) bool {
	if b.opts.Dedupe != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		first, err := b.opts.Dedupe.Once(ctx, "envelope/"+id, 15*time.Minute)
		if err == nil {
			return !first
		}
		// Said, and counted: until the store answers, a redelivery that
		// reaches another replica is handled there too.
		b.opts.Metrics.DedupeLocal()
		b.log.Warn("shared envelope dedup unavailable (state store): deduplicating on this replica only", "envelope", id, "error", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if _, ok := b.seen[id]; ok {
		return true
	}
	b.seen[id] = now
	if len(b.seen) > 1000 {
		for k, t := range b.seen {
			if now.Sub(t) > 15*time.Minute {
				delete(b.seen, k)
			}
		}
	}
	return false
}

// Outcomes of a command, the outcome label of redisbot_commands_total.
const (
	outcomeOK         = "ok"          // answered
	outcomeRefused    = "refused"     // channel, role or policy said no
	outcomeUsage      = "usage"       // bad arguments, unknown verb or instance, stale button
	outcomeProbeError = "probe_error" // answered, but the probe of at least one instance failed
	outcomeInternal   = "internal"    // a panic or an error of the bot's own
)

func (b *Bot) process(ctx context.Context, j job) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.CommandTimeout)
	defer cancel()
	// Every log line written for this command carries its request id.
	ctx = requestid.With(ctx, requestid.New())
	log := b.log.With("envelope", j.envelope, "channel", j.channel, "user", j.user)
	start := b.now()
	var outcome string
	err := handlers.Safely(func() error {
		var err error
		switch j.kind {
		case kindCommand, kindMention:
			outcome, err = b.command(ctx, j)
		case kindClick:
			outcome, err = b.click(ctx, j)
		case kindHome:
			outcome, err = b.home(ctx, j)
		}
		return err
	})
	verb := metricVerb(j)
	if pe, ok := handlers.AsPanic(err); ok {
		// The command is lost, the worker and the process are not. The
		// user gets the internal-error answer; its reference is logged
		// next to the stack.
		b.opts.Metrics.Panicked(ctx, log.With("ref", blockkit.ErrorRef(pe)), "slack_command", pe)
		b.opts.Metrics.Command(verb, outcomeInternal, b.now().Sub(start))
		b.safely(ctx, "slack_command", func() {
			if err := b.ephemeral(ctx, j, blockkit.RenderError(pe)); err != nil {
				log.WarnContext(ctx, "internal-error answer not sent", "error", err)
			}
		})
		return
	}
	if storeDown(err) {
		// Whatever needed the store, the user hears why nothing happened.
		b.opts.Metrics.Command(verb, outcomeUnavailable, b.now().Sub(start))
		if _, err := b.answerStoreDown(ctx, j, err, storeDownText); err != nil {
			log.WarnContext(ctx, "store-unavailable answer not sent", "error", err)
		}
		return
	}
	if err != nil {
		b.opts.Metrics.Command(verb, outcomeInternal, b.now().Sub(start))
		log.ErrorContext(ctx, "command failed", "error", err, "ref", blockkit.ErrorRef(err), "duration", b.now().Sub(start))
		return
	}
	b.opts.Metrics.Command(verb, outcome, b.now().Sub(start))
	log.InfoContext(ctx, "command done", "text", j.text, "action", j.action.ActionID, "outcome", outcome, "duration", b.now().Sub(start))
}

// safely runs f; a panic in it is logged and counted under where instead
// of ending the goroutine, and with it the process.
func (b *Bot) safely(ctx context.Context, where string, f func()) {
	if pe, ok := handlers.AsPanic(handlers.Safely(func() error { f(); return nil })); ok {
		b.opts.Metrics.Panicked(ctx, b.log, where, pe)
	}
}

// goSafely runs f in a goroutine of its own through safely: every
// goroutine the bot starts does, since a panic nobody recovers in any
// goroutine ends the whole process.
func (b *Bot) goSafely(ctx context.Context, where string, f func()) {
	go b.safely(ctx, where, f)
}

// errorOutcome classifies what the router or the approval flow refused to
// do: the user's mistake, or the bot's.
func errorOutcome(err error) string {
	var refusal *access.Refusal
	switch {
	case errors.As(err, &refusal):
		return outcomeRefused
	case handlers.IsUsage(err), errors.Is(err, handlers.ErrUnknownInstance):
		return outcomeUsage
	}
	return outcomeInternal
}

// reportsOutcome classifies an answer by its reports: a probe that failed
// inside the bot (class internal) is the bot's failure, any other failed
// probe is the instance's.
func reportsOutcome(reports []*handlers.Report) string {
	outcome := outcomeOK
	for _, r := range reports {
		switch {
		case r.Failed() && r.Error.Class == handlers.ClassInternal:
			return outcomeInternal
		case r.Failed():
			outcome = outcomeProbeError
		}
	}
	return outcome
}

// answered is the outcome of a path that answers the user itself: ok when
// its answer went out, internal when it failed.
func answered(err error) (string, error) {
	if err != nil {
		return outcomeInternal, err
	}
	return outcomeOK, nil
}

// allowed checks the channel and the viewer role and returns the channel's
// instance scope, or posts the refusal and returns the outcome of the
// command (refused, or internal when the check itself failed) and false.
func (b *Bot) allowed(ctx context.Context, j job) ([]string, string, bool) {
	ch, err := b.opts.Access.Channel(j.channel)
	if err == nil {
		err = b.opts.Access.Require(ctx, j.user, access.Viewer)
	}
	var refusal *access.Refusal
	if errors.As(err, &refusal) {
		b.ephemeral(ctx, j, blockkit.RenderRefusal(refusal.Reason))
		return nil, outcomeRefused, false
	}
	if err != nil {
		b.ephemeral(ctx, j, blockkit.RenderError(err))
		return nil, outcomeInternal, false
	}
	return ch.Tags, "", true
}

// command answers a slash command or a mention and returns its outcome.
// A mention may be free text, read in the channel's scope (mention.go); a
// slash command is a verb and its arguments.
func (b *Bot) command(ctx context.Context, j job) (string, error) {
	if j.kind == kindMention {
		return b.mention(ctx, j)
	}
	// Malformed input is answered before access checks or any Redis I/O.
	cmd, err := handlers.ParseCommand(j.text)
	if err != nil {
		return outcomeUsage, b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	scope, outcome, ok := b.allowed(ctx, j)
	if !ok {
		return outcome, nil
	}
	return b.run(ctx, j, cmd, scope)
}

// run answers a command the user may send from this channel: the verb
// table says whether Slack runs the verb and with which role, the router
// answers it, and render shows the answer.
func (b *Bot) run(ctx context.Context, j job, cmd handlers.Command, scope []string) (string, error) {
	cmd.Scope = scope
	if v, known := handlers.LookupVerb(cmd.Verb); known {
		if v.Where&handlers.InSlack == 0 {
			return outcomeUsage, b.ephemeral(ctx, j, blockkit.RenderError(v.NotHere(cmd.Args)))
		}
		// allowed checked the viewer role every verb needs.
		if v.Role != handlers.RoleViewer {
			if err := b.opts.Access.Require(ctx, j.user, roles[v.Role]); err != nil {
				return errorOutcome(err), b.refuse(ctx, j, err)
			}
		}
		if v.Long {
			// A key scan answers from the background, usage errors and
			// refusals included.
			return answered(b.keysCommand(ctx, j, cmd))
		}
	}
	b.timeoutNote(ctx, j)
	cmd.Changes = changes{b: b, j: j, scope: scope}
	resp, err := b.handle(ctx, cmd)
	if resp != nil && resp.Answered {
		// The approval flow and silences answer refusals and usage
		// errors themselves; err says only whether they could.
		return answered(err)
	}
	if storeDown(err) {
		return outcomeInternal, err // process says why nothing happened
	}
	if err != nil {
		return errorOutcome(err), b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	if err := b.render(ctx, j, resp); err != nil {
		return outcomeInternal, err
	}
	return reportsOutcome(resp.Reports), nil
}

// handle has the router answer cmd; the slow lane learns from its
// reports which instances do not answer.
func (b *Bot) handle(ctx context.Context, cmd handlers.Command) (*handlers.Response, error) {
	resp, err := b.opts.Router.Handle(ctx, cmd)
	if resp != nil {
		b.lane.saw(resp.Reports, b.now())
	}
	return resp, err
}

// click answers a button and returns its outcome.
func (b *Bot) click(ctx context.Context, j job) (string, error) {
	click, err := blockkit.ParseClick(j.action.ActionID, j.action.Value)
	if err != nil {
		return outcomeUsage, b.ephemeral(ctx, j, blockkit.RenderError(&handlers.UsageError{Msg: "this button is not one redisbot understands: " + err.Error()}))
	}
	scope, outcome, ok := b.allowed(ctx, j)
	if !ok {
		return outcome, nil
	}
	switch click.Kind {
	case blockkit.ActionRunbook:
		// The runbook is rendered with fresh numbers: the thread shows the
		// state now, not when the first message was posted.
		resp, err := b.handle(ctx, handlers.Command{Verb: "diagnose", Args: []string{click.Runbook.Instance}, Scope: scope})
		if err != nil {
			return errorOutcome(err), b.ephemeral(ctx, j, blockkit.RenderError(err))
		}
		reply, err := blockkit.RenderRunbook(resp.Reports[0], click.Runbook.Finding, b.opts.Runbooks)
		if err != nil {
			return outcomeUsage, b.ephemeral(ctx, j, blockkit.RenderError(err))
		}
		if err := b.post(ctx, j, reply); err != nil {
			return outcomeInternal, err
		}
		return reportsOutcome(resp.Reports), nil
	case blockkit.ActionRequest:
		if !b.remediationEnabled() {
			return outcomeRefused, b.ephemeral(ctx, j, blockkit.RenderRefusal("Remediations are not enabled on this bot (no store configured)."))
		}
		params := map[string]string{}
		if click.Set.Name != "" {
			params["setting"], params["value"] = click.Set.Name, click.Set.Value
		}
		return answered(b.request(ctx, j, remedy.Request{Instance: click.Instance, Action: click.Action, Params: params}, scope))
	case blockkit.ActionApprove, blockkit.ActionReject:
		return answered(b.decide(ctx, j, click))
	case blockkit.ActionRevert:
		return answered(b.revert(ctx, j, click, scope))
	case blockkit.ActionSilence:
		return answered(b.snooze(ctx, j, click, scope))
	case blockkit.ActionAck:
		return answered(b.ack(ctx, j, click, scope))
	case blockkit.ActionAckGroup:
		return answered(b.ackGroup(ctx, j, click, scope))
	case blockkit.ActionDiagnose:
		// A diagnosis now, in the thread of the alert or fleet message.
		resp, err := b.handle(ctx, handlers.Command{Verb: "diagnose", Args: []string{click.Instance}, Scope: scope})
		if err != nil {
			return errorOutcome(err), b.ephemeral(ctx, j, blockkit.RenderError(err))
		}
		if err := b.post(ctx, j, blockkit.Render(resp, b.opts.Runbooks)); err != nil {
			return outcomeInternal, err
		}
		return reportsOutcome(resp.Reports), nil
	case blockkit.ActionCancelScan:
		return answered(b.cancelScan(ctx, j, click))
	}
	return outcomeUsage, b.ephemeral(ctx, j, blockkit.RenderError(&handlers.UsageError{Msg: "unknown button " + click.Kind}))
}

// trustedHookURL accepts response_urls on Slack's hosts, or on the host of
// the configured API (a local Slack in tests, GovSlack in production), so a
// forged envelope cannot make the bot post anywhere else.
func (b *Bot) trustedHookURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return false
	}
	host := u.Hostname()
	if u.Scheme == "https" && (host == "hooks.slack.com" || host == "hooks.slack-gov.com") {
		return true
	}
	api, err := url.Parse(b.opts.APIURL)
	return err == nil && api.Host == u.Host && api.Scheme == u.Scheme
}
