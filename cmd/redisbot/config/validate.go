package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/regularfile"
	"github.com/redisbot/redisbot/handlers/topology"
)

// namePattern is what instance names and tags must match: they are typed in
// chat commands and used in environment variable names.
var namePattern = regexp.MustCompile(`^[a-z0-9._-]+$`)

// Caps on the files Load reads, far above any real file and far below
// what would hurt the process.
const (
	// maxConfigFile bounds the config file: a fleet of a thousand
	// instances takes about 300 KiB.
	maxConfigFile = 4 << 20
	// maxSecretFile bounds a password_file or token file, which holds one
	// line.
	maxSecretFile = 64 << 10
	// maxTLSFile bounds a ca_file, cert_file or key_file: Mozilla's whole
	// CA bundle is about 220 KiB. probe.TLSConfig reads them again, with
	// the same cap, when it connects.
	maxTLSFile = 1 << 20
)

// loader turns the decoded file into a Config, collecting problems.
type loader struct {
	ctx    context.Context // Load stops reading files once it is done
	dir    string          // directory of the config file, for relative paths
	getenv func(string) string
	p      *problems
	// plainSecrets maps a line to the column of an unquoted secret value
	// on it (checkSecretValues), for followsSecret.
	plainSecrets map[int]int
}

func (l *loader) load(doc map[string]any) *Config {
	l.applyEnv(doc)
	f := defaults()
	l.decode("", doc, &f)

	cfg := &Config{Probe: f.Probe, HTTP: f.HTTP, Runbooks: Runbooks{Dir: l.runbooksDir(f.Runbooks.Dir)}}
	l.p.check("probe.timeout", cfg.Probe.Timeout <= 0, "must be positive")
	l.p.check("probe.concurrency", cfg.Probe.Concurrency <= 0, "must be positive")
	l.p.check("probe.blocked_after", cfg.Probe.BlockedAfter <= 0, "must be positive")
	l.p.check("probe.workers_growth", cfg.Probe.WorkersGrowth < 1 || cfg.Probe.WorkersGrowth > maxProbeWorkersGrowth,
		fmt.Sprintf("must be between 1 and %d (1: never more probes than probe.concurrency)", maxProbeWorkersGrowth))
	if k := "http.listen"; cfg.HTTP.Listen != "" {
		if _, port, err := net.SplitHostPort(cfg.HTTP.Listen); err != nil {
			l.p.addf(k, "must be host:port, as in 127.0.0.1:9121 (empty turns the endpoint off)")
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			l.p.addf(k, "invalid port %s: must be 0-65535", quote(port))
		}
	}

	// Every global value is checked, whether set or default.
	cfg.Thresholds, _ = l.decodeThresholds("thresholds", handlers.DefaultThresholds(), f.Thresholds)
	l.checkThresholds("thresholds", cfg.Thresholds, nil)

	l.p.check("instances", len(f.Instances) == 0, "at least one instance is required")
	seen := map[string]int{}
	for i, fi := range f.Instances {
		cfg.Instances = append(cfg.Instances, l.instance(i, fi, cfg.Thresholds, seen))
	}
	cfg.Slack = l.slack(f.Slack)
	tags := l.instanceTags(len(f.Instances), cfg)
	cfg.Access = l.access(f.Access, tags)
	cfg.Store = l.store(f.Store)
	cfg.Approvals = l.approvals(f.Approvals)
	cfg.Schedule = l.schedule(f.Schedule)
	cfg.Alerts = l.alerts(f.Alerts, tags)
	cfg.Keys = l.keys(f.Keys)
	cfg.Remediation = l.remedy(f.Remediation)
	cfg.AlertTiming = l.alertTiming(f.AlertTiming, cfg.Instances)
	l.digestChannel(cfg)
	cfg.Alertmanager = l.alertmanager(f.Alertmanager, cfg)
	return cfg
}

