package resplimit

import (
	"bytes"
	"math"
)

// Costs charged against the allocation budgets, close to what go-redis
// allocates: an interface slot per declared aggregate element, and per
// value the string, slice or number header it boxes the value in.
const (
	slotCost  = 16
	valueCost = 24
)

// maxLimit keeps sums of limits far from overflowing int64.
const maxLimit = 1 << 50

// Where the scanner is within a reply.
const (
	stType    = iota // expecting a type byte
	stLine           // inside a simple line, up to its \n
	stHeader         // inside a length header, up to its \n
	stPayload        // inside a bulk payload
	stCR             // expecting the \r after a payload
	stLF             // expecting the \n after a payload
)

// frame is one open aggregate.
type frame struct {
	left int64 // elements still to come
	attr bool  // an attribute: when it ends, its parent still waits for the value it annotates
}

// scanner is an incremental RESP2/RESP3 parser that keeps only counters:
// it never buffers a reply, so checking costs no allocation per byte.
type scanner struct {
	lim Limits

	state   uint8
	typ     byte  // type byte of the line or header being read
	lineLen int   // bytes of the current line after its type byte, \n excluded
	lastCR  bool  // the line's (or header's) last byte so far was \r
	num     int64 // a header's length so far
	neg     bool  // the header's length started with '-'
	digits  int   // digits of the header's length so far
	left    int64 // payload bytes still to come

	stack []frame // open aggregates, innermost last

	inReply    bool  // between the first byte of a top-level reply and its end
	replyBytes int64 // wire bytes of the current top-level reply
	replyAlloc int64 // allocation charged to the current top-level reply
	batchAlloc int64 // allocation charged since the client last wrote
}

func (s *scanner) init(lim Limits) {
	s.lim = lim
	s.stack = make([]frame, 0, min(lim.Depth, DefaultDepth))
}

// newBatch starts a new batch of replies: the client has sent commands.
func (s *scanner) newBatch() { s.batchAlloc = 0 }

