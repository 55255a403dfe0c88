package resplimit

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// validReplies are well-formed replies of every type go-redis reads, with
// the edge cases of each: nulls, empties, a payload holding CRLF, a lone
// \r inside a status line, attributes before a reply and inside an array.
var validReplies = []struct{ name, raw string }{
	{"status", "+OK\r\n"},
	{"empty status", "+\r\n"},
	{"status with a lone CR", "+a\rb\r\n"},
	{"error", "-ERR unknown command 'HELLO', with args beginning with: '2'\r\n"},
	{"integer", ":0\r\n"},
	{"negative integer", ":-42\r\n"},
	{"max integer", ":9223372036854775807\r\n"},
	{"bulk", "$5\r\nhello\r\n"},
	{"empty bulk", "$0\r\n\r\n"},
	{"null bulk", "$-1\r\n"},
	{"bulk holding CRLF", "$8\r\nab\r\ncd\r\n\r\n"},
	{"null array", "*-1\r\n"},
	{"empty array", "*0\r\n"},
	{"array", "*2\r\n$3\r\nfoo\r\n:1\r\n"},
	{"nested arrays", "*3\r\n*1\r\n*0\r\n+x\r\n$-1\r\n"},
	{"CONFIG GET", "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"},
	{"SCAN page", "*2\r\n$1\r\n0\r\n*3\r\n$5\r\nkey:1\r\n$5\r\nkey:2\r\n$0\r\n\r\n"},
	{"RESP3 null", "_\r\n"},
	{"double", ",3.14\r\n"},
	{"double inf", ",-inf\r\n"},
	{"boolean", "#t\r\n"},
	{"big number", "(3492890328409238509324850943850943825024385\r\n"},
	{"blob error", "!21\r\nSYNTAX invalid syntax\r\n"},
	{"null blob error", "!-1\r\n"},
	{"verbatim string", "=15\r\ntxt:Some string\r\n"},
	{"map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"},
	{"empty map", "%0\r\n"},
	{"null map", "%-1\r\n"},
	{"set", "~3\r\n+a\r\n+b\r\n+c\r\n"},
	{"push", ">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n"},
	{"attribute before a reply", "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n"},
	{"attribute inside an array", "*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:5\r\n"},
	{"empty attribute", "|0\r\n+OK\r\n"},
	{"two attributes", "|1\r\n+a\r\n:1\r\n|1\r\n+b\r\n:2\r\n#f\r\n"},
	{"32 levels deep", strings.Repeat("*1\r\n", 32) + ":1\r\n"},
}

// feedChunks runs data through a scanner in chunks of the given sizes (the
// last chunk takes the rest) and returns the bytes it accepted.
func feedChunks(s *scanner, data []byte, sizes ...int) (int, error) {
	accepted := 0
	for _, n := range append(sizes, len(data)) {
		n = min(n, len(data))
		ok, err := s.feed(data[:n])
		accepted += ok
		if err != nil {
			return accepted, err
		}
		data = data[n:]
	}
	return accepted, nil
}

func newScanner(lim Limits) *scanner {
	s := &scanner{}
	s.init(lim.withDefaults())
	return s
}

// idle reports whether the scanner sits between replies.
func (s *scanner) idle() bool { return s.state == stType && !s.inReply && len(s.stack) == 0 }

func TestValidRepliesPassAtEveryBoundary(t *testing.T) {
	info, err := os.ReadFile("../testdata/info/redis-7.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	cases := append(validReplies[:len(validReplies):len(validReplies)],
		struct{ name, raw string }{"INFO everything", "$" + strconv.Itoa(len(info)) + "\r\n" + string(info) + "\r\n"})
	var pipeline strings.Builder
	for _, c := range cases {
		pipeline.WriteString(c.raw)
	}
	cases = append(cases, struct{ name, raw string }{"all of them pipelined", pipeline.String()})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.raw)
			step := 1
			if len(data) > 2000 {
				step = 97 // a prime: boundaries land everywhere in the replies
			}
			for cut := 0; cut <= len(data); cut += step {
				s := newScanner(Limits{})
				if n, err := feedChunks(s, data, cut); err != nil || n != len(data) {
					t.Fatalf("split at %d: accepted %d of %d bytes: %v", cut, n, len(data), err)
				}
				if !s.idle() {
					t.Fatalf("split at %d: scanner not between replies after a complete reply", cut)
				}
			}
			s := newScanner(Limits{})
			ones := make([]int, len(data))
			for i := range ones {
				ones[i] = 1
			}
			if n, err := feedChunks(s, data, ones...); err != nil || n != len(data) || !s.idle() {
				t.Fatalf("byte by byte: accepted %d of %d bytes: %v", n, len(data), err)
			}
		})
	}
}

