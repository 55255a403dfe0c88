package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/redisbot/redisbot/handlers"
)

// The file as written, before secrets are read and values checked.
type rawConfig struct {
	Probe      rawProbe       `mapstructure:"probe"`
	Runbooks   rawRunbooks    `mapstructure:"runbooks"`
	Thresholds map[string]any `mapstructure:"thresholds"` // decoded onto the defaults later
	Instances  []rawInstance  `mapstructure:"instances"`
	Slack      rawSlack       `mapstructure:"slack"`
	Access     rawAccess      `mapstructure:"access"`
	Store      rawStore       `mapstructure:"store"`
	Approvals  rawApprovals   `mapstructure:"approvals"`
	Schedule   rawSchedule    `mapstructure:"schedule"`
	Alerts     rawAlerts      `mapstructure:"alerts"`
	HTTP       rawHTTP        `mapstructure:"http"`
	Keys       rawKeys        `mapstructure:"keys"`
	Remedy     rawRemedy      `mapstructure:"remediation"`
}

type rawHTTP struct {
	Listen string `mapstructure:"listen"`
}

type rawProbe struct {
	Timeout     time.Duration `mapstructure:"timeout"`
	Concurrency int           `mapstructure:"concurrency"`
}

type rawRunbooks struct {
	Dir string `mapstructure:"dir"`
}

type rawInstance struct {
	Name         string         `mapstructure:"name"`
	Addr         string         `mapstructure:"addr"`
	Username     string         `mapstructure:"username"`
	Password     string         `mapstructure:"password"`
	PasswordEnv  string         `mapstructure:"password_env"`
	PasswordFile string         `mapstructure:"password_file"`
	DB           int            `mapstructure:"db"`
	TLS          *rawTLS        `mapstructure:"tls"`
	Tags         []string       `mapstructure:"tags"`
	MemoryLimit  byteSize       `mapstructure:"memory_limit"`
	Thresholds   map[string]any `mapstructure:"thresholds"`
	Remediation  rawRemediation `mapstructure:"remediation"`
	Cluster      bool           `mapstructure:"cluster"`
	Seeds        []string       `mapstructure:"seeds"`
	Sentinel     *rawSentinel   `mapstructure:"sentinel"`
}

type rawSentinel struct {
	Master string   `mapstructure:"master"`
	Addrs  []string `mapstructure:"addrs"`
}

type rawRemediation struct {
	Username       string   `mapstructure:"username"`
	Password       string   `mapstructure:"password"`
	PasswordEnv    string   `mapstructure:"password_env"`
	PasswordFile   string   `mapstructure:"password_file"`
	RestartMethod  string   `mapstructure:"restart_method"`
	RestartCommand []string `mapstructure:"restart_command"`
	RestartEnv     []string `mapstructure:"restart_env"`
	FailoverMethod string   `mapstructure:"failover_method"`
	PersistConfig  bool     `mapstructure:"persist_config"`
	Failback       bool     `mapstructure:"failback"`
}

// rawRemedy is the top-level remediation section: how remediations measure
// their effect. Per-instance remediation settings are rawRemediation.
type rawRemedy struct {
	PurgeSettle time.Duration  `mapstructure:"purge_settle"`
	DefragWatch rawDefragWatch `mapstructure:"defrag_watch"`
}

// rawDefragWatch is remediation.defrag_watch: when the watch that follows
// an approved defrag-on turns it off.
type rawDefragWatch struct {
	Interval       time.Duration `mapstructure:"interval"`
	MaxDuration    time.Duration `mapstructure:"max_duration"`
	TargetRatio    float64       `mapstructure:"target_ratio"`
	MaxLatency     time.Duration `mapstructure:"max_latency"`
	StallIntervals int           `mapstructure:"stall_intervals"`
	StallShare     float64       `mapstructure:"stall_share"`
	MinHitRatio    float64       `mapstructure:"min_hit_ratio"`
	IdleRunning    int64         `mapstructure:"idle_running"`
	RSSGrowth      float64       `mapstructure:"rss_growth"`
	Settle         time.Duration `mapstructure:"settle"`
}

