package slacktest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/redisbot/redisbot/bot/slacktest"
)

const wait = 5 * time.Second

// testBot is the real slack-go Socket Mode client, run the way a bot runs
// it, with the requests it receives handed to the test.
type testBot struct {
	api      *slack.Client
	sm       *socketmode.Client
	requests chan socketmode.Event
	hellos   chan struct{}
}

func newAPI(s *slacktest.Server) *slack.Client {
	return slack.New(slacktest.BotToken, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(slacktest.AppToken))
}

// startBot connects a client; with autoAck it acks every request on
// receipt, as a well-behaved bot does.
func startBot(t *testing.T, s *slacktest.Server, autoAck bool, opts ...socketmode.Option) *testBot {
	t.Helper()
	b := &testBot{
		api:      newAPI(s),
		requests: make(chan socketmode.Event, 100),
		hellos:   make(chan struct{}, 100),
	}
	b.sm = socketmode.New(b.api, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-b.sm.Events:
				switch ev.Type {
				case socketmode.EventTypeHello:
					b.hellos <- struct{}{}
				case socketmode.EventTypeSlashCommand, socketmode.EventTypeEventsAPI, socketmode.EventTypeInteractive:
					if autoAck {
						_ = b.sm.AckCtx(ctx, ev.Request.EnvelopeID, nil)
					}
					select {
					case b.requests <- ev:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return b
}

func (b *testBot) waitHello(t *testing.T) {
	t.Helper()
	select {
	case <-b.hellos:
	case <-time.After(wait):
		t.Fatal("no hello from the server")
	}
}

func (b *testBot) next(t *testing.T) socketmode.Event {
	t.Helper()
	select {
	case ev := <-b.requests:
		return ev
	case <-time.After(wait):
		t.Fatal("no request reached the bot")
		return socketmode.Event{}
	}
}

func TestSlashCommandIsDeliveredAndAcked(t *testing.T) {
	s := slacktest.New(t)
	s.AddUser("U1", "alice")
	b := startBot(t, s, true)
	b.waitHello(t)

	id := s.SlashCommand(slack.SlashCommand{Command: "/redis", Text: "diag cache-1", ChannelID: "C1", ChannelName: "ops", UserID: "U1"})
	ev := b.next(t)
	if ev.Type != socketmode.EventTypeSlashCommand || ev.Request.EnvelopeID != id {
		t.Fatalf("got %s envelope %q, want slash_commands %q", ev.Type, ev.Request.EnvelopeID, id)
	}
	cmd := ev.Data.(slack.SlashCommand)
	if cmd.Command != "/redis" || cmd.Text != "diag cache-1" || cmd.ChannelID != "C1" || cmd.ChannelName != "ops" ||
		cmd.UserID != "U1" || cmd.UserName != "alice" || cmd.TeamID != slacktest.TeamID || cmd.TriggerID == "" {
		t.Errorf("slash command = %+v", cmd)
	}
	if !strings.HasPrefix(cmd.ResponseURL, strings.TrimSuffix(s.APIURL(), "api/")) {
		t.Errorf("response_url %q does not point at the server", cmd.ResponseURL)
	}
	if !ev.Request.AcceptsResponsePayload {
		t.Error("slash command envelope does not accept a response payload")
	}
	if d := s.WaitAck(t, id, wait); d <= 0 || d > wait {
		t.Errorf("ack took %v", d)
	}
	if !s.Acked(id) {
		t.Error("Acked = false after WaitAck")
	}

	ctx := context.Background()
	if _, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeInChannel), slack.MsgOptionText("done", false)); err != nil {
		t.Fatalf("post to response_url: %v", err)
	}
	p := s.WaitPosts(t, 1, wait, func(p slacktest.Post) bool { return p.Method == "response_url" })[0]
	if p.Channel != "C1" || p.User != "U1" || p.Text != "done" || p.ResponseType != "in_channel" {
		t.Errorf("response_url post = %v", p)
	}
	if id2 := s.SlashCommand(slack.SlashCommand{Command: "/redis", ChannelID: "C1", UserID: "U1"}); id2 == id {
		t.Error("second command reused the envelope_id")
	}
	if cmd2 := b.next(t).Data.(slack.SlashCommand); cmd2.ResponseURL == cmd.ResponseURL {
		t.Error("second command reused the response_url")
	}
	if v := s.Violations(); len(v) > 0 {
		t.Errorf("violations: %q", v)
	}
}

func TestAckPayloadIsShownAsResponse(t *testing.T) {
	s := slacktest.New(t)
	b := startBot(t, s, false)
	id := s.SlashCommand(slack.SlashCommand{Command: "/redis", ChannelID: "C1", UserID: "U1"})
	ev := b.next(t)
	if err := b.sm.Ack(*ev.Request, map[string]any{"text": "working on it"}); err != nil {
		t.Fatal(err)
	}
	s.WaitAck(t, id, wait)
	p := s.WaitPosts(t, 1, wait, nil)[0]
	if p.Method != "ack" || p.Text != "working on it" || p.ResponseType != "ephemeral" || p.Channel != "C1" {
		t.Errorf("ack post = %v", p)
	}
}

func TestPostUpdateAndEphemeralRoundTrip(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	ctx := context.Background()

	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "cache-1: memory", false, false)),
		slack.NewSectionBlock(
			slack.NewTextBlockObject(slack.MarkdownType, "*used_memory* is 95% of maxmemory", false, false),
			[]*slack.TextBlockObject{
				slack.NewTextBlockObject(slack.MarkdownType, "*used*\n9.5 GB", false, false),
				slack.NewTextBlockObject(slack.MarkdownType, "*max*\n10 GB", false, false),
			}, nil),
		slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "probed 12:00", false, false)),
		slack.NewActionBlock("act", slack.NewButtonBlockElement("runbook", "evict", slack.NewTextBlockObject(slack.PlainTextType, "Open runbook", false, false))),
	}
	ch, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("cache-1 memory report", false), slack.MsgOptionBlocks(blocks...), slack.MsgOptionTS("1699999999.000001"))
	if err != nil {
		t.Fatalf("PostMessage: %v", err)
	}
	if ch != "C1" || ts == "" {
		t.Fatalf("PostMessage = %q, %q", ch, ts)
	}
	_, ts2, _, err := api.PostMessageWithResponseContext(ctx, "C1", slack.MsgOptionText("second", false))
	if err != nil {
		t.Fatal(err)
	}
	if ts2 <= ts {
		t.Errorf("ts %q after %q does not increase", ts2, ts)
	}

	posts := s.Posts()
	if len(posts) != 2 {
		t.Fatalf("Posts() = %v", posts)
	}
	p := posts[0]
	if p.Method != "chat.postMessage" || p.Channel != "C1" || p.TS != ts || p.ThreadTS != "1699999999.000001" || p.Text != "cache-1 memory report" {
		t.Errorf("post = %v", p)
	}
	want := "cache-1: memory\n*used_memory* is 95% of maxmemory\n*used*\n9.5 GB\n*max*\n10 GB\nprobed 12:00\nOpen runbook"
	if got := p.BlocksText(); got != want {
		t.Errorf("BlocksText() = %q, want %q", got, want)
	}

	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("resolved", false)); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	if up := s.Posts()[2]; up.Method != "chat.update" || up.TS != ts || up.Text != "resolved" {
		t.Errorf("update post = %v", up)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", "1.000000", slack.MsgOptionText("x", false)); err == nil || err.Error() != "message_not_found" {
		t.Errorf("update of unknown ts: err = %v, want message_not_found", err)
	}

	ets, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false))
	if err != nil || ets == "" {
		t.Fatalf("PostEphemeral = %q, %v", ets, err)
	}
	if ep := s.Posts()[3]; ep.Method != "chat.postEphemeral" || ep.User != "U1" || ep.TS != ets {
		t.Errorf("ephemeral post = %v", ep)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ets, slack.MsgOptionText("x", false)); err == nil || err.Error() != "cant_update_message" {
		t.Errorf("update of ephemeral: err = %v, want cant_update_message", err)
	}
}

