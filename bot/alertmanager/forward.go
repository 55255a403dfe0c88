package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/store"
)

// sendTimeout bounds one POST to Alertmanager.
const sendTimeout = 10 * time.Second

// ForwarderOptions configure a Forwarder.
type ForwarderOptions struct {
	// URL is Alertmanager's base URL (http://alertmanager:9093/); the
	// alerts go to <URL>api/v2/alerts.
	URL string
	// Client sends the requests; nil is a client with no timeout of its
	// own (each send has sendTimeout).
	Client *http.Client
	// Resend is how often a firing alert is sent again. Each send says the
	// alert ends after four times the larger of Resend and Every (as
	// Prometheus does), so that Alertmanager keeps it firing between
	// sends, and resolves it on its own if the bot stops.
	Resend time.Duration
	// Every is how often sweeps run, that is how often Forward is called.
	Every time.Duration
	// RunbookURL is the runbook_url annotation of a finding; nil or ""
	// leaves it out.
	RunbookURL func(finding string) string
	Log        *slog.Logger
}

// Forwarder sends the sweep's firing alerts to Alertmanager's API.
type Forwarder struct {
	o   ForwarderOptions
	api string

	mu sync.Mutex
	// sent are the alerts sent as firing, by instance and finding. It is
	// this process's memory: a replica that takes over the sweeps sends
	// everything firing at once, and what it never sent ends on the
	// endsAt its predecessor gave.
	sent map[string]sentAlert
}

// sentAlert is an alert as last sent, and when.
type sentAlert struct {
	alert PostableAlert
	at    time.Time
}

// NewForwarder returns a Forwarder, or an error for a URL it cannot use.
func NewForwarder(o ForwarderOptions) (*Forwarder, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager: url must be an absolute http(s) URL")
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Resend <= 0 {
		o.Resend = time.Minute
	}
	return &Forwarder{o: o, api: strings.TrimSuffix(o.URL, "/") + "/api/v2/alerts", sent: map[string]sentAlert{}}, nil
}

// Forward brings Alertmanager up to date with the sweep's alerts, as saved
// at the end of a sweep: an alert that starts firing, changes (severity,
// summary) or was last sent Resend ago is sent with an endsAt ahead; one
// that stopped firing is sent with endsAt now, which resolves it. Only
// firing alerts count: pending ones have not fired yet, resolved ones are
// over. One request per call; when it fails, the next call sends all of it
// again.
func (f *Forwarder) Forward(ctx context.Context, list []store.Alert, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	valid := 4 * max(f.o.Resend, f.o.Every)
	var batch []PostableAlert
	next := map[string]sentAlert{}
	for _, a := range list {
		if a.State != alerts.StateFiring {
			continue
		}
		key := a.Instance + "\x00" + a.Finding
		p := f.postable(a)
		prev, had := f.sent[key]
		switch {
		case had && !maps.Equal(prev.alert.Labels, p.Labels):
			// A new severity is a new alert to Alertmanager (labels are
			// its identity): the old one ends now.
			prev.alert.EndsAt = now
			batch = append(batch, prev.alert)
		case had && maps.Equal(prev.alert.Annotations, p.Annotations) && now.Sub(prev.at) < f.o.Resend:
			next[key] = prev // sent recently, unchanged
			continue
		}
		p.EndsAt = now.Add(valid)
		batch = append(batch, p)
		next[key] = sentAlert{alert: p, at: now}
	}
	for key, prev := range f.sent {
		if _, ok := next[key]; !ok {
			prev.alert.EndsAt = now
			batch = append(batch, prev.alert)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	if err := f.send(ctx, batch); err != nil {
		return err
	}
	f.sent = next
	return nil
}

// postable is a sweep alert as Alertmanager gets it: alertname is the
// finding id, redisbot_instance the instance.
func (f *Forwarder) postable(a store.Alert) PostableAlert {
	p := PostableAlert{
		Labels:      map[string]string{"alertname": a.Finding, InstanceLabel: a.Instance, "severity": a.Severity.String()},
		Annotations: map[string]string{},
		StartsAt:    a.FiringSince,
	}
	if a.Summary != "" {
		p.Annotations["summary"] = a.Summary
	}
	if f.o.RunbookURL != nil {
		if u := f.o.RunbookURL(a.Finding); u != "" {
			p.Annotations["runbook_url"] = u
		}
	}
	return p
}

// send posts alerts to Alertmanager. Its errors never show the URL, which
// may carry a password.
func (f *Forwarder) send(ctx context.Context, batch []PostableAlert) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("alertmanager: encode alerts: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.api, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alertmanager: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL
		}
		return fmt.Errorf("alertmanager: send %d alerts: %w", len(batch), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("alertmanager: send %d alerts: %s: %s", len(batch), resp.Status, strings.TrimSpace(string(text)))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	f.o.Log.DebugContext(ctx, "alerts sent to alertmanager", "alerts", len(batch))
	return nil
}
