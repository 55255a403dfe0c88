// Package topotest builds real Redis Clusters and Sentinels on free
// loopback ports for integration tests, on top of redistest: a cluster
// from bare cluster-enabled servers (ADDSLOTSRANGE, MEET, REPLICATE), a
// Sentinel from redis-server --sentinel, a server that a supervisor starts
// again when it exits, and a shard whose memory is fragmented. Every
// process is stopped when the test ends.
package topotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers/redistest"
)

// Timeout bounds each wait for a cluster or a sentinel to settle.
const Timeout = 20 * time.Second

// Cluster is a running Redis Cluster.
type Cluster struct {
	Primaries []*redistest.Server
	// Replicas[i] follows Primaries[i % len(Primaries)].
	Replicas []*redistest.Server
	// IDs maps a server's address to its node id.
	IDs map[string]string
}

// StartClusterT starts primaries cluster-enabled servers and replicas
// more, and forms them into a cluster with FormClusterT.
func StartClusterT(t testing.TB, primaries, replicas int) *Cluster {
	t.Helper()
	cl := &Cluster{}
	for range primaries {
		cl.Primaries = append(cl.Primaries, redistest.StartT(t, NodeArgs...))
	}
	for range replicas {
		cl.Replicas = append(cl.Replicas, redistest.StartT(t, NodeArgs...))
	}
	addrs := func(ss []*redistest.Server) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Addr)
		}
		return out
	}
	cl.IDs = FormClusterT(t, addrs(cl.Primaries), addrs(cl.Replicas))
	return cl
}

// NodeArgs are the redis-server arguments of a cluster node that forms and
// syncs quickly.
var NodeArgs = []string{"--cluster-enabled", "yes", "--cluster-node-timeout", "5000", "--repl-diskless-sync-delay", "0"}

