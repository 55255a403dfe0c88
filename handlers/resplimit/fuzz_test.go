package resplimit_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/redisbot/redisbot/handlers/resplimit"
)

// fuzzLimits are small, so short inputs reach every limit.
var fuzzLimits = resplimit.Limits{Bulk: 64, Aggregate: 8, Depth: 4, Line: 32, Reply: 256, Alloc: 1024, Batch: 4096}

// FuzzLimitedConn feeds arbitrary bytes through a limited conn in chunks
// chosen by the fuzzer and checks them against refCheck, a second,
// recursive reading of the rules: no input panics, the conn fails exactly
// when the reference finds a violation and delivers exactly the bytes
// before it, nothing it delivers declares a size over the limits, and
// valid input passes unchanged.
func FuzzLimitedConn(f *testing.F) {
	for _, seed := range []string{
		"+OK\r\n", "-ERR x\r\n", ":12\r\n", "$5\r\nhello\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
		"*2\r\n$3\r\nfoo\r\n:1\r\n", "_\r\n", ",1.5\r\n", "#t\r\n", "(12345678901234567890\r\n",
		"!3\r\nERR\r\n", "=7\r\ntxt:abc\r\n", "%1\r\n+a\r\n:1\r\n", "~2\r\n+a\r\n+b\r\n", ">2\r\n+a\r\n+b\r\n",
		"|1\r\n+a\r\n:1\r\n+OK\r\n", "*2\r\n|1\r\n+a\r\n:1\r\n:2\r\n:3\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
		"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "$9223372036854775806\r\n", "*2147483647\r\n", "$?\r\n",
		"+" + string(bytes.Repeat([]byte("A"), 40)) + "\r\n", "$3\r\nabcX", "HTTP/1.1 400\r\n", "+a\rb\r\n",
		"*9\r\n", "%5\r\n", "$64\r\n", "$65\r\n", "|-1\r\n", "$-2\r\n", "*99999999999999999999\r\n",
	} {
		f.Add([]byte(seed), uint64(0))
		f.Add([]byte(seed), uint64(0x0102030405060708))
	}
	f.Fuzz(func(t *testing.T, data []byte, splits uint64) {
		bad := refCheck(data, fuzzLimits)
		// Each byte of splits is the length of the next chunk (0: 16).
		var parts [][]byte
		rest := data
		for s := splits; len(rest) > 0; s = s>>8 | s<<56 {
			n := min(int(s&0xff)%17, len(rest))
			if n == 0 {
				n = min(16, len(rest))
			}
			parts, rest = append(parts, rest[:n]), rest[n:]
		}
		delivered, err := readAll(resplimit.Wrap(&chunkConn{chunks: parts}, fuzzLimits))
		if !bytes.HasPrefix(data, delivered) {
			t.Fatalf("delivered %q, not a prefix of the input %q", delivered, data)
		}
		if again := refCheck(delivered, fuzzLimits); again >= 0 {
			t.Fatalf("delivered %q, which breaks a limit at byte %d", delivered, again)
		}
		if bad < 0 {
			if !errors.Is(err, io.EOF) || len(delivered) != len(data) {
				t.Fatalf("valid input %q: delivered %q, %v; want all of it", data, delivered, err)
			}
			return
		}
		if !errors.Is(err, resplimit.ErrLimit) && !errors.Is(err, resplimit.ErrProtocol) {
			t.Fatalf("input %q breaks a rule at byte %d, but the conn says %v", data, bad, err)
		}
		if len(delivered) != bad {
			t.Fatalf("input %q breaks a rule at byte %d, but the conn delivered %d bytes (%v)", data, bad, len(delivered), err)
		}
	})
}

// Costs the budgets charge, as Limits.Alloc documents them.
const (
	slotCost  = 16
	valueCost = 24
)

// refCheck returns the offset of the first byte of data that breaks a
// limit or the protocol, or -1 when data is valid RESP within the limits
// (possibly ending mid-reply). It walks replies recursively, byte by byte,
// where the conn runs a state machine over chunks.
func refCheck(data []byte, lim resplimit.Limits) int {
	r := &refParser{d: data, lim: lim, bad: -1}
	for r.pos < len(r.d) {
		r.start, r.alloc = r.pos, 0
		if !r.value(0) {
			break
		}
	}
	return r.bad
}

