// Package probe reads a Redis or Valkey instance's memory state into a
// handlers.Snapshot, in one pipelined round trip where the server allows it.
// It degrades instead of aborting: a denied or renamed CONFIG, a missing
// MEMORY DOCTOR, or an old server without "INFO everything" leave parts of
// the snapshot unknown, never a failed probe.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/regularfile"
)

// ConfigKeys are the settings the rules read. Each is asked for by name, so a
// password (requirepass, masterauth) is never fetched, and each is its own
// CONFIG GET because Redis before 7.0 takes one pattern per call.
var ConfigKeys = []string{
	"maxmemory",
	"maxmemory-policy",
	"activedefrag",
	"active-defrag-ignore-bytes",
	"active-defrag-threshold-lower",
	"active-defrag-threshold-upper",
	"active-defrag-cycle-min",
	"active-defrag-cycle-max",
	"active-defrag-max-scan-fields",
	"save",
	"appendonly",
	"jemalloc-bg-thread",
	"replica-ignore-maxmemory",
}

// Prober probes instances and keeps one small connection pool per instance,
// so a sweep or a benchmark pays the connection set-up once.
type Prober struct {
	timeout time.Duration
	now     func() time.Time

	mu       sync.Mutex
	clients  map[string]*redis.Client
	inflight map[string]*call
}

// call is one probe in flight that concurrent callers share.
type call struct {
	done chan struct{}
	snap *handlers.Snapshot
	err  error
}

// New returns a Prober whose probes each take at most timeout, connecting
// included. now is injected for tests.
func New(timeout time.Duration, now func() time.Time) *Prober {
	if now == nil {
		now = time.Now
	}
	return &Prober{timeout: timeout, now: now, clients: map[string]*redis.Client{}, inflight: map[string]*call{}}
}

// Close closes every connection.
func (p *Prober) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for name, c := range p.clients {
		errs = append(errs, c.Close())
		delete(p.clients, name)
	}
	return errors.Join(errs...)
}

// Probe captures one snapshot. On failure it returns a *handlers.ProbeError;
// when the server is loading its dataset it returns the snapshot it could
// read together with a ProbeError of class loading.
//
// Concurrent probes of the same instance share one round trip: fifty chat
// commands about a dead instance cost it one connection attempt and cost
// the bot one timeout, not fifty. The shared snapshot must not be modified.
func (p *Prober) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	p.mu.Lock()
	c, ok := p.inflight[inst.Name]
	if !ok {
		c = &call{done: make(chan struct{})}
		p.inflight[inst.Name] = c
		p.mu.Unlock()
		// The shared probe runs to its own deadline even if this caller
		// goes away, so the others still get an answer.
		go func() {
			c.snap, c.err = p.probeSafely(context.WithoutCancel(ctx), inst)
			p.mu.Lock()
			delete(p.inflight, inst.Name)
			p.mu.Unlock()
			close(c.done)
		}()
	} else {
		p.mu.Unlock()
	}
	select {
	case <-c.done:
		return c.snap, c.err
	case <-ctx.Done():
		return nil, &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassTimeout, Err: ctx.Err()}
	}
}

// probeSafely is probe in the shared goroutine, where a panic nobody
// recovers would end the process: a client library panicking over a hostile
// reply fails this instance's probe (class internal, the panic and its
// stack inside) and its pooled connection, whose state is then unknown, is
// closed.
func (p *Prober) probeSafely(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	var snap *handlers.Snapshot
	err := handlers.Safely(func() error {
		var err error
		snap, err = p.probe(ctx, inst)
		return err
	})
	if pe, ok := handlers.AsPanic(err); ok {
		p.drop(inst.Name, pe)
		return nil, &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassInternal, Err: pe}
	}
	return snap, err
}

