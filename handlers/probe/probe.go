// Package probe reads a Redis or Valkey instance's memory state into a
// handlers.Snapshot, in two round trips under one deadline: INFO alone,
// then CONFIG GET, MEMORY STATS and MEMORY DOCTOR pipelined. It degrades
// instead of aborting: a denied or renamed CONFIG, a missing MEMORY
// DOCTOR, an old server without "INFO everything", or a slow server whose
// later replies miss the deadline leave parts of the snapshot unknown,
// never a failed probe. Only an INFO that does not arrive makes the
// instance unreachable.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/regularfile"
)

// ConfigKeys are the settings the rules read. Each is asked for by name (or
// by a pattern that only matches harmless settings), so a password
// (requirepass, masterauth) is never fetched, and each is its own CONFIG
// GET because Redis before 7.0 takes one pattern per call. They are
// pipelined with the rest: one round trip for all.
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

// ConfigPatterns are settings asked for by a pattern, each in one CONFIG
// GET after ConfigKeys: the lazy-freeing settings the key rules cite
// (big-keys). Which exist depends on the version (lazyfree-lazy-user-del
// from 6.0, lazyfree-lazy-user-flush from 6.2): the pattern answers those
// the server has, and matches no password.
var ConfigPatterns = []string{"lazyfree-lazy-*"}

// Commands are what a probe sends once connected (besides
// ConnectCommands): INFO alone, then CONFIG GET of each ConfigKeys and
// ConfigPatterns entry, MEMORY STATS and MEMORY DOCTOR. check-config and the tests read them.
var Commands = []handlers.RedisCommand{
	{ACL: "info", Args: 1},
	{ACL: "config|get", Args: 1},
	{ACL: "memory|stats"},
	{ACL: "memory|doctor"},
}

// ConnectCommands are what every client built from ClientOptions sends
// when it opens a connection: HELLO (with AUTH in it), AUTH alone to a
// server that does not know HELLO, SELECT for a database other than 0.
// They need no permission check: a connection that cannot make them fails
// whatever is sent next, and says so.
var ConnectCommands = []handlers.RedisCommand{{ACL: "hello"}, {ACL: "auth"}, {ACL: "select", Args: 1}}

// Prober probes instances and keeps one small connection pool per instance,
// so a sweep or a benchmark pays the connection set-up once.
type Prober struct {
	timeout time.Duration
	now     func() time.Time
	// oneShot closes an instance's connection once its probe is over
	// (DialPerProbe).
	oneShot bool

	mu       sync.Mutex
	clients  map[string]*redis.Client
	inflight map[string]*call
}

// call is one probe in flight that concurrent callers share.
type call struct {
	done chan struct{}
	// cut: the probe runs to its first caller's deadline, shorter than
	// the prober's timeout (a sweep's short probe of an instance
	// that was down), so it cannot answer for a caller that allows the
	// whole timeout.
	cut  bool
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

// DialPerProbe makes every probe open its own connection and close it when
// done. A one-shot CLI run probes each instance once: a pooled socket
// would only sit idle until exit, and over 10,000 instances those sockets,
// their buffers and go-redis' pool goroutines were most of the peak RSS
// (issue 18). serve keeps the pools, which its sweeps reuse.
func (p *Prober) DialPerProbe() { p.oneShot = true }

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
// A probe takes at most the prober's timeout, or less when ctx's deadline
// comes sooner.
//
// Concurrent probes of the same instance share one round trip: fifty chat
// commands about a dead instance cost it one connection attempt and cost
// the bot one timeout, not fifty. A probe cut short by its caller's
// deadline (a sweep's short probe of an instance that was down)
// cannot answer for a caller that allows the whole timeout: that one waits
// for it to end, at most its short deadline, and then probes on its own,
// never beside it, because the failed probe closes the instance's client
// and would take the other's connection with it. The shared snapshot must
// not be modified.
func (p *Prober) Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error) {
	timedOut := func() error {
		return &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassTimeout, Err: ctx.Err()}
	}
	for {
		budget := p.timeout
		if d, ok := ctx.Deadline(); ok {
			budget = min(budget, time.Until(d))
		}
		cut := budget < p.timeout
		p.mu.Lock()
		c, ok := p.inflight[inst.Name]
		if ok && c.cut && !cut {
			p.mu.Unlock()
			select {
			case <-c.done:
				continue
			case <-ctx.Done():
				return nil, timedOut()
			}
		}
		if !ok {
			c = &call{done: make(chan struct{}), cut: cut}
			p.inflight[inst.Name] = c
			// The shared probe runs to its own deadline even if this
			// caller goes away, so the others still get an answer.
			go p.share(context.WithoutCancel(ctx), c, inst, budget)
		}
		p.mu.Unlock()
		select {
		case <-c.done:
			return c.snap, c.err
		case <-ctx.Done():
			return nil, timedOut()
		}
	}
}

