package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// env is a getenv backed by a map, so tests never see the real environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadGood(t *testing.T) {
	cfg, err := Load("testdata/good.yml", env(map[string]string{"SESSIONS_PASSWORD": "env-pw"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	global := handlers.DefaultThresholds()
	global.FragWarning = 1.6
	global.FragMinUsedMemory = 64 << 20
	global.ClientBufferAvg = 1 << 20
	global.ReplicaBuffers = 100000
	cache1 := global
	cache1.FragWarning = 1.8
	cache1.MaxmemoryCritical = 0.9

	want := &Config{
		Probe:      Probe{Timeout: 3 * time.Second, Concurrency: 4},
		Runbooks:   Runbooks{Dir: filepath.Join("testdata", "runbooks")},
		Thresholds: global,
		Instances: []handlers.Instance{
			{
				Name:        "cache-1",
				Addr:        "127.0.0.1:6379",
				Username:    "redisbot",
				Password:    "inline-pw",
				DB:          1,
				Tags:        []string{"cache", "team-a"},
				MemoryLimit: 6 << 30,
				Thresholds:  cache1,
			},
			{
				Name:     "sessions.eu-1",
				Addr:     "[::1]:6380",
				Password: "env-pw",
				TLS: &handlers.TLS{
					CAFile:     filepath.Join("testdata", "tls", "ca.pem"),
					CertFile:   filepath.Join("testdata", "tls", "client.pem"),
					KeyFile:    filepath.Join("testdata", "tls", "client-key.pem"),
					ServerName: "sessions.internal",
				},
				MemoryLimit: 2 << 30,
				Thresholds:  global,
			},
			{
				Name:       "queue-1",
				Addr:       "redis.internal:6381",
				Password:   "file-secret", // trailing newline trimmed
				TLS:        &handlers.TLS{},
				Thresholds: global,
			},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", cfg, want)
	}

	in, ok := cfg.Instance("queue-1")
	if !ok || in.Addr != "redis.internal:6381" {
		t.Errorf(`Instance("queue-1") = %v, %v`, in, ok)
	}
	if _, ok := cfg.Instance("nope"); ok {
		t.Errorf(`Instance("nope") found an instance`)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		file    string
		wantErr string
	}{
		{"bad_unknown_key.yml", `instances[2].adress: unknown key`},
		{"bad_unknown_top.yml", "instance: unknown key\ninstances: at least one instance is required"},
		{"bad_unknown_tls.yml", `instances[0].tls.ca: unknown key`},
		{"bad_unknown_threshold.yml", "thresholds.frag_warn: unknown key\ninstances[0].thresholds.maxmemory: unknown key"},
		{"bad_unknown_probe.yml", `probe.retries: unknown key`},
		{"bad_duplicate_key.yml", `config: testdata/bad_duplicate_key.yml: line 4: mapping key "addr" already defined at line 3`},
		{"bad_case_duplicate_key.yml", `instances[0].addr: duplicate key (keys are not case-sensitive)`},

		{"bad_addr_missing_port.yml", `instances[2].addr: missing port`},
		{"bad_addr_port.yml", `instances[0].addr: invalid port "70000": must be 1-65535`},
		{"bad_addr_host.yml", "instances[0].addr: missing host\n" +
			"instances[1].addr: too many colons (write IPv6 addresses as [::1]:6379)\n" +
			`instances[2].addr: invalid host "cache 3"`},
		{"bad_addr_required.yml", `instances[0].addr: is required`},
		{"bad_addr_ipv6.yml", `instances[0].addr: too many colons (write IPv6 addresses as [::1]:6379)`},

		{"bad_name_pattern.yml", `instances[0].name: "Cache 1" must match [a-z0-9._-]+`},
		{"bad_name_required.yml", `instances[0].name: is required`},
		{"bad_name_duplicate.yml", `instances[3].name: duplicate of instances[1]`},

		{"bad_password_exclusive.yml", `instances[1]: password and password_env are exclusive`},
		{"bad_password_all.yml", `instances[0]: password, password_env and password_file are exclusive`},
		{"bad_password_env.yml", `instances[0].password_env: CACHE1_PASSWORD is not set`},
		{"bad_password_file.yml", `instances[0].password_file: open /nonexistent/redisbot/cache1: no such file or directory`},
		{"bad_password_file_empty.yml", `instances[0].password_file: testdata/empty-secret.txt is empty`},
		{"bad_password_file_dir.yml", `instances[0].password_file: testdata/runbooks is not a regular file`},

		{"bad_memory_limit.yml", "instances[0].memory_limit: invalid size \"6 gigs\"\n" +
			"instances[1].memory_limit: invalid size \"-1\"\n" +
			`instances[2].memory_limit: invalid size "1.5GB"`},
		{"bad_db.yml", `instances[0].db: must not be negative`},
		{"bad_tags.yml", "instances[0].tags[1]: \"Team A\" must match [a-z0-9._-]+\n" +
			`instances[0].tags[2]: "" must match [a-z0-9._-]+`},
		{"bad_tls_pair.yml", `instances[0].tls: cert_file and key_file must be set together`},
		{"bad_tls_missing.yml", `instances[0].tls.ca_file: stat testdata/tls/missing.pem: no such file or directory`},

		{"bad_thresholds_order.yml", `thresholds.frag_critical: must be greater than frag_warning`},
		{"bad_thresholds_pairs.yml", "thresholds.alloc_frag_critical: must be greater than alloc_frag_warning\n" +
			"thresholds.frag_restart: must be at least frag_critical\n" +
			"thresholds.maxmemory_critical: must be greater than maxmemory_warning\n" +
			"thresholds.rss_limit_critical: must be at most 1"},
		{"bad_thresholds_values.yml", "thresholds.frag_warning: must be positive\n" +
			"thresholds.post_peak_factor: must be positive\n" +
			"thresholds.defrag_min_hit_ratio: must be at most 1\n" +
			"thresholds.cow_margin: must be a finite number\n" +
			"thresholds.many_scripts: must not be negative\n" +
			"thresholds.fork_slow_usec: invalid integer \"1.5\"\n" +
			"thresholds.frag_min_used_memory: invalid size \"50 megs\"\n" +
			`thresholds.maxmemory_of_limit: invalid number "high"`},
		{"bad_instance_thresholds.yml", "instances[0].thresholds.frag_warning: must be less than frag_critical\n" +
			"instances[1].thresholds.maxmemory_warning: must be less than maxmemory_critical\n" +
			"instances[1].thresholds.frag_restart: must be at least frag_critical\n" +
			"instances[2].thresholds.rss_limit_critical: must be greater than rss_limit_warning\n" +
			`instances[2].thresholds.swap_min_used_memory: invalid size "lots"`},

		{"bad_probe.yml", "probe.timeout: must be positive\nprobe.concurrency: must be positive"},
		{"bad_probe_types.yml", "probe.timeout: invalid duration \"2 secs\"\nprobe.concurrency: invalid integer \"many\""},
		{"bad_probe_unit.yml", `probe.timeout: invalid duration 5: add a unit, as in 2s or 500ms`},
		{"bad_runbooks_dir.yml", `runbooks.dir: stat testdata/no-such-runbooks: no such file or directory`},
		{"bad_runbooks_file.yml", `runbooks.dir: testdata/secret.txt is not a directory`},

		{"bad_no_instances.yml", `instances: at least one instance is required`},
		{"empty.yml", `instances: at least one instance is required`},
		{"bad_types.yml", "runbooks: expected a mapping, got a string\n" +
			"thresholds: expected a mapping, got a list\n" +
			"instances[0].name: expected a string, got an integer (quote it)\n" +
			"instances[0].db: invalid integer \"one\"\n" +
			"instances[0].tags: expected a list, got a string\n" +
			"instances[0].tls: expected a mapping, got a boolean\n" +
			"instances[1]: expected a mapping, got a string"},
		{"bad_not_mapping.yml", `config: testdata/bad_not_mapping.yml: top level must be a mapping`},
		{"bad_yaml.yml", `config: testdata/bad_yaml.yml: yaml: line 1: did not find expected '-' indicator`},

		// All problems at once, in file order.
		{"bad_many.yml", "instances[0].name: \"Cache 1\" must match [a-z0-9._-]+\n" +
			"instances[0]: password and password_env are exclusive\n" +
			"instances[0].addr: missing port\n" +
			"instances[0].adress: unknown key\n" +
			"instances[1].password: expected a string, got a list\n" +
			"instances[1].memory_limit: invalid size \"6 gigs\"\n" +
			"instances[1].tls: cert_file and key_file must be set together\n" +
			"instances[2].name: duplicate of instances[1]\n" +
			"instances[2]: password and password_file are exclusive\n" +
			"instances[2].addr: invalid port \"0\": must be 1-65535\n" +
			"instances[2].thresholds.frag_warning: must be positive\n" +
			"thresholds.frag_critical: must be greater than frag_warning\n" +
			"probe.timeout: must be positive"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", tc.file), env(nil))
			if err == nil {
				t.Fatalf("Load succeeded: %+v\nwant error:\n%s", cfg, tc.wantErr)
			}
			if cfg != nil {
				t.Errorf("Load returned a config along with an error")
			}
			if err.Error() != tc.wantErr {
				t.Errorf("Load error:\n%s\nwant:\n%s", err, tc.wantErr)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	if _, err := Load("", env(nil)); err == nil || err.Error() != "config: no file given" {
		t.Errorf(`Load("") error = %v, want "config: no file given"`, err)
	}
	_, err := Load("testdata/does-not-exist.yml", env(nil))
	if want := "config: open testdata/does-not-exist.yml: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Load(missing) error = %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error does not wrap fs.ErrNotExist")
	}
	_, err = Load("testdata/bad_password_file.yml", env(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing password_file error does not wrap fs.ErrNotExist: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	runbooks := t.TempDir()
	cfg, err := Load("testdata/good.yml", env(map[string]string{
		"REDISBOT_PROBE_TIMEOUT":                    "5s",
		"REDISBOT_PROBE_CONCURRENCY":                "32",
		"REDISBOT_RUNBOOKS_DIR":                     runbooks,
		"REDISBOT_THRESHOLDS_FRAG_WARNING":          "1.7",
		"REDISBOT_THRESHOLDS_FRAG_MIN_USED_MEMORY":  "1gb",
		"REDISBOT_THRESHOLDS_FORK_SLOW_USEC":        "20000",
		"REDISBOT_INSTANCES_CACHE_1_PASSWORD":       "env-cache-1",
		"REDISBOT_INSTANCES_SESSIONS_EU_1_PASSWORD": "env-sessions", // SESSIONS_PASSWORD need not be set
		"REDISBOT_INSTANCES_QUEUE_1_PASSWORD":       "env-queue",
		"REDISBOT_INSTANCES_UNKNOWN_PASSWORD":       "ignored",
		"redisbot_probe_timeout":                    "1h", // names are exact
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Probe.Timeout != 5*time.Second || cfg.Probe.Concurrency != 32 {
		t.Errorf("Probe = %+v, want 5s and 32", cfg.Probe)
	}
	if cfg.Runbooks.Dir != runbooks {
		t.Errorf("Runbooks.Dir = %q, want %q", cfg.Runbooks.Dir, runbooks)
	}
	if g := cfg.Thresholds; g.FragWarning != 1.7 || g.FragMinUsedMemory != 1<<30 || g.ForkSlowUsec != 20000 {
		t.Errorf("global thresholds = %+v", g)
	}
	for name, want := range map[string]struct {
		password    string
		fragWarning float64
	}{
		"cache-1":       {"env-cache-1", 1.8}, // its own threshold beats the global one
		"sessions.eu-1": {"env-sessions", 1.7},
		"queue-1":       {"env-queue", 1.7},
	} {
		in, _ := cfg.Instance(name)
		if in.Password != want.password || in.Thresholds.FragWarning != want.fragWarning {
			t.Errorf("%s: password %q, frag_warning %v; want %q, %v",
				name, in.Password, in.Thresholds.FragWarning, want.password, want.fragWarning)
		}
		if in.Thresholds.FragMinUsedMemory != 1<<30 {
			t.Errorf("%s: frag_min_used_memory = %d, want the global 1gb", name, in.Thresholds.FragMinUsedMemory)
		}
	}
}

func TestEnvOverrideErrors(t *testing.T) {
	_, err := Load("testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":                     "x",
		"REDISBOT_PROBE_TIMEOUT":                "soon",
		"REDISBOT_PROBE_CONCURRENCY":            "-1",
		"REDISBOT_THRESHOLDS_MAXMEMORY_WARNING": "0.95",
		"REDISBOT_THRESHOLDS_CLIENT_BUFFER_AVG": "a lot",
		"REDISBOT_RUNBOOKS_DIR":                 "relative/not-resolved",
	}))
	want := "probe.timeout: invalid duration \"soon\" (from REDISBOT_PROBE_TIMEOUT)\n" +
		"probe.concurrency: must be positive (from REDISBOT_PROBE_CONCURRENCY)\n" +
		"runbooks.dir: stat relative/not-resolved: no such file or directory (from REDISBOT_RUNBOOKS_DIR)\n" +
		"thresholds.maxmemory_critical: must be greater than maxmemory_warning\n" +
		"thresholds.client_buffer_avg: invalid size \"a lot\" (from REDISBOT_THRESHOLDS_CLIENT_BUFFER_AVG)\n" +
		// cache-1 sets maxmemory_critical: 0.9 itself, below the new global warning.
		"instances[0].thresholds.maxmemory_critical: must be greater than maxmemory_warning"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

// TestEnvDoesNotHideFileErrors: an override of probe.timeout must not paper
// over a probe section that is not a mapping.
func TestEnvDoesNotHideFileErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	doc := "probe: 5\nthresholds: [1]\ninstances: [{name: a, addr: 'x:1'}]\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, env(map[string]string{
		"REDISBOT_PROBE_TIMEOUT":           "5s",
		"REDISBOT_THRESHOLDS_FRAG_WARNING": "1.6",
	}))
	want := "probe: expected a mapping, got an integer\nthresholds: expected a mapping, got a list"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

// TestSecretsNeverInErrors loads configs full of mistakes around a password
// and checks that the password never shows in the error.
func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-PW"
	getenv := env(map[string]string{
		"CACHE1_PASSWORD":                     secret,
		"REDISBOT_INSTANCES_CACHE_2_PASSWORD": secret,
	})
	_, err := Load("testdata/bad_many.yml", getenv)
	if err == nil {
		t.Fatal("bad_many.yml loaded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error contains the password:\n%s", err)
	}

	for _, doc := range []string{
		"instances: [{name: a, addr: 'x:1', password: [" + secret + "]}]",
		"instances: [{name: a, addr: 'x:1', password: {" + secret + ": 1}}]",
		"instances: [{name: a, addr: 'x:1', password: " + secret + ", password_env: " + secret + "}]",
		"instances: [{name: a, addr: 'x:1', passwd: " + secret + "}]",
		"instances: [{name: a, addr: 'x:1', password: '" + secret + "', thresholds: 1}]\nprobe: 2",
		"instances:\n  - name: a\n    password: \"" + secret + "\n",
		"instances: [{name: a, addr: 'x:1', password: " + secret + "}, {name: a, addr: 'x:1', password: " + secret + "}]",
	} {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, getenv)
		if err == nil {
			t.Errorf("%q loaded", doc)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error for %q contains the password:\n%s", doc, err)
		}
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := Load("../../../config.example.yaml", env(nil))
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if cfg.Thresholds != handlers.DefaultThresholds() {
		t.Errorf("the example's thresholds should document the defaults:\n got %+v\nwant %+v",
			cfg.Thresholds, handlers.DefaultThresholds())
	}
	if cfg.Probe != (Probe{Timeout: DefaultProbeTimeout, Concurrency: DefaultProbeConcurrency}) {
		t.Errorf("the example's probe section should document the defaults: %+v", cfg.Probe)
	}
	in, ok := cfg.Instance("cache-1")
	if !ok || in.Addr != "127.0.0.1:6379" || !in.HasTag("cache") || in.MemoryLimit != 6<<30 {
		t.Errorf("cache-1 = %+v, %v", in, ok)
	}
	if len(cfg.Instances) < 2 {
		t.Errorf("the example defines %d instances, want at least 2", len(cfg.Instances))
	}
}

// TestExampleDocumentsEveryKey keeps config.example.yaml in step with the
// keys the loader accepts.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	keys := thresholdKeys()
	for _, typ := range []reflect.Type{
		reflect.TypeFor[rawProbe](), reflect.TypeFor[rawRunbooks](),
		reflect.TypeFor[rawInstance](), reflect.TypeFor[rawTLS](),
	} {
		for f := range typ.Fields() {
			keys = append(keys, f.Tag.Get("mapstructure"))
		}
	}
	for _, k := range keys {
		if !strings.Contains(text, k+":") {
			t.Errorf("config.example.yaml does not document %s", k)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"100000", 100000},
		{"0", 0},
		{"1b", 1},
		{"1k", 1000},
		{"1kb", 1024},
		{"1KiB", 1024},
		{"1m", 1000000},
		{"1mb", 1048576}, // as in redis.conf
		{"50MB", 50 << 20},
		{"50MiB", 50 << 20},
		{"6GiB", 6 << 30},
		{"6gb", 6 << 30},
		{"2g", 2000000000},
		{"1tb", 1 << 40},
		{"512 MB", 512 << 20},
		{" 7mb ", 7 << 20},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "mb", "6 gigs", "-1", "1.5GB", "1e9", "0x10", "1 2", "9223372036854775808", "8388608tb"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		} else if want := `invalid size "` + in + `"`; err.Error() != want {
			t.Errorf("parseSize(%q) error = %q, want %q", in, err, want)
		}
	}
}

func TestPasswordEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"cache-1":       "REDISBOT_INSTANCES_CACHE_1_PASSWORD",
		"sessions.eu-1": "REDISBOT_INSTANCES_SESSIONS_EU_1_PASSWORD",
		"q_2":           "REDISBOT_INSTANCES_Q_2_PASSWORD",
	} {
		if got := passwordEnvName(name); got != want {
			t.Errorf("passwordEnvName(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yml")
	seeds = append(seeds, "../../../config.example.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, env(nil))
		if err != nil {
			if cfg != nil {
				t.Fatalf("Load returned a config and an error: %v", err)
			}
			return
		}
		if len(cfg.Instances) == 0 {
			t.Fatal("Load succeeded without instances")
		}
		seen := map[string]bool{}
		for _, in := range cfg.Instances {
			if !namePattern.MatchString(in.Name) || seen[in.Name] {
				t.Errorf("Load accepted instance name %q", in.Name)
			}
			seen[in.Name] = true
			if msg := checkAddr(in.Addr); msg != "" {
				t.Errorf("Load accepted addr %q: %s", in.Addr, msg)
			}
		}
		if cfg.Probe.Timeout <= 0 || cfg.Probe.Concurrency <= 0 {
			t.Errorf("Load accepted probe %+v", cfg.Probe)
		}
	})
}