type rawTLS struct {
	CAFile             string `mapstructure:"ca_file"`
	CertFile           string `mapstructure:"cert_file"`
	KeyFile            string `mapstructure:"key_file"`
	ServerName         string `mapstructure:"server_name"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

type rawSlack struct {
	AppToken        string        `mapstructure:"app_token"`
	BotToken        string        `mapstructure:"bot_token"`
	AppTokenFile    string        `mapstructure:"app_token_file"`
	BotTokenFile    string        `mapstructure:"bot_token_file"`
	APIURL          string        `mapstructure:"api_url"`
	Workers         int           `mapstructure:"workers"`
	Queue           int           `mapstructure:"queue"`
	ThreadReplies   bool          `mapstructure:"thread_replies"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	UsergroupTTL    time.Duration `mapstructure:"usergroup_ttl"`
}

type rawAccess struct {
	Channels          []rawChannel `mapstructure:"channels"`
	Viewers           []string     `mapstructure:"viewers"`
	Operators         []string     `mapstructure:"operators"`
	Approvers         []string     `mapstructure:"approvers"`
	AllowSelfApproval bool         `mapstructure:"allow_self_approval"`
}

type rawChannel struct {
	ID   string   `mapstructure:"id"`
	Tags []string `mapstructure:"tags"`
}

type rawStore struct {
	Path           string       `mapstructure:"path"`
	RedisURL       string       `mapstructure:"redis_url"`
	RedisURLEnv    string       `mapstructure:"redis_url_env"`
	Retention      longDuration `mapstructure:"retention"`
	AuditRetention longDuration `mapstructure:"audit_retention"`
}

// rawApprovals keeps the per-action maps and the defrag parameters loose:
// their keys are checked against the action names and parameter names, so
// that a typo is reported as such ("unknown action (valid: ...)").
type rawApprovals struct {
	Expiry       time.Duration  `mapstructure:"expiry"`
	Required     map[string]any `mapstructure:"required"`
	Budget       map[string]any `mapstructure:"budget"`
	DefragMaxOps int64          `mapstructure:"defrag_max_ops"`
	Defrag       map[string]any `mapstructure:"defrag"`
}

type rawSchedule struct {
	Sweep    string        `mapstructure:"sweep"`
	Digest   string        `mapstructure:"digest"`
	Timezone string        `mapstructure:"timezone"`
	Lease    time.Duration `mapstructure:"lease"`
}

type rawAlerts struct {
	Channel        string        `mapstructure:"channel"`
	Routes         []rawRoute    `mapstructure:"routes"`
	OnCallGroup    string        `mapstructure:"oncall_group"`
	RepeatInterval time.Duration `mapstructure:"repeat_interval"`
	StormThreshold float64       `mapstructure:"storm_threshold"`
}

type rawRoute struct {
	Tags    []string `mapstructure:"tags"`
	Channel string   `mapstructure:"channel"`
}

// byteSize is a number of bytes written as a size ("6GiB") or a plain number.
type byteSize int64

// longDuration is a duration that may also be written in days ("14d"), for
// retention periods, which Go durations cannot express.
type longDuration time.Duration

var (
	durationType     = reflect.TypeFor[time.Duration]()
	byteSizeType     = reflect.TypeFor[byteSize]()
	longDurationType = reflect.TypeFor[longDuration]()
)

// byteThresholds are the threshold keys that hold bytes and so accept sizes.
// The other integer thresholds are counts or microseconds.
var byteThresholds = map[string]bool{
	"frag_min_used_memory": true,
	"frag_noise_bytes":     true,
	"alloc_frag_min_bytes": true,
	"swap_min_used_memory": true,
	"client_buffer_avg":    true,
	"client_buffer_total":  true,
	"replica_buffers":      true,
	"big_string":           true,
	"big_collection":       true,
}

