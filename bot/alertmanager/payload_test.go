package alertmanager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alertmanager/amtest"
)

// TestWebhookPayloadMatchesAlertmanager has a real Alertmanager send its
// webhook to a recorder, and reads the body into Message strictly: a field
// Alertmanager sends that Message lacks fails the test, as does one it
// gets wrong. The bearer token is Alertmanager's http_config.authorization.
func TestWebhookPayloadMatchesAlertmanager(t *testing.T) {
	bodies := make(chan []byte, 10)
	auth := make(chan string, 10)
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
		auth <- r.Header.Get("Authorization")
	}))
	defer rec.Close()
	am := amtest.Start(t, fmt.Sprintf(`route:
  receiver: redisbot
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: redisbot
    webhook_configs:
      - url: %s/alertmanager
        send_resolved: true
        http_config:
          authorization: {type: Bearer, credentials: tok-123}
`, rec.URL))
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	alert := map[string]any{
		"labels":       map[string]string{"alertname": "RedisMaxmemoryNear", "instance": "redis://10.0.0.5:6379", "severity": "warning"},
		"annotations":  map[string]string{"summary": "90% of maxmemory"},
		"startsAt":     start,
		"generatorURL": "http://prometheus:9090/graph",
	}
	am.Fire(t, alert)
	msg := readMessage(t, bodies)
	if got := <-auth; got != "Bearer tok-123" {
		t.Errorf("Authorization %q", got)
	}
	if msg.Version != "4" || msg.Status != StatusFiring || msg.Receiver != "redisbot" || len(msg.Alerts) != 1 {
		t.Fatalf("message %+v", msg)
	}
	a := msg.Alerts[0]
	if a.Status != StatusFiring || a.Labels["instance"] != "redis://10.0.0.5:6379" || a.Annotations["summary"] != "90% of maxmemory" ||
		!a.StartsAt.Equal(start) || a.GeneratorURL != "http://prometheus:9090/graph" || !fingerprintPattern.MatchString(a.Fingerprint) {
		t.Errorf("alert %+v", a)
	}

	alert["endsAt"] = time.Now().UTC()
	am.Fire(t, alert)
	msg = readMessage(t, bodies)
	if msg.Status != StatusResolved || msg.Alerts[0].Status != StatusResolved || msg.Alerts[0].Fingerprint != a.Fingerprint || !msg.Alerts[0].StartsAt.Equal(start) {
		t.Errorf("resolved message %+v", msg)
	}
}

func readMessage(t *testing.T, bodies chan []byte) Message {
	t.Helper()
	select {
	case b := <-bodies:
		var msg Message
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil {
			t.Fatalf("Alertmanager's webhook body does not fit Message: %v\n%s", err, b)
		}
		return msg
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook from Alertmanager within 20s")
	}
	return Message{}
}