func TestTokensAreChecked(t *testing.T) {
	s := slacktest.New(t)
	ctx := context.Background()
	if r, err := newAPI(s).AuthTestContext(ctx); err != nil || r.UserID != slacktest.BotUserID {
		t.Errorf("auth.test = %+v, %v", r, err)
	}
	for token, want := range map[string]string{"xoxb-other": "invalid_auth", slacktest.AppToken: "not_allowed_token_type"} {
		api := slack.New(token, slack.OptionAPIURL(s.APIURL()))
		if _, err := api.AuthTestContext(ctx); err == nil || err.Error() != want {
			t.Errorf("auth.test with %s: err = %v, want %s", token, err, want)
		}
	}
	botAsApp := slack.New(slacktest.BotToken, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(slacktest.BotToken))
	if _, _, err := socketmode.New(botAsApp).OpenContext(ctx); err == nil || err.Error() != "not_allowed_token_type" {
		t.Errorf("apps.connections.open with the bot token: err = %v", err)
	}
}

func TestRateLimitYieldsRateLimitedError(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	ctx := context.Background()
	s.RateLimit("chat.postMessage", 1, 1500*time.Millisecond)

	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
	rl, ok := errors.AsType[*slack.RateLimitedError](err)
	if !ok {
		t.Fatalf("err = %v (%T), want *slack.RateLimitedError", err, err)
	}
	if rl.RetryAfter != 2*time.Second {
		t.Errorf("RetryAfter = %v, want 2s (rounded up)", rl.RetryAfter)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("second call: %v", err)
	}
	if n := s.RateLimited("chat.postMessage"); n != 1 {
		t.Errorf("RateLimited = %d, want 1", n)
	}
	if n := len(s.Posts()); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
}

