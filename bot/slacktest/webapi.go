package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiMethod is one Web API method: the token it requires and what it does
// with the request parameters. handle returns the JSON body to answer.
type apiMethod struct {
	token  string
	handle func(s *Server, p url.Values) any
}

var apiMethods = map[string]apiMethod{
	"apps.connections.open":        {AppToken, (*Server).appsConnectionsOpen},
	"auth.test":                    {BotToken, (*Server).authTest},
	"chat.postMessage":             {BotToken, (*Server).chatPostMessage},
	"chat.postEphemeral":           {BotToken, (*Server).chatPostEphemeral},
	"chat.update":                  {BotToken, (*Server).chatUpdate},
	"conversations.history":        {BotToken, (*Server).conversationsHistory},
	"users.info":                   {BotToken, (*Server).usersInfo},
	"usergroups.users.list":        {BotToken, (*Server).usergroupsUsersList},
	"files.getUploadURLExternal":   {BotToken, (*Server).filesGetUploadURLExternal},
	"files.completeUploadExternal": {BotToken, (*Server).filesCompleteUploadExternal},
	"views.publish":                {BotToken, (*Server).viewsPublish},
}

// message is a message in the workspace, kept so that chat.update and Click
// can refer to it by ts.
type message struct {
	channel  string
	user     string
	text     string
	threadTS string
	blocks   json.RawMessage
	// metadata is the message's Slack message metadata as posted
	// ({"event_type":...,"event_payload":{...}}), nil when none.
	metadata  json.RawMessage
	fromBot   bool
	ephemeral bool
}

// responseURL is where one slash command or click lets the bot answer.
type responseURL struct {
	channel   string
	user      string
	messageTS string // the clicked message, if any
	uses      int
}

// maxResponseURLUses is how often Slack accepts posts to one response_url.
const maxResponseURLUses = 5

type upload struct {
	name     string
	length   int
	content  []byte
	uploaded bool
}

func apiError(code string) map[string]any {
	return map[string]any{"ok": false, "error": code}
}

func writeJSONStatus(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/")
	m, ok := apiMethods[name]
	if !ok {
		s.mu.Lock()
		s.unknown = append(s.unknown, name)
		s.notifyLocked()
		s.mu.Unlock()
		writeJSONStatus(w, http.StatusOK, apiError("unknown_method"))
		return
	}
	p, err := readParams(r)
	if err != nil {
		s.mu.Lock()
		s.violateLocked("%s: unreadable request body: %v", name, err)
		s.mu.Unlock()
		writeJSONStatus(w, http.StatusOK, apiError("invalid_json"))
		return
	}
	if code := authError(requestToken(r, p), m.token); code != "" {
		writeJSONStatus(w, http.StatusOK, apiError(code))
		return
	}
	if s.takeRateLimit(w, name, p.Get("channel")) {
		return
	}
	body := m.handle(s, p)
	s.waitHeld(r.Context(), name)
	writeJSONStatus(w, http.StatusOK, body)
}

// readParams reads the parameters the way Slack does: form-encoded,
// multipart or JSON bodies, plus the query string. JSON values that are not
// strings are kept as their JSON text.
func readParams(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		p := r.URL.Query()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return p, nil
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, err
		}
		for k, raw := range fields {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				p.Set(k, str)
			} else {
				p.Set(k, string(raw))
			}
		}
		return p, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return nil, err
		}
		return r.Form, nil
	default:
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.Form, nil
	}
}

// requestToken finds the token where slack-go puts it: the Authorization
// header for JSON, GET and multipart calls, the "token" form field for the
// rest (chat.*, users.*, usergroups.*, files.*).
func requestToken(r *http.Request, p url.Values) string {
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return h
	}
	return p.Get("token")
}

func authError(got, want string) string {
	switch got {
	case want:
		return ""
	case "":
		return "not_authed"
	case AppToken, BotToken:
		return "not_allowed_token_type"
	default:
		return "invalid_auth"
	}
}

// blocksParam returns the blocks parameter as posted, or nil.
func blocksParam(p url.Values) json.RawMessage {
	if b := p.Get("blocks"); b != "" {
		return json.RawMessage(b)
	}
	return nil
}

// admitLocked checks a message the bot wants to show, records what it
// breaks, and returns the error Slack would answer, or "" to accept it.
// Raw mentions in the top-level text are recorded but accepted; everything
// wrong in blocks is rejected, as Slack rejects blocks over its limits.
func (s *Server) admitLocked(where, text string, blocks json.RawMessage) string {
	problems := checkText(text, s.mentionAllowedLocked)
	code := ""
	bp, err := checkBlocks(blocks, s.mentionAllowedLocked)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("invalid JSON in blocks: %v", err))
		code = "invalid_blocks_format"
	case len(bp) > 0:
		problems = append(problems, bp...)
		code = "invalid_blocks"
	}
	for _, p := range problems {
		s.violateLocked("%s: %s", where, p)
	}
	return code
}