// feed checks the next bytes from the server. It returns how many of them
// keep every reply within the limits (all of p, or the bytes before the one
// that broke a limit) and the violation, if any. Once it has returned an
// error its state is undefined: the connection is done.
func (s *scanner) feed(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		if !s.inReply {
			s.inReply, s.replyBytes, s.replyAlloc = true, 0, 0
		}
		room := s.lim.Reply - s.replyBytes
		if room <= 0 {
			return i, limitErr("reply longer than the %s limit", size(s.lim.Reply))
		}
		w := p[i:]
		if int64(len(w)) > room {
			w = w[:room]
		}
		n, err := s.step(w)
		s.replyBytes += int64(n)
		i += n
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

// step consumes one token from w (which is never empty): a type byte, part
// of a line, header or payload, or a payload's \r or \n. It stops at the
// end of a top-level reply so feed can start the next one's counters.
func (s *scanner) step(w []byte) (int, error) {
	switch s.state {
	case stType:
		// The type byte and what follows it in w, in one step.
		if err := s.typeByte(w[0]); err != nil {
			return 0, err
		}
		if len(w) == 1 {
			return 1, nil
		}
		var n int
		var err error
		if s.state == stLine {
			n, err = s.line(w[1:])
		} else {
			n, err = s.header(w[1:], 1)
		}
		return 1 + n, err
	case stLine:
		return s.line(w)
	case stHeader:
		return s.header(w, 0)
	case stPayload:
		n := int(min(int64(len(w)), s.left))
		s.left -= int64(n)
		if s.left > 0 {
			return n, nil
		}
		s.state = stCR
		if len(w)-n < 2 {
			return n, nil
		}
		// The usual case: the CRLF is in w too.
		if w[n] != '\r' {
			return n, s.noCRLF()
		}
		if w[n+1] != '\n' {
			return n + 1, s.noCRLF()
		}
		s.state = stType
		s.valueDone()
		return n + 2, nil
	case stCR:
		if w[0] != '\r' {
			return 0, s.noCRLF()
		}
		s.state = stLF
		return 1, nil
	default: // stLF
		if w[0] != '\n' {
			return 0, s.noCRLF()
		}
		s.state = stType
		s.valueDone()
		return 1, nil
	}
}

func (s *scanner) noCRLF() error {
	return protocolErr("%s not followed by CRLF", kindOf(s.typ))
}

func (s *scanner) typeByte(c byte) error {
	switch c {
	case '+', '-', ':', '_', ',', '#', '(':
		s.state, s.lineLen, s.lastCR = stLine, 0, false
	case '$', '=', '!', '*', '~', '>', '%', '|':
		s.state, s.num, s.neg, s.digits, s.lastCR = stHeader, 0, false, 0, false
	default:
		return protocolErr("unknown reply type byte %q", c)
	}
	s.typ = c
	return s.charge(valueCost)
}

// line reads a simple line up to its \n. Its content may hold a lone \r,
// as go-redis' reader allows; the byte before the \n must be \r.
func (s *scanner) line(w []byte) (int, error) {
	j := bytes.IndexByte(w, '\n')
	seg := len(w)
	if j >= 0 {
		seg = j
	}
	// lineLen counts the content and a \r that may end it. The content
	// is certain to be over the limit at the byte that makes Line+1 bytes
	// unless that byte is a \r (it may end the line), or at the next one.
	if k := s.lim.Line - s.lineLen; k >= 0 && k < seg && w[k] != '\r' {
		return k, s.lineTooLong()
	} else if k+1 < seg {
		return k + 1, s.lineTooLong()
	}
	if j < 0 {
		s.lineLen += seg
		s.lastCR = w[seg-1] == '\r'
		return seg, nil
	}
	cr := s.lastCR
	if j > 0 {
		cr = w[j-1] == '\r'
	}
	if !cr {
		return j, protocolErr("%s not ended by CRLF", kindOf(s.typ))
	}
	if err := s.charge(int64(s.lineLen + j - 1)); err != nil {
		return j, err
	}
	s.state = stType
	s.valueDone()
	return j + 1, nil
}

func (s *scanner) lineTooLong() error {
	return limitErr("%s longer than the %s limit", kindOf(s.typ), size(int64(s.lim.Line)))
}

// header reads a length header up to its \n: digits, or -1 for a null.
// off is how many bytes of the current step came before w.
func (s *scanner) header(w []byte, off int) (int, error) {
	for k, c := range w {
		switch {
		case s.lastCR:
			if c != '\n' {
				return k, protocolErr("malformed %s length", kindOf(s.typ))
			}
			if err := s.headerDone(int64(off + k + 1)); err != nil {
				return k, err
			}
			return k + 1, nil
		case c == '\r':
			s.lastCR = true
		case '0' <= c && c <= '9':
			if s.neg && (s.digits > 0 || c != '1') {
				return k, protocolErr("malformed %s length (only -1 may be negative)", kindOf(s.typ))
			}
			d := int64(c - '0')
			if s.num > (math.MaxInt64-d)/10 {
				return k, protocolErr("%s length has too many digits", kindOf(s.typ))
			}
			s.num = s.num*10 + d
			s.digits++
		case c == '-' && !s.neg && s.digits == 0:
			s.neg = true
		case c == '?' && !s.neg && s.digits == 0:
			return k, protocolErr("streamed %s ('%c?') not supported", kindOf(s.typ), s.typ)
		default:
			return k, protocolErr("malformed %s length", kindOf(s.typ))
		}
	}
	return len(w), nil
}

// headerDone acts on a complete header; used is how many bytes of the
// current step it took, \n included. On error the \n is not delivered.
func (s *scanner) headerDone(used int64) error {
	if s.digits == 0 {
		return protocolErr("empty %s length", kindOf(s.typ))
	}
	s.state = stType
	if s.neg {
		if s.typ == '|' {
			return protocolErr("null attribute")
		}
		s.valueDone() // a null: no payload, no elements
		return nil
	}
	n := s.num
	switch s.typ {
	case '$', '=', '!':
		if n > s.lim.Bulk {
			return limitErr("%s length %d exceeds the %s limit", kindOf(s.typ), n, size(s.lim.Bulk))
		}
		if room := s.lim.Reply - s.replyBytes - used; n+2 > room {
			return limitErr("%s length %d makes the reply longer than the %s limit", kindOf(s.typ), n, size(s.lim.Reply))
		}
		if err := s.charge(n + 2); err != nil {
			return err
		}
		s.state, s.left = stPayload, n
		if n == 0 {
			s.state = stCR
		}
		return nil
	}
	elems := n
	if s.typ == '%' || s.typ == '|' {
		if n > s.lim.Aggregate/2 {
			return limitErr("%s of %d pairs exceeds the %d-element limit", kindOf(s.typ), n, s.lim.Aggregate)
		}
		elems = 2 * n
	} else if n > s.lim.Aggregate {
		return limitErr("%s length %d exceeds the %d-element limit", kindOf(s.typ), n, s.lim.Aggregate)
	}
	if err := s.charge(slotCost * elems); err != nil {
		return err
	}
	if elems == 0 {
		if s.typ != '|' {
			s.valueDone()
		}
		return nil
	}
	if len(s.stack) >= s.lim.Depth {
		return limitErr("aggregates nested deeper than the %d-level limit", s.lim.Depth)
	}
	s.stack = append(s.stack, frame{left: elems, attr: s.typ == '|'})
	return nil
}

// valueDone counts a complete value against the aggregates it closes.
func (s *scanner) valueDone() {
	for len(s.stack) > 0 {
		top := &s.stack[len(s.stack)-1]
		top.left--
		if top.left > 0 {
			return
		}
		attr := top.attr
		s.stack = s.stack[:len(s.stack)-1]
		if attr {
			return // the annotated value is still to come
		}
	}
	s.inReply = false
}

// charge adds n bytes to the reply's and the batch's allocation budgets.
func (s *scanner) charge(n int64) error {
	s.replyAlloc += n
	s.batchAlloc += n
	if s.replyAlloc > s.lim.Alloc {
		return limitErr("reply declares %d bytes of allocations, over the %s budget", s.replyAlloc, size(s.lim.Alloc))
	}
	if s.batchAlloc > s.lim.Batch {
		return limitErr("replies to one batch of commands declare %d bytes of allocations, over the %s budget", s.batchAlloc, size(s.lim.Batch))
	}
	return nil
}

// kindOf names a type byte in errors.
func kindOf(typ byte) string {
	switch typ {
	case '+':
		return "status line"
	case '-':
		return "error line"
	case ':':
		return "integer line"
	case '_':
		return "null line"
	case ',':
		return "double line"
	case '#':
		return "boolean line"
	case '(':
		return "big number line"
	case '$':
		return "bulk"
	case '=':
		return "verbatim string"
	case '!':
		return "blob error"
	case '*':
		return "array"
	case '~':
		return "set"
	case '>':
		return "push"
	case '%':
		return "map"
	case '|':
		return "attribute"
	}
	return "reply"
}