// FormClusterT forms a cluster of fresh cluster-enabled servers: the 16384
// hash slots split between the primaries in ranges, replicas[i] following
// primaries[i % len(primaries)]. It waits until every node reports
// cluster_state:ok and knows every other node, and every replica is in
// sync, and returns each server's node id by address.
func FormClusterT(t testing.TB, primaries, replicas []string) map[string]string {
	t.Helper()
	if len(primaries) < 1 {
		t.Fatal("topotest: a cluster needs a primary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ids := map[string]string{}
	all := append(append([]string(nil), primaries...), replicas...)
	for _, a := range all {
		id, err := do(ctx, a, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatalf("topotest: CLUSTER MYID on %s: %v", a, err)
		}
		ids[a] = id
	}
	for i, a := range primaries {
		lo, hi := i*16384/len(primaries), (i+1)*16384/len(primaries)-1
		if err := do(ctx, a, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("topotest: CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, a, err)
		}
	}
	for _, a := range all[1:] {
		host, port, _ := net.SplitHostPort(a)
		if err := do(ctx, all[0], "CLUSTER", "MEET", host, port).Err(); err != nil {
			t.Fatalf("topotest: CLUSTER MEET %s: %v", a, err)
		}
	}
	// A replica can only follow a primary it knows.
	wait(ctx, t, "every node to know the others", func() error {
		for _, a := range all {
			text, err := do(ctx, a, "CLUSTER", "NODES").Text()
			if err != nil {
				return err
			}
			if n := strings.Count(strings.TrimSpace(text), "\n") + 1; n != len(all) || strings.Contains(text, "handshake") {
				return fmt.Errorf("%s knows %d of %d nodes", a, n, len(all))
			}
		}
		return nil
	})
	for i, a := range replicas {
		if err := do(ctx, a, "CLUSTER", "REPLICATE", ids[primaries[i%len(primaries)]]).Err(); err != nil {
			t.Fatalf("topotest: CLUSTER REPLICATE on %s: %v", a, err)
		}
	}
	wait(ctx, t, "cluster_state:ok and replicas in sync", func() error {
		for _, a := range all {
			info, err := do(ctx, a, "CLUSTER", "INFO").Text()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("%s: cluster_state not ok", a)
			}
			// Every node must see the replicas as replicas.
			nodes, err := do(ctx, a, "CLUSTER", "NODES").Text()
			if err != nil {
				return err
			}
			if n := strings.Count(nodes, "slave"); n != len(replicas) {
				return fmt.Errorf("%s sees %d replicas of %d", a, n, len(replicas))
			}
		}
		for _, a := range replicas {
			if err := replicaInSync(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	return ids
}

func wait(ctx context.Context, t testing.TB, what string, ok func() error) {
	t.Helper()
	if err := Wait(ctx, ok); err != nil {
		t.Fatalf("topotest: waiting for %s: %v", what, err)
	}
}

// Wait calls ok every 50ms until it returns nil, and returns its last
// error when ctx ends.
func Wait(ctx context.Context, ok func() error) error {
	for {
		err := ok()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Role returns the first element of ROLE: master, slave or sentinel.
func Role(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", errors.New("empty ROLE reply")
	}
	role, _ := v[0].(string)
	return role, nil
}

// StartPrimaryT starts a server that replicas can sync from at once:
// Redis 7 otherwise waits repl-diskless-sync-delay (5s) for more replicas.
func StartPrimaryT(t testing.TB, args ...string) *redistest.Server {
	t.Helper()
	return redistest.StartT(t, append([]string{"--repl-diskless-sync-delay", "0"}, args...)...)
}

// StartReplicaT starts a plain replica of primary and waits until it is in
// sync.
func StartReplicaT(t testing.TB, primary *redistest.Server) *redistest.Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(primary.Addr)
	r := redistest.StartT(t, "--replicaof", host+" "+port)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := Wait(ctx, func() error { return replicaInSync(ctx, r.Addr) }); err != nil {
		t.Fatalf("topotest: replica %s of %s: %v", r.Addr, primary.Addr, err)
	}
	return r
}

func replicaInSync(ctx context.Context, addr string) error {
	info, err := do(ctx, addr, "INFO", "replication").Text()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "master_link_status:up") || strings.Contains(info, "master_sync_in_progress:1") {
		return fmt.Errorf("replica %s not in sync", addr)
	}
	return nil
}

func do(ctx context.Context, addr string, args ...any) *redis.Cmd {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	return c.Do(ctx, args...)
}

// Sentinel is a running redis-server --sentinel.
type Sentinel struct {
	Addr string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartSentinelT starts a sentinel that monitors the master at masterAddr
// under the name master, with a quorum of 1, and waits until it answers
// PING. It is stopped when the test ends.
func StartSentinelT(t testing.TB, master, masterAddr string) *Sentinel {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("topotest: %v", redistest.ErrNoServer)
	}
	host, port, err := net.SplitHostPort(masterAddr)
	if err != nil {
		t.Fatalf("topotest: %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	// A free port can be taken before the sentinel binds it: retry.
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("topotest: free port: %v", err)
		}
		sport := l.Addr().(*net.TCPAddr).Port
		l.Close()
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(sport)+".conf")
		logPath := filepath.Join(dir, "sentinel-"+strconv.Itoa(sport)+".log")
		text := strings.Join([]string{
			"port " + strconv.Itoa(sport),
			"bind 127.0.0.1",
			"dir " + dir,
			"logfile " + logPath,
			"daemonize no",
			fmt.Sprintf("sentinel monitor %s %s %s 1", master, host, port),
			"sentinel down-after-milliseconds " + master + " 5000",
			"sentinel failover-timeout " + master + " 20000",
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("topotest: %v", err)
		}
		s := &Sentinel{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sport)), log: logPath, done: make(chan struct{})}
		s.cmd = exec.Command(bin, conf, "--sentinel")
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("topotest: start sentinel: %v", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if lastErr = s.ready(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
		s.Stop()
	}
	t.Fatalf("topotest: sentinel: %v", lastErr)
	return nil
}

func (s *Sentinel) ready() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DisableIdentity: true})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("sentinel exited at start: %s", s.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sentinel on %s not ready: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the sentinel and waits for it to exit.
func (s *Sentinel) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}

// LogTail returns the last lines of the sentinel's log, for failure
// messages.
func (s *Sentinel) LogTail() string { return logTail(s.log) }

// WaitReplicas waits until the sentinel lists n replicas of master that it
// could promote: connected, not down, with their link to the master up.
// SENTINEL FAILOVER answers NOGOODSLAVE before that.
func (s *Sentinel) WaitReplicas(t testing.TB, master string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	err := Wait(ctx, func() error {
		rs, err := c.Replicas(ctx, master).Result()
		if err != nil {
			return err
		}
		good := 0
		for _, r := range rs {
			if r["master-link-status"] == "ok" && !strings.Contains(r["flags"], "down") && !strings.Contains(r["flags"], "disconnected") {
				good++
			}
		}
		if good < n {
			return fmt.Errorf("%d of %d replicas ready", good, n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("topotest: sentinel replicas of %s: %v\n%s", master, err, s.LogTail())
	}
}

// Supervised is a redis-server that is started again, on the same port and
// in the same directory, whenever it exits, as systemd or a container
// runtime would bring it back: SHUTDOWN SAVE on it is a restart
// (restart_method shutdown). A cluster node keeps its nodes.conf in Dir
// and rejoins its cluster.
type Supervised struct {
	Addr string
	Dir  string

	log  string
	done chan struct{}

	mu       sync.Mutex
	cmd      *exec.Cmd
	starts   int
	stopping bool
}

// StartSupervisedT starts a supervised redis-server with the extra
// arguments, waits until it answers PING, and stops it for good when the
// test ends. Persistence is off unless args turn it on; SHUTDOWN SAVE
// still writes the RDB it reloads.
func StartSupervisedT(t testing.TB, args ...string) *Supervised {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("topotest: %v", redistest.ErrNoServer)
	}
	dir := t.TempDir()
	var lastErr error
	// A free port can be taken before the server binds it: retry.
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("topotest: free port: %v", err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		s := &Supervised{Addr: net.JoinHostPort("127.0.0.1", port), Dir: dir, log: filepath.Join(dir, "redis-"+port+".log"), done: make(chan struct{})}
		argv := append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--dbfilename", "dump-" + port + ".rdb",
			"--save", "", "--appendonly", "no", "--logfile", s.log, "--daemonize", "no"}, args...)
		go s.supervise(bin, argv)
		if lastErr = s.ready(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
		s.Stop()
	}
	t.Fatalf("topotest: supervised redis-server: %v", lastErr)
	return nil
}

// supervise runs the server until Stop, starting it again 50ms after each
// exit. A server that exits within a second of its start twice in a row
// (a port taken, a bad argument) is given up.
func (s *Supervised) supervise(bin string, argv []string) {
	defer close(s.done)
	quick := 0
	for {
		cmd := exec.Command(bin, argv...)
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		err := cmd.Start()
		s.cmd = cmd
		s.starts++
		s.mu.Unlock()
		if err != nil {
			return
		}
		began := time.Now()
		_ = cmd.Wait()
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(began) < time.Second {
			if quick++; quick >= 2 {
				return
			}
		} else {
			quick = 0
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Supervised) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Wait(ctx, func() error {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr, s.LogTail())
		default:
		}
		_, err := Role(ctx, s.Addr)
		return err
	})
}

// Starts is how many times the supervisor has started the server: 1
// until it is first restarted.
func (s *Supervised) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// Stop stops the supervisor and kills the server.
func (s *Supervised) Stop() {
	s.mu.Lock()
	s.stopping = true
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}

// LogTail returns the last lines of the server's log, for failure
// messages.
func (s *Supervised) LogTail() string { return logTail(s.log) }

// Client returns a go-redis client for the server (RESP2, like redisbot)
// that never retries a command: a retried SHUTDOWN would stop the server
// its supervisor just brought back.
func (s *Supervised) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, MaxRetries: -1})
}

