package resplimit_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/redisbot/redisbot/handlers/resplimit"
)

// chunkConn is a net.Conn whose reads return its chunks in turn, then
// io.EOF: no real socket can be made to split bytes exactly where a test
// needs them. Only Read and Write are implemented.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	reads  int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error) { return len(p), nil }

func chunks(parts ...string) *chunkConn {
	c := &chunkConn{}
	for _, p := range parts {
		c.chunks = append(c.chunks, []byte(p))
	}
	return c
}

// readAll reads c until an error and returns what it delivered.
func readAll(c net.Conn) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

func TestReadDeliversTheBytesBeforeTheViolationThenFails(t *testing.T) {
	inner := chunks("+OK\r\n$9223372036854775806\r\n", "endless stream")
	c := resplimit.Wrap(inner, resplimit.Limits{})
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "+OK\r\n$9223372036854775806\r" {
		t.Fatalf("first read = %q, %v; want the reply before the bad header and the header without its \\n", buf[:n], err)
	}
	reads := inner.reads
	var first error
	for i := range 3 {
		n, err := c.Read(buf)
		if n != 0 || !errors.Is(err, resplimit.ErrLimit) {
			t.Fatalf("read %d after the violation = %d, %v; want 0 and ErrLimit", i, n, err)
		}
		if first == nil {
			first = err
		} else if err != first {
			t.Errorf("read %d: a different error %v, want the same one", i, err)
		}
	}
	if !strings.Contains(first.Error(), "bulk length 9223372036854775806 exceeds the 1 MiB limit") {
		t.Errorf("error = %q", first)
	}
	if inner.reads != reads {
		t.Error("a failed conn still reads from the server")
	}
}

func TestReadFailsAtOnceWhenTheChunkStartsWithTheViolation(t *testing.T) {
	c := resplimit.Wrap(chunks("+OK\r\n*2147483647\r", "\n"), resplimit.Limits{})
	got, err := readAll(c)
	if string(got) != "+OK\r\n*2147483647\r" || !errors.Is(err, resplimit.ErrLimit) {
		t.Errorf("delivered %q, %v", got, err)
	}
	c = resplimit.Wrap(chunks("HTTP/1.1 400 Bad Request\r\n"), resplimit.Limits{})
	got, err = readAll(c)
	if len(got) != 0 || !errors.Is(err, resplimit.ErrProtocol) {
		t.Errorf("garbage: delivered %q, %v", got, err)
	}
}

func TestReadPassesValidRepliesUnchanged(t *testing.T) {
	var all strings.Builder
	for _, r := range []string{"+OK\r\n", "$5\r\nhello\r\n", "*2\r\n:1\r\n%1\r\n+a\r\n_\r\n", "|1\r\n+ttl\r\n:1\r\n#t\r\n"} {
		all.WriteString(r)
	}
	data := all.String()
	for cut := range len(data) {
		got, err := readAll(resplimit.Wrap(chunks(data[:cut], data[cut:]), resplimit.Limits{}))
		if !errors.Is(err, io.EOF) || string(got) != data {
			t.Fatalf("split at %d: delivered %q, %v", cut, got, err)
		}
	}
}

func TestWriteStartsANewBatch(t *testing.T) {
	reply := "$600\r\n" + strings.Repeat("x", 600) + "\r\n"
	inner := chunks(reply, reply, reply)
	c := resplimit.Wrap(inner, resplimit.Limits{Alloc: 1000, Batch: 1200})
	buf := make([]byte, 4096)
	for i := range 2 {
		if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("reply %d, each after a command: %v", i, err)
		}
	}
	if _, err := io.ReadFull(c, buf[:len(reply)+1]); !errors.Is(err, resplimit.ErrLimit) {
		t.Errorf("a second reply to one command: %v, want the batch budget", err)
	}
}

func TestWrapKeepsTheIdleCheckOnSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, ok := resplimit.Wrap(raw, resplimit.Limits{}).(syscall.Conn); !ok {
		t.Error("a wrapped TCP conn hides its descriptor: go-redis can no longer check idle conns")
	}
	if _, ok := resplimit.Wrap(chunks(), resplimit.Limits{}).(syscall.Conn); ok {
		t.Error("a wrapped conn without a descriptor claims one")
	}
}

// BenchmarkRead compares reading a probe's replies through the limits with
// reading them straight from the conn.
func BenchmarkRead(b *testing.B) {
	var pipeline bytes.Buffer
	pipeline.WriteString("$4000\r\n" + strings.Repeat("x", 4000) + "\r\n")
	for range 13 {
		pipeline.WriteString("*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n")
	}
	pipeline.WriteString("*32\r\n")
	for range 16 {
		pipeline.WriteString("$14\r\npeak.allocated\r\n:123456789\r\n")
	}
	pipeline.WriteString("$108\r\n" + strings.Repeat("y", 108) + "\r\n")
	data := pipeline.Bytes()
	buf := make([]byte, 16<<10)
	run := func(b *testing.B, wrap func(net.Conn) net.Conn) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		inner := &chunkConn{}
		c := wrap(inner)
		var one [1][]byte
		cmd := []byte("*2\r\n$4\r\nINFO\r\n$10\r\neverything\r\n")
		for b.Loop() {
			if _, err := c.Write(cmd); err != nil {
				b.Fatal(err)
			}
			one[0] = data
			inner.chunks = one[:]
			for len(inner.chunks) > 0 {
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("plain", func(b *testing.B) { run(b, func(c net.Conn) net.Conn { return c }) })
	b.Run("limited", func(b *testing.B) {
		run(b, func(c net.Conn) net.Conn { return resplimit.Wrap(c, resplimit.Limits{}) })
	})
}
