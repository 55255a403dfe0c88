// Package slacktest is a local Slack for tests: Web API and Socket Mode over a
// real websocket.
//
// The bot under test talks to it with the real slack-go client (point
// slack.OptionAPIURL at Server.APIURL and use AppToken and BotToken), so an
// end-to-end test exercises the same wire formats, acks, redeliveries,
// reconnects, rate limits and Block Kit limits that production Slack
// imposes. Tests drive it with SlashCommand, AppMention and Click, and
// observe what the bot did with Posts, WaitPosts, Acked and Violations.
package slacktest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The only tokens the server accepts: the app-level token opens Socket Mode
// connections, the bot token calls every other Web API method, as in Slack.
const (
	AppToken = "xapp-1-test-app-token"
	BotToken = "xoxb-test-bot-token"
)

// Identities of the fake workspace, so tests can write mentions of the bot
// ("<@UBOT>") and compare IDs in payloads.
const (
	TeamID    = "T1"
	AppID     = "A1"
	BotUserID = "UBOT"
	BotID     = "B1"
)

const (
	defaultRedeliverAfter = 3 * time.Second
	defaultPingInterval   = 2 * time.Second
	// maxRedeliveries is how often Slack retries an envelope that was not acked.
	maxRedeliveries = 3
	// connectWait bounds how long a driver method waits for the bot to connect.
	connectWait  = 10 * time.Second
	writeTimeout = 10 * time.Second
)

// Option configures a Server.
type Option func(*Server)

// WithRedeliverAfter sets how long an envelope may stay unacked before it is
// sent again (default 3s, Slack's ack deadline). Tests of the redelivery path
// shorten it to stay fast.
func WithRedeliverAfter(d time.Duration) Option {
	return func(s *Server) { s.redeliverAfter = d }
}

// WithPingInterval sets how often every socket gets a websocket PING (default
// 2s). slack-go drops a connection that sees no PING within its own
// socketmode.OptionPingInterval (default 30s), so keep this well below that.
func WithPingInterval(d time.Duration) Option {
	return func(s *Server) { s.pingInterval = d }
}

// Server is a local Slack workspace with one app installed. All methods are
// safe for concurrent use; the driver methods that take no testing.TB
// (SlashCommand, AppMention, Click, AllowMentions) fail the test given to New
// and so must be called from the test's goroutine.
type Server struct {
	t              testing.TB
	http           *httptest.Server
	upgrader       websocket.Upgrader
	redeliverAfter time.Duration
	pingInterval   time.Duration
	wg             sync.WaitGroup // socket goroutines

	mu sync.Mutex
	// changed is closed and replaced on every state change, so that waiters
	// re-check their condition without polling.
	changed      chan struct{}
	closed       bool
	idSeq        int
	lastTS       int64 // microseconds of the last message ts
	tickets      map[string]bool
	conns        []*socketConn // open sockets in connect order
	next         int           // round-robin position in conns
	connections  int
	envelopes    map[string]*envelope
	order        []*envelope // envelopes in creation order, for deterministic redelivery
	pending      []*envelope // waiting for a socket
	posts        []Post
	homes        []HomeView
	messages     map[string]*message // by ts
	responseURLs map[string]*responseURL
	uploads      map[string]*upload
	users        map[string]string
	groups       map[string][]string
	channelNames map[string]string
	rateLimits   map[string]int
	retryAfter   map[string]time.Duration
	rateLimited  map[string]int
	pace         *pace // nil: Slack's rate limits are off
	closedUntil  map[string]time.Time
	inside       []string
	holds        []*hold
	held         map[string]int
	// done is closed when the server closes, releasing held answers.
	done       chan struct{}
	unknown    []string
	violations []string
	allowed    []string
}

