package slackbot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redisbot/redisbot/bot/access"
	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/requestid"
	"github.com/redisbot/redisbot/handlers"
)

// KeyScanOptions bound the key scans a bot runs.
type KeyScanOptions struct {
	// MaxConcurrent scans run at once on this replica; never two on one
	// instance.
	MaxConcurrent int
	// MaxDuration ends a scan with a sample.
	MaxDuration time.Duration
	// ProgressEvery is how often the progress message is edited (Slack's
	// chat.update allows about one a second per channel).
	ProgressEvery time.Duration
}

// keyScan is one running scan, so a Cancel click can find it.
type keyScan struct {
	id, instance, user string
	cancel             context.CancelFunc

	mu          sync.Mutex
	cancelledBy string
}

// keyScans are the scans running on this replica.
type keyScans struct {
	mu      sync.Mutex
	running map[string]*keyScan
}

// start registers a scan, or returns why it cannot run now: the refusal
// to show.
func (s *keyScans) start(scan *keyScan, limit int) (refusal blockkit.Message, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, other := range s.running {
		if other.instance == scan.instance {
			return blockkit.RenderKeyScanBusy(scan.instance, other.user), false
		}
	}
	if len(s.running) >= limit {
		return blockkit.RenderRefusal(fmt.Sprintf("%d key scans are running, the most this bot runs at once; try again when one finishes.", len(s.running))), false
	}
	if s.running == nil {
		s.running = map[string]*keyScan{}
	}
	s.running[scan.id] = scan
	return blockkit.Message{}, true
}

func (s *keyScans) done(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, id)
}

func (s *keyScans) get(id string) (*keyScan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scan, ok := s.running[id]
	return scan, ok
}

// keysCommand starts a key scan in the background and returns, so the
// worker is free for other commands: a scan of a million keys takes
// minutes. The scan posts a progress message once it is under way, edits
// it as it goes, and finally turns it into the report, with runbooks and
// CSV files in its thread.
func (b *Bot) keysCommand(ctx context.Context, j job, cmd handlers.Command) error {
	name, opts, err := handlers.ParseKeysArgs(cmd.Args)
	if err != nil {
		return b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	if opts.Fast {
		// --fast trades the server's latency for speed: an operator's call.
		if err := b.opts.Access.Require(ctx, j.user, access.Operator); err != nil {
			return b.ephemeral(ctx, j, blockkit.RenderRefusal("--fast lifts the throttle that protects the instance's latency; only operators may use it. Run the scan without --fast."))
		}
	}
	scan := &keyScan{id: randomID(), instance: name, user: j.user}
	if refusal, ok := b.scans.start(scan, b.opts.KeyScans.MaxConcurrent); !ok {
		return b.ephemeral(ctx, j, refusal)
	}
	release, refusal, ok := b.scanLease(ctx, scan)
	if !ok {
		b.scans.done(scan.id)
		return b.ephemeral(ctx, j, refusal)
	}
	// The scan outlives the command's worker but keeps its request id.
	// The scanner ends the scan itself after keys.max_duration; this
	// bound, the same, covers the probe before it too, so the scan never
	// outlives its lease (MaxDuration plus a minute).
	scanCtx, cancel := context.WithTimeout(requestid.With(b.background, requestid.From(ctx)), b.opts.KeyScans.MaxDuration)
	scan.cancel = cancel
	// finish frees the instance for the next scan, here and on the other
	// replicas, as soon as the result is in.
	finish := sync.OnceFunc(func() { b.scans.done(scan.id); release() })
	b.watches.Add(1)
	go func() {
		defer b.watches.Done()
		defer finish()
		defer cancel()
		err := handlers.Safely(func() error { return b.runKeyScan(scanCtx, j, cmd, scan, finish) })
		if pe, ok := handlers.AsPanic(err); ok {
			// The scan is lost, the process is not; the user hears so.
			b.opts.Metrics.Panicked(scanCtx, b.log.With("instance", name, "scan", scan.id, "ref", blockkit.ErrorRef(pe)), "keyscan", pe)
			b.safely(scanCtx, "keyscan", func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(scanCtx), noticeTimeout)
				defer cancel()
				_ = b.ephemeral(ctx, j, blockkit.RenderError(pe))
			})
			return
		}
		if err != nil {
			b.log.ErrorContext(scanCtx, "key scan failed", "instance", name, "scan", scan.id, "error", err)
		}
	}()
	return nil
}

