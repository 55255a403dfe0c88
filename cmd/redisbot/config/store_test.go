package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// writeConfig writes doc to a config file in a temporary directory.
func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const oneInstance = "instances: [{name: cache-1, addr: '127.0.0.1:6379'}]\n"

// TestStoreAndApprovalsDefaults: absent or empty sections give the defaults.
func TestStoreAndApprovalsDefaults(t *testing.T) {
	for _, doc := range []string{"", "store:\napprovals:\n", "store: {}\napprovals: {required: {}, budget: {}, defrag: {}}\n"} {
		path := writeConfig(t, doc+oneInstance)
		cfg, err := Load(t.Context(), path, env(nil))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		want := Store{
			Path:           filepath.Join(filepath.Dir(path), "redisbot.db"),
			Retention:      14 * 24 * time.Hour,
			AuditRetention: 90 * 24 * time.Hour,
		}
		if cfg.Store != want {
			t.Errorf("%q: Store = %+v, want %+v", doc, cfg.Store, want)
		}
		if !reflect.DeepEqual(cfg.Approvals, DefaultApprovals()) {
			t.Errorf("%q: Approvals = %+v, want %+v", doc, cfg.Approvals, DefaultApprovals())
		}
		if in := cfg.Instances[0]; !reflect.DeepEqual(in.Remediation, handlers.Remediation{}) {
			t.Errorf("%q: Remediation = %+v, want none", doc, in.Remediation)
		}
	}
}

func TestStoreEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":              "env-pw",
		"REDISBOT_STORE_PATH":            filepath.Join(dir, "state.db"),
		"REDISBOT_STORE_REDIS_URL":       "redis://:env-url-pw@10.0.0.5:6379/1",
		"REDISBOT_STORE_RETENTION":       "30d",
		"REDISBOT_STORE_AUDIT_RETENTION": "4320h",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Store{
		Path:           filepath.Join(dir, "state.db"),
		RedisURL:       "redis://:env-url-pw@10.0.0.5:6379/1",
		Retention:      30 * 24 * time.Hour,
		AuditRetention: 180 * 24 * time.Hour,
	}
	if cfg.Store != want {
		t.Errorf("Store:\n got %+v\nwant %+v", cfg.Store, want)
	}
	if s := cfg.Secrets(); !slices.Contains(s, "env-url-pw") || slices.Contains(s, "url/pw") {
		t.Errorf("Secrets() = %q, want the password of the URL from the environment only", s)
	}
}

// TestStoreRedisURLSources: REDISBOT_STORE_REDIS_URL beats redis_url and
// redis_url_env, which name the URL or the variable holding it.
func TestStoreRedisURLSources(t *testing.T) {
	const url = "rediss://bot:pw@state.internal:6380/0"
	for _, tc := range []struct {
		name, doc string
		env       map[string]string
		want      string
	}{
		{"none", "", nil, ""},
		{"inline", "store: {redis_url: '" + url + "'}\n", nil, url},
		{"variable named", "store: {redis_url_env: REDIS_STATE_URL}\n", map[string]string{"REDIS_STATE_URL": url}, url},
		{"environment beats inline", "store: {redis_url: 'redis://other:6379'}\n",
			map[string]string{"REDISBOT_STORE_REDIS_URL": url}, url},
		{"environment beats a variable that is not set", "store: {redis_url_env: REDIS_STATE_URL}\n",
			map[string]string{"REDISBOT_STORE_REDIS_URL": url}, url},
		{"environment beats a bad file URL", "store: {redis_url: 'http://x'}\n",
			map[string]string{"REDISBOT_STORE_REDIS_URL": url}, url},
		{"path unused with a URL", "store: {path: '', redis_url: '" + url + "'}\n", nil, url},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(t.Context(), writeConfig(t, tc.doc+oneInstance), env(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Store.RedisURL != tc.want {
				t.Errorf("RedisURL = %q, want %q", cfg.Store.RedisURL, tc.want)
			}
		})
	}
}

func TestStoreEnvErrors(t *testing.T) {
	_, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":              "env-pw",
		"REDISBOT_STORE_PATH":            "testdata",
		"REDISBOT_STORE_REDIS_URL":       "https://:SECRET-env@state:6379",
		"REDISBOT_STORE_RETENTION":       "2 weeks",
		"REDISBOT_STORE_AUDIT_RETENTION": "59m",
	}))
	want := "store.redis_url: must be a redis:// or rediss:// URL (from REDISBOT_STORE_REDIS_URL)\n" +
		"store.retention: invalid duration \"2 weeks\" (examples: 14d, 336h) (from REDISBOT_STORE_RETENTION)\n" +
		"store.audit_retention: must be at least 1h (from REDISBOT_STORE_AUDIT_RETENTION)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}

	// A URL from the variable redis_url_env names is checked under that key.
	path := writeConfig(t, "store: {redis_url_env: REDIS_STATE_URL}\n"+oneInstance)
	_, err = Load(t.Context(), path, env(map[string]string{"REDIS_STATE_URL": "redis://:SECRET-env@state:6379/zero"}))
	want = "store.redis_url_env: path must be a database number, as in redis://host:6379/0 (from REDIS_STATE_URL)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
	// Without a URL the path is needed, from the environment too.
	_, err = Load(t.Context(), writeConfig(t, oneInstance), env(map[string]string{"REDISBOT_STORE_PATH": "testdata"}))
	want = "store.path: testdata is a directory (from REDISBOT_STORE_PATH)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

func TestCheckRedisURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://localhost:6379":                       "",
		"redis://state.internal":                       "",
		"redis://state.internal:6379/0":                "",
		"redis://state.internal:6379/15/":              "",
		"rediss://state.internal:6380/2":               "",
		"REDIS://state.internal:6379":                  "",
		"redis://:pw@state:6379/0":                     "",
		"redis://bot:p%23w%2F@state:6379/0":            "",
		"redis://bot@state:6379":                       "",
		"redis://[::1]:6379/0":                         "",
		"rediss://state:6380/0?dial_timeout=3s":        "",
		"rediss://state:6380/0?skip_verify=true":       "",
		"redis://state:6379?db=3&client_name=redisbot": "",
		"redis://state?dial_timeout=":                  "",

		"":                            "must be a redis:// or rediss:// URL",
		"state.internal:6379":         "must be a redis:// or rediss:// URL",
		"http://state:6379":           "must be a redis:// or rediss:// URL",
		"unix:///run/redis.sock":      "must be a redis:// or rediss:// URL",
		"redis:state:6379":            "must be a redis:// or rediss:// URL",
		"redis://bot:p?w@state:6379":  "must be a redis:// or rediss:// URL", // '?' cuts the host at bot:p
		"redis://state:port":          "must be a redis:// or rediss:// URL",
		"redis://sta te:6379":         "must be a redis:// or rediss:// URL",
		"redis://":                    "missing host",
		"redis://:pw@:6379/0":         "missing host",
		"redis://state:0":             "invalid port: must be 1-65535",
		"redis://state:65536":         "invalid port: must be 1-65535",
		"redis://bot:p#w@state:6379":  "must not have a fragment (percent-encode # in a password as %23)",
		"redis://state:6379/0#x":      "must not have a fragment (percent-encode # in a password as %23)",
		"redis://state:6379/db0":      "path must be a database number, as in redis://host:6379/0",
		"redis://state:6379/-1":       "path must be a database number, as in redis://host:6379/0",
		"redis://state:6379/0/1":      "path must be a database number, as in redis://host:6379/0",
		"redis://bot:1/pw@state:6379": "path must be a database number, as in redis://host:6379/0", // '/' cuts the host at bot:1
		"redis://state:6379/0?pw=x":   "unknown or invalid query option",
		"redis://state:6379?db=x":     "unknown or invalid query option",
		"redis://state?pool_size=big": "unknown or invalid query option",
	} {
		if got := checkRedisURL(in); got != want {
			t.Errorf("checkRedisURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestURLPasswords(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                nil,
		"redis://state:6379":              nil,
		"redis://bot@state:6379":          nil,
		"redis://bot:@state:6379":         nil,
		"redis://:pw@state:6379/0":        {"pw"},
		"redis://bot:pw@state:6379/0?x=@": {"pw"},
		"redis://bot:p%40w%2F@state:6379": {"p@w/", "p%40w%2F"},
		"redis://bot:a:b@state:6379":      {"a:b"},
	} {
		if got := urlPasswords(in); !reflect.DeepEqual(got, want) {
			t.Errorf("urlPasswords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStoreString(t *testing.T) {
	for _, tc := range []struct {
		store Store
		want  string
	}{
		{Store{Path: "/var/lib/redisbot/redisbot.db"}, "/var/lib/redisbot/redisbot.db"},
		{Store{Path: "x.db", RedisURL: "redis://state:6379/0"}, "redis://state:6379/0"},
		{Store{RedisURL: "rediss://bot:pw@state:6380/1"}, "rediss://bot:xxxxx@state:6380/1"},
		{Store{RedisURL: "redis://bot:p%2Fw@state:6379"}, "redis://bot:xxxxx@state:6379"},
	} {
		if got := tc.store.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.store, got, tc.want)
		}
	}
}

func TestParseLongDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"14d", 14 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"0d", 0},
		{" 90d ", 90 * 24 * time.Hour},
		{"336h", 336 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"45m", 45 * time.Minute},
		{"106751d", 106751 * 24 * time.Hour},
	} {
		got, err := parseLongDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseLongDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "d", "14", "two weeks", "14 d", "1.5d", "-1d", "+1d", "1d12h", "14D", "1w",
		"106752d", "99999999999999999999d"} {
		if got, err := parseLongDuration(in); err == nil {
			t.Errorf("parseLongDuration(%q) = %v, want an error", in, got)
		} else if want := `invalid duration "` + in + `" (examples: 14d, 336h)`; err.Error() != want {
			t.Errorf("parseLongDuration(%q) error = %q, want %q", in, err, want)
		}
	}
}