func (s *Server) postLocked(p Post) {
	p.At = time.Now()
	s.posts = append(s.posts, p)
	s.notifyLocked()
}

func (s *Server) appsConnectionsOpen(url.Values) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket := strconv.Itoa(s.nextIDLocked())
	s.tickets[ticket] = true
	return map[string]any{
		"ok":  true,
		"url": "ws" + strings.TrimPrefix(s.http.URL, "http") + "/socket?ticket=" + ticket,
	}
}

func (s *Server) authTest(url.Values) any {
	return map[string]any{
		"ok":      true,
		"url":     "https://slacktest.slack.com/",
		"team":    "slacktest",
		"user":    "redisbot",
		"team_id": TeamID,
		"user_id": BotUserID,
		"bot_id":  BotID,
	}
}

// botMessage is the message object Slack echoes back. Blocks are left out
// because slack-go would have to parse them back, and no caller needs them.
func botMessage(ts string, m *message) map[string]any {
	msg := map[string]any{
		"type":   "message",
		"user":   BotUserID,
		"bot_id": BotID,
		"text":   m.text,
		"ts":     ts,
	}
	if m.threadTS != "" {
		msg["thread_ts"] = m.threadTS
	}
	return msg
}

func hasContent(p url.Values) bool {
	return p.Get("text") != "" || p.Get("blocks") != "" || p.Get("attachments") != ""
}

