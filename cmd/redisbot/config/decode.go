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

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// file is the config file as decoded. A section whose keys are the fields
// of its Config type is that type, whose fields carry the keys as
// mapstructure tags; the others have the shape the file has here, as they
// say where a value comes from (password_env, *_file, redis_url_env,
// timezone) or are checked key by key (thresholds, approvals). Decoding
// starts from defaults(), so what the file leaves out keeps its default.
type file struct {
	Probe       Probe          `mapstructure:"probe"`
	Keys        Keys           `mapstructure:"keys"`
	HTTP        HTTP           `mapstructure:"http"`
	Runbooks    Runbooks       `mapstructure:"runbooks"`
	Thresholds  map[string]any `mapstructure:"thresholds"` // decoded onto the defaults later
	Instances   []instanceFile `mapstructure:"instances"`
	Slack       slackFile      `mapstructure:"slack"`
	Access      Access         `mapstructure:"access"`
	Store       storeFile      `mapstructure:"store"`
	Approvals   approvalsFile  `mapstructure:"approvals"`
	Schedule    scheduleFile   `mapstructure:"schedule"`
	Alerts      Alerts         `mapstructure:"alerts"`
	Remediation remedyFile     `mapstructure:"remediation"`
	// Alertmanager is in alertmanager.go.
	Alertmanager alertmanagerFile `mapstructure:"alertmanager"`
	AlertTiming  alertTimingFile  `mapstructure:"alert_timing"`
}

// defaults is what a file with nothing in it decodes to.
func defaults() file {
	w := remedy.DefaultWatchConfig()
	return file{
		Probe: Probe{Timeout: DefaultProbeTimeout, Concurrency: DefaultProbeConcurrency,
			BlockedAfter: DefaultProbeBlockedAfter, WorkersGrowth: DefaultProbeWorkersGrowth},
		Keys: Keys{Budget: DefaultKeysBudget, MaxDuration: DefaultKeysMaxDuration, MaxConcurrent: DefaultKeysMaxConcurrent},
		HTTP: HTTP{Listen: DefaultHTTPListen},
		Slack: slackFile{Slack: Slack{
			APIURL:          DefaultSlackAPIURL,
			Workers:         DefaultSlackWorkers,
			Queue:           DefaultSlackQueue,
			ThreadReplies:   true,
			ShutdownTimeout: DefaultSlackShutdownTimeout,
			UsergroupTTL:    DefaultSlackUsergroupTTL,
			SlowWorkers:     DefaultSlackSlowWorkers,
			SlowQueue:       DefaultSlackSlowQueue,
			SlowAfter:       DefaultSlackSlowAfter,
		}},
		Store: storeFile{
			Path:           DefaultStorePath,
			Retention:      longDuration(DefaultRetention),
			AuditRetention: longDuration(DefaultAuditRetention),
		},
		Approvals:    approvalsFile{Expiry: DefaultApprovalExpiry, DefragMaxOps: DefaultDefragMaxOps},
		Schedule:     scheduleFile{Sweep: DefaultSweep, Timezone: "UTC", Lease: DefaultLease},
		Alerts:       Alerts{RepeatInterval: DefaultRepeatInterval, StormThreshold: DefaultStormThreshold, GroupThreshold: DefaultGroupThreshold},
		Alertmanager: defaultAlertmanagerFile(),
		Remediation: remedyFile{PurgeSettle: DefaultPurgeSettle, DefragWatch: defragWatchFile{
			Interval: w.Interval, MaxDuration: w.MaxDuration, TargetRatio: w.TargetRatio, MaxLatency: w.MaxLatency,
			StallIntervals: w.StallIntervals, StallShare: w.StallShare, MinHitRatio: w.MinHitRatio, IdleRunning: w.IdleRunning,
			RSSGrowth: w.RSSGrowth, Settle: w.Settle,
		}},
	}
}