// share runs the probe that c's callers share, within budget.
func (p *Prober) share(ctx context.Context, c *call, inst handlers.Instance, budget time.Duration) {
	c.snap, c.err = p.probeSafely(ctx, inst, budget)
	p.mu.Lock()
	delete(p.inflight, inst.Name)
	if p.oneShot {
		// Still under mu: a probe of this name that starts next finds
		// no client and dials its own.
		if cl, ok := p.clients[inst.Name]; ok {
			_ = cl.Close()
			delete(p.clients, inst.Name)
		}
	}
	p.mu.Unlock()
	close(c.done)
}

// probeSafely is probe in the shared goroutine, where a panic nobody
// recovers would end the process: a client library panicking over a hostile
// reply fails this instance's probe (class internal, the panic and its
// stack inside) and its pooled connection, whose state is then unknown, is
// closed.
func (p *Prober) probeSafely(ctx context.Context, inst handlers.Instance, budget time.Duration) (*handlers.Snapshot, error) {
	var snap *handlers.Snapshot
	err := handlers.Safely(func() error {
		var err error
		snap, err = p.probe(ctx, inst, budget)
		return err
	})
	if pe, ok := handlers.AsPanic(err); ok {
		p.drop(inst.Name, pe)
		return nil, &handlers.ProbeError{Instance: inst.Name, Class: handlers.ClassInternal, Err: pe}
	}
	return snap, err
}