func (s *Server) chatPostMessage(p url.Values) any {
	ch := p.Get("channel")
	if ch == "" {
		return apiError("channel_not_found")
	}
	if !hasContent(p) {
		return apiError("no_text")
	}
	m := &message{channel: ch, user: BotUserID, text: p.Get("text"), threadTS: p.Get("thread_ts"), blocks: blocksParam(p), fromBot: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	meta, code := s.metadataLocked("chat.postMessage to "+ch, p)
	if code != "" {
		return apiError(code)
	}
	m.metadata = meta
	if code := s.admitLocked("chat.postMessage to "+ch, m.text, m.blocks); code != "" {
		return apiError(code)
	}
	ts := s.nextTSLocked()
	s.messages[ts] = m
	s.postLocked(Post{Method: "chat.postMessage", Channel: ch, TS: ts, ThreadTS: m.threadTS, Text: m.text, Blocks: m.blocks, Metadata: meta})
	return map[string]any{"ok": true, "channel": ch, "ts": ts, "message": botMessage(ts, m)}
}

func (s *Server) chatPostEphemeral(p url.Values) any {
	ch, user := p.Get("channel"), p.Get("user")
	if ch == "" {
		return apiError("channel_not_found")
	}
	if user == "" {
		return apiError("user_not_in_channel")
	}
	if !hasContent(p) {
		return apiError("no_text")
	}
	m := &message{channel: ch, user: user, text: p.Get("text"), threadTS: p.Get("thread_ts"), blocks: blocksParam(p), fromBot: true, ephemeral: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code := s.admitLocked("chat.postEphemeral to "+ch, m.text, m.blocks); code != "" {
		return apiError(code)
	}
	ts := s.nextTSLocked()
	s.messages[ts] = m
	s.postLocked(Post{Method: "chat.postEphemeral", Channel: ch, User: user, TS: ts, ThreadTS: m.threadTS, Text: m.text, Blocks: m.blocks})
	return map[string]any{"ok": true, "message_ts": ts}
}

func (s *Server) chatUpdate(p url.Values) any {
	ch, ts := p.Get("channel"), p.Get("ts")
	text, blocks := p.Get("text"), blocksParam(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[ts]
	if !ok || m.channel != ch {
		return apiError("message_not_found")
	}
	if !m.fromBot || m.ephemeral {
		return apiError("cant_update_message")
	}
	meta, code := s.metadataLocked("chat.update of "+ch+" "+ts, p)
	if code != "" {
		return apiError(code)
	}
	if code := s.admitLocked("chat.update of "+ch+" "+ts, text, blocks); code != "" {
		return apiError(code)
	}
	m.text = text
	if blocks != nil {
		m.blocks = blocks
	}
	if meta != nil {
		m.metadata = meta
	}
	s.postLocked(Post{Method: "chat.update", Channel: ch, TS: ts, ThreadTS: m.threadTS, Text: text, Blocks: blocks, Metadata: meta})
	return map[string]any{"ok": true, "channel": ch, "ts": ts, "text": text, "message": botMessage(ts, m)}
}

func (s *Server) usersInfo(p url.Values) any {
	id := p.Get("user")
	s.mu.Lock()
	name, ok := s.users[id]
	s.mu.Unlock()
	if !ok {
		return apiError("user_not_found")
	}
	return map[string]any{"ok": true, "user": map[string]any{
		"id":        id,
		"team_id":   TeamID,
		"name":      name,
		"real_name": name,
		"is_bot":    id == BotUserID,
		"profile":   map[string]any{"real_name": name, "display_name": name},
	}}
}

func (s *Server) usergroupsUsersList(p url.Values) any {
	s.mu.Lock()
	members, ok := s.groups[p.Get("usergroup")]
	s.mu.Unlock()
	if !ok {
		return apiError("no_such_subteam")
	}
	return map[string]any{"ok": true, "users": append([]string{}, members...)}
}

func (s *Server) filesGetUploadURLExternal(p url.Values) any {
	name := p.Get("filename")
	length, err := strconv.Atoi(p.Get("length"))
	if name == "" || err != nil || length <= 0 {
		return apiError("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("F%08d", s.nextIDLocked())
	s.uploads[id] = &upload{name: name, length: length}
	return map[string]any{"ok": true, "file_id": id, "upload_url": s.http.URL + "/upload/" + id}
}

// serveUpload takes the file bytes for an upload URL, as multipart (what
// slack-go sends) or as a raw body.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	content, err := uploadedContent(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	u.content, u.uploaded = content, true
	if len(content) != u.length {
		s.violateLocked("upload of %s (%s): files.getUploadURLExternal announced %d bytes, got %d", id, u.name, u.length, len(content))
	}
	fmt.Fprintf(w, "OK - %d", len(content))
}

func uploadedContent(r *http.Request) ([]byte, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return io.ReadAll(r.Body)
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("no file part: %w", err)
		}
		if part.FormName() == "file" {
			return io.ReadAll(part)
		}
	}
}

func (s *Server) filesCompleteUploadExternal(p url.Values) any {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(p.Get("files")), &files); err != nil || len(files) == 0 {
		return apiError("invalid_arguments")
	}
	channels := []string{p.Get("channel_id")}
	if cs := p.Get("channels"); cs != "" {
		channels = strings.Split(cs, ",")
	}
	comment, blocks, threadTS := p.Get("initial_comment"), blocksParam(p), p.Get("thread_ts")
	s.mu.Lock()
	defer s.mu.Unlock()
	if code := s.admitLocked("files.completeUploadExternal to "+strings.Join(channels, ","), comment, blocks); code != "" {
		return apiError(code)
	}
	var summaries []map[string]any
	for i, f := range files {
		u, ok := s.uploads[f.ID]
		if !ok || !u.uploaded {
			return apiError("file_not_found")
		}
		if f.Title == "" {
			files[i].Title = u.name
		}
		summaries = append(summaries, map[string]any{"id": f.ID, "title": files[i].Title})
	}
	for _, f := range files {
		u := s.uploads[f.ID]
		for _, ch := range channels {
			s.postLocked(Post{
				Method: "files.upload", Channel: ch, ThreadTS: threadTS, Text: comment, Blocks: blocks,
				File: &File{ID: f.ID, Name: u.name, Title: f.Title, Content: bytes.Clone(u.content)},
			})
		}
	}
	return map[string]any{"ok": true, "files": summaries}
}

// serveResponseURL takes the bot's answers to a slash command or click.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if s.takeRateLimit(w, "response_url", "") {
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/response/")
	var body struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
		ThreadTS        string          `json:"thread_ts"`
	}
	err := json.NewDecoder(r.Body).Decode(&body)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.violateLocked("response_url %s: invalid JSON: %v", id, err)
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	ru, ok := s.responseURLs[id]
	if !ok {
		http.Error(w, "no_such_url", http.StatusNotFound)
		return
	}
	ru.uses++
	if ru.uses > maxResponseURLUses {
		s.violateLocked("response_url %s used %d times, Slack allows %d", id, ru.uses, maxResponseURLUses)
		http.Error(w, "used_url", http.StatusNotFound)
		return
	}
	if isNull(body.Blocks) {
		body.Blocks = nil
	}
	if !body.DeleteOriginal && body.Text == "" && body.Blocks == nil {
		writeJSONStatus(w, http.StatusOK, apiError("no_text"))
		return
	}
	if code := s.admitLocked("response_url for "+ru.channel, body.Text, body.Blocks); code != "" {
		writeJSONStatus(w, http.StatusOK, apiError(code))
		return
	}
	if body.ResponseType != "in_channel" {
		body.ResponseType = "ephemeral"
	}
	post := Post{
		Method: "response_url", Channel: ru.channel, User: ru.user, ThreadTS: body.ThreadTS,
		Text: body.Text, Blocks: body.Blocks, ResponseType: body.ResponseType,
		ReplaceOriginal: body.ReplaceOriginal, DeleteOriginal: body.DeleteOriginal,
	}
	if body.ReplaceOriginal || body.DeleteOriginal {
		post.TS = ru.messageTS
		if m, ok := s.messages[ru.messageTS]; ok {
			if body.DeleteOriginal {
				delete(s.messages, ru.messageTS)
			} else {
				m.text = body.Text
				m.blocks = body.Blocks
			}
		}
	}
	s.postLocked(post)
	writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true})
}
