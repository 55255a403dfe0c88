package redistest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Recorder is a TCP proxy in front of a real server that records every
// command its clients send, with the user each connection logged in as.
// MONITOR cannot do this: it hides administrative commands (CONFIG,
// SHUTDOWN, FAILOVER...) and connection set-up (HELLO, AUTH). Tests of a
// package that sends Redis commands run it against a Recorder and compare
// what was sent with what the package declares.
type Recorder struct {
	// Addr is the proxy's address, to give the client under test.
	Addr    string
	backend string
	ln      net.Listener

	mu    sync.Mutex
	sent  []Sent
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Sent is one command as a client sent it.
type Sent struct {
	// User is who the connection logged in as (HELLO ... AUTH, or AUTH):
	// "default" until then.
	User string
	Args []string
}

// ACL is the command's name as ACL rules give it: "info", "config|set".
func (s Sent) ACL() string {
	if len(s.Args) == 0 {
		return ""
	}
	name := strings.ToLower(s.Args[0])
	if len(s.Args) > 1 && containers[name] {
		return name + "|" + strings.ToLower(s.Args[1])
	}
	return name
}

// containers are the commands whose first argument is a subcommand with
// an ACL name of its own.
var containers = map[string]bool{
	"acl": true, "client": true, "cluster": true, "command": true, "config": true, "function": true,
	"latency": true, "memory": true, "module": true, "object": true, "pubsub": true, "script": true,
	"sentinel": true, "slowlog": true, "xinfo": true, "xgroup": true,
}

// Record starts a Recorder in front of backend, closed when the test ends.
func Record(t testing.TB, backend string) *Recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{Addr: ln.Addr().String(), backend: backend, ln: ln, conns: map[net.Conn]bool{}}
	r.wg.Go(r.accept)
	t.Cleanup(r.close)
	return r
}

func (r *Recorder) accept() {
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns[client] = true
		r.mu.Unlock()
		r.wg.Go(func() { r.serve(client) })
	}
}

func (r *Recorder) serve(client net.Conn) {
	defer func() {
		client.Close()
		r.mu.Lock()
		delete(r.conns, client)
		r.mu.Unlock()
	}()
	server, err := net.Dial("tcp", r.backend)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(client, server); client.Close() }()
	in := bufio.NewReader(client)
	user := "default"
	for {
		args, raw, err := readCommand(in)
		if err != nil {
			return
		}
		user = loggedInAs(user, args)
		r.mu.Lock()
		r.sent = append(r.sent, Sent{User: user, Args: args})
		r.mu.Unlock()
		if _, err := server.Write(raw); err != nil {
			return
		}
	}
}

// loggedInAs is the user a connection is logged in as after args: HELLO
// with AUTH and AUTH with a user name switch it, AUTH with a password
// alone logs in as default. A refused login is counted as one: the test
// cares who the client meant to be.
func loggedInAs(user string, args []string) string {
	switch {
	case len(args) >= 5 && strings.EqualFold(args[0], "hello") && strings.EqualFold(args[2], "auth"):
		return args[3]
	case len(args) == 3 && strings.EqualFold(args[0], "auth"):
		return args[1]
	case len(args) == 2 && strings.EqualFold(args[0], "auth"):
		return "default"
	}
	return user
}

// readCommand reads one command (a RESP array of bulk strings, as every
// client library sends) and returns it with its bytes.
func readCommand(r *bufio.Reader) (args []string, raw []byte, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, nil, err
	}
	raw = append(raw, line...)
	if !strings.HasPrefix(line, "*") {
		return nil, nil, errors.New("recorder: not a RESP array: " + strconv.Quote(line))
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return nil, nil, err
	}
	for range n {
		head, err := r.ReadString('\n')
		if err != nil {
			return nil, nil, err
		}
		raw = append(raw, head...)
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
		if err != nil || size < 0 {
			return nil, nil, errors.New("recorder: bad bulk header " + strconv.Quote(head))
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, nil, err
		}
		raw = append(raw, buf...)
		args = append(args, string(buf[:size]))
	}
	return args, raw, nil
}

// Sent returns every command recorded so far.
func (r *Recorder) Sent() []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

// Names are the ACL names of the commands user sent, sorted, each once.
func (r *Recorder) Names(user string) []string {
	var names []string
	for _, s := range r.Sent() {
		if s.User == user {
			names = append(names, s.ACL())
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = nil
}

func (r *Recorder) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
