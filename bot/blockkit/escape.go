package blockkit

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape makes text from Redis or a user safe inside mrkdwn: &, < and > become
// &amp;, &lt; and &gt; (Slack's documented escaping rule), so the text can
// never form a link, a user or channel mention or a special command such as
// <!channel>. Control characters other than newline and tab, and the Unicode
// bidi overrides, are shown as Go escapes ("\x1b") instead of being sent, and
// invalid UTF-8 becomes U+FFFD.
func Escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			writeClean(&b, r)
		}
	}
	return b.String()
}

// writeClean writes r, or its Go escape when it is a control character or a
// bidi override. Ranging over invalid UTF-8 yields utf8.RuneError, which is
// written as the replacement character it stands for.
func writeClean(b *strings.Builder, r rune) {
	if unsafeRune(r) {
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
		return
	}
	b.WriteRune(r)
}

func unsafeRune(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return unicode.IsControl(r) ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// inline escapes text that must stay on one line (a name in bold, a line
// of the fleet table): newlines and tabs become spaces.
func inline(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r == '\r' {
			return ' '
		}
		return r
	}, Escape(s))
}

// code formats text as an inline code span. A backtick in the text would end
// the span early, so it is replaced by a look-alike.
func code(s string) string {
	return "`" + strings.ReplaceAll(inline(s), "`", "ˋ") + "`"
}

// plain prepares text for a plain_text object (headers, button labels):
// Slack does not parse plain_text for links or mentions, so it is not
// entity-escaped; control characters are still neutralised and the text is
// kept to one line of at most max characters.
func plain(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\n', '\t', '\r':
			b.WriteByte(' ')
		default:
			writeClean(&b, r)
		}
	}
	return cut(b.String(), max)
}

// textLen is the length Slack's limits are checked against. Slack documents
// them in "characters"; counting UTF-16 code units is never less than
// counting runes, so a text within this length is within the limit however
// Slack counts.
func textLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16Len(r)
	}
	return n
}

func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// ellipsis marks text that was cut.
const ellipsis = "…"

// cut shortens already-escaped text to at most max characters, ending in an
// ellipsis when it had to cut. It never cuts inside an entity (&amp;) or
// inside a <link|text> the renderer made.
func cut(s string, max int) string {
	if textLen(s) <= max {
		return s
	}
	return safePrefix(s, max-textLen(ellipsis)) + ellipsis
}

// safePrefix returns the longest prefix of s that is at most max characters
// and does not end inside an entity or a link.
func safePrefix(s string, max int) string {
	n, end := 0, 0
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:])
		if n+utf16Len(r) > max {
			break
		}
		n += utf16Len(r)
		end += size
	}
	head := s[:end]
	if amp := strings.LastIndexByte(head, '&'); amp >= 0 && len(head)-amp < len("&amp;") && !strings.Contains(head[amp:], ";") {
		head = head[:amp]
	}
	if lt := strings.LastIndexByte(head, '<'); lt >= 0 && !strings.Contains(head[lt:], ">") {
		head = head[:lt]
	}
	return head
}

// splitRunes breaks raw text into pieces of at most n runes, so that each
// piece stays within a limit after escaping (an escaped rune is at most six
// characters: "\u009f").
func splitRunes(s string, n int) []string {
	var out []string
	count, start := 0, 0
	for i := range s {
		if count == n {
			out = append(out, s[start:i])
			start, count = i, 0
		}
		count++
	}
	return append(out, s[start:])
}