// New starts a Server on a loopback port; t.Cleanup closes its sockets and
// shuts it down. It returns the concrete type because tests use the whole
// driver and observer surface, not a subset.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		t:              t,
		redeliverAfter: defaultRedeliverAfter,
		pingInterval:   defaultPingInterval,
		// slack-go dials with Origin https://api.slack.com, which the default
		// same-origin check would refuse on 127.0.0.1.
		upgrader:     websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		changed:      make(chan struct{}),
		tickets:      map[string]bool{},
		envelopes:    map[string]*envelope{},
		messages:     map[string]*message{},
		responseURLs: map[string]*responseURL{},
		uploads:      map[string]*upload{},
		users:        map[string]string{BotUserID: "redisbot"},
		groups:       map[string][]string{},
		channelNames: map[string]string{},
		rateLimits:   map[string]int{},
		retryAfter:   map[string]time.Duration{},
		rateLimited:  map[string]int{},
		closedUntil:  map[string]time.Time{},
		held:         map[string]int{},
		done:         make(chan struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/socket", s.serveSocket)
	mux.HandleFunc("/response/", s.serveResponseURL)
	mux.HandleFunc("/upload/", s.serveUpload)
	s.http = httptest.NewServer(mux)
	t.Cleanup(s.close)
	return s
}

// APIURL is the Web API base URL to pass to slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.http.URL + "/api/" }

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	close(s.done)
	for _, c := range s.conns {
		c.ws.Close()
	}
	for _, e := range s.order {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.http.Close()
	s.wg.Wait()
}

// notifyLocked wakes every waiter; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (called with s.mu held) returns true or timeout
// passes, and reports whether cond became true.
func (s *Server) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		changed := s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

func (s *Server) nextIDLocked() int {
	s.idSeq++
	return s.idSeq
}

// nextTSLocked returns a message timestamp in Slack's "seconds.micros" form,
// unique and increasing, so tests can order and thread by it. Like Slack's
// it is the time of the post, so conversations.history's oldest and latest
// select by time.
func (s *Server) nextTSLocked() string {
	micros := max(time.Now().UnixMicro(), s.lastTS+1)
	s.lastTS = micros
	return fmt.Sprintf("%d.%06d", micros/1000000, micros%1000000)
}

func (s *Server) violateLocked(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
	s.notifyLocked()
}

// AddUser makes users.info know the user.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// AddUserGroup makes usergroups.users.list answer members for the group.
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = append([]string(nil), members...)
}

// AllowMentions lets posted mrkdwn contain the mentions matching any of the
// patterns, which use path.Match syntax against the mention as written, e.g.
// "<@U*>" or "<!subteam^S1>". Without it every raw mention is a violation,
// because a bot that echoes untrusted text must escape it.
func (s *Server) AllowMentions(patterns ...string) {
	s.t.Helper()
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			s.t.Fatalf("slacktest: AllowMentions(%q): %v", p, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed = append(s.allowed, patterns...)
}

func (s *Server) mentionAllowedLocked(mention string) bool {
	for _, p := range s.allowed {
		if ok, _ := path.Match(p, mention); ok {
			return true
		}
	}
	return false
}

// UnknownCalls lists the Web API methods the bot called that this server
// does not implement, in call order, so a test notices a missing fake rather
// than a silently failing bot.
func (s *Server) UnknownCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unknown...)
}

// Violations lists every Block Kit limit, mention-escaping or protocol rule
// the bot broke, in the order seen.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Connections counts the websockets the bot has opened (through a ticket
// from apps.connections.open) since the server started.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// Posts returns everything the bot posted, in order.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// WaitPosts waits until at least n posts satisfy match (nil matches all) and
// returns all the matching ones. On timeout it fails t with a dump of every
// post and violation.
func (s *Server) WaitPosts(t testing.TB, n int, timeout time.Duration, match func(Post) bool) []Post {
	t.Helper()
	var got []Post
	ok := s.waitFor(timeout, func() bool {
		got = got[:0]
		for _, p := range s.posts {
			if match == nil || match(p) {
				got = append(got, p)
			}
		}
		return len(got) >= n
	})
	if !ok {
		t.Fatalf("slacktest: %d matching posts after %v, want %d\n%s", len(got), timeout, n, s.dump())
	}
	return got
}

// dump renders the posts and violations for a failure message.
func (s *Server) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "posts (%d):\n", len(s.posts))
	for i, p := range s.posts {
		fmt.Fprintf(&b, "  [%d] %s\n", i, p)
	}
	if len(s.violations) > 0 {
		fmt.Fprintf(&b, "violations (%d):\n", len(s.violations))
		for _, v := range s.violations {
			fmt.Fprintf(&b, "  %s\n", v)
		}
	}
	return b.String()
}
