package topology

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
)

// dial returns a client for addr with in's credentials and TLS settings,
// configured like every other client (probe.ClientOptions).
func dial(in handlers.Instance, addr string, timeout time.Duration) (*redis.Client, error) {
	in.Addr = addr
	opts, err := probe.ClientOptions(in, timeout)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opts), nil
}

// DialSentinel returns a client for the sentinel at addr. Sentinels are
// reached with the entry's TLS settings but without its credentials: those
// belong to the data nodes, and a sentinel has its own.
func DialSentinel(entry handlers.Instance, addr string, timeout time.Duration) (*redis.SentinelClient, error) {
	entry.Addr, entry.Username, entry.Password = addr, "", ""
	entry.DB = 0 // a sentinel has no databases to SELECT
	opts, err := probe.ClientOptions(entry, timeout)
	if err != nil {
		return nil, err
	}
	return redis.NewSentinelClient(opts), nil
}

func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