func (p *Prober) probe(ctx context.Context, inst handlers.Instance, budget time.Duration) (*handlers.Snapshot, error) {
	// One deadline for the whole probe, connecting included: every round
	// trip below gets what the ones before it left.
	ctx, cancel := context.WithTimeout(ctx, budget)
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
	info, err := p.readInfo(ctx, c, start)
	if err != nil {
		p.drop(inst.Name, err)
		return nil, fail(fmt.Errorf("INFO: %w", err))
	}
	snap := &handlers.Snapshot{
		Instance:  inst.Name,
		ProbedAt:  start,
		RoundTrip: info.roundTrip,
		Connect:   info.connect,
		Info:      handlers.ParseInfo(info.text),
		Config:    map[string]string{},
	}
	if !snap.Info.Has("used_memory") {
		return nil, fail(errors.New("INFO reply has no used_memory field: not a Redis server?"))
	}
	// INFO answered: the instance is reachable and the snapshot exists,
	// whatever happens to the rest. What is refused, or does not arrive
	// before the deadline, is listed in Missing and the rules work
	// without it. A reply that is not Redis (over a limit, unparsable) is
	// another matter: whatever sent it cannot be believed about INFO
	// either, and the probe fails as if INFO had been that reply.
	if err := p.readRest(ctx, c, snap); err != nil {
		p.drop(inst.Name, err)
		return nil, fail(err)
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

// infoReply is INFO's text and how long it took to get.
type infoReply struct {
	text string
	// connect is how long opening the connection took (TCP, TLS, and the
	// HELLO go-redis sends), 0 when the probe reused a pooled one.
	connect time.Duration
	// roundTrip is INFO's own round trip, once connected.
	roundTrip time.Duration
}

// readInfo sends INFO in a round trip of its own, before anything else:
// go-redis stamps a pipeline's transport error on every command in it,
// even those whose replies it had read, so a server that answers INFO and
// then stalls would read as unreachable. Alone, INFO's reply is kept
// whatever follows, and its round trip is the server's reply latency,
// untangled from the other commands and from the connect.
//
// Servers older than 6.0 and proxies reject "INFO everything": it falls
// back to "INFO all", then to plain INFO. start is when the probe began.
func (p *Prober) readInfo(ctx context.Context, c *redis.Client, start time.Time) (infoReply, error) {
	var connected connectTime
	ctx = context.WithValue(ctx, connectKey{}, &connected)
	var (
		r   infoReply
		err error
	)
	for _, section := range [][]string{{"everything"}, {"all"}, nil} {
		sent := p.now()
		r.text, err = c.Info(ctx, section...).Result()
		// A connection opened for this INFO is not part of its round trip.
		at, ok := connected.get()
		if ok && at.After(sent) {
			sent = at
		}
		r.roundTrip = p.now().Sub(sent)
		if ok {
			r.connect = at.Sub(start)
		}
		// Only a plain ERR (an unknown section) is worth another try: a
		// timeout, NOAUTH or NOPERM would fail the fallbacks the same way.
		if err == nil || !isServerError(err) || isClassified(err) {
			break
		}
	}
	return r, err
}

// readRest reads what the rules need besides INFO in one pipelined round
// trip: CONFIG GET of each setting and pattern, MEMORY STATS, and MEMORY
// DOCTOR last (only the doctor verb and finding need its text). Every
// reply that arrived before the deadline is kept (see reply); a part the
// server refused (ACL, CONFIG renamed) or that did not arrive in time is
// unknown, and noted once in Missing. It fails only on a reply that is
// not Redis.
func (p *Prober) readRest(ctx context.Context, c *redis.Client, snap *handlers.Snapshot) error {
	pipe := c.Pipeline()
	var configs []*redis.Cmd
	for _, key := range slices.Concat(ConfigKeys, ConfigPatterns) {
		configs = append(configs, pipe.Do(ctx, "CONFIG", "GET", key))
	}
	stats := pipe.Do(ctx, "MEMORY", "STATS")
	doctor := pipe.Do(ctx, "MEMORY", "DOCTOR")
	_, _ = pipe.Exec(ctx) // each command's reply, or error, is read below

	var configErr error
	for _, cmd := range configs {
		v, err := reply(cmd)
		if err != nil {
			configErr = err
			continue
		}
		for k, val := range configPairs(v) {
			snap.Config[k] = val
		}
	}
	if configErr != nil {
		if notRedis(configErr) {
			return fmt.Errorf("CONFIG GET: %w", configErr)
		}
		snap.Missing = append(snap.Missing, "CONFIG GET: "+p.describe(configErr))
	}
	v, err := reply(stats)
	switch {
	case err == nil:
		snap.MemoryStats = flattenStats(v)
	case notRedis(err):
		return fmt.Errorf("MEMORY STATS: %w", err)
	default:
		snap.Missing = append(snap.Missing, "MEMORY STATS: "+p.describe(err))
	}
	v, err = reply(doctor)
	switch {
	case err != nil && notRedis(err):
		return fmt.Errorf("MEMORY DOCTOR: %w", err)
	case err != nil:
		snap.Missing = append(snap.Missing, "MEMORY DOCTOR: "+p.describe(err))
	default:
		// Valid RESP that is not text (a proxy's own answer) is only a
		// missing part.
		if text, ok := v.(string); ok {
			snap.Doctor = text
		} else {
			snap.Missing = append(snap.Missing, fmt.Sprintf("MEMORY DOCTOR: error (a %T, not text)", v))
		}
	}
	return nil
}

// reply is a pipelined command's reply when it arrived, else its error.
//
// go-redis ends a pipeline at the first transport error (a timeout, a
// reply over a limit) and stamps that error on every command without an
// error of its own: on those it never read, and on those it had read
// before. A command's value is set only from a reply read whole, and the
// stamp leaves it alone (setCmdsErr and pipelineReadCmds in go-redis'
// redis.go; TestSlowRepliesKeepWhatArrived holds the probe to it), so the
// value tells which replies arrived. An error reply of the command's own
// (NOPERM, ERR) is never overwritten, and stays its error.
func reply(cmd *redis.Cmd) (any, error) {
	err := cmd.Err()
	if err == nil || isServerError(err) {
		return cmd.Val(), err
	}
	switch v := cmd.Val().(type) {
	case []any:
		// A partly read array is nil; a complete one, even empty, is not.
		if v != nil {
			return v, nil
		}
	case string:
		// A partly read bulk string is ""; no reply read here is empty.
		if v != "" {
			return v, nil
		}
	case int64:
		return v, nil
	}
	return nil, err
}

// configPairs turns CONFIG GET's RESP2 reply (name, value, name, value...)
// into a map; a key the server does not know answers an empty array.
func configPairs(v any) map[string]string {
	list, _ := v.([]any)
	out := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, kok := list[i].(string)
		val, vok := list[i+1].(string)
		if kok && vok {
			out[k] = val
		}
	}
	return out
}

// notRedis reports whether err is a reply no Redis sends: over a limit,
// or one go-redis cannot parse.
func notRedis(err error) bool { return Classify(err) == handlers.ClassProtocol }

// connectKey carries a probe's *connectTime in the context of its INFO,
// where the client's OnConnect hook finds it.
type connectKey struct{}

// connectTime is when a connection a probe opened was ready: dialled,
// TLS done, and go-redis' HELLO (and AUTH) answered.
type connectTime struct {
	mu sync.Mutex
	at time.Time
}

func (t *connectTime) set(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.at = at
}

func (t *connectTime) get() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.at, !t.at.IsZero()
}

