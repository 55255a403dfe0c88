// Package resplimit bounds what a Redis server can make redisbot allocate.
//
// go-redis trusts the lengths a server declares: it makes a []byte of a
// bulk string's length and a []interface{} of an array's length as soon as
// the header line arrives, before any of the bytes do, and it recurses once
// per nested array. A server redisbot does not control (or anything that
// answers on its port) could then crash the bot with one line
// ("$9223372036854775806": makeslice panics), exhaust its memory with
// another ("*2147483647") or overflow its stack with millions of "*1".
//
// Conn sits between the socket and go-redis. Every byte the server sends
// goes through an incremental RESP state machine before go-redis sees it,
// and the first byte that breaks a Limit fails the read instead. go-redis
// cannot act on a header until its "\r\n" arrives, so holding back the byte
// that completes (or overflows) a bad header is enough to stop every
// allocation it would cause.
//
// The limits are per connection, and nothing bounds their sum
// process-wide. Between two writes a connection lets go-redis allocate at
// most Batch (8 MiB by default); the caller then works on what it read,
// and the probe parses an INFO of at most Bulk (1 MiB) into about 10 MiB
// of heap when it is made of the shortest "field:value" lines. So:
//
//   - a probe in flight costs at most about 20 MiB, and 128 of them at
//     once (probe.concurrency) about 2.5 GiB, if every server of a window
//     of 128 answered with replies crafted to the limits at once;
//   - a report holds its snapshot until the fleet command has printed, or
//     the sweep has recorded, every instance's: a fleet of N servers each
//     answering such an INFO holds about N x 10 MiB.
//
// Real servers are far from either: INFO everything is 25 to 100 KB. What
// a fleet with hostile servers costs is measured in docs/benchmarks.md: 50
// hostile servers among 1,000 (5 of them answering INFO with exactly Bulk
// bytes) add about 35 MiB to the peak RSS of `redisbot fleet --json`, and
// the other 45 nothing measurable; with the limits of before (16 MiB bulk
// strings, 64 MiB a batch) the same fleet added about 600 MiB.
package resplimit

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
)

var (
	// ErrLimit is wrapped by every error of a reply that broke a Limit.
	ErrLimit = errors.New("resplimit: reply over a limit")
	// ErrProtocol is wrapped by every error of bytes that are not RESP:
	// an unknown type byte, a malformed length, a line not ended by CRLF,
	// or a streamed ("$?", "*?") reply, which go-redis cannot read either.
	ErrProtocol = errors.New("resplimit: not a RESP reply")
)

// Limits bound the replies a connection accepts. A zero field takes its
// default. The defaults are the probe's: about ten times what a real
// server answers to the commands redisbot sends, and no more, because a
// hostile server may answer up to them. INFO everything is 25 KB on a
// Redis 7.0 that ran 166 kinds of command, about 100 KB at most; CLUSTER
// SHARDS of a 1,000-node cluster about 300 KB on the wire and about
// 1.2 MB of go-redis values; a SCAN page holds about COUNT keys (the key
// scan asks for 100 or 1,000: under 100 KB); MEMORY STATS about 60
// fields. handlers/probe's TestRealServerThroughTheLimits reads these,
// and a SCAN page of 100,000 keys (about 5 MB of values), from a real
// server through the defaults.
type Limits struct {
	// Bulk is the longest bulk string, verbatim string or blob error, in
	// bytes. Default 1 MiB: the largest the probe reads is INFO.
	Bulk int64
	// Aggregate is the most elements one array, set or push may declare;
	// a map or attribute of n pairs declares 2n. Default 1,048,576.
	Aggregate int64
	// Depth is how deep aggregates may nest; go-redis recurses once per
	// level. Default 32 (redisbot's deepest reply, CLUSTER SHARDS, has 4).
	Depth int
	// Line is the longest simple line (+ - : _ # , ( and length headers),
	// in bytes, without its CRLF. Default 64 KiB.
	Line int
	// Reply is the most bytes one top-level reply may take on the wire,
	// nested elements and a leading attribute included. Default 8 MiB.
	Reply int64
	// Alloc is the allocation budget of one top-level reply, charged when
	// a header arrives, before the bytes it announces: a bulk string's
	// length, 16 bytes per declared aggregate element (an interface
	// slot), and 24 bytes per value (the header go-redis boxes it in) plus
	// a simple line's length. It stops "*1000000" of "*1000000"s, a few
	// wire bytes, from becoming gigabytes. Default 8 MiB.
	Alloc int64
	// Batch is the allocation budget of all the replies read between two
	// writes of the client: a pipeline's replies are all held at once, so
	// without it 17 replies each just under Alloc would cost 17 times as
	// much. A connection that only reads (Pub/Sub, which redisbot never
	// uses) would eventually break it. Default 8 MiB, as Alloc: a probe's
	// pipeline of 16 commands reads about 30 KB to 100 KB, a key scan's
	// pipeline of 1,000 keys about 100 KB.
	Batch int64
}

