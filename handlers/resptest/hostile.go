package resptest

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Hostility is a way of answering that breaks a client trusting the
// lengths a server declares: what a compromised or broken server, or
// whatever listens on a mistyped port, can send. redisbot probes servers
// it does not control, so its tests need each of them on demand.
type Hostility int

// Hostile answers. Each names what it does to a go-redis client without
// limits.
const (
	// HugeBulk declares a bulk string of 9223372036854775806 bytes:
	// makeslice panics ("len out of range").
	HugeBulk Hostility = iota + 1
	// HugeArray declares an array of 2147483647 elements: a 32 GiB
	// []interface{}, a fatal out-of-memory.
	HugeArray
	// DeepNesting sends four million "*1": one recursion each, until the
	// stack overflows.
	DeepNesting
	// EndlessBulk declares a 10 GB bulk string, then sends bytes as fast
	// as the client reads them.
	EndlessBulk
	// EndlessLine sends "+OK AAAA..." and never ends the line.
	EndlessLine
	// Garbage sends bytes that are not RESP.
	Garbage
	// RESP3 answers with RESP3 types the client did not ask for: an
	// attribute, then a map of a billion pairs.
	RESP3
	// Amplify answers an array of a million arrays of a million elements,
	// and so on for ever: gigabytes of []interface{} declared by a few
	// bytes each.
	Amplify
)

var hostilityNames = [...]string{"", "huge-bulk", "huge-array", "deep-nesting", "endless-bulk", "endless-line",
	"garbage", "resp3", "amplify"}

func (h Hostility) String() string {
	if h <= 0 || int(h) >= len(hostilityNames) {
		return "hostility(" + strconv.Itoa(int(h)) + ")"
	}
	return hostilityNames[h]
}

// Hostilities lists every Hostility, for tests that try them all.
var Hostilities = []Hostility{HugeBulk, HugeArray, DeepNesting, EndlessBulk, EndlessLine, Garbage, RESP3, Amplify}

// hostility is a server's hostile answer and the commands it gives it to.
type hostility struct {
	how Hostility
	to  [][2]string // command name and, when not "", its subcommand; nil: see StartHostile
	all bool        // "*": every command, the connection's set-up included
}

// setUp are the commands go-redis sends while connecting. A server
// hostile to "every command" by default still lets the connection be
// made, so the probe's own commands meet the hostile answers.
var setUp = []string{"HELLO", "AUTH", "SELECT", "CLIENT", "PING", "QUIT"}

// StartHostile starts a server on 127.0.0.1 that answers the commands
// named in to (such as "INFO", "MEMORY DOCTOR", "CONFIG GET", "SCAN") the
// way h says, and every other command like a Healthy server serving
// DefaultInfo. With no command named it is hostile to every command but
// those of the connection's set-up (HELLO, AUTH, SELECT, CLIENT, PING);
// "*" makes it hostile to those too.
func StartHostile(h Hostility, to ...string) (*Server, error) {
	if h <= 0 || int(h) >= len(hostilityNames) {
		return nil, fmt.Errorf("resptest: unknown hostility %d", int(h))
	}
	hs := &hostility{how: h}
	for _, name := range to {
		if name == "*" {
			hs.all = true
			continue
		}
		f := strings.Fields(strings.ToUpper(name))
		switch len(f) {
		case 1:
			hs.to = append(hs.to, [2]string{f[0], ""})
		case 2:
			hs.to = append(hs.to, [2]string{f[0], f[1]})
		default:
			return nil, fmt.Errorf("resptest: %q is not a command name", name)
		}
	}
	return start(Healthy, "", 0, hs)
}

// matches reports whether the server is hostile to the command args.
func (h *hostility) matches(args [][]byte) bool {
	if h.all {
		return true
	}
	if len(h.to) == 0 {
		for _, name := range setUp {
			if is(args[0], name) {
				return false
			}
		}
		return true
	}
	for _, c := range h.to {
		if is(args[0], c[0]) && (c[1] == "" || len(args) > 1 && is(args[1], c[1])) {
			return true
		}
	}
	return false
}

// Chunks the hostile answers are written in, built once.
var (
	deepChunk    = bytes.Repeat([]byte("*1\r\n"), 16<<10)
	endlessChunk = bytes.Repeat([]byte("A"), 64<<10)
	amplifyChunk = bytes.Repeat([]byte("*1000000\r\n"), 6<<10)
)

// answer writes the hostile answer to one command after the replies
// already buffered in w. It reports whether the connection is done: an
// endless answer ends only when the client stops reading.
func (h *hostility) answer(w *bufio.Writer) (done bool) {
	switch h.how {
	case HugeBulk:
		_, _ = w.WriteString("$9223372036854775806\r\nAAAAAAAA")
	case HugeArray:
		_, _ = w.WriteString("*2147483647\r\n:1\r\n:2\r\n")
	case DeepNesting:
		for range 4 << 20 / (16 << 10) {
			if _, err := w.Write(deepChunk); err != nil {
				return true
			}
		}
		_, _ = w.WriteString(":1\r\n")
	case EndlessBulk:
		_, _ = w.WriteString("$10000000000\r\n")
		return endless(w, endlessChunk)
	case EndlessLine:
		_, _ = w.WriteString("+OK ")
		return endless(w, endlessChunk)
	case Garbage:
		_, _ = w.WriteString("\x00\xff\xfenot RESP\x80\r\n")
	case RESP3:
		_, _ = w.WriteString("|1\r\n+ttl\r\n:3600\r\n%1073741824\r\n+a\r\n,1.5\r\n")
	case Amplify:
		return endless(w, amplifyChunk)
	}
	return false
}

// endless writes chunk until the client hangs up (or the server closes).
func endless(w *bufio.Writer, chunk []byte) bool {
	for {
		if _, err := w.Write(chunk); err != nil {
			return true
		}
	}
}
