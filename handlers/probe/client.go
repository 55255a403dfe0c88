package probe

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/resplimit"
)

// ClientOptions are how every part of redisbot reaches an instance (probes,
// topology, key scans, remediations, check-config), so they all behave the
// same on a slow or dead server:
//   - RESP2 (Protocol 2): every server and proxy supported speaks it.
//     It does not spare the HELLO: go-redis v9 opens every connection
//     with HELLO in a round trip of its own whatever the protocol
//     (initConn in its redis.go), and no option turns that off. With a
//     password HELLO carries the AUTH, so it costs no more than AUTH
//     would; a server that does not know HELLO (Redis 5, some proxies)
//     answers ERR and gets AUTH in its own round trip instead. A new
//     connection thus costs the connect (and TLS handshake), HELLO, and
//     SELECT when DB is not 0; a pooled one pays them once;
//   - no command retries and one dial retry: a dead server costs one
//     timeout, not three;
//   - every step bounded by timeout, and by the context's deadline;
//   - no CLIENT SETINFO: a round trip per connection, unknown before 7.2;
//   - one connection: callers that need more raise PoolSize;
//   - every reply checked against resplimit's default limits before
//     go-redis reads it: the server is not ours, and go-redis trusts the
//     lengths it declares (a one-line reply could crash or exhaust the
//     bot). A reply over a limit fails with an error Classify calls
//     protocol;
//   - the TLS handshake bounded by the timeout and the context, and a
//     handshake that fails after the connect classified tls, not timeout.
//
// The credentials are the instance's (diagnosis); callers swap in the
// remediation user. When the TLS files cannot be read the options come back
// without TLS, together with the error, for callers that would rather let
// the connection fail and report it.
func ClientOptions(inst handlers.Instance, timeout time.Duration) (*redis.Options, error) {
	silenceClientLog.Do(func() { redis.SetLogger(discardLogger{}) })
	opts := &redis.Options{
		Addr:                  inst.Addr,
		Username:              inst.Username,
		Password:              inst.Password,
		DB:                    inst.DB,
		Protocol:              2,
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		PoolSize:              1,
		PoolTimeout:           timeout,
		DisableIdentity:       true,
	}
	var err error
	if inst.TLS != nil {
		// TLSConfig stays set for go-redis' own checks of it; the dialer
		// does the handshake.
		opts.TLSConfig, err = TLSConfig(inst.TLS)
	}
	opts.Dialer = resplimit.Dialer(timeout, opts.TLSConfig, resplimit.Limits{})
	return opts, err
}

// go-redis logs dial failures through a process-wide logger. redisbot
// reports every failure itself, classified, so the library's own lines would
// only repeat them on the CLI's stderr and in the bot's logs.
var silenceClientLog sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