func TestUnackedEnvelopeIsRedelivered(t *testing.T) {
	s := slacktest.New(t, slacktest.WithRedeliverAfter(200*time.Millisecond))
	b := startBot(t, s, false)
	id := s.SlashCommand(slack.SlashCommand{Command: "/redis", ChannelID: "C1", UserID: "U1"})

	first := b.next(t)
	second := b.next(t)
	if first.Request.EnvelopeID != id || second.Request.EnvelopeID != id {
		t.Fatalf("envelope ids %q, %q, want %q twice", first.Request.EnvelopeID, second.Request.EnvelopeID, id)
	}
	if first.Request.RetryAttempt != 0 || second.Request.RetryAttempt != 1 || second.Request.RetryReason != "timeout" {
		t.Errorf("retries: first %d %q, second %d %q", first.Request.RetryAttempt, first.Request.RetryReason, second.Request.RetryAttempt, second.Request.RetryReason)
	}
	if err := b.sm.Ack(*second.Request); err != nil {
		t.Fatal(err)
	}
	if d := s.WaitAck(t, id, wait); d < 200*time.Millisecond {
		t.Errorf("ack after %v, want at least the redelivery delay", d)
	}
	time.Sleep(400 * time.Millisecond)
	if n := s.Deliveries(id); n != 2 {
		t.Errorf("Deliveries = %d, want 2", n)
	}
}

func TestDroppedConnectionReconnectsAndRedelivers(t *testing.T) {
	s := slacktest.New(t)
	b := startBot(t, s, false)
	b.waitHello(t)
	id := s.SlashCommand(slack.SlashCommand{Command: "/redis", ChannelID: "C1", UserID: "U1"})
	if ev := b.next(t); ev.Request.EnvelopeID != id {
		t.Fatalf("got envelope %q", ev.Request.EnvelopeID)
	}

	s.DropConnections() // before the bot acks
	b.waitHello(t)
	if n := s.Connections(); n != 2 {
		t.Errorf("Connections = %d, want 2", n)
	}
	ev := b.next(t)
	if ev.Request.EnvelopeID != id || ev.Request.RetryAttempt != 1 {
		t.Fatalf("redelivery: envelope %q attempt %d", ev.Request.EnvelopeID, ev.Request.RetryAttempt)
	}
	if err := b.sm.Ack(*ev.Request); err != nil {
		t.Fatal(err)
	}
	s.WaitAck(t, id, wait)

	id2 := s.SlashCommand(slack.SlashCommand{Command: "/redis", ChannelID: "C1", UserID: "U1"})
	if ev := b.next(t); ev.Request.EnvelopeID != id2 {
		t.Fatalf("after reconnect got envelope %q, want %q", ev.Request.EnvelopeID, id2)
	}
}