// scanLease makes "one scan per instance" hold across replicas: a lease
// in the shared store, named after the instance, held for the scan's
// longest run (it expires by itself if this replica dies). Without a store
// the local registry is all there is.
func (b *Bot) scanLease(ctx context.Context, scan *keyScan) (release func(), refusal blockkit.Message, ok bool) {
	if b.opts.Store == nil {
		return func() {}, blockkit.Message{}, true
	}
	name, holder := "keyscan/"+scan.instance, scan.id+"/"+scan.user
	lease, ok, err := b.opts.Store.AcquireLease(ctx, name, holder, b.opts.KeyScans.MaxDuration+time.Minute)
	switch {
	case storeDown(err):
		// One scan per instance across replicas cannot be promised.
		return nil, blockkit.RenderRefusal(storeDownText), false
	case err != nil:
		return nil, blockkit.RenderError(fmt.Errorf("key scan of %s: %w", scan.instance, err)), false
	case !ok:
		_, user, _ := strings.Cut(lease.Holder, "/")
		return nil, blockkit.RenderKeyScanBusy(scan.instance, user), false
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.opts.Store.ReleaseLease(ctx, name, holder); err != nil {
			b.log.Warn("release key scan lease", "instance", scan.instance, "error", err)
		}
	}, blockkit.Message{}, true
}

// runKeyScan runs the scan and keeps its progress message current.
func (b *Bot) runKeyScan(ctx context.Context, j job, cmd handlers.Command, scan *keyScan, finish func()) error {
	// Slack calls outlive the scan: a cancelled scan still posts its sample.
	post := context.WithoutCancel(ctx)
	updates := make(chan handlers.KeyScanProgress, 1)
	cmd.Progress = func(p handlers.KeyScanProgress) {
		// Never block the scanner: the newest progress replaces an unsent one.
		for {
			select {
			case updates <- p:
				return
			default:
				select {
				case <-updates:
				default:
				}
			}
		}
	}
	type result struct {
		resp *handlers.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var resp *handlers.Response
		err := handlers.Safely(func() error {
			var err error
			resp, err = b.opts.Router.Handle(ctx, cmd)
			return err
		})
		if pe, ok := handlers.AsPanic(err); ok {
			// Answered below like any failed scan: the internal-error
			// message, whose reference this log line carries.
			b.opts.Metrics.Panicked(ctx, b.log.With("instance", scan.instance, "scan", scan.id, "ref", blockkit.ErrorRef(pe)), "keyscan", pe)
		}
		done <- result{resp, err}
	}()

	var ts string // the progress message, once posted
	var last handlers.KeyScanProgress
	dirty := false
	tick := time.NewTicker(b.opts.KeyScans.ProgressEvery)
	defer tick.Stop()
	show := func() {
		// A progress update Slack cannot take in 30 s (rate limits) is
		// skipped: the next one carries newer numbers anyway.
		ctx, cancel := context.WithTimeout(post, 30*time.Second)
		defer cancel()
		m := blockkit.RenderKeyProgress(scan.instance, scan.id, last, scan.cancelled())
		var err error
		if ts == "" {
			ts, err = b.postIn(ctx, j, m)
		} else {
			err = b.updateMessage(ctx, j.channel, ts, "keyscan/"+scan.id, m)
		}
		if err != nil {
			b.log.WarnContext(post, "key scan progress", "scan", scan.id, "error", err)
		}
		dirty = false
	}
	for {
		select {
		case p := <-updates:
			last, dirty = p, true
			if ts == "" && !p.Done {
				show() // the first progress: the scan is under way
			}
		case <-tick.C:
			b.cancelRequested(post, scan)
			if dirty || scan.cancelled() != "" {
				show()
			}
		case r := <-done:
			// The scan is over: the instance may be scanned again while
			// the report is still being posted, within the time a command
			// has (shutdown waits for it).
			finish()
			post, cancel := context.WithTimeout(post, b.opts.CommandTimeout)
			defer cancel()
			if r.err != nil {
				if ts != "" {
					_ = b.updateMessage(post, j.channel, ts, "keyscan/"+scan.id, blockkit.RenderError(r.err))
				}
				return b.ephemeral(post, j, blockkit.RenderError(r.err))
			}
			reply := blockkit.Render(r.resp, b.opts.Runbooks)
			if ts == "" {
				return b.post(post, j, reply)
			}
			// The progress message becomes the report; the rest goes in
			// its thread.
			if err := b.updateMessage(post, j.channel, ts, "keyscan/"+scan.id, reply.Messages[0]); err != nil {
				return b.undelivered(post, j, fmt.Errorf("key scan report: %w", err))
			}
			thread := j
			thread.threadTS = ts
			return b.post(post, thread, blockkit.Reply{Messages: reply.Messages[1:], Files: reply.Files})
		}
	}
}

