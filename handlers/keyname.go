package handlers

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of KeyPattern. A key name may be up to 512 MB of arbitrary bytes;
// a pattern is a map key kept for the whole scan, so both the bytes read and
// the bytes produced are bounded.
const (
	// maxPatternInput is how many bytes of a key name KeyPattern reads.
	maxPatternInput = 256
	// maxPatternOutput bounds a pattern without its cut marker. It must not
	// exceed maxPatternInput, or folding a pattern again would cut it anew.
	maxPatternOutput = maxPatternInput
	// patternCut ends the pattern of a name that was cut.
	patternCut = "…"
)

// KeyPattern folds a key name into its pattern, so that keys created by the
// same code group together: "session:8f14e45f-ceea-467f-a0e6-0123456789ab"
// and "session:0b5c…" both become "session:{id}".
//
// The name is split into fields on ':' and '/', and each field into segments
// on '.'; separators are kept. Then:
//   - a field that looks like an e-mail address (ASCII local@domain.tld)
//     becomes "{email}" as a whole, since splitting it on '.' would keep the
//     user's name;
//   - a segment holding control characters or invalid UTF-8 (binary ids)
//     becomes "{bin}";
//   - a segment that is all digits, a UUID (8-4-4-4-12 hex, any case), hex
//     of 8 or more characters with a decimal digit among them, or a
//     random-looking token becomes "{id}". A token is 16+ characters of
//     [A-Za-z0-9_+=-] with letters and digits that change class often
//     (digit<->letter, lower->upper): a heuristic that keeps identifiers
//     made of words, like "user_preferences_v2" or "userPrefsV2Cache";
//   - a segment that is a date, YYYY-MM-DD or YYYY-MM, becomes "{date}";
//     a compact YYYYMMDD is all digits and so "{id}";
//   - otherwise the segment is split on '_' and '-' and each piece that is
//     all digits or a hex id as above becomes "{id}": "order_1234" ->
//     "order_{id}", and "utf-8" -> "utf-{id}" (harmless: a constant stays
//     one pattern);
//   - a '{' opening a segment and a '}' closing one (cluster hash tags)
//     are kept and the rest is folded: "{user:1000}:following" ->
//     "{user:{id}}:following", "{42}.cart" -> "{{id}}.cart".
//
// Words such as "v2", "en", "utf8" or "user42" stay as they are, and so does
// every non-ASCII printable character. An IPv4 address folds segment by
// segment ("10.0.0.1" -> "{id}.{id}.{id}.{id}").
//
// Only the first 256 bytes of a name are read, and a pattern holds at most
// 256 bytes of folded segments; a name that does not fit ends in "…".
// Folding a pattern again gives the same pattern. A real key named
// "(other)" folds to itself, which KeyStats counts with the overflow.
func KeyPattern(name string) string {
	var buf [maxPatternOutput + 2*len(patternCut)]byte
	return string(appendKeyPattern(buf[:0], name))
}

// appendKeyPattern appends KeyPattern(name) to dst. KeyStats looks patterns
// up with it in a reused buffer, so that counting a key of a known pattern
// allocates nothing.
func appendKeyPattern(dst []byte, name string) []byte {
	cut := false
	// A trailing marker is taken for a cut, so that a pattern folds to
	// itself; a real key ending in "…" loses nothing by it.
	if strings.HasSuffix(name, patternCut) {
		name = name[:len(name)-len(patternCut)]
		cut = true
	}
	if len(name) > maxPatternInput {
		n := maxPatternInput
		for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(name[n]); i++ {
			n--
		}
		name = name[:n]
		cut = true
	}
	start := len(dst)
	full := func() bool { return len(dst)-start > maxPatternOutput }
fields:
	for len(name) > 0 {
		end := strings.IndexAny(name, ":/")
		if end < 0 {
			end = len(name)
		}
		field := name[:end]
		if isEmailLike(field) {
			mark := len(dst)
			dst = append(dst, "{email}"...)
			if full() {
				dst, cut = dst[:mark], true
				break
			}
		} else {
			for {
				dot := strings.IndexByte(field, '.')
				seg := field
				if dot >= 0 {
					seg = field[:dot]
				}
				mark := len(dst)
				dst = appendSegment(dst, seg)
				if dot >= 0 {
					dst = append(dst, '.')
				}
				if full() {
					dst, cut = dst[:mark], true
					break fields
				}
				if dot < 0 {
					break
				}
				field = field[dot+1:]
			}
		}
		if end == len(name) {
			break
		}
		dst = append(dst, name[end])
		if full() {
			dst, cut = dst[:len(dst)-1], true
			break
		}
		name = name[end+1:]
	}
	if cut {
		dst = append(dst, patternCut...)
	}
	return dst
}

