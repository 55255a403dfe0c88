package slacktest

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Message metadata and conversations.history: a bot that tags its messages
// (chat.postMessage and chat.update with "metadata") can read them back
// with include_all_metadata, as in Slack, to find what it posted before.

// maxMetadataBytes is Slack's limit on a message's metadata.
const maxMetadataBytes = 16 << 10

// metadataLocked reads and checks the "metadata" parameter: JSON with a
// string event_type and an object event_payload. It returns the metadata
// (nil when none was sent) or the error code Slack answers.
func (s *Server) metadataLocked(where string, p url.Values) (json.RawMessage, string) {
	raw := p.Get("metadata")
	if raw == "" {
		return nil, ""
	}
	var m struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if len(raw) > maxMetadataBytes || json.Unmarshal([]byte(raw), &m) != nil || m.EventType == nil || *m.EventType == "" ||
		len(m.EventPayload) == 0 || m.EventPayload[0] != '{' {
		s.violateLocked("%s: invalid metadata %.200q", where, raw)
		return nil, "invalid_metadata_format"
	}
	return json.RawMessage(raw), ""
}

// historyPageMax is the largest page conversations.history returns.
const historyPageMax = 999

// conversationsHistory answers the top-level messages of a channel (thread
// replies excluded, as Slack does), newest first, within oldest and
// latest, paged by an opaque cursor; metadata only when
// include_all_metadata is set.
func (s *Server) conversationsHistory(p url.Values) any {
	ch := p.Get("channel")
	if ch == "" {
		return apiError("channel_not_found")
	}
	limit, _ := strconv.Atoi(p.Get("limit"))
	if limit <= 0 || limit > historyPageMax {
		limit = 100
	}
	offset := 0
	if c := p.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "offset:"))
		if err != nil || n < 0 {
			return apiError("invalid_cursor")
		}
		offset = n
	}
	oldest, latest := p.Get("oldest"), p.Get("latest")
	withMeta := p.Get("include_all_metadata") == "1" || p.Get("include_all_metadata") == "true"

	s.mu.Lock()
	defer s.mu.Unlock()
	var tss []string
	for ts, m := range s.messages {
		if m.channel != ch || m.ephemeral || (m.threadTS != "" && m.threadTS != ts) {
			continue
		}
		if (oldest != "" && !tsLess(oldest, ts)) || (latest != "" && !tsLess(ts, latest)) {
			continue
		}
		tss = append(tss, ts)
	}
	slices.SortFunc(tss, func(a, b string) int {
		switch {
		case tsLess(b, a):
			return -1
		case tsLess(a, b):
			return 1
		}
		return 0
	})
	if offset > len(tss) {
		offset = len(tss)
	}
	page := tss[offset:min(offset+limit, len(tss))]
	msgs := make([]map[string]any, 0, len(page))
	for _, ts := range page {
		m := s.messages[ts]
		msg := botMessage(ts, m)
		if !m.fromBot {
			delete(msg, "bot_id")
			msg["user"] = m.user
		}
		if withMeta && m.metadata != nil {
			msg["metadata"] = m.metadata
		}
		msgs = append(msgs, msg)
	}
	more := offset+len(page) < len(tss)
	next := ""
	if more {
		next = "offset:" + strconv.Itoa(offset+len(page))
	}
	return map[string]any{"ok": true, "messages": msgs, "has_more": more,
		"response_metadata": map[string]any{"next_cursor": next}}
}

// tsLess orders message timestamps ("1700000000.000100") as numbers.
func tsLess(a, b string) bool {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	ai, _ := strconv.ParseInt(as, 10, 64)
	bi, _ := strconv.ParseInt(bs, 10, 64)
	if ai != bi {
		return ai < bi
	}
	af, bf = (af + "000000")[:6], (bf + "000000")[:6]
	return af < bf
}

// Metadata returns the metadata of the message ts as it stands now (after
// any chat.update), or nil.
func (s *Server) Metadata(ts string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.messages[ts]; ok {
		return m.metadata
	}
	return nil
}

// HoldAnswers makes the next n calls of method (a Web API method name)
// take effect at once (a post is recorded and visible) but hold their HTTP
// answers until release is called: what the bot sees when Slack posted a
// message and the answer is slow to come back, or when the bot is stopped
// or loses its store in that window. release is idempotent; closing the
// server releases too.
func (s *Server) HoldAnswers(method string, n int) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.holds = append(s.holds, &hold{method: method, left: n, release: ch})
	s.mu.Unlock()
	var once bool
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !once {
			once = true
			close(ch)
		}
	}
}

// Held counts the answers of method held so far.
func (s *Server) Held(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[method]
}

// hold is one HoldAnswers.
type hold struct {
	method  string
	left    int
	release chan struct{}
}

// waitHeld blocks the answer of a call of method while a hold takes it.
func (s *Server) waitHeld(ctx context.Context, method string) {
	s.mu.Lock()
	var h *hold
	for _, x := range s.holds {
		if x.method == method && x.left > 0 {
			h = x
			break
		}
	}
	if h == nil {
		s.mu.Unlock()
		return
	}
	h.left--
	s.held[method]++
	s.notifyLocked()
	done := s.done
	s.mu.Unlock()
	select {
	case <-h.release:
	case <-ctx.Done():
	case <-done:
	}
}