// thresholdKeys are the mapstructure tags of handlers.Thresholds, in field
// order.
func thresholdKeys() []string {
	t := reflect.TypeFor[handlers.Thresholds]()
	keys := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		keys = append(keys, f.Tag.Get("mapstructure"))
	}
	return keys
}

// envKeys are the scalar keys that REDISBOT_* variables can override
// through viper. The Slack tokens and token files are not among them:
// slackToken reads their variables, as a token from the environment replaces
// both the file's token and its token file; nor is store.redis_url, which
// replaces redis_url_env as well (redisURL).
func envKeys() []string {
	keys := []string{
		"probe.timeout", "probe.concurrency", "runbooks.dir", "http.listen",
		"store.path", "store.retention", "store.audit_retention",
		"approvals.expiry", "approvals.defrag_max_ops",
		"schedule.sweep", "schedule.digest", "schedule.timezone", "schedule.lease",
		"alerts.channel", "alerts.oncall_group", "alerts.repeat_interval", "alerts.storm_threshold",
		"keys.budget", "keys.max_duration", "keys.max_concurrent",
	}
	for _, k := range thresholdKeys() {
		keys = append(keys, "thresholds."+k)
	}
	for f := range reflect.TypeFor[rawSlack]().Fields() {
		switch k := f.Tag.Get("mapstructure"); k {
		case "app_token", "bot_token", "app_token_file", "bot_token_file":
		default:
			keys = append(keys, "slack."+k)
		}
	}
	return keys
}

