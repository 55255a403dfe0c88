package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// verificationToken is the legacy token Slack still puts in payloads.
const verificationToken = "slacktest-verification-token"

// socketConn is one Socket Mode websocket. gorilla/websocket allows one
// writer at a time, so only writeLoop writes; others enqueue.
type socketConn struct {
	id   int
	ws   *websocket.Conn
	wake chan struct{} // buffered 1: queue has messages
	done chan struct{} // closed when readLoop stops

	mu    sync.Mutex
	queue [][]byte

	// Guarded by Server.mu.
	draining bool // told to disconnect: gets no new envelopes
	lost     bool
}

func (c *socketConn) enqueue(msg []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, msg)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *socketConn) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

// envelope is one Socket Mode request and its delivery state.
type envelope struct {
	id              string
	kind            string
	payload         json.RawMessage
	acceptsResponse bool
	channel, user   string
	messageTS       string // the message the request is about, if any

	attempt int    // retry_attempt of the latest send
	reason  string // retry_reason of the latest send
	sends   int
	conn    *socketConn // where the latest send went; nil while pending
	sentAt  time.Time   // first send
	ackedAt time.Time
	acked   bool
	timer   *time.Timer
}

type wireEnvelope struct {
	EnvelopeID             string          `json:"envelope_id"`
	Payload                json.RawMessage `json:"payload"`
	Type                   string          `json:"type"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt"`
	RetryReason            string          `json:"retry_reason"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("slacktest: marshal %T: %v", v, err))
	}
	return b
}

var debugInfo = map[string]any{"host": "applink-slacktest", "build_number": 1, "approximate_connection_time": 18060}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	ok := s.tickets[ticket] && !s.closed
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client.
	}
	c := &socketConn{ws: ws, wake: make(chan struct{}, 1), done: make(chan struct{})}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ws.Close()
		return
	}
	s.connections++
	c.id = s.connections
	s.conns = append(s.conns, c)
	c.enqueue(mustJSON(map[string]any{
		"type":            "hello",
		"num_connections": len(s.conns),
		"debug_info":      debugInfo,
		"connection_info": map[string]any{"app_id": AppID},
	}))
	pending := s.pending
	s.pending = nil
	for _, e := range pending {
		if !e.acked {
			s.dispatchLocked(e)
		}
	}
	s.wg.Add(2)
	go s.writeLoop(c)
	go s.readLoop(c)
	s.notifyLocked()
}

func (s *Server) writeLoop(c *socketConn) {
	defer s.wg.Done()
	ping := time.NewTicker(s.pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				c.ws.Close()
				return
			}
		case <-c.wake:
			for _, msg := range c.take() {
				_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
				if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
					c.ws.Close()
					return
				}
			}
		}
	}
}

func (s *Server) readLoop(c *socketConn) {
	defer s.wg.Done()
	for {
		// ReadMessage also answers the client's control frames.
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			break
		}
		s.receive(data)
	}
	c.ws.Close()
	close(c.done)
	s.mu.Lock()
	s.dropLocked(c)
	s.mu.Unlock()
}

// receive handles an ack from the bot.
func (s *Server) receive(data []byte) {
	var ack struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := json.Unmarshal(data, &ack); err != nil {
		s.violateLocked("socket: invalid JSON from the bot: %v: %.200s", err, data)
		return
	}
	e, ok := s.envelopes[ack.EnvelopeID]
	if !ok {
		s.violateLocked("socket: ack for unknown envelope %q", ack.EnvelopeID)
		return
	}
	if e.acked {
		return // A redelivered envelope may be acked twice.
	}
	e.acked = true
	e.ackedAt = time.Now()
	if e.timer != nil {
		e.timer.Stop()
	}
	s.notifyLocked()
	if isNull(ack.Payload) {
		return
	}
	if !e.acceptsResponse {
		s.violateLocked("socket: ack of %s envelope %s carries a payload, which Slack ignores", e.kind, e.id)
		return
	}
	if e.kind == "slash_commands" {
		s.ackResponseLocked(e, ack.Payload)
	}
}

// ackResponseLocked records the payload of a slash command's ack, which
// Slack shows to the user as the command's response.
func (s *Server) ackResponseLocked(e *envelope, payload json.RawMessage) {
	var resp struct {
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
		ResponseType string          `json:"response_type"`
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		s.violateLocked("socket: ack payload of %s is not a message: %v", e.id, err)
		return
	}
	if isNull(resp.Blocks) {
		resp.Blocks = nil
	}
	if s.admitLocked("ack of "+e.id, resp.Text, resp.Blocks) != "" {
		return
	}
	if resp.ResponseType != "in_channel" {
		resp.ResponseType = "ephemeral"
	}
	s.postLocked(Post{Method: "ack", Channel: e.channel, User: e.user, Text: resp.Text, Blocks: resp.Blocks, ResponseType: resp.ResponseType})
}

// pickLocked chooses the next live socket, round-robin, or nil.
func (s *Server) pickLocked() *socketConn {
	n := len(s.conns)
	for i := range n {
		c := s.conns[(s.next+i)%n]
		if !c.draining {
			s.next = (s.next + i + 1) % n
			return c
		}
	}
	return nil
}

// dispatchLocked sends e on one socket, or parks it until one connects, and
// arms the redelivery timer.
func (s *Server) dispatchLocked(e *envelope) {
	if s.closed {
		return
	}
	c := s.pickLocked()
	e.conn = c
	if c == nil {
		s.pending = append(s.pending, e)
		return
	}
	e.sends++
	if e.sentAt.IsZero() {
		e.sentAt = time.Now()
	}
	c.enqueue(mustJSON(wireEnvelope{
		EnvelopeID:             e.id,
		Payload:                e.payload,
		Type:                   e.kind,
		AcceptsResponsePayload: e.acceptsResponse,
		RetryAttempt:           e.attempt,
		RetryReason:            e.reason,
	}))
	sends := e.sends
	e.timer = time.AfterFunc(s.redeliverAfter, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		// A stale timer: the envelope was acked or sent again meanwhile.
		if e.acked || e.sends != sends || e.conn == nil {
			return
		}
		s.retryLocked(e)
	})
}

// retryLocked sends e again, as Slack does when an envelope is not acked in
// time or its socket went away, until the retries run out.
func (s *Server) retryLocked(e *envelope) {
	if s.closed || e.acked {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	if e.attempt >= maxRedeliveries {
		e.conn = nil
		s.violateLocked("socket: %s envelope %s was never acked; Slack gives up after %d retries", e.kind, e.id, maxRedeliveries)
		return
	}
	e.attempt++
	// Slack reports "timeout" for both: to it, the envelope was not acked.
	e.reason = "timeout"
	s.dispatchLocked(e)
}

// dropLocked forgets sockets and sends their unacked envelopes elsewhere.
func (s *Server) dropLocked(conns ...*socketConn) {
	var dropped []*socketConn
	for _, c := range conns {
		if !c.lost {
			c.lost = true
			dropped = append(dropped, c)
		}
	}
	if len(dropped) == 0 {
		return
	}
	s.conns = slices.DeleteFunc(s.conns, func(c *socketConn) bool { return c.lost })
	s.next = 0
	for _, e := range s.order {
		if !e.acked && e.conn != nil && slices.Contains(dropped, e.conn) {
			s.retryLocked(e)
		}
	}
	s.notifyLocked()
}

// DropConnections closes every open websocket abruptly, without a close
// frame, like a network failure. Unacked envelopes go to the next socket.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := slices.Clone(s.conns)
	for _, c := range conns {
		c.ws.Close()
	}
	s.dropLocked(conns...)
}

// Disconnect sends {"type":"disconnect","reason":reason} on every socket, as
// Slack does before it rotates connections ("refresh_requested", "warning").
// Those sockets get no new envelopes; they wait for the bot to reconnect.
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := mustJSON(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "applink-slacktest"}})
	for _, c := range s.conns {
		if !c.draining {
			c.draining = true
			c.enqueue(msg)
		}
	}
	s.notifyLocked()
}

// awaitSocket waits until the bot has a live socket.
func (s *Server) awaitSocket() {
	s.t.Helper()
	ok := s.waitFor(connectWait, func() bool {
		return s.closed || slices.ContainsFunc(s.conns, func(c *socketConn) bool { return !c.draining })
	})
	if !ok {
		s.t.Fatalf("slacktest: no Socket Mode connection after %v", connectWait)
	}
}

func (s *Server) newEnvelopeLocked(kind string, payload any, acceptsResponse bool, channel, user, messageTS string) string {
	e := &envelope{
		id:              fmt.Sprintf("5e1d0f6a-0000-4000-8000-%012d", s.nextIDLocked()),
		kind:            kind,
		payload:         mustJSON(payload),
		acceptsResponse: acceptsResponse,
		channel:         channel,
		user:            user,
		messageTS:       messageTS,
	}
	s.envelopes[e.id] = e
	s.order = append(s.order, e)
	s.dispatchLocked(e)
	return e.id
}

func (s *Server) newResponseURLLocked(channel, user, messageTS string) string {
	id := fmt.Sprint(s.nextIDLocked())
	s.responseURLs[id] = &responseURL{channel: channel, user: user, messageTS: messageTS}
	return s.http.URL + "/response/" + id
}

func (s *Server) triggerIDLocked() string {
	return fmt.Sprintf("1700000000.%d.slacktest", s.nextIDLocked())
}

// SlashCommand sends the command as a slash_commands envelope and returns
// its envelope_id. Empty fields get workspace defaults; response_url and
// trigger_id are always fresh. It waits up to 10s for the bot to connect.
func (s *Server) SlashCommand(cmd slack.SlashCommand) string {
	s.t.Helper()
	s.awaitSocket()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cmd.Token == "" {
		cmd.Token = verificationToken
	}
	if cmd.TeamID == "" {
		cmd.TeamID = TeamID
	}
	if cmd.TeamDomain == "" {
		cmd.TeamDomain = "slacktest"
	}
	if cmd.APIAppID == "" {
		cmd.APIAppID = AppID
	}
	if cmd.UserName == "" {
		cmd.UserName = s.users[cmd.UserID]
	}
	if cmd.ChannelName == "" {
		cmd.ChannelName = s.channelNames[cmd.ChannelID]
	} else {
		s.channelNames[cmd.ChannelID] = cmd.ChannelName
	}
	cmd.ResponseURL = s.newResponseURLLocked(cmd.ChannelID, cmd.UserID, "")
	cmd.TriggerID = s.triggerIDLocked()
	return s.newEnvelopeLocked("slash_commands", cmd, true, cmd.ChannelID, cmd.UserID, "")
}

// AppMention posts text as user in channel and sends the app_mention event
// for it; it returns the envelope_id. MessageTS gives the message's ts.
func (s *Server) AppMention(channel, user, text string) string {
	s.t.Helper()
	s.awaitSocket()
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.nextTSLocked()
	s.messages[ts] = &message{channel: channel, user: user, text: text}
	return s.eventLocked(map[string]any{"type": "app_mention", "user": user, "text": text,
		"ts": ts, "channel": channel, "event_ts": ts, "team": TeamID}, channel, user, ts)
}

// Click sends a block_actions interaction: user pressed action in the
// message messageTS of channel. It returns the envelope_id. The payload
// carries the message as the bot last posted or updated it.
func (s *Server) Click(user, channel, messageTS string, action slack.BlockAction) string {
	s.t.Helper()
	s.awaitSocket()
	s.mu.Lock()
	defer s.mu.Unlock()
	if action.ActionTs == "" {
		action.ActionTs = s.nextTSLocked()
	}
	container := map[string]any{"type": "message", "message_ts": messageTS, "channel_id": channel, "is_ephemeral": false}
	payload := map[string]any{
		"type":         "block_actions",
		"token":        verificationToken,
		"api_app_id":   AppID,
		"user":         map[string]any{"id": user, "username": s.users[user], "name": s.users[user], "team_id": TeamID},
		"team":         map[string]any{"id": TeamID, "domain": "slacktest"},
		"channel":      map[string]any{"id": channel, "name": s.channelNames[channel]},
		"container":    container,
		"trigger_id":   s.triggerIDLocked(),
		"response_url": s.newResponseURLLocked(channel, user, messageTS),
		"actions":      []json.RawMessage{compactAction(action)},
		"state":        map[string]any{"values": map[string]any{}},
	}
	msg := map[string]any{"type": "message", "ts": messageTS}
	ephemeral := false
	if m, ok := s.messages[messageTS]; ok {
		if m.threadTS != "" {
			container["thread_ts"] = m.threadTS
			msg["thread_ts"] = m.threadTS
		}
		msg["text"] = m.text
		msg["user"] = m.user
		if m.fromBot {
			msg["bot_id"] = BotID
		}
		if m.blocks != nil {
			msg["blocks"] = m.blocks
		}
		ephemeral = m.ephemeral
	}
	container["is_ephemeral"] = ephemeral
	// Slack sends no message for clicks in ephemeral messages.
	if !ephemeral {
		payload["message"] = msg
	}
	return s.newEnvelopeLocked("interactive", payload, false, channel, user, messageTS)
}

// compactAction encodes a as Slack does: without the zero-valued fields
// that slack.BlockAction would otherwise marshal.
func compactAction(a slack.BlockAction) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(mustJSON(a), &m); err != nil {
		panic(fmt.Sprintf("slacktest: %v", err))
	}
	for k, v := range m {
		// slack-go tells block actions from attachment actions by block_id.
		if k != "block_id" && k != "action_id" && k != "type" && isZero(v) {
			delete(m, k)
		}
	}
	return mustJSON(m)
}

// isZero reports whether v is a JSON zero value, pruning zero fields from
// nested objects as it goes.
func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case float64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		for k, e := range v {
			if isZero(e) {
				delete(v, k)
			}
		}
		return len(v) == 0
	}
	return false
}

// Acked reports whether the bot has acked the envelope.
func (s *Server) Acked(envelopeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.envelopes[envelopeID]
	return ok && e.acked
}

// WaitAck waits for the bot to ack the envelope and returns the time from
// its first send to the ack; Slack wants it under 3s.
func (s *Server) WaitAck(t testing.TB, envelopeID string, timeout time.Duration) time.Duration {
	t.Helper()
	s.mu.Lock()
	e, ok := s.envelopes[envelopeID]
	s.mu.Unlock()
	if !ok {
		t.Fatalf("slacktest: WaitAck: unknown envelope %q", envelopeID)
	}
	if !s.waitFor(timeout, func() bool { return e.acked }) {
		s.mu.Lock()
		sends := e.sends
		s.mu.Unlock()
		t.Fatalf("slacktest: %s envelope %s not acked after %v (sent %d times)\n%s", e.kind, envelopeID, timeout, sends, s.dump())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.ackedAt.Sub(e.sentAt)
}

// Deliveries is how many times the envelope has been sent, redeliveries
// included.
func (s *Server) Deliveries(envelopeID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.envelopes[envelopeID]; ok {
		return e.sends
	}
	return 0
}

// MessageTS is the ts of the message an envelope is about: the mention's
// message for AppMention, the clicked message for Click, "" otherwise.
func (s *Server) MessageTS(envelopeID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.envelopes[envelopeID]; ok {
		return e.messageTS
	}
	return ""
}