// onConnect is the probe clients' OnConnect hook: go-redis calls it, with
// the context of the command that needed the connection, once the
// connection is set up and before that command is sent.
func (p *Prober) onConnect(ctx context.Context, _ *redis.Conn) error {
	if t, ok := ctx.Value(connectKey{}).(*connectTime); ok {
		t.set(p.now())
	}
	return nil
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
	// Pipelines share the main pool: INFO and the pipeline after it then
	// use one connection, where go-redis' own pipeline pool would open a
	// second one (another connect and HELLO) for every probe's first
	// pipeline.
	opts.PipelinePoolSize = -1
	opts.OnConnect = p.onConnect
	opts.ConnMaxIdleTime = 5 * time.Minute
	// A probe's replies are about 10 KB, and the buffers stay with each
	// instance's pooled connection: go-redis' defaults (32 KiB, 128 KiB
	// for its pipeline pool, per connection) cost 256 KiB per instance,
	// 250 MB for a fleet of 1,000; 16 KiB + 4 KiB still cost 190 MB of
	// the bot's 315 MB at 10,000. A bulk reply (INFO, MEMORY DOCTOR) is
	// read straight into its own slice whatever the buffer, so only the
	// small replies go through it: the CONFIG GET and MEMORY STATS
	// replies, about 3 KB. The pipeline written is under 1 KB.
	opts.ReadBufferSize, opts.WriteBufferSize = 4<<10, 2<<10
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

// describe is the short form of a partial failure recorded in Missing. A
// part that did not arrive in time says so with the probe's timeout, the
// deadline it missed.
func (p *Prober) describe(err error) string {
	class := Classify(err)
	if class == handlers.ClassTimeout {
		return "timed out after " + p.timeout.String()
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 120 {
		msg = msg[:120] + "..."
	}
	return string(class) + " (" + msg + ")"
}