func (p *Prober) probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	fail := func(err error) error {
		return &handlers.ProbeError{Instance: inst.Name, Class: Classify(err), Err: err}
	}
	// go-redis dials localhost:6379 for an empty address. A Sentinel entry
	// whose sentinels did not answer has none: it is unreachable, never
	// whatever listens on the default port.
	if inst.Addr == "" {
		return nil, &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassError,
			Err: errors.New("no address (a cluster or Sentinel entry that could not be expanded)")}
	}
	c, err := p.client(inst)
	if err != nil {
		return nil, &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassTLS, Err: err}
	}

	start := p.now()
	pipe := c.Pipeline()
	info := pipe.Info(ctx, "everything")
	configs := make([]*redis.MapStringStringCmd, len(ConfigKeys))
	for i, key := range ConfigKeys {
		configs[i] = pipe.ConfigGet(ctx, key)
	}
	stats := pipe.Do(ctx, "MEMORY", "STATS")
	doctor := pipe.Do(ctx, "MEMORY", "DOCTOR")
	_, execErr := pipe.Exec(ctx) // each command's error is read below
	roundTrip := p.now().Sub(start)

	infoText, err := info.Result()
	if err == nil && infoText == "" && execErr != nil {
		// A failure while setting up the connection (AUTH, SELECT) is only
		// reported by Exec, not on the commands.
		err = execErr
	}
	if err != nil && isServerError(err) && !isClassified(err) {
		// Servers older than 6.0 or proxies reject "everything".
		infoText, err = fallbackInfo(ctx, c)
	}
	if err != nil {
		p.drop(inst.Name, err)
		return nil, fail(fmt.Errorf("INFO: %w", err))
	}

	snap := &handlers.Snapshot{
		Instance:  inst.Name,
		ProbedAt:  start,
		RoundTrip: roundTrip,
		Info:      handlers.ParseInfo(infoText),
		Config:    map[string]string{},
	}
	if !snap.Info.Has("used_memory") {
		return nil, fail(errors.New("INFO reply has no used_memory field: not a Redis server?"))
	}

	var configErr error
	for _, cmd := range configs {
		m, err := cmd.Result()
		if err != nil {
			configErr = err
			continue
		}
		for k, v := range m {
			snap.Config[k] = v
		}
	}
	if configErr != nil {
		snap.Missing = append(snap.Missing, "CONFIG GET: "+describe(configErr))
	}
	if v, err := stats.Result(); err == nil {
		snap.MemoryStats = flattenStats(v)
	} else {
		snap.Missing = append(snap.Missing, "MEMORY STATS: "+describe(err))
	}
	if v, err := doctor.Text(); err == nil {
		snap.Doctor = v
	} else {
		snap.Missing = append(snap.Missing, "MEMORY DOCTOR: "+describe(err))
	}
	// Before any rule sees it, and before it is shared with concurrent
	// callers: numbers that cannot be true become unknown, with a note.
	snap.Validate()

	if n, _ := snap.Info.Int("loading"); n == 1 {
		return snap, &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassLoading,
			Err: errors.New("server is loading its dataset into memory")}
	}
	return snap, nil
}

func fallbackInfo(ctx context.Context, c *redis.Client) (string, error) {
	text, err := c.Info(ctx, "all").Result()
	if err == nil {
		return text, nil
	}
	if !isServerError(err) {
		return "", err
	}
	return c.Info(ctx).Result()
}

// client returns the pooled client of an instance, creating it on first use.
func (p *Prober) client(inst handlers.Instance) (*redis.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[inst.Name]; ok {
		if c.Options().Addr == inst.Addr {
			return c, nil
		}
		// The name moved to another server (<entry>.master after a
		// failover): the old client would probe the old master.
		_ = c.Close()
	}
	opts, err := ClientOptions(inst, p.timeout)
	if err != nil {
		return nil, err
	}
	opts.PoolSize = 2
	opts.ConnMaxIdleTime = 5 * time.Minute
	// A probe's replies are about 10 KB. go-redis' defaults (32 KiB,
	// 128 KiB for its pipeline pool, per connection) cost 256 KiB per
	// instance: 250 MB for a fleet of 1,000. Small buffers read in a
	// few more syscalls and keep a 1,000-instance sweep within budget.
	opts.ReadBufferSize, opts.WriteBufferSize = 16<<10, 4<<10
	opts.PipelineReadBufferSize, opts.PipelineWriteBufferSize = 16<<10, 4<<10
	c := redis.NewClient(opts)
	p.clients[inst.Name] = c
	return c, nil
}

// drop closes the pooled client after a connection-level failure so the next
// probe starts clean.
func (p *Prober) drop(name string, err error) {
	if isServerError(err) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[name]; ok {
		_ = c.Close()
		delete(p.clients, name)
	}
}

// TLSConfig builds the TLS settings of an instance from its config: the CA,
// client certificate and server name. Every client of an instance uses it.
// The files are read through regularfile, as the config loader read them at
// start-up: a file swapped since for a FIFO or /dev/zero is an error, not a
// hang or a process that grows without bound.
func TLSConfig(t *handlers.TLS) (*tls.Config, error) {
	// maxPEM bounds each file, the cap the config loader uses (maxTLSFile):
	// Mozilla's whole CA bundle is about 220 KiB.
	const maxPEM = 1 << 20
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // operator's explicit choice
	if t.CAFile != "" {
		pem, err := regularfile.Read(t.CAFile, maxPEM)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no certificates found", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		certPEM, err := regularfile.Read(t.CertFile, maxPEM)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file: %w", err)
		}
		keyPEM, err := regularfile.Read(t.KeyFile, maxPEM)
		if err != nil {
			return nil, fmt.Errorf("tls key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// flattenStats turns MEMORY STATS' RESP2 reply (alternating names and values,
// with nested arrays for db.N) into "db.0.overhead.hashtable.main" -> value.
func flattenStats(v any) map[string]float64 {
	out := map[string]float64{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		list, ok := v.([]any)
		if !ok {
			return
		}
		for i := 0; i+1 < len(list); i += 2 {
			name, ok := list[i].(string)
			if !ok {
				continue
			}
			key := prefix + name
			switch val := list[i+1].(type) {
			case int64:
				out[key] = float64(val)
			case string:
				if f, err := strconv.ParseFloat(val, 64); err == nil {
					out[key] = f
				}
			case float64:
				out[key] = val
			case []any:
				walk(key+".", val)
			}
		}
	}
	walk("", v)
	return out
}

// describe is the short form of a partial failure recorded in Missing.
func describe(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 120 {
		msg = msg[:120] + "..."
	}
	return string(Classify(err)) + " (" + msg + ")"
}
