package slacktest

import (
	"fmt"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// Slack's rate limits, as this server can apply them
// (https://api.slack.com/apis/rate-limits): each Web API method belongs to
// a tier that allows so many calls a minute to an app in a workspace, with
// short bursts; chat.postMessage allows about one message a second in each
// channel. A call beyond its limit is answered HTTP 429 with a Retry-After
// header in whole seconds, and the limit's scope (the method, or the
// method in one channel) stays closed until then: a call inside that
// window is refused again and counted as a mistake of the client
// (InsideRetryAfter), since Slack asks clients to wait it out.
//
// The limits are off unless WithRateLimits is given, so tests that do not
// care never meet them. RateLimit forces 429s on the next calls of a method
// either way; the windows those announce are counted too.

// Rate is one limit: a call every Every, up to Burst at once after a quiet
// spell.
type Rate struct {
	Every time.Duration
	Burst int
}

// RateLimits are the limits a Server applies.
type RateLimits struct {
	// Methods limits each method as a whole ("chat.update",
	// "response_url", ...); a method not listed is not limited.
	Methods map[string]Rate
	// PostPerChannel limits chat.postMessage in each channel; zero Every
	// leaves it unlimited.
	PostPerChannel Rate
}

// SlackRateLimits are Slack's published limits for the methods the bot
// calls: chat.postMessage about one a second per channel with a short
// burst, chat.update and conversations.history Tier 3 (50 a minute),
// chat.postEphemeral and the file upload methods Tier 4 (100 a minute),
// usergroups.users.list Tier 2 (20 a minute).
func SlackRateLimits() RateLimits {
	tier2 := Rate{Every: 3 * time.Second, Burst: 3}
	tier3 := Rate{Every: 1200 * time.Millisecond, Burst: 3}
	tier4 := Rate{Every: 600 * time.Millisecond, Burst: 5}
	return RateLimits{
		PostPerChannel: Rate{Every: time.Second, Burst: 2},
		Methods: map[string]Rate{
			"chat.update":                  tier3,
			"conversations.history":        tier3,
			"chat.postEphemeral":           tier4,
			"files.getUploadURLExternal":   tier4,
			"files.completeUploadExternal": tier4,
			"usergroups.users.list":        tier2,
		},
	}
}

// WithRateLimits makes the server apply limits (see SlackRateLimits).
func WithRateLimits(limits RateLimits) Option {
	return func(s *Server) {
		s.pace = &pace{limits: limits, buckets: map[string]*rate.Limiter{}}
	}
}

// pace is the state of the limits applied: a token bucket per scope.
type pace struct {
	limits  RateLimits
	buckets map[string]*rate.Limiter
}

// RateLimit makes the next n calls of method (a Web API method name, or
// "response_url") answer HTTP 429 with a Retry-After header of retryAfter in
// whole seconds, rounded up and at least 1, which slack-go turns into a
// *slack.RateLimitedError.
func (s *Server) RateLimit(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimits[method] = n
	s.retryAfter[method] = retryAfter
}

// RateLimited is how many 429s method has answered so far.
func (s *Server) RateLimited(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited[method]
}

// InsideRetryAfter lists the calls made inside a Retry-After this server
// had announced for their scope, each with how early it came: a client
// that honours Retry-After makes none.
func (s *Server) InsideRetryAfter() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.inside...)
}

// takeRateLimit answers 429 and reports true when the call of method (in
// channel, for chat.postMessage) is refused: forced by RateLimit, inside
// an announced Retry-After while the limits are on, or beyond its limit.
func (s *Server) takeRateLimit(w http.ResponseWriter, method, channel string) bool {
	scopes := []string{method}
	if method == "chat.postMessage" {
		scopes = append(scopes, method+" in "+channel)
	}
	now := time.Now()
	s.mu.Lock()
	var (
		wait    time.Duration
		refused string // the scope a new Retry-After closes
	)
	for _, scope := range scopes {
		if until, ok := s.closedUntil[scope]; ok && now.Before(until) {
			s.inside = append(s.inside, fmt.Sprintf("%s %v before its Retry-After ended", scope, until.Sub(now).Round(time.Millisecond)))
			if s.pace != nil {
				wait = max(wait, until.Sub(now))
			}
		}
	}
	if wait == 0 && s.rateLimits[method] > 0 {
		s.rateLimits[method]--
		wait, refused = max(s.retryAfter[method], time.Nanosecond), scopes[len(scopes)-1]
	}
	if wait == 0 && s.pace != nil {
		for _, scope := range scopes {
			b := s.pace.bucketLocked(scope, method)
			if b == nil || b.AllowN(now, 1) {
				continue
			}
			// Slack names the time until the scope has room again.
			wait, refused = time.Duration((1-b.TokensAt(now))/float64(b.Limit())*float64(time.Second)), scope
			break
		}
	}
	if wait == 0 {
		s.mu.Unlock()
		return false
	}
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	if refused != "" {
		s.closedUntil[refused] = now.Add(time.Duration(secs) * time.Second)
	}
	s.rateLimited[method]++
	s.notifyLocked()
	s.mu.Unlock()
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	writeJSONStatus(w, http.StatusTooManyRequests, apiError("ratelimited"))
	return true
}

// bucketLocked is scope's token bucket, nil when scope is not limited.
func (p *pace) bucketLocked(scope, method string) *rate.Limiter {
	if b, ok := p.buckets[scope]; ok {
		return b
	}
	r, ok := p.limits.Methods[method]
	if scope != method {
		r, ok = p.limits.PostPerChannel, true
	}
	if !ok || r.Every <= 0 {
		p.buckets[scope] = nil
		return nil
	}
	b := rate.NewLimiter(rate.Every(r.Every), max(r.Burst, 1))
	p.buckets[scope] = b
	return b
}