// FragmentT fragments the memory of the primary c is connected to, and of
// its replicas, which apply the same writes: n strings written with
// SETRANGE key 150 "a", then two thirds of them deleted at random (a fixed
// seed, so every run frees the same keys), which leaves most pages partly
// used. With n = 300,000 on Redis 7.0 mem_fragmentation_ratio ends near 2
// with about 50 MiB beyond the data. All keys must hash to slots c's
// server holds: give it all of them (a one-shard cluster).
func FragmentT(t testing.TB, c *redis.Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	const batch = 10000
	run := func(add func(redis.Pipeliner, int)) {
		for start := 0; start < n; start += batch {
			p := c.Pipeline()
			for i := start; i < min(start+batch, n); i++ {
				add(p, i)
			}
			if _, err := p.Exec(ctx); err != nil {
				t.Fatalf("topotest: fragment: %v", err)
			}
		}
	}
	run(func(p redis.Pipeliner, i int) { p.SetRange(ctx, "frag:"+strconv.Itoa(i), 150, "a") })
	r := rand.New(rand.NewPCG(1, 2))
	run(func(p redis.Pipeliner, i int) {
		if r.IntN(3) != 0 {
			p.Del(ctx, "frag:"+strconv.Itoa(i))
		}
	})
}

// WaitCaughtUpT waits until every replica of the primary at addr has
// applied all of its writes (INFO replication offsets equal).
func WaitCaughtUpT(t testing.TB, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	err := Wait(ctx, func() error {
		text, err := do(ctx, addr, "INFO", "replication").Text()
		if err != nil {
			return err
		}
		var offset string
		var replicas []string
		for _, line := range strings.Split(text, "\r\n") {
			if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				offset = v
			}
			if strings.HasPrefix(line, "slave") && strings.Contains(line, ":ip=") {
				replicas = append(replicas, line)
			}
		}
		if len(replicas) == 0 {
			return errors.New("no replica connected")
		}
		for _, r := range replicas {
			if !strings.Contains(r, ",offset="+offset+",") {
				return fmt.Errorf("replica behind offset %s: %s", offset, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("topotest: replicas of %s: %v", addr, err)
	}
}

// logTail is the last 15 lines of a server's log file.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
