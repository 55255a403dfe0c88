// Package redistest starts real redis-server processes on free loopback
// ports for integration tests and the demo, and loads them into the memory
// situations redisbot diagnoses (fragmentation, post-peak, OOM). Redis is
// never mocked where a real server can answer.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one running redis-server.
type Server struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// ErrNoServer means redis-server is not installed; `make test` installs it.
var ErrNoServer = errors.New("redis-server not found in PATH (run `make test`, which installs it with apt-get)")

// Start launches redis-server in dir with extra command-line directives
// ("--maxmemory", "10mb", ...) on a free loopback port and waits until it
// answers PING. Persistence is off unless args turn it on.
func Start(ctx context.Context, dir string, args ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoServer
	}
	// A port picked this way can be taken by someone else before redis binds
	// it; retry a few times rather than fail the test.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, bin, dir, port, args)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(ctx context.Context, bin, dir string, port int, args []string) (*Server, error) {
	logPath := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	argv := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--dbfilename", "dump-" + strconv.Itoa(port) + ".rdb",
		"--save", "",
		"--appendonly", "no",
		"--logfile", logPath,
		"--daemonize", "no",
	}
	argv = append(argv, args...)
	cmd := exec.Command(bin, argv...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, Protocol: 2})
		err := c.Ping(ctx).Err()
		_ = c.Close()
		// Any reply, NOAUTH included, means the server is up.
		var reply redis.Error
		if err == nil || errors.As(err, &reply) {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server exited at start: %s", s.LogTail())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("redis-server on %s not ready: %v: %s", s.Addr, err, s.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}

// Pid returns the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// LogTail returns the last lines of the server log, for failure messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.log)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Client returns a go-redis client for the server (RESP2, like redisbot).
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2})
}

// StartT starts a server for a test and stops it when the test ends. A
// missing redis-server fails the test instead of skipping it: CI must run
// the integration tests, not pass without them.
func StartT(t testing.TB, args ...string) *Server {
	t.Helper()
	s, err := Start(context.Background(), t.TempDir(), args...)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// ACLRules returns the rules of every "ACL SETUSER <user>" line in a
// fenced code block of the Markdown file at path (docs/redis-acl.md), in
// order, with each ">password" rule replaced by ">"+password: tests apply
// what the page tells operators to run, never a copy of it.
func ACLRules(t testing.TB, path, user, password string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]string
	fenced := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		f := strings.Fields(line)
		if !fenced || len(f) < 4 || f[0] != "ACL" || f[1] != "SETUSER" || f[2] != user {
			continue
		}
		rules := f[3:]
		for i, r := range rules {
			if strings.HasPrefix(r, ">") {
				rules[i] = ">" + password
			}
		}
		lines = append(lines, rules)
	}
	if len(lines) == 0 {
		t.Fatalf("%s has no ACL SETUSER %s line in a code block", path, user)
	}
	return lines
}
