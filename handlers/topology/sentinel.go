package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
)

// MasterName and ReplicaName are the names of the members of the Sentinel
// entry called entry: "<entry>.master" follows whichever server is master
// when Expand runs; a replica is "<entry>.replica-<host>-<port>".
func MasterName(entry string) string { return entry + ".master" }

// ReplicaName: see MasterName.
func ReplicaName(entry, host string, port int) string {
	return entry + ".replica-" + sanitize(host+"-"+strconv.Itoa(port))
}

// expandSentinel asks the entry's sentinels, in order, for the master's
// address and its replicas; the first sentinel that answers both wins.
func expandSentinel(ctx context.Context, entry handlers.Instance, timeout time.Duration) ([]handlers.Instance, error) {
	s := entry.Sentinel
	if s.Master == "" || len(s.Addrs) == 0 {
		return nil, errors.New("the sentinel section needs a master name and at least one address")
	}
	failed := &askedAll{what: "sentinel"}
	for _, addr := range s.Addrs {
		master, replicas, err := askSentinel(ctx, entry, addr, timeout)
		if err == nil {
			return sentinelMembers(entry, master, replicas), nil
		}
		failed.addrs, failed.errs = append(failed.addrs, addr), append(failed.errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, failed
}

func sentinelMembers(entry handlers.Instance, master member, replicas []member) []handlers.Instance {
	out := []handlers.Instance{derive(entry, MasterName(entry.Name), master.addr(), SentinelTag(entry.Name), TagPrimary)}
	var rs []handlers.Instance
	seen := map[string]bool{master.addr(): true}
	for _, r := range replicas {
		if seen[r.addr()] {
			continue
		}
		seen[r.addr()] = true
		rs = append(rs, derive(entry, ReplicaName(entry.Name, r.host, r.port), r.addr(), SentinelTag(entry.Name), TagReplica))
	}
	slices.SortFunc(rs, byName)
	return append(out, rs...)
}

// askSentinel asks one sentinel SENTINEL GET-MASTER-ADDR-BY-NAME and
// SENTINEL REPLICAS (SLAVES before Redis 5.0).
func askSentinel(ctx context.Context, entry handlers.Instance, addr string, timeout time.Duration) (member, []member, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := DialSentinel(entry, addr, timeout)
	if err != nil {
		return member{}, nil, err
	}
	defer c.Close()
	master, err := MasterAddr(ctx, c, entry.Sentinel.Master)
	if err != nil {
		return member{}, nil, err
	}
	mhost, mport, _ := net.SplitHostPort(master)
	mp, _ := strconv.Atoi(mport)

	list, err := c.Replicas(ctx, entry.Sentinel.Master).Result()
	if err != nil && isServerError(err) {
		cmd := redis.NewMapStringStringSliceCmd(ctx, "sentinel", "slaves", entry.Sentinel.Master)
		_ = c.Process(ctx, cmd)
		list, err = cmd.Result()
	}
	if err != nil {
		return member{}, nil, fmt.Errorf("SENTINEL REPLICAS: %w", err)
	}
	var replicas []member
	for _, r := range list {
		port, err := strconv.Atoi(r["port"])
		if r["ip"] == "" || err != nil || port <= 0 || port > 65535 {
			continue
		}
		replicas = append(replicas, member{host: r["ip"], port: port})
	}
	return member{host: mhost, port: mp, primary: true}, replicas, nil
}

// MasterAddr asks a sentinel for the current address of master, as
// host:port.
func MasterAddr(ctx context.Context, c *redis.SentinelClient, master string) (string, error) {
	hp, err := c.GetMasterAddrByName(ctx, master).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME: no master called %q", master)
	case err != nil:
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME: %w", err)
	case len(hp) != 2:
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME: %d values, want host and port", len(hp))
	}
	if port, err := strconv.Atoi(hp[1]); hp[0] == "" || err != nil || port <= 0 || port > 65535 {
		return "", fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME: invalid address %q %q", hp[0], hp[1])
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}