// isEmailLike reports whether a field reads as local@domain.tld in plain
// ASCII. The narrow alphabet matters: a field that folding changed holds
// '{', so a pattern is never taken for an address when folded again.
func isEmailLike(field string) bool {
	at := strings.IndexByte(field, '@')
	if at <= 0 || strings.IndexByte(field[at+1:], '.') <= 0 {
		return false
	}
	for i := 0; i < len(field); i++ {
		c := field[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
		case i < at && (c == '_' || c == '+' || c == '%'):
		case i == at:
		default:
			return false
		}
	}
	return true
}

// appendSegment appends the folded form of one segment (no ':' '/' '.').
func appendSegment(dst []byte, seg string) []byte {
	if isBinary(seg) {
		return append(dst, "{bin}"...)
	}
	core := seg
	open := strings.HasPrefix(core, "{")
	if open {
		core = core[1:]
	}
	closed := strings.HasSuffix(core, "}")
	if closed {
		core = core[:len(core)-1]
	}
	if open {
		dst = append(dst, '{')
	}
	if p := placeholder(core); p != "" {
		dst = append(dst, p...)
	} else {
		// Pieces between '_' and '-': "order_1234" -> "order_{id}".
		for {
			i := strings.IndexAny(core, "_-")
			piece := core
			if i >= 0 {
				piece = core[:i]
			}
			if isDigits(piece) || isHexID(piece) {
				dst = append(dst, "{id}"...)
			} else {
				dst = append(dst, piece...)
			}
			if i < 0 {
				break
			}
			dst = append(dst, core[i])
			core = core[i+1:]
		}
	}
	if closed {
		dst = append(dst, '}')
	}
	return dst
}

// placeholder returns what a whole segment folds to, or "" when it is not
// an id. None of the rules accepts '{' or '}', so placeholders fold to
// themselves.
func placeholder(s string) string {
	switch {
	case s == "":
		return ""
	case isDigits(s), isUUID(s), isHexID(s), isToken(s):
		return "{id}"
	case isDate(s):
		return "{date}"
	}
	return ""
}

// isBinary reports whether s holds bytes that are not printable text.
func isBinary(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return true
		}
		if c >= utf8.RuneSelf {
			return !utf8.ValidString(s[i:])
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// isHexID matches 8 or more hex digits with at least one decimal digit:
// "deadbeef", "facade" or a run of "a"s read as words, and a random hex id
// without a decimal digit is rare (0.04% at 8 characters, less beyond).
func isHexID(s string) bool {
	if len(s) < 8 {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
		digit = digit || s[i] <= '9'
	}
	return digit
}

// isUUID matches 8-4-4-4-12 hex digits in any case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexByte(s[i]) {
				return false
			}
		}
	}
	return true
}

