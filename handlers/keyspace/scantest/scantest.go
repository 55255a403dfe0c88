// Package scantest is an in-process RESP2 server whose SCAN misbehaves, for
// the tests of handlers/keyspace and of the keys verb. A real redis-server
// cannot be made to answer SCAN wrongly, and a proxy or a managed service
// that does is what these tests guard against. Everything else it answers
// plausibly and from nothing: INFO (with the key count asked for), TYPE,
// MEMORY USAGE and PTTL of any key (every key is a string), DBSIZE; CONFIG GET knows no
// setting and MEMORY STATS and DOCTOR are unknown, as on some managed
// services, which the probe and the scanner take in their stride.
package scantest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mode is how SCAN misbehaves.
type Mode int

const (
	// Cycle answers cursor 0 with cursor 5, 5 with 7 and 7 with 5 again:
	// the cursor never comes back to 0.
	Cycle Mode = iota
	// SameKeys counts the cursor up for ever and returns the same page of
	// keys every time.
	SameKeys
	// Endless counts the cursor up for ever and returns new keys every
	// time: with Delay, a scan that only a deadline ends.
	Endless
)

// Options configure a Server.
type Options struct {
	Mode Mode
	// Keys is the key count INFO keyspace and DBSIZE report (db0).
	Keys int64
	// Page is how many keys each SCAN returns (default 10).
	Page int
	// Delay is how long each SCAN takes to answer.
	Delay time.Duration
}

// Server is a running fake.
type Server struct {
	// Addr is host:port on loopback.
	Addr string

	opts  Options
	ln    net.Listener
	done  chan struct{}
	wg    sync.WaitGroup
	scans atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Start starts a server on a free loopback port; the test's cleanup closes
// it.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Page <= 0 {
		o.Page = 10
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("scantest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), opts: o, ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Scans counts the SCAN commands answered so far.
func (s *Server) Scans() int64 { return s.scans.Load() }

// Close stops the server and drops its connections.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		args, err := readCommand(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				writeError(w, "ERR Protocol error: "+err.Error())
				_ = w.Flush()
			}
			return
		}
		if !s.answer(w, args) {
			_ = w.Flush()
			return
		}
		// Answer a pipeline in one write, once every command read is done.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// answer writes the reply to one command; false closes the connection.
func (s *Server) answer(w *bufio.Writer, args []string) bool {
	if len(args) == 0 {
		writeError(w, "ERR empty command")
		return true
	}
	cmd := strings.ToUpper(args[0])
	if len(args) > 1 && (cmd == "MEMORY" || cmd == "CONFIG") {
		cmd += " " + strings.ToUpper(args[1])
	}
	switch cmd {
	case "PING":
		w.WriteString("+PONG\r\n")
	case "AUTH", "SELECT":
		w.WriteString("+OK\r\n")
	case "QUIT":
		w.WriteString("+OK\r\n")
		return false
	case "INFO":
		writeBulk(w, s.info())
	case "DBSIZE":
		writeInt(w, s.opts.Keys)
	case "CONFIG GET":
		w.WriteString("*0\r\n")
	case "TYPE":
		w.WriteString("+string\r\n")
	case "MEMORY USAGE":
		writeInt(w, 72)
	case "PTTL":
		writeInt(w, -1)
	case "SCAN":
		if len(args) < 2 {
			writeError(w, "ERR wrong number of arguments for 'scan' command")
			return true
		}
		cursor, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil {
			writeError(w, "ERR invalid cursor")
			return true
		}
		if s.opts.Delay > 0 {
			select {
			case <-time.After(s.opts.Delay):
			case <-s.done:
				return false
			}
		}
		s.scans.Add(1)
		next, keys := s.page(cursor)
		fmt.Fprintf(w, "*2\r\n")
		writeBulk(w, strconv.FormatUint(next, 10))
		fmt.Fprintf(w, "*%d\r\n", len(keys))
		for _, k := range keys {
			writeBulk(w, k)
		}
	default:
		// HELLO among them: go-redis then speaks plain RESP2.
		writeError(w, fmt.Sprintf("ERR unknown command '%s'", strings.ToLower(cmd)))
	}
	return true
}

// page is SCAN's answer to cursor: the next cursor, never 0, and the keys.
func (s *Server) page(cursor uint64) (uint64, []string) {
	keys := make([]string, s.opts.Page)
	first := uint64(0)
	var next uint64
	switch s.opts.Mode {
	case Cycle:
		switch cursor {
		case 0:
			next = 5
		case 5:
			next, first = 7, 1
		default:
			next, first = 5, 2
		}
	case SameKeys:
		next = cursor + 1
	default:
		next, first = cursor+1, cursor
	}
	for i := range keys {
		keys[i] = "k:" + strconv.FormatUint(first*uint64(s.opts.Page)+uint64(i), 10)
	}
	return next, keys
}

func (s *Server) info() string {
	return strings.Join([]string{
		"# Server", "redis_version:7.0.15", "redis_mode:standalone", "run_id:5c0a1f0e2b3d4c5e6f708192a3b4c5d6e7f80910",
		"uptime_in_seconds:86400", "tcp_port:6379",
		"# Clients", "connected_clients:3",
		"# Memory", "used_memory:2097152", "used_memory_rss:2306867", "used_memory_peak:2097152", "maxmemory:0",
		"maxmemory_policy:noeviction", "mem_fragmentation_ratio:1.10", "mem_allocator:jemalloc-5.2.1",
		"# Persistence", "loading:0", "rdb_bgsave_in_progress:0", "aof_enabled:0",
		"# Stats", "evicted_keys:0", "instantaneous_ops_per_sec:10",
		"# Replication", "role:master", "connected_slaves:0",
		"# Keyspace", fmt.Sprintf("db0:keys=%d,expires=0,avg_ttl=0", s.opts.Keys),
	}, "\r\n") + "\r\n"
}

// Bounds on a command, so a broken client cannot make the fake allocate
// without limit.
const (
	maxArgs   = 1024
	maxArgLen = 1 << 20
)

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	n, err := readLength(r, '*', maxArgs)
	if err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		size, err := readLength(r, '$', maxArgLen)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

func readLength(r *bufio.Reader, prefix byte, limit int) (int, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if len(line) < 2 || line[0] != prefix {
		return 0, fmt.Errorf("expected '%c', got %q", prefix, line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 || n > limit {
		return 0, fmt.Errorf("bad length %q", line[1:])
	}
	return n, nil
}

func writeBulk(w *bufio.Writer, s string) {
	fmt.Fprintf(w, "$%d\r\n%s\r\n", len(s), s)
}

func writeInt(w *bufio.Writer, n int64) {
	fmt.Fprintf(w, ":%d\r\n", n)
}

func writeError(w *bufio.Writer, msg string) {
	w.WriteString("-" + msg + "\r\n")
}
