package slacktest

// AppMentionInThread posts text as user in the thread threadTS of channel
// and sends the app_mention event for it, as Slack does for a mention
// typed under a message; it returns the envelope_id.
func (s *Server) AppMentionInThread(channel, user, threadTS, text string) string {
	s.t.Helper()
	s.awaitSocket()
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.nextTSLocked()
	s.messages[ts] = &message{channel: channel, user: user, text: text, threadTS: threadTS}
	return s.eventLocked(map[string]any{"type": "app_mention", "user": user, "text": text,
		"ts": ts, "thread_ts": threadTS, "channel": channel, "event_ts": ts, "team": TeamID}, channel, user, ts)
}
