package config

import (
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// minRetention is the shortest retention accepted: anything shorter would
// drop history before a daily report could show it.
const minRetention = time.Hour

// envNamePattern is what a *_env key must hold: the name of a variable as
// shells, Docker and Kubernetes allow it. It rejects the usual mistake of
// writing the value ("redis://...", "$VAR") instead of its name, which would
// otherwise be quoted back in "... is not set".
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// notEnvName is the problem with a *_env value that is not a name. The value
// is not quoted: it is likely the secret itself.
const notEnvName = "must be the name of an environment variable, not its value"

func (l *loader) store(f storeFile) Store {
	s := Store{Retention: time.Duration(f.Retention), AuditRetention: time.Duration(f.AuditRetention)}
	var configured bool
	s.RedisURL, configured = l.redisURL(f.RedisURL, f.RedisURLEnv)
	s.Path = l.storePath(f.Path, configured)
	l.p.check("store.retention", s.Retention < minRetention, "must be at least 1h")
	l.p.check("store.audit_retention", s.AuditRetention < minRetention, "must be at least 1h")
	return s
}

// storePath resolves the bbolt file, which is only used when no Redis URL is
// configured (redisURL is true). It need not exist yet, but must not be a
// directory.
func (l *loader) storePath(path string, redisURL bool) string {
	const key = "store.path"
	if _, env := l.p.fromEnv[key]; !env {
		path = l.resolve(path)
	}
	if redisURL {
		return path
	}
	if path == "" {
		l.p.addf(key, "is required when redis_url is not set")
		return path
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		l.p.addf(key, "%s is a directory", path)
	}
	return path
}

// redisURL resolves the store's Redis URL from, in order of precedence,
// REDISBOT_STORE_REDIS_URL, and the file's redis_url or redis_url_env, which
// are exclusive. configured reports whether any of them was given, valid or
// not. The URL never goes into a problem: it may carry a password.
func (l *loader) redisURL(inline, ref string) (u string, configured bool) {
	const (
		key    = "store.redis_url"
		envKey = "store.redis_url_env"
	)
	if inline != "" && ref != "" {
		l.p.addf("store", "redis_url and redis_url_env are exclusive")
		return "", true
	}
	check := func(key, u string) string {
		if msg := checkRedisURL(u); msg != "" {
			l.p.addf(key, "%s", msg)
			return ""
		}
		return u
	}
	if v := envName(key); l.getenv(v) != "" {
		l.p.fromEnv[key] = v
		return check(key, l.getenv(v)), true
	}
	switch {
	case inline != "":
		return check(key, inline), true
	case ref != "":
		if !envNamePattern.MatchString(ref) {
			l.p.addf(envKey, notEnvName)
			return "", true
		}
		u := l.getenv(ref)
		if u == "" {
			l.p.addf(envKey, "%s is not set", ref)
			return "", true
		}
		l.p.fromEnv[envKey] = ref
		return check(envKey, u), true
	}
	return "", false
}

// checkRedisURL returns what is wrong with a store URL, or "". No part of
// the URL is ever quoted, not even in the form url.Redacted gives: when a
// password holds an unescaped '/', '?' or '#', the parser splits the URL
// elsewhere and the password lands in the host, path or fragment, which
// Redacted shows.
func checkRedisURL(raw string) string {
	const notURL = "must be a redis:// or rediss:// URL"
	switch scheme, _, _ := strings.Cut(raw, "://"); strings.ToLower(scheme) {
	case "redis", "rediss":
	default:
		return notURL
	}
	if strings.Contains(raw, "#") {
		// A '#' in the password cuts the URL there, and go-redis would
		// ignore the fragment.
		return "must not have a fragment (percent-encode # in a password as %23)"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return notURL
	}
	if u.Hostname() == "" {
		return "missing host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "invalid port: must be 1-65535"
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return "path must be a database number, as in redis://host:6379/0"
		}
	}
	// What is left are the query options, which go-redis checks. Its
	// errors quote the URL's parts, so they are not passed on.
	if _, err := redis.ParseURL(raw); err != nil {
		return "unknown or invalid query option"
	}
	return ""
}

// urlPasswords returns the password of a Redis URL, decoded and as written
// (percent-encoded) when that differs, for the logger to redact.
func urlPasswords(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return nil
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return nil
	}
	out := []string{pw}
	// The userinfo as written: between "//" and the last '@' before the
	// path.
	rest := raw[strings.Index(raw, "//")+2:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		if _, written, ok := strings.Cut(rest[:i], ":"); ok && written != pw {
			out = append(out, written)
		}
	}
	return out
}

// parseLongDuration parses a retention period: a whole number of days
// ("14d") or a Go duration ("336h").
func parseLongDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(t, "d"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days > math.MaxInt64/int64(24*time.Hour) {
			return 0, invalidLongDuration(s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, invalidLongDuration(s)
	}
	return d, nil
}

func invalidLongDuration(s string) error {
	return &valueError{msg: "invalid duration " + quote(s) + " (examples: 14d, 336h)"}
}