func TestDisconnectMakesTheClientReconnect(t *testing.T) {
	s := slacktest.New(t)
	b := startBot(t, s, true)
	b.waitHello(t)

	s.Disconnect("refresh_requested")
	b.waitHello(t)
	if n := s.Connections(); n != 2 {
		t.Errorf("Connections = %d, want 2", n)
	}
	id := s.SlashCommand(slack.SlashCommand{Command: "/redis", ChannelID: "C1", UserID: "U1"})
	if ev := b.next(t); ev.Request.EnvelopeID != id {
		t.Fatalf("got envelope %q, want %q", ev.Request.EnvelopeID, id)
	}
	s.WaitAck(t, id, wait)
}

func TestEnvelopesAreSpreadOverConnections(t *testing.T) {
	s := slacktest.New(t)
	a, b := startBot(t, s, true), startBot(t, s, true)
	a.waitHello(t)
	b.waitHello(t)
	var ids []string
	for range 4 {
		ids = append(ids, s.SlashCommand(slack.SlashCommand{Command: "/redis", ChannelID: "C1", UserID: "U1"}))
	}
	var got []string
	for range 2 {
		got = append(got, a.next(t).Request.EnvelopeID, b.next(t).Request.EnvelopeID)
	}
	slices.Sort(ids)
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("delivered %q, want each of %q once", got, ids)
	}
}

func TestPingsKeepTheConnection(t *testing.T) {
	s := slacktest.New(t, slacktest.WithPingInterval(50*time.Millisecond))
	b := startBot(t, s, true, socketmode.OptionPingInterval(300*time.Millisecond))
	b.waitHello(t)
	time.Sleep(time.Second)
	if n := s.Connections(); n != 1 {
		t.Errorf("Connections = %d, want 1: the client timed out waiting for PINGs", n)
	}
}

func TestClientDropsAConnectionWithoutPings(t *testing.T) {
	s := slacktest.New(t, slacktest.WithPingInterval(time.Hour))
	b := startBot(t, s, true, socketmode.OptionPingInterval(200*time.Millisecond))
	b.waitHello(t)
	b.waitHello(t)
	if n := s.Connections(); n < 2 {
		t.Errorf("Connections = %d, want a reconnect after the ping timeout", n)
	}
}

func TestAppMention(t *testing.T) {
	s := slacktest.New(t)
	b := startBot(t, s, true)
	id := s.AppMention("C1", "U1", "<@UBOT> diag cache-1")
	ev := b.next(t)
	outer := ev.Data.(slackevents.EventsAPIEvent)
	m, ok := outer.InnerEvent.Data.(*slackevents.AppMentionEvent)
	if !ok || outer.TeamID != slacktest.TeamID || outer.APIAppID != slacktest.AppID {
		t.Fatalf("event = %+v", outer)
	}
	if m.Channel != "C1" || m.User != "U1" || m.Text != "<@UBOT> diag cache-1" || m.TimeStamp != s.MessageTS(id) || m.TimeStamp == "" {
		t.Errorf("app_mention = %+v", m)
	}
	s.WaitAck(t, id, wait)
}