// postIn posts a message where the job's replies go and returns its ts.
func (b *Bot) postIn(ctx context.Context, j job, m blockkit.Message) (string, error) {
	return b.postMessage(ctx, j.channel, j.threadTS, m)
}

// cancelScan handles a Cancel click: the user who started the scan or an
// operator may stop it; the keys seen so far are reported as a sample. With
// several replicas the click may reach one that does not run the scan: it
// leaves the request in the shared store, where the running replica finds
// it at its next progress tick and checks the clicker itself.
func (b *Bot) cancelScan(ctx context.Context, j job, click blockkit.Click) error {
	scan, ok := b.scans.get(click.ScanID)
	if !ok {
		if b.opts.Store == nil {
			return b.ephemeral(ctx, j, blockkit.RenderRefusal("That key scan is no longer running."))
		}
		if err := b.opts.Store.SetFact(ctx, scanFacts, cancelFact+click.ScanID, j.user); err != nil {
			if done, aerr := b.answerStoreDown(ctx, j, err, storeDownText); done {
				return aerr
			}
			return b.ephemeral(ctx, j, blockkit.RenderError(fmt.Errorf("cancel the key scan: %w", err)))
		}
		return b.ephemeral(ctx, j, blockkit.RenderNote("Cancel passed on to the redisbot replica running this scan: its message turns into the report of what it saw so far within a few seconds (if you may cancel it)."))
	}
	if !b.mayCancel(ctx, scan, j.user) {
		return b.ephemeral(ctx, j, blockkit.RenderRefusal("Only the user who started this scan or an operator may cancel it."))
	}
	scan.stop(j.user)
	return nil
}

// The shared store's facts of the pseudo-instance scanFacts carry cancel
// requests between replicas, keyed cancelFact + scan id.
const (
	scanFacts  = "_keyscans"
	cancelFact = "cancel/"
)

// cancelRequested checks the shared store for a Cancel click that another
// replica received.
func (b *Bot) cancelRequested(ctx context.Context, scan *keyScan) {
	if b.opts.Store == nil {
		return
	}
	facts, err := b.opts.Store.Facts(ctx, scanFacts)
	if err != nil {
		return
	}
	if user, ok := facts[cancelFact+scan.id]; ok && b.mayCancel(ctx, scan, user) {
		scan.stop(user)
	}
}

func (b *Bot) mayCancel(ctx context.Context, scan *keyScan, user string) bool {
	return user == scan.user || b.opts.Access.Require(ctx, user, access.Operator) == nil
}

// stop cancels the scan once, remembering who asked.
func (s *keyScan) stop(user string) {
	s.mu.Lock()
	if s.cancelledBy == "" {
		s.cancelledBy = user
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *keyScan) cancelled() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelledBy
}
