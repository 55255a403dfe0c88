// Package config loads and validates redisbot's configuration: a YAML file
// read through viper, with REDISBOT_* environment overrides on top.
//
// Loading is strict, in the manner of Alertmanager: an unknown key anywhere is
// an error, every value is checked, and all problems are reported at once, in
// file order, each naming the full key path ("instances[2].addr: missing
// port"). Secrets are resolved while loading (password_env, password_file),
// so the rest of the program only sees handlers.Instance values, and no error
// text ever carries a password.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/redisbot/redisbot/handlers"
)

// Defaults for the probe section.
const (
	DefaultProbeTimeout     = 2 * time.Second
	DefaultProbeConcurrency = 16
)

// Config is redisbot's validated configuration.
type Config struct {
	Probe    Probe
	Runbooks Runbooks
	// Instances are in file order, with secrets read and thresholds merged
	// (defaults < global thresholds < the instance's own thresholds).
	Instances []handlers.Instance
	// Thresholds are the global thresholds: handlers.DefaultThresholds with
	// the file's thresholds section applied.
	Thresholds handlers.Thresholds
}

// Probe bounds how redisbot talks to Redis.
type Probe struct {
	// Timeout bounds connecting to and reading from one instance
	// (probe.timeout, default 2s).
	Timeout time.Duration
	// Concurrency is how many instances are probed at once
	// (probe.concurrency, default 16).
	Concurrency int
}

// Runbooks says where runbooks come from.
type Runbooks struct {
	// Dir, when set, is a directory of Markdown runbooks that override the
	// built-in ones (runbooks.dir). A relative path in the file is resolved
	// against the directory of the config file.
	Dir string
}

// Instance returns the configured instance called name.
func (c *Config) Instance(name string) (handlers.Instance, bool) {
	for _, in := range c.Instances {
		if in.Name == name {
			return in, true
		}
	}
	return handlers.Instance{}, false
}

// Load reads the YAML file at path, applies REDISBOT_* environment overrides
// looked up through getenv, resolves secrets and validates the result.
//
// Environment overrides: REDISBOT_PROBE_TIMEOUT, REDISBOT_PROBE_CONCURRENCY,
// REDISBOT_RUNBOOKS_DIR, REDISBOT_THRESHOLDS_<KEY> for every threshold key
// (REDISBOT_THRESHOLDS_FRAG_WARNING), and REDISBOT_INSTANCES_<NAME>_PASSWORD,
// where NAME is the instance name upper-cased with '-' and '.' turned into
// '_' (cache-1 -> REDISBOT_INSTANCES_CACHE_1_PASSWORD). That password
// replaces whatever password, password_env or password_file the file gives.
// An empty variable counts as unset.
//
// Relative paths in the file (password_file, tls files, runbooks.dir) are
// resolved against the directory of the config file.
//
// A file that cannot be read or parsed gives a single error prefixed
// "config: ". Otherwise every problem is reported, one per line
// (errors.Join), in file order.
func Load(path string, getenv func(string) string) (*Config, error) {
	if path == "" {
		return nil, errors.New("config: no file given")
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}

	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if !isMappingOrEmpty(&root) {
		return nil, fmt.Errorf("config: %s: top level must be a mapping", path)
	}

	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, parseError(path, err)
	}

	pos, dups := positions(&root)
	l := &loader{
		dir:    filepath.Dir(path),
		getenv: getenv,
		p:      newProblems(pos),
	}
	for _, key := range dups {
		// viper folds case, so which of the two would win is undefined.
		l.p.addf(key, "duplicate key (keys are not case-sensitive)")
	}
	cfg := l.load(v)
	if err := l.p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseError reports a file that YAML cannot decode, on one line.
func parseError(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("config: %s: %s", path, strings.Join(te.Errors, "; "))
	}
	var pe viper.ConfigParseError
	if errors.As(err, &pe) {
		err = pe.Unwrap()
	}
	return fmt.Errorf("config: %s: %w", path, err)
}

// isMappingOrEmpty reports whether a parsed document is a mapping, or has no
// content at all (an empty file or a lone null).
func isMappingOrEmpty(doc *yaml.Node) bool {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	switch n.Kind {
	case yaml.MappingNode:
		return true
	case yaml.ScalarNode:
		return n.Tag == "!!null"
	}
	return false
}