func TestClickCarriesTheMessageAndResponseURL(t *testing.T) {
	s := slacktest.New(t)
	b := startBot(t, s, true)
	ctx := context.Background()
	button := slack.NewButtonBlockElement("approve", "plan-7", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
	_, ts, err := b.api.PostMessageContext(ctx, "C1", slack.MsgOptionText("plan 7", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("plan", button)), slack.MsgOptionTS("1699999999.000001"))
	if err != nil {
		t.Fatal(err)
	}

	id := s.Click("U2", "C1", ts, slack.BlockAction{ActionID: "approve", BlockID: "plan", Type: "button", Value: "plan-7"})
	ev := b.next(t)
	cb := ev.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U2" || cb.Channel.ID != "C1" {
		t.Fatalf("callback = %+v", cb)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("actions = %+v", cb.ActionCallback)
	}
	if a := cb.ActionCallback.BlockActions[0]; a.ActionID != "approve" || a.BlockID != "plan" || a.Value != "plan-7" || a.ActionTs == "" {
		t.Errorf("action = %+v", a)
	}
	if cb.Message.Timestamp != ts || cb.Message.ThreadTimestamp != "1699999999.000001" || cb.Container.MessageTs != ts || cb.Container.ChannelID != "C1" {
		t.Errorf("message ts %q thread %q, container %+v", cb.Message.Timestamp, cb.Message.ThreadTimestamp, cb.Container)
	}
	if len(cb.Message.Blocks.BlockSet) != 1 || cb.ResponseURL == "" || cb.TriggerID == "" {
		t.Errorf("blocks %d, response_url %q, trigger_id %q", len(cb.Message.Blocks.BlockSet), cb.ResponseURL, cb.TriggerID)
	}
	s.WaitAck(t, id, wait)

	if _, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionReplaceOriginal(cb.ResponseURL), slack.MsgOptionText("approved by U2", false)); err != nil {
		t.Fatal(err)
	}
	p := s.WaitPosts(t, 1, wait, func(p slacktest.Post) bool { return p.Method == "response_url" })[0]
	if !p.ReplaceOriginal || p.TS != ts || p.Text != "approved by U2" || p.User != "U2" {
		t.Errorf("replacement = %v", p)
	}
}

func TestFilesUploadV2(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	content := "used_memory:1000\n"
	f, err := api.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Filename: "info.txt", Title: "INFO cache-1", Content: content, FileSize: len(content),
		Channel: "C1", ThreadTimestamp: "1700000000.000100", InitialComment: "raw INFO",
	})
	if err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	if f.ID == "" || f.Title != "INFO cache-1" {
		t.Errorf("file summary = %+v", f)
	}
	p := s.WaitPosts(t, 1, wait, nil)[0]
	if p.Method != "files.upload" || p.Channel != "C1" || p.ThreadTS != "1700000000.000100" || p.Text != "raw INFO" || p.File == nil {
		t.Fatalf("post = %v", p)
	}
	if p.File.ID != f.ID || p.File.Name != "info.txt" || p.File.Title != "INFO cache-1" || string(p.File.Content) != content {
		t.Errorf("file = %+v", p.File)
	}
	if v := s.Violations(); len(v) > 0 {
		t.Errorf("violations: %q", v)
	}
}

