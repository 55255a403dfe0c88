package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Notice is what the bot posted about one event from outside, such as an
// Alertmanager alert that fires or resolves. Its key names the event, so
// the event is announced once however often it is delivered, to however
// many replicas, across restarts.
type Notice struct {
	Schema int    `json:"schema"`
	Key    string `json:"key"`
	// State is "claimed" while one replica posts, "posted" after.
	State     string    `json:"state"`
	ClaimedAt time.Time `json:"claimed_at"`
	// Channel and MessageTS are the message posted (MessageTS is "" for a
	// reply in someone else's thread, which the bot cannot edit later);
	// ThreadTS is the thread it went to.
	Channel   string            `json:"channel,omitempty"`
	MessageTS string            `json:"message_ts,omitempty"`
	ThreadTS  string            `json:"thread_ts,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
}

// Notice states.
const (
	NoticeClaimed = "claimed"
	NoticePosted  = "posted"
)

// errNoticeTaken aborts a claim whose notice exists.
var errNoticeTaken = errors.New("notice taken")

// ClaimNotice reserves key for the caller, who then posts and saves the
// notice with PutNotice (or gives it up with DeleteNotice). It reports
// false when the notice is posted, or claimed less than stale ago by
// someone else; a claim older than stale is a claimer that died before it
// finished, and is taken over. The claim expires after ttl.
func (s *Store) ClaimNotice(ctx context.Context, key string, stale, ttl time.Duration) (bool, error) {
	if err := checkNoticeKey(key); err != nil {
		return false, err
	}
	now := s.now()
	err := s.b.update(ctx, kindNotices, key, ttl, func(old []byte) ([]byte, error) {
		if old != nil {
			var n Notice
			if err := decodeRecord(kindNotices, key, old, &n); err != nil {
				return nil, err
			}
			if n.State != NoticeClaimed || now.Sub(n.ClaimedAt) < stale {
				return nil, errNoticeTaken
			}
		}
		return json.Marshal(Notice{Schema: SchemaVersion, Key: key, State: NoticeClaimed, ClaimedAt: now})
	})
	if errors.Is(err, errNoticeTaken) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: claim notice %q: %w", key, err)
	}
	return true, nil
}

// PutNotice saves n under n.Key, replacing the claim; it expires after
// ttl.
func (s *Store) PutNotice(ctx context.Context, n Notice, ttl time.Duration) error {
	if err := checkNoticeKey(n.Key); err != nil {
		return err
	}
	n.Schema = SchemaVersion
	w, err := putJSONWrite(kindNotices, n.Key, n)
	if err != nil {
		return err
	}
	w.op.ttl = ttl
	return s.write(ctx, w)
}

// Notice returns the notice under key, or ErrNotFound.
func (s *Store) Notice(ctx context.Context, key string) (Notice, error) {
	var n Notice
	if err := checkNoticeKey(key); err != nil {
		return n, err
	}
	return n, s.getJSON(ctx, kindNotices, key, &n)
}

// DeleteNotice gives up a claim (a post that failed), so a redelivery of
// the event posts it. A missing notice is ErrNotFound.
func (s *Store) DeleteNotice(ctx context.Context, key string) error {
	if err := checkNoticeKey(key); err != nil {
		return err
	}
	return s.deleteOne(ctx, kindNotices, key)
}

func checkNoticeKey(key string) error {
	switch {
	case key == "":
		return errors.New("store: notice: empty key")
	case strings.Contains(key, sep):
		return fmt.Errorf("store: notice: key %q contains NUL", key)
	}
	return nil
}