// envName is the variable that overrides key: probe.timeout ->
// REDISBOT_PROBE_TIMEOUT.
func envName(key string) string {
	return "REDISBOT_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// passwordEnvName is the variable that overrides the password of the
// instance called name: cache-1 -> REDISBOT_INSTANCES_CACHE_1_PASSWORD.
func passwordEnvName(name string) string {
	return instanceEnvName(name, "PASSWORD")
}

// remediationPasswordEnvName is the variable that overrides the remediation
// password of the instance called name: cache-1 ->
// REDISBOT_INSTANCES_CACHE_1_REMEDIATION_PASSWORD.
func remediationPasswordEnvName(name string) string {
	return instanceEnvName(name, "REMEDIATION_PASSWORD")
}

func instanceEnvName(name, suffix string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return "REDISBOT_INSTANCES_" + strings.ToUpper(r.Replace(name)) + "_" + suffix
}

// applyEnv sets every overridable key whose variable is set, and remembers
// which keys came from the environment for error messages.
func (l *loader) applyEnv(v *viper.Viper) {
	for _, key := range envKeys() {
		name := envName(key)
		val := l.getenv(name)
		if val == "" {
			continue
		}
		// viper would silently replace a section that is not a mapping
		// ("probe: 5") with the override; leave it so that it is reported.
		switch v.Get(parentKey(key)).(type) {
		case nil, map[string]any:
			v.Set(key, val)
			l.p.fromEnv[key] = name
		}
	}
}

// decoderConfig is strict: unknown keys are errors, nothing is converted
// between kinds except through decodeHook.
func decoderConfig(c *mapstructure.DecoderConfig) {
	c.ErrorUnused = true
	c.WeaklyTypedInput = false
	c.DecodeHook = mapstructure.DecodeHookFuncValue(decodeHook)
}

// decode decodes the file and environment into raw, recording every
// problem under its full key.
func (l *loader) decode(v *viper.Viper, raw *rawConfig) {
	if err := v.UnmarshalExact(raw, decoderConfig); err != nil {
		l.decodeErrors("", err)
	}
}

// decodeThresholds applies the overrides in m onto base. prefix is the key
// of the thresholds section ("thresholds", "instances[0].thresholds"). It
// returns the result and the keys that m set successfully.
func (l *loader) decodeThresholds(prefix string, base handlers.Thresholds, m map[string]any) (handlers.Thresholds, map[string]bool) {
	set := map[string]bool{}
	if len(m) == 0 {
		return base, set
	}
	in := make(map[string]any, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) { // errors in a stable order
		val := m[k]
		if s, ok := val.(string); ok && byteThresholds[k] {
			n, err := parseSize(s)
			if err != nil {
				l.p.decodeFailed(prefix+"."+k, err)
				continue
			}
			val = n
		}
		in[k] = val
	}
	t := base
	c := &mapstructure.DecoderConfig{Result: &t}
	decoderConfig(c)
	d, err := mapstructure.NewDecoder(c)
	if err != nil {
		panic(err) // only on a bad Result, which is fixed above
	}
	if err := d.Decode(in); err != nil {
		l.decodeErrors(prefix, err)
	}
	for k := range in {
		if !l.p.isFailed(prefix + "." + k) {
			set[k] = true
		}
	}
	return t, set
}

// decodeErrors turns mapstructure's errors into problems, one per key, with
// messages that never quote a value that might be a secret.
func (l *loader) decodeErrors(prefix string, err error) {
	de, ok := err.(*mapstructure.DecodeError)
	if !ok {
		// errors.Join of several, or wrapped by viper.
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				l.decodeErrors(prefix, err)
			}
		case interface{ Unwrap() error }:
			l.decodeErrors(prefix, e.Unwrap())
		default:
			l.p.decodeFailed(prefix, errors.New("cannot decode"))
		}
		return
	}
	key := joinKey(prefix, de.Name())
	inner := de.Unwrap()
	switch inner.(type) {
	case *mapstructure.DecodeError, interface{ Unwrap() []error }:
		l.decodeErrors(prefix, inner)
		return
	}

	var (
		verr *valueError
		uerr *mapstructure.UnconvertibleTypeError
	)
	msg := inner.Error()
	switch {
	case errors.As(inner, &verr):
		l.p.decodeFailed(key, verr)
	case errors.As(inner, &uerr):
		l.p.decodeFailed(key, typeError(uerr.Expected.Type(), uerr.Value))
	case strings.HasPrefix(msg, "has invalid keys: "):
		for _, k := range strings.Split(strings.TrimPrefix(msg, "has invalid keys: "), ", ") {
			if hidden := hideSecret(k); hidden != "" {
				// A token or URL pasted where a key belongs.
				l.p.add(key, errors.New("unknown key "+hidden))
				continue
			}
			if l.followsSecret(joinKey(key, k)) {
				l.p.add(key, errors.New(unknownAfterSecret))
				continue
			}
			l.p.add(joinKey(key, k), errors.New("unknown key"))
		}
	case strings.HasPrefix(msg, "expected a map"):
		l.p.decodeFailed(key, errors.New("expected a mapping"+gotKind(msg)))
	case strings.HasPrefix(msg, "source data must be an array or slice"):
		l.p.decodeFailed(key, errors.New("expected a list"+gotKind(msg)))
	case strings.HasPrefix(msg, "needs a map with string keys"):
		l.p.decodeFailed(key, errors.New("keys must be strings"))
	default:
		// Other mapstructure errors name types, not values.
		l.p.decodeFailed(key, errors.New(msg))
	}
}

// gotKind turns the reflect kind at the end of a mapstructure message
// ("..., got \"string\"") into ", got a string".
func gotKind(msg string) string {
	i := strings.LastIndex(msg, "got ")
	if i < 0 {
		return ""
	}
	switch strings.Trim(msg[i+len("got "):], `"'`) {
	case "string":
		return ", got a string"
	case "bool":
		return ", got a boolean"
	case "int", "int64", "uint64":
		return ", got an integer"
	case "float64", "float32":
		return ", got a number"
	case "slice", "array":
		return ", got a list"
	case "map":
		return ", got a mapping"
	case "struct":
		return ", got a timestamp"
	}
	return ""
}

func joinKey(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return prefix + "." + key
}

// valueError is a value of the right kind that does not parse. Only values of
// non-secret keys are quoted in it.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

func invalid(what string, v any) error {
	return &valueError{msg: fmt.Sprintf("invalid %s %s", what, quote(fmt.Sprint(v)))}
}