func TestViolations(t *testing.T) {
	deep := strings.Repeat("*1\r\n", 33) + ":1\r\n"
	longLine := "+" + strings.Repeat("A", 64<<10)
	amplify := strings.Repeat("*300000\r\n", 3)
	cases := []struct {
		name     string
		lim      Limits
		raw      string
		kind     error
		msg      string
		accepted int // bytes before the one that broke the rule
	}{
		{"huge bulk", Limits{}, "$9223372036854775806\r\n", ErrLimit,
			"resplimit: bulk length 9223372036854775806 exceeds the 1 MiB limit", 21},
		{"huge array", Limits{}, "*2147483647\r\n", ErrLimit,
			"resplimit: array length 2147483647 exceeds the 1048576-element limit", 12},
		{"huge set", Limits{}, "~2000000\r\n", ErrLimit, "resplimit: set length 2000000 exceeds the 1048576-element limit", 9},
		{"huge push", Limits{}, ">2000000\r\n", ErrLimit, "resplimit: push length 2000000 exceeds the 1048576-element limit", 9},
		{"huge map", Limits{}, "%600000\r\n", ErrLimit, "resplimit: map of 600000 pairs exceeds the 1048576-element limit", 8},
		{"huge attribute", Limits{}, "|600000\r\n", ErrLimit, "resplimit: attribute of 600000 pairs exceeds the 1048576-element limit", 8},
		{"huge verbatim", Limits{}, "=1048577\r\n", ErrLimit, "resplimit: verbatim string length 1048577 exceeds the 1 MiB limit", 9},
		{"huge blob error", Limits{}, "!1048577\r\n", ErrLimit, "resplimit: blob error length 1048577 exceeds the 1 MiB limit", 9},
		{"huge bulk inside an array", Limits{}, "*2\r\n$1\r\na\r\n$99999999999\r\n", ErrLimit,
			"resplimit: bulk length 99999999999 exceeds the 1 MiB limit", 24},
		{"deep nesting", Limits{}, deep, ErrLimit, "resplimit: aggregates nested deeper than the 32-level limit", 32*4 + 3},
		{"endless status line", Limits{}, longLine + "AAAA", ErrLimit, "resplimit: status line longer than the 64 KiB limit", 1 + 64<<10},
		{"line one byte too long", Limits{Line: 4}, "-ERROR\r\n", ErrLimit, "resplimit: error line longer than the 4 bytes limit", 5},
		{"line just long enough then not ended", Limits{Line: 4}, "-ERRO\rX", ErrLimit, "resplimit: error line longer than the 4 bytes limit", 6},
		{"reply too long", Limits{Reply: 100}, "*200\r\n" + strings.Repeat(":1\r\n", 200), ErrLimit,
			"resplimit: reply longer than the 100 bytes limit", 100},
		{"bulk longer than the reply may be", Limits{Reply: 100}, "$200\r\n", ErrLimit,
			"resplimit: bulk length 200 makes the reply longer than the 100 bytes limit", 5},
		{"array of arrays", Limits{}, amplify, ErrLimit,
			"resplimit: reply declares 9600048 bytes of allocations, over the 8 MiB budget", 17},
		{"batch budget", Limits{Alloc: 1000, Batch: 1200}, "$600\r\n" + strings.Repeat("x", 600) + "\r\n" + "$600\r\n", ErrLimit,
			"resplimit: replies to one batch of commands declare 1252 bytes of allocations, over the 1200 bytes budget", 613},
		{"unknown type byte", Limits{}, "HTTP/1.1 400 Bad Request\r\n", ErrProtocol, "resplimit: unknown reply type byte 'H'", 0},
		{"unknown type byte after a reply", Limits{}, "+OK\r\n\x16\x03\x01", ErrProtocol, "resplimit: unknown reply type byte '\\x16'", 5},
		{"LF without CR", Limits{}, "+OK\n", ErrProtocol, "resplimit: status line not ended by CRLF", 3},
		{"streamed bulk", Limits{}, "$?\r\n;4\r\nHell\r\n", ErrProtocol, "resplimit: streamed bulk ('$?') not supported", 1},
		{"streamed array", Limits{}, "*?\r\n", ErrProtocol, "resplimit: streamed array ('*?') not supported", 1},
		{"negative length", Limits{}, "$-2\r\n", ErrProtocol, "resplimit: malformed bulk length (only -1 may be negative)", 2},
		{"letters in a length", Limits{}, "*12a\r\n", ErrProtocol, "resplimit: malformed array length", 3},
		{"empty length", Limits{}, "$\r\n", ErrProtocol, "resplimit: empty bulk length", 2},
		{"length overflowing int64", Limits{}, "*99999999999999999999\r\n", ErrProtocol, "resplimit: array length has too many digits", 19},
		{"CR without LF in a header", Limits{}, "$1\rx", ErrProtocol, "resplimit: malformed bulk length", 3},
		{"payload not ended by CRLF", Limits{}, "$3\r\nabcX\r\n", ErrProtocol, "resplimit: bulk not followed by CRLF", 7},
		{"payload ended by CR only", Limits{}, "$3\r\nabc\rX", ErrProtocol, "resplimit: bulk not followed by CRLF", 8},
		{"null attribute", Limits{}, "|-1\r\n", ErrProtocol, "resplimit: null attribute", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.raw)
			for cut := 0; cut <= len(data); cut++ {
				s := newScanner(c.lim)
				n, err := feedChunks(s, data, cut)
				if !errors.Is(err, c.kind) || err.Error() != c.msg {
					t.Fatalf("split at %d: error %v, want %q (%v)", cut, err, c.msg, c.kind)
				}
				if n != c.accepted {
					t.Fatalf("split at %d: accepted %d bytes, want %d", cut, n, c.accepted)
				}
				if cut > 2000 {
					cut += 1000 // the long line: a few splits are enough
				}
			}
		})
	}
}

