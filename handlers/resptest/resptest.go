// Package resptest is a tiny in-process RESP2 server that answers what
// redisbot's probe sends, for benchmarks and sweep tests of fleets of a
// thousand instances where a thousand redis-server processes are too heavy.
// It is not Redis: it keeps no data, and its replies are canned from one INFO
// text per server. Behaviour that needs a real server (ACLs, CONFIG renamed,
// a busy script) is tested against redis-server through handlers/redistest.
//
// StartHostile starts a server that answers chosen commands the way no
// Redis would (a 9-exabyte bulk header, millions of nested arrays, an
// endless line...), for the tests of what redisbot does with a server it
// does not control: a real one cannot be made to.
//
// The probe's connection set-up sends HELLO 2 (go-redis always does, even for
// RESP2); the server rejects it as unknown, like Redis 5, and go-redis falls
// back to plain RESP2 (and AUTH when a password is set).
package resptest

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Behavior is how a server treats its clients.
type Behavior int

// Behaviours of a fake instance.
const (
	// Healthy answers at once.
	Healthy Behavior = iota
	// Slow answers each batch of pipelined commands after the delay.
	Slow
	// Blackhole accepts connections and reads, but never answers: the
	// probe's timeout is all the client gets.
	Blackhole
	// Refuse has a reserved port on which nothing listens: connections
	// are refused.
	Refuse
)

var behaviorNames = [...]string{"healthy", "slow", "blackhole", "refuse"}

func (b Behavior) String() string {
	if b < 0 || int(b) >= len(behaviorNames) {
		return "behavior(" + strconv.Itoa(int(b)) + ")"
	}
	return behaviorNames[b]
}

// DefaultInfo is the INFO body served when none is given: a real capture of
// Redis 7.0.15 with a fragmented allocator, the same bytes as
// handlers/testdata/info/redis-7.0.txt (a test checks they stay equal).
//
//go:embed redis-7.0.txt
var DefaultInfo string

