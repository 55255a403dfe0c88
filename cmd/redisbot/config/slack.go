package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// Token prefixes: an app-level token opens the Socket Mode connection, a bot
// token calls the Web API. Swapping them is the usual mistake.
const (
	appTokenPrefix = "xapp-"
	botTokenPrefix = "xoxb-"
)

// Slack ids as they appear in Slack's API and in "Copy member ID".
var (
	channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	userIDPattern    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	groupIDPattern   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

func (l *loader) slack(f slackFile) Slack {
	s := f.Slack
	s.AppToken = l.slackToken("app_token", appTokenPrefix, f.AppToken, f.AppTokenFile)
	s.BotToken = l.slackToken("bot_token", botTokenPrefix, f.BotToken, f.BotTokenFile)
	l.p.check("slack.api_url", checkAPIURL(s.APIURL) != "", checkAPIURL(s.APIURL))
	l.p.check("slack.workers", s.Workers <= 0, "must be positive")
	l.p.check("slack.queue", s.Queue <= 0, "must be positive")
	l.p.check("slack.shutdown_timeout", s.ShutdownTimeout <= 0, "must be positive")
	l.p.check("slack.usergroup_ttl", s.UsergroupTTL <= 0, "must be positive")
	l.p.check("slack.slow_workers", s.SlowWorkers <= 0, "must be positive")
	l.p.check("slack.slow_queue", s.SlowQueue <= 0, "must be positive")
	l.p.check("slack.slow_after", s.SlowAfter <= 0, "must be positive")
	return s
}

// slackToken resolves the token called name (app_token, bot_token) from, in
// order of precedence, REDISBOT_SLACK_<NAME>, SLACK_<NAME> (as Slack's
// documentation names them), REDISBOT_SLACK_<NAME>_FILE, and the file's
// name or name_file, which are exclusive. A token that is set must start
// with prefix. Its value never goes into a problem.
func (l *loader) slackToken(name, prefix, inline, file string) string {
	key := "slack." + name
	fileKey := key + "_file"
	if inline != "" && file != "" {
		l.p.addf("slack", "%s and %s_file are exclusive", name, name)
		return ""
	}
	check := func(key, token string) string {
		if !strings.HasPrefix(token, prefix) {
			l.p.addf(key, "must start with %s", prefix)
		}
		return token
	}
	for _, v := range []string{envName(key), "SLACK_" + strings.ToUpper(name)} {
		if token := l.getenv(v); token != "" {
			l.p.fromEnv[key] = v
			return check(key, token)
		}
	}
	if v := envName(fileKey); l.getenv(v) != "" {
		// Like REDISBOT_RUNBOOKS_DIR, a path from the environment is
		// relative to the working directory, not to the file.
		l.p.fromEnv[fileKey] = v
		file = l.getenv(v)
	} else if inline != "" {
		return check(key, inline)
	} else if file != "" {
		file = l.resolve(file)
	}
	if file == "" {
		return ""
	}
	token, err := l.readSecretFile(file)
	if err != nil {
		l.p.add(fileKey, err)
		return ""
	}
	return check(fileKey, token)
}

// checkAPIURL returns what is wrong with a Slack Web API base URL, or "".
// The URL is never quoted: it might carry credentials.
func checkAPIURL(raw string) string {
	if raw == "" {
		return "is required"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Opaque != "" || u.Hostname() == "" {
		return "must be an absolute http(s) URL"
	}
	if u.User != nil {
		return "must not contain a user or password"
	}
	// Method names are appended to the URL ("chat.postMessage").
	if strings.ContainsAny(raw, "?#") {
		return "must not have a query or fragment"
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "must use https (http only for loopback)"
	}
	if !strings.HasSuffix(raw, "/") {
		return "must end with /"
	}
	return ""
}

// isLoopback reports whether host is localhost or a loopback address, where
// plain http (a test server) is allowed.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// access checks the access section. instanceTags are the tags of all
// instances, or nil when some could not be decoded, in which case channel
// tags are not checked against them.
func (l *loader) access(a Access, instanceTags map[string]bool) Access {
	seen := map[string]int{}
	for i, c := range a.Channels {
		k := fmt.Sprintf("access.channels[%d].id", i)
		switch {
		case c.ID == "":
			l.p.addf(k, "is required")
		case l.badChannelID(k, c.ID):
		default:
			if j, dup := seen[c.ID]; dup {
				l.p.addf(k, "duplicate of access.channels[%d]", j)
			} else {
				seen[c.ID] = i
			}
		}
		for j, tag := range c.Tags {
			l.badTag(fmt.Sprintf("access.channels[%d].tags[%d]", i, j), tag, instanceTags) // a typo would hide every instance
		}
	}
	for _, list := range []struct {
		name string
		ids  []string
	}{
		{"viewers", a.Viewers},
		{"operators", a.Operators},
		{"approvers", a.Approvers},
	} {
		for i, id := range list.ids {
			if !userIDPattern.MatchString(id) && !groupIDPattern.MatchString(id) {
				l.p.addf(fmt.Sprintf("access.%s[%d]", list.name, i), "%s is not a user id (U…, W…) or user-group id (S…)", quote(id))
			}
		}
	}
	return a
}
