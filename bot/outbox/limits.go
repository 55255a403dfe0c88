package outbox

import (
	"time"

	"golang.org/x/time/rate"
)

// Rate is one lane's pace: a call every Every, Burst at once after a quiet
// spell. A zero Every leaves the lane unpaced (it still honours 429s).
type Rate struct {
	Every time.Duration
	Burst int
}

// Limits are the client-side rates by Slack method ("chat.postMessage",
// "chat.update", ..., "files.upload" for the upload flow, "response_url").
// chat.postMessage's applies to each channel; the others to the method as
// a whole.
type Limits map[string]Rate

// DefaultLimits are Slack's published limits
// (https://api.slack.com/apis/rate-limits), without their bursts: posting
// at the sustained rate, the bot never needs a burst Slack may refuse.
// response_url is not a Web API method and has no tier.
var DefaultLimits = Limits{
	"chat.postMessage":      {Every: time.Second, Burst: 1},             // about 1 a second per channel
	"chat.update":           {Every: 1200 * time.Millisecond, Burst: 1}, // Tier 3: 50 a minute
	"chat.postEphemeral":    {Every: 600 * time.Millisecond, Burst: 1},  // Tier 4: 100 a minute
	"conversations.history": {Every: 1200 * time.Millisecond, Burst: 1}, // Tier 3
	"files.upload":          {Every: 1200 * time.Millisecond, Burst: 1}, // two Tier 4 calls per upload
	"views.publish":         {Every: 600 * time.Millisecond, Burst: 1},  // Tier 4
}

func (l Limits) limiter(method string) *rate.Limiter {
	r, ok := l[method]
	if !ok || r.Every <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Every(r.Every), max(r.Burst, 1))
}