// instanceTags is the set of tags of all instances, or nil when the tags of
// some instance could not be decoded.
func (l *loader) instanceTags(n int, cfg *Config) map[string]bool {
	if l.p.isFailed("instances") {
		return nil
	}
	tags := map[string]bool{}
	for i := range n {
		if l.p.isFailed(fmt.Sprintf("instances[%d].tags", i)) {
			return nil
		}
	}
	for _, in := range cfg.Instances {
		for _, t := range in.Tags {
			tags[t] = true
		}
		// The tags topology.Expand gives the members of a cluster or
		// Sentinel entry can route alerts and limit channels too.
		for _, t := range topology.GeneratedTags(in) {
			tags[t] = true
		}
	}
	return tags
}

func (l *loader) runbooksDir(dir string) string {
	const key = "runbooks.dir"
	if dir == "" {
		return dir
	}
	if _, env := l.p.fromEnv[key]; !env {
		dir = l.resolve(dir)
	}
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		l.p.add(key, err)
	case !st.IsDir():
		l.p.addf(key, "%s is not a directory", dir)
	}
	return dir
}

// resolve makes a relative path from the file relative to the file's
// directory.
func (l *loader) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(l.dir, path)
}

func (l *loader) instance(i int, ri instanceFile, global handlers.Thresholds, seen map[string]int) handlers.Instance {
	key := fmt.Sprintf("instances[%d]", i)
	in := handlers.Instance{
		Name:        ri.Name,
		Addr:        ri.Addr,
		Username:    ri.Username,
		DB:          ri.DB,
		Tags:        ri.Tags,
		MemoryLimit: int64(ri.MemoryLimit),
	}
	if l.p.isFailed(key) {
		return in
	}

	switch k := key + ".name"; {
	case ri.Name == "":
		l.p.addf(k, "is required")
	case !namePattern.MatchString(ri.Name):
		l.p.addf(k, "%s must match [a-z0-9._-]+", quote(ri.Name))
	default:
		if j, dup := seen[ri.Name]; dup {
			l.p.addf(k, "duplicate of instances[%d]", j)
		} else {
			seen[ri.Name] = i
		}
	}
	// A sentinel section that could not be decoded still means the entry
	// has no address of its own.
	sentinel := ri.Sentinel != nil || l.p.isFailed(key+".sentinel") || l.p.hasUnder(key+".sentinel")
	switch k := key + ".addr"; {
	case !ri.Cluster && sentinel:
		// The sentinels say where the master is.
		l.p.check(k, ri.Addr != "", "not with sentinel: the sentinels give the master's address")
	case ri.Cluster && (len(ri.Seeds) > 0 || l.p.isFailed(key+".seeds")):
		// group checks seeds, the first of which becomes the addr.
		l.p.check(k, ri.Addr != "", "not with seeds: list every seed under seeds, in the order to ask them")
	default:
		l.p.check(k, checkAddr(ri.Addr) != "", checkAddr(ri.Addr))
	}
	override := ""
	if ri.Name != "" {
		override = passwordEnvName(ri.Name)
	}
	in.Password = l.password(key, override, passwordSources{ri.Password, ri.PasswordEnv, ri.PasswordFile})
	l.p.check(key+".db", ri.DB < 0, "must not be negative")
	if ri.TLS != nil {
		in.TLS = l.tls(key+".tls", *ri.TLS)
	}
	for j, tag := range ri.Tags {
		if !namePattern.MatchString(tag) {
			l.p.addf(fmt.Sprintf("%s.tags[%d]", key, j), "%s must match [a-z0-9._-]+", quote(tag))
		}
	}
	var set map[string]bool
	in.Thresholds, set = l.decodeThresholds(key+".thresholds", global, ri.Thresholds)
	l.checkThresholds(key+".thresholds", in.Thresholds, set)
	group := l.group(key, ri, sentinel, &in)
	in.Remediation = l.remediation(key, ri.Name, group, ri.Remediation)
	return in
}

// checkAddr returns what is wrong with a host:port address, or "".
func checkAddr(addr string) string {
	if addr == "" {
		return "is required"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) {
			return "invalid address"
		}
		msg := strings.TrimSuffix(ae.Err, " in address")
		if msg == "too many colons" {
			msg += " (write IPv6 addresses as [::1]:6379)"
		}
		return msg
	}
	if host == "" {
		return "missing host"
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:%", r)) {
			return fmt.Sprintf("invalid host %q", host)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("invalid port %q: must be 1-65535", port)
	}
	return ""
}