type instanceFile struct {
	Name         string          `mapstructure:"name"`
	Addr         string          `mapstructure:"addr"`
	Username     string          `mapstructure:"username"`
	Password     string          `mapstructure:"password"`
	PasswordEnv  string          `mapstructure:"password_env"`
	PasswordFile string          `mapstructure:"password_file"`
	DB           int             `mapstructure:"db"`
	TLS          *tlsFile        `mapstructure:"tls"`
	Tags         []string        `mapstructure:"tags"`
	MemoryLimit  byteSize        `mapstructure:"memory_limit"`
	Thresholds   map[string]any  `mapstructure:"thresholds"`
	Remediation  remediationFile `mapstructure:"remediation"`
	Cluster      bool            `mapstructure:"cluster"`
	Seeds        []string        `mapstructure:"seeds"`
	Sentinel     *sentinelFile   `mapstructure:"sentinel"`
}

type sentinelFile struct {
	Master string   `mapstructure:"master"`
	Addrs  []string `mapstructure:"addrs"`
}

type tlsFile struct {
	CAFile             string `mapstructure:"ca_file"`
	CertFile           string `mapstructure:"cert_file"`
	KeyFile            string `mapstructure:"key_file"`
	ServerName         string `mapstructure:"server_name"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// remediationFile is an instance's remediation section; the top-level one
// is remedyFile.
type remediationFile struct {
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

type remedyFile struct {
	PurgeSettle time.Duration   `mapstructure:"purge_settle"`
	DefragWatch defragWatchFile `mapstructure:"defrag_watch"`
}

// defragWatchFile is remedy.WatchConfig as configured: without IgnoreBytes,
// which the watch takes from the approved plan.
type defragWatchFile struct {
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

// slackFile is the slack section: Slack, whose AppToken and BotToken hold
// the file's app_token and bot_token until slackToken resolves them, and
// the token files.
type slackFile struct {
	Slack        `mapstructure:",squash"`
	AppTokenFile string `mapstructure:"app_token_file"`
	BotTokenFile string `mapstructure:"bot_token_file"`
}

type storeFile struct {
	Path           string       `mapstructure:"path"`
	RedisURL       string       `mapstructure:"redis_url"`
	RedisURLEnv    string       `mapstructure:"redis_url_env"`
	Retention      longDuration `mapstructure:"retention"`
	AuditRetention longDuration `mapstructure:"audit_retention"`
}

// approvalsFile keeps the per-action maps and the defrag parameters loose:
// their keys are checked against the action names and parameter names, so
// that a typo is reported as such ("unknown action (valid: ...)").
type approvalsFile struct {
	Expiry       time.Duration  `mapstructure:"expiry"`
	Required     map[string]any `mapstructure:"required"`
	Budget       map[string]any `mapstructure:"budget"`
	DefragMaxOps int64          `mapstructure:"defrag_max_ops"`
	Defrag       map[string]any `mapstructure:"defrag"`
}

type scheduleFile struct {
	Sweep    string        `mapstructure:"sweep"`
	Digest   string        `mapstructure:"digest"`
	Timezone string        `mapstructure:"timezone"`
	Lease    time.Duration `mapstructure:"lease"`
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
func thresholdKeys() []string { return tags(reflect.TypeFor[handlers.Thresholds]()) }

// tags are the keys of a decoded struct type: its fields' mapstructure
// tags, those of squashed fields included.
func tags(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if opts == "squash" {
			keys = append(keys, tags(f.Type)...)
		} else {
			keys = append(keys, name)
		}
	}
	return keys
}

// envSections are the sections whose scalar keys have a REDISBOT_*
// override (REDISBOT_PROBE_TIMEOUT). Secrets and where they come from
// (*_token, *_file, redis_url, *_env) are resolved by their own rules
// (slackToken, redisURL), and lists and maps come from the file only.
var envSections = []string{"probe", "runbooks", "http", "keys", "thresholds", "slack", "store", "approvals", "schedule", "alerts", "alertmanager"}

// envKeys are the keys that REDISBOT_* variables override.
func envKeys() []string {
	var keys []string
	for f := range reflect.TypeFor[file]().Fields() {
		section := f.Tag.Get("mapstructure")
		if !slices.Contains(envSections, section) {
			continue
		}
		names := thresholdKeys()
		if section != "thresholds" {
			names = slices.DeleteFunc(tags(f.Type), func(k string) bool {
				return !scalar(f.Type, k) || isSecretKey(k) || strings.HasSuffix(k, "_file") || strings.HasSuffix(k, "_env")
			})
		}
		for _, k := range names {
			keys = append(keys, section+"."+k)
		}
	}
	return keys
}

// scalar reports whether the key of struct type t holds a scalar value,
// not a list or a mapping.
func scalar(t reflect.Type, key string) bool {
	f, ok := fieldByTag(t, key)
	if !ok {
		return false
	}
	switch f.Type.Kind() {
	case reflect.Slice, reflect.Map, reflect.Struct, reflect.Pointer:
		return false
	}
	return true
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

// applyEnv sets in doc every overridable key whose variable is set, and
// remembers which keys came from the environment for error messages.
func (l *loader) applyEnv(doc map[string]any) {
	for _, key := range envKeys() {
		name := envName(key)
		val := l.getenv(name)
		if val == "" {
			continue
		}
		section, k, _ := strings.Cut(key, ".")
		if doc[section] == nil {
			doc[section] = map[string]any{}
		}
		// A section that is not a mapping ("probe: 5") is reported as
		// such, not replaced by the override.
		if m, ok := doc[section].(map[string]any); ok {
			m[k] = val
			l.p.fromEnv[key] = name
		}
	}
}

// decode decodes doc, the file and environment, into out, recording every
// problem under its full key. prefix is the key of doc ("" for the whole
// file).
func (l *loader) decode(prefix string, doc, out any) {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      out,
		ErrorUnused: true, // unknown keys are errors
		Squash:      true,
		// Keys are exact, as YAML's are: Addr is not addr.
		MatchName:  func(key, field string) bool { return key == field },
		DecodeHook: mapstructure.DecodeHookFuncValue(decodeHook),
	})
	if err != nil {
		panic(err) // only on a bad Result, which is a pointer to a struct here
	}
	if err := d.Decode(doc); err != nil {
		l.decodeErrors(prefix, err)
	}
}

// decodeThresholds applies the overrides in m onto base. prefix is the key
// of the thresholds section ("thresholds", "instances[0].thresholds"). It
// returns the result and the keys that m set successfully.
func (l *loader) decodeThresholds(prefix string, base handlers.Thresholds, m map[string]any) (handlers.Thresholds, map[string]bool) {
	set := map[string]bool{}
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
	l.decode(prefix, in, &t)
	for k := range in {
		if !l.p.isFailed(prefix + "." + k) {
			set[k] = true
		}
	}
	return t, set
}

// decodeErrors turns mapstructure's errors into problems, one per key, with
// messages that never quote a value that might be a secret: decodeHook
// words every error about a value.
func (l *loader) decodeErrors(prefix string, err error) {
	var de *mapstructure.DecodeError
	switch e := err.(type) {
	case interface{ Unwrap() []error }: // errors.Join of several
		for _, err := range e.Unwrap() {
			l.decodeErrors(prefix, err)
		}
		return
	case *mapstructure.DecodeError:
		de = e
	case interface{ Unwrap() error }: // Decode's summary
		l.decodeErrors(prefix, e.Unwrap())
		return
	default:
		l.p.decodeFailed(prefix, errors.New("cannot decode"))
		return
	}
	key := joinKey(prefix, de.Name())
	var verr *valueError
	switch inner := de.Unwrap(); {
	case errors.As(inner, &verr):
		l.p.decodeFailed(key, verr)
	case strings.HasPrefix(inner.Error(), "has invalid keys: "):
		for _, k := range strings.Split(strings.TrimPrefix(inner.Error(), "has invalid keys: "), ", ") {
			l.unknownKey(key, k)
		}
	default:
		// mapstructure's other errors may quote the value.
		l.p.decodeFailed(key, errors.New("cannot decode"))
	}
}

// unknownKey reports the key k of the mapping at key, which no field has.
func (l *loader) unknownKey(key, k string) {
	switch {
	case hideSecret(k) != "":
		// A token or URL pasted where a key belongs.
		l.p.add(key, errors.New("unknown key "+hideSecret(k)))
	case l.followsSecret(joinKey(key, k)):
		l.p.add(key, errors.New(unknownAfterSecret))
	default:
		l.p.add(joinKey(key, k), errors.New("unknown key"+didYouMean(k, keysAt(key))))
	}
}

// didYouMean is " (did you mean addr?)" with the known keys closest to an
// unknown one, or "".
func didYouMean(unknown string, known []string) string {
	if c := handlers.Closest(unknown, known, 3); len(c) > 0 {
		return " (did you mean " + strings.Join(c, ", ") + "?)"
	}
	return ""
}

// keysAt are the keys the mapping at key ("instances[0].tls") may have.
func keysAt(key string) []string {
	t := reflect.TypeFor[file]()
	for part := range strings.SplitSeq(key, ".") {
		if part == "" {
			break // the top level
		}
		if part, _, _ = strings.Cut(part, "["); part == "thresholds" {
			return thresholdKeys()
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return nil
		}
		for t = f.Type; t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice; t = t.Elem() {
		}
	}
	return tags(t)
}

// fieldByTag is the field of struct type t, or of a struct it squashes,
// whose mapstructure tag is key.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if opts == "squash" {
			if sf, ok := fieldByTag(f.Type, key); ok {
				return sf, true
			}
		} else if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
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

// valueError is a value that does not decode. Only values of non-secret
// keys are quoted in it.
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

// decodeHook converts what YAML and the environment give into the type of
// the field, and refuses anything else with an error that names kinds, not
// values: a quoted number is accepted where a number is expected
// (environment values are strings), but a number is never turned into a
// string, so a password is never silently mangled.
func decodeHook(from, to reflect.Value) (any, error) {
	data := from.Interface()
	s, isString := data.(string)
	n, isWhole := wholeNumber(data)
	isNumber := false
	switch data.(type) {
	case int, int64, uint64, float64:
		isNumber = true
	}
	switch t := to.Type(); {
	case t == durationType && isString:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, invalid("duration", s)
		}
		return d, nil
	case t == durationType && isNumber:
		return nil, &valueError{msg: fmt.Sprintf("invalid duration %v: add a unit, as in 2s or 500ms", data)}
	case t == longDurationType && isString:
		d, err := parseLongDuration(s)
		return longDuration(d), err
	case t == longDurationType && isNumber:
		return nil, &valueError{msg: fmt.Sprintf("invalid duration %v: add a unit, as in 14d or 336h", data)}
	case t == byteSizeType && isString:
		n, err := parseSize(s)
		return byteSize(n), err
	case t == byteSizeType && isNumber:
		if !isWhole || n < 0 {
			return nil, invalid("size", data)
		}
		return byteSize(n), nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int64:
		if isString {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return nil, invalid("integer", s)
			}
			return n, nil
		}
		if isNumber {
			if !isWhole {
				return nil, invalid("integer", data)
			}
			return n, nil
		}
	case reflect.Float64:
		if isString {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, invalid("number", s)
			}
			return f, nil
		}
		if isNumber {
			return data, nil
		}
	case reflect.Bool:
		if isString {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return nil, invalid("boolean", s)
			}
			return b, nil
		}
		if _, ok := data.(bool); ok {
			return data, nil
		}
	case reflect.String:
		if isString {
			return data, nil
		}
	case reflect.Slice:
		if _, ok := data.([]any); ok {
			return data, nil
		}
	case reflect.Struct, reflect.Map, reflect.Pointer:
		switch data.(type) {
		case map[string]any:
			return data, nil
		case map[any]any:
			return nil, &valueError{msg: "keys must be strings"}
		}
	default:
		return data, nil
	}
	return nil, typeError(to.Type(), data)
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

// typeError says what was expected and what kind of value was found,
// never the value itself.
func typeError(want reflect.Type, got any) error {
	var expected string
	switch k := want.Kind(); {
	case want == durationType || want == longDurationType:
		expected = "a duration"
	case want == byteSizeType:
		expected = "a size"
	case k == reflect.String:
		expected = "a string"
	case k == reflect.Bool:
		expected = "true or false"
	case k == reflect.Int || k == reflect.Int64:
		expected = "an integer"
	case k == reflect.Float64:
		expected = "a number"
	case k == reflect.Slice:
		expected = "a list"
	default:
		expected = "a mapping"
	}
	msg := "expected " + expected + ", got " + describeValue(got)
	switch got.(type) {
	case bool, int, int64, uint64, float64:
		if want.Kind() == reflect.String {
			msg += " (quote it)"
		}
	}
	return &valueError{msg: msg}
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
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