// Defaults of Limits.
const (
	DefaultBulk      = 1 << 20
	DefaultAggregate = 1 << 20
	DefaultDepth     = 32
	DefaultLine      = 64 << 10
	DefaultReply     = 8 << 20
	DefaultAlloc     = 8 << 20
	DefaultBatch     = 8 << 20
)

// withDefaults fills in the zero (or negative) fields, and caps the others
// where sums of them could overflow.
func (l Limits) withDefaults() Limits {
	if l.Bulk <= 0 {
		l.Bulk = DefaultBulk
	}
	if l.Aggregate <= 0 {
		l.Aggregate = DefaultAggregate
	}
	if l.Depth <= 0 {
		l.Depth = DefaultDepth
	}
	if l.Line <= 0 {
		l.Line = DefaultLine
	}
	if l.Reply <= 0 {
		l.Reply = DefaultReply
	}
	if l.Alloc <= 0 {
		l.Alloc = DefaultAlloc
	}
	if l.Batch <= 0 {
		l.Batch = DefaultBatch
	}
	l.Bulk, l.Aggregate, l.Reply = min(l.Bulk, maxLimit), min(l.Aggregate, maxLimit), min(l.Reply, maxLimit)
	l.Alloc, l.Batch = min(l.Alloc, maxLimit), min(l.Batch, maxLimit)
	l.Depth, l.Line = min(l.Depth, 1<<20), min(l.Line, 1<<30)
	return l
}

// Conn is a net.Conn whose reads are checked against Limits. It is not
// safe for concurrent Reads (go-redis reads a connection from one
// goroutine at a time); a Write may run concurrently with a Read.
type Conn struct {
	net.Conn
	scan  scanner
	wrote atomic.Bool // a Write since the last Read: a new batch of replies
	err   error
}

// Wrap returns c with its reads checked against limits.
func Wrap(c net.Conn, limits Limits) net.Conn {
	lc := &Conn{Conn: c}
	lc.scan.init(limits.withDefaults())
	// go-redis checks an idle pooled connection for a server-side close
	// by peeking at the socket (MSG_PEEK, nothing consumed) when the conn
	// exposes its file descriptor. Keep that check for plain TCP and unix
	// sockets; a TLS conn hides its descriptor on purpose.
	if sc, ok := c.(syscall.Conn); ok {
		return &sysConn{Conn: lc, sc: sc}
	}
	return lc
}

// Read reads from the server and hands on the bytes that keep every reply
// within limits. The bytes before the first one that breaks a limit are
// delivered (they cannot make go-redis allocate past the limits: the
// offending header is never completed); that Read returns them, and every
// later Read returns the error, so go-redis drops the connection.
func (c *Conn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.wrote.Swap(false) {
		c.scan.newBatch()
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		ok, verr := c.scan.feed(p[:n])
		if verr != nil {
			c.err = verr
			if ok > 0 {
				return ok, nil
			}
			return 0, verr
		}
	}
	return n, err
}

// Write sends p to the server; it marks the start of a new batch of replies.
func (c *Conn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(p)
}

// sysConn is a Conn over a socket that exposes its file descriptor.
type sysConn struct {
	*Conn
	sc syscall.Conn
}

// SyscallConn lets go-redis peek at an idle connection; see Wrap.
func (c *sysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

// violation is the error of a reply that broke a limit or the protocol.
type violation struct {
	msg  string
	kind error // ErrLimit or ErrProtocol
}

func (v *violation) Error() string { return v.msg }
func (v *violation) Unwrap() error { return v.kind }

func limitErr(format string, args ...any) error {
	return &violation{msg: "resplimit: " + fmt.Sprintf(format, args...), kind: ErrLimit}
}

func protocolErr(format string, args ...any) error {
	return &violation{msg: "resplimit: " + fmt.Sprintf(format, args...), kind: ErrProtocol}
}

// size writes a limit the way it is configured: "16 MiB", "64 KiB",
// "1000 bytes".
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