// passwordSources are the three exclusive ways a file gives a password.
type passwordSources struct {
	password, env, file string
}

// password resolves a password from, in order of precedence, the variable
// override (REDISBOT_INSTANCES_<NAME>_PASSWORD, or "" for none), and the
// password, password_env or password_file under key. Its value never goes
// into a problem.
func (l *loader) password(key, override string, ps passwordSources) string {
	var sources []string
	for _, s := range []struct{ name, val string }{
		{"password", ps.password},
		{"password_env", ps.env},
		{"password_file", ps.file},
	} {
		if s.val != "" {
			sources = append(sources, s.name)
		}
	}
	if len(sources) > 1 {
		l.p.addf(key, "%s are exclusive", joinAnd(sources))
		return ""
	}
	if override != "" {
		if pw := l.getenv(override); pw != "" {
			return pw
		}
	}
	if len(sources) == 0 {
		return ""
	}
	switch sources[0] {
	case "password":
		return ps.password
	case "password_env":
		if !envNamePattern.MatchString(ps.env) {
			l.p.addf(key+".password_env", notEnvName)
			return ""
		}
		pw := l.getenv(ps.env)
		if pw == "" {
			l.p.addf(key+".password_env", "%s is not set", ps.env)
		}
		return pw
	default:
		pw, err := l.readSecretFile(l.resolve(ps.file))
		if err != nil {
			l.p.add(key+".password_file", err)
		}
		return pw
	}
}

// readFile reads a file the config names, unless Load has been stopped:
// then it reads nothing, and Load reports the stop instead of this error.
func (l *loader) readFile(path string, max int64) ([]byte, error) {
	if err := l.ctx.Err(); err != nil {
		return nil, err
	}
	return regularfile.Read(path, max)
}

