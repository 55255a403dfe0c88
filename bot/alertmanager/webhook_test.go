package alertmanager

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
)

// TestWebhookRefuses covers what is answered before any alert is looked
// at: no token, a bad body. None of it reaches a probe or Slack (the
// Receiver has neither).
func TestWebhookRefuses(t *testing.T) {
	var logs bytes.Buffer
	rv := NewReceiver(ReceiverOptions{Token: "right-token-123", Log: slog.New(slog.NewTextHandler(&logs, nil))})
	valid := `{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-12-07T16:00:00Z","fingerprint":"fa58f9042d826bca"}]}`
	for _, tc := range []struct {
		name, method, auth, body string
		status                   int
		answer                   string
	}{
		{"no token", "POST", "", valid, 401, "unauthorized"},
		{"wrong token", "POST", "Bearer wrong-token-456", valid, 401, "unauthorized"},
		{"right token, wrong scheme", "POST", "Basic right-token-123", valid, 401, "unauthorized"},
		{"token prefix", "POST", "Bearer right-token-12", valid, 401, "unauthorized"},
		{"GET", "GET", "Bearer right-token-123", "", 405, "POST only"},
		{"not JSON", "POST", "Bearer right-token-123", `{"version": "4", alerts`, 400, "not an Alertmanager webhook message (JSON): syntax error at byte 18"},
		{"wrong type", "POST", "Bearer right-token-123", `{"version":"4","alerts":{}}`, 400, "not an Alertmanager webhook message (JSON): alerts must be []alertmanager.Alert"},
		{"version", "POST", "Bearer right-token-123", `{"version":"3","alerts":[]}`, 400, `webhook version "3": only version "4" is understood`},
		{"status", "POST", "Bearer right-token-123", strings.Replace(valid, `"status":"firing","labels"`, `"status":"pending","labels"`, 1), 400, `alerts[0]: status "pending": want firing or resolved`},
		{"fingerprint", "POST", "Bearer right-token-123", strings.Replace(valid, "fa58f9042d826bca", "../../etc", 1), 400, "alerts[0]: fingerprint must be 1 to 64 letters and digits"},
		{"startsAt", "POST", "Bearer right-token-123", strings.Replace(valid, `"startsAt":"2026-12-07T16:00:00Z",`, "", 1), 400, "alerts[0]: startsAt is missing"},
		{"too big", "POST", "Bearer right-token-123", `{"version":"4","x":"` + strings.Repeat("a", MaxBody) + `"}`, 413, "body over 4194304 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/alertmanager", strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			rv.ServeHTTP(w, req)
			if w.Code != tc.status || strings.TrimSpace(w.Body.String()) != tc.answer {
				t.Errorf("got %d %q, want %d %q", w.Code, strings.TrimSpace(w.Body.String()), tc.status, tc.answer)
			}
			if tc.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	for _, secret := range []string{"right-token", "wrong-token"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a token is in the log:\n%s", logs.String())
		}
	}
	// An unset token refuses everything, the empty bearer included.
	open := NewReceiver(ReceiverOptions{})
	req := httptest.NewRequest("POST", "/alertmanager", strings.NewReader(valid))
	req.Header.Set("Authorization", "Bearer ")
	w := httptest.NewRecorder()
	open.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("receiver without a token answered %d", w.Code)
	}
}

func TestThreadLink(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ann         map[string]string
		channel, ts string
		ok          bool
	}{
		{"permalink", map[string]string{"slack_permalink": "https://acme.slack.com/archives/C0ALERTS/p1712345678123456"}, "C0ALERTS", "1712345678.123456", true},
		{"reply permalink", map[string]string{"slack_permalink": "https://acme.slack.com/archives/C0ALERTS/p1712345679000001?thread_ts=1712345678.123456&cid=C0ALERTS"}, "C0ALERTS", "1712345678.123456", true},
		{"ts in the receiver's channel", map[string]string{"slack_ts": "1712345678.123456"}, "", "1712345678.123456", true},
		{"ts and channel", map[string]string{"slack_ts": "1712345678.123456", "slack_channel": "G0PRIV"}, "G0PRIV", "1712345678.123456", true},
		{"bad ts", map[string]string{"slack_ts": "yesterday"}, "", "", false},
		{"bad channel", map[string]string{"slack_ts": "1712345678.123456", "slack_channel": "#alerts"}, "", "", false},
		{"http permalink", map[string]string{"slack_permalink": "http://acme.slack.com/archives/C0ALERTS/p1712345678123456"}, "", "", false},
		{"not a message link", map[string]string{"slack_permalink": "https://acme.slack.com/archives/C0ALERTS"}, "", "", false},
		{"none", nil, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ts, ok := threadLink(tc.ann)
			if c != tc.channel || ts != tc.ts || ok != tc.ok {
				t.Errorf("got %q %q %v, want %q %q %v", c, ts, ok, tc.channel, tc.ts, tc.ok)
			}
		})
	}
}

// FuzzWebhook feeds arbitrary bodies, with the token, to what reads them:
// a bad body is a 4xx answer, never a panic, and what decodes can be
// mapped, keyed and linked. (The alerts are not diagnosed here: that needs
// a store, Redis and Slack, which the end-to-end test has.)
func FuzzWebhook(f *testing.F) {
	f.Add(`{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"A","instance":"redis://10.0.0.5:6379"},"annotations":{"slack_permalink":"https://x.slack.com/archives/C0A/p1712345678123456"},"startsAt":"2026-12-07T16:00:00Z","fingerprint":"fa58f9042d826bca"}]}`)
	f.Add(`{"version":"4","alerts":[{"status":"resolved","labels":{"redisbot_instance":"cache-1"},"annotations":{"slack_ts":"1712345678.123456","slack_channel":"G0X"},"startsAt":"2026-12-07T16:00:00Z","endsAt":"2026-12-07T16:05:00Z","fingerprint":"1"}]}`)
	f.Add(`{"version":"4","alerts":null}`)
	f.Add(`[]`)
	f.Add(`{"version":4}`)
	m := NewMapper(func() []handlers.Instance { return []handlers.Instance{{Name: "cache-1", Addr: "10.0.0.5:6379"}} },
		[]LabelRule{{Match: map[string]string{"service": "x"}, Instance: "cache-1"}})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/alertmanager", strings.NewReader(body))
		w := httptest.NewRecorder()
		msg, status, err := decode(w, req)
		if err != nil {
			if status < 400 || status > 499 {
				t.Fatalf("bad body answered %d: %v", status, err)
			}
			return
		}
		for _, a := range msg.Alerts {
			m.Map(a.Labels)
			threadLink(a.Annotations)
			if k := noticeKey(a, a.Status); strings.Contains(k, "\x00") {
				t.Fatalf("notice key with NUL: %q", k)
			}
		}
	})
}
