package alertmanager

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/runbooks"
)

// Limits of one webhook request. Alertmanager sends at most a group's
// alerts (webhook_configs max_alerts bounds it further); a few hundred
// bytes each, so 4 MiB is thousands of alerts and far from a process in
// trouble.
const (
	MaxBody = 4 << 20
	// bodyTimeout bounds reading the body.
	bodyTimeout = 30 * time.Second
	// maxAlerts bounds the alerts of one message that are looked at; the
	// rest are answered as truncated, as Alertmanager itself does.
	maxAlerts = 1000
	// workers bounds the alerts diagnosed at once, across requests: a
	// storm of alerts queues here instead of probing the fleet at once.
	workers = 4
	// alertTimeout bounds one alert's diagnosis and posts; claimStale is
	// longer, so a claim is only taken over from a replica that died.
	alertTimeout = 90 * time.Second
	claimStale   = 2 * time.Minute
	// noticeTTL is how long an episode's notices are kept: an alert that
	// fires for longer gets a second diagnosis after it.
	noticeTTL = 30 * 24 * time.Hour
)

// Annotations that link an alert to its own Slack message, for the
// diagnosis to go in its thread: slack_permalink (a message link, as
// "Copy link" gives it), or slack_ts with slack_channel (the receiver's
// channel when absent).
const (
	AnnotationPermalink = "slack_permalink"
	AnnotationTS        = "slack_ts"
	AnnotationChannel   = "slack_channel"
)

// Router answers commands; handlers.Service implements it.
type Router interface {
	Handle(ctx context.Context, cmd handlers.Command) (*handlers.Response, error)
}

// Poster writes to Slack; the Slack transport implements it.
type Poster interface {
	Post(ctx context.Context, channel string, m blockkit.Message) (ts string, err error)
	Update(ctx context.Context, channel, ts string, m blockkit.Message) error
	Reply(ctx context.Context, channel, threadTS string, m blockkit.Message) error
}

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	// Token is the bearer token Alertmanager sends
	// (http_config.authorization); required.
	Token    string
	Mapper   *Mapper
	Router   Router
	Poster   Poster
	Store    *store.Store
	Runbooks *runbooks.Library
	// ChannelFor is the channel for an Alertmanager receiver's alerts.
	ChannelFor func(receiver string) string
	// Scope is what a channel may see, as for commands typed there: the
	// instance tags (nil: every instance), or an error when the bot does
	// not answer in it (access.channels). Nil: every channel sees all.
	Scope func(channel string) ([]string, error)
	Log   *slog.Logger
	Now   func() time.Time
}

// Receiver serves Alertmanager's webhook.
type Receiver struct {
	o     ReceiverOptions
	token [sha256.Size]byte
	sem   chan struct{}
}

// NewReceiver returns a Receiver.
func NewReceiver(o ReceiverOptions) *Receiver {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Receiver{o: o, token: sha256.Sum256([]byte(o.Token)), sem: make(chan struct{}, workers)}
}