type refParser struct {
	d     []byte
	lim   resplimit.Limits
	pos   int
	bad   int
	start int   // first byte of the current top-level reply
	alloc int64 // charged to the current top-level reply
	batch int64 // charged to every reply so far
}

// next returns the byte at pos, or false at the end of the data or when
// the byte would make the reply too long (then bad is set).
func (r *refParser) next() (byte, bool) {
	if r.pos >= len(r.d) {
		return 0, false
	}
	if int64(r.pos-r.start) >= r.lim.Reply {
		return 0, r.fail()
	}
	return r.d[r.pos], true
}

// fail records a violation at pos and returns false.
func (r *refParser) fail() bool {
	r.bad = r.pos
	return false
}

func (r *refParser) charge(n int64) bool {
	r.alloc += n
	r.batch += n
	return r.alloc <= r.lim.Alloc && r.batch <= r.lim.Batch
}

// value reads one value whose enclosing aggregates number depth.
func (r *refParser) value(depth int) bool {
	c, ok := r.next()
	if !ok {
		return false
	}
	switch c {
	case '+', '-', ':', '_', ',', '#', '(':
		if !r.charge(valueCost) {
			return r.fail()
		}
		r.pos++
		return r.line()
	case '$', '=', '!', '*', '~', '>', '%', '|':
		if !r.charge(valueCost) {
			return r.fail()
		}
		r.pos++
		return r.afterHeader(c, depth)
	}
	return r.fail()
}

func (r *refParser) line() bool {
	content, pendingCR := 0, false
	for {
		c, ok := r.next()
		if !ok {
			return false
		}
		if c == '\n' {
			if !pendingCR || !r.charge(int64(content)) {
				return r.fail()
			}
			r.pos++
			return true
		}
		if pendingCR {
			content++ // the \r was content after all
		}
		pendingCR = c == '\r'
		if !pendingCR {
			content++
		}
		if content > r.lim.Line {
			return r.fail()
		}
		r.pos++
	}
}

// header reads a length up to its \n and leaves pos on the \n.
func (r *refParser) header() (n int64, null, ok bool) {
	digits, neg, cr := 0, false, false
	for {
		c, more := r.next()
		if !more {
			return 0, false, false
		}
		switch {
		case cr:
			if c != '\n' || digits == 0 {
				return 0, false, r.fail()
			}
			return n, neg, true
		case c == '\r':
			cr = true
		case c == '-' && digits == 0 && !neg:
			neg = true
		case c >= '0' && c <= '9' && !neg:
			if n > (math.MaxInt64-int64(c-'0'))/10 {
				return 0, false, r.fail()
			}
			n = n*10 + int64(c-'0')
			digits++
		case c == '1' && neg && digits == 0:
			digits++
		default:
			return 0, false, r.fail()
		}
		r.pos++
	}
}

func (r *refParser) afterHeader(typ byte, depth int) bool {
	n, null, ok := r.header()
	if !ok {
		return false
	}
	if null {
		if typ == '|' {
			return r.fail()
		}
		r.pos++
		return true
	}
	switch typ {
	case '$', '=', '!':
		if n > r.lim.Bulk || int64(r.pos+1-r.start)+n+2 > r.lim.Reply || !r.charge(n+2) {
			return r.fail()
		}
		r.pos++
		if int64(len(r.d)-r.pos) < n {
			r.pos = len(r.d)
			return false
		}
		r.pos += int(n)
		for _, want := range []byte("\r\n") {
			c, ok := r.next()
			if !ok {
				return false
			}
			if c != want {
				return r.fail()
			}
			r.pos++
		}
		return true
	}
	elems := n
	if typ == '%' || typ == '|' {
		if n > r.lim.Aggregate/2 {
			return r.fail()
		}
		elems = 2 * n
	}
	if elems > r.lim.Aggregate || !r.charge(slotCost*elems) || (elems > 0 && depth >= r.lim.Depth) {
		return r.fail()
	}
	r.pos++
	for range elems {
		if !r.value(depth + 1) {
			return false
		}
	}
	if typ == '|' {
		return r.value(depth) // the value the attribute annotates
	}
	return true
}
