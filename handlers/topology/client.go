package topology

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
)

// dial returns a client for addr with in's credentials and TLS settings,
// configured like the prober's: RESP2, no retries, every step bounded by
// timeout.
func dial(in handlers.Instance, addr string, timeout time.Duration) (*redis.Client, error) {
	opts := options(in, addr, timeout)
	opts.Username, opts.Password = in.Username, in.Password
	if in.TLS != nil {
		cfg, err := probe.TLSConfig(in.TLS)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = cfg
	}
	return redis.NewClient(opts), nil
}

// DialSentinel returns a client for the sentinel at addr. Sentinels are
// reached with the entry's TLS settings but without its credentials: those
// belong to the data nodes, and a sentinel has its own.
func DialSentinel(entry handlers.Instance, addr string, timeout time.Duration) (*redis.SentinelClient, error) {
	opts := options(entry, addr, timeout)
	opts.DB = 0 // a sentinel has no databases to SELECT
	if entry.TLS != nil {
		cfg, err := probe.TLSConfig(entry.TLS)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = cfg
	}
	return redis.NewSentinelClient(opts), nil
}

func options(in handlers.Instance, addr string, timeout time.Duration) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		DB:                    in.DB,
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
}

func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
