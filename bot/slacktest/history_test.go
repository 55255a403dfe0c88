package slacktest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/slacktest"
)

func meta(state string) slack.MsgOption {
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "redisbot_alert", EventPayload: map[string]any{"instance": "cache-1", "state": state}})
}

// Metadata posted with a message (and changed by chat.update) comes back
// from conversations.history with include_all_metadata, on top-level
// messages only, newest first, by page.
func TestHistoryReturnsMetadata(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	ctx := context.Background()
	_, first, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("alert", false), meta("firing"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("in the thread", false), slack.MsgOptionTS(first), meta("firing")); err != nil {
		t.Fatal(err)
	}
	var later []string
	for i := range 3 {
		_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText(fmt.Sprint("note ", i), false))
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, ts)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("elsewhere", false), meta("firing")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", first, slack.MsgOptionText("alert resolved", false), meta("resolved")); err != nil {
		t.Fatal(err)
	}
	if p := s.Posts()[0]; p.Metadata == nil {
		t.Errorf("the post has no metadata: %s", p)
	}
	if got := string(s.Metadata(first)); got == "" || !json.Valid([]byte(got)) {
		t.Errorf("Metadata(%s) = %q", first, got)
	}

	var (
		seen   []string
		cursor string
	)
	for page := 0; ; page++ {
		resp, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C1", Limit: 2, Cursor: cursor, IncludeAllMetadata: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.Messages {
			seen = append(seen, m.Timestamp)
			if m.Timestamp == first && (m.Metadata.EventType != "redisbot_alert" || m.Metadata.EventPayload["state"] != "resolved") {
				t.Errorf("the alert's metadata after the update: %+v", m.Metadata)
			}
		}
		if !resp.HasMore {
			break
		}
		cursor = resp.ResponseMetaData.NextCursor
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	want := []string{later[2], later[1], later[0], first}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("history %v, want %v (newest first, no replies, no other channel)", seen, want)
	}

	// oldest bounds by time; without include_all_metadata there is none.
	resp, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C1", Oldest: later[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 2 {
		t.Errorf("%d messages after %s, want 2", len(resp.Messages), later[0])
	}
	resp, _ = api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C1"})
	for _, m := range resp.Messages {
		if m.Metadata.EventType != "" {
			t.Errorf("metadata without include_all_metadata: %+v", m.Metadata)
		}
	}
	if v := s.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// Metadata that is not an event_type and an event_payload object is
// refused, as Slack refuses it.
func TestBadMetadataIsRejected(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	_, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionText("x", false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "", EventPayload: map[string]any{}}))
	if err == nil || err.Error() != "invalid_metadata_format" {
		t.Errorf("empty event_type: %v", err)
	}
	if len(s.Posts()) != 0 || len(s.Violations()) != 1 {
		t.Errorf("posts %v, violations %v", s.Posts(), s.Violations())
	}
}

// A held answer: the post is made and visible at once, its answer waits
// for release.
func TestHoldAnswers(t *testing.T) {
	s := slacktest.New(t)
	api := newAPI(s)
	release := s.HoldAnswers("chat.postMessage", 1)
	done := make(chan string, 1)
	go func() {
		_, ts, _ := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionText("held", false))
		done <- ts
	}()
	p := s.WaitPosts(t, 1, wait, nil)[0]
	select {
	case <-done:
		t.Fatal("the held answer arrived before release")
	case <-time.After(100 * time.Millisecond):
	}
	if s.Held("chat.postMessage") != 1 {
		t.Errorf("held %d", s.Held("chat.postMessage"))
	}
	release()
	release()
	if ts := <-done; ts != p.TS {
		t.Errorf("answer ts %q, want %q", ts, p.TS)
	}
	// Only n answers are held.
	if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionText("not held", false)); err != nil {
		t.Fatal(err)
	}
}