// isDate matches YYYY-MM-DD and YYYY-MM.
func isDate(s string) bool {
	if len(s) != 7 && len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 4 || i == 7 {
			if s[i] != '-' {
				return false
			}
		} else if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isToken reports whether s looks like a random token (base64, base62,
// ULID, nanoid): 16+ characters of [A-Za-z0-9_+=-], letters and digits, and
// at least one change of character class per four characters. Random tokens
// change class about every other character; identifiers made of words
// ("user_preferences_v2", "userPreferencesV2Cache") rarely do.
func isToken(s string) bool {
	if len(s) < 16 {
		return false
	}
	const (
		other = iota
		digit
		lower
		upper
	)
	var letters, digits, changes int
	prev := other
	for i := 0; i < len(s); i++ {
		c := s[i]
		class := other
		switch {
		case '0' <= c && c <= '9':
			class, digits = digit, digits+1
		case 'a' <= c && c <= 'z':
			class, letters = lower, letters+1
		case 'A' <= c && c <= 'Z':
			class, letters = upper, letters+1
		case c == '_' || c == '-' || c == '+' || c == '=':
		default:
			return false
		}
		// An upper-case letter followed by lower-case ones starts a word,
		// so upper->lower is not a change.
		if prev != other && class != other && prev != class &&
			(prev == digit || class == digit || class == upper) {
			changes++
		}
		prev = class
	}
	return letters > 0 && digits > 0 && (changes+1)*4 >= len(s)
}

// Printable renders a raw key name for people. Valid printable UTF-8 stays
// as it is; control characters, invalid bytes and non-printing runes (such
// as U+202E, which reverses the text after it) are written Go-style: \n, \t,
// \r, \x00, \xff, \u202e. A backslash is doubled only when the character
// after it would make it read as an escape (n t r x u U or another
// backslash): a raw backslash-n becomes "\\n", while "C:\dir" stays as it is.
//
// The result has at most max runes: a longer one is cut, an escape is never
// split, and "…" takes the last place. max <= 0 means no limit. Only the
// bytes needed are read, so a 1 MB name costs no more than a short one.
// Slack mrkdwn, CSV and terminal escaping are left to the renderers.
func Printable(name string, max int) string {
	if printableASCII(name) && (max <= 0 || len(name) <= max) {
		return name
	}
	var out []byte
	if max > 0 {
		out = make([]byte, 0, min(len(name), 4*max)+len(patternCut))
	} else {
		out = make([]byte, 0, len(name)+8)
	}
	runes, keep := 0, 0 // keep is len(out) while there is room for "…"
	var esc [12]byte
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		var piece []byte
		n := 1 // runes in piece
		switch {
		case r == utf8.RuneError && size == 1:
			piece = append(esc[:0], '\\', 'x', hexDigit(name[i]>>4), hexDigit(name[i]&0xf))
		case r == '\\':
			piece = append(esc[:0], '\\')
			if i+1 < len(name) && strings.IndexByte(`\ntrxuU`, name[i+1]) >= 0 {
				piece = append(piece, '\\')
			}
		case r == '\n':
			piece = append(esc[:0], `\n`...)
		case r == '\t':
			piece = append(esc[:0], `\t`...)
		case r == '\r':
			piece = append(esc[:0], `\r`...)
		case r < utf8.RuneSelf && !strconv.IsPrint(r):
			piece = append(esc[:0], '\\', 'x', hexDigit(byte(r)>>4), hexDigit(byte(r)&0xf))
		case !strconv.IsPrint(r):
			piece = strconv.AppendQuoteRuneToASCII(esc[:0], r)
			piece = piece[1 : len(piece)-1] // drop the quotes: \u202e
		}
		if len(piece) > 1 {
			n = len(piece) // an ASCII escape
		}
		if max > 0 && runes+n > max {
			return string(append(out[:keep], patternCut...))
		}
		if piece == nil {
			out = append(out, name[i:i+size]...)
		} else {
			out = append(out, piece...)
		}
		runes += n
		if max <= 0 || runes <= max-1 {
			keep = len(out)
		}
		i += size
	}
	return string(out)
}

// printableASCII reports whether s is printable ASCII without backslashes,
// which Printable returns unchanged.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func hexDigit(b byte) byte { return "0123456789abcdef"[b&0xf] }