// readSecretFile reads a secret file as written by Docker or Kubernetes,
// trimming the trailing newline. Like every file the config names, it must
// be a regular file (not /dev/zero, not a FIFO, which would block an open)
// of at most maxSecretFile bytes.
func (l *loader) readSecretFile(path string) (string, error) {
	b, err := l.readFile(path, maxSecretFile)
	if err != nil {
		return "", err
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return pw, nil
}

// tls resolves and checks an instance's tls section. Each file is read as
// probe.TLSConfig will read it: the CA file must hold at least one
// certificate, and the certificate and key must be a pair.
func (l *loader) tls(key string, rt tlsFile) *handlers.TLS {
	t := &handlers.TLS{
		CAFile:             l.resolve(rt.CAFile),
		CertFile:           l.resolve(rt.CertFile),
		KeyFile:            l.resolve(rt.KeyFile),
		ServerName:         rt.ServerName,
		InsecureSkipVerify: rt.InsecureSkipVerify,
	}
	pair := true
	if (t.CertFile == "") != (t.KeyFile == "") && !l.p.isFailed(key+".cert_file") && !l.p.isFailed(key+".key_file") {
		l.p.addf(key, "cert_file and key_file must be set together")
		pair = false
	}
	read := map[string][]byte{}
	for _, f := range []struct{ name, path string }{
		{"ca_file", t.CAFile},
		{"cert_file", t.CertFile},
		{"key_file", t.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		b, err := l.readFile(f.path, maxTLSFile)
		if err != nil {
			l.p.add(key+"."+f.name, err)
			continue
		}
		read[f.name] = b
	}
	if b, ok := read["ca_file"]; ok && !x509.NewCertPool().AppendCertsFromPEM(b) {
		l.p.addf(key+".ca_file", "%s holds no PEM certificate", t.CAFile)
	}
	cert, okCert := read["cert_file"]
	keyPEM, okKey := read["key_file"]
	if pair && okCert && okKey {
		// crypto/tls's errors name PEM block types, never key material.
		if _, err := tls.X509KeyPair(cert, keyPEM); err != nil {
			l.p.addf(key, "cert_file and key_file: %v", err)
		}
	}
	return t
}

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// Ordering constraints between thresholds: lo must stay below hi (or not
// above it, with orEqual), or a warning would never come before its
// critical.
var thresholdPairs = []struct {
	lo, hi  string
	orEqual bool
}{
	{"frag_warning", "frag_critical", false},
	{"frag_critical", "frag_restart", true},
	{"alloc_frag_warning", "alloc_frag_critical", false},
	{"maxmemory_warning", "maxmemory_critical", false},
	{"rss_limit_warning", "rss_limit_critical", false},
	{"slow_reply_info", "slow_reply_warning", false},
}

// shareThresholds are fractions of a whole and cannot exceed 1.
var shareThresholds = map[string]bool{
	"maxmemory_critical":     true,
	"rss_limit_critical":     true,
	"defrag_min_hit_ratio":   true,
	"volatile_min_ttl_share": true,
	"maxmemory_of_limit":     true,
	"cow_used_share":         true,
	"no_ttl_share":           true,
	"defrag_skip_share":      true,
}

// checkThresholds validates t. Problems are reported only for keys in set
// (or involving one, for ordering), so that a bad global value is reported
// once, under thresholds, and not again for every instance; set == nil
// means every key.
func (l *loader) checkThresholds(prefix string, t handlers.Thresholds, set map[string]bool) {
	isSet := func(k string) bool { return set == nil || set[k] }
	ok := map[string]bool{}
	v := reflect.ValueOf(t)
	for i, k := range thresholdKeys() {
		key := prefix + "." + k
		if l.p.isFailed(key) {
			continue
		}
		var msg string
		switch f := v.Field(i); {
		case f.Type() == durationType:
			// A window or horizon of zero would disable its rule silently.
			if f.Int() <= 0 {
				msg = "must be positive"
			}
		case f.Kind() == reflect.Float64:
			switch x := f.Float(); {
			case math.IsNaN(x) || math.IsInf(x, 0):
				msg = "must be a finite number"
			case x <= 0:
				msg = "must be positive"
			case x > 1 && shareThresholds[k]:
				msg = "must be at most 1"
			}
		case f.Kind() == reflect.Int64:
			if f.Int() < 0 {
				msg = "must not be negative"
			}
		}
		if msg == "" {
			ok[k] = true
		} else if isSet(k) {
			l.p.add(key, errors.New(msg))
		}
	}
	for _, pr := range thresholdPairs {
		if !ok[pr.lo] || !ok[pr.hi] || !isSet(pr.lo) && !isSet(pr.hi) {
			continue
		}
		lo, hi := number(v.FieldByIndex(thresholdIndex(pr.lo))), number(v.FieldByIndex(thresholdIndex(pr.hi)))
		if hi > lo || pr.orEqual && hi == lo {
			continue
		}
		// Blame the key this section set: an instance that only raises
		// frag_warning is told that it must stay below frag_critical.
		switch {
		case isSet(pr.hi) && pr.orEqual:
			l.p.addf(prefix+"."+pr.hi, "must be at least %s", pr.lo)
		case isSet(pr.hi):
			l.p.addf(prefix+"."+pr.hi, "must be greater than %s", pr.lo)
		case pr.orEqual:
			l.p.addf(prefix+"."+pr.lo, "must be at most %s", pr.hi)
		default:
			l.p.addf(prefix+"."+pr.lo, "must be less than %s", pr.hi)
		}
	}
}

// number is a ratio's value, or a duration's, for comparing a pair.
func number(f reflect.Value) float64 {
	if f.Kind() == reflect.Float64 {
		return f.Float()
	}
	return float64(f.Int())
}

// thresholdIndex is the field index of the threshold with mapstructure tag
// key.
func thresholdIndex(key string) []int {
	t := reflect.TypeFor[handlers.Thresholds]()
	for f := range t.Fields() {
		if f.Tag.Get("mapstructure") == key {
			return f.Index
		}
	}
	panic("config: no threshold " + key)
}