// Server is one fake instance on a loopback port.
type Server struct {
	// Addr is host:port to give the probe.
	Addr     string
	Behavior Behavior

	delay time.Duration
	// replies are read for each command, so SetInfo changes what the
	// next INFO (or CONFIG GET, MEMORY STATS) of every connection gets.
	replies  atomic.Pointer[replies]
	hostile  *hostility // nil: no hostile answers
	ln       net.Listener
	reserved io.Closer // Refuse: the bound, non-listening socket
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Start starts a server with behaviour b on 127.0.0.1 and a free port. info
// is the INFO text to serve ("" for DefaultInfo); delay is how long a Slow
// server waits before answering.
func Start(b Behavior, info string, delay time.Duration) (*Server, error) {
	return start(b, info, delay, nil)
}

func start(b Behavior, info string, delay time.Duration, hostile *hostility) (*Server, error) {
	if info == "" {
		info = DefaultInfo
	}
	s := &Server{Behavior: b, delay: delay, hostile: hostile, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	switch b {
	case Refuse:
		addr, c, err := reservePort()
		if err != nil {
			return nil, fmt.Errorf("resptest: reserve a port: %w", err)
		}
		s.Addr, s.reserved = addr, c
		return s, nil
	case Healthy, Slow:
		s.replies.Store(buildReplies(info))
	case Blackhole:
	default:
		return nil, fmt.Errorf("resptest: unknown behavior %d", int(b))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("resptest: listen: %w", err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// StartMany starts n servers. mix gives server i's behaviour and delay (nil:
// all Healthy); info gives its INFO text (nil or "": DefaultInfo). On error
// the servers already started are closed. Each server holds one file
// descriptor, plus one per connection: see RaiseFileLimit.
func StartMany(n int, mix func(i int) (Behavior, time.Duration), info func(i int) string) ([]*Server, error) {
	servers := make([]*Server, 0, n)
	for i := range n {
		b, delay := Healthy, time.Duration(0)
		if mix != nil {
			b, delay = mix(i)
		}
		text := ""
		if info != nil {
			text = info(i)
		}
		s, err := Start(b, text, delay)
		if err != nil {
			CloseAll(servers)
			return nil, fmt.Errorf("resptest: server %d of %d: %w", i, n, err)
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// CloseAll closes every server.
func CloseAll(servers []*Server) {
	for _, s := range servers {
		_ = s.Close()
	}
}

// SetInfo makes a Healthy or Slow server answer with a new INFO text (and
// the CONFIG GET and MEMORY STATS replies that follow from it) from its
// next command on, on every connection: an instance whose memory state
// changes while the bot keeps probing it. Other servers do not answer
// INFO at all, and refuse it.
func (s *Server) SetInfo(info string) error {
	if s.Behavior != Healthy && s.Behavior != Slow {
		return fmt.Errorf("resptest: a %s server answers no INFO", s.Behavior)
	}
	s.replies.Store(buildReplies(info))
	return nil
}

// Close stops listening, drops every connection and waits for the server's
// goroutines to end. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	if s.reserved != nil {
		err = s.reserved.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off rather
			// than spin, as net/http does.
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
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
	if s.Behavior == Blackhole {
		var buf [512]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}
	sess := session{
		r:       bufio.NewReaderSize(c, 4096),
		w:       bufio.NewWriterSize(c, 4096),
		replies: &s.replies,
		hostile: s.hostile,
	}
	var timer *time.Timer
	batchStart := true
	for {
		args, err := sess.readCommand()
		if err != nil {
			if errors.Is(err, errProtocol) {
				_, _ = sess.w.WriteString("-ERR Protocol error: " + err.Error() + "\r\n")
				_ = sess.w.Flush()
			}
			return
		}
		if batchStart && s.Behavior == Slow && s.delay > 0 {
			if timer == nil {
				timer = time.NewTimer(s.delay)
			} else {
				timer.Reset(s.delay)
			}
			select {
			case <-timer.C:
			case <-s.done:
				return
			}
		}
		quit := sess.dispatch(args)
		// Answer a pipeline in one write: flush only when nothing more
		// has arrived.
		batchStart = sess.r.Buffered() == 0
		if batchStart || quit {
			if err := sess.w.Flush(); err != nil || quit {
				return
			}
		}
	}
}

var errProtocol = errors.New("invalid multibulk")

// maxArg bounds one argument; the probe's are a few bytes.
const maxArg = 1 << 20

// session is one connection's parser state. Arguments live in scratch,
// reused from command to command, so a steady client causes no allocation.
type session struct {
	r       *bufio.Reader
	w       *bufio.Writer
	replies *atomic.Pointer[replies]
	hostile *hostility
	scratch []byte
	offs    [][2]int
	args    [][]byte
}

// readCommand reads one RESP array of bulk strings, or one inline command.
func (s *session) readCommand() ([][]byte, error) {
	s.scratch, s.offs, s.args = s.scratch[:0], s.offs[:0], s.args[:0]
	line, err := s.readLine()
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return s.args, nil
	}
	if line[0] != '*' {
		// Inline command, as typed into nc or telnet.
		for _, f := range bytes.Fields(line) {
			s.args = append(s.args, append([]byte(nil), f...))
		}
		return s.args, nil
	}
	n, ok := parseLen(line[1:])
	if !ok || n > 1024 {
		return nil, errProtocol
	}
	for range n {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			return nil, errProtocol
		}
		size, ok := parseLen(line[1:])
		if !ok || size > maxArg {
			return nil, errProtocol
		}
		start := len(s.scratch)
		s.scratch = append(s.scratch, make([]byte, size+2)...)
		if _, err := io.ReadFull(s.r, s.scratch[start:]); err != nil {
			return nil, err
		}
		s.scratch = s.scratch[:start+size] // drop \r\n
		s.offs = append(s.offs, [2]int{start, start + size})
	}
	for _, o := range s.offs {
		s.args = append(s.args, s.scratch[o[0]:o[1]])
	}
	return s.args, nil
}

// readLine returns a line without its \r\n; the slice is valid until the
// next read.
func (s *session) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errProtocol
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

// dispatch writes the reply to one command and reports whether the client
// asked to quit.
func (s *session) dispatch(args [][]byte) (quit bool) {
	if len(args) == 0 {
		return false
	}
	if s.hostile != nil && s.hostile.matches(args) {
		return s.hostile.answer(s.w)
	}
	w, r := s.w, s.replies.Load()
	name := args[0]
	switch {
	case is(name, "PING"):
		if len(args) > 1 {
			writeBulk(w, args[1])
		} else {
			_, _ = w.WriteString("+PONG\r\n")
		}
	case is(name, "INFO"):
		_, _ = w.Write(r.info)
	case is(name, "CONFIG") && len(args) == 3 && is(args[1], "GET"):
		_, _ = w.Write(r.config(args[2]))
	case is(name, "MEMORY") && len(args) == 2 && is(args[1], "STATS"):
		_, _ = w.Write(r.stats)
	case is(name, "MEMORY") && len(args) == 2 && is(args[1], "DOCTOR"):
		_, _ = w.Write(r.doctor)
	case is(name, "CLIENT") && len(args) >= 2 && (is(args[1], "SETNAME") || is(args[1], "SETINFO")):
		_, _ = w.WriteString("+OK\r\n")
	case is(name, "AUTH"), is(name, "SELECT") && len(args) == 2 && is(args[1], "0"):
		_, _ = w.WriteString("+OK\r\n")
	case is(name, "QUIT"):
		_, _ = w.WriteString("+OK\r\n")
		return true
	default:
		// HELLO lands here too: a RESP2-only server, as go-redis expects
		// from Redis 5 and proxies.
		_, _ = w.WriteString("-ERR unknown command '")
		_, _ = w.Write(sanitize(name))
		_, _ = w.WriteString("'\r\n")
	}
	return false
}

// is reports whether b is word, ignoring ASCII case; word is upper case.
func is(b []byte, word string) bool {
	if len(b) != len(word) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

// parseLen parses a non-negative RESP length without allocating.
func parseLen(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// sanitize keeps an echoed command name on one line.
func sanitize(b []byte) []byte {
	if len(b) > 64 {
		b = b[:64]
	}
	if bytes.ContainsAny(b, "\r\n") {
		return []byte("?")
	}
	return b
}

func writeBulk(w *bufio.Writer, b []byte) {
	_, _ = w.WriteString("$")
	_, _ = w.WriteString(strconv.Itoa(len(b)))
	_, _ = w.WriteString("\r\n")
	_, _ = w.Write(b)
	_, _ = w.WriteString("\r\n")
}
