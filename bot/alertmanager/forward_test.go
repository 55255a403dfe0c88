package alertmanager

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alertmanager/amtest"
	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
)

// nullConfig is an Alertmanager that routes everything nowhere.
const nullConfig = "route:\n  receiver: none\nreceivers:\n  - name: none\n"

func sweepAlert(instance, finding string, state alerts.State, severity handlers.Severity, summary string, since time.Time) store.Alert {
	return store.Alert{Alert: alerts.Alert{Instance: instance, Finding: finding, State: state, Severity: severity, FiringSince: since, Summary: summary}}
}

func byInstance(alerts []amtest.Alert) map[string]amtest.Alert {
	out := map[string]amtest.Alert{}
	for _, a := range alerts {
		out[a.Labels[InstanceLabel]+"/"+a.Labels["alertname"]+"/"+a.Labels["severity"]] = a
	}
	return out
}

// TestForwardToAlertmanager sends sweep alerts to a real Alertmanager and
// reads them back from its API, as its routing sees them.
func TestForwardToAlertmanager(t *testing.T) {
	am := amtest.Start(t, nullConfig)
	f, err := NewForwarder(ForwarderOptions{
		URL: am.URL, Resend: time.Hour,
		RunbookURL: func(id string) string { return "https://runbooks.example/" + id + ".md" },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	list := []store.Alert{
		sweepAlert("cache-1", "oom-rejecting", alerts.StateFiring, handlers.SeverityCritical, "writes rejected: OOM", start),
		sweepAlert("cache-1", "frag-high", alerts.StatePending, handlers.SeverityWarning, "not yet", start),
		sweepAlert("cache-2", "maxmemory-near", alerts.StateFiring, handlers.SeverityWarning, "80% of maxmemory", start),
	}
	now := time.Now()
	if err := f.Forward(ctx, list, now); err != nil {
		t.Fatal(err)
	}
	got := byInstance(am.WaitAlerts(t, 10*time.Second, func(a []amtest.Alert) bool { return len(a) == 2 }))
	oom, ok := got["cache-1/oom-rejecting/critical"]
	if !ok {
		t.Fatalf("no oom-rejecting alert for cache-1 in %v", got)
	}
	wantLabels := map[string]string{"alertname": "oom-rejecting", "redisbot_instance": "cache-1", "severity": "critical"}
	if !maps.Equal(oom.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", oom.Labels, wantLabels)
	}
	wantAnn := map[string]string{"summary": "writes rejected: OOM", "runbook_url": "https://runbooks.example/oom-rejecting.md"}
	if !maps.Equal(oom.Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", oom.Annotations, wantAnn)
	}
	if oom.Status.State != "active" || !oom.StartsAt.Equal(start) {
		t.Errorf("state %s since %v, want active since %v", oom.Status.State, oom.StartsAt, start)
	}
	// Firing until four resend intervals from now, unless sent again.
	if d := oom.EndsAt.Sub(now); d < 4*time.Hour-time.Second || d > 4*time.Hour+time.Second {
		t.Errorf("endsAt %v after the send, want 4h", d)
	}
	if _, ok := got["cache-1/frag-high/warning"]; ok {
		t.Error("a pending alert was sent")
	}

	// Unchanged and sent less than Resend ago: not sent again.
	if err := f.Forward(ctx, list, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if again := byInstance(am.Alerts(t))["cache-1/oom-rejecting/critical"]; !again.UpdatedAt.Equal(oom.UpdatedAt) {
		t.Errorf("sent again within the resend interval (updatedAt %v -> %v)", oom.UpdatedAt, again.UpdatedAt)
	}
	// Once Resend has passed: sent again, with a later endsAt.
	if err := f.Forward(ctx, list, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	am.WaitAlerts(t, 10*time.Second, func(a []amtest.Alert) bool {
		return byInstance(a)["cache-1/oom-rejecting/critical"].EndsAt.After(oom.EndsAt)
	})

	// cache-2 escalates: the warning ends, the critical one fires.
	list[2].Severity = handlers.SeverityCritical
	if err := f.Forward(ctx, list, time.Now()); err != nil {
		t.Fatal(err)
	}
	am.WaitAlerts(t, 10*time.Second, func(a []amtest.Alert) bool {
		m := byInstance(a)
		_, warning := m["cache-2/maxmemory-near/warning"]
		_, critical := m["cache-2/maxmemory-near/critical"]
		return len(a) == 2 && critical && !warning
	})

	// Resolved in the sweep (gone from its alerts, or no longer firing):
	// ended now, so Alertmanager no longer lists them.
	list[0].State = "resolved"
	if err := f.Forward(ctx, list[:1], time.Now()); err != nil {
		t.Fatal(err)
	}
	am.WaitAlerts(t, 10*time.Second, func(a []amtest.Alert) bool { return len(a) == 0 })
}

func TestForwardErrorsHideTheURL(t *testing.T) {
	f, err := NewForwarder(ForwarderOptions{URL: "http://redisbot:s3cret-pw@127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	alert := sweepAlert("cache-1", "oom-rejecting", alerts.StateFiring, handlers.SeverityCritical, "x", time.Now())
	err = f.Forward(context.Background(), []store.Alert{alert}, time.Now())
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %v: want one without the URL's password", err)
	}
	// Not recorded as sent: the next sweep sends it again.
	if len(f.sent) != 0 {
		t.Errorf("a failed send was recorded: %v", f.sent)
	}
	if _, err := NewForwarder(ForwarderOptions{URL: "alertmanager:9093"}); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}