// quote quotes a value for an error message, unless it looks like a Slack
// token or a URL with credentials pasted in the wrong place: then it says so
// without showing it.
func quote(s string) string {
	if hidden := hideSecret(s); hidden != "" {
		return hidden
	}
	return strconv.Quote(s)
}

// hideSecret says what s is, "(a Slack token, not shown)", when it looks
// like a secret, or returns "".
func hideSecret(s string) string {
	switch {
	case looksLikeToken(s):
		return "(a Slack token, not shown)"
	case looksLikeCredentialURL(s):
		return "(a URL with credentials, not shown)"
	}
	return ""
}

// looksLikeCredentialURL reports whether s may be a URL with a user or
// password in it, such as a store.redis_url pasted in the wrong place.
func looksLikeCredentialURL(s string) bool {
	return strings.Contains(s, "://") && strings.Contains(s, "@")
}

// looksLikeToken reports whether s has the prefix of a Slack token: xoxb-,
// xoxp-, xoxe- and the like, or xapp-.
func looksLikeToken(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(s, "xox") || strings.HasPrefix(s, "xapp-")
}

// decodeHook converts what YAML and the environment give into durations,
// sizes and numbers, and nothing else: a quoted number is accepted where a
// number is expected (environment values are strings), but a number is never
// turned into a string, so a password is never silently mangled.
func decodeHook(from, to reflect.Value) (any, error) {
	data := from.Interface()
	switch to.Type() {
	case durationType:
		switch d := data.(type) {
		case string:
			dur, err := time.ParseDuration(strings.TrimSpace(d))
			if err != nil {
				return nil, invalid("duration", d)
			}
			return dur, nil
		case int, int64, uint64, float64:
			return nil, &valueError{msg: fmt.Sprintf("invalid duration %v: add a unit, as in 2s or 500ms", d)}
		}
		return data, nil
	case longDurationType:
		switch d := data.(type) {
		case string:
			dur, err := parseLongDuration(d)
			return longDuration(dur), err
		case int, int64, uint64, float64:
			return nil, &valueError{msg: fmt.Sprintf("invalid duration %v: add a unit, as in 14d or 336h", d)}
		}
		return data, nil
	case byteSizeType:
		switch d := data.(type) {
		case string:
			n, err := parseSize(d)
			return byteSize(n), err
		case int, int64, uint64, float64:
			n, ok := wholeNumber(d)
			if !ok || n < 0 {
				return nil, invalid("size", d)
			}
			return byteSize(n), nil
		}
		return data, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int64:
		switch d := data.(type) {
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(d), 10, 64)
			if err != nil {
				return nil, invalid("integer", d)
			}
			return n, nil
		case uint64, float64:
			n, ok := wholeNumber(d)
			if !ok {
				return nil, invalid("integer", d)
			}
			return n, nil
		}
	case reflect.Float64:
		if s, ok := data.(string); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, invalid("number", s)
			}
			return f, nil
		}
	case reflect.Bool:
		if s, ok := data.(string); ok {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return nil, invalid("boolean", s)
			}
			return b, nil
		}
	}
	return data, nil
}

// wholeNumber converts a YAML number to int64 if it is whole and fits.
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	case float64:
		// 2^63 itself does not fit in int64.
		if n != math.Trunc(n) || n < math.MinInt64 || n >= math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

func describeType(t reflect.Type) string {
	switch t {
	case durationType, longDurationType:
		return "a duration"
	case byteSizeType:
		return "a size"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "a mapping"
	}
	return t.String()
}

// typeError says what was expected and what kind of value was found,
// never the value itself.
func typeError(want reflect.Type, got any) error {
	msg := "expected " + describeType(want) + ", got " + describeValue(got)
	switch got.(type) {
	case bool, int, int64, uint64, float64, time.Time:
		if want.Kind() == reflect.String {
			msg += " (quote it)"
		}
	}
	return errors.New(msg)
}

// describeValue names the kind of a decoded YAML value, never the value.
func describeValue(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64:
		return "an integer"
	case float64:
		return "a number"
	case time.Time:
		return "a timestamp"
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