func TestUsersAndUserGroups(t *testing.T) {
	s := slacktest.New(t)
	s.AddUserGroup("S1", "U1", "U2")
	s.AddUser("U1", "alice")
	api := newAPI(s)
	ctx := context.Background()

	members, err := api.GetUserGroupMembersContext(ctx, "S1")
	if err != nil || !slices.Equal(members, []string{"U1", "U2"}) {
		t.Errorf("members = %q, %v", members, err)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S9"); err == nil || err.Error() != "no_such_subteam" {
		t.Errorf("unknown group: err = %v", err)
	}
	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.ID != "U1" || u.Name != "alice" {
		t.Errorf("user = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U9"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user: err = %v", err)
	}
}

func TestUnknownMethodIsRecorded(t *testing.T) {
	s := slacktest.New(t)
	_, err := newAPI(s).GetConversationInfoContext(context.Background(), &slack.GetConversationInfoInput{ChannelID: "C1"})
	if err == nil || err.Error() != "unknown_method" {
		t.Errorf("err = %v, want unknown_method", err)
	}
	if got := s.UnknownCalls(); !slices.Equal(got, []string{"conversations.info"}) {
		t.Errorf("UnknownCalls = %q", got)
	}
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func TestViolatingPayloadsAreRejected(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	ctx := context.Background()

	tooMany := make([]slack.Block, 51)
	for i := range tooMany {
		tooMany[i] = slack.NewDividerBlock()
	}
	rejected := []struct {
		name      string
		blocks    []slack.Block
		violation string
	}{
		{"51 blocks", tooMany, "chat.postMessage to C1: 51 blocks, limit 50"},
		{"raw @channel", []slack.Block{section("cache-1 down <!channel>")}, "unescaped mention <!channel>"},
		{"raw user mention", []slack.Block{section("key owner <@U123|bob>")}, "unescaped mention <@U123|bob>"},
	}
	for _, tc := range rejected {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(tc.blocks...))
		if err == nil || err.Error() != "invalid_blocks" {
			t.Errorf("%s: err = %v, want invalid_blocks", tc.name, err)
		}
		if !slices.ContainsFunc(s.Violations(), func(v string) bool { return strings.Contains(v, tc.violation) }) {
			t.Errorf("%s: violations %q lack %q", tc.name, s.Violations(), tc.violation)
		}
	}
	if n := len(s.Posts()); n != 0 {
		t.Errorf("rejected messages were recorded: %v", s.Posts())
	}

	before := len(s.Violations())
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(section("key &lt;!channel&gt; escaped"))); err != nil {
		t.Errorf("escaped mention: %v", err)
	}
	s.AllowMentions("<@U*>")
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(section("requested by <@U1>"))); err != nil {
		t.Errorf("allowed mention: %v", err)
	}
	if v := s.Violations()[before:]; len(v) != 0 {
		t.Errorf("new violations: %q", v)
	}

	// A raw mention in the top-level text notifies too, but Slack accepts it.
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("<!here> cache-1", false)); err != nil {
		t.Errorf("text mention rejected: %v", err)
	}
	if v := s.Violations(); !strings.Contains(v[len(v)-1], "unescaped mention <!here> in text") {
		t.Errorf("violations %q lack the text mention", v)
	}

	// slack-go cannot send broken JSON; a hand-made request can.
	resp, err := http.PostForm(s.APIURL()+"chat.postMessage", url.Values{"token": {slacktest.BotToken}, "channel": {"C1"}, "blocks": {`[{"type":`}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := s.Violations(); !strings.Contains(v[len(v)-1], "invalid JSON in blocks") {
		t.Errorf("violations %q lack the invalid JSON", v)
	}
}

// fatalTB records the failure of a helper that is expected to fail.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitPostsDumpsPostsOnTimeout(t *testing.T) {
	s := slacktest.New(t)
	if _, _, err := newAPI(s).PostMessageContext(context.Background(), "C1", slack.MsgOptionText("only post", false)); err != nil {
		t.Fatal(err)
	}
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WaitPosts(f, 2, 50*time.Millisecond, nil)
	}()
	<-done
	if !strings.Contains(f.msg, "1 matching posts") || !strings.Contains(f.msg, `text="only post"`) {
		t.Errorf("failure message = %q", f.msg)
	}
}

func TestDirectMessageAndAppHome(t *testing.T) {
	s := slacktest.New(t)
	b := startBot(t, s, true)
	id := s.DirectMessage("D1", "U1", "why is cache-1 full?")
	outer := b.next(t).Data.(slackevents.EventsAPIEvent)
	m, ok := outer.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || m.ChannelType != "im" || m.Channel != "D1" || m.User != "U1" || m.Text != "why is cache-1 full?" || m.TimeStamp != s.MessageTS(id) {
		t.Fatalf("message.im = %+v", outer.InnerEvent.Data)
	}
	s.WaitAck(t, id, wait)

	id = s.AppHomeOpened("U1")
	outer = b.next(t).Data.(slackevents.EventsAPIEvent)
	h, ok := outer.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || h.User != "U1" || h.Tab != "home" {
		t.Fatalf("app_home_opened = %+v", outer.InnerEvent.Data)
	}
	s.WaitAck(t, id, wait)

	view := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "fleet: all well", false, false), nil, nil)}}}
	if _, err := b.api.PublishViewContext(context.Background(), slack.PublishViewContextRequest{UserID: "U1", View: view}); err != nil {
		t.Fatal(err)
	}
	if got := s.WaitHome(t, "U1", wait); !strings.Contains(string(got.View), "fleet: all well") {
		t.Errorf("home view = %s", got.View)
	}
	// A modal is not a Home tab.
	modal := slack.HomeTabViewRequest{Type: slack.VTModal}
	if _, err := b.api.PublishViewContext(context.Background(), slack.PublishViewContextRequest{UserID: "U1", View: modal}); err == nil {
		t.Error("a modal published as a Home tab was accepted")
	}
	if v := s.Violations(); len(v) != 1 {
		t.Errorf("violations = %q, want the modal's", v)
	}
}
