package slacktest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"
)

// HomeView is one views.publish call: the user whose Home tab it set and
// the view as sent.
type HomeView struct {
	User string
	View json.RawMessage
}

// maxHomeBlocks is Slack's limit on a Home tab view's blocks.
const maxHomeBlocks = 100

// viewsPublish records a Home tab as Slack would show it, refusing what
// Slack refuses: no user, a view that is not JSON, not of type home, or
// over the block limit.
func (s *Server) viewsPublish(p url.Values) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, raw := p.Get("user_id"), p.Get("view")
	if user == "" {
		return apiError("invalid_arguments")
	}
	var view struct {
		Type   string            `json:"type"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(raw), &view); err != nil {
		s.violateLocked("views.publish: view is not JSON: %v", err)
		return apiError("invalid_arguments")
	}
	if view.Type != "home" {
		s.violateLocked("views.publish: view type %q, want home", view.Type)
		return apiError("invalid_arguments")
	}
	if len(view.Blocks) > maxHomeBlocks {
		s.violateLocked("views.publish: %d blocks, the limit is %d", len(view.Blocks), maxHomeBlocks)
		return apiError("invalid_blocks")
	}
	s.homes = append(s.homes, HomeView{User: user, View: json.RawMessage(raw)})
	s.notifyLocked()
	return map[string]any{"ok": true, "view": map[string]any{"id": fmt.Sprintf("V%08d", s.nextIDLocked()), "type": "home"}}
}

// WaitHome waits for a views.publish to user's Home tab and returns the
// last one. On timeout it fails t.
func (s *Server) WaitHome(t testing.TB, user string, timeout time.Duration) HomeView {
	t.Helper()
	var got HomeView
	ok := s.waitFor(timeout, func() bool {
		for _, h := range s.homes {
			if h.User == user {
				got = h
			}
		}
		return got.User != ""
	})
	if !ok {
		t.Fatalf("slacktest: no Home tab published for %s after %v\n%s", user, timeout, s.dump())
	}
	return got
}

// AppHomeOpened sends the app_home_opened event for user opening the
// app's Home tab; it returns the envelope_id.
func (s *Server) AppHomeOpened(user string) string {
	s.t.Helper()
	s.awaitSocket()
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.nextTSLocked()
	return s.eventLocked(map[string]any{"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home", "event_ts": ts}, "", user, "")
}

// DirectMessage posts text as user in the bot's direct-message channel
// and sends the message.im event for it; it returns the envelope_id.
func (s *Server) DirectMessage(channel, user, text string) string {
	s.t.Helper()
	s.awaitSocket()
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.nextTSLocked()
	s.messages[ts] = &message{channel: channel, user: user, text: text}
	return s.eventLocked(map[string]any{"type": "message", "channel_type": "im", "user": user, "text": text,
		"ts": ts, "channel": channel, "event_ts": ts, "team": TeamID}, channel, user, ts)
}

// eventLocked wraps an Events API event in its callback and envelope.
func (s *Server) eventLocked(event map[string]any, channel, user, ts string) string {
	payload := map[string]any{
		"token":                 verificationToken,
		"team_id":               TeamID,
		"api_app_id":            AppID,
		"type":                  "event_callback",
		"event_id":              fmt.Sprintf("Ev%08d", s.nextIDLocked()),
		"event_time":            time.Now().Unix(),
		"event":                 event,
		"authorizations":        []any{map[string]any{"team_id": TeamID, "user_id": BotUserID, "is_bot": true}},
		"is_ext_shared_channel": false,
	}
	return s.newEnvelopeLocked("events_api", payload, false, channel, user, ts)
}