func TestLimitsAtTheirEdge(t *testing.T) {
	for _, c := range []struct {
		name string
		lim  Limits
		raw  string
	}{
		{"bulk of exactly Bulk bytes", Limits{Bulk: 10}, "$10\r\n0123456789\r\n"},
		{"array of exactly Aggregate elements", Limits{Aggregate: 4}, "*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n"},
		{"map of exactly Aggregate elements", Limits{Aggregate: 4}, "%2\r\n:1\r\n:2\r\n:3\r\n:4\r\n"},
		{"exactly Depth levels", Limits{Depth: 2}, "*1\r\n*1\r\n:1\r\n"},
		{"empty array one level deeper", Limits{Depth: 2}, "*1\r\n*1\r\n*0\r\n"},
		{"line of exactly Line bytes", Limits{Line: 5}, "+12345\r\n"},
		{"line of exactly Line bytes ending in CR", Limits{Line: 5}, "+1234\r\r\n"},
		{"reply of exactly Reply bytes", Limits{Reply: 64}, "$57\r\n" + strings.Repeat("x", 57) + "\r\n"},
		{"reply of exactly Alloc bytes", Limits{Alloc: 24 + 59}, "$57\r\n" + strings.Repeat("x", 57) + "\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Feed the reply twice: the counters start again at each reply.
			data := []byte(c.raw + c.raw)
			s := newScanner(c.lim)
			if n, err := s.feed(data); err != nil || n != len(data) || !s.idle() {
				t.Errorf("accepted %d of %d bytes: %v", n, len(data), err)
			}
		})
	}
}

func TestBatchStartsAgainAfterAWrite(t *testing.T) {
	lim := Limits{Alloc: 1000, Batch: 1200}
	reply := []byte("$600\r\n" + strings.Repeat("x", 600) + "\r\n")
	s := newScanner(lim)
	for i := range 5 {
		s.newBatch()
		if _, err := s.feed(reply); err != nil {
			t.Fatalf("reply %d after a write: %v", i, err)
		}
	}
	if _, err := s.feed(reply); !errors.Is(err, ErrLimit) {
		t.Errorf("second reply to one batch: %v, want the batch budget", err)
	}
}

func TestFeedAllocatesNothing(t *testing.T) {
	var pipeline strings.Builder
	for _, c := range validReplies {
		pipeline.WriteString(c.raw)
	}
	data := []byte(pipeline.String())
	s := newScanner(Limits{})
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.feed(data); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per feed, want 0", allocs)
	}
}