// ServeHTTP takes one webhook message: 401 without the token, 413 over
// MaxBody, 400 for what is not a version "4" message, 500 when an alert
// could not be posted (Alertmanager retries; what was posted is not posted
// again), else 200.
func (rv *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if !rv.authorized(r) {
		// Nothing of the header is logged: it may hold a token, right or
		// nearly right.
		rv.o.Log.WarnContext(r.Context(), "alertmanager webhook: refused a request without the bearer token", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="redisbot"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	// The operations endpoint's server bounds headers, not bodies: a
	// sender trickling its body holds no worker past this.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	msg, status, err := decode(w, r)
	if err != nil {
		rv.o.Log.WarnContext(r.Context(), "alertmanager webhook: bad request", "error", err, "remote", r.RemoteAddr)
		http.Error(w, err.Error(), status)
		return
	}
	// The work outlives Alertmanager's wait: a diagnosis half posted when
	// its request times out is finished, not claimed and left.
	ctx := context.WithoutCancel(r.Context())
	errs := rv.handle(ctx, msg)
	if len(errs) > 0 {
		for _, err := range errs {
			rv.o.Log.WarnContext(ctx, "alertmanager webhook: alert not posted", "receiver", msg.Receiver, "error", err)
		}
		http.Error(w, fmt.Sprintf("%d of %d alerts not posted (logged); retry", len(errs), len(msg.Alerts)), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// authorized compares the bearer token in constant time (of the hashes,
// so not even the token's length leaks).
func (rv *Receiver) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || rv.o.Token == "" {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], rv.token[:]) == 1
}

// decode reads and checks a message; its errors are safe to answer with.
func decode(w http.ResponseWriter, r *http.Request) (Message, int, error) {
	var msg Message
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return msg, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", MaxBody)
	}
	if err != nil {
		return msg, http.StatusBadRequest, errors.New("cannot read the body")
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return msg, http.StatusBadRequest, errors.New("not an Alertmanager webhook message (JSON): " + jsonProblem(err))
	}
	if msg.Version != "4" {
		return msg, http.StatusBadRequest, fmt.Errorf("webhook version %q: only version \"4\" is understood", truncate(msg.Version, 16))
	}
	if len(msg.Alerts) > maxAlerts {
		msg.TruncatedAlerts += uint64(len(msg.Alerts) - maxAlerts)
		msg.Alerts = msg.Alerts[:maxAlerts]
	}
	for i, a := range msg.Alerts {
		switch {
		case a.Status != StatusFiring && a.Status != StatusResolved:
			return msg, http.StatusBadRequest, fmt.Errorf("alerts[%d]: status %q: want firing or resolved", i, truncate(a.Status, 16))
		case !fingerprintPattern.MatchString(a.Fingerprint):
			return msg, http.StatusBadRequest, fmt.Errorf("alerts[%d]: fingerprint must be 1 to 64 letters and digits", i)
		case a.StartsAt.IsZero():
			return msg, http.StatusBadRequest, fmt.Errorf("alerts[%d]: startsAt is missing", i)
		}
	}
	return msg, 0, nil
}

// fingerprintPattern is Alertmanager's fingerprint (16 hex digits), with
// room for other senders; it goes into store keys.
var fingerprintPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// jsonProblem says what is wrong with a body without quoting it.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be %s", typ.Field, typ.Type)
	}
	return "cannot decode"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// handle posts what each alert of msg calls for, a few at a time, and
// returns the failures.
func (rv *Receiver) handle(ctx context.Context, msg Message) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, a := range msg.Alerts {
		rv.sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-rv.sem }()
			ctx, cancel := context.WithTimeout(ctx, alertTimeout)
			defer cancel()
			err := handlers.Safely(func() error { return rv.alert(ctx, msg.Receiver, a) })
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("alert %s (%s): %w", a.Labels["alertname"], a.Fingerprint, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// noticeKey names one status of one firing episode: Alertmanager's
// fingerprint is the alert's label set, startsAt tells its episodes apart.
func noticeKey(a Alert, status string) string {
	return "alertmanager/" + a.Fingerprint + "/" + a.StartsAt.UTC().Format(time.RFC3339Nano) + "/" + status
}

// alert posts the diagnosis of a firing alert, or the update of a resolved
// one, once.
func (rv *Receiver) alert(ctx context.Context, receiver string, a Alert) error {
	instance, tried := rv.o.Mapper.Map(a.Labels)
	view := blockkit.ExternalAlert{
		Source: "Alertmanager", Name: a.Labels["alertname"], Status: a.Status, Receiver: receiver,
		Instance: instance, Severity: a.Labels["severity"], Summary: a.Annotations["summary"],
		StartsAt: a.StartsAt, EndsAt: a.EndsAt,
	}
	if view.Name == "" {
		view.Name = "(no alertname)"
	}
	log := rv.o.Log.With("alertname", view.Name, "fingerprint", a.Fingerprint, "status", a.Status, "instance", instance)
	key := noticeKey(a, a.Status)
	var firing store.Notice
	if a.Status == StatusResolved {
		var err error
		firing, err = rv.o.Store.Notice(ctx, noticeKey(a, StatusFiring))
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Nothing was posted when it fired (before this bot took
			// webhooks, or expired): nothing to update.
			return nil
		case err != nil:
			return err
		case firing.State != store.NoticePosted:
			return errors.New("its diagnosis is still being posted")
		}
	}
	claimed, err := rv.o.Store.ClaimNotice(ctx, key, claimStale, noticeTTL)
	if err != nil || !claimed {
		return err // !claimed: posted already, or being posted by another replica
	}
	n, err := rv.post(ctx, receiver, a, view, tried, firing)
	if err != nil {
		// Given up, so Alertmanager's retry posts it.
		if derr := rv.o.Store.DeleteNotice(ctx, key); derr != nil {
			log.WarnContext(ctx, "give up the claim", "error", derr)
		}
		return err
	}
	n.Key, n.State, n.ClaimedAt = key, store.NoticePosted, rv.o.Now()
	if err := rv.o.Store.PutNotice(ctx, n, noticeTTL); err != nil {
		// Posted but not recorded: a redelivery after the claim goes
		// stale would post again. Say so.
		log.WarnContext(ctx, "alert posted but not recorded", "error", err)
		return nil
	}
	log.InfoContext(ctx, "alertmanager alert posted", "channel", n.Channel)
	return nil
}

// post writes the alert's message(s) and returns where they went.
func (rv *Receiver) post(ctx context.Context, receiver string, a Alert, view blockkit.ExternalAlert, tried []string, firing store.Notice) (store.Notice, error) {
	now := rv.o.Now()
	if a.Status == StatusResolved {
		n := store.Notice{Channel: firing.Channel, ThreadTS: firing.ThreadTS}
		if firing.Fields["unmapped"] != "" {
			return n, nil // nothing was diagnosed: nothing to update
		}
		thread := firing.ThreadTS
		if firing.MessageTS != "" {
			thread = firing.MessageTS
			m, err := blockkit.RenderExternalResolved(view, []byte(firing.Fields["message"]), now)
			if err != nil {
				return n, err
			}
			if err := rv.o.Poster.Update(ctx, firing.Channel, firing.MessageTS, m); err != nil {
				return n, fmt.Errorf("update the diagnosis: %w", err)
			}
		}
		return n, rv.o.Poster.Reply(ctx, firing.Channel, thread, blockkit.RenderExternalNote(view, now))
	}

	channel, thread := rv.o.ChannelFor(receiver), ""
	if channel == "" {
		return store.Notice{}, fmt.Errorf("no channel for receiver %q", receiver)
	}
	scope, err := rv.scope(channel)
	if err != nil {
		return store.Notice{}, fmt.Errorf("receiver %q's channel: %w", receiver, err)
	}
	if c, ts, ok := threadLink(a.Annotations); ok {
		// The linked channel must be one the bot answers in, and its scope
		// applies; else the diagnosis goes to the receiver's channel.
		if c == "" {
			thread = ts
		} else if s, err := rv.scope(c); err == nil {
			channel, thread, scope = c, ts, s
		}
	}
	var reply blockkit.Reply
	fields := map[string]string{"alertname": view.Name}
	if view.Instance == "" {
		reply.Messages = []blockkit.Message{blockkit.RenderExternalUnmapped(view, tried)}
		fields["unmapped"] = "yes"
	} else {
		resp, err := rv.o.Router.Handle(ctx, handlers.Command{Verb: "diagnose", Args: []string{view.Instance}, Scope: scope})
		diag := blockkit.Reply{Messages: []blockkit.Message{blockkit.RenderError(err)}}
		if err == nil {
			diag = blockkit.Render(resp, rv.o.Runbooks)
		}
		reply = blockkit.RenderExternalDiagnosis(view, diag)
	}
	n := store.Notice{Channel: channel, ThreadTS: thread, Fields: fields}
	first := reply.Messages[0]
	if thread != "" {
		if err := rv.o.Poster.Reply(ctx, channel, thread, first); err != nil {
			return n, fmt.Errorf("post in the alert's thread: %w", err)
		}
	} else {
		ts, err := rv.o.Poster.Post(ctx, channel, first)
		if err != nil {
			return n, fmt.Errorf("post the diagnosis: %w", err)
		}
		n.MessageTS, thread = ts, ts
		if view.Instance != "" {
			enc, err := blockkit.EncodeMessage(first)
			if err != nil {
				return n, err
			}
			fields["message"] = string(enc)
		}
	}
	for _, m := range reply.Messages[1:] {
		if err := rv.o.Poster.Reply(ctx, channel, thread, m); err != nil {
			return n, fmt.Errorf("post the rest of the diagnosis: %w", err)
		}
	}
	return n, nil
}

// Slack ids and timestamps as the link annotations must hold them.
var (
	channelPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	tsPattern      = regexp.MustCompile(`^[0-9]{10}\.[0-9]{6}$`)
	// permalinkPath is /archives/<channel>/p<ts without its dot>.
	permalinkPath = regexp.MustCompile(`^/archives/([CGD][A-Z0-9]{2,})/p([0-9]{10})([0-9]{6})$`)
)

// threadLink reads the annotations that link an alert to its Slack message:
// a permalink, or slack_ts with an optional slack_channel. What does not
// look like Slack's ids is ignored (the diagnosis gets a message of its
// own).
func threadLink(ann map[string]string) (channel, ts string, ok bool) {
	if link := ann[AnnotationPermalink]; link != "" {
		u, err := url.Parse(link)
		if err == nil && u.Scheme == "https" {
			if m := permalinkPath.FindStringSubmatch(u.Path); m != nil {
				ts := m[2] + "." + m[3]
				// A reply's link names its thread's parent.
				if parent := u.Query().Get("thread_ts"); tsPattern.MatchString(parent) {
					ts = parent
				}
				return m[1], ts, true
			}
		}
	}
	ts = ann[AnnotationTS]
	if !tsPattern.MatchString(ts) {
		return "", "", false
	}
	if c := ann[AnnotationChannel]; c != "" {
		if !channelPattern.MatchString(c) {
			return "", "", false
		}
		channel = c
	}
	return channel, ts, true
}

// scope is what channel may see (Scope).
func (rv *Receiver) scope(channel string) ([]string, error) {
	if rv.o.Scope == nil {
		return nil, nil
	}
	return rv.o.Scope(channel)
}
